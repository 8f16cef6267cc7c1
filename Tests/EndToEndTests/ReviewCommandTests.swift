import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `git taskq review --id`: refuses what cannot be reviewed with one line, prints or launches OpenChamber
/// against the task's server.
@Suite struct ReviewCommandTests {
  /// A world with `T-001` run to review through the fake engine.
  static func reviewedWorld() throws -> FakeWorld {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run")
    guard result.succeeded, try world.record("T-001").status == .review else {
      throw TestFailure("T-001 did not reach review: \(result.summary)")
    }
    return world
  }

  @Test func launchesOpenChamberInTheWorktreeAgainstTheTasksServer() throws {
    let world = try Self.reviewedWorld()
    let port = try #require(try world.record("T-001").port)
    let result = try world.taskq("review", "--id", "T-001")
    #expect(result.status == 0, "\(result.summary)")
    let calls = try world.calls("openchamber")
    #expect(calls.count == 1)
    let call = try #require(calls.first)
    #expect(call.arguments == [])
    #expect(call.directory == world.worktree("T-001"))
    #expect(call.environment["OPENCODE_HOST"] == "http://127.0.0.1:\(port)")
    #expect(call.environment["OPENCODE_SKIP_START"] == "true")
    #expect(call.environment["OPENCODE_SERVER_PASSWORD"] == world.serverPassword("T-001"))
    #expect(call.environment["OPENCODE_SERVER_PASSWORD"]?.isEmpty == false)
    // Review changes nothing in the queue.
    #expect(try world.record("T-001").status == .review)
  }

  @Test func printShowsTheURLAndTheCommandWithoutLaunching() throws {
    let world = try Self.reviewedWorld()
    let port = try #require(try world.record("T-001").port)
    let tip = try world.repository.queueTip()
    let result = try world.taskq("review", "--id", "T-001", "--print")
    #expect(result.status == 0, "\(result.summary)")
    let secret = world.secretPath("T-001")
    #expect(
      result.stdoutText == """
        url: http://127.0.0.1:\(port)
        command: cd \(world.worktree("T-001")) && OPENCODE_SERVER_PASSWORD=$(cat \(secret)) \
        OPENCODE_HOST=http://127.0.0.1:\(port) OPENCODE_SKIP_START=true openchamber
        user: opencode  password: in \(secret) (this machine only)

        """)
    #expect(!result.stdoutText.contains(try #require(world.serverPassword("T-001"))))
    #expect(try world.calls("openchamber").isEmpty)
    #expect(try world.repository.queueTip() == tip)
  }

  @Test func refusesWhatCannotBeReviewedWithOneLine() throws {
    let world = try Self.reviewedWorld()
    try world.repository.addTask("T-002")
    func refusal(_ arguments: String..., environment: [String: String] = [:]) throws -> String {
      let result = try world.taskq(arguments, environment: environment)
      #expect(result.status != 0, "\(arguments): \(result.summary)")
      #expect(result.stderrLines.count == 1, "\(arguments): \(result.stderrText)")
      #expect(result.stderrText.hasPrefix("error: "))
      return result.stderrText
    }
    #expect(try refusal("review", "--id", "T-002").contains("todo"))
    #expect(try refusal("review", "--id", "T-404").contains("T-404"))
    // The review program is missing: say so, and point at --print.
    let missing = try refusal("review", "--id", "T-001", environment: ["TASKQ_REVIEW_PROGRAM": "no-such-chamber"])
    #expect(missing.contains("no-such-chamber"))
    #expect(missing.contains("--print"))
    // The server does not answer (its process is frozen, so the container still runs): say where to look.
    let container = try #require(try world.record("T-001").container)
    let server = try #require(world.container(named: container)?.pid)
    kill(server, SIGSTOP)
    let silent = try refusal("review", "--id", "T-001")
    kill(server, SIGCONT)
    #expect(silent.contains("does not answer on 127.0.0.1:"), "\(silent)")
    #expect(silent.contains("docker logs \(container)"))
    // Fine again once the resumed server answers (it may need a moment on a loaded machine).
    try world.waitUntil("the resumed server to answer review", timeout: 30) {
      try world.taskq("review", "--id", "T-001", "--print").status == 0
    }
    // The container stopped: say how to start it.
    let stop = try world.execute("docker", ["stop", container])
    #expect(stop.succeeded, "\(stop.summary)")
    let stopped = try refusal("review", "--id", "T-001")
    #expect(stopped.contains("container '\(container)'"))
    #expect(stopped.contains("not running"))
    #expect(try world.calls("openchamber").isEmpty)
  }

  @Test func aTaskOfTheLocalRuntimeHasNoServerToAttach() throws {
    let world = try FakeWorld()
    try world.config("taskq.agentProgram", FakeWorld.demoAgent)
    try world.repository.addTask("T-001")
    let run = try world.taskq("run", "--runtime", "local")
    #expect(run.status == 0, "\(run.summary)")
    let result = try world.taskq("review", "--id", "T-001")
    #expect(result.status != 0)
    #expect(result.stderrLines.count == 1, "\(result.stderrText)")
    #expect(result.stderrText.contains("local runtime"))
    #expect(try world.calls("openchamber").isEmpty)
  }
}
