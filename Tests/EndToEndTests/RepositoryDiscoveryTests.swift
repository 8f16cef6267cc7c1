import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// The binary finds the repository the way git does: from a subdirectory, a linked worktree, `git -C`,
/// `GIT_DIR`; and says `fatal: not a git repository` outside one.
@Suite struct RepositoryDiscoveryTests {
  /// `PATH` with the binary's directory first, so that `git taskq` runs the binary under test.
  static var pathWithBinary: [String: String] {
    ["PATH": Taskq.binaryDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")]
  }

  /// Runs `git ARGS` (e.g. `-C DIR taskq status`) with the binary on `PATH`.
  static func git(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws
    -> ProcessResult
  {
    try ProcessRunner.run(
      ProcessSpec(
        "git", arguments, environment: pathWithBinary.merging(environment) { _, new in new }, directory: directory,
        timeout: 60))
  }

  @Test func fromASubdirectory() throws {
    let repository = try ScratchRepository()
    let sub = repository.path + "/src/module"
    try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
    let add = try repository.taskq(["add", "--id", "T-1", "--task", "x"], in: sub)
    #expect(add.status == 0, "\(add.summary)")
    #expect(add.stdoutText.contains("repo=\(repository.path) "))
    let status = try repository.taskq(["status", "--json"], in: sub)
    #expect(try status.jsonObjects().map { $0["id"] as? String } == ["T-1"])
    #expect(try repository.taskq(["cancel", "--id", "T-1"], in: sub).status == 0)
    #expect(try repository.queueTrailers("Taskq-Op") == ["cancel", "add"])
  }

  @Test func fromALinkedWorktreeTheQueueIsShared() throws {
    let repository = try ScratchRepository()
    let worktree = repository.directory.path + "/wt"
    try repository.git("worktree", "add", "-q", "-b", "side", worktree)
    try FileManager.default.createDirectory(atPath: worktree + "/sub", withIntermediateDirectories: true)
    let add = try repository.taskq(["add", "--id", "T-WT", "--task", "from the worktree"], in: worktree + "/sub")
    #expect(add.status == 0, "\(add.summary)")
    // The repository of a task added in a worktree is the main working tree's.
    #expect(add.stdoutText == "T-WT: added (todo) repo=\(repository.path) base=main branch=task/T-WT\n")
    // Seen from the main working tree, and through git.
    #expect(try repository.taskqOK("status", "--json").jsonObjects().map { $0["id"] as? String } == ["T-WT"])
    #expect(try repository.queueRecordIDs() == ["T-WT"])
    // And the other way round.
    try repository.taskqOK("add", "--id", "T-MAIN", "--task", "x")
    let fromWorktree = try repository.taskq(["status", "--json"], in: worktree)
    #expect(try fromWorktree.jsonObjects().map { $0["id"] as? String } == ["T-WT", "T-MAIN"])
    #expect(!FileManager.default.fileExists(atPath: repository.path + "/.git/worktrees/wt/refs/taskq"))
  }

  @Test func throughGitAsASubcommand() throws {
    let repository = try ScratchRepository()
    let add = try Self.git(["taskq", "add", "--id", "T-1", "--task", "via git"], in: repository.path)
    #expect(add.status == 0, "\(add.summary)")
    #expect(add.stdoutText.hasPrefix("T-1: added (todo)"))
    let status = try Self.git(["taskq", "status", "--json"], in: repository.path)
    #expect(try status.jsonObjects().count == 1)
  }

  @Test func withGitDashC() throws {
    let repository = try ScratchRepository()
    let elsewhere = try ScratchDirectory()
    let add = try Self.git(["-C", repository.path, "taskq", "add", "--id", "T-1", "--task", "x"], in: elsewhere.path)
    #expect(add.status == 0, "\(add.summary)")
    #expect(add.stdoutText.contains("repo=\(repository.path) "))
    try FileManager.default.createDirectory(atPath: repository.path + "/sub", withIntermediateDirectories: true)
    let status = try Self.git(["-C", repository.path + "/sub", "taskq", "status", "--json"], in: elsewhere.path)
    #expect(try status.jsonObjects().map { $0["id"] as? String } == ["T-1"])
    let log = try Self.git(["-C", repository.path, "taskq", "log"], in: elsewhere.path)
    #expect(log.stdoutText.contains("T-1: added (todo)"))
  }

  @Test func withGitDir() throws {
    let repository = try ScratchRepository()
    let elsewhere = try ScratchDirectory()
    let env = ["GIT_DIR": repository.path + "/.git"]
    let add = try repository.taskq(["add", "--id", "T-1", "--task", "x"], in: elsewhere.path, environment: env)
    #expect(add.status == 0, "\(add.summary)")
    #expect(add.stdoutText.contains("repo=\(repository.path) "))
    let status = try repository.taskq(["status", "--json"], in: elsewhere.path, environment: env)
    #expect(try status.jsonObjects().map { $0["id"] as? String } == ["T-1"])
    #expect(try repository.queueRecordIDs() == ["T-1"])
  }

  @Test func withGitDirAndGitWorkTree() throws {
    let repository = try ScratchRepository()
    let elsewhere = try ScratchDirectory()
    let env = ["GIT_DIR": repository.path + "/.git", "GIT_WORK_TREE": repository.path]
    let add = try repository.taskq(["add", "--id", "T-1", "--task", "x"], in: elsewhere.path, environment: env)
    #expect(add.status == 0, "\(add.summary)")
    #expect(try repository.queueRecordIDs() == ["T-1"])
  }

  @Test func gitDirPointingNowhereIsNotARepository() throws {
    let elsewhere = try ScratchDirectory()
    let result = try Taskq.run(
      ["status"], in: elsewhere.path, environment: ["GIT_DIR": elsewhere.path + "/missing.git"])
    #expect(result.status == 128, "\(result.summary)")
    #expect(result.stderrLines.first?.hasPrefix("fatal: not a git repository") == true)
  }

  @Test(arguments: [
    ["status"], ["status", "--json"], ["add", "--id", "T-1", "--task", "x"], ["show", "--id", "T-1"], ["log"],
    ["approve", "--id", "T-1"], ["cancel", "--id", "T-1"], ["retry", "--id", "T-1"], ["remove", "--id", "T-1"],
    ["config"],
  ])
  func outsideARepositoryIsFatal(arguments: [String]) throws {
    let outside = try ScratchDirectory()
    let env = ["GIT_CEILING_DIRECTORIES": (outside.path as NSString).deletingLastPathComponent]
    let result = try Taskq.run(arguments, in: outside.path, environment: env)
    #expect(result.status == 128, "\(arguments): \(result.summary)")
    #expect(result.stderrLines.count == 1, "\(arguments): \(result.stderrText)")
    #expect(result.stderrLines.first?.hasPrefix("fatal: not a git repository") == true, "\(result.stderrText)")
    #expect(result.stdoutText.isEmpty)
  }

  @Test func outsideARepositoryThroughGitIsFatalToo() throws {
    let outside = try ScratchDirectory()
    let result = try Self.git(["taskq", "status"], in: outside.path)
    #expect(result.status == 128, "\(result.summary)")
    #expect(result.stderrText.hasPrefix("fatal: not a git repository"))
  }
}
