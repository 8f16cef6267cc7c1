import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `git taskq run` end to end: the real binary, real repositories and worktrees, and fake `docker` and
/// `opencode` on `PATH` that record every call and serve a real `/global/health` on loopback.
@Suite struct RunCommandTests {
  @Test func oneTaskGoesThroughEveryStageToReview() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001", body: "Add a greeting to the README.")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("review (1): T-001"), "\(result.stdoutText)")

    let record = try world.record("T-001")
    let worktree = world.worktree("T-001")
    #expect(record.status == .review)
    #expect(record.worktreePath == worktree)
    #expect(try record.container == world.containerName(record))
    let port = try #require(record.port)
    #expect(world.ports.contains(port))
    #expect(record.sessionID == "ses_fake_T-001")
    #expect(record.worker == nil)
    #expect(record.leaseExpiresAt == nil)
    #expect(record.errorFile == nil)

    // Every stage is a commit of the ref, by one worker `host:pid` (the run, not this test).
    let history = try world.history(task: "T-001").dropFirst()  // the add
    let kinds = history.map(\.operation.kind)
    #expect(kinds.first == "claim")
    #expect(kinds.last == "review")
    #expect(kinds.filter { $0 == "build" }.count == 1)
    let details = history.map(\.subject)
    for phrase in [
      "todo → planning", "worktree ready", "port \(port)", "container \(record.container ?? "?")",
      "server ready", "planning → building", "building → review",
    ] {
      #expect(details.contains { $0.contains(phrase) }, "no commit says '\(phrase)': \(details)")
    }
    let workers = Set(history.map(\.operation.worker))
    #expect(workers.count == 1)
    let worker = try #require(workers.first)
    #expect(worker.hasPrefix(FakeWorld.hostName + ":"))
    // host:pid@start, the start time from /proc/<pid>/stat (so a reused pid is not taken for this worker).
    let process = try #require(WorkerProcess(worker))
    #expect(process.pid != getpid())
    #expect(process.start != nil)
    #expect(process.isAlive == false)
    // As git itself reads the trailers.
    let message = try world.repository.git("log", "-1", "--format=%B", "refs/taskq/queue")
    #expect(message.contains("Taskq-Op: review"))
    #expect(message.contains("Taskq-Worker: \(worker)"))

    // The branch has the agent's commit; the worktree is registered with git; the server still answers.
    #expect(try world.repository.git("rev-list", "--count", "main..task/T-001") == "1")
    #expect(try world.repository.git("show", "task/T-001:fake-agent/T-001.txt") == "Add a greeting to the README.")
    #expect(try world.gitWorktrees().contains(worktree))
    #expect(try world.repository.git("-C", worktree, "rev-parse", "--abbrev-ref", "HEAD") == "task/T-001")
    let container = try #require(world.container(named: record.container ?? ""))
    #expect(container.isRunning)
    #expect(container.hostPort == port)
    // The server wants the task's password (basic auth), which the agent inside the container has too.
    let password = try #require(world.serverPassword("T-001"))
    #expect(try world.health("T-001") == 200)
    #expect(Loopback.httpStatus(port: port, path: "/global/health") == 401)
    #expect(try world.calls("opencode").allSatisfy { $0.environment["OPENCODE_SERVER_PASSWORD"] == password })
  }

  @Test func jsonPrintsOneEventObjectPerLine() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run", "--json")
    #expect(result.status == 0, "\(result.summary)")
    let lines = result.stdoutText.split(separator: "\n")
    #expect(lines.count >= 4)
    var transitions: [String] = []
    for line in lines {
      let object = try #require(
        try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not a JSON object: \(line)")
      #expect(object["task"] as? String == "T-001")
      #expect(object["event"] is String)
      #expect(object["time"] is String)
      if let from = object["from"] as? String, let to = object["to"] as? String { transitions.append("\(from)→\(to)") }
    }
    #expect(transitions == ["todo→planning", "planning→building", "building→review"])
  }

  @Test func dockerRunArgvIsExact() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    let record = try world.record("T-001")
    let port = try #require(record.port)
    let worktree = world.worktree("T-001")
    let gitDirectory = world.path + "/.git"
    let runs = try world.dockerCalls("run")
    #expect(runs.count == 1)
    #expect(
      runs.first?.arguments == [
        "run", "-d", "--init", "--name", try world.containerName(record),
        "--label", "git-taskq.managed=true",
        "--label", "git-taskq.task=T-001",
        "--label", "git-taskq.repo=\(world.path)",
        "--label", "git-taskq.queue=\(gitDirectory)",
        "-p", "127.0.0.1:\(port):4096",
        "-v", "\(worktree):\(worktree)",
        "-v", "\(gitDirectory):\(gitDirectory)",
        "-w", worktree,
        "-e", "OPENCODE_SERVER_PASSWORD",
        "example.test/opencode:fake", "serve", "--hostname", "0.0.0.0", "--port", "4096",
      ])
    #expect(record.container?.range(of: #"^task-T-001-\d{8}T\d{6}Z-[0-9a-f]{8}$"#, options: .regularExpression) != nil)
  }

  /// The password reaches the container by name only: in the engine's environment, in no argv, output or
  /// queue commit, and in a file only its owner can read.
  @Test func serverPasswordStaysOnThisMachine() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    let password = try #require(world.serverPassword("T-001"))
    #expect(password.count >= 16)
    let run = try #require(try world.dockerCalls("run").first)
    #expect(run.environment["OPENCODE_SERVER_PASSWORD"] == password)
    for call in try world.calls() {
      #expect(!call.arguments.contains { $0.contains(password) }, "\(call)")
    }
    #expect(!result.stdoutText.contains(password))
    #expect(!result.stderrText.contains(password))
    #expect(!(try world.repository.git("log", "-p", "refs/taskq/queue").contains(password)))
    let file = try FileManager.default.attributesOfItem(atPath: world.secretPath("T-001"))
    #expect((file[.posixPermissions] as? Int) == 0o600)
    let directory = try FileManager.default.attributesOfItem(atPath: world.path + "/.git/taskq/secrets")
    #expect((directory[.posixPermissions] as? Int) == 0o700)
  }

  @Test func serverPasswordCanBeTurnedOff() throws {
    let world = try FakeWorld()
    try world.config("taskq.serverPassword", "false")
    try world.repository.addTask("T-001")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    let run = try #require(try world.dockerCalls("run").first)
    #expect(!run.arguments.contains("-e"))
    #expect(world.serverPassword("T-001") == nil)
    let port = try #require(try world.record("T-001").port)
    #expect(Loopback.httpStatus(port: port, path: "/global/health") == 200)
  }

  @Test func agentStagesRunInTheContainerWithTheBodyAsOneArgument() throws {
    let world = try FakeWorld()
    try world.config("taskq.agent", "build")
    try world.config("taskq.model", "provider/model-x")
    try world.config("taskq.variant", "high")
    // A body that looks like options, spans lines and quotes: it must reach the agent as one element.
    let body = "--help -rf: starts with a dash\n\nSecond paragraph with 'quotes', \"double\" and $HOME."
    try world.repository.addTask("T-001", body: body)
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    let record = try world.record("T-001")
    let container = try #require(record.container)
    let worktree = world.worktree("T-001")

    let execs = try world.dockerCalls("exec")
    #expect(execs.count == 2)
    func expected(_ command: String, session: [String]) -> [String] {
      [
        "exec", "-w", worktree, container, "opencode", "run", "--command", command, "--format", "json",
        "--title", "taskq T-001", "--attach", "http://127.0.0.1:4096",
      ] + session
        + ["--agent", "build", "--model", "provider/model-x", "--variant", "high", "--", body]
    }
    #expect(execs.first?.arguments == expected("make-plan", session: []))
    #expect(execs.last?.arguments == expected("execute-plan", session: ["--session", "ses_fake_T-001"]))

    // Inside the "container": the agent ran in the worktree, and got the body verbatim.
    let agents = try world.calls("opencode")
    #expect(agents.count == 2)
    for call in agents {
      #expect(call.directory == worktree)
      #expect(call.environment["FAKE_CONTAINER"] == container)
      #expect(call.arguments.last == body)
      #expect(call.arguments.dropLast().last == "--")
    }
    #expect(try world.repository.git("show", "task/T-001:fake-agent/T-001.txt") == body)
  }

  @Test func onePassRunsEveryClaimableTaskInPriorityOrder() throws {
    let world = try FakeWorld()
    let priorities = ["T-1": 0, "T-2": 5, "T-3": 0, "T-4": 9, "T-5": 5, "T-6": 0, "T-7": 1]
    for id in priorities.keys.sorted() {
      try world.repository.addTask(id, priority: priorities[id] ?? 0)
    }
    let result = try world.taskq("run", "--max-parallel", "2", environment: ["FAKE_OPENCODE_DELAY": "0.1"])
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("review (7):"), "\(result.stdoutText)")
    for id in priorities.keys { #expect(try world.record(id).status == .review, "\(id)") }

    let history = try world.history()
    let claims = history.filter { $0.operation.kind == "claim" }.map(\.operation.task)
    #expect(claims == ["T-4", "T-2", "T-5", "T-7", "T-1", "T-3", "T-6"])
    // Never more than two tasks in flight at once.
    var active = 0
    var most = 0
    for entry in history {
      if entry.operation.kind == "claim" { active += 1 }
      if entry.operation.to == .review || entry.operation.to == .failed { active -= 1 }
      most = max(most, active)
    }
    #expect(most <= 2)
    #expect(most >= 1)
  }

  @Test func parallelTasksGetDistinctPortsInRange() throws {
    let world = try FakeWorld(portCount: 8)
    let ids = ["P-1", "P-2", "P-3", "P-4", "P-5"]
    for id in ids { try world.repository.addTask(id) }
    let result = try world.taskq("run", "--max-parallel", "3", environment: ["FAKE_OPENCODE_DELAY": "0.3"])
    #expect(result.status == 0, "\(result.summary)")
    let records = try ids.map(world.record)
    let ports = records.compactMap(\.port)
    #expect(ports.count == 5)
    #expect(Set(ports).count == 5, "ports \(ports)")
    #expect(ports.allSatisfy(world.ports.contains), "ports \(ports) not in \(world.ports)")
    // What was published is what was recorded, and every server answers on its own port.
    let published = try world.dockerCalls("run").compactMap { call -> String? in
      guard let index = call.arguments.firstIndex(of: "-p") else { return nil }
      return call.arguments[index + 1]
    }
    #expect(Set(published) == Set(ports.map { "127.0.0.1:\($0):4096" }))
    for record in records { #expect(try world.health(record.id) == 200, "\(record.id)") }
    #expect(Set(records.compactMap(\.container)).count == 5)
  }

  @Test func twoRunsOnOneQueueNeverRunTheSameTask() throws {
    let world = try FakeWorld()
    let ids = (1...6).map { "S-\($0)" }
    for id in ids { try world.repository.addTask(id) }
    let environment = ["FAKE_OPENCODE_DELAY": "0.2"]
    let first = try world.start("run", "--max-parallel", "2", environment: environment)
    let second = try world.start("run", "--max-parallel", "2", environment: environment)
    let results = [try first.wait(timeout: 60), try second.wait(timeout: 60)]
    for result in results { #expect(result.status == 0, "\(result.summary)") }
    let claims = try world.history().filter { $0.operation.kind == "claim" }
    #expect(claims.map(\.operation.task).sorted() == ids.sorted())
    let workers = Set([first.pid, second.pid])
    let claimers = Set(claims.compactMap { WorkerProcess($0.operation.worker ?? "")?.pid })
    #expect(claimers.isSubset(of: workers))
    let records = try ids.map(world.record)
    #expect(records.allSatisfy { $0.status == .review })
    #expect(Set(records.compactMap(\.port)).count == ids.count)
    #expect(try world.dockerCalls("run").count == ids.count)
    #expect(try world.calls("opencode").count == 2 * ids.count)
  }

  @Test func runIDRunsOnlyThatTask() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001", priority: 9)
    try world.repository.addTask("T-002")
    let result = try world.taskq("run", "--id", "T-002")
    #expect(result.status == 0, "\(result.summary)")
    #expect(try world.record("T-002").status == .review)
    #expect(try world.record("T-001").status == .todo)
  }

  @Test(arguments: [TaskStatus.review, .failed, .cancelled, .planning])
  func runIDOfATaskThatIsNotTodoIsAOneLineError(_ status: TaskStatus) throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    // A live worker of this very process holds it when it is planning, so no "worker lost" recovery.
    try world.repository.drive("T-001", to: status, store: world.repository.store(worker: "elsewhere:1"))
    let tip = try world.repository.queueTip()
    let result = try world.taskq("run", "--id", "T-001")
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stderrLines.count == 1, "\(result.stderrText)")
    #expect(result.stderrText.hasPrefix("error: "))
    #expect(result.stderrText.contains("T-001"))
    #expect(result.stderrText.contains(status.rawValue))
    #expect(try world.repository.queueTip() == tip)
    #expect(try world.dockerCalls("run").isEmpty)
  }

  @Test func runIDOfAnUnknownTaskIsAOneLineError() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let tip = try world.repository.queueTip()
    let result = try world.taskq("run", "--id", "T-404")
    #expect(result.status == 1)
    #expect(result.stderrLines.count == 1, "\(result.stderrText)")
    #expect(result.stderrText.contains("T-404"))
    #expect(try world.repository.queueTip() == tip)
  }

  @Test func nothingToRunSaysSo() throws {
    let world = try FakeWorld()
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("nothing to run"))
    // Only the engine check up front; nothing was started.
    #expect(try world.calls().map(\.arguments) == [["version", "--format", "{{.Server.Version}}"]])
  }

  @Test func barePollIsAcceptedAndKeepsPollingUntilInterrupted() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    try world.repository.addTask("T-002")
    let run = try world.start("run", "--poll", "--max-parallel", "2")
    try world.waitForStatus("T-001", .review)
    try world.waitForStatus("T-002", .review)
    // A task added while it polls is picked up on a later pass (bare --poll: every 5 s).
    try world.repository.addTask("T-003")
    try world.waitForStatus("T-003", .review, timeout: 30)
    #expect(!run.isFinished)
    run.signal(SIGINT)
    let result = try run.wait(timeout: 20)
    #expect(result.status == 130, "\(result.summary)")
    #expect(result.stdoutText.contains("review (3):"), "\(result.stdoutText)")
    // In a pipe (no board) it says once that an idle run waits.
    #expect(result.stderrText.contains("polling for tasks every 5s (Ctrl-C to stop)"), "\(result.stderrText)")
    #expect(!result.stdoutText.contains("failed"))
    #expect(!result.stdoutText.contains("interrupted"))
    for id in ["T-001", "T-002", "T-003"] { #expect(try world.record(id).status == .review) }
    #expect(try !world.history().contains { $0.operation.kind == "interrupt" || $0.operation.to == .failed })
  }

  @Test(arguments: [["run", "--id", "T-001", "--poll"], ["run", "--poll", "--id", "T-001"]])
  func barePollParsesAnywhere(_ arguments: [String]) throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let result = try world.taskq(arguments)
    // Parsed as a flag without a value, then refused with --id (and not "missing value").
    #expect(result.status != 0)
    #expect(result.stderrText.contains("cannot be combined with --poll"), "\(result.stderrText)")
    #expect(try world.record("T-001").status == .todo)
  }

  @Test func localRuntimeWithTheDemoAgentMakesARealCommit() throws {
    let world = try FakeWorld()
    try world.config("taskq.agentProgram", FakeWorld.demoAgent)
    try world.repository.addTask("T-001", body: "Write the release notes")
    let result = try world.taskq("run", "--runtime", "local")
    #expect(result.status == 0, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .review)
    #expect(record.container == nil)
    #expect(record.port == nil)
    #expect(record.sessionID == "ses_demo_T-001")
    #expect(record.worktreePath == world.worktree("T-001"))
    #expect(try world.repository.git("log", "--format=%s", "main..task/T-001") == "T-001: Write the release notes")
    #expect(try world.repository.git("show", "task/T-001:notes/T-001.md").contains("Write the release notes"))
    #expect(try world.calls("docker").isEmpty)
  }

  @Test func localRuntimeRunsTheAgentInTheWorktreeWithTaskEnvironment() throws {
    let world = try FakeWorld()
    try world.config("taskq.runtime", "local")
    try world.config("taskq.agentProgram", world.bin + "/opencode")
    try world.repository.addTask("T-001", body: "-n do it")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    let calls = try world.calls("opencode")
    #expect(calls.count == 2)
    #expect(calls.map { $0.environment["TASKQ_STAGE"] } == ["planning", "building"])
    for call in calls {
      #expect(call.directory == world.worktree("T-001"))
      #expect(call.environment["TASKQ_TASK_ID"] == "T-001")
      #expect(!call.arguments.contains("--attach"))
      #expect(call.arguments.suffix(2) == ["--", "-n do it"])
    }
    #expect(try world.calls("docker").isEmpty)
    #expect(try world.record("T-001").status == .review)
  }
}
