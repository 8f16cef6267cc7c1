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
      id: "T-ü", repo: "/r/é", base: "main", branch: "feature/x", taskFile: "refs/taskq/queue:tasks/aa/T/task.md",
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
