import Git
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
  /// Seconds a writer waits for another process's write (the writer lock, or a foreign git process's
  /// `queue.lock`) before it gives up and says who holds it.
  public var lockWait: TimeInterval = 10
  /// Upper bound on compare-and-swap attempts of one update.
  public var maximumAttempts = 200
  /// The time written into records (`updated_at`, leases) and compared with leases; tests move it.
  public var clock: any WallClock = SystemClock()

  let signature: Signature
  /// Whether this process already stopped itself for a test (`TASKQ_TEST_STOP_WHILE_LOCKED`).
  private static let stoppedForTests = Atomic<Bool>(false)

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
    let tip = try tip()
    // The tip is still this store's last write: its tree and `taskq.json` are known, nothing to read back.
    if let tip, let written = lastWritten, written.commit == tip {
      return QueueSnapshot(repository: repository, commit: tip, tree: written.tree, meta: written.meta)
    }
    return try QueueSnapshot.load(repository: repository, commit: tip)
  }

  /// What this store's last write put at the tip: its commit, root tree and `taskq.json`.
  private var lastWritten: (commit: ObjectID, tree: Tree, meta: QueueMeta)?

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
    // Holding this machine's writer lock from the read to the swap: the writers of one machine take turns
    // (4 workers claiming at once all chose the same next task, and three of four threw their work away).
    // The compare-and-swap stays the guard: against other machines' syncs and foreign git processes, and
    // against a write nested in `body` on this thread (which shares the lock, see `withWriterLock`).
    try withWriterLock { _ in try attemptUpdates(body) }
  }

  private func attemptUpdates<T>(_ body: (inout QueueTransaction) throws -> T) throws -> T {
    var attempt = 0
    while true {
      attempt += 1
      let base = try snapshot()
      var transaction = QueueTransaction(base: base, worker: worker, now: clock.nowSeconds())
      let result = try body(&transaction)
      guard transaction.hasChanges else { return result }
      guard let operation = transaction.operation else {
        throw QueueError.internalError(InternalError("a queue update without an operation"))
      }
      let baseTree = base.tree?.id
      let updates: [TreeUpdate]
      let edit: TreeEdit
      let commit: WrittenCommit
      do {
        updates = try transaction.treeUpdates(repository: repository)
        // A tree of the tip missing from the database is the unreadable tip that `fsck --repair` mends.
        edit = try base.readable { try repository.editTree(baseTree, applying: updates) }
        commit = try writeCommit(
          tree: edit.root, parents: base.commit.map { [$0] } ?? [], message: operation.message,
          signature: signature)
      } catch let error as GitError where attempt < maximumAttempts && Self.isRacedByGitGC(error) {
        // A `git gc` (git fetch starts one in the background) removed an empty objects/xx directory while
        // libgit2 wrote a loose object into it: write again.
        backoff(attempt)
        continue
      }
      do {
        try compareAndSwap(to: commit.id, expected: base.commit, message: "taskq: \(operation.subject)")
      } catch let error as GitError where [.modified, .exists].contains(error.code) {
        guard attempt < maximumAttempts else { throw QueueError.contention(attempts: attempt) }
        backoff(attempt)
        continue
      } catch let error as GitError
        // An odb that cannot even answer counts as holding it: the error is not ours to mask.
        where attempt < maximumAttempts && !((try? repository.objectExists(commit.id)) ?? true)
      {
        // The commit vanished before the swap (a concurrent `git gc --prune=now` found it unreachable):
        // libgit2 refused a target that does not exist. Write everything again.
        warn(
          "warning: '\(operation.subject)' was pruned before it reached the ref (\(error.message)); writing it again")
        continue
      }
      try ensureStored(commit, objects: edit.written, updates: updates, subject: operation.subject) {
        _ = try transaction.treeUpdates(repository: repository)
        return try repository.editTree(baseTree, applying: updates).root
      }
      lastWritten = (commit.id, try repository.tree(edit.root), transaction.meta)
      return result
    }
  }

  /// Whether writing an object failed because a concurrent `git gc` pruned the directory it was going to
  /// (libgit2: "failed to rename lockfile to objects/xx/…: No such file or directory").
  static func isRacedByGitGC(_ error: GitError) -> Bool {
    ["git_tree_create_updated", "git_odb_write"].contains(error.function)
      && (error.message.contains("rename") || error.message.contains("No such file or directory"))
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

  /// Writes a queue commit and checks that its parents and tree are exactly the ones asked for, so a commit
  /// corrupted on its way through libgit2 (a pointer freed before `git_commit_create_buffer` read it) can
  /// never reach the ref.
  ///
  /// The check reads the commit's header from the very bytes that are written (their hash is the commit's
  /// id), not from the object database: reading the just-written object back cost a file open and an
  /// inflate per write and checked nothing more.
  ///
  /// - Throws: ``QueueError/internalError(_:)`` when the commit's header differs (nothing is written to the
  ///   ref), or a ``GitError``.
  func writeCommit(tree: ObjectID, parents: [ObjectID], message: String, signature: Signature) throws
    -> WrittenCommit
  {
    let bytes = try repository.commitBytes(tree: tree, parents: parents, message: message, signature: signature)
    let header = Self.commitHeader(bytes)
    guard header.parents == parents.map(\.hex), header.tree == tree.hex else {
      let found = header.parents.joined(separator: ",")
      let expected = parents.map(\.hex).joined(separator: ",")
      throw QueueError.internalError(
        InternalError(
          "a commit has parents [\(found)] and tree \(header.tree ?? "none"), expected [\(expected)] and \(tree.hex); the queue was not changed"
        ))
    }
    let id = try repository.writeObject(bytes, kind: .commit)
    return WrittenCommit(id: id, bytes: bytes)
  }

  /// The `tree` and `parent` lines at the head of a commit object's bytes (hex ids as written).
  static func commitHeader(_ bytes: [UInt8]) -> (tree: String?, parents: [String]) {
    var tree: String?
    var parents: [String] = []
    var start = 0
    while start < bytes.count {
      let end = bytes[start...].firstIndex(of: 0x0A) ?? bytes.count
      let line = bytes[start..<end]
      if line.starts(with: Array("tree ".utf8)), tree == nil, parents.isEmpty {
        tree = String(decoding: line.dropFirst(5), as: UTF8.self)
      } else if line.starts(with: Array("parent ".utf8)), tree != nil {
        parents.append(String(decoding: line.dropFirst(7), as: UTF8.self))
      } else {
        break
      }
      start = end + 1
    }
    return (tree, parents)
  }

  /// Moves the queue ref from `expected` to `new` with one compare-and-swap, holding the writer lock (see
  /// ``WriterLock``) and logging the update in the ref's reflog.
  ///
  /// A `queue.lock` found while holding the writer lock belongs to no live git-taskq writer of this
  /// machine: when the previous holder died inside its swap (see ``WriterLock``) it is removed, with a
  /// warning, and the swap is tried again; any other is a foreign git process's, waited for, never removed.
  ///
  /// - Throws: ``GitError`` `.modified`/`.exists` when the ref moved (the caller retries on a fresh
  ///   snapshot), ``QueueError/writerBusy(holder:seconds:)``, ``QueueError/locked(path:age:)``.
  func compareAndSwap(to new: ObjectID, expected: ObjectID?, message: String) throws {
    try withWriterLock { lock in
      lock.markWriting()
      defer { lock.markDone() }
      try swapHoldingLock(to: new, expected: expected, message: message, lock: lock)
    }
  }

  private func swapHoldingLock(to new: ObjectID, expected: ObjectID?, message: String, lock: WriterLock) throws {
    // Tests stop a writer here (at its first swap), holding the lock, to show that nobody else takes the
    // queue from it.
    if getenv("TASKQ_TEST_STOP_WHILE_LOCKED") != nil, !Self.stoppedForTests.exchange(true, ordering: .relaxed) {
      raise(SIGSTOP)
    }
    do {
      try repository.ensureReflog(for: Layout.refName)
    } catch let error as GitError {
      let log = repository.commonDirectory + "logs/" + Layout.refName
      throw QueueError.reflogNotWritable(path: log, reason: error.message)
    }
    let start = monotonicNow()
    var deadWritersLock = lock.takePreviousHolderDied()
    while true {
      do {
        try repository.updateReference(Layout.refName, to: new, expected: expected, message: message)
        return
      } catch let error as GitError where error.code == .locked {
        // Holding the writer lock, no live git-taskq writer owns queue.lock. It is the previous holder's
        // when that one died inside its compare-and-swap: remove it, once. Anything else is a foreign git
        // process's (alive, or crashed): wait for it, never remove it.
        if deadWritersLock {
          deadWritersLock = false
          if try removeDeadWritersLock() { continue }
        }
        guard monotonicNow() - start < lockWait else {
          throw QueueError.locked(path: lockPath, age: Int(lockAge() ?? 0))
        }
        usleep(20_000)
      }
    }
  }

  /// Runs `body` holding this machine's writer lock (see ``WriterLock``) on this store's repository.
  ///
  /// Re-entrant per thread: a write made inside `body` on the same thread (a nested update, through this
  /// store or another of the same repository) shares the lock instead of waiting for itself. Other threads
  /// and processes wait, up to ``lockWait``.
  func withWriterLock<T>(_ body: (WriterLock) throws -> T) throws -> T {
    let path = writerLockPath
    let thread = UInt(pthread_self())
    if let held = WriterLock.Holders.shared.lock(for: path, thread: thread) {
      return try body(held)
    }
    let lock = try WriterLock.acquire(path: path, identity: "\(getpid()) \(Host.name)", timeout: lockWait)
    WriterLock.Holders.shared.register(lock, for: path, thread: thread)
    defer {
      WriterLock.Holders.shared.unregister(path, thread: thread)
      lock.release()
    }
    return try body(lock)
  }

  /// After the compare-and-swap: when the commit, a tree or a blob it added is gone (a
  /// `git gc --prune=now` ran between writing them and moving the ref), writes them again, with the same
  /// ids, so the ref never stays on a missing object by our doing. (A prune that decided before the swap
  /// and deletes after this check is beyond reach: `fsck --repair` is the remedy.)
  ///
  /// - Parameters:
  ///   - commit: the commit that reached the ref.
  ///   - objects: the root tree first, then every tree the write created below it.
  ///   - updates: the tree updates of the write (their blobs are checked).
  ///   - subject: the operation, for the warning.
  ///   - rewriteTree: writes the blobs and trees again and returns the root tree's id.
  /// - Throws: ``QueueError/internalError(_:)`` when writing them again gives other ids, or a ``GitError``.
  private func ensureStored(
    _ commit: WrittenCommit, objects: [ObjectID], updates: [TreeUpdate], subject: String,
    rewriteTree: () throws -> ObjectID
  ) throws {
    let blobs = updates.compactMap { update -> ObjectID? in
      if case .upsertBlob(let id) = update.action { return id }
      return nil
    }
    guard try !([commit.id] + objects + blobs).allSatisfy({ try repository.objectExists($0) }) else { return }
    let again = try rewriteTree()
    guard again == objects.first, try repository.writeObject(commit.bytes, kind: .commit) == commit.id else {
      throw QueueError.internalError(InternalError("rewriting the pruned objects of '\(subject)' gave other ids"))
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

  /// A `queue.lock` that no live git-taskq writer of this machine is using.
  public enum StaleLock: Equatable, Sendable {
    /// Left by a git-taskq writer that died inside its compare-and-swap: the next write removes it.
    case leftByDeadWriter(age: Int)
    /// Held by another git process (`git gc`, `git update-ref`), or left by one that crashed: never removed
    /// by git-taskq, as git never removes another process's lock.
    case foreign(age: Int)
  }

  /// The `queue.lock` no live git-taskq writer of this machine is using, or `nil` (none, or a writer is at
  /// work).
  public func staleLock() -> StaleLock? {
    guard let age = lockAge() else { return nil }
    let writer = WriterLock.state(path: writerLockPath)
    if writer.isHeld { return nil }
    return writer.lastHolderDied ? .leftByDeadWriter(age: Int(age)) : .foreign(age: Int(age))
  }

  /// Removes `queue.lock` left by the previous holder of the writer lock, who died inside its
  /// compare-and-swap (the caller holds the writer lock). Returns whether the swap should be tried again.
  private func removeDeadWritersLock() throws -> Bool {
    var info = stat()
    guard lstat(lockPath, &info) == 0 else { return true }
    guard (info.st_mode & S_IFMT) != S_IFDIR, unlink(lockPath) == 0 || errno == ENOENT else { return false }
    warn(
      "warning: removed a stale lock '\(lockPath)' (\(Int(age(of: info)))s old) left by a git-taskq writer that died")
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
    // The queue's history is linear (docs/storage-format.md): first parents, read only as far as `limit`
    // needs (a sorted walk reads the whole history first: `cancel` printing its own commit read them all).
    try repository.walk(from: tip, firstParent: true) { commit in
      guard let operation = Operation.parse(message: commit.message) else { return true }
      if let task, operation.task != task { return true }
      // A commit from a remote is untrusted: its subject is cut like a trailer (a forged 5 MB subject
      // would otherwise be one 5 MB line of `log`).
      var subject = commit.message.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? ""
      if subject.count > RecordRules.maximumTrailerLength {
        subject = String(subject.prefix(RecordRules.maximumTrailerLength - 1)) + "…"
      }
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
