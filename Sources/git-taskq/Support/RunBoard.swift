import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The live board of `run` on a terminal (standard error): a totals line, then one line per task at work,
/// redrawn in place every second; finished tasks and warnings are printed once above it.
///
///     running 2 · queued 3 · review 1 · failed 1                      (Ctrl-C to stop)
///       ▸ T-001   building   execute-plan   1m12s
///       ▸ T-002   planning   make-plan      8s
///
/// Every line is cut to the terminal's width (with `…`), so a redraw never leaves a wrapped line behind;
/// colours follow `status` (and `NO_COLOR`, `color.taskq`, `color.ui`). The cursor is hidden while the
/// board is drawn and shown again when the run ends, on an error, and at exit (an `atexit` handler), so
/// Ctrl-C or a killed child never leaves the terminal without a cursor. With `--poll`, an idle board says
/// that it waits.
final class RunBoard: RunDisplay, @unchecked Sendable {
  private let view: StatusView
  private let queued: () -> Int?
  private let pollSeconds: Double?
  private var drawnLines = 0
  private var lastQueued: Int?
  private var lastQueuedAt = 0.0
  private var finished = false

  /// - Parameters:
  ///   - colored: whether to colour, decided as for `status`.
  ///   - pollSeconds: the interval of `--poll`, when polling.
  ///   - queued: how many todo tasks wait in the queue (read at most every 2 s).
  init(colored: Bool, pollSeconds: Double?, queued: @escaping () -> Int?) {
    view = StatusView(colored: colored, now: 0)
    self.pollSeconds = pollSeconds
    self.queued = queued
    RunBoard.hideCursor()
  }

  func draw(_ state: RunBoardState) {
    guard !finished else { return }
    let width = TerminalSize.current().columns
    var lines = [totals(state, width: width)]
    for task in state.active {
      let status: TaskStatus = task.stage == "setup" || task.stage == "container" ? .planning : .building
      let line =
        "  ▸ " + view.paint(TerminalText.line(task.id), .bold) + "  "
        + view.paint(TerminalText.line(task.stage), StatusView.style(of: status).plain) + "  "
        + Timestamp.age(task.seconds)
      lines.append(line)
    }
    if state.active.isEmpty {
      lines.append(
        view.paint(
          pollSeconds.map { "  waiting for tasks to run (checking every \(GitTaskq.Status.formatSeconds($0)))" }
            ?? "  nothing running", .dim))
    }
    var text = clearText()
    text += lines.map { StatusView.fit($0, to: width) + "\u{1B}[K" }.joined(separator: "\n") + "\n"
    Output.write(text, to: 2)
    drawnLines = lines.count
  }

  func clear() {
    Output.write(clearText(), to: 2)
    drawnLines = 0
  }

  func print(_ line: String) {
    let width = TerminalSize.current().columns
    Output.write(clearText() + StatusView.fit(line, to: width) + "\u{1B}[K\n", to: 2)
    drawnLines = 0
  }

  func finish() {
    guard !finished else { return }
    finished = true
    clear()
    RunBoard.showCursor()
  }

  /// `running 2 · queued 3 · review 1 · failed 1`, then the hint.
  private func totals(_ state: RunBoardState, width: Int) -> String {
    let now = Date().timeIntervalSince1970
    if now - lastQueuedAt >= 2 {
      lastQueued = queued()
      lastQueuedAt = now
    }
    var parts = [view.paint("running \(state.active.count)", .boldCyan)]
    if let queued = lastQueued { parts.append(view.paint("queued \(queued)", .yellow)) }
    for (label, style) in [("review", StatusView.Style.green), ("failed", .red), ("cancelled", .dim)] {
      let count = state.outcomes.filter { $0.outcome.label == label }.count
      if count > 0 || label != "cancelled" { parts.append(view.paint("\(label) \(count)", style)) }
    }
    return parts.joined(separator: " · ") + view.paint("   (Ctrl-C to stop)", .dim)
  }

  /// The number of todo tasks in this repository's queue, read with a repository of its own (the board
  /// draws on the events' ticker thread).
  static func todoCount() -> Int? {
    QueueWorkspace.bestEffortRecords()?.filter { $0.status == .todo }.count
  }

  /// Moves up over the board drawn last and clears it.
  private func clearText() -> String {
    guard drawnLines > 0 else { return "" }
    return "\r" + String(repeating: "\u{1B}[1A\u{1B}[2K", count: drawnLines)
  }

  /// Whether the cursor is hidden now (read by the `atexit` handler).
  nonisolated(unsafe) private static var cursorHidden = false

  static func hideCursor() {
    if !cursorHidden {
      atexit { RunBoard.showCursor() }
    }
    cursorHidden = true
    Output.write("\u{1B}[?25l", to: 2)
  }

  static func showCursor() {
    guard cursorHidden else { return }
    cursorHidden = false
    Output.write("\u{1B}[?25h", to: 2)
  }
}

extension StatusView.Style {
  /// The colour without bold, for the board's stage names.
  var plain: StatusView.Style {
    switch self {
    case .boldCyan: .cyan
    case .boldGreen: .green
    case .boldRed: .red
    case .boldYellow: .yellow
    case .boldBlue: .blue
    default: self
    }
  }
}

/// The summary a `run` ends with: its outcomes, then the tasks it left in todo and why.
enum RunSummary {
  /// `review (2): T-001 T-002  — next: …`, one line per outcome, then
  /// `left in todo (2): T-004 waiting on T-003 (review); T-005 blocked by T-006 (cancelled)`.
  static func text(_ outcomes: [(String, Outcome)], records: [TaskRecord]?) -> String {
    var lines: [String] = []
    for label in ["review", "failed", "interrupted", "cancelled", "lost"] {
      let ids = outcomes.filter { $0.1.label == label }.map(\.0)
      guard !ids.isEmpty else { continue }
      var line = "\(label) (\(ids.count)): \(ids.joined(separator: " "))"
      switch label {
      case "review": line += "  — next: git taskq review --id \(ids[0])"
      case "failed", "interrupted": line += "  — see: git taskq show --id \(ids[0])"
      default: break
      }
      lines.append(line)
    }
    if outcomes.isEmpty { lines.append("nothing to run (no todo task whose dependencies are done)") }
    if let records {
      let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
      let todo = records.filter { $0.status == .todo }
      let held = todo.compactMap { record -> String? in
        DependencySummary(of: record) { byID[$0] }.text.map { "\(record.id) \($0)" }
      }
      if !held.isEmpty {
        lines.append("left in todo (\(held.count)): " + held.joined(separator: "; "))
      }
    }
    return TerminalText.block(lines.joined(separator: "\n")) + "\n"
  }
}
