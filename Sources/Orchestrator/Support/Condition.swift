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

/// A lock with a condition to wait on (a `pthread_mutex_t` and a `pthread_cond_t`): the part of
/// `NSCondition` the publisher and the claim desk use. `NSCondition` lives in full Foundation, whose
/// loading (with ICU) costs every process milliseconds of start-up (issue 15).
final class Condition: @unchecked Sendable {
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

  init() {
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(condition, nil)
  }

  deinit {
    pthread_cond_destroy(condition)
    pthread_mutex_destroy(mutex)
    condition.deallocate()
    mutex.deallocate()
  }

  func lock() { pthread_mutex_lock(mutex) }

  func unlock() { pthread_mutex_unlock(mutex) }

  /// Runs `body` holding the lock.
  func withLock<T>(_ body: () throws -> T) rethrows -> T {
    lock()
    defer { unlock() }
    return try body()
  }

  /// Waits (with the lock held) until signalled.
  func wait() { pthread_cond_wait(condition, mutex) }

  /// Waits (with the lock held) until signalled or until `deadline`; `false` when the deadline passed.
  @discardableResult
  func wait(until deadline: Date) -> Bool {
    let seconds = max(0, deadline.timeIntervalSince1970)
    var time = timespec()
    time.tv_sec = Int(seconds)
    time.tv_nsec = Int((seconds - Double(Int(seconds))) * 1_000_000_000)
    return pthread_cond_timedwait(condition, mutex, &time) == 0
  }

  func signal() { pthread_cond_signal(condition) }

  func broadcast() { pthread_cond_broadcast(condition) }
}
