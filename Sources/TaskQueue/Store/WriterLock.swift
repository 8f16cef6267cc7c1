#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The lock every git-taskq process of this machine holds around its compare-and-swap of the queue ref:
/// an `flock` on `<git common dir>/taskq/queue.writer`, and in that file what its holder is doing.
///
/// libgit2 takes the ref's own lock (`refs/taskq/queue.lock`) inside the compare-and-swap, and a writer
/// killed at that instant leaves it behind, which blocks every later write. Age cannot tell such an
/// abandoned lock from one whose owner is merely paused (scheduling, I/O, SIGSTOP), and removing a live
/// lock lets its owner rename another writer's lock into place later and lose an acknowledged write. So:
///
/// - The kernel releases an `flock` when its holder dies: holding it, a writer knows that no live git-taskq
///   writer of this machine owns `queue.lock`.
/// - The holder writes `pid host writing` into the file before its compare-and-swap and `pid host done`
///   after it. A writer that takes the lock and reads `writing` knows the previous holder died inside its
///   compare-and-swap: a `queue.lock` found now is that writer's, and is removed. Any other `queue.lock` is
///   a foreign git process's (`git gc`'s `pack-refs`, `git update-ref`), alive or crashed: like git, we
///   never remove it, since a foreign owner paused for a while would otherwise lose its write, or ours.
///
/// Locks are per open file description: threads of one process each open their own and exclude each other.
final class WriterLock {
  private let descriptor: Int32
  private let identity: String
  /// Whether the previous holder died inside its compare-and-swap (the file said `writing`).
  let previousHolderDied: Bool

  private init(descriptor: Int32, identity: String, previousHolderDied: Bool) {
    self.descriptor = descriptor
    self.identity = identity
    self.previousHolderDied = previousHolderDied
  }

  /// Acquires the lock, waiting with a growing pause while another process holds it, and marks it
  /// `writing`.
  ///
  /// - Parameters:
  ///   - path: the lock file (created when missing, with its directory; never through a symbolic link).
  ///   - identity: who holds it (`pid host`), written into the file.
  ///   - timeout: seconds to wait before giving up.
  /// - Returns: the held lock; call ``release()`` when the compare-and-swap is over.
  /// - Throws: ``QueueError/writerBusy(holder:seconds:)`` when another process held it for `timeout`
  ///   seconds, ``QueueError/writerLockUnusable(path:problem:)`` when the file cannot be opened or is not a regular file.
  static func acquire(path: String, identity: String, timeout: Double) throws -> WriterLock {
    let flags = O_CREAT | O_RDWR | O_CLOEXEC | O_NOFOLLOW
    var fd = open(path, flags, 0o644)
    if fd < 0 && errno == ENOENT {
      let directory = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
      mkdir(directory, 0o755)
      fd = open(path, flags, 0o644)
    }
    guard fd >= 0 else {
      let reason = errno == ELOOP ? "it is a symbolic link" : String(cString: strerror(errno))
      throw QueueError.writerLockUnusable(path: path, problem: .cannotOpen(reason: reason))
    }
    var info = stat()
    guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      throw QueueError.writerLockUnusable(path: path, problem: .notARegularFile)
    }
    let start = monotonicNow()
    var pause: UInt32 = 200
    while flock(fd, LOCK_EX | LOCK_NB) != 0 {
      let failure = errno
      guard failure == EWOULDBLOCK || failure == EINTR else {
        close(fd)
        throw QueueError.writerLockUnusable(
          path: path, problem: .cannotLock(reason: String(cString: strerror(failure))))
      }
      let waited = monotonicNow() - start
      if waited >= timeout {
        let holder = Self.read(fd).holder
        close(fd)
        throw QueueError.writerBusy(holder: holder, seconds: Int(waited))
      }
      usleep(UInt32.random(in: pause / 2...pause))
      pause = min(pause * 2, 50_000)
    }
    let died = Self.read(fd).isWriting
    Self.write(fd, "\(identity) writing\n")
    return WriterLock(descriptor: fd, identity: identity, previousHolderDied: died)
  }

  /// Marks the compare-and-swap over and releases the lock (closing the file releases it; so does the
  /// death of the process, leaving the mark `writing`).
  func release() {
    Self.write(descriptor, "\(identity) done\n")
    close(descriptor)
  }

  /// What the lock at `path` says now, without waiting: whether a writer of this machine holds it, and
  /// whether the last holder died inside its compare-and-swap.
  static func state(path: String) -> (isHeld: Bool, lastHolderDied: Bool) {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
    guard fd >= 0 else { return (false, false) }
    defer { close(fd) }
    guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return (errno == EWOULDBLOCK, false) }
    defer { flock(fd, LOCK_UN) }
    return (false, read(fd).isWriting)
  }

  /// The holder (`pid host`) and its mark, from the file's first line.
  private static func read(_ fd: Int32) -> (holder: String, isWriting: Bool) {
    var buffer = [UInt8](repeating: 0, count: 256)
    let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard count > 0 else { return ("another git-taskq process", false) }
    var line = String(decoding: buffer.prefix(count).prefix { $0 != 0x0A }, as: UTF8.self)
    let isWriting = line.hasSuffix(" writing")
    for mark in [" writing", " done"] where line.hasSuffix(mark) { line.removeLast(mark.count) }
    return (line.isEmpty ? "another git-taskq process" : QueueError.printable(line), isWriting)
  }

  /// Writes `text` (one line) as the file's first line.
  ///
  /// Written over the first line in place, never truncated first: readers read the first line only, which
  /// is then exactly `text` whatever longer line it replaced left after it. Truncating cost more than the
  /// rest of the compare-and-swap (half of it in `perf`, on tmpfs), and left an instant where the file
  /// was empty, which would read as "nobody was writing" after a crash at that instant.
  private static func write(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
  }
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
