import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and SIGTERM: the first asks `run` to stop (no new claims, agents stopped, in-flight tasks failed
/// as "interrupted"); a second one at least ``repeatInterval`` later exits at once.
///
/// One Ctrl-C often arrives twice: the terminal sends SIGINT to the whole foreground process group, and
/// `git` (which runs `git-taskq` for `git taskq`) forwards the SIGINT it got to its child. The two arrive
/// within milliseconds; a person pressing Ctrl-C again takes far longer. So signals within
/// ``repeatInterval`` of the first count as that first one.
public enum Interrupts {
  /// Seconds after the first signal during which further signals are the same interrupt.
  public static let repeatInterval = 1.0
  /// Monotonic nanoseconds of the first signal; 0 while none arrived.
  static let firstAt = Atomic<Int>(0)

  /// Installs the handlers (idempotent).
  public static func install() {
    let handler: @convention(c) (Int32) -> Void = { _ in
      // Only async-signal-safe calls here: clock_gettime, atomics and _exit.
      var ts = timespec()
      clock_gettime(CLOCK_MONOTONIC, &ts)
      let now = max(1, Int(ts.tv_sec) * 1_000_000_000 + Int(ts.tv_nsec))
      let (exchanged, first) = Interrupts.firstAt.compareExchange(expected: 0, desired: now, ordering: .relaxed)
      if !exchanged && now - first >= Int(Interrupts.repeatInterval * 1e9) { _exit(130) }
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
  }

  public static var isRequested: Bool { firstAt.load(ordering: .relaxed) != 0 }

  /// For tests of the pipeline in-process.
  public static func reset() { firstAt.store(0, ordering: .relaxed) }
}

/// Options of one `run`.
public struct RunOptions: Sendable {
  public var maxParallel: Int
  /// Seconds between passes; `nil` for a single pass.
  public var poll: Double?
  public var onlyID: String?
  public var cleanupOnFail: Bool
  public var dirtyRun: Bool
  /// Seconds a claim's lease lasts unless renewed; the worker renews it while it works.
  public var leaseSeconds: Int
  /// Claim and publish every transition through this remote (`run --remote`).
  public var remote: String?

  public init(
    maxParallel: Int = 3, poll: Double? = nil, onlyID: String? = nil, cleanupOnFail: Bool = false,
    dirtyRun: Bool = false, leaseSeconds: Int = 600, remote: String? = nil
  ) {
    self.maxParallel = maxParallel
    self.poll = poll
    self.onlyID = onlyID
    self.cleanupOnFail = cleanupOnFail
    self.dirtyRun = dirtyRun
    self.leaseSeconds = leaseSeconds
    self.remote = remote
  }
}

/// How one task's run ended.
public enum Outcome: Sendable, Equatable {
  case review
  case failed(String)
  case cancelled
  case interrupted
  /// The task was moved by someone else while this worker held it.
  case lost(String)

  public var label: String {
    switch self {
    case .review: "review"
    case .failed: "failed"
    case .cancelled: "cancelled"
    case .interrupted: "interrupted"
    case .lost: "lost"
    }
  }
}
