import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Red team (round 4): attacks on the claims made ahead by `run --remote` and on `status --json`/`--all`
/// written from the snapshot cache's bytes. Each test failed on the code it was written against (the symptom
/// is in its doc comment).
@Suite struct RedTeamClaimAheadTests {
  // The world, the local runtime and the tasks: as ClaimAheadTests makes them.
  let base = ClaimAheadTests()

  /// Fairness across machines of different sizes: a `run --max-parallel 4` is one worker name, and
  /// ``TaskRunner/claimAhead(store:slots:)`` counts each other worker *name* holding an active task as one
  /// worker seen, so a machine running 4 tasks counts as 1. With B running 4 long tasks and A (1 worker)
  /// finishing a quick first task, 6 tasks are claimable after A's second claim for 5 busy workers, a
  /// shallow queue by the rule of docs/sharing.md (fewer than twice the workers seen): A still claims 2
  /// ahead (threshold 2 × (1 + 1) = 4), so 3 tasks are `planning` under A's one worker and wait for it
  /// (up to 2 × 120 s here) while B's 4 workers, once free, find 4 tasks and then nothing.
  ///
  /// Symptom (seen): `Expectation failed: (underA.count → 3) == 1`, "A holds ["T-05", "T-07", "T-09"], 4
  /// claimable left for B's 4 workers".
  /// By hand: B `run --remote origin --max-parallel 4` with agents sleeping 120 s on 4 of 12 tasks; then
  /// A `run --remote origin --max-parallel 1` (first task quick); `git taskq status` on the remote shows
  /// three planning tasks under A's worker.
  @Test
  func aBigMachineCountsAsOneWorkerSoASmallOneHoards() throws {
    let (shared, daemon, machines) = try base.world(["A", "B"])
    defer { daemon.stop() }
    let (a, b) = (machines[0], machines[1])
    try base.useLocalRuntime(
      a, agent: try base.loggingAgent(shared, log: a.root + "/agent.log", seconds: 120, quick: 2))
    try base.useLocalRuntime(
      b, agent: try base.loggingAgent(shared, log: b.root + "/agent.log", seconds: 120, quick: 0))
    let tasks = (1...12).map { String(format: "T-%02d", $0) }
    try base.addTasks(tasks, on: a, shared)
    let bigRun = try b.start("run", "--remote", "origin", "--max-parallel", "4", timeout: 200)
    defer { bigRun.killNow() }
    try waitUntil("B's four tasks to start", timeout: 60) {
      try shared.records().filter { $0.status.isActive }.count == 4
    }
    let bWorker = try #require(try shared.records().first { $0.status.isActive }?.worker)
    let smallRun = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 200)
    defer { smallRun.killNow() }
    let aLog = a.root + "/agent.log"
    try waitUntil("A's second task's agent to start", timeout: 60) { FileManager.default.fileExists(atPath: aLog) }
    usleep(2_000_000)
    let records = try shared.records()
    let underA = records.filter { $0.status.isActive && $0.worker != bWorker }
    let claimable = records.filter { $0.status == .todo }.count
    // 5 workers busy (4 of B, 1 of A) and fewer than 2 × 5 claimable tasks: nothing should be held ahead.
    #expect(underA.count == 1, "A holds \(underA.map(\.id)), \(claimable) claimable left for B's 4 workers")
    smallRun.signal(SIGTERM)
    bigRun.signal(SIGTERM)
    _ = try? smallRun.wait(timeout: 60)
    _ = try? bigRun.wait(timeout: 60)
  }

  /// SIGTERM while the remote is unreachable: the tasks claimed ahead are given back on the local queue
  /// only. Once the leases expire, another machine's `run --remote` recovers them as "worker lost"
  /// (`failed`), although no worker ever started them; this clone's later `sync` replays its give-backs
  /// over that recovery (a give-back ends the attempt as a finished step does), so they are `todo` again.
  ///
  /// Symptom (seen before the fix): "T-2 was never started and is now failed" (B's run: "T-2: lease
  /// expired: worker lost"), the same for the other task held; A's `sync` afterwards did not undo it.
  /// By hand: A `run --remote origin --max-parallel 1` (lease 4 s) with 6 tasks, first task quick, the
  /// others sleep 120 s; once 3 are planning on the remote, stop the git daemon, `kill -TERM` A, start
  /// the daemon again, wait 5 s, B `run --remote origin`, then A `sync`.
  @Test func aGiveBackThatCannotBePushedEndsAsWorkerLost() throws {
    let (shared, daemon, machines) = try base.world(["A", "B"])
    defer { daemon.stop() }
    let (a, b) = (machines[0], machines[1])
    let log = a.root + "/agent.log"
    try base.useLocalRuntime(a, agent: try base.loggingAgent(shared, log: log, seconds: 120, quick: 2))
    try base.useLocalRuntime(b, agent: "/bin/true")
    try a.git("config", "taskq.lease", "4")
    let tasks = (1...6).map { "T-\($0)" }
    try base.addTasks(tasks, on: a, shared)
    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    defer { run.killNow() }
    try waitUntil("A's agent to start", timeout: 30) { FileManager.default.fileExists(atPath: log) }
    try waitUntil("the claims to reach the remote", timeout: 30) {
      try shared.records().filter { $0.status == .planning }.count == 3
    }
    let started = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let held = try shared.records().filter { $0.status == .planning && !started.contains("/worktrees/\($0.id)\n") }
      .map(\.id)
    #expect(held.count == 2, "\(held)")
    daemon.stop()
    let began = monotonicSeconds()
    run.signal(SIGTERM)
    let result = try run.wait(timeout: 90)
    let exitSeconds = monotonicSeconds() - began
    #expect(result.status == 130, "\(result.summary)")
    #expect(exitSeconds < 20, "SIGTERM took \(exitSeconds) s with the remote down")
    try daemon.start()
    usleep(5_000_000)
    try b.taskqOK("sync")
    let other = try b.taskq("run", "--remote", "origin", timeout: 120)
    _ = try a.taskq("sync")
    let records = try shared.records()
    for id in held {
      let status = records.first { $0.id == id }?.status
      #expect(
        status == .todo || status == .review,
        "\(id) was never started and is now \(String(describing: status)): \(other.summary)")
    }
    #expect(try shared.forcedUpdates() == [])
  }

  /// Priority crossed by claims ahead: tasks held for a worker are started before a higher-priority task
  /// added meanwhile (docs/sharing.md: "Priority is never crossed"). A holds two priority-0 tasks ahead
  /// while its one worker runs a third; B adds `URGENT` with priority 10; when A's worker frees, it takes
  /// a held priority-0 task from the desk, not `URGENT`, which waits behind every held task.
  ///
  /// Symptom (seen): `held ["T-4", "T-8"] started before URGENT: ["T-3", "T-3", "T-4", "T-4", "T-8", "T-8",
  /// "URGENT"]` (without claims ahead, the round after T-3 fetches and claims URGENT first).
  /// By hand: A `run --remote origin --max-parallel 1` on 8 tasks (first quick, then 2 s per agent run);
  /// once 3 are planning on the remote, B `add --id URGENT --priority 10 ...` and `sync`; the order of
  /// `worktree ready` commits on the remote puts URGENT after the two held tasks.
  @Test
  func heldTasksDoNotCrossAHigherPriorityAddedMeanwhile() throws {
    let (shared, daemon, machines) = try base.world(["A", "B"])
    defer { daemon.stop() }
    let (a, b) = (machines[0], machines[1])
    let log = a.root + "/agent.log"
    // Agent runs of 5 s: A's publisher fetches every 2 s while a task runs, so A has seen URGENT well before
    // its worker is free (a task added elsewhere less than a poll before can still be crossed).
    try base.useLocalRuntime(a, agent: try base.loggingAgent(shared, log: log, seconds: 5, quick: 2))
    let tasks = (1...8).map { "T-\($0)" }
    try base.addTasks(tasks, on: a, shared)
    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 200)
    defer { run.killNow() }
    try waitUntil("A's agent to start", timeout: 30) { FileManager.default.fileExists(atPath: log) }
    try waitUntil("the claims to reach the remote", timeout: 30) {
      try shared.records().filter { $0.status == .planning }.count == 3
    }
    let started = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let held = try shared.records().filter { $0.status == .planning && !started.contains("/worktrees/\($0.id)\n") }
      .map(\.id)
    try b.taskqOK("sync")
    try b.taskqOK(
      "add", "--id", "URGENT", "--priority", "10", "--repo", shared.target, "--worktree-path",
      shared.scratch.path + "/worktrees/URGENT", "--task", "Urgent")
    try b.taskqOK("sync")
    try waitUntil("URGENT to start", timeout: 90) {
      ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("/worktrees/URGENT\n")
    }
    let order = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n")
      .map { String($0.split(separator: "/").last ?? "") }
    let urgent = order.firstIndex(of: "URGENT") ?? order.count
    let heldBefore = held.filter { id in (order.firstIndex(of: id) ?? order.count) < urgent }
    #expect(heldBefore.isEmpty, "held \(held) started before URGENT: \(order)")
    run.signal(SIGTERM)
    _ = try? run.wait(timeout: 60)
  }

  /// A second Ctrl-C/SIGTERM (1 s or more after the first: "exits at once") while the running task is
  /// still being stopped: the tasks claimed ahead are given back only after every worker has finished
  /// (``TaskRunner/run()``'s `defer`, after the threads join), and the running agent's stop takes its grace
  /// (2 s locally, `docker stop` with containers), so the common "Ctrl-C, then Ctrl-C again" leaves them
  /// `planning` under a dead worker, to be failed as "worker lost" when the lease (600 s by default)
  /// expires, though they never started. Nothing forces the give-back to wait for the workers.
  ///
  /// Symptom (seen): exit 130 after the second SIGTERM, and "T-1 is planning in A's queue" (same for the
  /// other held task, and on the remote after `sync`): never given back.
  /// By hand: A `run --remote origin --max-parallel 1` on 6 tasks (first quick, then an agent that ignores
  /// SIGTERM); once 3 are planning on the remote, `kill -TERM` A, wait 1.3 s, `kill -TERM` A again; `git
  /// taskq status` in A.
  @Test
  func aSecondInterruptDuringTheAgentsStopLosesTheHeldTasks() throws {
    let (shared, daemon, machines) = try base.world(["A"])
    defer { daemon.stop() }
    let a = machines[0]
    let log = a.root + "/agent.log"
    let count = log + ".count"
    let stubborn = try shared.scratch.write(
      "agent-stubborn",
      """
      #!/bin/sh
      n=$(cat '\(count)' 2>/dev/null || echo 0)
      n=$((n + 1))
      echo $n > '\(count)'
      [ $n -le 2 ] && exit 0
      trap '' TERM INT
      pwd >> '\(log)'
      i=0
      while [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done

      """, executable: true)
    try base.useLocalRuntime(a, agent: stubborn)
    let tasks = (1...6).map { "T-\($0)" }
    try base.addTasks(tasks, on: a, shared)
    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    defer { run.killNow() }
    try waitUntil("A's agent to start", timeout: 30) { FileManager.default.fileExists(atPath: log) }
    try waitUntil("the claims to reach the remote", timeout: 30) {
      try shared.records().filter { $0.status == .planning }.count == 3
    }
    let started = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let held = try shared.records().filter { $0.status == .planning && !started.contains("/worktrees/\($0.id)\n") }
      .map(\.id)
    #expect(held.count == 2, "\(held)")
    run.signal(SIGTERM)
    usleep(1_300_000)
    run.signal(SIGTERM)
    let result = try run.wait(timeout: 60)
    #expect(result.status == 130, "\(result.summary)")
    let local = try a.records()
    for id in held {
      #expect(
        local.first { $0.id == id }?.status == .todo,
        "\(id) is \(String(describing: local.first { $0.id == id }?.status)) in A's queue: \(result.summary)")
    }
    _ = try? a.taskq("sync")
    let remote = try shared.records()
    for id in held {
      #expect(remote.first { $0.id == id }?.status == .todo, "\(id) on the remote")
    }
  }
}
