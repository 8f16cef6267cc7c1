import Git
import Synchronization

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

/// One local operation that no longer applies on top of the remote's queue, and why.
public struct DroppedOperation: Sendable, Equatable, CustomStringConvertible {
  public var operation: Operation
  public var reason: String
  public var description: String { "\(operation.task): \(operation.kind) dropped: \(reason)" }
}

/// What a sync did.
public struct SyncReport: Sendable, Equatable {
  public enum Action: Sendable, Equatable {
    case upToDate, fastForwardedLocal, pushed, replayed, created, nothingToSync
  }
  public var remote: String
  public var action: Action
  /// Commits the local queue gained from the remote.
  public var received = 0
  /// Local commits published (as they were, or replayed).
  public var sent = 0
  public var dropped: [DroppedOperation] = []
  /// Tasks whose recovery on the remote ("worker lost") was superseded: their worker went on with the same
  /// attempt after all (it still runs, or its steps finished the attempt), so its steps replayed over the
  /// recovery.
  public var superseded: [String] = []
  /// How many attempts it took (each lost push starts again from the fetch).
  public var attempts = 1
  /// The local tip that shared no commit with the remote's queue (a queue started here before the first
  /// sync), whose every operation was replayed onto the remote's; `nil` when the histories are related.
  public var unrelatedLocalTip: String?

  /// One line for people.
  public var summary: String {
    switch action {
    case .nothingToSync: return "sync \(remote): nothing to sync (no queue here or there)"
    case .upToDate: return "sync \(remote): up to date"
    case .created: return "sync \(remote): created the remote queue (\(sent) commit(s))"
    case .fastForwardedLocal: return "sync \(remote): fast-forwarded the local queue by \(received) commit(s)"
    case .pushed: return "sync \(remote): pushed \(sent) commit(s)"
    case .replayed:
      let drops = dropped.isEmpty ? "" : ", \(dropped.count) dropped"
      // Nothing replayed: the local queue just took the remote's, and nothing was pushed.
      let pushed = sent == 0 ? "" : ", pushed"
      return "sync \(remote): received \(received) commit(s), replayed \(sent) local operation(s)\(drops)\(pushed)"
    }
  }
}

/// Brings the local `refs/taskq/queue` and a remote's together, never with a text merge or a forced push.
///
/// - One side behind: fast-forward it (locally with a compare-and-swap, remotely with a plain push).
/// - Both moved: replay the local operations since the merge base (read from their `Taskq-*` trailers; all
///   of them when the histories share no commit) on top of the remote tip. An operation applies when its task is still in the state it started from
///   (`Taskq-From`); it then brings the task's directory as the local commit left it (keeping the remote's
///   `seq`, renumbering added tasks after the remote's). Others are dropped and reported.
/// - The push is a plain push: a rejection means someone wrote first, and the whole sync starts again
///   (bounded).
public final class QueueSync {
  public let store: QueueStore
  let transport: any QueueTransport
  public var maximumAttempts = 25
  /// Whether the worker of that name, which made unpublished steps on this clone, still runs.
  ///
  /// Asked only for a step that would supersede the remote's recovery of its task ("worker lost"): a dead
  /// worker's step is dropped then, unless its steps finish the attempt (docs/sharing.md, "Leases, renewal
  /// and recovery").
  /// The store's own worker is alive without asking. The default says every worker is alive (nothing is
  /// dropped on a guess: the rule before liveness was checked); TaskQueue cannot tell a process apart, so
  /// the Orchestrator sets the real check (`QueueSync.forRemote`).
  public var isWorkerAlive: (String) -> Bool = { _ in true }

  public init(store: QueueStore, transport: any QueueTransport) {
    self.store = store
    self.transport = transport
  }

  /// How many writers (machines' workers) share the remote, as the caller sees them: after a refused push
  /// the pause before the next attempt grows with them (see ``retryPause(attempt:)``). 1 by default.
  public var contenders = 1

  /// How long the last attempt (fetch, replay, push) took, in seconds.
  var lastAttemptSeconds = 0.0

  /// The longest pause before an attempt after a refused push, in seconds: 40 ms per attempt so far (at
  /// most 0.4 s), or, when more writers than one share the remote, half an attempt's time for each other
  /// writer (at most 1 s): every refusal means another writer landed, and the others are trying too; all
  /// of them fetching and pushing again at once would have most of them refused again, and on one busy
  /// machine (or server) that costs the winner its time. The writers are ``contenders`` (as the caller
  /// counts them) or those the last fetch saw landing (``writersSeenLanding``), whichever is more. An
  /// optimistic push that is refused pauses too before its fetch.
  func retryPause(attempt: Int) -> Double {
    let base = min(0.4, 0.04 * Double(attempt))
    let contenders = max(contenders, writersSeenLanding + 1)
    guard contenders > 1 else { return base }
    return min(1, max(base, 0.5 * Double(contenders - 1) * lastAttemptSeconds))
  }

  /// How many other writers landed commits on the remote between this instance's last two looks at it (the
  /// workers named by the commits a fetch brought that were not there before): the contention as the remote
  /// shows it, which a caller that cannot count its peers (a publisher, a first claim) does not know.
  private(set) var writersSeenLanding = 0

  /// Notes the writers of the remote's commits from `tip` back to `before` (at most 64 commits).
  private func noteWritersLanding(tip: ObjectID, before: ObjectID?) {
    guard let before, before != tip else {
      writersSeenLanding = 0
      return
    }
    var writers = Set<String>()
    var read = 0
    try? store.repository.walk(from: tip, hiding: before) { commit in
      read += 1
      if let operation = Operation.parse(message: commit.message), operation.worker != store.worker {
        writers.insert(operation.worker)
      }
      return read < 64
    }
    writersSeenLanding = writers.count
  }

  /// Consecutive pushes refused because of the same lock file on the remote.
  private var lockedRejections = 0
  private var lastLockFile: String?
  /// A live writer holds a ref lock for milliseconds: this many refusals in a row (over ~0.5 s of backoff)
  /// because of the same lock file mean it was left behind.
  static let staleRemoteLockRejections = 6

  /// ` (lock file '<path>' exists)` when git's output says a ref lock could not be created, else empty.
  public static func lockNote(_ output: String) -> String {
    guard let range = output.firstRange(of: "Unable to create '") else { return "" }
    let rest = output[range.upperBound...]
    guard let end = rest.firstRange(of: ".lock'") else { return "" }
    let path = String(rest[..<end.lowerBound]) + ".lock"
    return " (lock file '\(path.replacing("/./", with: "/"))' exists)"
  }

  static func lockFile(in summary: String) -> String? {
    guard let range = summary.firstRange(of: " (lock file '"), let end = summary.ranges(of: "' exists)").last
    else { return nil }
    return String(summary[range.upperBound..<end.lowerBound])
  }

  public static func trackingRef(for remote: String) -> String { "refs/taskq/remotes/\(remote)/queue" }

  private static let processLock = Mutex(())

  /// Syncs with `remote`.
  ///
  /// - Throws: ``QueueError`` for a missing remote or a newer format;
  ///   ``TransportError`` when the remote cannot be reached.
  public func sync(remote: String) throws -> SyncReport {
    try checkRemote(remote)
    // One sync at a time per process: workers of one `run` share the local ref and the tracking ref.
    return try Self.processLock.withLock { _ in try syncLocked(remote: remote) }
  }

  /// Remotes this instance has found configured: looked up once (a `git remote get-url` each time would be
  /// one more process per sync).
  private var knownRemotes: Set<String> = []

  private func checkRemote(_ remote: String) throws {
    guard Self.isValidRemoteName(remote) else {
      throw QueueError.invalidValue(key: "remote", value: remote, expected: "a remote name such as 'origin'")
    }
    if knownRemotes.contains(remote) { return }
    guard try transport.remoteExists(remote) else {
      throw QueueError.noSuchRemote(remote)
    }
    knownRemotes.insert(remote)
  }

  /// Publishes the local queue with one round trip when it can: when the local queue descends from the
  /// remote's as last fetched (the tracking ref), it is pushed at once, without a fetch first. Only when
  /// that push is refused (someone else wrote first), or the local queue does not descend from the last
  /// fetch, does this fall back to a whole ``sync(remote:)`` (fetch, replay, push). With nothing new
  /// locally since the last fetch or push, it does nothing and touches no network.
  ///
  /// The push is the same compare-and-swap as a sync's: a plain push that the server takes only as a
  /// fast-forward of its queue, so an optimistic push can never overwrite another machine's commits.
  ///
  /// - Throws: as ``sync(remote:)``.
  public func publish(remote: String) throws -> SyncReport {
    try checkRemote(remote)
    return try Self.processLock.withLock { _ in
      let tracking = Self.trackingRef(for: remote)
      if let local = try store.tip(), let fetched = try store.repository.referenceTarget(tracking) {
        if local == fetched { return SyncReport(remote: remote, action: .upToDate) }
        if try store.repository.isAncestor(fetched, of: local) {
          var report = SyncReport(remote: remote, action: .pushed)
          report.sent = try store.repository.history(from: local, hiding: fetched).count
          if let done = try publish(local, remote: remote, tracking: tracking, report: report).completed {
            return done
          }
          // Refused: another writer landed just now, and those refused with it fetch at once too.
          pauseAfterRefusal(attempt: 1)
        }
      }
      return try syncLocked(remote: remote)
    }
  }

  /// Fetches `remote` and brings the local queue on top of it (a fast-forward, or a replay of the local
  /// operations onto the remote's tip), without pushing: for a caller that is about to add commits and then
  /// push everything at once with ``publish(remote:)``, when the remote moves so often that an optimistic
  /// push would mostly be refused (a claim round among busy machines: one fetch and one push instead of a
  /// refused push, a fetch and a push). The report's `received` says whether the remote had moved;
  /// unpublished local commits stay unpublished (`sent` counts those replayed).
  ///
  /// - Throws: as ``sync(remote:)``.
  public func refresh(remote: String) throws -> SyncReport {
    try checkRemote(remote)
    return try Self.processLock.withLock { _ in try syncLocked(remote: remote, pushing: false) }
  }

  /// ``sync(remote:)`` with the process lock held (without its push when `pushing` is false).
  private func syncLocked(remote: String, pushing: Bool = true) throws -> SyncReport {
    var attempt = 0
    lockedRejections = 0
    while true {
      attempt += 1
      let started = Date()
      let outcome = try syncOnce(remote: remote, pushing: pushing)
      lastAttemptSeconds = Date().timeIntervalSince(started)
      if var report = outcome.completed {
        ShareHint.markKnown(repository: store.repository)
        report.attempts = attempt
        return report
      }
      if lockedRejections >= Self.staleRemoteLockRejections, let lock = lastLockFile {
        throw QueueError.staleRemoteLock(remote: remote, lockFile: lock)
      }
      guard attempt < maximumAttempts else {
        throw QueueError.contention(attempts: attempt)
      }
      pauseAfterRefusal(attempt: attempt)
    }
  }

  /// Sleeps a random time up to ``retryPause(attempt:)`` (at least 10 ms) after a refused push.
  private func pauseAfterRefusal(attempt: Int) {
    usleep(UInt32(Int.random(in: 10_000...max(10_000, Int(retryPause(attempt: attempt) * 1_000_000)))))
  }

  /// The remote-tracking tip, if fetched before.
  public func trackingTip(remote: String) throws -> ObjectID? {
    try store.repository.referenceTarget(Self.trackingRef(for: remote))
  }

  /// Commits only local / only remote since their merge base (all of each when they share none, as the
  /// next sync replays every local one), or `nil` when the remote's queue was never fetched.
  public func divergence(remote: String) throws -> (ahead: Int, behind: Int)? {
    guard let remoteTip = try trackingTip(remote: remote) else { return nil }
    guard let localTip = try store.tip() else { return (0, try store.repository.history(from: remoteTip).count) }
    if localTip == remoteTip { return (0, 0) }
    let base = try store.repository.mergeBase(localTip, remoteTip)
    let ahead = try store.repository.history(from: localTip, hiding: base).count
    let behind = try store.repository.history(from: remoteTip, hiding: base).count
    return (ahead, behind)
  }

  static func isValidRemoteName(_ name: String) -> Bool {
    !name.isEmpty && !name.hasPrefix("-") && !name.contains("..")
      && name.allSatisfy { $0.isLetter || $0.isNumber || "._-/".contains($0) } && Repository.isValidBranchName(name)
  }

  // MARK: One attempt

  private func syncOnce(remote: String, pushing: Bool = true) throws -> SyncAttempt {
    let repository = store.repository
    let tracking = Self.trackingRef(for: remote)
    let trackedBefore = try repository.referenceTarget(tracking)
    let fetched = try transport.fetch(remote: remote, into: tracking)
    let remoteTip = fetched == .noQueue ? nil : try repository.referenceTarget(tracking)
    if let remoteTip, let problem = Self.notAQueue(remoteTip, in: repository) {
      // The remote's ref holds something else (a blob, a commit of the code): the remote is at fault, not the
      // local queue; the tracking ref goes back to the last queue fetched, so nothing here changes.
      if let trackedBefore {
        try? repository.updateReference(
          tracking, to: trackedBefore, expected: remoteTip, message: "taskq: the remote's ref is no queue")
      } else {
        try? repository.deleteReference(tracking)
      }
      throw QueueError.remoteNotAQueue(remote: remote, problem: problem)
    }
    if let remoteTip { _ = try store.snapshot(at: remoteTip) }  // refuses a newer format
    if let remoteTip { noteWritersLanding(tip: remoteTip, before: trackedBefore) }
    let localTip = try store.tip()
    var report = SyncReport(remote: remote, action: .upToDate)

    switch (localTip, remoteTip) {
    case (nil, nil):
      report.action = .nothingToSync
      return report.done()
    case (_?, nil) where !pushing:
      return report.done()
    case (let local?, nil):
      report.sent = try repository.history(from: local).count
      report.action = .created
      return try publish(local, remote: remote, tracking: tracking, report: report)
    case (nil, let theirs?):
      report.received = try repository.history(from: theirs).count
      report.action = .fastForwardedLocal
      return try moveLocal(from: nil, to: theirs, report: report)
    case (let local?, let theirs?):
      if local == theirs { return report.done() }
      if try repository.isAncestor(theirs, of: local) {
        if !pushing { return report.done() }
        report.sent = try repository.history(from: local, hiding: theirs).count
        report.action = .pushed
        return try publish(local, remote: remote, tracking: tracking, report: report)
      }
      if try repository.isAncestor(local, of: theirs) {
        report.received = try repository.history(from: theirs, hiding: local).count
        report.action = .fastForwardedLocal
        return try moveLocal(from: local, to: theirs, report: report)
      }
      // No common commit (a clone that added before its first sync, or two clones that each started a
      // queue): the local operations replay onto the remote's queue all the same, from the empty queue.
      let base = try repository.mergeBase(local, theirs)
      if base == nil, let trackedBefore, try repository.mergeBase(trackedBefore, theirs) == nil {
        // But not when this clone shared the remote's queue before and the remote's now has another root:
        // it was replaced (another project's queue pushed over it, or deleted and started again), and
        // replaying this clone's whole history onto it would mix the two. The tracking ref goes back.
        try? repository.updateReference(
          tracking, to: trackedBefore, expected: theirs, message: "taskq: the remote's queue was replaced")
        throw QueueError.remoteQueueReplaced(
          remote: remote, now: String(theirs.hex.prefix(12)), before: String(trackedBefore.hex.prefix(12)))
      }
      if base == nil { report.unrelatedLocalTip = String(local.hex.prefix(12)) }
      let remoteCommits = try repository.history(from: theirs, hiding: base)
      report.received = remoteCommits.count
      // Tasks the remote failed as "worker lost" since the base: a worker that was only cut off, and comes
      // back with the same attempt's steps, wins over that recovery; a dead one's steps are dropped, unless
      // they finish the attempt (finished work is never dropped).
      let recovered = Set(
        remoteCommits.compactMap { Operation.parse(message: $0.message) }.filter { $0.kind == .recover }.map(\.task))
      let (newTip, sent, dropped, superseded) = try replay(
        from: base, local: local, onto: theirs, recoveredOnRemote: recovered)
      report.sent = sent
      report.dropped = dropped
      report.superseded = superseded
      report.action = .replayed
      // Local first (a compare-and-swap against the tip we replayed), then the remote.
      do {
        try store.compareAndSwap(to: newTip, expected: local, message: "taskq: sync \(remote)")
      } catch let error as GitError where [.modified, .exists].contains(error.code) {
        return report.retry()
      }
      if newTip == theirs || !pushing { return report.done() }
      return try publish(newTip, remote: remote, tracking: tracking, report: report)
    }
  }

  private func moveLocal(from old: ObjectID?, to new: ObjectID, report: SyncReport) throws -> SyncAttempt {
    do {
      try store.compareAndSwap(to: new, expected: old, message: "taskq: sync fast-forward")
      return report.done()
    } catch let error as GitError where [.modified, .exists].contains(error.code) {
      return report.retry()
    }
  }

  private func publish(_ commit: ObjectID, remote: String, tracking: String, report: SyncReport) throws
    -> SyncAttempt
  {
    switch try transport.push(remote: remote, commit: commit) {
    case .pushed, .upToDate:
      let current = try store.repository.referenceTarget(tracking)
      try? store.repository.updateReference(tracking, to: commit, expected: current, message: "taskq: pushed")
      return report.done()
    case .rejected(let summary):
      if let lock = Self.lockFile(in: summary) {
        lockedRejections = lock == lastLockFile ? lockedRejections + 1 : 1
        lastLockFile = lock
      } else {
        lockedRejections = 0
      }
      return report.retry()
    }
  }

  /// Why the fetched `tip` is not a git-taskq queue (not a commit, or a commit whose tree has no
  /// `taskq.json`), or `nil` when it is one.
  static func notAQueue(_ tip: ObjectID, in repository: Repository) -> String? {
    let short = String(tip.hex.prefix(12))
    guard let commit = try? repository.commit(tip) else { return "it points at \(short), which is not a commit" }
    guard let tree = try? repository.tree(commit.treeID), tree.entry(named: Layout.metaPath) != nil else {
      return "commit \(short) has no \(Layout.metaPath)"
    }
    return nil
  }

  // MARK: Replay

  /// Replays the local commits `base..local` (all of them when `base` is `nil`: unrelated histories),
  /// oldest first, onto `onto`; `recoveredOnRemote` names the tasks the remote recovered since `base`.
  /// Returns the new tip, how many operations applied, the dropped ones, and the tasks whose recovery a
  /// replayed step superseded.
  ///
  /// A step of the worker whose task the remote recovered during the same attempt supersedes that
  /// recovery when its worker still runs (it was only cut off: ``isWorkerAlive``), or when that worker's
  /// local steps of the attempt end it (in `review`: the result is on the task's branch; or `failed`: its
  /// own report of what went wrong, which says more than "worker lost"). Otherwise the worker was killed
  /// before it published: its steps are dropped, and the recovery stays.
  func replay(from base: ObjectID?, local: ObjectID, onto: ObjectID, recoveredOnRemote recovered: Set<String>) throws
    -> (ObjectID, Int, [DroppedOperation], [String])
  {
    let repository = store.repository
    let commits = try repository.history(from: local, hiding: base).reversed()
    var tip = onto
    var applied = 0
    var dropped: [DroppedOperation] = []
    // The local queue as each operation found it (its history is linear: each commit's parent is the last).
    var before = try store.snapshot(at: base)
    // Tasks whose local add was dropped: the remote's task of that id is another task, which nothing done
    // here to the local one may overwrite.
    var foreign: Set<String> = []
    // Tasks whose local add (or import) applied in this replay: the remote's task of that id is the local
    // one, renumbered (its `seq` differs from the local record's).
    var addedHere: Set<String> = []
    var superseded: [String] = []
    let finished = try attemptsFinished(in: commits)
    var liveness: [String: Bool] = [:]
    for commit in commits {
      guard let operation = Operation.parse(message: commit.message) else {
        throw QueueError.corrupt(
          "local queue commit \(commit.id.hex.prefix(12)) has no Taskq trailers, so it cannot be replayed")
      }
      let current = try store.snapshot(at: tip)
      let after = try store.snapshot(at: commit.id)
      defer { before = after }
      if operation.kind == .repair {
        // A removal of damaged directories: applies to those still damaged on the remote.
        if let repaired = try applyRepair(operation, commit: commit, onto: current) {
          tip = repaired
          applied += 1
        } else {
          dropped.append(DroppedOperation(operation: operation, reason: "the damaged records are gone on the remote"))
        }
        continue
      }
      if operation.from == nil, !operation.otherTasks.isEmpty {
        // An import replays task by task: the tasks whose id is free on the remote land, each clashing one
        // is dropped with its own line (as an `add` would be).
        var landing: [String] = []
        for id in [operation.task] + operation.otherTasks {
          guard let existing = try current.record(id) else {
            landing.append(id)
            continue
          }
          var single = operation
          single.task = id
          single.otherTasks = []
          let reason = "a task '\(existing.id)' already exists on the remote" + Self.keepHint(id, commit: commit)
          dropped.append(DroppedOperation(operation: single, reason: reason))
          foreign.insert(id)
        }
        guard !landing.isEmpty else { continue }
        foreign.subtract(landing)
        addedHere.formUnion(landing)
        tip = try apply(operation, tasks: landing, commit: commit, before: before, after: after, onto: current)
        applied += 1
        continue
      }
      let supersedes = try supersedesRecovery(operation, before: before, current: current, recovered: recovered)
      if supersedes, let attempt = try before.record(operation.task)?.attempt,
        !finished.contains(AttemptKey(task: operation.task, worker: operation.worker, attempt: attempt)),
        !isAlive(operation.worker, cache: &liveness)
      {
        // Killed before its publisher pushed (a lease renewal, `planning → building`): the step would revive
        // the task under a process that no longer exists. Its later steps land here too, with this line.
        let reason = "the remote recovered it (worker lost) and its worker \(operation.worker) no longer runs"
        dropped.append(DroppedOperation(operation: operation, reason: reason))
        continue
      }
      if supersedes, !superseded.contains(operation.task) { superseded.append(operation.task) }
      if !supersedes,
        var reason = try conflict(operation, before: before, current: current, foreign: foreign, addedHere: addedHere)
      {
        if operation.from == nil, try current.record(operation.task) != nil {
          // An id taken on both sides: the local task is still in the dropped commit; say how to keep it.
          reason += Self.keepHint(operation.task, commit: commit)
        }
        if operation.kind == .edit, reason == Self.changedMeanwhile {
          // The local edit is in the dropped commit: say where, so it can be made again on the remote's task.
          reason +=
            " (yours: git show \(commit.id.hex.prefix(12)):\(Layout.taskDirectory(operation.task))/task.md;"
            + " edit it again with git taskq edit --id \(operation.task))"
        }
        if operation.from == nil { foreign.insert(operation.task) }
        dropped.append(DroppedOperation(operation: operation, reason: reason))
        continue
      }
      if operation.from == nil {
        foreign.remove(operation.task)
        addedHere.insert(operation.task)
      }
      tip = try apply(operation, tasks: [operation.task], commit: commit, before: before, after: after, onto: current)
      applied += 1
    }
    return (tip, applied, dropped, superseded)
  }

  /// The hint of a dropped add (or imported task) whose id the remote took: how to add the local task again.
  static func keepHint(_ id: String, commit: Commit) -> String {
    " (to keep yours, add it again under another id: git show \(commit.id.hex.prefix(12)):\(Layout.taskDirectory(id))/task.md"
      + " | git taskq add --id \(id)-2 --task-file -)"
  }

  /// The reason of an `edit` dropped because the remote's task changed since the edit's base.
  static let changedMeanwhile = "the task was changed on the remote meanwhile"

  /// Whether the remote's directory of `id` differs from the one the local operation was made on: another
  /// file, or another record (its `seq` aside, which an add replayed here renumbers).
  private func taskChanged(_ id: String, before: QueueSnapshot, current: QueueSnapshot) throws -> Bool {
    let directory = Layout.taskDirectory(id)
    guard let old = try before.tree?.subtree(atPath: directory), let new = try current.tree?.subtree(atPath: directory)
    else { return true }
    if old.id == new.id { return false }
    let recordName = String(Layout.recordPath(id).split(separator: "/").last ?? "")
    let names = Set(old.entries.map(\.name) + new.entries.map(\.name)).subtracting([recordName])
    for name in names where old.entry(named: name)?.id != new.entry(named: name)?.id { return true }
    guard var previous = try before.record(id), let existing = try current.record(id) else { return true }
    previous.seq = existing.seq
    return previous != existing
  }

  /// `mine` (a replayed operation's record) with each field an edit or a cleanup may change that the
  /// operation left as in `base` taken from `theirs` (the remote's record, changed meanwhile).
  static func merged(_ mine: TaskRecord, base: TaskRecord, theirs: TaskRecord) -> TaskRecord {
    var result = mine
    func keepTheirs<Value: Equatable>(_ field: WritableKeyPath<TaskRecord, Value>) {
      if base[keyPath: field] == mine[keyPath: field] { result[keyPath: field] = theirs[keyPath: field] }
    }
    keepTheirs(\.repo)
    keepTheirs(\.base)
    keepTheirs(\.branch)
    keepTheirs(\.worktreePath)
    keepTheirs(\.priority)
    keepTheirs(\.dependsOn)
    return result
  }

  /// Whether `operation` is a step of the worker whose task the remote failed as "worker lost" during the
  /// same attempt (and nothing else happened to it there since): the worker went on after the recovery, so
  /// its step applies over it when that worker still runs or its steps finish the attempt (``replay``).
  private func supersedesRecovery(
    _ operation: Operation, before: QueueSnapshot, current: QueueSnapshot, recovered: Set<String>
  ) throws -> Bool {
    guard operation.from != nil, operation.kind != .recover, recovered.contains(operation.task),
      let existing = try current.record(operation.task), existing.status == .failed,
      let previous = try before.record(operation.task), previous.attempt == existing.attempt,
      previous.createdAt == existing.createdAt,
      previous.status.isActive, let owner = previous.worker, owner == operation.worker
    else { return false }
    return true
  }

  /// A worker's attempt at a task.
  private struct AttemptKey: Hashable {
    var task: String
    var worker: String
    var attempt: Int
  }

  /// The attempts whose worker's steps among `commits` end them: a step of that worker to `review` or to
  /// `failed` (a recovery is another process's step, not the worker's), or its give-back of the task
  /// (`release`: claimed ahead and not started, or a claim that could not be published), which ends the
  /// attempt as cleanly: a task its worker gave back is `todo` again, not failed as "worker lost".
  private func attemptsFinished(in commits: some Sequence<Commit>) throws -> Set<AttemptKey> {
    var finished: Set<AttemptKey> = []
    for commit in commits {
      guard let operation = Operation.parse(message: commit.message), operation.kind != .recover,
        operation.to == .review || operation.to == .failed || operation.kind == .release,
        let record = try store.snapshot(at: commit.id).record(operation.task)
      else { continue }
      finished.insert(AttemptKey(task: operation.task, worker: operation.worker, attempt: record.attempt))
    }
    return finished
  }

  /// Whether `worker` still runs: the store's own worker does (it is this process, syncing), any other is
  /// asked of ``isWorkerAlive`` once per replay.
  private func isAlive(_ worker: String, cache: inout [String: Bool]) -> Bool {
    if worker == store.worker { return true }
    if let known = cache[worker] { return known }
    let alive = isWorkerAlive(worker)
    cache[worker] = alive
    return alive
  }

  /// A commit on top of `current` without the damaged directories a `repair` operation names, or `nil`
  /// when none of them is still there and damaged.
  private func applyRepair(_ operation: Operation, commit: Commit, onto current: QueueSnapshot) throws -> ObjectID? {
    let repository = store.repository
    let paths = Set([operation.task] + operation.otherTasks)
    let targets = try current.damagedRecords().filter { paths.contains($0.path) }
    guard let commitID = current.commit, var tree = current.tree, !targets.isEmpty else { return nil }
    for damage in targets {
      if let next = try repository.tree(tree, removing: damage.components) { tree = try repository.tree(next) }
    }
    let signature = Signature(name: commit.committer.name, email: commit.committer.email)
    return try store.writeCommit(tree: tree.id, parents: [commitID], message: commit.message, signature: signature).id
  }

  /// Why `operation` cannot apply to `current`, or `nil` when it can.
  ///
  /// `before` is the local queue the operation was made on; `foreign` the tasks whose local add was dropped;
  /// `addedHere` those whose local add applied in this replay.
  private func conflict(
    _ operation: Operation, before: QueueSnapshot, current: QueueSnapshot, foreign: Set<String>,
    addedHere: Set<String>
  ) throws -> String? {
    if operation.from != nil, foreign.contains(operation.task) {
      return "its add was dropped: the remote's '\(operation.task)' is another task"
    }
    let record = try current.record(operation.task)
    switch (operation.from, record) {
    case (nil, let existing?):
      return "a task '\(existing.id)' already exists on the remote"
    case (nil, nil):
      return nil
    case (_?, nil):
      return "the task was removed on the remote"
    case (let from?, let existing?):
      if let previous = try before.record(operation.task), !addedHere.contains(operation.task),
        previous.createdAt != existing.createdAt || previous.seq != existing.seq
      {
        // Removed and added again on the remote: same id (and maybe same attempt and state), another task.
        // A task keeps its creation time and `seq` for life (retry and edit change neither); `seq` tells apart
        // two tasks created in the same second.
        return "the remote's '\(operation.task)' is another task (removed and added again there)"
      }
      if let previous = try before.record(operation.task), previous.attempt != existing.attempt {
        // Retried on the remote meanwhile (and maybe claimed again): this operation belongs to an attempt
        // that is over, and bringing its directory would take the task back from the new attempt's worker
        // and erase that attempt's record and reports.
        return "it was retried on the remote (now attempt \(existing.attempt + 1))"
      }
      if existing.status == from {
        // A worker's own step applies only while the remote has that worker holding the task: when its
        // claim lost a race (and was dropped above), the step would take the task from the winner.
        if from.isActive, let owner = try before.record(operation.task)?.worker, owner == operation.worker,
          let holder = existing.worker, holder != owner
        {
          return "it is claimed by \(holder) on the remote"
        }
        // A recovery was decided on a lease that looked expired here; a lease renewed (or a task claimed
        // again) on the remote means the worker is alive.
        if operation.kind == .recover, let previous = try before.record(operation.task),
          previous.leaseExpiresAt != existing.leaseExpiresAt || previous.worker != existing.worker
        {
          return "its worker renewed the lease on the remote (until \(existing.leaseExpiresAt ?? "?"))"
        }
        // An edit brings the whole task file: over a task changed on the remote since (another edit), it
        // would revert that change without a line.
        if operation.kind == .edit, try taskChanged(operation.task, before: before, current: current) {
          return Self.changedMeanwhile
        }
        return nil
      }
      var reason = "it is '\(existing.status.rawValue)' on the remote, not '\(from.rawValue)'"
      if existing.status == operation.to {
        reason = "it is already '\(existing.status.rawValue)' on the remote"
      } else if existing.status == .cancelled {
        reason = "it was cancelled on the remote"
      }
      if existing.status.isActive, let worker = existing.worker { reason += " (claimed by \(worker))" }
      return reason
    }
  }

  /// A new commit on top of `current`: the directory of each of `tasks` as `after` has it (record `seq` kept
  /// from the remote, or renumbered for an added task), with the original message (an import's naming only
  /// the tasks that land, when some were dropped).
  ///
  /// When the remote changed the task since `before` (an edit, a cleanup: the state and attempt are the
  /// same, or the operation would have been dropped), the operation brings only what it changed: the files
  /// it wrote or removed over the remote's directory, and its record with the fields it left alone taken
  /// from the remote's (an `edit`, which brings the whole task file, is dropped before this).
  private func apply(
    _ operation: Operation, tasks: [String], commit: Commit, before: QueueSnapshot, after: QueueSnapshot,
    onto current: QueueSnapshot
  ) throws -> ObjectID {
    let repository = store.repository
    let id = operation.task
    let directory = Layout.taskDirectory(id)
    guard let baseTree = current.tree else { throw QueueError.corrupt("the remote queue has no tree") }
    var meta = current.meta
    var treeID: ObjectID
    if operation.to == nil {
      treeID = try repository.createTree(from: baseTree, applying: [.remove(directory)])
    } else {
      // One task, or with `import` several (those whose id is free on the remote): each brought as the
      // local commit left it.
      var tree = baseTree
      for id in tasks {
        let directory = Layout.taskDirectory(id)
        guard let afterTree = after.tree, let subtree = try afterTree.entry(atPath: directory),
          var record = try after.record(id)
        else {
          throw QueueError.corrupt("local queue commit \(commit.id.hex.prefix(12)) lacks task '\(id)'")
        }
        if operation.from == nil {
          record.seq = meta.nextSeq
          meta.nextSeq += 1
        } else if let existing = try current.record(id) {
          record.seq = existing.seq
        }
        var updates: [TreeUpdate] = [.writeTree(directory, tree: subtree.id)]
        if operation.from != nil, let existing = try current.record(id), let previous = try before.record(id),
          try taskChanged(id, before: before, current: current),
          let old = try before.tree?.subtree(atPath: directory), let mine = try after.tree?.subtree(atPath: directory)
        {
          // The remote's directory (already in `tree`), with the operation's own changes of its files.
          updates = []
          let recordName = String(Layout.recordPath(id).split(separator: "/").last ?? "")
          let names = Set(old.entries.map(\.name) + mine.entries.map(\.name)).subtracting([recordName])
          for name in names.sorted() where old.entry(named: name)?.id != mine.entry(named: name)?.id {
            let path = "\(directory)/\(name)"
            switch mine.entry(named: name) {
            case let entry? where entry.kind == .tree: updates.append(.writeTree(path, tree: entry.id))
            case let entry?: updates.append(.write(path, blob: entry.id))
            case nil: updates.append(.remove(path))
            }
          }
          record = Self.merged(record, base: previous, theirs: existing)
        }
        let withTask =
          updates.isEmpty ? tree : try repository.tree(try repository.createTree(from: tree, applying: updates))
        tree = try repository.tree(
          try repository.createTree(
            from: withTask,
            applying: [.write(Layout.recordPath(id), blob: try repository.writeBlob(try Layout.storedJSON(record)))]))
      }
      treeID = tree.id
      if meta != current.meta {
        treeID = try repository.createTree(
          from: tree, applying: [.write(Layout.metaPath, blob: try repository.writeBlob(try Layout.storedJSON(meta)))])
      }
    }
    var message = commit.message
    if tasks != [operation.task] + operation.otherTasks, let first = tasks.first {
      var landed = operation
      landed.task = first
      landed.otherTasks = Array(tasks.dropFirst())
      message = landed.message
    }
    let signature = Signature(name: commit.committer.name, email: commit.committer.email)
    return try store.writeCommit(
      tree: treeID, parents: [current.commit].compactMap { $0 }, message: message, signature: signature
    ).id
  }
}

/// How one attempt of a sync ended: with its report, or lost to another writer (repeat from the fetch).
private enum SyncAttempt {
  case completed(SyncReport)
  case retry

  /// The report, or `nil` when the attempt must be repeated.
  var completed: SyncReport? {
    if case .completed(let report) = self { return report }
    return nil
  }
}

extension SyncReport {
  fileprivate func done() -> SyncAttempt { .completed(self) }
  fileprivate func retry() -> SyncAttempt { .retry }
}
