import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Stopping a `run`: `cancel` of a running task, Ctrl-C (SIGINT), and a worker killed outright whose tasks
/// the next `run` recovers.
@Suite struct RunStopTests {
  @Test func cancelWhileBuildingStopsTheAgentWithinSeconds() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let run = try world.start("run", environment: ["FAKE_OPENCODE_HANG": "execute-plan"])
    try world.waitForStatus("T-001", .building)
    try world.waitUntil("the agent to hang") { world.hangingAgent("T-001", "execute-plan") != nil }
    let hung = try #require(world.hangingAgent("T-001", "execute-plan"))

    let start = monotonicSeconds()
    try world.taskq("cancel", "--id", "T-001")
    let result = try run.wait(timeout: 20)
    #expect(monotonicSeconds() - start < 8, "the run took \(monotonicSeconds() - start) s to stop")
    // The user cancelled it: not a failure of the run.
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("cancelled (1): T-001"), "\(result.stdoutText)")
    let record = try world.record("T-001")
    #expect(record.status == .cancelled)
    #expect(record.errorFile == nil)
    try world.waitUntil("the agent and its child to be gone", timeout: 5) {
      !isProcessAlive(hung.agent) && !isProcessAlive(hung.child)
    }
    // The container is stopped (what was exec'd in it goes with it) and left for `cleanup`, like a failed
    // task's.
    let container = try #require(world.container(named: record.container ?? ""))
    #expect(container.isRunning == false)
  }

  @Test func cancelWhileWaitingForTheServerEndsTheRunWithinSeconds() throws {
    let world = try FakeWorld()
    try world.config("taskq.healthTimeout", "30")
    try world.repository.addTask("T-001")
    let run = try world.start("run", environment: ["FAKE_HEALTH": "never"])
    try world.waitUntil("the container to start") { try !world.dockerCalls("run").isEmpty }
    let start = monotonicSeconds()
    try world.taskq("cancel", "--id", "T-001")
    let result = try run.wait(timeout: 45)
    #expect(monotonicSeconds() - start < 8, "the run took \(monotonicSeconds() - start) s to stop")
    #expect(result.stdoutText.contains("cancelled (1): T-001"), "\(result.stdoutText)")
    let record = try world.record("T-001")
    #expect(record.status == .cancelled)
    #expect(record.errorFile == nil)
  }

  @Test func sigintWhileWaitingForTheServerFailsTheTaskAsInterrupted() throws {
    let world = try FakeWorld()
    try world.config("taskq.healthTimeout", "30")
    try world.repository.addTask("T-001")
    let run = try world.start("run", environment: ["FAKE_HEALTH": "never"])
    try world.waitUntil("the container to start") { try !world.dockerCalls("run").isEmpty }
    let start = monotonicSeconds()
    run.signal(SIGINT)
    let result = try run.wait(timeout: 45)
    #expect(monotonicSeconds() - start < 8, "the run took \(monotonicSeconds() - start) s to stop")
    #expect(result.status == 130, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError?.contains("interrupted") == true, "\(record.lastError ?? "")")
    #expect(try world.errorReport("T-001").contains("| stage | container |"))
  }

  /// Ctrl-C does not wait for a slow `docker run` (an image pull can take minutes).
  @Test func sigintStopsAContainerStartThatHangs() throws {
    let world = try FakeWorld()
    try world.config("taskq.setupTimeout", "30")
    try world.repository.addTask("T-001")
    let run = try world.start("run", environment: ["FAKE_DOCKER_RUN_HANG": "1"])
    try world.waitUntil("the container to be starting") { try !world.dockerCalls("run").isEmpty }
    let start = monotonicSeconds()
    run.signal(SIGINT)
    let result = try run.wait(timeout: 45)
    #expect(monotonicSeconds() - start < 8, "the run took \(monotonicSeconds() - start) s to stop")
    #expect(result.status == 130, "\(result.summary)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError?.contains("interrupted") == true, "\(record.lastError ?? "")")
  }

  /// A real engine runs an exec'd command inside the container, not in the `docker exec` client's process
  /// group: killing the client leaves the agent running (moby/moby#9098), so the container is stopped.
  @Test func aTimedOutAgentInsideARealContainerIsStopped() throws {
    let world = try FakeWorld()
    try world.config("taskq.planTimeout", "2")
    try world.repository.addTask("T-001")
    let result = try world.taskq(
      "run", environment: ["FAKE_OPENCODE_HANG": "make-plan", "FAKE_DOCKER_EXEC": "detached"])
    #expect(result.status == 1, "\(result.summary)")
    #expect(try world.record("T-001").lastError?.contains("timed out") == true)
    let hung = try #require(world.hangingAgent("T-001", "make-plan"))
    usleep(500_000)
    // Killing the `docker exec` client is not enough: git-taskq stops the container.
    #expect(!isProcessAlive(hung.agent) && !isProcessAlive(hung.child))
    #expect(try world.calls("docker").contains { $0.arguments.first == "stop" })
  }

  /// SIGTERM, as a service manager sends it, is handled as Ctrl-C is.
  @Test(arguments: [SIGINT, SIGTERM])
  func aSignalFailsInFlightTasksAsInterruptedAndExits130(_ signal: Int32) throws {
    let world = try FakeWorld()
    for id in ["T-001", "T-002", "T-003"] { try world.repository.addTask(id) }
    let run = try world.start(
      "run", "--max-parallel", "2", environment: ["FAKE_OPENCODE_HANG": "make-plan:T-001,execute-plan:T-002"])
    try world.waitUntil("both agents to hang") {
      world.hangingAgent("T-001", "make-plan") != nil && world.hangingAgent("T-002", "execute-plan") != nil
    }
    let hung = [world.hangingAgent("T-001", "make-plan"), world.hangingAgent("T-002", "execute-plan")].compactMap {
      $0
    }

    run.signal(signal)
    let result = try run.wait(timeout: 20)
    #expect(result.status == 130, "\(result.summary)")
    #expect(result.stdoutText.contains("interrupted (2):"), "\(result.stdoutText)")
    for id in ["T-001", "T-002"] {
      let record = try world.record(id)
      #expect(record.status == .failed, "\(id)")
      #expect(record.lastError?.contains("interrupted") == true, "\(id): \(record.lastError ?? "")")
      let report = try world.errorReport(id)
      #expect(report.contains("interrupted"), "\(report)")
      #expect(report.contains("`retry` brings the task back"))
      #expect(try world.history(task: id).last?.operation.kind == "interrupt")
    }
    #expect(try world.record("T-002").sessionID == "ses_fake_T-002")
    // It stopped claiming: the third task was never started.
    #expect(try world.record("T-003").status == .todo)
    for process in hung {
      try world.waitUntil("the agents to be gone", timeout: 5) {
        !isProcessAlive(process.agent) && !isProcessAlive(process.child)
      }
    }
    // `retry` brings an interrupted task back, and a new run finishes it.
    try world.taskq("retry", "--id", "T-001")
    let again = try world.taskq("run", "--id", "T-001")
    #expect(again.status == 0, "\(again.summary)")
    #expect(try world.record("T-001").status == .review)
  }

  /// One Ctrl-C often arrives twice within milliseconds (the terminal's process group, and git forwarding
  /// it): that is one interrupt, stopped gracefully, never the "second Ctrl-C" that exits at once.
  @Test func twoSignalsWithinASecondAreOneInterrupt() throws {
    let world = try FakeWorld()
    for id in ["T-001", "T-002"] { try world.repository.addTask(id) }
    let run = try world.start("run", "--max-parallel", "2", environment: ["FAKE_OPENCODE_HANG": "make-plan"])
    try world.waitUntil("both agents to hang") {
      world.hangingAgent("T-001", "make-plan") != nil && world.hangingAgent("T-002", "make-plan") != nil
    }
    run.signal(SIGINT)
    usleep(30_000)
    run.signal(SIGINT)
    let result = try run.wait(timeout: 20)
    #expect(result.status == 130, "\(result.summary)")
    #expect(result.stdoutText.contains("interrupted (2):"), "\(result.stdoutText)")
    for id in ["T-001", "T-002"] { #expect(try world.record(id).status == .failed, "\(id)") }
  }

  /// SIGINT to the process group of `git taskq run` (git and git-taskq), as a terminal sends it.
  @Test func aProcessGroupSigintThroughGitIsOneInterrupt() throws {
    let world = try FakeWorld()
    for id in ["T-001", "T-002"] { try world.repository.addTask(id) }
    let spec = ProcessSpec(
      "git", ["taskq", "run", "--max-parallel", "2"],
      environment: world.runEnvironment(["FAKE_OPENCODE_HANG": "make-plan"]), inheritEnvironment: false,
      directory: world.path, timeout: 60)
    let box = ResultBox()
    // ProcessRunner starts git in a process group of its own, which git-taskq joins: the group is found
    // from the worker's pid.
    let thread = Thread { box.set(Result { try ProcessRunner.run(spec) }) }
    thread.start()
    try world.waitUntil("both agents to hang") {
      world.hangingAgent("T-001", "make-plan") != nil && world.hangingAgent("T-002", "make-plan") != nil
    }
    let owner = try #require(try world.record("T-001").worker)
    let worker = try #require(WorkerProcess(owner))
    let group = getpgid(worker.pid)
    #expect(group > 1 && group != getpgrp())
    kill(-group, SIGINT)
    let result = try box.wait(timeout: 30)
    #expect(result.status == 130 || result.ending == .signalled(SIGINT), "\(result.summary)")
    for id in ["T-001", "T-002"] {
      let record = try world.record(id)
      #expect(record.status == .failed, "\(id): \(record.status)")
      #expect(record.lastError?.contains("interrupted") == true)
    }
  }

  @Test func aSecondSigintExitsAtOnce() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    // An agent that ignores SIGTERM makes the graceful stop wait for the kill grace period.
    let run = try world.start(
      "run", environment: ["FAKE_OPENCODE_HANG": "make-plan", "FAKE_OPENCODE_IGNORE_TERM": "1"])
    try world.waitUntil("the agent to hang") { world.hangingAgent("T-001", "make-plan") != nil }
    // An agent that ignores SIGTERM keeps the graceful stop waiting for the 2 s kill grace: a second
    // Ctrl-C a second after the first (the rule: at least Interrupts.repeatInterval later) exits at once.
    run.signal(SIGINT)
    usleep(1_100_000)
    let start = monotonicSeconds()
    run.signal(SIGINT)
    let result = try run.wait(timeout: 20)
    #expect(monotonicSeconds() - start < 0.8, "the second Ctrl-C took \(monotonicSeconds() - start) s")
    #expect(result.status == 130, "\(result.summary)")
    // Nothing was recorded on the way out, but the agent did not outlive its worker: its guard stopped it.
    #expect(try world.record("T-001").status == .planning)
    let hung = try #require(world.hangingAgent("T-001", "make-plan"))
    try world.waitUntil("the agent to be gone", timeout: 5) {
      !isProcessAlive(hung.agent) && !isProcessAlive(hung.child)
    }
    let next = try world.taskq("run")
    #expect(next.status == 0, "\(next.summary)")
    #expect(try world.record("T-001").lastError?.hasPrefix("worker lost") == true)
  }

  @Test func aKilledWorkersTaskIsFailedAsWorkerLostByTheNextRun() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let run = try world.start("run", environment: ["FAKE_OPENCODE_HANG": "make-plan"])
    try world.waitUntil("the agent to hang") { world.hangingAgent("T-001", "make-plan") != nil }
    let hung = try #require(world.hangingAgent("T-001", "make-plan"))
    let owner = try #require(try world.record("T-001").worker)
    #expect(owner.hasPrefix("\(FakeWorld.hostName):\(run.pid)@"))

    // SIGKILL: no handler runs, the task stays `planning` under a dead worker. The agent does not outlive
    // it: its guard sees the worker gone and stops it (and the container, for a container task).
    let killedAt = monotonicSeconds()
    run.signal(SIGKILL)
    let killed = try run.wait(timeout: 20)
    #expect(killed.ending == .signalled(SIGKILL))
    try world.waitUntil("the orphans to be gone", timeout: 5) {
      !isProcessAlive(hung.agent) && !isProcessAlive(hung.child)
    }
    print("measured: kill -9 of run to its agent gone: \(String(format: "%.2f", monotonicSeconds() - killedAt)) s")
    #expect(try world.record("T-001").status == .planning)
    let stale = try #require(try world.record("T-001").container)

    let next = try world.taskq("run")
    #expect(next.status == 0, "\(next.summary)")
    #expect(next.stdoutText.contains("T-001: planning → failed"), "\(next.stdoutText)")
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.lastError == "worker lost (\(owner))")
    #expect(record.worker == nil)
    let report = try world.errorReport("T-001")
    #expect(report.contains("worker lost"))
    #expect(report.contains("Worker \(owner) no longer exists on this host"))
    #expect(report.contains("git taskq retry --id T-001 && git taskq run --id T-001"))

    // The lost worker's container was removed with it.
    #expect(record.container == nil)
    #expect(world.container(named: stale) == nil)
    #expect(try world.dockerCalls("rm").map(\.arguments).contains(["rm", "-f", stale]))
    // As the report says: retry, then run, which reuses the task's own worktree.
    try world.taskq("retry", "--id", "T-001")
    let again = try world.taskq("run", "--id", "T-001")
    #expect(again.status == 0, "\(again.summary)")
    let done = try world.record("T-001")
    #expect(done.status == .review)
    #expect(done.attempt == 1)
    #expect(world.container(named: done.container ?? "")?.isRunning == true)
    #expect(try world.repository.git("rev-list", "--count", "main..task/T-001") == "1")
  }

  /// A pid that now belongs to another process (same pid, other start time) does not keep a dead worker's
  /// task: `recover` fails it at once, and stops an agent of the task still running in its worktree
  /// (one started without the guard, by an older version or by hand).
  @Test func recoverFailsAReusedPidsTaskAndStopsItsLeftoverAgent() throws {
    let world = try FakeWorld()
    try world.config("taskq.runtime", "local")
    try world.repository.addTask("T-001")
    let start = try #require(WorkerProcess.startTime(of: getpid()))
    // This test process is alive, but was not the worker: the start time differs.
    let dead = "\(FakeWorld.hostName):\(getpid())@\(start + 7)"
    let holder = try world.repository.store(worker: dead)
    _ = try holder.claimNext(only: "T-001")
    let worktree = world.worktree("T-001")
    try FileManager.default.createDirectory(atPath: worktree, withIntermediateDirectories: true)
    _ = try holder.advance("T-001", kind: "setup", detail: "worktree ready") { $0.worktreePath = worktree }
    let leftover = try world.start(
      "__guard", "--", "/bin/sleep", "60", environment: ["TASKQ_TASK_ID": "T-001", "TASKQ_WORKTREE": worktree])
    try world.waitUntil("the leftover agent to run") {
      AgentProcesses.running(taskID: "T-001", worktree: worktree).count > 0
    }

    let fsck = try world.taskq("fsck")
    #expect(fsck.stdoutText.contains("its worker \(dead) no longer runs on this host"), "\(fsck.stdoutText)")
    let recover = try world.taskq("recover")
    #expect(recover.stdoutText.contains("recovered 1 task(s): T-001"), "\(recover.summary)")
    #expect(recover.stdoutText.contains("stopped the agent left running"), "\(recover.stdoutText)")
    #expect(try world.record("T-001").lastError == "worker lost (\(dead))")
    #expect(AgentProcesses.running(taskID: "T-001", worktree: worktree).isEmpty)
    _ = try leftover.wait(timeout: 10)
  }

  /// Never two agents in one worktree: a new attempt refuses while an agent of an earlier one still runs
  /// there.
  @Test func aNewAttemptRefusesWhileAnEarlierAgentRunsInTheWorktree() throws {
    let world = try FakeWorld()
    try world.config("taskq.runtime", "local")
    try world.repository.addTask("T-001")
    #expect(try world.taskq("run", environment: ["FAKE_OPENCODE_FAIL": "make-plan"]).status == 1)
    let worktree = try #require(try world.record("T-001").worktreePath)
    let stray = try world.start(
      "__guard", "--", "/bin/sleep", "60", environment: ["TASKQ_TASK_ID": "T-001", "TASKQ_WORKTREE": worktree])
    defer { stray.killNow() }
    try world.waitUntil("the stray agent to run") {
      AgentProcesses.running(taskID: "T-001", worktree: worktree).count > 0
    }
    try world.taskq("retry", "--id", "T-001")
    let run = try world.taskq("run")
    #expect(run.status == 1)
    let record = try world.record("T-001")
    #expect(
      record.lastError?.hasPrefix("an agent of an earlier attempt still runs in '\(worktree)'") == true,
      "\(record.lastError ?? "")")
    #expect(try world.calls("opencode").count == 1, "a second agent was started")
  }

  /// A worker killed while `docker run` works: the engine client does not live on (its guard stops it and
  /// removes the container it may have made), and the next run removes nothing but the task's own.
  @Test func aKilledWorkersDockerRunDoesNotLiveOn() throws {
    let world = try FakeWorld()
    try world.config("taskq.setupTimeout", "60")
    try world.repository.addTask("T-001")
    let run = try world.start("run", environment: ["FAKE_DOCKER_RUN_HANG": "1"])
    let pidFile = world.state + "/docker-run-hang.pid"
    // The fake writes its pid after creating the file: wait for the number, not for the file.
    func writtenPid() -> Int32? {
      (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap {
        Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
      }
    }
    try world.waitUntil("docker run to hang") { writtenPid() != nil }
    let client = try #require(writtenPid())
    run.signal(SIGKILL)
    _ = try run.wait(timeout: 20)
    try world.waitUntil("the docker run client to be gone", timeout: 5) { !isProcessAlive(client) }
    let name = try #require(try world.record("T-001").container)
    try world.waitUntil("the guard to remove the container", timeout: 5) {
      try world.dockerCalls("rm").map(\.arguments).contains(["rm", "-f", name])
    }
  }

  @Test func aLiveWorkersTaskIsNotRecovered() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    try world.repository.addTask("T-002")
    // T-001 is held by this test process: alive, on this host.
    let holder = try world.repository.store(worker: "\(FakeWorld.hostName):\(getpid())")
    _ = try holder.claimNext(only: "T-001")
    let result = try world.taskq("run")
    #expect(result.status == 0, "\(result.summary)")
    #expect(try world.record("T-001").status == .planning)
    #expect(try world.record("T-002").status == .review)
  }
}

/// `git taskq run` in a real terminal (a tmux pane), where Ctrl-C reaches `git-taskq` twice: from the
/// terminal (SIGINT to the whole foreground process group) and from `git`, which forwards it to its child.
@Suite(.serialized, .enabled(if: TmuxTerminal.program != nil, "tmux is not installed: the terminal tests are skipped"))
struct RunTerminalInterruptTests {
  /// A pane running `argv` under a shell that survives Ctrl-C (a trap) and prints the exit status.
  final class Pane {
    let scratch: ScratchDirectory
    var socket: String { scratch.path + "/tmux.sock" }

    init(_ argv: [String], in directory: String, environment: [String: String]) throws {
      scratch = try ScratchDirectory(prefix: "taskq-pty")
      let env = environment.map { "\($0.key)=\($0.value)" }.sorted()
      // The shell around the command is the session leader: if it died of the Ctrl-C, the terminal would
      // hang up on the command. `trap : INT` keeps it (a caught signal is reset in the command it starts).
      let shell = ["sh", "-c", "trap : INT; \"$@\"; printf '\\n[exit %d]\\n' $?; exec sleep 3600", "sh"]
      try tmux(
        ["new-session", "-d", "-s", "run", "-x", "150", "-y", "40", "-c", directory, "env", "-i"] + env + shell + argv)
    }

    deinit { _ = try? tmux(["kill-server"]) }

    @discardableResult
    func tmux(_ arguments: [String]) throws -> String {
      guard let program = TmuxTerminal.program else { throw TestFailure("tmux is not installed") }
      let result = try ProcessRunner.run(
        ProcessSpec(program, ["-S", socket, "-f", "/dev/null"] + arguments, environment: ["TMUX": ""], timeout: 30))
      guard result.succeeded else { throw TestFailure("tmux \(arguments.joined(separator: " ")): \(result.summary)") }
      return result.stdoutText
    }

    func screen() throws -> String { try tmux(["capture-pane", "-p", "-t", "run", "-S", "-"]) }

    /// The exit status the shell printed, once it did.
    func exitStatus() throws -> Int? {
      try screen().components(separatedBy: "\n").last { $0.hasPrefix("[exit ") }
        .flatMap { Int($0.dropFirst("[exit ".count).dropLast()) }
    }
  }

  /// One Ctrl-C stops everything: every in-flight task failed "interrupted", every agent gone, exit 130.
  @Test func oneCtrlCThroughGitStopsEveryTaskAndExits130() throws {
    let world = try FakeWorld()
    try world.config("taskq.runtime", "local")
    let ids = ["T-001", "T-002", "T-003"]
    for id in ids { try world.repository.addTask(id) }
    let pane = try Pane(
      ["git", "taskq", "run", "--max-parallel", "3"], in: world.path,
      environment: world.runEnvironment(["FAKE_OPENCODE_HANG": "make-plan", "TERM": "xterm"]))
    try world.waitUntil("three agents to hang", timeout: 60) {
      ids.allSatisfy { world.hangingAgent($0, "make-plan") != nil }
    }
    let agents = ids.compactMap { world.hangingAgent($0, "make-plan") }
    let start = monotonicSeconds()
    try pane.tmux(["send-keys", "-t", "run", "C-c"])
    var status: Int?
    while status == nil && monotonicSeconds() - start < 30 {
      status = try pane.exitStatus()
      if status == nil { usleep(20_000) }
    }
    let elapsed = monotonicSeconds() - start
    print("measured: Ctrl-C to exit with 3 tasks in flight: \(String(format: "%.2f", elapsed)) s")
    let screen = try pane.screen()
    #expect(status == 130, "\(screen)")
    #expect(elapsed < 6, "Ctrl-C took \(elapsed) s")
    for id in ids {
      let record = try world.record(id)
      #expect(record.status == .failed, "\(id): \(record.status)")
      #expect(record.lastError?.contains("interrupted") == true, "\(id): \(record.lastError ?? "")")
    }
    for agent in agents {
      #expect(!isProcessAlive(agent.agent) && !isProcessAlive(agent.child), "an agent outlived the run")
    }
    #expect(screen.contains("interrupted (3):"), "\(screen)")
  }
}

/// The guard every agent runs under (`git-taskq __guard -- PROGRAM ARGS…`): transparent while its worker
/// lives, deadly to the agent once the worker is gone.
@Suite struct AgentGuardTests {
  @Test func itPassesOutputInputAndExitStatusThrough() throws {
    let result = try ProcessRunner.run(
      ProcessSpec(
        Taskq.binary, ["__guard", "--", "/bin/sh", "-c", "cat; echo out; echo err >&2; exit 7"],
        input: Array("in\n".utf8), timeout: 20))
    #expect(result.ending == .exited(7))
    #expect(result.stdoutText == "in\nout\n")
    #expect(result.stderrText == "err\n")
  }

  @Test func anAgentKilledByASignalEndsTheGuardTheSameWay() throws {
    let result = try ProcessRunner.run(
      ProcessSpec(Taskq.binary, ["__guard", "--", "/bin/sh", "-c", "kill -USR1 $$"], timeout: 20))
    #expect(result.ending == .signalled(SIGUSR1))
  }

  /// The worker (here a shell) is killed: the guard stops the agent and everything it started.
  @Test func anAgentDoesNotOutliveItsWorker() throws {
    let scratch = try ScratchDirectory()
    let pids = scratch.path + "/pids"
    // The "worker" starts the guarded agent in the background, in a session of its own (so that the kill
    // of the worker's process group below cannot reach it), and waits.
    let worker = try ProcessRunner.run(
      ProcessSpec(
        "/bin/sh",
        [
          "-c",
          "setsid \"$1\" __guard -- /bin/sh -c 'sleep 300 & echo $$ $! > \"$0\"; wait' \"$2\" & sleep 60", "sh",
          Taskq.binary, pids,
        ], timeout: 1), grace: 0)
    #expect(worker.ending == .timedOut)
    let text = try String(contentsOfFile: pids, encoding: .utf8).split(separator: " ").compactMap {
      Int32($0.trimmingCharacters(in: .whitespacesAndNewlines))
    }
    #expect(text.count == 2)
    let start = monotonicSeconds()
    while text.contains(where: isProcessAlive) && monotonicSeconds() - start < 5 { usleep(20_000) }
    #expect(!text.contains(where: isProcessAlive), "the agent outlived its worker")
  }
}

/// The result of a process run on another thread.
final class ResultBox: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Result<ProcessResult, any Error>?
  private let done = DispatchSemaphore(value: 0)

  func set(_ result: Result<ProcessResult, any Error>) {
    lock.withLock { value = result }
    done.signal()
  }

  func wait(timeout: Double) throws -> ProcessResult {
    guard done.wait(timeout: .now() + timeout) == .success, let value = lock.withLock({ value }) else {
      throw TestFailure("the process did not end within \(timeout) s")
    }
    return try value.get()
  }
}
