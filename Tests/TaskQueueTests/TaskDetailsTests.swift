import TaskQueue
import TaskqTestSupport
import Testing

/// What `show` reads of one task.
@Suite struct TaskDetailsTests {
  @Test func recordTaskFileAndFailureReportsAsGitShowTakesThem() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-001", body: "Write the parser.", store: store)
    let fresh = try TaskDetails.read("T-001", from: store)
    #expect(fresh.record.status == .todo)
    #expect(fresh.taskFile.contains("Write the parser."))
    #expect(fresh.errorReports.isEmpty)

    try scratch.drive("T-001", to: .planning, store: store)
    try store.fail("T-001", kind: "fail", summary: "plan failed", report: "# report\n")
    let failed = try TaskDetails.read("T-001", from: store)
    #expect(failed.record.status == .failed)
    let report = try #require(failed.errorReports.first)
    #expect(failed.errorReports.count == 1)
    #expect(report.hasPrefix("refs/taskq/queue:tasks/\(try sha256sumBucket("T-001"))/T-001/errors/"))
    #expect(try scratch.git("show", report) == "# report")
  }

  @Test func anUnknownOrMalformedIdIsRefused() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    #expect(throws: QueueError.notFound("T-404")) { try TaskDetails.read("T-404", from: store) }
    #expect(throws: QueueError.self) { try TaskDetails.read("../etc", from: store) }
  }
}
