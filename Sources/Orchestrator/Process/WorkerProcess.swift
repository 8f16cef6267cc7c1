import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// Who a worker is, as its tasks record it: `host:pid@start`, where `start` is the process's start time
/// (field 22 of `/proc/<pid>/stat`, clock ticks since boot).
///
/// The start time makes liveness exact on this host: a pid the kernel gave to another process since has
/// another start time, so a dead worker is known dead at once, without waiting for its lease. Records
/// written before the start time was recorded (`host:pid`) fall back to "a process with that pid exists".
public struct WorkerProcess: Sendable, Equatable {
  public var host: String
  public var pid: Int32
  public var start: UInt64?

  /// The worker name of this process.
  public static var current: String {
    let pid = getpid()
    guard let start = startTime(of: pid) else { return "\(hostName):\(pid)" }
    return "\(hostName):\(pid)@\(start)"
  }

  /// This machine's name, as the queue's worker names carry it.
  public static let hostName: String = {
    let name = QueueStore.defaultWorker()
    return name.lastIndex(of: ":").map { String(name[..<$0]) } ?? name
  }()

  /// Parses `host:pid` or `host:pid@start`; `nil` for anything else (a name from another tool or version).
  public init?(_ name: String) {
    guard let colon = name.lastIndex(of: ":") else { return nil }
    host = String(name[..<colon])
    let rest = name[name.index(after: colon)...]
    let parts = rest.split(separator: "@", maxSplits: 1, omittingEmptySubsequences: false)
    guard let pid = Int32(parts[0]), pid > 0 else { return nil }
    self.pid = pid
    if parts.count == 2 {
      guard let start = UInt64(parts[1]) else { return nil }
      self.start = start
    }
  }

  /// Whether this worker is a process of this host.
  public var isOnThisHost: Bool { host == Self.hostName }

  /// Whether the process still runs (same pid and, when recorded, the same start time). Only meaningful for
  /// a worker of this host.
  public var isAlive: Bool {
    guard kill(pid, 0) == 0 || errno == EPERM else { return false }
    guard let start else { return true }
    guard let now = Self.startTime(of: pid) else { return false }
    return now == start && !Self.isZombie(pid)
  }

  /// Field 22 of `/proc/<pid>/stat` (the start time in clock ticks after boot), or `nil`.
  public static func startTime(of pid: Int32) -> UInt64? {
    guard let fields = statFields(pid), fields.count > 19 else { return nil }
    // `fields` starts at field 3 (state), after the command name in parentheses.
    return UInt64(fields[19])
  }

  static func isZombie(_ pid: Int32) -> Bool { statFields(pid)?.first == "Z" }

  /// The fields of `/proc/<pid>/stat` after `(comm)`, which may itself hold spaces and parentheses.
  static func statFields(_ pid: Int32) -> [Substring]? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = text.lastIndex(of: ")")
    else { return nil }
    return text[text.index(after: close)...].split(separator: " ")
  }
}
