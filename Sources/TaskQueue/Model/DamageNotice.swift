import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one line that tells a user the queue holds damaged records (`1 damaged record: see git taskq fsck`),
/// said at most once per process, through a handler the command line installs.
public enum DamageNotice {
  private struct State {
    var handler: (@Sendable (String) -> Void)?
    var said = false
  }
  private static let state = Mutex(State())

  /// Where the notice goes (the command line: stderr). Without a handler nothing is said.
  public static func install(_ handler: (@Sendable (String) -> Void)?) {
    state.withLock { $0.handler = handler }
  }

  /// Says the notice for `count` damaged records, unless it was said already or `count` is 0.
  static func report(_ count: Int) {
    guard count > 0 else { return }
    let handler = state.withLock { state in
      let handler = state.said ? nil : state.handler
      if handler != nil { state.said = true }
      return handler
    }
    handler?(message(count))
  }

  public static func message(_ count: Int) -> String {
    "warning: \(count) damaged record\(count == 1 ? "" : "s") skipped: see 'git taskq fsck'"
  }
}
