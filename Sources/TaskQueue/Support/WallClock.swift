#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The time of day as the queue records it (leases, timestamps) and the waits between polls.
///
/// The seam through which tests move time: a lease that runs out, a health check that times out, without
/// sleeping. ``SystemClock`` is the real one; every store and pipeline uses it unless told otherwise.
public protocol WallClock: Sendable {
  /// Seconds since 1970 (UTC), with a fraction.
  func now() -> Double
  /// Waits `seconds` (a fake clock moves its time instead).
  func sleep(seconds: Double)
}

extension WallClock {
  /// Whole seconds since 1970, as the records store them.
  public func nowSeconds() -> Int { Int(now().rounded(.down)) }
}

/// The machine's clock (`CLOCK_REALTIME`) and a real sleep.
public struct SystemClock: WallClock {
  public init() {}

  public func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
  }

  public func sleep(seconds: Double) {
    guard seconds > 0 else { return }
    var request = timespec(tv_sec: Int(seconds), tv_nsec: Int((seconds - seconds.rounded(.down)) * 1e9))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
  }
}
