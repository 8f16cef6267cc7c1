import Foundation
import Git
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The queue store against real repositories: what each operation writes, checked with the git CLI.
@Suite struct QueueStoreTests {
  @Test func anEmptyQueueHasNoRefAndNoRecords() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    #expect(try store.tip() == nil)
    let snapshot = try store.snapshot()
    #expect(snapshot.commit == nil)
    #expect(try snapshot.records().isEmpty)
    #expect(try snapshot.record("T-1") == nil)
    #expect(try store.history().isEmpty)
  }

  @Test func addWritesTheLayoutOfFormat1() throws {
    let scratch = try ScratchRepository()
    let record = try scratch.addTask("T-001", body: "Implement feature X.")
    let bucket = try sha256sumBucket("T-001")
    #expect(
      try scratch.queuePaths() == [
        "taskq.json", "tasks/\(bucket)/T-001/record.json", "tasks/\(bucket)/T-001/task.md",
      ])
    let meta = try JSONSerialization.jsonObject(with: Data(try scratch.queueFile("taskq.json").utf8))
    let metaObject = try #require(meta as? [String: Any])
    #expect(metaObject["format"] as? Int == 1)
    #expect(metaObject["next_seq"] as? Int == 2)
    #expect(record.taskFile == "refs/taskq/queue:tasks/\(bucket)/T-001/task.md")
    // `git show <task_file>` prints the canonical task file.
    let canonical = try scratch.git("show", record.taskFile)
    #expect(canonical.hasPrefix("---\nid: T-001\n"))
    #expect(canonical.hasSuffix("---\nImplement feature X."))
    #expect(try scratch.fsck() == (0, ""))
  }

  @Test func recordJSONHasEverySeedFieldAndOurs() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    let text = try scratch.queueFile("tasks/\(try sha256sumBucket("T-001"))/T-001/record.json")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    for field in seedRecordFields + ["seq", "priority", "depends_on", "worker", "lease_expires_at"] {
      #expect(object.keys.contains(field), "record.json lacks '\(field)'")
    }
    // Absent values are written as null, not left out.
    #expect(object["container"] is NSNull)
    #expect(object["port"] is NSNull)
    #expect(object["error_file"] is NSNull)
  }

  @Test func recordFieldsAfterAdd() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store(worker: "host-a:1")
    let before = Int(Date().timeIntervalSince1970)
    try scratch.addTask("A", store: store)
    let record = try store.add(
      NewTask(
        id: "B", repo: scratch.path, base: "main", branch: "feature/b", worktreePath: "/tmp/wt/b", priority: 7,
        dependsOn: ["A"], body: "Body of B."))
    let after = Int(Date().timeIntervalSince1970)
    let stored = try #require(try store.snapshot().record("B"))
    #expect(stored == record)
    #expect(stored.id == "B")
    #expect(stored.repo == scratch.path)
    #expect(stored.base == "main")
    #expect(stored.branch == "feature/b")
    #expect(stored.worktreePath == "/tmp/wt/b")
    #expect(stored.status == .todo)
    #expect(stored.attempt == 0)
    #expect(stored.seq == 2)
    #expect(stored.priority == 7)
    #expect(stored.dependsOn == ["A"])
    #expect(stored.container == nil && stored.port == nil && stored.sessionID == nil && stored.errorFile == nil)
    #expect(stored.worker == nil && stored.leaseExpiresAt == nil)
    #expect(stored.createdAt == stored.updatedAt)
    let created = try #require(Timestamp.parse(stored.createdAt))
    #expect(created >= before && created <= after)
    #expect(stored.createdAt.hasSuffix("+00:00"))
    #expect(try store.snapshot().taskFile("B")?.hasSuffix("\nBody of B.\n") == true)
    #expect(try store.snapshot().records().map(\.id) == ["A", "B"])
  }

  @Test func addRefusesADuplicateAndUnknownOrSelfDependencies() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    #expect(throws: QueueError.duplicate("T-1")) { try scratch.addTask("T-1", store: store) }
    #expect(throws: QueueError.self) { try scratch.addTask("T-2", dependsOn: ["nope"], store: store) }
    #expect(throws: QueueError.self) { try scratch.addTask("T-3", dependsOn: ["T-3"], store: store) }
    #expect(throws: QueueError.self) { try scratch.addTask("T-4", dependsOn: ["../x"], store: store) }
    #expect(throws: QueueError.self) { try scratch.addTask("bad/id", store: store) }
    #expect(try scratch.queueTip() == tip)
  }

  @Test func cancelMovesToCancelledAndStampsTimes() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let record = try store.cancel("T-1")
    #expect(record.status == .cancelled)
    #expect(try store.snapshot().record("T-1")?.status == .cancelled)
    #expect(record.statusChangedAt == record.updatedAt)
    #expect(throws: QueueError.self) { try store.cancel("T-1") }
  }

  @Test func approveMovesReviewToDone() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    #expect(
      throws: QueueError.illegalTransition(id: "T-1", command: "approve", status: .todo, needs: [.review])
    ) { try store.approve("T-1") }
    try scratch.drive("T-1", to: .review, store: store)
    #expect(try store.approve("T-1").status == .done)
    #expect(try store.snapshot().record("T-1")?.status == .done)
  }

  @Test func retryClearsRuntimeHandlesKeepsTheWorktreeAndCountsAnAttempt() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try store.transition("T-1", to: .planning, command: "claim") { record in
      record.worker = "w:1"
      record.leaseExpiresAt = "2030-01-01T00:00:00+00:00"
      record.container = "task-T-1"
      record.port = 4100
      record.sessionID = "ses_1"
      record.worktreePath = "/tmp/wt/T-1"
    }
    try store.transition("T-1", to: .failed, command: "fail")
    let retried = try store.retry("T-1")
    #expect(retried.status == .todo)
    #expect(retried.attempt == 1)
    #expect(retried.container == nil && retried.port == nil && retried.sessionID == nil)
    #expect(retried.worker == nil && retried.leaseExpiresAt == nil)
    #expect(retried.worktreePath == "/tmp/wt/T-1")
    try store.transition("T-1", to: .planning, command: "claim")
    try store.transition("T-1", to: .failed, command: "fail")
    #expect(try store.retry("T-1").attempt == 2)
  }

  @Test func errorReportsAreKeptInTheTaskDirectory() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try store.transition("T-1", to: .planning, command: "claim")
    try store.update { tx in
      var record = try tx.existing("T-1")
      try tx.move(&record, to: .failed, command: "fail")
      try tx.addErrorReport(&record, markdown: "# failed\nfirst\n", summary: "first")
      try tx.addErrorReport(&record, markdown: "# failed\nsecond\n", summary: "second")
      tx.put(record)
      tx.operation = Operation(kind: "fail", task: "T-1", from: .planning, to: .failed, worker: tx.worker)
    }
    let snapshot = try store.snapshot()
    let record = try #require(try snapshot.record("T-1"))
    let reports = try snapshot.errorReports("T-1")
    #expect(reports.count == 2)
    #expect(record.lastError == "second")
    let errorFile = try #require(record.errorFile)
    #expect(errorFile.hasPrefix("refs/taskq/queue:tasks/\(try sha256sumBucket("T-1"))/T-1/errors/"))
    #expect(try scratch.git("show", errorFile) == "# failed\nsecond")
    // A retry keeps the reports.
    try store.retry("T-1")
    #expect(try store.snapshot().errorReports("T-1") == reports)
  }

  @Test func removeDeletesTheTaskDirectoryAndTheEmptyBucket() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try scratch.addTask("T-2", store: store)
    let removed = try store.remove("T-1")
    #expect(removed.id == "T-1")
    #expect(try store.snapshot().record("T-1") == nil)
    #expect(try scratch.queueRecordIDs() == ["T-2"])
    try store.remove("T-2")
    // No empty bucket or tasks directory is left behind.
    #expect(try scratch.git("ls-tree", "-r", "-t", "--name-only", "refs/taskq/queue") == "taskq.json")
    #expect(try scratch.fsck() == (0, ""))
    #expect(throws: QueueError.notFound("T-1")) { try store.remove("T-1") }
    // The id can be used again, with a new sequence number.
    #expect(try scratch.addTask("T-1", store: store).seq == 3)
  }

  @Test func removeIsRefusedWhileRunningOrWhileAPendingTaskDependsOnIt() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("A", store: store)
    try scratch.addTask("B", dependsOn: ["A"], store: store)
    let tip = try scratch.queueTip()
    let error = try #require(throws: QueueError.self) { try store.remove("A") }
    #expect(error.description.contains("task 'B' depends on it"), "\(error)")
    #expect(try scratch.queueTip() == tip)
    try store.cancel("B")
    try store.remove("A")  // B is cancelled: nothing waits on A any more
    try scratch.addTask("C", store: store)
    try store.transition("C", to: .planning, command: "claim")
    do {
      try store.remove("C")
      Issue.record("remove of a planning task succeeded")
    } catch let error as QueueError {
      guard case .illegalTransition(_, "remove", .planning, _) = error else {
        Issue.record("unexpected error \(error)")
        return
      }
    }
  }

  @Test func unknownIDsAreNotFoundForEveryCommand() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    #expect(throws: QueueError.notFound("nope")) { try store.approve("nope") }
    #expect(throws: QueueError.notFound("nope")) { try store.cancel("nope") }
    #expect(throws: QueueError.notFound("nope")) { try store.retry("nope") }
    #expect(throws: QueueError.notFound("nope")) { try store.remove("nope") }
    #expect(try scratch.queueTip() == tip)
  }

  // MARK: Buckets

  /// Ids of several lengths, including those around SHA-256's 55/56/64-byte padding boundaries.
  static let bucketIDs = [
    "a", "T-001", "T-002", "Z9", "task.with.dots", "x_y-z",
    String(repeating: "a", count: 55), String(repeating: "b", count: 56), String(repeating: "c", count: 57),
    String(repeating: "d", count: 63), String(repeating: "e", count: 64),
  ]

  @Test(arguments: bucketIDs)
  func bucketIsTheFirstTwoHexDigitsOfSHA256(id: String) throws {
    #expect(Layout.bucket(of: id) == (try sha256sumBucket(id)))
    #expect(Layout.taskDirectory(id) == "tasks/\(try sha256sumBucket(id))/\(id)")
  }

  @Test func everyTaskIsStoredAtItsBucketPath() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    for id in Self.bucketIDs { try scratch.addTask(id, store: store) }
    let paths = Set(try scratch.queuePaths())
    for id in Self.bucketIDs {
      let bucket = try sha256sumBucket(id)
      #expect(paths.contains("tasks/\(bucket)/\(id)/record.json"), "\(id) not at bucket \(bucket)")
      #expect(paths.contains("tasks/\(bucket)/\(id)/task.md"))
    }
    #expect(paths.count == 1 + 2 * Self.bucketIDs.count)
  }

  // MARK: History

  @Test func eachChangeIsOneCommitWithSubjectAndTrailers() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store(worker: "host-a:42")
    try scratch.addTask("T-1", store: store)
    try store.transition("T-1", to: .planning, command: "claim")
    try store.transition("T-1", to: .failed, command: "fail")
    try store.retry("T-1")
    try store.cancel("T-1")
    try store.remove("T-1")

    let messages = try scratch.queueMessages()
    #expect(messages.count == 6)
    #expect(
      messages.map { $0.components(separatedBy: "\n")[0] } == [
        "T-1: removed (was cancelled)", "T-1: todo → cancelled", "T-1: failed → todo", "T-1: planning → failed",
        "T-1: todo → planning", "T-1: added (todo)",
      ])
    #expect(
      messages.last == """
        T-1: added (todo)

        Taskq-Op: add
        Taskq-Task: T-1
        Taskq-To: todo
        Taskq-Worker: host-a:42
        """)
    // git itself parses the trailers.
    #expect(try scratch.queueTrailers("Taskq-Op") == ["remove", "cancel", "retry", "fail", "claim", "add"])
    #expect(try scratch.queueTrailers("Taskq-Task") == Array(repeating: "T-1", count: 6))
    #expect(try scratch.queueTrailers("Taskq-From") == ["cancelled", "todo", "failed", "planning", "todo", ""])
    #expect(try scratch.queueTrailers("Taskq-To") == ["", "cancelled", "todo", "failed", "planning", "todo"])
    #expect(try scratch.queueTrailers("Taskq-Worker") == Array(repeating: "host-a:42", count: 6))
    // A linear history, one parent each, authored with the repository's identity.
    #expect(try scratch.git("rev-list", "--count", "--merges", "refs/taskq/queue") == "0")
    #expect(try scratch.git("log", "-1", "--format=%an <%ae>", "refs/taskq/queue") == "Test User <test@example.com>")

    let history = try store.history()
    #expect(history.map(\.operation.kind) == ["remove", "cancel", "retry", "fail", "claim", "add"])
    #expect(
      history.first?.operation == Operation(kind: "remove", task: "T-1", from: .cancelled, to: nil, worker: "host-a:42")
    )
    #expect(try store.history(limit: 2).count == 2)
    #expect(try store.history(task: "other").isEmpty)
  }

  // MARK: Format guard

  @Test func aNewerFormatIsRefusedWithOneLine() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-1")
    try scratch.writeQueueCommitWithCLI(meta: "{\"format\": 2, \"next_seq\": 2}\n")
    let tip = try scratch.queueTip()
    let store = try scratch.store()
    #expect(throws: QueueError.newerFormat(found: 2, supported: 1)) { try store.snapshot() }
    #expect(throws: QueueError.newerFormat(found: 2, supported: 1)) { try scratch.addTask("T-2", store: store) }
    #expect(throws: QueueError.newerFormat(found: 2, supported: 1)) { try store.cancel("T-1") }
    #expect(try scratch.queueTip() == tip)
    let message = QueueError.newerFormat(found: 2, supported: 1).description
    #expect(!message.contains("\n"))
    #expect(message.contains("format 2"))

    let result = try scratch.taskq("status")
    #expect(result.status == 1)
    #expect(result.stderrLines == ["error: \(message)"])
    #expect(try scratch.queueTip() == tip)
  }

  @Test(arguments: [
    "not json", "{}", "{\"format\": \"1\", \"next_seq\": 1}", "{\"format\": 1}", "{\"format\": 0, \"next_seq\": 1}",
  ])
  func aDamagedTaskqJSONIsReportedAsCorrupt(meta: String) throws {
    let scratch = try ScratchRepository()
    try scratch.writeQueueCommitWithCLI(meta: meta)
    let error = try #require(throws: QueueError.self) { try scratch.store().snapshot() }
    guard case .corrupt = error else {
      Issue.record("expected .corrupt, got \(error)")
      return
    }
  }

  /// A damaged record is skipped by readers and named, never fatal (issue 11; see RecordRulesTests).
  @Test func aDamagedRecordIsSkippedAndNamedNotFatal() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-1")
    let path = "tasks/\(try sha256sumBucket("T-1"))/T-1/record.json"
    try scratch.writeQueueCommitWithCLI(meta: "{\"format\": 1, \"next_seq\": 2}", files: [path: "{\"id\": 5}"])
    let snapshot = try scratch.store().snapshot()
    #expect(try snapshot.records().isEmpty)
    #expect(try snapshot.record("T-1") == nil)
    #expect(try snapshot.damagedRecords().map(\.name) == ["T-1"])
    let result = try scratch.taskq("status", "--json")
    #expect(result.status == 0)
    #expect(result.stderrLines == [DamageNotice.message(1)])
  }

  // MARK: Transactions

  @Test func aClosureThatThrowsWritesNothing() throws {
    struct Refused: Error {}
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    let objects = try scratch.objectCount()
    #expect(throws: Refused.self) {
      try store.update { tx in
        var record = try tx.existing("T-1")
        record.priority = 99
        tx.put(record)
        tx.putFile("T-1", "extra.md", "x")
        tx.operation = Operation(kind: "update", task: "T-1", from: nil, to: nil, worker: tx.worker)
        throw Refused()
      }
    }
    #expect(try scratch.queueTip() == tip)
    #expect(try scratch.objectCount() == objects)
    #expect(try store.snapshot().record("T-1")?.priority == 0)
  }

  @Test func aClosureThatChangesNothingMakesNoCommit() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    let value = try store.update { tx in try tx.existing("T-1").id }
    #expect(value == "T-1")
    #expect(try scratch.queueTip() == tip)
  }

  @Test func aChangeWithoutAnOperationIsAnInternalErrorAndWritesNothing() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    #expect(throws: QueueError.self) {
      try store.update { tx in
        var record = try tx.existing("T-1")
        record.priority = 3
        tx.put(record)
      }
    }
    #expect(try scratch.queueTip() == tip)
  }

  @Test func aClosureRunOnAStaleSnapshotIsRetriedOnTheNewTip() throws {
    let scratch = try ScratchRepository()
    let mine = try scratch.store(worker: "mine")
    let theirs = try scratch.store(worker: "theirs")
    try scratch.addTask("T-1", store: mine)
    var runs = 0
    var bases: [ObjectID?] = []
    let record = try mine.update { tx -> TaskRecord in
      runs += 1
      bases.append(tx.base.commit)
      if runs == 1 {
        // Another writer wins the race after this attempt read its snapshot.
        try scratch.addTask("T-2", store: theirs)
      }
      var record = try tx.existing("T-1")
      try tx.move(&record, to: .cancelled, command: "cancel")
      tx.put(record)
      tx.operation = Operation(kind: "cancel", task: "T-1", from: .todo, to: .cancelled, worker: tx.worker)
      return record
    }
    #expect(runs == 2)
    #expect(bases[0] != bases[1])
    #expect(record.status == .cancelled)
    let snapshot = try mine.snapshot()
    #expect(try snapshot.record("T-1")?.status == .cancelled)
    #expect(try snapshot.record("T-2")?.status == .todo)
    #expect(try scratch.queueTrailers("Taskq-Worker") == ["mine", "theirs", "mine"])
    #expect(try scratch.git("rev-list", "--count", "refs/taskq/queue") == "3")
  }

  @Test func theRetriedClosureSeesTheWinnersChangeAndCanRefuse() throws {
    let scratch = try ScratchRepository()
    let mine = try scratch.store(worker: "mine")
    let theirs = try scratch.store(worker: "theirs")
    try scratch.addTask("T-1", store: mine)
    var runs = 0
    #expect(throws: QueueError.duplicate("T-2")) {
      try mine.update { tx in
        runs += 1
        if try tx.record("T-2") != nil { throw QueueError.duplicate("T-2") }
        if runs == 1 { try scratch.addTask("T-2", body: "theirs", store: theirs) }
        tx.meta.nextSeq += 1
        tx.operation = Operation(kind: "update", task: "T-2", from: nil, to: nil, worker: tx.worker)
      }
    }
    #expect(runs == 2)
    #expect(try scratch.queueTrailers("Taskq-Worker") == ["theirs", "mine"])
  }

  @Test func theFirstWriteLosingTheRaceToCreateTheRefIsRetried() throws {
    let scratch = try ScratchRepository()
    let mine = try scratch.store(worker: "mine")
    let theirs = try scratch.store(worker: "theirs")
    var runs = 0
    try mine.update { tx in
      runs += 1
      if runs == 1 {
        #expect(tx.base.commit == nil)
        try scratch.addTask("T-1", store: theirs)
      }
      var meta = tx.meta
      meta.nextSeq += 10
      tx.meta = meta
      tx.operation = Operation(kind: "update", task: "meta", from: nil, to: nil, worker: tx.worker)
    }
    #expect(runs == 2)
    #expect(try mine.snapshot().meta.nextSeq == 12)
    #expect(try mine.snapshot().record("T-1") != nil)
  }

  /// An update holds this machine's writer lock from its read to its swap: a writer on another thread waits
  /// for it instead of landing in between, so the first closure is not thrown away and run again.
  @Test func anUpdateHoldsTheWriterLockFromItsReadToItsSwap() throws {
    let scratch = try ScratchRepository()
    let mine = try scratch.store(worker: "mine")
    try scratch.addTask("T-1", store: mine)
    try scratch.addTask("T-2", store: mine)
    let path = scratch.path
    let started = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    let outcome = Locked("not run")
    var runs = 0
    try mine.update { tx in
      runs += 1
      if runs == 1 {
        let thread = Thread {
          do {
            let theirs = QueueStore(repository: try Repository.open(at: path), worker: "theirs")
            started.signal()
            try theirs.cancel("T-2")
            outcome.withLock { $0 = "cancelled" }
          } catch {
            outcome.withLock { $0 = "\(error)" }
          }
          finished.signal()
        }
        thread.start()
        started.wait()
        // Long enough for the other writer to have landed here, were it not held off.
        usleep(300_000)
      }
      var record = try tx.existing("T-1")
      try tx.move(&record, to: .cancelled, command: "cancel")
      tx.put(record)
      tx.operation = Operation(kind: "cancel", task: "T-1", from: .todo, to: .cancelled, worker: tx.worker)
    }
    finished.wait()
    #expect(runs == 1)
    #expect(outcome.withLock { $0 } == "cancelled")
    // Newest first: the other writer's cancel landed after this update's.
    #expect(try scratch.queueTrailers("Taskq-Worker") == ["theirs", "mine", "mine", "mine"])
    let snapshot = try mine.snapshot()
    #expect(try snapshot.record("T-1")?.status == .cancelled)
    #expect(try snapshot.record("T-2")?.status == .cancelled)
  }

  /// Workers on several threads (each its own store, as processes are) claiming at once take every task
  /// exactly once, one commit per claim.
  @Test func concurrentClaimsTakeEveryTaskExactlyOnce() throws {
    let scratch = try ScratchRepository()
    let setup = try scratch.store(worker: "setup")
    let count = 24
    for k in 0..<count { try scratch.addTask("C-\(k)", store: setup) }
    let path = scratch.path
    let claimed = Locked<[String: [String]]>([:])
    let failures = Locked<[String]>([])
    let done = DispatchSemaphore(value: 0)
    let workers = 4
    for worker in 0..<workers {
      let thread = Thread {
        do {
          let store = QueueStore(repository: try Repository.open(at: path), worker: "w\(worker)")
          while let record = try store.claimNext() {
            claimed.withLock { $0["w\(worker)", default: []].append(record.id) }
          }
        } catch {
          failures.withLock { $0.append("\(error)") }
        }
        done.signal()
      }
      thread.start()
    }
    for _ in 0..<workers { done.wait() }
    #expect(failures.withLock { $0 }.isEmpty)
    let all = claimed.withLock { $0 }.values.flatMap { $0 }
    #expect(all.count == count)
    #expect(Set(all) == Set((0..<count).map { "C-\($0)" }))
    let records = try setup.snapshot().records()
    #expect(records.allSatisfy { $0.status == .planning })
    // The worker each record names is the one that was told it claimed it.
    for (worker, ids) in claimed.withLock({ $0 }) {
      for id in ids { #expect(records.first { $0.id == id }?.worker == worker) }
    }
    #expect(try scratch.git("rev-list", "--count", "refs/taskq/queue") == "\(2 * count)")
  }

  /// A value shared by test threads.
  final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R {
      lock.lock()
      defer { lock.unlock() }
      return body(&value)
    }
  }

  // MARK: The ref lock

  /// Marks the writer lock as left by a git-taskq writer that died inside its compare-and-swap.
  func markDeadWriter(_ store: QueueStore) throws {
    try FileManager.default.createDirectory(
      atPath: (store.writerLockPath as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try "999999 dead-host writing\n".write(toFile: store.writerLockPath, atomically: false, encoding: .utf8)
  }

  @Test func aDeadWritersLockIsRecoveredWithAWarningAndTheWriteProceeds() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try markDeadWriter(store)
    #expect(FileManager.default.createFile(atPath: scratch.queueLockPath, contents: Data("dead\n".utf8)))
    try backdate(scratch.queueLockPath, "1 minute ago")
    #expect(store.staleLock() == .leftByDeadWriter(age: 60) || store.staleLock() == .leftByDeadWriter(age: 61))
    var warnings: [String] = []
    store.warn = { warnings.append($0) }
    try scratch.addTask("T-2", store: store)
    #expect(try store.snapshot().record("T-2") != nil)
    #expect(!FileManager.default.fileExists(atPath: scratch.queueLockPath))
    #expect(warnings.count == 1)
    #expect(warnings.first?.hasPrefix("warning: removed a stale lock") == true, "\(warnings)")
    #expect(warnings.first?.contains("queue.lock") == true)
    #expect(warnings.first?.contains("\n") == false)
    #expect(store.staleLock() == nil)
  }

  /// The writer lock's marks are written over the first line without truncating the file: what a longer
  /// earlier line leaves after it is never read, and a finished write reads as finished (a `queue.lock`
  /// found then is a foreign process's, never removed).
  @Test func aShorterMarkOverALongerLineReadsAsItsOwn() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let long = "9999999999 a-host-name-much-longer-than-this-machines-own.example.org writing\n"
    try long.write(toFile: store.writerLockPath, atomically: false, encoding: .utf8)
    try scratch.addTask("T-2", store: store)
    let text = try String(contentsOfFile: store.writerLockPath, encoding: .utf8)
    let first = text.split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
    #expect(first.hasPrefix("\(getpid()) ") && first.hasSuffix(" done"), "\(text)")
    #expect(text.count <= long.count, "the file grew: \(text)")
    #expect(FileManager.default.createFile(atPath: scratch.queueLockPath, contents: Data("other\n".utf8)))
    try backdate(scratch.queueLockPath, "1 minute ago")
    #expect(store.staleLock() == .foreign(age: 60) || store.staleLock() == .foreign(age: 61))
  }

  /// A dead writer's lock dated in the future (the clock was stepped back after the crash) is recovered
  /// all the same: the writer lock, not the date, says whose it is.
  @Test func aDeadWritersLockFromTheFutureIsRecovered() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try markDeadWriter(store)
    #expect(FileManager.default.createFile(atPath: scratch.queueLockPath, contents: Data()))
    try backdate(scratch.queueLockPath, "+1 hour")
    let start = monotonicSeconds()
    try scratch.addTask("T-2", store: store)
    #expect(monotonicSeconds() - start < 2)
    #expect(try store.snapshot().record("T-2") != nil)
  }

  /// A lock no git-taskq writer left is a foreign git process's (`git gc`'s pack-refs, `git update-ref`),
  /// alive or crashed: however old, it is never removed. The writer waits `lockWait`, then gives up in one
  /// line naming the fix, without writing; when the foreign process finishes in time, the write lands.
  @Test func aForeignLockIsWaitedForButNeverRemoved() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    #expect(FileManager.default.createFile(atPath: scratch.queueLockPath, contents: Data("alive\n".utf8)))
    try backdate(scratch.queueLockPath, "1 minute ago")
    #expect(store.staleLock() == .foreign(age: 60) || store.staleLock() == .foreign(age: 61))
    store.lockWait = 0.5
    var warnings: [String] = []
    store.warn = { warnings.append($0) }
    let start = monotonicSeconds()
    let error = try #require(throws: QueueError.self) { try scratch.addTask("T-2", store: store) }
    guard case .locked = error else {
      Issue.record("expected .locked, got \(error)")
      return
    }
    #expect(error.description.contains("rm -rf '\(store.lockPath)'"), "\(error)")
    #expect(!error.description.contains("\n"))
    #expect(monotonicSeconds() - start < 5)
    #expect(FileManager.default.fileExists(atPath: scratch.queueLockPath))
    #expect(warnings.isEmpty)
    #expect(try scratch.queueTip() == tip)

    // The foreign process finishes while the writer waits: the write lands.
    store.lockWait = 10
    let lock = scratch.queueLockPath
    let finisher = Thread {
      usleep(300_000)
      unlink(lock)
    }
    finisher.start()
    try scratch.addTask("T-2", store: store)
    #expect(warnings.isEmpty)
    #expect(try store.snapshot().record("T-2") != nil)
  }

  /// The writer lock is never followed through a symbolic link (it would truncate and write the target).
  @Test func aWriterLockThatIsASymlinkIsRefusedAndItsTargetUntouched() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let victim = try scratch.directory.write("victim.txt", "precious\n")
    unlink(store.writerLockPath)
    #expect(symlink(victim, store.writerLockPath) == 0)
    let tip = try scratch.queueTip()
    let error = try #require(throws: QueueError.self) { try scratch.addTask("T-2", store: store) }
    #expect(error.description.contains("symbolic link"), "\(error)")
    #expect(!error.description.contains("\n"))
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
    #expect(try scratch.queueTip() == tip)
  }

  /// A writer paused while it holds the writer lock (and maybe `queue.lock`) is alive: however old its lock
  /// is, nobody removes it. Others wait, then give up naming it; once it has died, writes proceed.
  @Test func aLiveWritersLockIsNeverRemovedHoweverOld() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    // The paused writer: it holds the writer lock (an flock, as every writer does), marked as writing, and
    // `queue.lock`.
    let holder = open(store.writerLockPath, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
    #expect(holder >= 0)
    #expect(flock(holder, LOCK_EX) == 0)
    #expect(ftruncate(holder, 0) == 0)
    _ = "4242 paused-host writing\n".withCString { write(holder, $0, strlen($0)) }
    #expect(FileManager.default.createFile(atPath: scratch.queueLockPath, contents: Data()))
    try backdate(scratch.queueLockPath, "1 minute ago")
    #expect(store.staleLock() == nil)

    store.lockWait = 0.5
    var warnings: [String] = []
    store.warn = { warnings.append($0) }
    let error = try #require(throws: QueueError.self) { try scratch.addTask("T-2", store: store) }
    guard case .writerBusy(let name, _) = error else {
      Issue.record("expected .writerBusy, got \(error)")
      return
    }
    #expect(name == "4242 paused-host")
    #expect(error.description.contains("kill -CONT 4242"), "\(error)")
    #expect(!error.description.contains("\n"))
    #expect(FileManager.default.fileExists(atPath: scratch.queueLockPath))
    #expect(warnings.isEmpty)
    #expect(try scratch.queueTip() == tip)

    // The writer dies: the kernel drops its flock, and its lock is now provably abandoned.
    close(holder)
    #expect(store.staleLock() != nil)
    store.lockWait = 10
    try scratch.addTask("T-2", store: store)
    #expect(warnings.count == 1)
    #expect(try store.snapshot().record("T-2") != nil)
  }

  /// Every update of the queue ref is in its reflog, so every earlier tip stays reachable.
  @Test func everyUpdateIsLoggedInTheReflog() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try scratch.addTask("T-2", store: store)
    try scratch.drive("T-1", to: .planning, store: store)
    let log = try scratch.git("reflog", "show", "--format=%H %gs", "refs/taskq/queue")
    let lines = log.components(separatedBy: "\n")
    #expect(lines.count == 3, "\(log)")
    #expect(lines.first?.hasPrefix(try scratch.queueTip() ?? "?") == true)
    #expect(lines.last?.hasSuffix("taskq: T-1: added (todo)") == true, "\(log)")
  }

  @Test func aStaleLockThatCannotBeRemovedFailsWithOneLine() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    let tip = try scratch.queueTip()
    // A directory in the lock's place, after a dead writer: libgit2 cannot take the lock, and it is not
    // removed (not a lock file).
    try markDeadWriter(store)
    store.lockWait = 0.5
    try FileManager.default.createDirectory(atPath: scratch.queueLockPath, withIntermediateDirectories: false)
    try backdate(scratch.queueLockPath, "1 minute ago")
    let error = try #require(throws: QueueError.self) { try scratch.addTask("T-2", store: store) }
    guard case .locked(let path, let age) = error else {
      Issue.record("expected .locked, got \(error)")
      return
    }
    #expect(path.hasSuffix("refs/taskq/queue.lock"))
    #expect(age >= 59)
    #expect(!error.description.contains("\n"))
    #expect(try scratch.queueTip() == tip)
  }
}
