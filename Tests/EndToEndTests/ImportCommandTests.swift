import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `git taskq import`: the Python taskq's `queue/` (fixtures in its exact format under
/// `Fixtures/python-queue/`) into `refs/taskq/queue`, in one commit, idempotently.
@Suite struct ImportCommandTests {
  /// The fixture's directory in the source tree.
  static let fixture: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/python-queue").path

  /// The ids the fixture's valid lines hold, in file order.
  static let importable = ["T-001", "T-002", "T-003", "T-004", "T-005", "T-006", "T-7", "T-7-1"]

  /// A scratch repository and a copy of a fixture's `queue/` next to it (at `<scratch>/python/queue`).
  static func world(copying source: String = fixture) throws -> (ScratchRepository, String) {
    let repository = try ScratchRepository()
    let root = repository.directory.path + "/python"
    try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: source + "/queue", toPath: root + "/queue")
    return (repository, root)
  }

  /// The fixture's records by id, as JSON objects (the first line of each id).
  static func fixtureRecords() throws -> [String: [String: Any]] {
    let text = try String(contentsOfFile: fixture + "/queue/tasks.jsonl", encoding: .utf8)
    var records: [String: [String: Any]] = [:]
    for line in text.split(separator: "\n") {
      guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let id = object["id"] as? String, records[id] == nil
      else { continue }
      records[id] = object
    }
    return records
  }

  @Test func importsEveryValidTaskInOneCommitKeepingItsFields() throws {
    let (repository, root) = try Self.world()
    try repository.addTask("T-100")
    let before = try repository.queueMessages().count
    let result = try repository.taskqOK("import", "--from", root)
    #expect(
      result.stdoutText == """
        imported 8 task(s) with 4 error report(s) from \(root)/queue in one commit
          todo (1): T-004
          planning (1): T-005
          review (1): T-002
          failed (3): T-003 T-7 T-7-1
          done (1): T-001
          cancelled (1): T-006

        """)
    // One commit, an 'import' operation.
    #expect(try repository.queueMessages().count == before + 1)
    #expect(try repository.queueTrailers("Taskq-Op").first == "import")
    #expect(
      try repository.git("log", "-1", "--format=%s", "refs/taskq/queue")
        == "T-001: added (done) (imported 8 task(s) from the Python taskq)")

    let store = try repository.store()
    let records = try store.snapshot().records()
    #expect(records.map(\.id) == ["T-100"] + Self.importable)
    #expect(records.map(\.seq) == Array(1...9))
    let fixture = try Self.fixtureRecords()
    for record in records.dropFirst() {
      let original = try #require(fixture[record.id])
      #expect(record.repo == original["repo"] as? String)
      #expect(record.base == original["base"] as? String)
      #expect(record.branch == original["branch"] as? String)
      #expect(record.status.rawValue == original["status"] as? String)
      #expect(record.worktreePath == original["worktree_path"] as? String)
      #expect(record.container == original["container"] as? String)
      #expect(record.port == original["port"] as? Int)
      #expect(record.sessionID == original["session_id"] as? String)
      #expect(record.attempt == original["attempt"] as? Int)
      // Timestamps are kept exactly as the Python tool wrote them.
      #expect(record.createdAt == original["created_at"] as? String)
      #expect(record.updatedAt == original["updated_at"] as? String)
      #expect(record.taskFile == "refs/taskq/queue:\(Layout.taskFilePath(record.id))")
    }
    // The task files: canonical frontmatter, the Python file's body.
    let t2 = try #require(try store.snapshot().taskFile("T-002"))
    #expect(t2.contains("branch: feature/my-branch\n"))
    #expect(
      t2.hasSuffix(
        "---\nAdd a `--dry-run` flag to the sync command.\n\nAcceptance criteria:\n- Prints what would change.\n- Changes nothing.\n"
      ))
  }

  @Test func errorReportsMoveIntoTheQueueAndErrorFilePointsAtTheNamedOne() throws {
    let (repository, root) = try Self.world()
    try repository.taskqOK("import", "--from", root)
    let snapshot = try repository.store().snapshot()
    let t3 = try #require(try snapshot.record("T-003"))
    let directory = Layout.errorsDirectory("T-003")
    #expect(try snapshot.errorReports("T-003") == ["20261119T180000Z.md", "20261120T091244Z.md"])
    #expect(t3.errorFile == "refs/taskq/queue:\(directory)/20261120T091244Z.md")
    let shown = try repository.git("show", try #require(t3.errorFile))
    let original = try String(contentsOfFile: Self.fixture + "/queue/errors/T-003-20261120T091244Z.md", encoding: .utf8)
    #expect(shown == original.trimmingCharacters(in: .newlines))
    #expect(t3.lastError == "opencode run --command execute-plan exited with code 1")
    // Reports go to the longest id they start with: T-7-1's is not T-7's.
    #expect(try snapshot.errorReports("T-7") == ["20261121T101500Z.md"])
    #expect(try snapshot.errorReports("T-7-1") == ["20261121T111500Z.md"])
    #expect(try snapshot.record("T-7-1")?.lastError == "git worktree add failed: branch task/T-7-1 already exists")
    // Tasks without reports have none.
    #expect(try snapshot.record("T-001")?.errorFile == nil)
    // `status` shows the first line of each failure.
    let status = try repository.taskqOK("status", environment: ["NO_COLOR": "1"]).stdoutText
    #expect(status.contains("error: opencode run --command execute-plan exited with code 1"))
    #expect(status.contains("error: make-plan timed out after 3600 seconds"))
  }

  @Test func malformedLinesAndOrphanFilesAreReportedAndSkipped() throws {
    let (repository, root) = try Self.world()
    let result = try repository.taskqOK("import", "--from", root)
    let warnings = result.stderrLines.filter { $0.hasPrefix("warning: ") }
    #expect(
      warnings == [
        "warning: skipped line 5: not a JSON object",
        "warning: skipped line 8: task 'T-009': 'status' is missing",
        "warning: skipped line 9: invalid task id '../etc': it must start with a letter or digit",
        "warning: skipped line 10: task 'T-010': unknown status 'paused' (expected todo, planning, building, review, failed, done, cancelled)",
        "warning: skipped line 11: task 'T-004' appears again (line 4 is the one imported)",
        "warning: skipped errors/T-999-20261121T120000Z.md: no task in tasks.jsonl has this report",
        "warning: skipped line 14: task 'T-008': no task file (looked for '/home/alice/documents/repos/sisifo/queue/tasks/T-008.md', '\(root)/queue/tasks/T-008.md')",
        "warning: 7 line(s) or file(s) were left out; fix them and import again",
      ])
    #expect(
      result.stderrLines.contains(
        "note: the repository '/home/alice/documents/repos/sisifo' of T-001, T-002, T-003, T-004, T-005, T-006, T-7, T-7-1 does not exist on this machine (clone it there, or give the tasks another repo with 'git taskq edit')"
      ))
    let ids = try repository.store().snapshot().records().map(\.id)
    #expect(!ids.contains("T-008") && !ids.contains("T-009") && !ids.contains("T-010"))
    // The duplicate line of T-004 did not win.
    #expect(try repository.store().snapshot().record("T-004")?.status == .todo)
  }

  @Test func runningItTwiceChangesNothing() throws {
    let (repository, root) = try Self.world()
    try repository.taskqOK("import", "--from", root)
    let tip = try repository.queueTip()
    let again = try repository.taskqOK("import", "--from", root)
    #expect(try repository.queueTip() == tip)
    #expect(
      again.stdoutText
        == "nothing to import from \(root)/queue (8 already in the queue: \(Self.importable.joined(separator: " ")))\n")
  }

  @Test func tasksAlreadyInTheQueueAreLeftOutAndKeepTheirRecord() throws {
    let (repository, root) = try Self.world()
    try repository.addTask("T-004", body: "Our own T-004.")
    let result = try repository.taskqOK("import", "--from", root)
    #expect(
      result.stdoutText.hasPrefix(
        "imported 7 task(s) with 4 error report(s) from \(root)/queue in one commit (1 already in the queue: T-004)\n"))
    #expect(try repository.store().snapshot().taskFile("T-004")?.hasSuffix("Our own T-004.\n") == true)
  }

  @Test func aRunningTaskKeepsItsStatusWithAnExpiredLeaseSoRecoverFailsIt() throws {
    let (repository, root) = try Self.world()
    let result = try repository.taskqOK("import", "--from", root)
    #expect(
      result.stderrLines.contains(
        "note: T-005: was planning in the Python taskq; its worker is gone, so 'git taskq recover' moves it to failed ('git taskq retry' then runs it again)"
      ))
    let record = try #require(try repository.store().snapshot().record("T-005"))
    #expect(record.status == .planning)
    #expect(record.worker == importedWorker)
    #expect(record.isStale(now: Timestamp.nowSeconds()))
    let status = try repository.taskqOK("status", "--id", "T-005", environment: ["NO_COLOR": "1"]).stdoutText
    #expect(status.contains("STALE: lease expired (git taskq recover)"))
    let recover = try repository.taskqOK("recover")
    #expect(recover.stdoutText.contains("recovered 1 task(s): T-005"))
    #expect(try repository.store().snapshot().record("T-005")?.status == .failed)
    try repository.taskqOK("retry", "--id", "T-005")
  }

  @Test func theQueueDirectoryItselfAndTheRepositoryTopAreAccepted() throws {
    let (repository, root) = try Self.world()
    let dry = try repository.taskqOK("import", "--from", root + "/queue", "--dry-run")
    #expect(dry.stdoutText.hasPrefix("would import 8 task(s) with 4 error report(s) from \(root)/queue\n"))
    #expect(try repository.queueTip() == nil)
    // Without --from: the queue/ at the top of this repository, from any subdirectory.
    try FileManager.default.copyItem(atPath: root + "/queue", toPath: repository.path + "/queue")
    try FileManager.default.createDirectory(atPath: repository.path + "/sub/dir", withIntermediateDirectories: true)
    let result = try Taskq.run(["import"], in: repository.path + "/sub/dir")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.hasPrefix("imported 8 task(s)"))
  }

  @Test func noQueueToReadIsAnError() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("import")
    #expect(result.status == 1)
    #expect(
      result.stderrText
        == "error: no Python taskq queue in '\(repository.path)': '\(repository.path)/queue/tasks.jsonl' does not exist (pass --from DIR, the directory that holds queue/)\n"
    )
    #expect(try repository.queueTip() == nil)
  }

  @Test func onlyBadLinesImportNothingWriteNothingAndFail() throws {
    let repository = try ScratchRepository()
    let root = repository.directory.path + "/python"
    try repository.directory.write("python/queue/tasks.jsonl", "{\"id\": \"T-1\"}\n[1, 2]\n")
    let result = try repository.taskq("import", "--from", root)
    #expect(result.status == 1)
    #expect(result.stdoutText == "nothing to import from \(root)/queue\n")
    #expect(
      result.stderrLines == [
        "warning: skipped line 1: task 'T-1': 'status' is missing",
        "warning: skipped line 2: not a JSON object",
        "warning: 2 line(s) or file(s) were left out; fix them and import again",
        "error: no task could be read from \(root)/queue/tasks.jsonl (see the warnings above)",
      ])
    #expect(try repository.queueTip() == nil)
  }

  @Test func aLargeImportListsTenIdsAGroup() throws {
    let repository = try ScratchRepository()
    let root = repository.directory.path + "/python"
    var lines = ""
    for index in 0..<25 {
      let id = String(format: "T-%02d", index)
      try repository.directory.write("python/queue/tasks/\(id).md", "Task \(index)\n")
      lines +=
        "{\"id\": \"\(id)\", \"repo\": \"/r\", \"base\": \"main\", \"status\": \"todo\", \"port\": 0, \"created_at\": \"2026-11-29T12:51:10+00:00\"}\n"
    }
    try repository.directory.write("python/queue/tasks.jsonl", lines)
    let result = try repository.taskqOK("import", "--from", root)
    #expect(
      result.stdoutText.hasSuffix("  todo (25): T-00 T-01 T-02 T-03 T-04 T-05 T-06 T-07 T-08 T-09 … and 15 more\n"))
    let again = try repository.taskqOK("import", "--from", root)
    #expect(again.stdoutText.hasSuffix("T-08 T-09 … and 15 more)\n"))
  }

  @Test(arguments: [
    ("\"port\": -1", "'port' is -1; it must be between 1 and 65535 (or 0 for none)"),
    ("\"port\": 70000", "'port' is 70000; it must be between 1 and 65535 (or 0 for none)"),
    ("\"attempt\": -2", "'attempt' is -2; it must be 0 or more"),
  ])
  func outOfRangeNumbersNameTheValue(field: String, message: String) throws {
    let repository = try ScratchRepository()
    let root = repository.directory.path + "/python"
    try repository.directory.write("python/queue/tasks/T-1.md", "do it\n")
    try repository.directory.write(
      "python/queue/tasks.jsonl",
      "{\"id\": \"T-1\", \"repo\": \"/r\", \"base\": \"main\", \"status\": \"todo\", \"created_at\": \"2026-11-29T12:51:10+00:00\", \(field)}\n"
    )
    let result = try repository.taskq("import", "--from", root)
    #expect(result.status == 1)
    #expect(result.stderrLines.first == "warning: skipped line 1: task 'T-1': \(message)")
  }

  @Test func importedReviewTasksCanBeApprovedAndFailedOnesRetried() throws {
    let (repository, root) = try Self.world()
    try repository.taskqOK("import", "--from", root)
    #expect(try repository.taskqOK("approve", "--id", "T-002").stdoutText.hasPrefix("T-002: review → done\n"))
    #expect(try repository.taskqOK("retry", "--id", "T-003").stdoutText == "T-003: failed → todo (attempt 3 next)\n")
    #expect(try repository.store().snapshot().record("T-003")?.attempt == 2)
  }
}

/// The same command on a queue that the Python taskq itself wrote (`Fixtures/python-taskq-written/`, see
/// its README for the tool's commit and the commands run): `"port": 0`, `"attempt": 0`, empty strings,
/// absolute `error_file` paths, `updated_at` without an offset, extra fields and lower-cased branches.
@Suite struct ImportWrittenByPythonTests {
  static let fixture: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/python-taskq-written").path

  static func world() throws -> (ScratchRepository, String) { try ImportCommandTests.world(copying: fixture) }

  static func originals() throws -> [String: [String: Any]] {
    let text = try String(contentsOfFile: fixture + "/queue/tasks.jsonl", encoding: .utf8)
    var records: [String: [String: Any]] = [:]
    for line in text.split(separator: "\n") {
      let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
      records[try #require(object["id"] as? String)] = object
    }
    return records
  }

  @Test func everyTaskImportsWithItsStateTimesAttemptsFilesAndReports() throws {
    let (repository, root) = try Self.world()
    let result = try repository.taskqOK("import", "--from", root)
    #expect(
      result.stdoutText == """
        imported 7 task(s) with 3 error report(s) from \(root)/queue in one commit
          todo (1): T-001
          building (1): T-007
          review (1): T-004
          failed (2): T-003 T-006
          done (1): T-005
          cancelled (1): T-002

        """)
    #expect(!result.stderrText.contains("warning"), "\(result.summary)")

    let snapshot = try repository.store().snapshot()
    let originals = try Self.originals()
    for id in ["T-001", "T-002", "T-003", "T-004", "T-005", "T-006", "T-007"] {
      let record = try #require(try snapshot.record(id))
      let original = try #require(originals[id])
      #expect(record.status.rawValue == original["status"] as? String)
      #expect(record.branch == original["branch"] as? String)
      #expect(record.branch == "task/" + id.lowercased())
      #expect(record.attempt == original["attempt"] as? Int)
      #expect(record.createdAt == original["created_at"] as? String)
      // `datetime.utcnow().isoformat()`: UTC without an offset; every digit kept, the offset added.
      let updated = try #require(original["updated_at"] as? String)
      #expect(record.updatedAt == (updated.hasSuffix("+00:00") ? updated : updated + "+00:00"))
      #expect(Timestamp.parse(record.updatedAt) == Timestamp.parse(updated))
      let body = try String(contentsOfFile: Self.fixture + "/queue/tasks/\(id).md", encoding: .utf8)
        .components(separatedBy: "---\n").dropFirst(2).joined(separator: "---\n")
      // The tool writes no newline after the body; the canonical file ends with one.
      #expect(try snapshot.taskFile(id)?.hasSuffix("---\n" + body + "\n") == true)
    }
    // Port 0 and empty strings are "unset".
    let todo = try #require(try snapshot.record("T-001"))
    #expect(todo.port == nil && todo.container == nil && todo.sessionID == nil && todo.errorFile == nil)
    let review = try #require(try snapshot.record("T-004"))
    #expect(review.port == 30000 && review.container == "c0ffee123456")
    // Absolute error_file paths: the named report, now inside the queue.
    let failed = try #require(try snapshot.record("T-003"))
    #expect(failed.errorFile == "refs/taskq/queue:\(Layout.errorsDirectory("T-003"))/20261129_125119_213.md")
    #expect(failed.lastError == "building: execute-plan exited with code 3: tests failed: 3 of 12 (see test/log.txt)")
    let report = try repository.git("show", try #require(failed.errorFile))
    #expect(report.hasPrefix("# Task Failure Report"))
    #expect(try snapshot.errorReports("T-006") == ["20261129_125131_486.md", "20261129_125135_373.md"])
    #expect(try snapshot.record("T-006")?.errorFile?.hasSuffix("/20261129_125135_373.md") == true)
    // The building task has no worker left.
    #expect(try snapshot.record("T-007")?.isStale(now: Timestamp.nowSeconds()) == true)
    // What fsck and status think of the result.
    #expect(try repository.taskqOK("fsck").status == 0)
    let json = try repository.taskqOK("status", "--json").jsonObjects()
    #expect(json.count == 7)
  }

  @Test func importingAgainChangesNothingAndSucceeds() throws {
    let (repository, root) = try Self.world()
    try repository.taskqOK("import", "--from", root)
    let tip = try repository.queueTip()
    let again = try repository.taskqOK("import", "--from", root)
    #expect(try repository.queueTip() == tip)
    #expect(
      again.stdoutText
        == "nothing to import from \(root)/queue (7 already in the queue: T-001 T-002 T-003 T-004 T-005 T-006 T-007)\n")
  }

  @Test func importedTasksGoOnThroughTheirLifecycle() throws {
    let (repository, root) = try Self.world()
    try repository.taskqOK("import", "--from", root)
    try repository.taskqOK("approve", "--id", "T-004")
    try repository.taskqOK("retry", "--id", "T-003")
    try repository.taskqOK("cancel", "--id", "T-001")
    #expect(try repository.taskqOK("recover").stdoutText.contains("T-007"))
    let snapshot = try repository.store().snapshot()
    #expect(try snapshot.record("T-004")?.status == .done)
    #expect(try snapshot.record("T-003")?.status == .todo)
    #expect(try snapshot.record("T-003")?.attempt == 1)
    #expect(try snapshot.record("T-007")?.status == .failed)
  }
}
