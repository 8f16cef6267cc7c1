import Foundation
import Git

#if canImport(Glibc)
import Glibc
#endif

/// The queue on `refs/taskq/queue`: snapshot reads and transactional, compare-and-swap writes.
///
/// Not `Sendable` (it holds a ``Repository``): open one store per thread or process.
public final class QueueStore {
  public let repository: Repository
  /// `host:pid` of this process, written into records and trailers.
  public let worker: String
  /// Where warnings go (a recovered stale lock); the command line prints them on stderr.
  public var warn: (String) -> Void = { _ in }
  /// How old a leftover `queue.lock` must be before it counts as abandoned. Ref locks are held for
  /// microseconds, so seconds mean its writer died.
  public var staleLockAge: TimeInterval = 5
  /// Upper bound on compare-and-swap attempts of one update.
  public var maximumAttempts = 200

  let signature: Signature

  public init(repository: Repository, worker: String = QueueStore.defaultWorker()) {
    self.repository = repository
    self.worker = worker
    self.signature =
      repository.configuredSignature()
      ?? Signature(name: "git-taskq", email: "\(ProcessInfo.processInfo.userName)@\(Host.name)")
  }

  /// `host:pid` of this process.
  public static func defaultWorker() -> String { "\(Host.name):\(getpid())" }

  /// The commit the ref points at, `nil` before the first write.
  public func tip() throws -> ObjectID? { try repository.referenceTarget(Layout.refName) }

  /// The queue at the ref's tip.
  public func snapshot() throws -> QueueSnapshot {
    try QueueSnapshot.load(repository: repository, commit: try tip())
  }

  /// The queue at any queue commit.
  public func snapshot(at commit: ObjectID?) throws -> QueueSnapshot {
    try QueueSnapshot.load(repository: repository, commit: commit)
  }

  /// Applies `body` to a fresh snapshot and commits the result with one compare-and-swap of the ref.
  ///
  /// When another writer moved the ref first (or holds its lock at that instant), the closure runs again on
  /// the new tip, after a short jittered pause, so every check it makes is against current data. A closure
  /// that changes nothing makes no commit. The closure must set `operation`.
  ///
  /// - Returns: what `body` returned on the attempt that committed.
  /// - Throws: what `body` throws (nothing is written), ``QueueError/contention(attempts:)`` when every
  ///   attempt lost, or a ``GitError``.
  @discardableResult
  public func update<T>(_ body: (inout QueueTransaction) throws -> T) throws -> T {
    var attempt = 0
    while true {
      attempt += 1
      let base = try snapshot()
      var transaction = QueueTransaction(base: base, worker: worker, now: Timestamp.nowSeconds())
      let result = try body(&transaction)
      guard transaction.hasChanges else { return result }
      guard let operation = transaction.operation else {
        throw QueueError.git("internal error: a queue update without an operation (please report this bug)")
      }
      let updates = try transaction.treeUpdates(repository: repository)
      let baseTree = try base.tree ?? repository.emptyTree()
      let tree = try repository.createTree(from: baseTree, applying: updates)
      let commit = try repository.createCommit(
        tree: tree, parents: base.commit.map { [$0] } ?? [], message: operation.message, signature: signature)
      do {
        try repository.updateReference(
          Layout.refName, to: commit, expected: base.commit, message: "taskq: \(operation.subject)")
        return result
      } catch let error as GitError where [.modified, .exists, .locked].contains(error.code) {
        if error.code == .locked, let age = lockAge(), age >= 0.5 {
          // A lock held this long is not a racing writer (they hold it for microseconds) but most likely
          // one that died: wait until it counts as stale and remove it, without spending attempts.
          if recoverStaleLock() { continue }
          guard age <= staleLockAge + 5 else { throw QueueError.locked(path: lockPath, age: Int(age)) }
          usleep(100_000)
          attempt -= 1
          continue
        }
        guard attempt < maximumAttempts else { throw QueueError.contention(attempts: attempt) }
        backoff(attempt)
      }
    }
  }

  /// Sleeps a random 0.2…(2^n, at most 25) ms, so colliding writers spread out.
  private func backoff(_ attempt: Int) {
    let ceiling = min(25_000, 200 << min(attempt, 7))
    usleep(UInt32(Int.random(in: 200...ceiling)))
  }

  /// The lock file a writer holds while it updates the ref.
  public var lockPath: String { repository.commonDirectory + Layout.refName + ".lock" }

  /// Removes `refs/taskq/queue.lock` when it is older than ``staleLockAge`` (its writer was killed).
  ///
  /// Recovery runs under an `flock` so that two recovering processes cannot remove a fresh lock that a third
  /// took between one's check and its removal; the lock's inode is checked again under it.
  /// Seconds since the ref's lock file was written, or `nil` when there is none.
  public func lockAge() -> TimeInterval? {
    var info = stat()
    guard stat(lockPath, &info) == 0 else { return nil }
    return age(of: info)
  }

  @discardableResult
  func recoverStaleLock() -> Bool {
    var before = stat()
    guard stat(lockPath, &before) == 0, age(of: before) > staleLockAge else { return false }
    let guardDirectory = repository.commonDirectory + "taskq"
    mkdir(guardDirectory, 0o755)
    let fd = open(guardDirectory + "/lock-recovery", O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    guard flock(fd, LOCK_EX) == 0 else { return false }
    defer { flock(fd, LOCK_UN) }
    var now = stat()
    // Gone already (another process recovered it): the caller simply retries.
    guard stat(lockPath, &now) == 0 else { return true }
    guard now.st_ino == before.st_ino, age(of: now) > staleLockAge else { return false }
    guard unlink(lockPath) == 0 else { return false }
    warn("warning: removed a stale lock '\(lockPath)' (\(Int(age(of: now)))s old) left by a writer that died")
    return true
  }

  private func age(of info: stat) -> TimeInterval {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return TimeInterval(ts.tv_sec - info.st_mtim.tv_sec) + TimeInterval(ts.tv_nsec - info.st_mtim.tv_nsec) / 1e9
  }

  /// The operations recorded in the ref's history, newest first, optionally for one task only.
  public func history(task: String? = nil, limit: Int? = nil) throws -> [HistoryEntry] {
    guard let tip = try tip() else { return [] }
    var entries: [HistoryEntry] = []
    try repository.walk(from: tip) { commit in
      guard let operation = Operation.parse(message: commit.message) else { return true }
      if let task, operation.task != task { return true }
      let subject = commit.message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
      entries.append(HistoryEntry(commit: commit.id, time: Int(commit.time), subject: subject, operation: operation))
      return limit.map { entries.count < $0 } ?? true
    }
    return entries
  }
}

/// One commit of the queue's history.
public struct HistoryEntry: Sendable, Equatable {
  public var commit: ObjectID
  public var time: Int
  /// The commit's subject line, as written.
  public var subject: String
  public var operation: Operation
}

/// The host name, once.
enum Host {
  static let name: String = {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }()
}
