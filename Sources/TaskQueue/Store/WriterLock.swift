#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The lock every git-taskq process of this machine holds around its compare-and-swap of the queue ref:
/// an `flock` on `<git common dir>/taskq/queue.writer`.
///
/// libgit2 takes the ref's own lock (`refs/taskq/queue.lock`) inside the compare-and-swap, and a writer
/// killed at that instant leaves it behind, which blocks every later write. Age alone cannot tell such an
/// abandoned lock from one whose writer is merely paused (scheduling, I/O, SIGSTOP): removing a live lock
/// let a paused writer rename another writer's lock into place and lose an acknowledged write. The kernel
/// releases an `flock` when its holder dies, so a writer that holds this lock and still finds `queue.lock`
/// knows that no git-taskq writer owns it: only a dead one, or a foreign git process (which holds a ref lock
/// for milliseconds).
///
/// Locks are per open file description: threads of one process each open their own and exclude each other.
/// The holder writes `pid host` into the file, so a writer that waits too long can name it.
struct WriterLock {
  private let descriptor: Int32

  /// Acquires the lock, waiting with a growing pause while another process holds it.
  ///
  /// - Parameters:
  ///   - path: the lock file (created when missing, with its directory).
  ///   - identity: written into the file while held (`pid host`).
  ///   - timeout: seconds to wait before giving up.
  /// - Returns: the held lock; call ``release()`` when the compare-and-swap is over.
  /// - Throws: ``QueueError/writerBusy(holder:seconds:)`` when another process held it for `timeout`
  ///   seconds, ``QueueError/git(_:)`` when the file cannot be opened.
  static func acquire(path: String, identity: String, timeout: Double) throws -> WriterLock {
    var fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    if fd < 0 && errno == ENOENT {
      let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
      mkdir(directory, 0o755)
      fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    }
    guard fd >= 0 else {
      throw QueueError.git("cannot open the queue's writer lock '\(path)': \(String(cString: strerror(errno)))")
    }
    let start = monotonicNow()
    var pause: UInt32 = 200
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let failure = errno
      guard failure == EWOULDBLOCK || failure == EINTR else {
        close(fd)
        throw QueueError.git("cannot lock '\(path)': \(String(cString: strerror(failure)))")
      }
      let waited = monotonicNow() - start
      if waited >= timeout {
        let holder = Self.holder(fd)
        close(fd)
        throw QueueError.writerBusy(holder: holder, seconds: Int(waited))
      }
      usleep(UInt32.random(in: pause / 2...pause))
      pause = min(pause * 2, 50_000)
    }
    let text = Array("\(identity)\n".utf8)
    if ftruncate(fd, 0) == 0 {
      _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    }
    return WriterLock(descriptor: fd)
  }

  /// Releases the lock (closing the file releases it; so does the death of the process).
  func release() {
    close(descriptor)
  }

  /// Whether a writer of this machine holds the lock at `path` now (without waiting).
  static func isHeld(path: String) -> Bool {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return errno == EWOULDBLOCK }
    flock(fd, LOCK_UN)
    return false
  }

  /// What the current holder wrote (`pid host`), as one short line.
  private static func holder(_ fd: Int32) -> String {
    var buffer = [UInt8](repeating: 0, count: 128)
    let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard count > 0 else { return "another git-taskq process" }
    let text = String(decoding: buffer.prefix(count).prefix { $0 != 0x0A }, as: UTF8.self)
    return text.isEmpty ? "another git-taskq process" : QueueError.printable(text)
  }
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
