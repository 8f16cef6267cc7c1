import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `run` as one library call: what it refuses before anything is claimed, the options it resolves, and the
/// sync around the pool.
@Suite struct RunSessionTests {
  func session(
    _ workspace: QueueWorkspace, poll: RunSession.Poll = .off, remote: String? = nil
  ) throws -> RunSession {
    try RunSession(
      workspace: workspace, onlyID: nil, poll: poll, cleanupOnFail: false, dirtyRun: false, remote: remote)
  }

  @Test func aMissingAgentIsRefusedBeforeAnythingIsClaimed() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    let workspace = try scratch.workspace(overrides: [.runtime: "local", .agentProgram: "no-such-agent-h6"])
    #expect(
      throws: QueueError.invalidValue(
        key: "--agent-program", value: "no-such-agent-h6",
        expected: "an agent program on PATH (install opencode, or set taskq.agentProgram)")
    ) {
      try session(workspace)
    }
    #expect(try scratch.store().snapshot().record("T-001")?.status == .todo)
  }

  @Test func optionsComeFromTheSettings() throws {
    let scratch = try ScratchRepository()
    try scratch.git("config", "taskq.poll", "9")
    try scratch.git("config", "taskq.remote", "shared")
    let workspace = try scratch.workspace(overrides: [.runtime: "local", .agentProgram: "/bin/true"])
    let configured = try session(workspace, poll: .configured)
    #expect(configured.options.poll == 9)
    #expect(configured.options.remote == "shared")
    let given = try session(workspace, poll: .every(2), remote: "other")
    #expect(given.options.poll == 2)
    #expect(given.options.remote == "other")
    #expect(try session(workspace).options.poll == nil)
  }

  @Test func anUnreachableRemoteFailsTheRunBeforeAnythingIsClaimed() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    let workspace = try scratch.workspace(overrides: [.runtime: "local", .agentProgram: "/bin/true"])
    let run = try session(workspace, remote: "nowhere")
    #expect(throws: (any Error).self) {
      try run.run(events: RunEvents(mode: .json), note: { _ in })
    }
    #expect(try scratch.store().snapshot().record("T-001")?.status == .todo)
  }

  @Test func recoverWithNothingLostChangesNothing() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    let tip = try scratch.queueTip()
    let (recovered, lines) = try RunSession.recover(in: try scratch.workspace(), remote: nil)
    #expect(recovered.isEmpty)
    #expect(lines.isEmpty)
    #expect(try scratch.queueTip() == tip)
  }
}
