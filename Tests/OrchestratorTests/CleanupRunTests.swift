import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `cleanup` as the library runs it: what it refuses before touching anything, and what it removes.
@Suite struct CleanupRunTests {
  /// A task that ran in the worktree `<scratch>/worktrees/repo/T-001` and is now in `status`.
  func ranTask(_ scratch: ScratchRepository, ending status: TaskStatus) throws -> String {
    let worktree = scratch.directory.path + "/worktrees/repo/T-001"
    try scratch.git("worktree", "add", "-q", "-b", "task/T-001", worktree)
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    try store.transition("T-001", to: .planning, command: "test") { $0.worktreePath = worktree }
    try store.transition("T-001", to: .building, command: "test")
    try store.transition("T-001", to: .review, command: "test")
    if status == .done { try store.transition("T-001", to: .done, command: "test") }
    return worktree
  }

  @Test func aTaskInReviewIsRefusedWithoutForceAndNothingChanges() throws {
    let scratch = try ScratchRepository()
    let worktree = try ranTask(scratch, ending: .review)
    let workspace = try scratch.workspace(overrides: [.worktreesRoot: scratch.directory.path + "/worktrees"])
    let tip = try workspace.store.tip()
    var lines: [String] = []
    #expect(throws: CleanupRun.Refusal.self) {
      _ = try CleanupRun(workspace: workspace, request: .init(id: "T-001"))
        .run(out: { lines.append($0) }, refused: { lines.append($0) })
    }
    #expect(lines.isEmpty)
    #expect(try workspace.store.tip() == tip)
    #expect(FileManager.default.fileExists(atPath: worktree))
  }

  @Test func aDoneTasksCleanWorktreeIsRemovedAndRecorded() throws {
    let scratch = try ScratchRepository()
    let worktree = try ranTask(scratch, ending: .done)
    let workspace = try scratch.workspace(overrides: [.worktreesRoot: scratch.directory.path + "/worktrees"])
    var lines: [String] = []
    let refused = try CleanupRun(workspace: workspace, request: .init())
      .run(out: { lines.append($0) }, refused: { lines.append("refused: " + $0) })
    #expect(refused == 0)
    #expect(lines.contains("T-001: removed worktree \(worktree) (branch task/T-001 kept)"))
    #expect(lines.last == "cleaned 1 task(s)")
    #expect(!FileManager.default.fileExists(atPath: worktree))
    #expect(try workspace.store.snapshot().record("T-001")?.worktreePath == nil)
  }
}
