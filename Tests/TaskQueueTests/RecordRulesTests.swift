import Foundation
import Git
import TaskQueue
import TaskqTestSupport
import Testing

/// The one rule set for records read from the queue, the safe path builder, and how readers skip damage.
@Suite struct RecordRulesTests {
  static func good() -> TaskRecord {
    var record = TaskRecord(
      id: "T-1", repo: "/src/repo", base: "main", branch: "task/T-1",
      taskFile: Layout.revisionPath(Layout.taskFilePath("T-1")), createdAt: "2026-11-25T10:15:00+00:00", seq: 1)
    record.errorFile = Layout.revisionPath(Layout.errorsDirectory("T-1") + "/20261125T101500Z.md")
    record.container = "task-T-1-20261125T101500Z"
    record.port = 4100
    record.dependsOn = ["T-0"]
    return record
  }

  @Test func aRecordAsOurWritersMakeItIsAccepted() {
    #expect(RecordRules.problem(with: Self.good(), bucket: Layout.bucket(of: "T-1"), name: "T-1") == nil)
  }

  @Test(arguments: [
    "id with ..", "id other than the directory", "repo empty", "base empty", "branch invalid", "task_file elsewhere",
    "error_file of another task", "error_file climbing", "container with a slash", "port 0", "port 70000",
    "attempt negative", "seq negative", "depends on itself", "depends on an invalid id", "too many dependencies",
    "created_at not a time", "lease not a time", "a 5000-byte repo", "a NUL in worker", "a 5000-byte last_error",
  ])
  func aBadFieldIsNamed(kind: String) throws {
    var record = Self.good()
    var name = "T-1"
    var expected = ""
    switch kind {
    case "id with ..":
      record.id = "../../../../precious.txt"
      name = record.id
      expected = "its id is invalid"
    case "id other than the directory":
      name = "EVIL"
      expected = "record.json names the task 'T-1'"
    case "repo empty":
      record.repo = ""
      expected = "'repo' is empty"
    case "base empty":
      record.base = ""
      expected = "'base' is empty"
    case "branch invalid":
      record.branch = "a..b"
      expected = "'branch'"
    case "task_file elsewhere":
      record.taskFile = "refs/taskq/queue:tasks/00/T-2/task.md"
      expected = "'task_file'"
    case "error_file of another task":
      record.errorFile = Layout.revisionPath(Layout.errorsDirectory("T-2") + "/x.md")
      expected = "'error_file'"
    case "error_file climbing":
      record.errorFile = Layout.revisionPath(Layout.errorsDirectory("T-1") + "/../../x")
      expected = "'error_file'"
    case "container with a slash":
      record.container = "../x"
      expected = "'container'"
    case "port 0":
      record.port = 0
      expected = "'port' 0"
    case "port 70000":
      record.port = 70000
      expected = "'port' 70000"
    case "attempt negative":
      record.attempt = -1
      expected = "'attempt'"
    case "seq negative":
      record.seq = -5
      expected = "'seq'"
    case "depends on itself":
      record.dependsOn = ["T-1"]
      expected = "depends on itself"
    case "depends on an invalid id":
      record.dependsOn = ["../x"]
      expected = "'depends_on' holds an invalid id"
    case "too many dependencies":
      record.dependsOn = (0...RecordRules.maximumDependencies).map { "D-\($0)" }
      expected = "'depends_on' has more than"
    case "created_at not a time":
      record.createdAt = "yesterday"
      expected = "'created_at' is not an ISO-8601 time"
    case "lease not a time":
      record.leaseExpiresAt = "soon"
      expected = "'lease_expires_at'"
    case "a 5000-byte repo":
      record.repo = "/" + String(repeating: "r", count: 5000)
      expected = "'repo' is longer than"
    case "a NUL in worker":
      record.worker = "host\u{0}:1"
      expected = "'worker' contains a NUL"
    case "a 5000-byte last_error":
      record.lastError = String(repeating: "e", count: 5000)
      expected = "'last_error' is longer than"
    default:
      Issue.record("unknown case")
    }
    let problem = try #require(RecordRules.problem(with: record, bucket: Layout.bucket(of: record.id), name: name))
    #expect(problem.contains(expected), "\(problem)")
  }

  @Test func theWrongBucketIsNamed() throws {
    let other = Layout.bucket(of: "T-1") == "00" ? "01" : "00"
    let problem = try #require(RecordRules.problem(with: Self.good(), bucket: other, name: "T-1"))
    #expect(problem.contains("bucket '\(other)'"), "\(problem)")
  }

  @Test(arguments: [
    ("..", "it is '..'"), (".", "it is '.'"), ("", "empty"), ("a/b", "'/'"), ("a\u{0}b", "control"),
    ("a\nb", "control"), ("\u{1b}[2J", "control"), ("a\u{85}", "control"),
    (String(repeating: "x", count: 256), "longer"),
  ])
  func safePathRefusesComponentsThatLeaveTheRoot(component: String, reason: String) throws {
    let error = try #require(throws: QueueError.self) { try SafePath.join("/srv/root", "ok", component) }
    #expect(error.description.contains(reason), "\(error.description)")
    #expect(!error.description.contains("\n"))
  }

  @Test func safePathJoinsPlainComponents() throws {
    #expect(try SafePath.join("/srv/root/", "repo", "T-1") == "/srv/root/repo/T-1")
    #expect(try SafePath.join("/", "x") == "/x")
    #expect(throws: QueueError.self) { try SafePath.join("relative", "x") }
  }

  /// A full read, the cache and a single lookup agree: the damaged directory is skipped, the rest stay.
  @Test func everyReaderSkipsADamagedDirectoryAndKeepsTheRest() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-ok")
    try scratch.addTask("T-two")
    SnapshotCache.clear(for: store.repository)
    #expect(try store.snapshot().records().map(\.id) == ["T-ok", "T-two"])  // the cache now knows both
    // A copy of T-ok's directory under another name, and a record with a fraction for an integer.
    let okTree = try scratch.git("rev-parse", "refs/taskq/queue:\(Layout.taskDirectory("T-ok"))")
    let record = try scratch.queueFile(Layout.recordPath("T-two")).replacingOccurrences(
      of: "\"priority\" : 0", with: "\"priority\" : 1.5")
    let bucket = Layout.bucket(of: "T-ok")
    let index = scratch.directory.path + "/index"
    defer { unlink(index) }
    let env = ["GIT_INDEX_FILE": index]
    try scratch.writeQueueCommitWithCLI(
      meta: try scratch.queueFile("taskq.json"), files: [Layout.recordPath("T-two"): record], message: "crafted")
    try Git.run(["read-tree", "refs/taskq/queue"], in: scratch.path, environment: env)
    try Git.run(["read-tree", "--prefix=tasks/\(bucket)/EVIL/", okTree], in: scratch.path, environment: env)
    // And the same directory, under its own name, in a bucket that is not its own.
    let wrong = bucket == "00" ? "01" : "00"
    try Git.run(["read-tree", "--prefix=tasks/\(wrong)/T-ok/", okTree], in: scratch.path, environment: env)
    let tree = try Git.run(["write-tree"], in: scratch.path, environment: env)
    let parent = try #require(try scratch.queueTip())
    let commit = try Git.run(["commit-tree", tree, "-p", parent, "-m", "crafted"], in: scratch.path)
    try scratch.git("update-ref", "refs/taskq/queue", commit)

    for useCache in [true, false] {
      if !useCache { SnapshotCache.clear(for: store.repository) }
      let snapshot = try store.snapshot()
      #expect(try snapshot.records().map(\.id) == ["T-ok"], "cache: \(useCache)")
      #expect(try snapshot.record("T-two") == nil)
      #expect(try snapshot.record("EVIL") == nil)
      #expect(try snapshot.record("T-ok")?.id == "T-ok")
      // A command that needs the record hears that it is damaged, and why; a missing one, that it is missing.
      let damaged = #expect(throws: QueueError.self) { try snapshot.existing("T-two") }
      #expect(
        damaged?.description.hasPrefix("task 'T-two' is damaged: record.json") == true, "\(String(describing: damaged))"
      )
      let missing = #expect(throws: QueueError.self) { try snapshot.existing("T-none") }
      #expect(missing?.description.hasPrefix("task 'T-none' not found") == true)
      #expect(
        try snapshot.damagedRecords().map(\.path).sorted()
          == ["tasks/\(bucket)/EVIL", "tasks/\(wrong)/T-ok", Layout.taskDirectory("T-two")].sorted())
    }
    // Through the commands: the error names the damage (not "not found") and nothing is written.
    let tip = try scratch.queueTip()
    for command in [["show", "--id", "T-two"], ["cancel", "--id", "T-two"], ["status", "--id", "T-two"]] {
      let result = try scratch.taskq(command)
      #expect(
        result.status == 1 && result.stderrText.hasPrefix("error: task 'T-two' is damaged: "),
        "\(command): \(result.summary)")
    }
    #expect(try scratch.queueTip() == tip)
    // Removing the damage by directory name: one commit; the valid task stays.
    let removed = try #require(try store.removeDamaged(named: "EVIL"))
    #expect(removed.map(\.name) == ["EVIL"])
    #expect(try store.snapshot().damagedRecords().map(\.name).sorted() == ["T-ok", "T-two"])
    // A name that is also a valid task: `remove --id` means the task; fsck's fix for the copy is --repair.
    #expect(try store.removeDamaged(named: "T-ok") == nil)
    #expect(try store.history(limit: 1).first?.operation.kind == "repair")
  }

  /// No write of ours turns a valid queue into one that readers would skip: a bad field is refused with
  /// nothing written, and a long failure is cut to its caps.
  @Test func writersStayWithinTheRules() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1")
    let tip = try scratch.queueTip()
    let error = try #require(throws: QueueError.self) {
      try store.update { tx in
        var record = try tx.existing("T-1")
        record.port = 0
        tx.put(record)
        tx.operation = Operation(kind: "update", task: "T-1", from: .todo, to: .todo, worker: tx.worker)
      }
    }
    #expect(error.description.hasPrefix("refusing to write task 'T-1': 'port' 0"), "\(error.description)")
    #expect(try scratch.queueTip() == tip)
    try store.update { tx in
      var record = try tx.existing("T-1")
      try tx.addErrorReport(
        &record, markdown: String(repeating: "m", count: 3 << 20), summary: String(repeating: "é", count: 10_000))
      tx.put(record)
      tx.operation = Operation(kind: "update", task: "T-1", from: .todo, to: .todo, worker: tx.worker)
    }
    let record = try #require(try store.snapshot().record("T-1"))
    #expect((record.lastError?.utf8.count ?? 0) <= RecordRules.maximumLastErrorLength)
    #expect(try store.snapshot().damagedRecords().isEmpty)
  }
}
