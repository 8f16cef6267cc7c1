import Git
import Synchronization
import TaskQueue
import TaskqTestSupport
import Testing

/// A clock a test moves by hand (leases that run out without waiting).
final class ManualClock: WallClock {
  private let seconds: Mutex<Double>
  init(at start: Double = SystemClock().now()) { seconds = Mutex(start) }
  func now() -> Double { seconds.withLock { $0 } }
  func sleep(seconds delta: Double) { advance(delta) }
  func advance(_ delta: Double) { seconds.withLock { $0 += delta } }
}

/// A remote that is a bare repository beside the machines, reached in-process: `fetch` and `push` move the
/// queue's commit with `git fetch`/`git push` against its path (through receive-pack, so the push is a
/// compare-and-swap, as on a server). `beforePush` lets another machine write first, once.
final class BareRemoteTransport: QueueTransport {
  let bare: String
  let machine: ScratchRepository
  var beforePush: (() throws -> Void)?
  private(set) var pushes = 0

  init(bare: String, machine: ScratchRepository) {
    self.bare = bare
    self.machine = machine
  }

  func remoteExists(_ remote: String) throws -> Bool { remote == "origin" }

  func fetch(remote: String, into trackingRef: String) throws -> FetchResult {
    guard try !machine.git("for-each-ref", Layout.refName, in: bare).isEmpty else { return .noQueue }
    try machine.git("fetch", "-q", "--no-tags", "file://" + bare, "+\(Layout.refName):\(trackingRef)")
    return .fetched
  }

  func push(remote: String, commit: ObjectID) throws -> PushResult {
    if let first = beforePush {
      beforePush = nil
      try first()
    }
    pushes += 1
    do {
      try machine.git("push", "-q", "file://" + bare, "\(commit.hex):\(Layout.refName)")
      return .pushed
    } catch let failure as TestFailure
      where ["rejected", "fetch first", "non-fast-forward"].contains(where: failure.description.contains)
    {
      return .rejected(failure.description)
    }
  }
}

/// Two machines (real repositories, each with its own queue ref) and a bare remote between them.
final class ReplayBench {
  let remote: ScratchDirectory
  let bare: String
  let a: ScratchRepository
  let b: ScratchRepository
  let clockA = ManualClock()
  let clockB = ManualClock()

  init() throws {
    remote = try ScratchDirectory(prefix: "taskq-replay")
    bare = remote.path + "/remote.git"
    a = try ScratchRepository()
    b = try ScratchRepository()
    try a.git("init", "-q", "--bare", bare, in: remote.path)
  }

  /// Machine A's store (worker `host-a:1`).
  func storeA(worker: String = "host-a:1") throws -> QueueStore {
    let store = try a.store(worker: worker)
    store.clock = clockA
    return store
  }

  /// Machine B's store (worker `host-b:2`).
  func storeB(worker: String = "host-b:2") throws -> QueueStore {
    let store = try b.store(worker: worker)
    store.clock = clockB
    return store
  }

  /// Syncs `store`; `isWorkerAlive`, when given, answers the replay's liveness questions (the default
  /// counts every worker alive).
  @discardableResult
  func sync(
    _ store: QueueStore, beforePush: (() throws -> Void)? = nil, isWorkerAlive: ((String) -> Bool)? = nil
  ) throws -> SyncReport {
    let machine = store.repository.commonDirectory.hasPrefix(a.path) ? a : b
    let transport = BareRemoteTransport(bare: bare, machine: machine)
    transport.beforePush = beforePush
    let sync = QueueSync(store: store, transport: transport)
    if let isWorkerAlive { sync.isWorkerAlive = isWorkerAlive }
    return try sync.sync(remote: "origin")
  }

  /// Adds `ids` on A and gives both machines that queue.
  func shared(_ ids: String...) throws {
    let store = try storeA()
    for id in ids { try store.add(NewTask(id: id, repo: a.path, base: "main", body: "Do \(id).")) }
    try sync(store)
    try sync(try storeB())
  }

  func add(_ id: String, on store: QueueStore) throws {
    try store.add(NewTask(id: id, repo: store.repository.mainWorkingDirectory, base: "main", body: "Do \(id)."))
  }

  /// The remote's record of `id`, as a third machine would see it after a sync.
  func remoteRecord(_ id: String) throws -> TaskRecord? {
    let store = try storeB(worker: "reader:9")
    try sync(store)
    return try store.snapshot().record(id)
  }

  /// The reasons of a report's drops, by task and kind (`T-1 approve`).
  static func drops(_ report: SyncReport) -> [String: String] {
    Dictionary(
      report.dropped.map { ("\($0.operation.task) \($0.operation.kind)", $0.reason) }, uniquingKeysWith: { a, _ in a })
  }
}

/// `sync`'s replay, in-process: each row of the drop table in docs/sharing.md ("Replay") as a test, the
/// cases that apply, and a push that loses its race. The end-to-end SyncTests show the same through the
/// binary and the git CLI transport.
@Suite struct SyncReplayTests {
  // MARK: Rows of the drop table, in the order they are checked

  @Test func anyOperationOnATaskWhoseAddWasDroppedIsDropped() throws {
    let bench = try ReplayBench()
    try bench.shared("T-0")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try bench.add("T-9", on: b)
    try bench.sync(b)
    try bench.add("T-9", on: a)
    try a.cancel("T-9")
    let report = try bench.sync(a)
    let drops = ReplayBench.drops(report)
    #expect(drops["T-9 cancel"] == "its add was dropped: the remote's 'T-9' is another task")
    #expect(report.sent == 0 && report.dropped.count == 2)
    #expect(try bench.remoteRecord("T-9")?.status == .todo)
  }

  @Test func anAddOfAnIdTakenOnTheRemoteIsDroppedWithTheCommandThatKeepsIt() throws {
    let bench = try ReplayBench()
    try bench.shared("T-0")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try bench.add("T-9", on: b)
    try bench.sync(b)
    try bench.add("T-9", on: a)
    let addCommit = try #require(try a.tip()).hex.prefix(12)
    let report = try bench.sync(a)
    #expect(
      ReplayBench.drops(report)["T-9 add"]
        == "a task 'T-9' already exists on the remote (to keep yours, add it again under another id: git show \(addCommit):\(Layout.taskDirectory("T-9"))/task.md | git taskq add --id T-9-2 --task-file -)"
    )
    // The local queue took the remote's T-9.
    #expect(try a.snapshot().record("T-9")?.repo == bench.b.path)
  }

  /// An import replays task by task: its tasks whose id is free land, each clashing one is named alone,
  /// with the command that keeps it (the clash first or later in the import).
  @Test(arguments: ["T-1", "T-2"])
  func anImportedTaskWhoseIDIsTakenIsDroppedAloneWithTheCommandThatKeepsIt(_ clash: String) throws {
    let bench = try ReplayBench()
    try bench.shared("T-0")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try bench.add(clash, on: b)
    try bench.sync(b)
    var lines = ""
    for id in ["T-1", "T-2", "T-3"] {
      _ = try bench.remote.write("python/queue/tasks/\(id).md", "Task \(id) from the old queue\n")
      lines +=
        "{\"id\": \"\(id)\", \"repo\": \"\(bench.a.path)\", \"base\": \"main\", \"status\": \"todo\", \"port\": 0, \"created_at\": \"2026-11-29T12:51:10+00:00\"}\n"
    }
    _ = try bench.remote.write("python/queue/tasks.jsonl", lines)
    try a.importTasks(try PythonQueue.read(from: bench.remote.path + "/python"))
    let importCommit = try #require(try a.tip()).hex.prefix(12)
    let report = try bench.sync(a)
    #expect(
      ReplayBench.drops(report) == [
        "\(clash) import":
          "a task '\(clash)' already exists on the remote (to keep yours, add it again under another id: git show \(importCommit):\(Layout.taskDirectory(clash))/task.md | git taskq add --id \(clash)-2 --task-file -)"
      ])
    #expect(report.sent == 1)
    for id in ["T-1", "T-2", "T-3"] where id != clash {
      #expect(try bench.remoteRecord(id)?.repo == bench.a.path, "\(id) did not reach the remote")
    }
    #expect(try bench.remoteRecord(clash)?.repo == bench.b.path)
  }

  @Test func anOperationOnATaskRemovedOnTheRemoteIsDropped() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1", "T-2")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try b.remove("T-1")
    try bench.sync(b)
    try a.cancel("T-1")
    let report = try bench.sync(a)
    #expect(ReplayBench.drops(report) == ["T-1 cancel": "the task was removed on the remote"])
    #expect(try bench.remoteRecord("T-1") == nil)
  }

  /// The remote removed T-1 and added another T-1, which reached the state (and attempt) A's operation
  /// started from, in the same second as the old one: the remote's task is not the one A approved.
  @Test func anOperationOnAnotherTaskAddedUnderTheSameIDIsDropped() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    try bench.a.drive("T-1", to: .review, store: try bench.storeA())
    try bench.sync(try bench.storeA())
    let b = try bench.storeB()
    try bench.sync(b)
    try b.remove("T-1")
    try bench.add("T-1", on: b)
    try bench.b.drive("T-1", to: .review, store: b)
    try bench.sync(b)
    let a = try bench.storeA()
    try a.approve("T-1")
    let report = try bench.sync(a)
    #expect(
      ReplayBench.drops(report) == ["T-1 approve": "the remote's 'T-1' is another task (removed and added again there)"]
    )
    let remote = try #require(try bench.remoteRecord("T-1"))
    #expect(remote.status == .review && remote.repo == bench.b.path)
  }

  @Test func anOperationOfAnAttemptThatIsOverIsDropped() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let a = try bench.storeA()
    try a.claimNext(only: "T-1")
    try a.fail("T-1", summary: "boom", report: "# boom")
    try bench.sync(a)
    let b = try bench.storeB()
    try bench.sync(b)
    try b.retry("T-1")
    try bench.sync(b)
    try a.cancel("T-1")
    let report = try bench.sync(a)
    #expect(ReplayBench.drops(report) == ["T-1 cancel": "it was retried on the remote (now attempt 2)"])
    #expect(try bench.remoteRecord("T-1")?.status == .todo)
  }

  @Test func anApproveOfATaskCancelledOnTheRemoteIsDropped() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    try bench.a.drive("T-1", to: .review, store: try bench.storeA())
    try bench.sync(try bench.storeA())
    let b = try bench.storeB()
    try bench.sync(b)
    try b.cancel("T-1")
    try bench.sync(b)
    let a = try bench.storeA()
    try a.approve("T-1")
    let report = try bench.sync(a)
    #expect(ReplayBench.drops(report) == ["T-1 approve": "it was cancelled on the remote"])
    #expect(try bench.remoteRecord("T-1")?.status == .cancelled)
  }

  @Test func anApproveOfATaskAlreadyDoneOnTheRemoteIsDropped() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    try bench.a.drive("T-1", to: .review, store: try bench.storeA())
    try bench.sync(try bench.storeA())
    let b = try bench.storeB()
    try bench.sync(b)
    try b.approve("T-1")
    try bench.sync(b)
    let a = try bench.storeA()
    try a.approve("T-1")
    let report = try bench.sync(a)
    #expect(ReplayBench.drops(report) == ["T-1 approve": "it is already 'done' on the remote"])
  }

  @Test func anOperationFromAnotherStateIsDroppedNamingBoth() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    try bench.a.drive("T-1", to: .building, store: try bench.storeA())
    try bench.sync(try bench.storeA())
    let b = try bench.storeB()
    try bench.sync(b)
    try b.transition("T-1", to: .review, command: "review")
    try bench.sync(b)
    let a = try bench.storeA()
    try a.fail("T-1", summary: "boom", report: "# boom")
    let report = try bench.sync(a)
    #expect(ReplayBench.drops(report) == ["T-1 fail": "it is 'review' on the remote, not 'building'"])
  }

  @Test func aDropOfATaskAWorkerHoldsNamesTheWorker() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let b = try bench.storeB()
    try b.claimNext(only: "T-1")
    try bench.sync(b)
    let a = try bench.storeA()
    try a.cancel("T-1")
    let report = try bench.sync(a)
    #expect(
      ReplayBench.drops(report) == ["T-1 cancel": "it is 'planning' on the remote, not 'todo' (claimed by host-b:2)"])
  }

  @Test func aClaimThatLostTheRaceIsDroppedWithItsWorkersSteps() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let b = try bench.storeB()
    try b.claimNext(only: "T-1")
    try bench.sync(b)
    let a = try bench.storeA()
    try a.claimNext(only: "T-1")
    try a.advance("T-1", kind: .setup, detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    let report = try bench.sync(a)
    #expect(
      ReplayBench.drops(report) == [
        "T-1 claim": "it is already 'planning' on the remote (claimed by host-b:2)",
        "T-1 setup": "it is claimed by host-b:2 on the remote",
      ])
    let remote = try #require(try bench.remoteRecord("T-1"))
    #expect(remote.worker == "host-b:2" && remote.worktreePath == nil)
  }

  @Test func aRecoveryIsDroppedWhenTheWorkerRenewedItsLease() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let b = try bench.storeB()
    try b.claimNext(only: "T-1", leaseSeconds: 60)
    try bench.sync(b)
    let a = try bench.storeA()
    try bench.sync(a)
    // On A the lease looks expired; meanwhile B renews it and publishes first.
    bench.clockA.advance(120)
    #expect(try a.recoverStale { _ in "# worker lost" }.map(\.id) == ["T-1"])
    bench.clockB.advance(30)
    let renewed = try b.renewLease("T-1", seconds: 60)
    try bench.sync(b)
    let report = try bench.sync(a)
    let until = try #require(renewed.leaseExpiresAt)
    #expect(ReplayBench.drops(report) == ["T-1 recover": "its worker renewed the lease on the remote (until \(until))"])
    #expect(try bench.remoteRecord("T-1")?.status == .planning)
  }

  // MARK: What applies

  /// Edits `id` on `store` through `TaskEdit`, the text changed by `change`.
  static func edit(_ id: String, on store: QueueStore, in bench: ReplayBench, _ change: (String) -> String) throws {
    let edit = TaskEdit(store: store, settings: try Settings(configuration: nil, environment: [:]))
    let original = try edit.start(id)
    let draft = try bench.remote.write("draft-\(id)-\(UInt64.random(in: 0...UInt64.max)).md", change(original))
    _ = try edit.apply(id: id, original: original, editedPath: draft)
  }

  /// An edit brings the whole task file: over a task edited on the remote since, it is dropped (naming where
  /// it is), never replayed over the remote's edit. An edit of a task whose add this replay renumbered is
  /// the local task's own, and applies.
  @Test func anEditOfATaskChangedOnTheRemoteIsDroppedNamingWhereItIs() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try Self.edit("T-1", on: b, in: bench) { $0 + "Also write tests.\n" }
    try bench.add("T-8", on: b)
    try bench.sync(b)
    try Self.edit("T-1", on: a, in: bench) { $0 + "Something else.\n" }
    let editCommit = try #require(try a.tip()).hex.prefix(12)
    try bench.add("T-9", on: a)
    try Self.edit("T-9", on: a, in: bench) { $0 + "More of T-9.\n" }
    let report = try bench.sync(a)
    #expect(
      ReplayBench.drops(report) == [
        "T-1 edit":
          "the task was changed on the remote meanwhile (yours: git show \(editCommit):\(Layout.taskDirectory("T-1"))/task.md; edit it again with git taskq edit --id T-1)"
      ])
    #expect(report.sent == 2)
    let reader = try bench.storeB(worker: "reader:9")
    try bench.sync(reader)
    let remote = try reader.snapshot()
    #expect(try remote.taskFile("T-1")?.contains("Also write tests.") == true)
    #expect(try remote.taskFile("T-1")?.contains("Something else.") == false)
    #expect(try remote.taskFile("T-9")?.contains("More of T-9.") == true)
  }

  @Test func anApproveOfATaskStillInReviewIsReplayedOverOtherWork() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1", "T-2")
    try bench.a.drive("T-1", to: .review, store: try bench.storeA())
    try bench.sync(try bench.storeA())
    let b = try bench.storeB()
    try bench.sync(b)
    try b.cancel("T-2")
    try bench.sync(b)
    let a = try bench.storeA()
    try a.approve("T-1")
    let report = try bench.sync(a)
    #expect(report.action == .replayed && report.received == 1 && report.sent == 1 && report.dropped.isEmpty)
    #expect(report.summary == "sync origin: received 1 commit(s), replayed 1 local operation(s), pushed")
    #expect(try bench.remoteRecord("T-1")?.status == .done)
    #expect(try bench.remoteRecord("T-2")?.status == .cancelled)
    // One line of history, the replayed commit on top of B's, with the original message and author.
    let log = try bench.a.git("log", "--format=%P|%s|%an", "-2", Layout.refName).split(separator: "\n")
    #expect(log.count == 2 && log.allSatisfy { $0.split(separator: "|")[0].split(separator: " ").count == 1 })
    #expect(log.first?.hasSuffix("|T-1: review → done|Test User") == true)
  }

  /// An operation replayed over a task the remote changed meanwhile (same state and attempt) brings only
  /// what it changed: a retry keeps the remote's edit of the task file and of the record.
  @Test func aRetryOfATaskEditedOnTheRemoteKeepsThatEdit() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let a = try bench.storeA()
    try a.claimNext(only: "T-1")
    try a.fail("T-1", summary: "boom", report: "# boom")
    try bench.sync(a)
    let b = try bench.storeB()
    try bench.sync(b)
    try Self.edit("T-1", on: b, in: bench) {
      $0.replacingOccurrences(of: "\n---\n", with: "\npriority: 7\n---\n") + "Also write tests.\n"
    }
    try bench.sync(b)
    try a.retry("T-1")
    let report = try bench.sync(a)
    #expect(report.dropped.isEmpty && report.sent == 1)
    let reader = try bench.storeB(worker: "reader:9")
    try bench.sync(reader)
    let remote = try reader.snapshot()
    let record = try #require(try remote.record("T-1"))
    #expect(record.status == .todo && record.attempt == 1 && record.priority == 7)
    #expect(try remote.taskFile("T-1")?.contains("Also write tests.") == true)
  }

  @Test func tasksAddedOnBothSidesAreAllKeptWithTheirOwnSeq() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try bench.add("B-1", on: b)
    try bench.add("B-2", on: b)
    try bench.sync(b)
    try bench.add("A-1", on: a)
    let report = try bench.sync(a)
    #expect(report.sent == 1 && report.dropped.isEmpty)
    let snapshot = try a.snapshot()
    let seqs = try ["T-1", "B-1", "B-2", "A-1"].map { try #require(try snapshot.record($0)).seq }
    #expect(seqs == [1, 2, 3, 4])
    #expect(snapshot.meta.nextSeq == 5)
  }

  @Test func aWorkerCutOffSupersedesTheRecoveryOfItsTask() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let a = try bench.storeA()
    try a.claimNext(only: "T-1", leaseSeconds: 60)
    try bench.sync(a)
    let b = try bench.storeB()
    try bench.sync(b)
    bench.clockB.advance(120)
    #expect(try b.recoverStale { _ in "# worker lost" }.map(\.id) == ["T-1"])
    try bench.sync(b)
    // A was only cut off: it went on with the same attempt.
    try a.advance("T-1", kind: .setup, detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    try a.advance("T-1", to: .building, kind: .build, detail: "plan made")
    let report = try bench.sync(a)
    #expect(report.superseded == ["T-1"] && report.dropped.isEmpty && report.sent == 2)
    let remote = try #require(try bench.remoteRecord("T-1"))
    #expect(remote.status == .building && remote.worker == "host-a:1")
  }

  /// A's worker `host-a:1` claims T-1 (lease 60 s) and publishes the claim; B, seeing the lease expired,
  /// recovers the task ("worker lost") and publishes that. A's worker store is returned, and A has not
  /// fetched the recovery.
  static func recoveredOnB(_ bench: ReplayBench) throws -> QueueStore {
    try bench.shared("T-1")
    let a = try bench.storeA()
    try a.claimNext(only: "T-1", leaseSeconds: 60)
    try bench.sync(a)
    let b = try bench.storeB()
    try bench.sync(b)
    bench.clockB.advance(120)
    #expect(try b.recoverStale { _ in "# worker lost" }.map(\.id) == ["T-1"])
    try bench.sync(b)
    return a
  }

  /// Who the replay asked about, and the answer "dead" for everyone but `alive`.
  final class LivenessProbe {
    var asked: [String] = []
    let alive: Set<String>
    init(alive: Set<String> = []) { self.alive = alive }
    func check(_ worker: String) -> Bool {
      asked.append(worker)
      return alive.contains(worker)
    }
  }

  /// The worker was killed after it recorded its steps and before they were published; a `git taskq sync`
  /// on its clone (another process) must not revive the task under it.
  @Test func aDeadWorkersStepsAreDroppedAndTheRecoveryStays() throws {
    let bench = try ReplayBench()
    let worker = try Self.recoveredOnB(bench)
    try worker.advance("T-1", kind: .setup, detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    try worker.advance("T-1", to: .building, kind: .build, detail: "plan made")
    let probe = LivenessProbe()
    let report = try bench.sync(try bench.storeA(worker: "host-a:99"), isWorkerAlive: probe.check)
    let reason = "the remote recovered it (worker lost) and its worker host-a:1 no longer runs"
    #expect(ReplayBench.drops(report) == ["T-1 setup": reason, "T-1 build": reason])
    #expect(report.notices == ["T-1: setup dropped: \(reason)", "T-1: build dropped: \(reason)"])
    #expect(report.superseded.isEmpty && report.sent == 0)
    #expect(probe.asked == ["host-a:1"])
    let remote = try #require(try bench.remoteRecord("T-1"))
    #expect(remote.status == .failed && remote.worker == nil && remote.worktreePath == nil)
  }

  /// A lease renewal recorded by a worker that was killed before it was pushed.
  @Test func aDeadWorkersLeaseRenewalIsDropped() throws {
    let bench = try ReplayBench()
    let worker = try Self.recoveredOnB(bench)
    bench.clockA.advance(30)
    try worker.renewLease("T-1", seconds: 60)
    let report = try bench.sync(try bench.storeA(worker: "host-a:99"), isWorkerAlive: { _ in false })
    #expect(
      ReplayBench.drops(report) == [
        "T-1 renew": "the remote recovered it (worker lost) and its worker host-a:1 no longer runs"
      ])
    #expect(try bench.remoteRecord("T-1")?.status == .failed)
  }

  /// A worker that still runs was only cut off: its steps supersede the recovery, whether it is the
  /// syncing process's own worker (never asked about) or another process the check finds running.
  @Test(arguments: ["own", "other"])
  func aLiveWorkersStepsSupersedeTheRecovery(_ whose: String) throws {
    let bench = try ReplayBench()
    let worker = try Self.recoveredOnB(bench)
    try worker.advance("T-1", to: .building, kind: .build, detail: "plan made")
    let probe = LivenessProbe(alive: whose == "other" ? ["host-a:1"] : [])
    let syncing = whose == "own" ? worker : try bench.storeA(worker: "host-a:99")
    let report = try bench.sync(syncing, isWorkerAlive: probe.check)
    #expect(report.superseded == ["T-1"] && report.dropped.isEmpty && report.sent == 1)
    #expect(probe.asked == (whose == "own" ? [] : ["host-a:1"]))
    let remote = try #require(try bench.remoteRecord("T-1"))
    #expect(remote.status == .building && remote.worker == "host-a:1")
  }

  /// A dead worker's steps that finish the attempt are never dropped: with `review` the result is on the
  /// task's branch; with `failed` its own report says what went wrong (more than "worker lost"). The steps
  /// before the last one apply too, so that the task's record keeps what they set (its worktree).
  @Test(arguments: [TaskStatus.review, .failed])
  func aDeadWorkersStepsThatFinishTheAttemptSupersedeTheRecovery(_ end: TaskStatus) throws {
    let bench = try ReplayBench()
    let worker = try Self.recoveredOnB(bench)
    try worker.advance("T-1", kind: .setup, detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    try worker.advance("T-1", to: .building, kind: .build, detail: "plan made")
    if end == .review {
      try worker.advance("T-1", to: .review, kind: .review, detail: "ready for review") {
        $0.worker = nil
        $0.leaseExpiresAt = nil
      }
    } else {
      try worker.fail("T-1", summary: "build failed", report: "# build failed (exit 2)")
    }
    let report = try bench.sync(try bench.storeA(worker: "host-a:99"), isWorkerAlive: { _ in false })
    #expect(report.superseded == ["T-1"] && report.dropped.isEmpty && report.sent == 3)
    let remote = try #require(try bench.remoteRecord("T-1"))
    #expect(remote.status == end && remote.worktreePath == "/a/T-1")
    if end == .failed {
      #expect(try bench.a.git("show", try #require(remote.errorFile)) == "# build failed (exit 2)")
    }
  }

  @Test func unrelatedHistoriesReplayEveryLocalOperation() throws {
    let bench = try ReplayBench()
    let a = try bench.storeA()
    let b = try bench.storeB()
    try bench.add("T-1", on: b)
    try bench.add("T-2", on: b)
    try bench.sync(b)
    // A started its own queue before its first sync.
    try bench.add("T-2", on: a)
    try bench.add("T-3", on: a)
    let report = try bench.sync(a)
    #expect(report.action == .replayed && report.received == 2 && report.sent == 1)
    #expect(report.dropped.map(\.operation.task) == ["T-2"])
    #expect(try a.snapshot().records().map(\.id).sorted() == ["T-1", "T-2", "T-3"])
    #expect(try bench.a.git("rev-list", "--count", Layout.refName) == "3")
  }

  // MARK: Races

  @Test func aPushThatLosesItsRaceStartsAgainFromTheFetch() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1", "T-2")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try a.cancel("T-1")
    // B publishes between A's fetch and A's push: A's first push is refused, and A replays over it. (B
    // pushes with the git CLI: a sync of this process would wait for A's, which holds the process's lock.)
    let report = try bench.sync(a) {
      try b.cancel("T-2")
      try bench.b.git("push", "-q", "file://" + bench.bare, "\(Layout.refName):\(Layout.refName)")
    }
    #expect(report.attempts == 2)
    #expect(report.action == .replayed && report.sent == 1)
    #expect(try bench.remoteRecord("T-1")?.status == .cancelled)
    #expect(try bench.remoteRecord("T-2")?.status == .cancelled)
  }

  @Test func aSyncWithNothingToDoIsOneAttempt() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let report = try bench.sync(try bench.storeA())
    #expect(report.action == .upToDate && report.attempts == 1)
  }
}
