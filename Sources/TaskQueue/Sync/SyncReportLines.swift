/// The one way a ``SyncReport`` is shown to people, used by `git taskq sync` and by every command that
/// syncs inside (`approve --merge`, `recover`, `run`), so that no operation disappears without a line.
extension SyncReport {
  /// One line per operation the sync left out or overrode, escaped for a terminal (``TerminalText/line(_:)``:
  /// a reason may quote a remote's worker name): each drop (`T-1: cancel dropped: …`), then each task whose
  /// recovery on the remote was superseded.
  public var notices: [String] {
    unrelatedNotice + dropped.map { TerminalText.line("\($0)") }
      + superseded.map {
        TerminalText.line("\($0): the remote's recovery (worker lost) superseded: this worker was alive and went on")
      }
  }

  /// That the local queue and the remote's shared no commit, so every local operation was replayed.
  var unrelatedNotice: [String] {
    guard let tip = unrelatedLocalTip else { return [] }
    return [
      "the remote's queue shares no history with the local one (a queue started here before its first sync): "
        + "every local operation was replayed onto it; the local queue before: \(tip) (git reflog refs/taskq/queue)"
    ]
  }

  /// The summary, then each notice indented by two spaces: what `git taskq sync` prints.
  public var lines: [String] { [summary] + notices.map { "  " + $0 } }
}
