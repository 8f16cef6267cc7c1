import Foundation
import Orchestrator
import TaskqTestSupport
import Testing

/// A real container engine (rootful Podman behind the `docker` CLI, started by
/// `scripts/engine/podman-engine.sh start`) driven through the real binary. Skipped, with the reason, when no
/// engine answers.
enum RealEngine {
  static let image = "localhost/taskq-standin:latest"

  /// Why the suite cannot run here, or `nil` when it can.
  static let unavailableReason: String? = {
    guard ProcessRunner.resolve("docker") != nil else { return "no 'docker' CLI on PATH" }
    guard
      let version = try? ProcessRunner.run(
        ProcessSpec("docker", ["version", "--format", "{{.Server.Version}}"], timeout: 10)),
      version.succeeded
    else { return "no container engine answers the docker CLI (run scripts/engine/podman-engine.sh start)" }
    guard let inspect = try? ProcessRunner.run(ProcessSpec("docker", ["image", "inspect", image], timeout: 10)),
      inspect.succeeded
    else { return "the stand-in image \(image) is missing (run scripts/engine/podman-engine.sh start)" }
    return nil
  }()

  /// `TASKQ_REQUIRE_ENGINE=1`: the suite fails, instead of skipping, when no engine answers (CI).
  static let isRequired = ProcessInfo.processInfo.environment["TASKQ_REQUIRE_ENGINE"] == "1"

  /// A world whose `docker` is the real CLI (the fake is taken off `PATH`), on the stand-in image.
  static func world() throws -> FakeWorld {
    let world = try FakeWorld()
    try FileManager.default.removeItem(atPath: world.bin + "/docker")
    try world.config("taskq.image", image)
    try world.config("taskq.healthTimeout", "30")
    try world.config("taskq.setupTimeout", "60")
    return world
  }

  /// Removes every container of the queue of `world` (the tests clean up after themselves; the engine
  /// script removes nothing it did not start).
  static func removeContainers(of path: String) {
    let queue = ContainerEngine.queueIdentity(commonDirectory: path + "/.git")
    for (name, _) in ContainerEngine(program: "docker", timeout: 30).containers(ofQueue: queue) {
      _ = try? docker("rm", "-f", name)
    }
  }

  /// Whether container `name` exists, and whether it runs.
  static func state(_ name: String) -> (exists: Bool, running: Bool) {
    guard let result = try? docker("inspect", "-f", "{{.State.Running}}", name) else { return (false, false) }
    return (true, result == "true")
  }

  static func docker(_ arguments: String...) throws -> String {
    let result = try ProcessRunner.run(ProcessSpec("docker", arguments, timeout: 30))
    guard result.succeeded else {
      throw TestFailure("docker \(arguments.joined(separator: " ")): \(result.stderrText)")
    }
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

@Suite(
  .serialized,
  .enabled(
    if: RealEngine.unavailableReason == nil || RealEngine.isRequired,
    "real-engine suite skipped: \(RealEngine.unavailableReason ?? "")"))
struct RealEngineTests {
  let repo: ScratchRepository
  let environment: [String: String]

  init() throws {
    if let reason = RealEngine.unavailableReason {
      // TASKQ_REQUIRE_ENGINE=1 (scripts/test.sh with CI=true): a missing engine fails instead of skipping.
      throw TestFailure("TASKQ_REQUIRE_ENGINE is set but \(reason)")
    }
    repo = try ScratchRepository()
    let home = repo.directory.path + "/home"
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
    environment = ["HOME": home]
    try repo.git("config", "taskq.image", RealEngine.image)
    try repo.git("config", "taskq.worktreesRoot", repo.directory.path + "/worktrees")
    try repo.git("config", "taskq.portRange", "47300-47399")
    try repo.git("config", "taskq.healthTimeout", "20")
  }

  func taskq(_ arguments: String...) throws -> ProcessResult {
    try Taskq.run(arguments, in: repo.path, environment: environment, timeout: 120)
  }

  func record(_ id: String) throws -> [String: Any] {
    let result = try taskq("status", "--id", id, "--json")
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout)) as? [String: Any]
    return try #require(object)
  }

  @Test func runReviewAndCleanupDriveARealContainer() throws {
    defer { RealEngine.removeContainers(of: repo.path) }
    #expect(try taskq("add", "--id", "RE-1", "--task", "-a prompt that starts with a dash").status == 0)
    let run = try taskq("run", "--max-parallel", "2")
    #expect(run.status == 0, "run failed: \(run.stdoutText) \(run.stderrText)")

    let task = try record("RE-1")
    #expect(task["status"] as? String == "review")
    let name = try #require(task["container"] as? String)
    let port = try #require(task["port"] as? Int)
    let worktree = try #require(task["worktree_path"] as? String)
    #expect(name.hasPrefix("task-RE-1-"))
    #expect((47300...47399).contains(port))

    // Named and labelled as specified, published on 127.0.0.1 only, answering.
    #expect(try RealEngine.docker("inspect", "-f", "{{index .Config.Labels \"git-taskq.task\"}}", name) == "RE-1")
    #expect(try RealEngine.docker("inspect", "-f", "{{index .Config.Labels \"git-taskq.managed\"}}", name) == "true")
    let ports = try RealEngine.docker("port", name)
    #expect(ports.contains("127.0.0.1:\(port)"), "ports: \(ports)")
    #expect(!ports.contains("0.0.0.0"), "ports: \(ports)")
    #expect(Loopback.httpStatus(port: port, path: "/global/health") == 200)

    // The worktree is mounted at its own path and the stage commands ran in the container, in it.
    let mounts = try RealEngine.docker("inspect", "-f", "{{range .Mounts}}{{.Source}}={{.Destination}};{{end}}", name)
    #expect(mounts.contains("\(worktree)=\(worktree)"), "mounts: \(mounts)")
    let plan = try String(contentsOfFile: worktree + "/taskq-standin/make-plan.txt", encoding: .utf8)
    #expect(plan.contains("cwd: \(worktree)"))
    #expect(plan.contains("prompt: -a prompt that starts with a dash"))
    let build = try String(contentsOfFile: worktree + "/taskq-standin/execute-plan.txt", encoding: .utf8)
    #expect(build.contains("--session ses_standin"))
    #expect(task["session_id"] as? String == "ses_standin")

    let review = try taskq("review", "--id", "RE-1", "--print")
    #expect(review.status == 0)
    #expect(review.stdoutText.contains("http://127.0.0.1:\(port)"))

    // The stand-in agent committed its change on task/RE-1, inside the container, like a real agent.
    #expect(try repo.git("rev-list", "--count", "main..task/RE-1") == "1")
    #expect(try repo.git("log", "-1", "--format=%an", "task/RE-1") == "opencode-standin")
    #expect(try repo.git("show", "--name-only", "--format=", "task/RE-1").contains("taskq-standin/execute-plan.txt"))

    let approve = try taskq("approve", "--id", "RE-1", "--merge")
    #expect(approve.status == 0, "\(approve.summary)")
    #expect(approve.stdoutText.contains("merged 1 commit(s) of 'task/RE-1' into 'main'"), "\(approve.stdoutText)")
    // Nothing uncommitted was left: cleanup removes the container and the worktree, the branch stays.
    let cleanup = try taskq("cleanup")
    #expect(cleanup.status == 0)
    #expect(cleanup.stdoutText.contains("removed container \(name)"), "\(cleanup.stdoutText)")
    #expect(!RealEngine.state(name).exists, "container \(name) still exists after cleanup")
    #expect(!FileManager.default.fileExists(atPath: worktree))
    #expect(try repo.git("branch", "--list", "task/RE-1") == "task/RE-1")
  }

  @Test func aServerThatNeverAnswersFailsTheTaskWithTheContainerLog() throws {
    defer { RealEngine.removeContainers(of: repo.path) }
    // An image whose entrypoint exits at once: the container dies before it answers.
    try repo.git("config", "taskq.image", "localhost/taskq-standin-broken:latest")
    try repo.git("config", "taskq.healthTimeout", "10")
    #expect(try taskq("add", "--id", "RE-2", "--task", "never served").status == 0)
    let run = try taskq("run", "--id", "RE-2")
    #expect(run.status == 1)
    let task = try record("RE-2")
    #expect(task["status"] as? String == "failed")
    let errorFile = try #require(task["error_file"] as? String)
    let report = try repo.git("show", errorFile)
    #expect(report.contains("exited before its server answered"), "report: \(report)")
    #expect(report.contains("crashing on purpose"), "the report keeps the container log: \(report)")
    // A failed health check leaves nothing running: the container is removed (its log is in the report).
    let name = try #require(try repo.git("show", errorFile).firstMatch(of: /task-RE-2-\d{8}T\d{6}Z/)).output
    #expect(!RealEngine.state(String(name)).exists, "container \(name) was left behind")
  }
}

/// The real engine through git-taskq's pipeline: stopping, losing a worker, other repositories' containers.
@Suite(
  .serialized,
  .enabled(
    if: RealEngine.unavailableReason == nil || RealEngine.isRequired,
    "real-engine suite skipped: \(RealEngine.unavailableReason ?? "")"))
struct RealEngineStopTests {
  init() throws {
    if let reason = RealEngine.unavailableReason { throw TestFailure("TASKQ_REQUIRE_ENGINE is set but \(reason)") }
  }

  func running(_ world: FakeWorld, _ id: String) throws -> String {
    try world.waitUntil("\(id)'s container to be recorded", timeout: 60) { try world.record(id).container != nil }
    let name = try #require(try world.record(id).container)
    try world.waitUntil("\(name) to run", timeout: 60) { RealEngine.state(name).running }
    return name
  }

  /// Waits until the stand-in agent of stage `command` hangs inside container `name`.
  func waitForHang(_ world: FakeWorld, _ name: String, _ command: String) throws {
    try world.waitUntil("the agent to hang in \(name)", timeout: 60) {
      (try? RealEngine.docker("exec", name, "cat", "/tmp/standin-hang-\(command).pid")) != nil
    }
  }

  @Test func cancelMidStageStopsTheContainerAndEndsTheRun() throws {
    let world = try RealEngine.world()
    defer { RealEngine.removeContainers(of: world.path) }
    try world.repository.addTask("RC-1", body: "standin-hang:make-plan")
    let run = try world.start("run")
    try world.waitForStatus("RC-1", .planning)
    let name = try running(world, "RC-1")
    try waitForHang(world, name, "make-plan")
    let start = monotonicSeconds()
    try world.taskq("cancel", "--id", "RC-1")
    let result = try run.wait(timeout: 60)
    #expect(monotonicSeconds() - start < 15, "the run took \(monotonicSeconds() - start) s to stop")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("cancelled (1): RC-1"), "\(result.stdoutText)")
    #expect(try world.record("RC-1").status == .cancelled)
    #expect(RealEngine.state(name) == (true, false), "the container still runs the agent")
    #expect(try world.taskq("cleanup", "--id", "RC-1").status == 0)
    #expect(!RealEngine.state(name).exists)
  }

  /// One Ctrl-C in a terminal, through `git taskq run`, with containers.
  @Test(.enabled(if: TmuxTerminal.program != nil, "tmux is not installed"))
  func ctrlCThroughGitInATerminalStopsEveryContainer() throws {
    let world = try RealEngine.world()
    defer { RealEngine.removeContainers(of: world.path) }
    let ids = ["RI-1", "RI-2", "RI-3"]
    for id in ids { try world.repository.addTask(id, body: "standin-hang:make-plan") }
    let pane = try RunTerminalInterruptTests.Pane(
      ["git", "taskq", "run", "--max-parallel", "3"], in: world.path,
      environment: world.runEnvironment(["TERM": "xterm"]))
    var names: [String] = []
    for id in ids {
      try world.waitForStatus(id, .planning, timeout: 60)
      let name = try running(world, id)
      try waitForHang(world, name, "make-plan")
      names.append(name)
    }
    let start = monotonicSeconds()
    try pane.tmux(["send-keys", "-t", "run", "C-c"])
    var status: Int?
    while status == nil && monotonicSeconds() - start < 60 {
      status = try pane.exitStatus()
      if status == nil { usleep(20_000) }
    }
    let elapsed = monotonicSeconds() - start
    print("measured: Ctrl-C to exit with 3 container tasks in flight: \(String(format: "%.2f", elapsed)) s")
    let screen = try pane.screen()
    #expect(status == 130, "\(screen)")
    for id in ids {
      let record = try world.record(id)
      #expect(record.status == .failed, "\(id)")
      #expect(record.lastError?.contains("interrupted") == true, "\(id): \(record.lastError ?? "")")
    }
    for name in names { #expect(RealEngine.state(name).running == false, "\(name) still runs") }
  }

  /// `kill -9` of `run`: the agent does not outlive it, `recover` fails the task at once ("worker lost",
  /// no lease wait) and removes its container, and `retry` + `run` finishes it in the same worktree.
  @Test func killedRunIsRecoveredAtOnceAndRetried() throws {
    let world = try RealEngine.world()
    defer { RealEngine.removeContainers(of: world.path) }
    try world.repository.addTask("RK-1", body: "standin-hang-once:make-plan")
    let run = try world.start("run")
    try world.waitForStatus("RK-1", .planning)
    let name = try running(world, "RK-1")
    try waitForHang(world, name, "make-plan")
    let worktree = try #require(try world.record("RK-1").worktreePath)

    let killedAt = monotonicSeconds()
    run.signal(SIGKILL)
    _ = try run.wait(timeout: 20)
    // The guard of the `docker exec` client stops the container once its worker is gone.
    try world.waitUntil("the container to stop", timeout: 30) { RealEngine.state(name).running == false }
    let stoppedAfter = monotonicSeconds() - killedAt
    let recover = try world.taskq("recover")
    let recoveredAfter = monotonicSeconds() - killedAt
    print(
      "measured: kill -9 to the agent's container stopped: \(String(format: "%.2f", stoppedAfter)) s; to 'recover' done: \(String(format: "%.2f", recoveredAfter)) s"
    )
    #expect(recover.status == 0, "\(recover.summary)")
    #expect(recover.stdoutText.contains("recovered 1 task(s): RK-1"), "\(recover.stdoutText)")
    let record = try world.record("RK-1")
    #expect(record.status == .failed)
    #expect(record.lastError?.hasPrefix("worker lost") == true)
    #expect(!RealEngine.state(name).exists, "the lost worker's container was left behind")

    // The agent hangs the first time only: retry, then a plain run in the task's own worktree, to review.
    try world.taskq("retry", "--id", "RK-1")
    let again = try world.taskq("run", timeout: 120)
    #expect(again.status == 0, "\(again.summary)")
    let done = try world.record("RK-1")
    #expect(done.status == .review)
    #expect(done.worktreePath == worktree)
    #expect(try world.repository.git("rev-list", "--count", "main..task/RK-1") == "1")
  }

  /// Two repositories with the same task ids, and a look-alike container carrying our labels under another
  /// name: each queue touches only its own container.
  @Test func twoRepositoriesWithTheSameIDsAndALookAlikeAreLeftAlone() throws {
    let first = try RealEngine.world()
    defer { RealEngine.removeContainers(of: first.path) }
    let second = try RealEngine.world()
    defer { RealEngine.removeContainers(of: second.path) }
    try first.repository.addTask("T-001")
    sleep(1)  // container names carry the creation second: two queues' T-001 made in one second would clash
    try second.repository.addTask("T-001")
    #expect(try first.taskq("run", timeout: 120).status == 0)
    #expect(try second.taskq("run", timeout: 120).status == 0)
    let mine = try #require(try first.record("T-001").container)
    let theirs = try #require(try second.record("T-001").container)
    #expect(mine != theirs)
    let lookAlike = "notours-\(UUID().uuidString.prefix(8))"
    _ = try RealEngine.docker(
      "run", "-d", "--name", lookAlike, "--label", "git-taskq.managed=true", "--label", "git-taskq.task=T-001",
      "--label", "git-taskq.queue=\(first.path)/.git", RealEngine.image, "serve", "--port", "4096")
    defer { _ = try? RealEngine.docker("rm", "-f", lookAlike) }

    try first.taskq("cancel", "--id", "T-001")
    let cleanup = try first.taskq("cleanup", "--id", "T-001", "--force")
    #expect(cleanup.status == 0, "\(cleanup.summary)")
    #expect(!RealEngine.state(mine).exists)
    #expect(RealEngine.state(theirs) == (true, true), "the other repository's container was touched")
    #expect(RealEngine.state(lookAlike) == (true, true), "the look-alike was touched")

    // A new attempt in the second repository replaces only its own earlier container.
    try second.taskq("cancel", "--id", "T-001")
    let again = try second.taskq("cleanup")
    #expect(again.status == 0, "\(again.summary)")
    #expect(!RealEngine.state(theirs).exists)
    #expect(RealEngine.state(lookAlike) == (true, true))
    // `remove` of a task: its container goes with it, nothing else.
    try first.repository.addTask("T-002")
    #expect(try first.taskq("run", timeout: 120).status == 0)
    let removed = try #require(try first.record("T-002").container)
    let remove = try first.taskq("remove", "--id", "T-002")
    #expect(remove.stdoutText.contains("removed container \(removed)"), "\(remove.stdoutText)")
    #expect(!RealEngine.state(removed).exists)
    #expect(RealEngine.state(lookAlike) == (true, true))
  }

  @Test func anEngineThatIsDownIsRefusedUpFrontAndReportedByFsck() throws {
    let world = try RealEngine.world()
    try world.repository.addTask("RD-1")
    let down = ["DOCKER_HOST": "unix://\(world.path)/no-engine.sock"]
    let tip = try world.repository.queueTip()
    let run = try world.taskq("run", environment: down)
    #expect(run.status == 1)
    #expect(run.stderrText.hasPrefix("error: the container engine does not answer"), "\(run.stderrText)")
    #expect(run.stderrText.split(separator: "\n").count == 1, "\(run.stderrText)")
    #expect(try world.repository.queueTip() == tip, "something was claimed")
    let fsck = try world.taskq("fsck", environment: down)
    #expect(fsck.stdoutText.contains("the container engine does not answer"), "\(fsck.stdoutText)")
  }
}
