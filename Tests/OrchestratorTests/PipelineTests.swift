import Git
import TaskQueue
import TaskqTestSupport
import Testing

@testable import Orchestrator

#if canImport(Glibc)
import Glibc
#endif

/// One queue in a real scratch repository, run in-process by a ``TaskRunner`` whose outside world (engine,
/// agent, health, clock, interrupt) is fake. Git stays real: the worktree, the branch and every transition
/// are made by libgit2 and checked in the queue.
final class PipelineBench {
  let scratch: ScratchRepository
  let clock = FakeClock()
  let interrupt = FakeInterrupt()
  let settings: RunSettings
  let worker = "pipeline-test:1"

  init(runtime: String = "docker", overrides: [SettingKey: String] = [:]) throws {
    scratch = try ScratchRepository()
    var values: [SettingKey: String] = [
      .runtime: runtime, .containerProgram: "taskq-no-such-docker", .agentProgram: "taskq-no-such-opencode",
      .worktreesRoot: scratch.directory.path + "/worktrees", .reposRoot: scratch.directory.path,
      .healthTimeout: "30", .serverPassword: "false", .portRange: "47600-47699",
    ]
    values.merge(overrides) { _, new in new }
    settings = try RunSettings(Settings(configuration: nil, environment: [:], overrides: values))
  }

  /// A store of the test (another writer than the worker, as another `git taskq` process would be).
  func store(worker: String = "someone-else:2") throws -> QueueStore {
    let store = try scratch.store(worker: worker)
    store.clock = clock
    return store
  }

  @discardableResult
  func add(_ id: String, base: String = "main") throws -> TaskRecord {
    try store().add(NewTask(id: id, repo: scratch.path, base: base, body: "Do \(id)."))
  }

  /// Runs task `id` (`run --id`) to its end for this run.
  func run(
    _ id: String, containers: FakeContainers = FakeContainers(), agent: FakeAgent = .succeeding(),
    health: FakeHealth = FakeHealth(), leaseSeconds: Int = 600
  ) throws -> Outcome {
    let environment = RunEnvironment(
      containers: containers, agents: agent, health: health, clock: clock,
      isInterrupted: { [interrupt] in interrupt.isRaised })
    let runner = TaskRunner(
      gitDirectory: scratch.path, settings: settings, options: RunOptions(onlyID: id, leaseSeconds: leaseSeconds),
      events: RunEvents(mode: .lines), worker: worker, environment: environment)
    let outcomes = try runner.run()
    try #require(outcomes.count == 1)
    return outcomes[0].1
  }

  func record(_ id: String) throws -> TaskRecord { try #require(try store().snapshot().record(id)) }

  /// The `Taskq-Op` of task `id`'s commits, oldest first.
  func kinds(_ id: String) throws -> [String] {
    try store().history(task: id).reversed().map(\.operation.kind.rawValue)
  }

  /// The last failure report of task `id`.
  func report(_ id: String) throws -> String {
    let file = try #require(try record(id).errorFile)
    let path = try #require(file.split(separator: ":", maxSplits: 1).last.map(String.init))
    return try #require(try store().snapshot().file(atPath: path))
  }
}

/// The pipeline of one task, in-process, with every stage's failure, a cancel, a lost lease and an
/// interrupt; the end-to-end tests (RunCommandTests, RunFailureTests, RunStopTests) show the same through
/// the binary and real processes.
@Suite struct PipelineTests {
  @Test func aTaskGoesThroughEveryStageToReview() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let containers = FakeContainers()
    let agent = FakeAgent.succeeding(session: "ses_abc")
    #expect(try bench.run("T-1", containers: containers, agent: agent) == .review)

    let record = try bench.record("T-1")
    #expect(record.status == .review)
    #expect(record.sessionID == "ses_abc")
    #expect(record.worker == nil && record.leaseExpiresAt == nil)
    let request = try #require(containers.started.first)
    #expect(containers.started.count == 1)
    #expect(record.container == request.name && request.name.hasPrefix("task-T-1-"))
    #expect(record.port == request.hostPort && (47600...47699).contains(request.hostPort))
    let worktree = bench.scratch.directory.path + "/worktrees/repo/T-1"
    #expect(record.worktreePath == worktree && request.worktree == worktree)
    #expect(try bench.scratch.git("-C", worktree, "rev-parse", "--abbrev-ref", "HEAD") == "task/T-1")
    // The plan runs without a session, the build in the plan's session, both inside the container.
    #expect(agent.recorded.map(\.command) == ["make-plan", "execute-plan"])
    #expect(agent.recorded.map(\.session) == [nil, "ses_abc"])
    #expect(agent.recorded.allSatisfy { $0.task == "T-1" && $0.spec.arguments.contains(request.name) })
    #expect(try bench.kinds("T-1") == ["add", "claim", "setup", "port", "setup", "setup", "build", "review"])
  }

  @Test func theLocalRuntimeStartsNoContainer() throws {
    let bench = try PipelineBench(runtime: "local")
    try bench.add("T-1")
    let containers = FakeContainers()
    let agent = FakeAgent.succeeding()
    #expect(try bench.run("T-1", containers: containers, agent: agent) == .review)
    #expect(containers.started.isEmpty)
    #expect(agent.recorded.allSatisfy { $0.spec.environment["TASKQ_STAGE"] != nil })
    #expect(agent.recorded.map { $0.spec.environment["TASKQ_STAGE"] } == ["planning", "building"])
    #expect(try bench.kinds("T-1") == ["add", "claim", "setup", "build", "review"])
  }

  // MARK: Setup fails at each stage

  @Test func aMissingBaseFailsTheSetupBeforeAnythingIsMade() throws {
    let bench = try PipelineBench()
    try bench.add("T-1", base: "no-such-branch")
    let containers = FakeContainers()
    let agent = FakeAgent.succeeding()
    let outcome = try bench.run("T-1", containers: containers, agent: agent)
    #expect(outcome == .failed("base 'no-such-branch' does not exist in '\(bench.scratch.path)'"))
    #expect(try bench.record("T-1").status == .failed)
    #expect(try bench.report("T-1").contains("setup"))
    #expect(containers.started.isEmpty && agent.recorded.isEmpty)
    #expect(try bench.scratch.git("branch", "--list", "task/T-1").isEmpty)
    #expect(try bench.kinds("T-1") == ["add", "claim", "fail"])
  }

  @Test func aWorktreePathThatIsInTheWayFailsTheSetup() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    try bench.scratch.directory.write("worktrees/repo/T-1/notes.txt", "someone's\n")
    let agent = FakeAgent.succeeding()
    let outcome = try bench.run("T-1", agent: agent)
    let path = bench.scratch.directory.path + "/worktrees/repo/T-1"
    #expect(outcome == .failed("worktree path '\(path)' already exists"))
    #expect(try bench.report("T-1").contains("It is not a worktree of"))
    #expect(agent.recorded.isEmpty)
  }

  @Test func aContainerThatCannotStartFailsTheContainerStage() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let containers = FakeContainers(
      startFailure: StageFailure(stage: "container", summary: "docker run failed: no such image"))
    let agent = FakeAgent.succeeding()
    #expect(try bench.run("T-1", containers: containers, agent: agent) == .failed("docker run failed: no such image"))
    let record = try bench.record("T-1")
    #expect(record.status == .failed)
    // The name was recorded before the start, so cleanup can find what a crash would leave.
    #expect(record.container?.hasPrefix("task-T-1-") == true)
    #expect(agent.recorded.isEmpty)
  }

  @Test func aServerThatNeverAnswersTimesOutOnTheClock() throws {
    let bench = try PipelineBench(overrides: [.healthTimeout: "45"])
    try bench.add("T-1")
    let health = FakeHealth(status: nil)
    let start = bench.clock.now()
    let outcome = try bench.run("T-1", health: health)
    guard case .failed(let summary) = outcome else {
      Issue.record("expected a failure, got \(outcome)")
      return
    }
    #expect(summary.hasPrefix("the OpenCode server did not answer GET /global/health on 127.0.0.1:"))
    #expect(summary.hasSuffix("within 45 s"))
    // 45 s of fake time, polled every 0.2 s: the wait is bounded by the clock, not by wall time.
    #expect(bench.clock.now() - start >= 45)
    #expect(health.count >= 200)
    #expect(try bench.report("T-1").contains("log of task-T-1-"))
  }

  @Test func aContainerThatExitsBeforeItsServerAnswersFailsAtOnce() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let outcome = try bench.run("T-1", containers: FakeContainers(staysUp: false), health: FakeHealth(status: nil))
    guard case .failed(let summary) = outcome else {
      Issue.record("expected a failure, got \(outcome)")
      return
    }
    #expect(summary.hasPrefix("container task-T-1-") && summary.hasSuffix(" exited before its server answered"))
  }

  @Test func aPlanThatFailsFailsThePlanningStage() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let agent = FakeAgent { _, _ in .fake(status: 3, stderr: "model not found\n") }
    #expect(try bench.run("T-1", agent: agent) == .failed("make-plan exit status 3: model not found"))
    let report = try bench.report("T-1")
    #expect(report.contains("planning") && report.contains("model not found"))
    #expect(agent.recorded.count == 1)
    #expect(try bench.record("T-1").status == .failed)
  }

  @Test func aBuildThatFailsFailsTheBuildingStage() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let agent = FakeAgent { call, _ in
      call.command == "make-plan" ? .fake(stdout: #"{"sessionID":"ses_1"}"#) : .fake(status: 1, stdout: "tests fail")
    }
    #expect(try bench.run("T-1", agent: agent) == .failed("execute-plan exit status 1: tests fail"))
    let record = try bench.record("T-1")
    #expect(record.status == .failed && record.sessionID == "ses_1")
    #expect(try bench.kinds("T-1").suffix(2) == ["build", "fail"])
  }

  @Test func anAgentThatCannotBeStartedFailsItsStage() throws {
    let bench = try PipelineBench(runtime: "local")
    try bench.add("T-1")
    let agent = FakeAgent { call, _ in throw SpawnError(program: call.spec.program, reason: "not found on PATH") }
    let outcome = try bench.run("T-1", agent: agent)
    #expect(outcome == .failed("cannot run 'taskq-no-such-opencode': not found on PATH"))
  }

  // MARK: Stopped from outside

  @Test func aCancelMidStageStopsTheAgentAndTheContainer() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let containers = FakeContainers()
    let clock = bench.clock
    let path = bench.scratch.path
    let agent = FakeAgent { call, shouldStop in
      guard call.command == "execute-plan" else { return .fake(stdout: #"{"sessionID":"ses_1"}"#) }
      // Another process cancels the task while the build runs.
      _ = try QueueStore(repository: try Repository.open(at: path), worker: "other:3").cancel("T-1")
      return FakeAgent.runUntilStopped(shouldStop, clock: clock)
    }
    #expect(try bench.run("T-1", containers: containers, agent: agent) == .cancelled)
    let record = try bench.record("T-1")
    #expect(record.status == .cancelled)
    // `docker exec` was stopped: the container is stopped (kept for inspection), never removed.
    #expect(containers.stopped == [try #require(record.container)])
    #expect(containers.state.withLock { $0.removed.isEmpty })
    #expect(try bench.kinds("T-1").last == "cancel")
  }

  @Test func aLeaseRecoveredElsewhereStopsTheWorker() throws {
    let bench = try PipelineBench(runtime: "local")
    try bench.add("T-1")
    let clock = bench.clock
    let path = bench.scratch.path
    let agent = FakeAgent { call, shouldStop in
      // The lease ran out as another process saw it, and it recovered the task ("worker lost").
      let other = QueueStore(repository: try Repository.open(at: path), worker: "recoverer:4")
      other.clock = clock
      clock.advance(700)
      #expect(try other.recoverStale { _ in "worker lost" }.map(\.id) == ["T-1"])
      return FakeAgent.runUntilStopped(shouldStop, clock: clock)
    }
    #expect(try bench.run("T-1", agent: agent, leaseSeconds: 600) == .lost("failed"))
    #expect(agent.recorded.count == 1)
    let record = try bench.record("T-1")
    #expect(record.status == .failed)
    // The recovery stands: the worker neither renewed over it nor wrote a failure of its own.
    #expect(try bench.kinds("T-1") == ["add", "claim", "setup", "recover"])
  }

  @Test func aLongStageRenewsTheLease() throws {
    let bench = try PipelineBench(runtime: "local")
    try bench.add("T-1")
    let clock = bench.clock
    let path = bench.scratch.path
    let agent = FakeAgent { call, shouldStop in
      guard call.command == "make-plan" else { return .fake() }
      // Two thirds of the lease pass while the plan runs: the worker renews it.
      let before = try QueueStore(repository: try Repository.open(at: path)).snapshot().record("T-1")?.leaseExpiresAt
      clock.advance(50)
      #expect(!shouldStop())
      let after = try QueueStore(repository: try Repository.open(at: path)).snapshot().record("T-1")?.leaseExpiresAt
      #expect(before != nil && after != nil && before != after)
      return .fake(stdout: #"{"sessionID":"ses_2"}"#)
    }
    #expect(try bench.run("T-1", agent: agent, leaseSeconds: 60) == .review)
    #expect(try bench.kinds("T-1") == ["add", "claim", "setup", "renew", "build", "review"])
  }

  @Test func anInterruptFailsTheTaskAsInterrupted() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let containers = FakeContainers()
    let interrupt = bench.interrupt
    let clock = bench.clock
    let agent = FakeAgent { call, shouldStop in
      interrupt.raise()
      return FakeAgent.runUntilStopped(shouldStop, clock: clock)
    }
    #expect(try bench.run("T-1", containers: containers, agent: agent) == .interrupted)
    let record = try bench.record("T-1")
    #expect(record.status == .failed)
    #expect(try bench.kinds("T-1").last == "interrupt")
    #expect(try bench.report("T-1").contains("The run was interrupted"))
    #expect(containers.stopped == [try #require(record.container)])
  }

  @Test func anInterruptWhileTheServerStartsFailsTheContainerStage() throws {
    let bench = try PipelineBench()
    try bench.add("T-1")
    let interrupt = bench.interrupt
    let health = FakeHealth(status: nil)
    let agent = FakeAgent.succeeding()
    let containers = FakeContainers()
    // The first health probe fails; Ctrl-C comes before the next.
    let probe = InterruptingHealth(health, interrupt: interrupt)
    let environment = RunEnvironment(
      containers: containers, agents: agent, health: probe, clock: bench.clock,
      isInterrupted: { interrupt.isRaised })
    let runner = TaskRunner(
      gitDirectory: bench.scratch.path, settings: bench.settings, options: RunOptions(onlyID: "T-1"),
      events: RunEvents(mode: .lines), worker: bench.worker, environment: environment)
    #expect(try runner.run().map(\.1) == [.interrupted])
    #expect(agent.recorded.isEmpty)
    #expect(try bench.kinds("T-1").last == "interrupt")
    #expect(try bench.report("T-1").contains("container"))
  }
}

/// A health probe that raises the interrupt on its first probe.
struct InterruptingHealth: HealthProbe {
  let inner: FakeHealth
  let interrupt: FakeInterrupt
  init(_ inner: FakeHealth, interrupt: FakeInterrupt) {
    self.inner = inner
    self.interrupt = interrupt
  }
  func httpStatus(port: Int, path: String, timeout: Double, authorization: String?) -> Int? {
    interrupt.raise()
    return inner.httpStatus(port: port, path: path, timeout: timeout, authorization: authorization)
  }
}

/// Container names: the seed's `task-<id>-<created>` and a tag of the queue, so two repositories on one
/// engine never ask for the same name.
@Suite struct ContainerNameTests {
  @Test func twoQueuesGiveTheSameTaskDifferentStableNames() throws {
    let record = TaskRecord(
      id: "T-1", repo: ".", base: "main", branch: "task/T-1", taskFile: "task.md",
      createdAt: "2026-12-03T13:00:00+00:00", seq: 1)
    let a = ContainerEngine.containerName(for: record, queue: "/srv/a/.git")
    let b = ContainerEngine.containerName(for: record, queue: "/srv/b/.git")
    #expect(a != b)
    #expect(a == ContainerEngine.containerName(for: record, queue: "/srv/a/.git"))
    #expect(a.hasPrefix("task-T-1-20261203T130000Z-"), "\(a)")
    let tag = a.dropFirst("task-T-1-20261203T130000Z-".count)
    #expect(tag.count == 8 && tag.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(a)")
    #expect(ContainerEngine.containerNames(for: record, queue: "/srv/a/.git") == [a, "task-T-1-20261203T130000Z"])
  }
}
