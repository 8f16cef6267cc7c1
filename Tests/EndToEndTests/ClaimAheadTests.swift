import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Claims made ahead by `run --remote` (a worker's claim round takes more tasks than it has free workers
/// when the queue is deep), through the real binary and a real `git daemon`: a task that waits for a worker
/// keeps its lease, is given back when the run is stopped, is never started once cancelled elsewhere, and a
/// shallow queue is not hoarded.
@Suite struct ClaimAheadTests {
  /// A shared remote served by a git daemon, and machines whose `origin` is that daemon.
  func world(_ names: [String]) throws -> (SharedRemote, GitDaemon, [Machine]) {
    let shared = try SharedRemote()
    let daemon = try GitDaemon(basePath: shared.scratch.path)
    let url = daemon.url(String(shared.bare.dropFirst(shared.scratch.path.count + 1)))
    let machines = try names.map { try shared.machine($0) }
    for machine in machines { try machine.git("remote", "set-url", "origin", url) }
    return (shared, daemon, machines)
  }

  func useLocalRuntime(_ machine: Machine, agent: String) throws {
    try machine.git("config", "taskq.runtime", "local")
    try machine.git("config", "taskq.agentProgram", agent)
    try machine.git("config", "taskq.worktreesRoot", machine.root + "/worktrees")
  }

  func addTasks(_ ids: [String], on machine: Machine, _ shared: SharedRemote) throws {
    for id in ids {
      try machine.taskqOK(
        "add", "--id", id, "--repo", shared.target, "--worktree-path", shared.scratch.path + "/worktrees/" + id,
        "--task", "Task \(id)")
    }
    try machine.taskqOK("sync")
  }

  /// An agent that appends its working directory (the task's worktree, named after the task) to `log`, then
  /// sleeps `seconds`, except for the first `quick` agent runs, which exit at once (by default the first
  /// task's two agents: one worker runs them one after another, and a run's first claim round never claims
  /// ahead, its second one may).
  func loggingAgent(_ shared: SharedRemote, log: String, seconds: Double, quick: Int = 2) throws -> String {
    let count = log + ".count"
    return try shared.scratch.write(
      "agent-\(UUID().uuidString)",
      """
      #!/bin/sh
      n=$(cat '\(count)' 2>/dev/null || echo 0)
      n=$((n + 1))
      echo $n > '\(count)'
      [ $n -le \(quick) ] && exit 0
      pwd >> '\(log)'
      exec sleep \(seconds)

      """, executable: true)
  }

  /// The remote's tasks that are `planning` under some worker of machine `name`'s run.
  func planning(_ shared: SharedRemote) throws -> [TaskRecord] {
    try shared.records().filter { $0.status == .planning }
  }

  /// A task claimed ahead waits longer than a third of its lease for the task before it: its lease is
  /// renewed (and pushed) while it waits, before its worktree is made, so no other machine could recover it
  /// as lost; every task still reaches review once.
  @Test func aTaskWaitingForAWorkerHasItsLeaseRenewed() throws {
    let (shared, daemon, machines) = try world(["A"])
    defer { daemon.stop() }
    let a = machines[0]
    let log = a.root + "/agent.log"
    try useLocalRuntime(a, agent: try loggingAgent(shared, log: log, seconds: 2))
    try a.git("config", "taskq.lease", "4")
    let tasks = ["T-1", "T-2", "T-3", "T-4", "T-5"]
    try addTasks(tasks, on: a, shared)
    let run = try a.taskq("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    #expect(run.status == 0, "\(run.summary)")

    let subjects = try shared.subjects()
    // One worker and five tasks: the second round claims one for the worker and one ahead (two claimable
    // are left, twice the one worker seen).
    var renewedWhileWaiting: [String] = []
    for id in tasks {
      #expect(subjects.filter { $0 == "\(id): todo → planning" }.count == 1, "\(id): \(subjects)")
      #expect(subjects.filter { $0.hasPrefix("\(id): ") && $0.hasSuffix("→ review (ready for review)") }.count == 1)
      guard let claim = subjects.firstIndex(of: "\(id): todo → planning"),
        let ready = subjects.firstIndex(of: "\(id): worktree ready (planning)")
      else { continue }
      if subjects[claim..<ready].contains("\(id): lease renewed (planning)") { renewedWhileWaiting.append(id) }
    }
    #expect(!renewedWhileWaiting.isEmpty, "no task's lease was renewed before it started: \(subjects)")
    #expect(!subjects.contains { $0.contains("worker lost") })
    #expect(try shared.records().allSatisfy { $0.status == .review && $0.worker == nil })
    #expect(try shared.forcedUpdates() == [])
  }

  /// SIGTERM stops the run: the running task fails as interrupted, and the tasks claimed ahead are given
  /// back (`planning → todo`, "claimed ahead, not started") and published, so another machine can run them.
  @Test func sigtermGivesBackTheTasksClaimedAhead() throws {
    let (shared, daemon, machines) = try world(["A", "B"])
    defer { daemon.stop() }
    let (a, b) = (machines[0], machines[1])
    let log = a.root + "/agent.log"
    try useLocalRuntime(a, agent: try loggingAgent(shared, log: log, seconds: 120))
    let tasks = (1...6).map { "T-\($0)" }
    try addTasks(tasks, on: a, shared)
    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    defer { run.killNow() }
    try waitUntil("A's agent to start", timeout: 30) { FileManager.default.fileExists(atPath: log) }
    // After the first (quick) task, one running and two ahead: four claimable after the second round's
    // first claim, minus twice the one worker seen, at most two ahead per worker.
    try waitUntil("the claims to reach the remote", timeout: 30) { try planning(shared).count == 3 }
    run.signal(SIGTERM)
    let result = try run.wait(timeout: 60)
    #expect(result.status == 130, "\(result.summary)")

    let subjects = try shared.subjects()
    let givenBack = tasks.filter { subjects.contains("\($0): planning → todo (claimed ahead, not started)") }
    #expect(givenBack.count == 2, "\(subjects)")
    let records = try shared.records()
    #expect(records.filter { $0.status == .failed }.count == 1, "\(records.map { "\($0.id) \($0.status)" })")
    #expect(records.filter { $0.status == .review }.count == 1)
    #expect(records.filter { $0.status == .todo }.count == 4)
    #expect(records.allSatisfy { $0.status != .planning && $0.status != .building })
    for id in givenBack {
      #expect(!subjects.contains("\(id): worktree ready (planning)"), "\(id) was started")
      #expect(
        result.stdoutText.contains("\(id): planning → todo (given back: claimed ahead, not started)"),
        "\(result.summary)")
    }
    // Another machine runs what was given back.
    try useLocalRuntime(b, agent: "/bin/true")
    try b.taskqOK("sync")
    let other = try b.taskq("run", "--remote", "origin", "--id", givenBack[0], timeout: 120)
    #expect(other.status == 0, "\(other.summary)")
    #expect(try shared.records().first { $0.id == givenBack[0] }?.status == .review)
    #expect(try shared.forcedUpdates() == [])
  }

  /// A task claimed ahead and cancelled on another machine while it waits is never started: no worktree,
  /// no agent; the run reports it as not started and the task stays cancelled.
  @Test func aCancelFromAnotherMachineMeansAWaitingTaskNeverStarts() throws {
    let (shared, daemon, machines) = try world(["A", "B"])
    defer { daemon.stop() }
    let (a, b) = (machines[0], machines[1])
    let log = a.root + "/agent.log"
    try useLocalRuntime(a, agent: try loggingAgent(shared, log: log, seconds: 4))
    let tasks = ["T-1", "T-2", "T-3", "T-4", "T-5"]
    try addTasks(tasks, on: a, shared)
    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 180)
    defer { run.killNow() }
    try waitUntil("A's agent to start", timeout: 30) { FileManager.default.fileExists(atPath: log) }
    try waitUntil("the claims to reach the remote", timeout: 30) { try planning(shared).count == 2 }
    let started = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    let waiting = try #require(try planning(shared).first { !started.contains("/worktrees/\($0.id)\n") })
    try b.taskqOK("sync")
    try b.taskqOK("cancel", "--id", waiting.id)
    try b.taskqOK("sync")

    let result = try run.wait(timeout: 150)
    #expect(result.stdoutText.contains("\(waiting.id): not started: the task is now 'cancelled'"), "\(result.summary)")
    let agents = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    #expect(!agents.contains("/worktrees/\(waiting.id)\n"), "\(agents)")
    let subjects = try shared.subjects()
    #expect(!subjects.contains("\(waiting.id): worktree ready (planning)"), "\(subjects)")
    let records = try shared.records()
    #expect(records.first { $0.id == waiting.id }?.status == .cancelled)
    #expect(records.filter { $0.id != waiting.id }.allSatisfy { $0.status == .review })
    #expect(try shared.forcedUpdates() == [])
  }

  /// A shallow queue is not hoarded: after a first task, three are left for one worker; claiming one ahead
  /// would leave fewer claimable tasks than twice the workers seen, so the busy machine holds only the task
  /// it runs and another machine runs the other two meanwhile.
  @Test func aShallowQueueIsNotHoarded() throws {
    let (shared, daemon, machines) = try world(["A", "B"])
    defer { daemon.stop() }
    let (a, b) = (machines[0], machines[1])
    let log = a.root + "/agent.log"
    try useLocalRuntime(a, agent: try loggingAgent(shared, log: log, seconds: 120))
    try useLocalRuntime(b, agent: "/bin/true")
    let tasks = ["T-1", "T-2", "T-3", "T-4"]
    try addTasks(tasks, on: a, shared)
    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    defer { run.killNow() }
    try waitUntil("A's agent to start", timeout: 30) { FileManager.default.fileExists(atPath: log) }
    try waitUntil("A's claim to reach the remote", timeout: 30) { try planning(shared).count == 1 }
    // Give a round that would claim ahead the time to land: it would show on the remote.
    usleep(1_500_000)
    #expect(try planning(shared).count == 1)

    try b.taskqOK("sync")
    let other = try b.taskq("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    #expect(other.status == 0, "\(other.summary)")
    let records = try shared.records()
    #expect(records.filter { $0.status == .review }.count == 3, "\(records.map { "\($0.id) \($0.status)" })")
    #expect(records.filter { $0.status == .planning || $0.status == .building }.count == 1)
    run.signal(SIGTERM)
    _ = try run.wait(timeout: 60)
    #expect(try shared.forcedUpdates() == [])
  }
}
