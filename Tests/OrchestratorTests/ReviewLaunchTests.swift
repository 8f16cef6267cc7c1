import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `review`'s readiness checks, in the order the command makes them, before anything starts.
@Suite struct ReviewLaunchTests {
  @Test func aTaskThatIsNotInReviewIsRefused() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    #expect(throws: QueueError.illegalTransition(id: "T-001", command: "review", status: .todo, needs: [.review])) {
      try ReviewLaunch.prepare(id: "T-001", in: try scratch.workspace())
    }
    #expect(throws: QueueError.notFound("T-404")) {
      try ReviewLaunch.prepare(id: "T-404", in: try scratch.workspace())
    }
  }

  @Test func aTaskWithoutAWorktreeHereIsRefused() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    try scratch.drive("T-001", to: .review)
    let error = try #require(throws: ReviewError.self) {
      try ReviewLaunch.prepare(id: "T-001", in: try scratch.workspace())
    }
    #expect(
      error.description
        == "task 'T-001' has no worktree on this machine (it was cleaned up, or ran elsewhere)")
  }

  @Test func aTaskOfTheLocalRuntimeHasNoServerToAttach() throws {
    let scratch = try ScratchRepository()
    let worktree = try scratch.directory.write("worktrees/T-001/file", "x")
    let worktreeDirectory = (worktree as NSString).deletingLastPathComponent
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    try scratch.drive("T-001", to: .building, store: store)
    try store.transition("T-001", to: .review, command: "test") { $0.worktreePath = worktreeDirectory }
    let workspace = try scratch.workspace(overrides: [.worktreesRoot: scratch.directory.path + "/worktrees"])
    let error = try #require(throws: ReviewError.self) { try ReviewLaunch.prepare(id: "T-001", in: workspace) }
    #expect(
      error.description
        == "task 'T-001' ran on the local runtime: there is no server to attach; inspect it with 'git -C \(worktreeDirectory) log -p main..'"
    )
  }

  @Test func printedCommandQuotesPathsAndNamesThePasswordFile() {
    let launch = ReviewLaunch(
      taskID: "T-001", worktree: "/work/my tree", url: "http://127.0.0.1:4100", password: "secret",
      secretFile: "/repo/.git/taskq/secrets/T-001", program: "openchamber")
    #expect(
      launch.printedLines == [
        "url: http://127.0.0.1:4100",
        "command: cd '/work/my tree' && OPENCODE_SERVER_PASSWORD=$(cat /repo/.git/taskq/secrets/T-001) OPENCODE_HOST=http://127.0.0.1:4100 OPENCODE_SKIP_START=true openchamber",
        "user: opencode  password: in /repo/.git/taskq/secrets/T-001 (this machine only)",
      ])
    #expect(launch.environment["OPENCODE_SERVER_PASSWORD"] == "secret")
    #expect(launch.environment["OPENCODE_HOST"] == "http://127.0.0.1:4100")
  }
}
