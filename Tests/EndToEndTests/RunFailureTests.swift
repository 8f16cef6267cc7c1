import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// Every stage of `run` failing, and timing out: the task ends `failed` with a report in the ref that
/// `git show <error_file>` prints, and its container and worktree are kept unless `--cleanup-on-fail`.
@Suite struct RunFailureTests {
  @Test func containerThatCannotStartFailsTheTask() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run", environment: ["FAKE_DOCKER_RUN_FAIL": "1"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stdoutText.contains("failed (1): T-001"), "\(result.stdoutText)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError?.contains("docker run exit status 125") == true, "\(record.lastError ?? "")")
    let report = try world.errorReport("T-001")
    #expect(report.contains("| stage | container |"), "\(report)")
    #expect(report.contains("`docker run -d --init --name \(try world.containerName(record))"))
    #expect(report.contains("| ending | exit status 125 |"))
    #expect(report.contains("pull access denied for example.test/opencode:fake"))
    // The password's name is in the command, never its value.
    #expect(report.contains(" -e OPENCODE_SERVER_PASSWORD "))
    #expect(!report.contains(try #require(world.serverPassword("T-001"))))
    // The worktree is kept for inspection.
    #expect(FileManager.default.fileExists(atPath: world.worktree("T-001")))
    #expect(try world.gitWorktrees().contains(world.worktree("T-001")))
    #expect(try world.calls("opencode").isEmpty)
  }

  @Test func containerRunThatHangsTimesOut() throws {
    let world = try FakeWorld()
    try world.config("taskq.setupTimeout", "2")
    try world.repository.addTask("T-001")
    let start = monotonicSeconds()
    let result = try world.taskq("run", environment: ["FAKE_DOCKER_RUN_HANG": "1"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(monotonicSeconds() - start < 20)
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError == "docker run timed out")
    #expect(try world.errorReport("T-001").contains("| ending | timed out |"))
  }

  @Test func serverThatNeverAnswersFailsAfterTheHealthTimeout() throws {
    let world = try FakeWorld()
    try world.config("taskq.healthTimeout", "2")
    try world.repository.addTask("T-001")
    let start = monotonicSeconds()
    let result = try world.taskq("run", environment: ["FAKE_HEALTH": "never"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(monotonicSeconds() - start < 20)
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    let report = try world.errorReport("T-001")
    let port = try #require(report.firstMatch(of: /127\.0\.0\.1:(\d+) within/).map { Int($0.1) } ?? nil)
    #expect(report.contains("| stage | container |"))
    // A container that never served is of no use: it is removed (its log is in the report), not left running.
    #expect(try world.containers().isEmpty)
    #expect(record.container == nil && record.port == nil)
    #expect(report.contains("did not answer GET /global/health on 127.0.0.1:\(port) within 2 s"), "\(report)")
    // Kept: the worktree.
    #expect(FileManager.default.fileExists(atPath: world.worktree("T-001")))
    #expect(try world.calls("opencode").isEmpty)
  }

  @Test func containerThatExitsBeforeItsServerAnswersFailsAtOnce() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let start = monotonicSeconds()
    let result = try world.taskq("run", environment: ["FAKE_HEALTH": "exit"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(monotonicSeconds() - start < 15, "it waited for the whole health timeout")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(try world.errorReport("T-001").contains("exited before its server answered"))
  }

  @Test func makePlanFailureIsReportedWithItsCommandAndOutput() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run", environment: ["FAKE_OPENCODE_FAIL": "make-plan"])
    #expect(result.status == 1, "\(result.summary)")
    let record = try world.record("T-001")
    let container = try #require(record.container)
    #expect(record.status == .failed)
    // The agent's own last error line says why.
    #expect(
      record.lastError
        == "make-plan exit status 3: opencode (fake): make-plan failed for T-001: the model refused (fake failure)")
    #expect(record.errorFile?.hasPrefix("refs/taskq/queue:tasks/") == true)
    let report = try world.errorReport("T-001")
    #expect(report.hasPrefix("# T-001 failed: make-plan exit status 3: opencode (fake)"), "\(report)")
    #expect(report.contains("| stage | planning |"))
    #expect(
      report.contains(
        "`docker exec -w \(world.worktree("T-001")) \(container) opencode run --command make-plan --format json"))
    #expect(report.contains("| ending | exit status 3 |"))
    #expect(report.contains("opencode (fake): make-plan failed for T-001: the model refused"))
    #expect(report.contains("starting make-plan"))  // the stdout tail
    #expect(report.contains("## container log"))
    #expect(report.contains("git taskq retry --id T-001"))
    // Kept: the running container and the worktree.
    #expect(world.container(named: container)?.isRunning == true)
    #expect(FileManager.default.fileExists(atPath: world.worktree("T-001")))
    // The history says who failed it, and the build stage never ran.
    let failure = try #require(try world.history(task: "T-001").last)
    #expect(failure.operation.kind == "fail")
    #expect(failure.operation.from == .planning)
    #expect(failure.operation.to == .failed)
    #expect(try world.calls("opencode").count == 1)
  }

  @Test func executePlanFailureIsReportedAtTheBuildingStage() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run", environment: ["FAKE_OPENCODE_FAIL": "execute-plan"])
    #expect(result.status == 1, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.sessionID == "ses_fake_T-001")
    #expect(record.lastError?.hasPrefix("execute-plan exit status 3: opencode (fake): execute-plan failed") == true)
    let report = try world.errorReport("T-001")
    #expect(report.contains("| stage | building |"))
    #expect(report.contains("opencode run --command execute-plan"))
    #expect(report.contains("--session ses_fake_T-001"))
    #expect(report.contains("execute-plan failed for T-001"))
    #expect(try world.history(task: "T-001").last?.operation.from == .building)
    #expect(world.container(named: record.container ?? "")?.isRunning == true)
  }

  @Test func oneFailingTaskDoesNotStopTheOthers() throws {
    let world = try FakeWorld()
    for id in ["T-001", "T-002", "T-003"] { try world.repository.addTask(id) }
    let result = try world.taskq(
      "run", "--max-parallel", "2", environment: ["FAKE_OPENCODE_FAIL": "make-plan:T-002"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stdoutText.contains("failed (1): T-002"), "\(result.stdoutText)")
    #expect(result.stdoutText.contains("review (2):"))
    #expect(try world.record("T-001").status == .review)
    #expect(try world.record("T-002").status == .failed)
    #expect(try world.record("T-003").status == .review)
  }

  @Test func cleanupOnFailRemovesContainerAndWorktreeButKeepsBranchAndReport() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq(
      "run", "--cleanup-on-fail", environment: ["FAKE_OPENCODE_FAIL": "execute-plan"])
    #expect(result.status == 1, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    let name = try #require(try world.dockerCalls("run").first?.arguments.dropFirst(4).first)
    #expect(try world.dockerCalls("rm").map(\.arguments) == [["rm", "-f", name]])
    #expect(try world.containers().isEmpty)
    #expect(!FileManager.default.fileExists(atPath: world.worktree("T-001")))
    #expect(try !world.gitWorktrees().contains(world.worktree("T-001")))
    #expect(try world.repository.git("rev-parse", "--verify", "-q", "task/T-001").count == 40)
    #expect(record.container == nil)
    #expect(record.port == nil)
    #expect(record.worktreePath == nil)
    #expect(try world.errorReport("T-001").contains("execute-plan failed"))
  }

  /// With an agent that ignores SIGTERM, the group gets SIGKILL after the grace period.
  @Test(arguments: [false, true])
  func planTimeoutKillsTheAgentsWholeProcessGroup(ignoringSIGTERM: Bool) throws {
    let world = try FakeWorld()
    try world.config("taskq.planTimeout", "2")
    try world.repository.addTask("T-001")
    let start = monotonicSeconds()
    var environment = ["FAKE_OPENCODE_HANG": "make-plan"]
    if ignoringSIGTERM { environment["FAKE_OPENCODE_IGNORE_TERM"] = "1" }
    let result = try world.taskq("run", environment: environment)
    #expect(result.status == 1, "\(result.summary)")
    #expect(monotonicSeconds() - start < 20)
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError?.contains("timed out") == true, "\(record.lastError ?? "")")
    let report = try world.errorReport("T-001")
    #expect(report.contains("| stage | planning |"))
    #expect(report.contains("| ending | timed out |"))
    let hung = try #require(world.hangingAgent("T-001", "make-plan"))
    try world.waitUntil("the hanging agent and its child to be gone", timeout: 10) {
      !isProcessAlive(hung.agent) && !isProcessAlive(hung.child)
    }
  }

  @Test func buildTimeoutOnTheLocalRuntimeKillsTheAgentsWholeProcessGroup() throws {
    let world = try FakeWorld()
    try world.config("taskq.runtime", "local")
    try world.config("taskq.agentProgram", world.bin + "/opencode")
    try world.config("taskq.buildTimeout", "2")
    try world.repository.addTask("T-001")
    let result = try world.taskq("run", environment: ["FAKE_OPENCODE_HANG": "execute-plan"])
    #expect(result.status == 1, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(try world.errorReport("T-001").contains("| stage | building |"))
    let hung = try #require(world.hangingAgent("T-001", "execute-plan"))
    try world.waitUntil("the hanging agent and its child to be gone", timeout: 10) {
      !isProcessAlive(hung.agent) && !isProcessAlive(hung.child)
    }
  }

  @Test func aWorktreePathThatIsTakenFailsSetupWithAHint() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    try FileManager.default.createDirectory(atPath: world.worktree("T-001"), withIntermediateDirectories: true)
    let result = try world.taskq("run")
    #expect(result.status == 1, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError == "worktree path '\(world.worktree("T-001"))' already exists")
    let report = try world.errorReport("T-001")
    #expect(report.contains("| stage | setup |"))
    #expect(report.contains("It is not a worktree of"), "\(report)")
    #expect(try world.dockerCalls("run").isEmpty)
  }

  /// The worktree the queue records for the task is its own: `retry` then a plain `run` reuses it, with
  /// the branch and the work in it, and replaces the earlier attempt's container.
  @Test func retryThenAPlainRunReusesTheTasksOwnWorktree() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    #expect(try world.taskq("run", environment: ["FAKE_OPENCODE_FAIL": "make-plan"]).status == 1)
    let first = try world.record("T-001")
    let worktree = try #require(first.worktreePath)
    try "kept\n".write(toFile: worktree + "/notes.txt", atomically: true, encoding: .utf8)
    try world.taskq("retry", "--id", "T-001")
    let plain = try world.taskq("run")
    #expect(plain.status == 0, "\(plain.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .review)
    #expect(record.attempt == 1)
    #expect(record.worktreePath == worktree)
    #expect(try String(contentsOfFile: worktree + "/notes.txt", encoding: .utf8) == "kept\n")
    // The first attempt's container was replaced, not left beside the new one.
    #expect(try world.containers().map(\.name) == [try #require(record.container)])
  }

  /// A worktree registration half-made by libgit2 on a full disk (`.git/worktrees/<id>` holding only an
  /// empty `commondir`) is named by `fsck`, repaired by `cleanup --id`, and by the next attempt.
  @Test func aHalfMadeWorktreeIsNamedByFsckAndRepaired() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let registration = world.path + "/.git/worktrees/T-001"
    func halfMake() throws {
      try FileManager.default.createDirectory(atPath: registration, withIntermediateDirectories: true)
      FileManager.default.createFile(atPath: registration + "/commondir", contents: Data())
    }
    try halfMake()
    let fsck = try world.taskq("fsck")
    #expect(fsck.stdoutText.contains("worktrees/T-001 is half-made"), "\(fsck.stdoutText)")
    let cleanup = try world.taskq("cleanup", "--id", "T-001")
    #expect(cleanup.status == 0, "\(cleanup.summary)")
    #expect(cleanup.stdoutText.contains("T-001: removed a half-made worktree registration"), "\(cleanup.stdoutText)")
    #expect(!FileManager.default.fileExists(atPath: registration))

    try halfMake()
    let run = try world.taskq("run")
    #expect(run.status == 0, "\(run.summary)")
    #expect(try world.record("T-001").status == .review)
    #expect(try world.repository.git("worktree", "list").contains(world.worktree("T-001")))
  }

  /// An engine that does not answer: one refusal up front, nothing claimed; `fsck` says so too.
  @Test func anEngineThatIsDownIsRefusedBeforeAnythingIsClaimed() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let tip = try world.repository.queueTip()
    let result = try world.taskq("run", environment: ["FAKE_DOCKER_DOWN": "1"])
    #expect(result.status == 1)
    #expect(
      result.stderrText
        == "error: the container engine does not answer ('docker version': Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?): start it, or use --runtime local (nothing was claimed)\n"
    )
    #expect(try world.repository.queueTip() == tip)
    let fsck = try world.taskq("fsck", environment: ["FAKE_DOCKER_DOWN": "1"])
    #expect(fsck.stdoutText.contains("the container engine does not answer"), "\(fsck.stdoutText)")
  }

  @Test func anExhaustedPortRangeFailsTheTaskThatGetsNoPort() throws {
    let world = try FakeWorld(portCount: 1)
    try world.repository.addTask("T-001", priority: 1)
    try world.repository.addTask("T-002")
    let result = try world.taskq("run", "--max-parallel", "1")
    #expect(result.status == 1, "\(result.summary)")
    #expect(try world.record("T-001").status == .review, "\(result.summary)")
    let record = try world.record("T-002")
    #expect(record.status == .failed)
    #expect(record.lastError == "no free port in \(world.ports.lowerBound)-\(world.ports.upperBound)")
  }

  @Test func aPortBoundByAnotherProgramIsSkipped() throws {
    let world = try FakeWorld(portCount: 3)
    let taken = world.ports.lowerBound
    let squatter = try world.execute(
      "docker",
      [
        "run", "-d", "--name", "squatter", "-p", "127.0.0.1:\(taken):80", "nginx", "serve", "--hostname", "0.0.0.0",
        "--port", "80",
      ])
    #expect(squatter.succeeded, "\(squatter.summary)")
    try world.waitUntil("the squatter to listen") { !Loopback.isFree(taken) }
    try world.repository.addTask("T-001")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    let port = try #require(try world.record("T-001").port)
    #expect(port != taken)
    #expect(world.ports.contains(port))
  }

  @Test func missingContainerEngineIsAOneLineErrorBeforeAnythingIsClaimed() throws {
    let world = try FakeWorld()
    try world.config("taskq.containerProgram", "no-such-docker")
    try world.repository.addTask("T-001")
    let tip = try world.repository.queueTip()
    let result = try world.taskq("run")
    #expect(result.status == 1)
    #expect(result.stderrLines.count == 1, "\(result.stderrText)")
    #expect(result.stderrText.contains("no-such-docker"))
    #expect(try world.repository.queueTip() == tip)
  }
}
