import Synchronization

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
///
/// A writer holds it for its whole update (read, closure, objects, compare-and-swap; see
/// ``QueueStore/update(_:)``), so writers of one machine take turns instead of all doing the work and all
/// but one throwing it away; the `writing` mark still spans the compare-and-swap only.
final class WriterLock {
  private let descriptor: Int32
  private let identity: String
  /// Whether the previous holder died inside its compare-and-swap (the file said `writing`); cleared by
  /// ``takePreviousHolderDied()``.
  private var previousHolderDied: Bool

  private init(descriptor: Int32, identity: String, previousHolderDied: Bool) {
    self.descriptor = descriptor
    self.identity = identity
    self.previousHolderDied = previousHolderDied
  }

  /// Whether the previous holder died inside its compare-and-swap, once: after this holder's first
  /// compare-and-swap a `queue.lock` can no longer be that holder's.
  func takePreviousHolderDied() -> Bool {
    defer { previousHolderDied = false }
    return previousHolderDied
  }

  /// Marks the compare-and-swap begun (`writing`): a holder that dies from here on leaves the mark.
  func markWriting() { Self.write(descriptor, "\(identity) writing\n") }

  /// Marks the compare-and-swap over (`done`).
  func markDone() { Self.write(descriptor, "\(identity) done\n") }

  /// Acquires the lock, waiting with short jittered pauses while another process holds it.
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
      let code = errno
      if [EACCES, EROFS, EPERM].contains(code) {
        throw QueueError.writerLockUnusable(path: path, problem: .notWritable(reason: String(cString: strerror(code))))
      }
      let reason = code == ELOOP ? "it is a symbolic link" : String(cString: strerror(code))
      throw QueueError.writerLockUnusable(path: path, problem: .cannotOpen(reason: reason))
    }
    var info = stat()
    guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
      close(fd)
      throw QueueError.writerLockUnusable(path: path, problem: .notARegularFile)
    }
    let start = monotonicNow()
    // Writers hold the lock for a whole update (about a millisecond): a waiter that slept far longer than
    // that would leave the queue idle. The pause starts at 50 µs and grows to at most 1 ms.
    var pause: UInt32 = 50
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
        // A holder that runs (a long `import`, a slow disk) is waited for, up to `patience` times longer;
        // one that is stopped (SIGSTOP, a debugger) or on another host is named at once, so its user can
        // resume it.
        if waited < timeout * patience, Self.isRunning(holder: holder, identity: identity) {
          usleep(UInt32.random(in: 500...1_000))
          continue
        }
        close(fd)
        throw QueueError.writerBusy(holder: holder, seconds: Int(waited))
      }
      usleep(UInt32.random(in: pause / 2...pause))
      pause = min(pause * 2, 1_000)
    }
    let died = Self.read(fd).isWriting
    // Who holds it from now on, for the message of a writer that waits too long (the `writing` mark of a
    // holder that died inside its compare-and-swap is kept: the next holder must still see it).
    if !died { Self.write(fd, "\(identity) holding\n") }
    return WriterLock(descriptor: fd, identity: identity, previousHolderDied: died)
  }

  /// How many times `timeout` a writer waits for a holder that is running (not stopped).
  static let patience = 12.0

  /// Whether `holder` (`pid host`, as the file names it) is a process of this host that is running: not
  /// stopped, traced or a zombie (`/proc/<pid>/stat`'s state).
  static func isRunning(holder: String, identity: String) -> Bool {
    let parts = holder.split(separator: " ")
    let own = identity.split(separator: " ")
    guard parts.count == 2, own.count == 2, parts[1] == own[1], let pid = Int32(parts[0]), pid > 0 else {
      return false
    }
    let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 512)
    let count = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard count > 0, let close = buffer[0..<count].lastIndex(of: UInt8(ascii: ")")), close + 2 < count else {
      return false
    }
    return !"TtZXx".utf8.contains(buffer[close + 2])
  }

  /// Releases the lock (closing the file releases it; so does the death of the process, leaving the mark
  /// `writing` when it died inside a compare-and-swap).
  func release() {
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
    for mark in [" writing", " done", " holding"] where line.hasSuffix(mark) { line.removeLast(mark.count) }
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

extension WriterLock {
  /// The writer locks held in this process, by path and thread, so that a write nested in another on the
  /// same thread shares its lock (an `flock` taken again through another open file would wait for itself).
  final class Holders: Sendable {
    static let shared = Holders()
    private struct Key: Hashable {
      var path: String
      var thread: UInt
    }
    /// Each lock is used only by the thread it is registered for.
    private struct Held: @unchecked Sendable {
      var lock: WriterLock
    }
    private let held = Mutex<[Key: Held]>([:])

    func lock(for path: String, thread: UInt) -> WriterLock? {
      held.withLock { $0[Key(path: path, thread: thread)]?.lock }
    }

    func register(_ lock: WriterLock, for path: String, thread: UInt) {
      held.withLock { $0[Key(path: path, thread: thread)] = Held(lock: lock) }
    }

    func unregister(_ path: String, thread: UInt) {
      held.withLock { _ = $0.removeValue(forKey: Key(path: path, thread: thread)) }
    }
  }
}

/// Seconds on the monotonic clock.
func monotonicNow() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
