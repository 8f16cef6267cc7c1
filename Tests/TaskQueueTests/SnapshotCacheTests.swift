import Foundation
import Git
import TaskqTestSupport
import Testing

@testable import TaskQueue

#if canImport(Glibc)
import Glibc
#endif

/// The derived snapshot cache (DESIGN §10): whatever state it is in, `records()` returns exactly what a full
/// read of the tree returns.
@Suite struct SnapshotCacheTests {
  // Small helpers of this suite's own (it relies on nothing but the scratch repository of the test support).

  static func store(_ scratch: ScratchRepository, worker: String = "test") throws -> QueueStore {
    QueueStore(repository: try scratch.open(), worker: worker)
  }

  static func add(
    _ scratch: ScratchRepository, _ id: String, dependsOn: [String] = [], priority: Int = 0, store: QueueStore
  ) throws {
    try store.add(
      NewTask(id: id, repo: scratch.path, base: "main", priority: priority, dependsOn: dependsOn, body: "Do it."))
  }

  /// Moves `id` from `todo` along legal transitions to `status`.
  static func drive(_ id: String, to status: TaskStatus, store: QueueStore) throws {
    for step in ScratchRepository.path(to: status) { try store.transition(id, to: step, command: "test") }
  }

  /// Runs the built `git-taskq` in the repository and returns its stdout.
  ///
  /// - Throws: unless it exits 0.
  @discardableResult
  static func taskq(_ scratch: ScratchRepository, _ arguments: String...) throws -> String {
    let result = try Taskq.run(arguments, in: scratch.path)
    guard result.status == 0 else {
      throw TestFailure("git-taskq \(arguments.joined(separator: " ")): \(result.stderrText)")
    }
    return result.stdoutText
  }

  /// A scratch repository with a queue of `count` tasks in every status, some with dependencies, priorities
  /// and failure reports.
  static func populatedQueue(_ count: Int = 40) throws -> ScratchRepository {
    let scratch = try ScratchRepository()
    let store = try Self.store(scratch, worker: "writer")
    let statuses: [TaskStatus] = [.todo, .planning, .building, .review, .failed, .done, .cancelled]
    for index in 1...count {
      let dependsOn = index > 3 && index % 5 == 0 ? ["T-\(index - 3)"] : []
      try Self.add(scratch, "T-\(index)", dependsOn: dependsOn, priority: index % 7 == 0 ? 3 : 0, store: store)
      let status = statuses[index % statuses.count]
      if status == .failed {
        try store.transition("T-\(index)", to: .planning, command: "test")
        try store.fail("T-\(index)", summary: "exit status 1", report: "# failed\n")
      } else {
        try Self.drive("T-\(index)", to: status, store: store)
      }
    }
    return scratch
  }

  /// Checks the cache against a full read at the tip, through the in-memory index and through the file.
  static func expectMatchesFullRead(_ store: QueueStore, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let snapshot = try store.snapshot()
    let full = try snapshot.readAllRecords()
    #expect(try snapshot.records() == full, "in-memory index", sourceLocation: sourceLocation)
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().records() == full, "cache file", sourceLocation: sourceLocation)
  }

  func cachePath(_ scratch: ScratchRepository) -> String { scratch.path + "/.git/taskq/cache-v1" }

  @Test func theCodecCoversEveryFieldOfTaskRecord() {
    // When this fails, a property was added to TaskRecord: add it to RecordCodec and RecordJSON.
    #expect(RecordCodec.coversTaskRecord)
    #expect(SnapshotCache.isEnabled)
  }

  @Test func aCacheHitReturnsWhatAFullReadReturns() throws {
    let scratch = try Self.populatedQueue()
    let store = try Self.store(scratch)
    SnapshotCache.clear(for: store.repository)
    let snapshot = try store.snapshot()
    let full = try snapshot.readAllRecords()
    #expect(full.count == 40)
    // Built from the tree, then written.
    #expect(try snapshot.records() == full)
    #expect(FileManager.default.fileExists(atPath: cachePath(scratch)))
    // From this process's memory, then from the file alone (as a new process would).
    #expect(try store.snapshot().records() == full)
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().records() == full)
    // A fresh repository handle (another store) reads the same file.
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try Self.store(scratch, worker: "reader").snapshot().records() == full)
  }

  @Test func theCacheFollowsChangesMadeByAnotherStore() throws {
    let scratch = try Self.populatedQueue(30)
    let reader = try Self.store(scratch, worker: "reader")
    let writer = try Self.store(scratch, worker: "writer")
    SnapshotCache.clear(for: reader.repository)
    try Self.expectMatchesFullRead(reader)

    // One transition at a time: the in-place path (same order) and the file one commit behind.
    try writer.cancel("T-1")
    try Self.expectMatchesFullRead(reader)
    try writer.approve("T-3")
    try Self.expectMatchesFullRead(reader)
    try writer.retry("T-4")
    try Self.expectMatchesFullRead(reader)
    try writer.transition("T-14", to: .planning, command: "test")
    try writer.fail("T-14", summary: "boom", report: "# boom\n")
    try Self.expectMatchesFullRead(reader)
    // Adds (new seqs, maybe new buckets) and removes (maybe emptied buckets).
    try Self.add(scratch, "N-1", dependsOn: ["T-2"], store: writer)
    try Self.add(scratch, "N-2", priority: 9, store: writer)
    try Self.expectMatchesFullRead(reader)
    try writer.remove("T-6")
    try writer.remove("T-13")
    try Self.expectMatchesFullRead(reader)
    // Many changes between two reads (more than the rewrite threshold), then reads that rewrite the file.
    for index in 1...40 { try Self.add(scratch, "M-\(index)", store: writer) }
    for index in 1...10 { try writer.cancel("M-\(index)") }
    try Self.expectMatchesFullRead(reader)
    try writer.remove("M-11")
    try Self.expectMatchesFullRead(reader)
  }

  @Test func theCacheFollowsAnotherProcess() throws {
    let scratch = try Self.populatedQueue(12)
    let reader = try Self.store(scratch, worker: "reader")
    try Self.expectMatchesFullRead(reader)
    try Self.taskq(scratch, "cancel", "--id", "T-1")
    try Self.taskq(scratch, "add", "--id", "P-1", "--task", "from another process")
    try Self.taskq(scratch, "remove", "--id", "T-5")
    try Self.expectMatchesFullRead(reader)
    // The binary's own reads go through the same file.
    let output = try Self.taskq(scratch, "status", "--json")
    let objects = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]])
    let listed = objects.compactMap { $0["id"] as? String }
    #expect(listed == (try reader.snapshot().readAllRecords().map(\.id)))
  }

  @Test func recordsWithEqualSeqsKeepTheFullReadsOrder() throws {
    let scratch = try Self.populatedQueue(10)
    let writer = try Self.store(scratch, worker: "writer")
    // Hand-made records sharing a seq (as a buggy or foreign writer could leave them).
    try writer.update { tx in
      for id in ["D-1", "D-2", "D-3", "D-4"] {
        let record = TaskRecord(
          id: id, repo: scratch.path, base: "main", branch: "task/\(id)",
          taskFile: Layout.revisionPath(Layout.taskFilePath(id)), createdAt: Timestamp.now(), seq: 5)
        tx.put(record)
      }
      tx.operation = Operation(kind: "import", task: "D-1", from: nil, to: .todo, worker: tx.worker)
    }
    let reader = try Self.store(scratch, worker: "reader")
    try Self.expectMatchesFullRead(reader)
    try writer.cancel("D-2")
    try Self.expectMatchesFullRead(reader)
    try writer.remove("D-3")
    try Self.expectMatchesFullRead(reader)
  }

  @Test(arguments: ["truncated", "flipped", "garbage", "empty", "other version"])
  func aDamagedCacheFileMeansAFullRead(_ damage: String) throws {
    let scratch = try Self.populatedQueue(20)
    let store = try Self.store(scratch)
    let full = try store.snapshot().readAllRecords()
    #expect(try store.snapshot().records() == full)
    let path = cachePath(scratch)
    var bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
    switch damage {
    case "truncated": bytes = Array(bytes.prefix(bytes.count / 2))
    case "flipped": bytes[bytes.count / 2] ^= 0x40
    case "garbage": bytes = Array("not a cache at all\n".utf8)
    case "empty": bytes = []
    default: bytes[8] &+= 1  // the format version
    }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(throws: (any Error).self) { try CacheFile.decode(bytes) }
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().records() == full)
    // The full read wrote a sound file again.
    let rewritten = try #require(FileManager.default.contents(atPath: path)).map { $0 }
    #expect(try CacheFile.decode(rewritten).records == full)
  }

  @Test func deletingTheCacheLosesNothing() throws {
    let scratch = try Self.populatedQueue(20)
    let store = try Self.store(scratch)
    let before = try store.snapshot().records()
    SnapshotCache.clear(for: store.repository)
    #expect(!FileManager.default.fileExists(atPath: cachePath(scratch)))
    try FileManager.default.removeItem(atPath: scratch.path + "/.git/taskq")
    #expect(try store.snapshot().records() == before)
    #expect(try store.snapshot().records() == (try store.snapshot().readAllRecords()))
    // And the queue itself never depended on it.
    #expect(throws: Never.self) { try scratch.git("fsck", "--no-progress") }
  }

  @Test func aCacheFromAnotherRepositoryIsHarmless() throws {
    // Content addressing: another queue's index shares no tree ids that could mislead this one.
    let first = try Self.populatedQueue(15)
    let second = try Self.populatedQueue(8)
    let firstStore = try Self.store(first)
    _ = try firstStore.snapshot().records()
    let secondStore = try Self.store(second)
    let expected = try secondStore.snapshot().readAllRecords()
    SnapshotCache.clear(for: secondStore.repository)
    try FileManager.default.createDirectory(atPath: second.path + "/.git/taskq", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: cachePath(first), toPath: cachePath(second))
    #expect(try secondStore.snapshot().records() == expected)
  }

  @Test func anEmptyQueueAndAQueueWithoutTasks() throws {
    let scratch = try ScratchRepository()
    let store = try Self.store(scratch)
    #expect(try store.snapshot().records().isEmpty)
    try Self.add(scratch, "T-1", store: store)
    try store.remove("T-1")
    try Self.expectMatchesFullRead(store)
    #expect(try store.snapshot().records().isEmpty)
  }

  @Test func theFileRoundTripsEveryField() throws {
    var record = TaskRecord(
      id: "T-1", repo: "/r/é", base: "main", branch: "feature/x", taskFile: "refs/taskq/queue:tasks/aa/T/task.md",
      status: .failed, worktreePath: "/w", attempt: 2, createdAt: "2026-01-01T00:00:00+00:00", seq: 7,
      priority: -3, dependsOn: ["A", "B"])
    record.container = "task-T"
    record.port = 4242
    record.sessionID = "ses_1"
    record.errorFile = "refs/taskq/queue:tasks/aa/T/errors/x.md"
    record.worker = "host:1"
    record.leaseExpiresAt = "2026-01-01T00:10:00+00:00"
    record.lastError = "line \"one\"\ttab"
    let index = RecordIndex(
      commit: try #require(ObjectID(hex: String(repeating: "ab", count: 20))), tasksTree: nil,
      buckets: [], records: [record], unsaved: 0)
    #expect(throws: (any Error).self) { try CacheFile.decode(CacheFile.encode(index)) }  // no bucket covers it
    let covered = RecordIndex(
      commit: index.commit, tasksTree: index.commit,
      buckets: [
        RecordIndex.Bucket(
          name: "aa", tree: index.commit, taskTrees: Array(String(repeating: "cd", count: 20).utf8), positions: [0])
      ], records: [record], unsaved: 0)
    let decoded = try CacheFile.decode(CacheFile.encode(covered))
    #expect(decoded.records == [record])
    #expect(decoded.commit == covered.commit)
    #expect(decoded.buckets.map(\.taskTrees) == covered.buckets.map(\.taskTrees))
  }

  // MARK: The listing: slim entries, records and titles on demand (issue 15)

  /// Checks every field of the listing against a full read and the task files, through the in-memory index
  /// and through the file.
  static func expectListingMatchesFullRead(
    _ store: QueueStore, sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let snapshot = try store.snapshot()
    let full = try snapshot.readAllRecords()
    let titles = try full.map { try snapshot.taskFile($0.id).flatMap(TaskTitle.of(taskFile:)) }
    func check(_ listing: QueueListing, _ layer: String) throws {
      #expect(listing.count == full.count, "\(layer)", sourceLocation: sourceLocation)
      for (i, record) in full.enumerated() where i < listing.count {
        #expect(listing.id(i) == record.id, "\(layer)", sourceLocation: sourceLocation)
        #expect(listing.status(i) == record.status, "\(layer)", sourceLocation: sourceLocation)
        #expect(listing.priority(i) == record.priority, "\(layer)", sourceLocation: sourceLocation)
        #expect(listing.seq(i) == record.seq, "\(layer)", sourceLocation: sourceLocation)
        #expect(
          listing.since(i) == StatusTime.seconds(record.statusChangedAt ?? record.updatedAt), "\(layer)",
          sourceLocation: sourceLocation)
        #expect(listing.dependsOn(i) == record.dependsOn, "\(layer)", sourceLocation: sourceLocation)
        #expect(try listing.record(i) == record, "\(layer)", sourceLocation: sourceLocation)
        #expect(listing.title(i) == titles[i], "\(layer) \(record.id)", sourceLocation: sourceLocation)
      }
    }
    try check(try snapshot.listing(), "in-memory index")
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    try check(try store.snapshot().listing(), "cache file")
    try check(QueueListing(records: full, snapshot: snapshot), "full read")
  }

  @Test func theListingIsTheFullReadField() throws {
    let scratch = try Self.populatedQueue(40)
    let writer = try Self.store(scratch, worker: "writer")
    let reader = try Self.store(scratch, worker: "reader")
    SnapshotCache.clear(for: reader.repository)
    try Self.expectListingMatchesFullRead(reader)
    // Behind by a few transitions (file and memory), then past the rewrite threshold.
    try writer.cancel("T-1")
    try Self.add(scratch, "T-new", dependsOn: ["T-2"], priority: 9, store: writer)
    try Self.expectListingMatchesFullRead(reader)
    for index in 41...(41 + SnapshotCache.rewriteThreshold) { try Self.add(scratch, "T-\(index)", store: writer) }
    try Self.expectListingMatchesFullRead(reader)
  }

  @Test func aChangedTaskFileChangesItsTitle() throws {
    let scratch = try ScratchRepository()
    let store = try Self.store(scratch)
    try Self.add(scratch, "T-1", store: store)
    try Self.add(scratch, "T-2", store: store)
    _ = try store.snapshot().listing()
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().listing().title(0) == "Do it.")
    // The task file alone changes (the record does not): its task tree id changes, so its title does.
    try store.update { tx in
      tx.putFile("T-1", "task.md", "---\nid: T-1\n---\n\n# A new title  \n\nBody.\n")
      tx.operation = Operation(kind: "edit", task: "T-1", from: .todo, to: .todo, worker: tx.worker)
    }
    #expect(try store.snapshot().listing().title(0) == "A new title", "in-memory index")
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().listing().title(0) == "A new title", "cache file, one commit behind")
    #expect(try store.snapshot().listing().title(1) == "Do it.")
    try Self.expectListingMatchesFullRead(store)
  }

  @Test func aCacheFileOfTheFormerFormatIsRebuilt() throws {
    let scratch = try Self.populatedQueue(12)
    let store = try Self.store(scratch)
    let full = try store.snapshot().readAllRecords()
    _ = try store.snapshot().records()
    let path = cachePath(scratch)
    var bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
    #expect(Array(bytes[8..<12]) == [4, 0, 0, 0])
    bytes[8] = 3  // version 3: records only, no slim entries
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    #expect(throws: CacheFormatError(reason: "other format")) { try CacheFile.decode(bytes) }
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().records() == full)
    let rewritten = try #require(FileManager.default.contents(atPath: path)).map { $0 }
    #expect(Array(rewritten[8..<12]) == [4, 0, 0, 0])
    try Self.expectListingMatchesFullRead(store)
  }

  @Test func recordsThatDoNotDecodeAreReadFromGit() throws {
    // A file whose checksum holds but whose records section is garbage (only a bug could write one): the
    // entries still list, every record and title is read from git instead.
    let scratch = try Self.populatedQueue(12)
    let store = try Self.store(scratch)
    let full = try store.snapshot().readAllRecords()
    _ = try store.snapshot().records()
    let path = cachePath(scratch)
    var bytes = try #require(FileManager.default.contents(atPath: path)).map { $0 }
    let section = try #require(try CacheFile.decode(bytes).backing).records
    for offset in section { bytes[offset] = 0xFF }
    let checksum = bytes.withUnsafeBytes {
      cacheChecksum(UnsafeRawBufferPointer(rebasing: $0[CacheFile.headerSize...]))
    }
    withUnsafeBytes(of: checksum.littleEndian) { raw in
      for index in 0..<8 { bytes[CacheFile.headerSize - 8 + index] = raw[index] }
    }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let damaged = try CacheFile.decode(bytes)
    #expect(throws: CacheFormatError.self) { try damaged.record(at: 0) }
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    let listing = try store.snapshot().listing()
    #expect(try (0..<listing.count).map { try listing.record($0) } == full)
    #expect(listing.title(0) == "Do it.")
    SnapshotCache.clear(for: store.repository, keepingFile: true)
    #expect(try store.snapshot().records() == full)
  }

  @Test func claimsPickAsTheFullReadDoes() throws {
    // Priorities, dependencies (done, waiting, cancelled) and equal priorities in FIFO order.
    let scratch = try ScratchRepository()
    let store = try Self.store(scratch)
    try Self.add(scratch, "A", store: store)
    try Self.add(scratch, "Z", store: store)
    try store.cancel("Z")
    try Self.add(scratch, "B", dependsOn: ["A"], priority: 5, store: store)
    try Self.add(scratch, "C", dependsOn: ["Z"], priority: 5, store: store)
    try Self.add(scratch, "D", priority: 2, store: store)
    try Self.add(scratch, "E", priority: 2, store: store)
    var order: [String] = []
    while let claimed = try store.claimNext() {
      order.append(claimed.id)
      if claimed.id == "D" { try Self.drive("A", to: .done, store: store) }
    }
    #expect(order == ["D", "B", "E"])
    #expect(try store.snapshot().records().first { $0.id == "C" }?.status == .todo)
    // With a spread, never a lower priority while a higher one is claimable.
    try Self.add(scratch, "F", priority: 1, store: store)
    try Self.add(scratch, "G", priority: 0, store: store)
    #expect(try store.claimNext(spread: 3)?.id == "F")
  }

  /// `status` of a 100-task queue through the cache (building it, then reading the file, then one commit
  /// behind) and through git (`TASKQ_NO_CACHE=1`) is the same, byte for byte.
  @Test func statusThroughTheCacheIsStatusThroughGit() throws {
    let scratch = try ScratchRepository()
    let store = try Self.store(scratch, worker: "writer")
    // Stamped in the future, so every age shows as 0s whenever the runs happen.
    store.clock = ManualClock(at: 4_102_444_800)
    let statuses: [TaskStatus] = [.todo, .planning, .building, .review, .failed, .done, .cancelled]
    let bodies = [
      "Do it.", "# Heading title\n\nBody", "   \n\nTitle after blanks", "Wide 漢字 title", "Bell \u{07} title",
    ]
    for index in 1...100 {
      let dependsOn = index > 3 && index % 5 == 0 ? ["T-\(index - 3)"] : []
      try store.add(
        NewTask(
          id: "T-\(index)", repo: scratch.path, base: "main", priority: index % 7 == 0 ? 3 : 0, dependsOn: dependsOn,
          body: bodies[index % bodies.count]))
      let status = statuses[index % statuses.count]
      if status == .failed {
        try store.transition("T-\(index)", to: .planning, command: "test")
        try store.fail("T-\(index)", summary: "exit status 1\nsecond", report: "# failed\n")
      } else {
        try Self.drive("T-\(index)", to: status, store: store)
      }
    }
    let plain = ["NO_COLOR": "", "GIT_CONFIG_PARAMETERS": ""]
    func outputs(_ extra: [String: String]) throws -> [String] {
      try [["status"], ["status", "--all"], ["status", "--json"], ["status", "--all", "--color=always"]].map {
        let result = try Taskq.run($0, in: scratch.path, environment: plain.merging(extra) { _, b in b })
        guard result.status == 0 else { throw TestFailure("\($0): \(result.stderrText)") }
        return result.stdoutText
      }
    }
    try? FileManager.default.removeItem(atPath: scratch.path + "/.git/taskq")
    let building = try outputs([:])
    let fromFile = try outputs([:])
    let fromGit = try outputs(["TASKQ_NO_CACHE": "1"])
    #expect(building == fromGit)
    #expect(fromFile == fromGit)
    #expect(fromGit[1].contains("Heading title") && fromGit[1].contains("Wide 漢字 title"))
    #expect(fromGit[0].contains("more done (git taskq status --all)"))
    // One commit behind: a title and a status change, read from git on top of the file.
    try store.update { tx in
      tx.putFile("T-1", "task.md", "# Renamed\n")
      tx.operation = Operation(kind: "edit", task: "T-1", from: .todo, to: .todo, worker: tx.worker)
    }
    try store.cancel("T-7")
    let behind = try outputs([:])
    #expect(behind == (try outputs(["TASKQ_NO_CACHE": "1"])))
    #expect(behind[1].contains("Renamed"))
  }

  /// Hostile text in every status, in titles and in the record's fields: `status`, `--all` (piped and
  /// coloured) and `--json` print the same bytes from the cache's own writers (rows and JSON straight
  /// from the file's bytes) as from git (`TASKQ_NO_CACHE=1`), also with the cache a commit behind.
  @Test func hostileQueuesListAndPrintJSONAlikeFromTheCacheAndFromGit() throws {
    let scratch = try ScratchRepository()
    let store = try Self.store(scratch, worker: "writer")
    store.clock = ManualClock(at: 4_102_444_800)
    let hostile = [
      "\u{1B}]0;owned\u{07}\u{1B}[2J\u{1B}[31mEvil\r title", "C1 \u{9B}31m control", "line\u{2028}sep\u{2029}",
      "quote \" backslash \\ slash /", "tab\tnew\nline", "del \u{7F} and \u{01}", "wide 漢字 ünï ✓ 🚀",
      "plain words only",
    ]
    // Titles also as raw bytes that are not UTF-8 (a task file from another machine).
    let invalidTitle: [UInt8] = Array("# bad \u{1B}[1m".utf8) + [0xFF, 0xC3, 0x28, 0x80] + Array(" end\n".utf8)
    let statuses: [TaskStatus] = [.todo, .planning, .building, .review, .failed, .done, .cancelled]
    var index = 0
    for status in statuses {
      for text in hostile {
        index += 1
        let id = "H-\(index)"
        try store.add(
          NewTask(
            id: id, repo: scratch.path, base: "main", priority: index % 3 - 1,
            dependsOn: index > 2 && index % 4 == 0 ? ["H-\(index - 2)", "H-\(index - 1)"] : [],
            body: "# \(text)\n\nBody \(text)\n"))
        if status == .failed {
          try store.transition(id, to: .planning, command: "test")
          try store.fail(id, summary: "exit 1: \(text)\nsecond line", report: "# failed \(text)\n")
        } else {
          try Self.drive(id, to: status, store: store)
        }
        try store.update { tx in
          var record = try tx.existing(id)
          // Branch, base and container names are checked on write (and on read); free text elsewhere.
          record.branch = "task/\(id)-ünï"
          record.container = index % 3 == 0 ? "task-\(id)" : nil
          record.port = index % 3 == 0 ? 40000 + index : nil
          record.worker = "worker \(text)"
          record.leaseExpiresAt = index % 2 == 0 ? "2000-01-01T00:00:00+00:00" : "3000-01-01T00:00:00Z"
          record.lastError = record.status == .failed ? record.lastError : "old \(text)"
          record.sessionID = text
          record.attempt = index % 3
          tx.put(record)
          if index % 5 == 0 { tx.files[Layout.taskDirectory(id) + "/task.md"] = invalidTitle }
          tx.operation = Operation(kind: "update", task: id, from: record.status, to: record.status, worker: tx.worker)
        }
      }
    }
    let plain = ["NO_COLOR": "", "GIT_CONFIG_PARAMETERS": ""]
    let commands = [["status"], ["status", "--all"], ["status", "--json"], ["status", "--all", "--color=always"]]
    func outputs(_ extra: [String: String]) throws -> [[UInt8]] {
      try commands.map {
        let result = try Taskq.run($0, in: scratch.path, environment: plain.merging(extra) { _, b in b })
        guard result.status == 0 else { throw TestFailure("\($0): \(result.stderrText)") }
        return Array(result.stdout)
      }
    }
    try? FileManager.default.removeItem(atPath: scratch.path + "/.git/taskq")
    let building = try outputs([:])
    let fromFile = try outputs([:])
    let fromGit = try outputs(["TASKQ_NO_CACHE": "1"])
    // Compared as booleans: the outputs are kilobytes of bytes.
    for (position, command) in commands.enumerated() {
      let builtAlike = building[position] == fromGit[position]
      let readAlike = fromFile[position] == fromGit[position]
      #expect(builtAlike, "\(command): building the cache")
      #expect(readAlike, "\(command): from the cache file")
    }
    let json = String(decoding: fromGit[2], as: UTF8.self)
    #expect(json.contains("\\u009b31m") && json.contains("\\u2028") && json.contains("\\u007f"))
    #expect(String(decoding: fromGit[1], as: UTF8.self).contains("wide 漢字"))
    #expect(!fromGit[1].contains(0x1B) && !fromGit[1].contains(0x0D), "--all printed raw control characters")
    // One commit behind: a task re-read from git among the file's.
    try store.update { tx in
      var record = try tx.existing("H-3")
      record.worker = "new \u{1B}[7m worker"
      tx.put(record)
      tx.putFile("H-3", "task.md", "# Renamed \u{9B} title\n")
      tx.operation = Operation(kind: "edit", task: "H-3", from: record.status, to: record.status, worker: tx.worker)
    }
    let behind = try outputs([:])
    let behindAlike = behind == (try outputs(["TASKQ_NO_CACHE": "1"]))
    #expect(behindAlike, "one commit behind")
    #expect(String(decoding: behind[1], as: UTF8.self).contains("Renamed"))
  }

  // MARK: The direct JSON writer of `status --json`

  static func encoderJSON<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }

  static let awkwardStrings = [
    "", "plain", "a/b/c", "quote \" and backslash \\", "new\nline\ttab\rreturn", "\u{08}\u{0C}\u{01}\u{1F}\u{7F}",
    "ünïcödé ✓ 🚀", "\u{2028}\u{2029}", "</script>",
  ]

  @Test func recordJSONIsByteForByteJSONEncoder() throws {
    #expect(RecordJSON.isComplete)
    var records: [TaskRecord] = []
    for (index, text) in Self.awkwardStrings.enumerated() {
      var record = TaskRecord(
        id: "T-\(index)", repo: "/repo/\(text)", base: text, branch: "task/T-\(index)", taskFile: text,
        status: TaskStatus.allCases[index % TaskStatus.allCases.count], createdAt: text, seq: index * 1000 - 3,
        priority: -index, dependsOn: index % 2 == 0 ? [] : [text, "T-0"])
      if index % 3 == 0 {
        record.container = text
        record.port = Int.max - index
        record.sessionID = text
        record.errorFile = text
        record.worker = text
        record.leaseExpiresAt = text
        record.lastError = text
        record.worktreePath = text
      }
      records.append(record)
    }
    #expect(RecordJSON.array(records) == (try Self.encoderJSON(records)))
    #expect(RecordJSON.array([]) == (try Self.encoderJSON([TaskRecord]())))
    for record in records { #expect(RecordJSON.object(record) == (try Self.encoderJSON(record))) }
  }
}
