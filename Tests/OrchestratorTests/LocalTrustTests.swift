import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// The trust `add` gives, on this machine only, to the paths the user named.
@Suite struct LocalTrustTests {
  @Test func explicitPathsOutsideTheRootsAreTrustedOnce() throws {
    let scratch = try ScratchRepository()
    let roots: [SettingKey: String] = [
      .reposRoot: scratch.directory.path + "/repos", .worktreesRoot: scratch.directory.path + "/worktrees",
    ]
    let elsewhere = scratch.directory.path + "/elsewhere/T-001"
    let workspace = try scratch.workspace(overrides: roots)
    let record = try workspace.store.add(
      NewTask(id: "T-001", repo: ".", base: "main", worktreePath: elsewhere, body: "Do it."))
    #expect(
      LocalTrust.trustAdded(record, in: workspace) == [
        "note: trusting \(elsewhere) for tasks on this machine (taskq.trustedPath)"
      ])
    #expect(try scratch.git("config", "--get-all", "taskq.trustedPath") == elsewhere)
    // Read again, the configuration trusts it: nothing more to add.
    #expect(LocalTrust.trustAdded(record, in: try scratch.workspace(overrides: roots)).isEmpty)
  }

  @Test func theQueuesOwnRepositoryAndPathsUnderTheRootsNeedNoTrust() throws {
    let scratch = try ScratchRepository()
    let workspace = try scratch.workspace(overrides: [.worktreesRoot: scratch.directory.path + "/worktrees"])
    let record = try workspace.store.add(
      NewTask(
        id: "T-001", repo: ".", base: "main", worktreePath: scratch.directory.path + "/worktrees/repo/T-001",
        body: "Do it."))
    #expect(LocalTrust.trustAdded(record, in: workspace).isEmpty)
    #expect(!(try scratch.git("config", "--list")).lowercased().contains("taskq.trustedpath"))
  }
}
