#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutual-exclusion lock (a `pthread_mutex_t`), for the few places that guard shared state across
/// threads.
///
/// `NSLock` would do, but it lives in full Foundation, whose loading (with ICU) costs every process
/// milliseconds of start-up (issue 15); `Synchronization.Mutex` needs macOS 15.
public class Lock: @unchecked Sendable {
  fileprivate let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

  public init() {
    pthread_mutex_init(mutex, nil)
  }

  deinit {
    pthread_mutex_destroy(mutex)
    mutex.deallocate()
  }

  public func lock() { pthread_mutex_lock(mutex) }

  public func unlock() { pthread_mutex_unlock(mutex) }

  /// Runs `body` holding the lock.
  public func withLock<T>(_ body: () throws -> T) rethrows -> T {
    lock()
    defer { unlock() }
    return try body()
  }
}

/// A lock with a condition to wait on (a `pthread_cond_t` with the lock's mutex): the part of `NSCondition`
/// the run's publisher and claim desk use (`NSCondition` lives in full Foundation, see ``Lock``).
public final class Condition: Lock, @unchecked Sendable {
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

  public override init() {
    pthread_cond_init(condition, nil)
    super.init()
  }

  deinit {
    pthread_cond_destroy(condition)
    condition.deallocate()
  }

  /// Waits (with the lock held) until signalled.
  public func wait() { pthread_cond_wait(condition, mutex) }

  /// Waits (with the lock held) until signalled or until `deadline`; `false` when the deadline passed.
  @discardableResult
  public func wait(until deadline: Date) -> Bool {
    let seconds = max(0, deadline.timeIntervalSince1970)
    var time = timespec()
    time.tv_sec = Int(seconds)
    time.tv_nsec = Int((seconds - Double(Int(seconds))) * 1_000_000_000)
    return pthread_cond_timedwait(condition, mutex, &time) == 0
  }

  public func signal() { pthread_cond_signal(condition) }

  public func broadcast() { pthread_cond_broadcast(condition) }
}
