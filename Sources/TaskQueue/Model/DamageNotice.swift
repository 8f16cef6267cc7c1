#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one line that tells a user the queue holds damaged records (`1 damaged record: see git taskq fsck`),
/// said at most once per process, through a handler the command line installs.
public enum DamageNotice {
  private final class State: @unchecked Sendable {
    let lock = Lock()
    var handler: (@Sendable (String) -> Void)?
    var said = false
  }
  private static let state = State()

  /// Where the notice goes (the command line: stderr). Without a handler nothing is said.
  public static func install(_ handler: (@Sendable (String) -> Void)?) {
    state.lock.lock()
    state.handler = handler
    state.lock.unlock()
  }

  /// Says the notice for `count` damaged records, unless it was said already or `count` is 0.
  static func report(_ count: Int) {
    guard count > 0 else { return }
    state.lock.lock()
    let handler = state.said ? nil : state.handler
    if handler != nil { state.said = true }
    state.lock.unlock()
    handler?(message(count))
  }

  public static func message(_ count: Int) -> String {
    "warning: \(count) damaged record\(count == 1 ? "" : "s") skipped: see 'git taskq fsck'"
  }
}
