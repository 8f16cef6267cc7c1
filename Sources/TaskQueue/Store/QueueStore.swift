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
  /// How old a leftover `queue.lock` must be, while no git-taskq writer of this machine holds the writer
  /// lock, before it counts as abandoned. Only a dead writer or a foreign git process can hold it then, and
  /// git holds a ref lock for milliseconds.
  public var staleLockAge: TimeInterval = 1
  /// Seconds a writer waits for another process's write (the writer lock, or a young foreign ref lock)
  /// before it gives up and says who holds it.
  public var lockWait: TimeInterval = 10
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
  /// When another writer moved the ref first, the closure runs again on the new tip, after a short jittered
  /// pause, so every check it makes is against current data. A closure that changes nothing makes no
  /// commit. The closure must set `operation`.
  ///
  /// - Returns: what `body` returned on the attempt that committed.
  /// - Throws: what `body` throws (nothing is written), ``QueueError/contention(attempts:)`` when every
  ///   attempt lost, ``QueueError/writerBusy(holder:seconds:)`` or ``QueueError/locked(path:age:)`` when
  ///   another process kept the ref locked, or a ``GitError``.
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
        throw QueueError.internalError("a queue update without an operation")
      }
      let updates = try transaction.treeUpdates(repository: repository)
      let baseTree = try base.tree ?? repository.emptyTree()
      let tree = try repository.createTree(from: baseTree, applying: updates)
      let commit = try writeCommit(
        tree: tree, parents: base.commit.map { [$0] } ?? [], message: operation.message, signature: signature)
      do {
        try compareAndSwap(to: commit.id, expected: base.commit, message: "taskq: \(operation.subject)")
      } catch let error as GitError where [.modified, .exists].contains(error.code) {
        guard attempt < maximumAttempts else { throw QueueError.contention(attempts: attempt) }
        backoff(attempt)
        continue
      }
      try ensureStored(commit, tree: tree, updates: updates, subject: operation.subject) {
        _ = try transaction.treeUpdates(repository: repository)
        return try repository.createTree(from: baseTree, applying: updates)
      }
      return result
    }
  }

  /// Sleeps a random 0.2…(2^n, at most 25) ms, so colliding writers spread out.
  private func backoff(_ attempt: Int) {
    let ceiling = min(25_000, 200 << min(attempt, 7))
    usleep(UInt32(Int.random(in: 200...ceiling)))
  }

  // MARK: Writing commits and moving the ref

  /// A commit written by ``writeCommit(tree:parents:message:signature:)``: its id and exact bytes (to write
  /// it again with the same id, should it be pruned before the ref reaches it).
  struct WrittenCommit {
    var id: ObjectID
    var bytes: [UInt8]
  }

  /// Writes a queue commit and checks, by reading it back, that its parents and tree are exactly the ones
  /// asked for, so a commit corrupted on its way through libgit2 can never reach the ref.
  ///
  /// - Throws: ``QueueError/internalError(_:)`` when the commit read back differs (nothing is written to the
  ///   ref), or a ``GitError``.
  func writeCommit(tree: ObjectID, parents: [ObjectID], message: String, signature: Signature) throws
    -> WrittenCommit
  {
    let bytes = try repository.commitBytes(tree: tree, parents: parents, message: message, signature: signature)
    let id = try repository.writeObject(bytes, kind: .commit)
    let written = try repository.commit(id)
    guard written.parentIDs == parents, written.treeID == tree else {
      let found = written.parentIDs.map(\.hex).joined(separator: ",")
      let expected = parents.map(\.hex).joined(separator: ",")
      throw QueueError.internalError(
        "commit \(id.hex) has parents [\(found)] and tree \(written.treeID.hex), expected [\(expected)] and \(tree.hex); the queue was not changed"
      )
    }
    return WrittenCommit(id: id, bytes: bytes)
  }

  /// Moves the queue ref from `expected` to `new` with one compare-and-swap, holding the writer lock (see
  /// ``WriterLock``) and logging the update in the ref's reflog.
  ///
  /// A `queue.lock` found while holding the writer lock belongs to no live git-taskq writer of this
  /// machine: once it is ``staleLockAge`` old it is removed (with a warning) and the swap is tried again.
  ///
  /// - Throws: ``GitError`` `.modified`/`.exists` when the ref moved (the caller retries on a fresh
  ///   snapshot), ``QueueError/writerBusy(holder:seconds:)``, ``QueueError/locked(path:age:)``.
  func compareAndSwap(to new: ObjectID, expected: ObjectID?, message: String) throws {
    let lock = try WriterLock.acquire(path: writerLockPath, identity: "\(getpid()) \(Host.name)", timeout: lockWait)
    defer { lock.release() }
    // Tests stop a writer here, holding the lock, to show that nobody else takes the queue from it.
    if getenv("TASKQ_TEST_STOP_WHILE_LOCKED") != nil { raise(SIGSTOP) }
    try repository.ensureReflog(for: Layout.refName)
    let start = monotonicNow()
    while true {
      do {
        try repository.updateReference(Layout.refName, to: new, expected: expected, message: message)
        return
      } catch let error as GitError where error.code == .locked {
        switch removeAbandonedLock() {
        case .removed, .gone:
          continue
        case .tooYoung where monotonicNow() - start < lockWait:
          usleep(20_000)
        case .tooYoung, .cannotRemove:
          throw QueueError.locked(path: lockPath, age: Int(lockAge() ?? 0))
        }
      }
    }
  }

  /// After the compare-and-swap: when the commit, its tree or a blob it added is gone (a
  /// `git gc --prune=now` ran between writing them and moving the ref), writes them again, with the same
  /// ids, so the ref never stays on a missing object by our doing.
  private func ensureStored(
    _ commit: WrittenCommit, tree: ObjectID, updates: [TreeUpdate], subject: String,
    rewriteTree: () throws -> ObjectID
  ) throws {
    let blobs = updates.compactMap { update -> ObjectID? in
      if case .upsertBlob(let id) = update.action { return id }
      return nil
    }
    guard try !([commit.id, tree] + blobs).allSatisfy({ try repository.objectExists($0) }) else { return }
    let again = try rewriteTree()
    guard again == tree, try repository.writeObject(commit.bytes, kind: .commit) == commit.id else {
      throw QueueError.internalError("rewriting the pruned objects of '\(subject)' gave other ids")
    }
    warn(
      "warning: objects of '\(subject)' were pruned while it was written (a concurrent 'git gc --prune=now'?); wrote them again"
    )
  }

  /// The lock file libgit2 holds while it updates the ref.
  public var lockPath: String { repository.commonDirectory + Layout.refName + ".lock" }

  /// The file this machine's writers `flock` around their compare-and-swap (see ``WriterLock``).
  public var writerLockPath: String { repository.commonDirectory + "taskq/queue.writer" }

  /// Seconds since the ref's lock file was written, or `nil` when there is none.
  public func lockAge() -> TimeInterval? {
    var info = stat()
    guard stat(lockPath, &info) == 0 else { return nil }
    return age(of: info)
  }

  /// The age of a `queue.lock` that no live git-taskq writer of this machine holds and that is at least
  /// ``staleLockAge`` old (a writer died inside its compare-and-swap), or `nil`.
  public func abandonedLockAge() -> TimeInterval? {
    guard let age = lockAge(), age >= staleLockAge, !WriterLock.isHeld(path: writerLockPath) else { return nil }
    return age
  }

  enum LockRemoval { case removed, gone, tooYoung, cannotRemove }

  /// Removes `queue.lock`; the caller holds the writer lock, so no git-taskq writer of this machine owns it.
  private func removeAbandonedLock() -> LockRemoval {
    var info = stat()
    guard lstat(lockPath, &info) == 0 else { return .gone }
    let age = age(of: info)
    guard age >= staleLockAge else { return .tooYoung }
    guard unlink(lockPath) == 0 else { return errno == ENOENT ? .gone : .cannotRemove }
    warn("warning: removed a stale lock '\(lockPath)' (\(Int(age))s old) left by a writer that died")
    return .removed
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
