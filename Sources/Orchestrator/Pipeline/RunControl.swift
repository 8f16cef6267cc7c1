import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Ctrl-C and SIGTERM: the first asks `run` to stop (no new claims, agents stopped, in-flight tasks failed
/// as "interrupted"); the second exits at once.
public enum Interrupts {
  static let count = Atomic<Int>(0)

  /// Installs the handlers (idempotent).
  public static func install() {
    let handler: @convention(c) (Int32) -> Void = { _ in
      let (_, now) = Interrupts.count.add(1, ordering: .relaxed)
      if now >= 2 { _exit(130) }
    }
    signal(SIGINT, handler)
    signal(SIGTERM, handler)
  }

  public static var isRequested: Bool { count.load(ordering: .relaxed) > 0 }

  /// For tests of the pipeline in-process.
  public static func reset() { count.store(0, ordering: .relaxed) }
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
