import Git
import TaskQueue
import Testing

/// Task ids: safe as a ref component, branch name, directory and container name.
@Suite struct TaskIDTests {
  @Test(arguments: [
    "T-001", "a", "0", "A.b_c-d", "x.y", String(repeating: "z", count: 64), "a-", "a_", "lock", "x.locks",
  ])
  func accepted(id: String) {
    #expect(TaskID.problem(with: id) == nil)
    #expect(TaskID.isValid(id))
    #expect(Repository.isValidBranchName("task/\(id)"))
  }

  @Test(arguments: [
    ("", "empty"), ("../x", "start with"), ("a/b", "only letters"), ("-x", "start with"), ("a b", "only letters"),
    ("a\nb", "only letters"), ("é", "start with"), ("aé", "only letters"),
    (String(repeating: "z", count: 65), "longer"),
    ("x.lock", ".lock"), ("x.", "end in '.'"), ("a..b", "'..'"), ("a@{b", "only letters"), (".x", "start with"),
    ("_x", "start with"), ("a\u{7f}", "only letters"), ("a\tb", "only letters"), ("a:b", "only letters"),
    ("a~1", "only letters"), ("a^", "only letters"), ("a*", "only letters"), ("a\\b", "only letters"),
  ])
  func refused(id: String, reason: String) throws {
    let problem = try #require(TaskID.problem(with: id), "'\(id)' was accepted")
    #expect(problem.contains(reason), "\(problem)")
    #expect(!TaskID.isValid(id), "isValid accepted '\(id)'")
    let error = try #require(throws: QueueError.self) { try TaskID.validate(id) }
    #expect(!error.description.contains("\n"), "\(error.description)")
    #expect(error.description.hasPrefix("invalid task id '"))
  }
}
