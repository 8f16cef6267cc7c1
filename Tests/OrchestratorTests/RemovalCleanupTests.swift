import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// What `remove` leaves of a task: its clean worktree goes (the branch stays), an untrusted path is untouched.
@Suite struct RemovalCleanupTests {
  /// A task that failed in the worktree `<scratch>/worktrees/repo/T-001`, then removed from the queue.
  func removedTask(_ scratch: ScratchRepository) throws -> (TaskRecord, String) {
    let worktree = scratch.directory.path + "/worktrees/repo/T-001"
    try scratch.git("worktree", "add", "-q", "-b", "task/T-001", worktree)
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    try store.transition("T-001", to: .planning, command: "test") { $0.worktreePath = worktree }
    try store.transition("T-001", to: .failed, command: "test")
    return (try store.remove("T-001"), worktree)
  }

  @Test func aCleanWorktreeOfARemovedTaskIsRemovedAndItsBranchKept() throws {
    let scratch = try ScratchRepository()
    let (record, worktree) = try removedTask(scratch)
    let workspace = try scratch.workspace(overrides: [.worktreesRoot: scratch.directory.path + "/worktrees"])
    #expect(
      try RemovalCleanup.clean(record, in: workspace) == ["removed worktree \(worktree) (branch task/T-001 kept)"])
    #expect(!FileManager.default.fileExists(atPath: worktree))
    #expect(try scratch.git("branch", "--list", "task/T-001") != "")
  }

  @Test func aWorktreeThisMachineDoesNotTrustIsLeftAlone() throws {
    let scratch = try ScratchRepository()
    let (record, worktree) = try removedTask(scratch)
    let workspace = try scratch.workspace(overrides: [.worktreesRoot: scratch.directory.path + "/elsewhere"])
    #expect(try RemovalCleanup.clean(record, in: workspace).isEmpty)
    #expect(FileManager.default.fileExists(atPath: worktree))
  }
}
