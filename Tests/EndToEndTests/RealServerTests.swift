import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Machines sharing the queue through a real server: a `git daemon` with receive-pack on loopback, every
/// clone made through it and pushing to it, each machine's `git-taskq` under a host name of its own
/// (`unshare --uts`), so its workers are `w1:<pid>`, `w2:<pid>`, … as on four computers.
///
/// (Smart HTTP through `git http-backend` is covered by `HttpServerTests`.)
@Suite struct RealServerTests {
  /// A shared remote served by a daemon, and `count` machines cloned through it, `w1`…`wN`, on the local
  /// runtime with the demo agent.
  func serve(_ count: Int) throws -> (SharedRemote, GitDaemon, [Machine]) {
    let shared = try SharedRemote()
    let daemon = try GitDaemon(basePath: shared.scratch.path)
    if !canSetHostName {
      print("RealServerTests: 'unshare --uts' is not allowed here: the machines share this host's name")
    }
    let machines = try shared.demoMachines(count, prefix: "w", cloneURL: daemon.url("remote.git"))
    return (shared, daemon, machines)
  }

  /// The `Taskq-Worker` trailers of the remote queue's commits, oldest first.
  func workers(_ shared: SharedRemote) throws -> [String] {
    let out = try Git.run(
      ["log", "--reverse", "--format=%(trailers:key=Taskq-Worker,valueonly,separator=)", Layout.refName],
      in: shared.bare)
    return out.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
  }

  /// Every task ran exactly once: one claim, one arrival in review, and one commit of the demo agent on
  /// `task/<id>` in exactly one machine's clone (the task's `repo` is `.`: each machine's own clone).
  func expectEachRanOnce(_ ids: [String], _ shared: SharedRemote, _ machines: [Machine]) throws {
    let subjects = try shared.subjects()
    for id in ids {
      // A claim whose push reached the server while its answer was lost (the server killed in between) is
      // given back ("release") and claimed again: every claim but the last is released.
      let claims = subjects.filter { $0 == "\(id): todo → planning" }.count
      let releases = subjects.filter { $0.hasPrefix("\(id): planning → todo") }.count
      #expect(claims == releases + 1, "\(id): \(claims) claim(s), \(releases) release(s): \(subjects)")
      #expect(subjects.filter { $0.hasPrefix("\(id): ") && $0.contains("→ review") }.count == 1, "\(id)")
      let ran = try machines.filter { try !$0.git("branch", "--list", "task/\(id)").isEmpty }
      #expect(ran.count == 1, "\(id) has a branch on \(ran.map(\.name))")
      for machine in ran { #expect(try machine.git("rev-list", "--count", "main..task/\(id)") == "1", "\(id)") }
    }
    let records = try shared.records()
    #expect(records.map(\.id).sorted() == ids.sorted())
    #expect(
      records.allSatisfy { $0.status == .review && $0.worker == nil }, "\(records.map { "\($0.id) \($0.status)" })")
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates() == [])
  }

  /// Four machines on four host names run 10 tasks through the daemon, which is killed after the first
  /// claims and started again on the same port 3 s later. Two of the tasks were added by a fresh clone before
  /// its first sync; all were added without `--repo`, so whichever machine runs a task does so in its own
  /// clone, at its own path. Every task runs exactly once and the history stays linear.
  @Test func fourHostsRunEveryTaskOnceThroughAServerThatRestarts() throws {
    let (shared, daemon, machines) = try serve(4)
    let ids = (1...8).map { String(format: "T-%02d", $0) }
    for id in ids { try machines[0].taskqOK("add", "--id", id, "--task", "Write the notes of \(id)") }
    try machines[0].taskqOK("sync")
    // w4 is a fresh clone that adds before its first sync: its queue starts from a root of its own.
    for id in ["F-1", "F-2"] { try machines[3].taskqOK("add", "--id", id, "--task", "Write the notes of \(id)") }
    for machine in machines { machine.environment["DEMO_AGENT_DELAY"] = "0.2" }

    let runs = try machines.map { try $0.start("run", "--remote", "origin", "--max-parallel", "2", timeout: 150) }
    // Every run's first sync is over (w4's published its adds; the others only fetch) before the outage:
    // a run that cannot reach its remote at the start stops at once, by design.
    try waitUntil("every machine's first sync and three claims on the server", timeout: 60) {
      let subjects = try shared.subjects()
      let claims = subjects.filter { $0.hasSuffix(": todo → planning") }.count
      return try claims >= 3 && subjects.contains("F-2: added (todo)")
        && machines.allSatisfy { try $0.trackingTip() != nil }
    }
    daemon.stop()
    let atOutage = try shared.records()
    Thread.sleep(forTimeInterval: 3)
    // A single pass ends when it finds nothing to claim, which claims made ahead by the others can cause
    // before the outage; what must not happen is every run giving up (each exit status is checked below).
    #expect(runs.contains { !$0.isFinished }, "every run ended while the server was away")
    try daemon.start()
    let results = try runs.map { try $0.wait(timeout: 150) }
    for (machine, result) in zip(machines, results) {
      #expect(result.status == 0, "\(machine.name): \(result.summary)")
    }
    // The outage came in the middle of the work, and at least one worker paused its claims through it.
    #expect(atOutage.contains { $0.status != .review }, "every task was done before the server went away")
    #expect(results.contains { $0.stderrText.contains("claims paused") }, "\(results.map(\.stderrText))")

    let all = ids + ["F-1", "F-2"]
    try expectEachRanOnce(all, shared, machines)
    for machine in machines { try machine.taskqOK("sync") }
    for machine in machines { #expect(try machine.queueTip() == shared.queueTip(), "\(machine.name)") }
    // The fresh clone's tasks kept their ids and joined the queue after the others (their adds replayed).
    #expect(try shared.records().filter { $0.id.hasPrefix("F-") }.allSatisfy { $0.seq > 8 })
    if canSetHostName {
      // The claims came from the four host names, at least two of them.
      let hosts = Set(try workers(shared).compactMap { WorkerProcess($0)?.host })
      #expect(hosts.isSubset(of: ["w1", "w2", "w3", "w4"]) && hosts.count >= 2, "\(hosts)")
    }
  }

  /// A task added on one clone, before that clone ever synced, runs on another clone at another path
  /// (through the daemon), and the first clone then sees it in review with the other's worktree path.
  @Test func aTaskAddedOnAFreshCloneRunsOnAnotherClone() throws {
    let (shared, daemon, machines) = try serve(2)
    defer { withExtendedLifetime(daemon) {} }
    let (a, b) = (machines[0], machines[1])
    try a.taskqOK("add", "--id", "P-1", "--task", "Write the notes of P-1")
    let created = try a.taskqOK("sync")
    #expect(created.stdoutText == "sync origin: created the remote queue (1 commit(s))\n", "\(created.stdoutText)")
    // B also added before its first sync: its add replays onto the queue A created.
    try b.taskqOK("add", "--id", "P-2", "--task", "Write the notes of P-2")
    let run = try b.taskq("run", "--remote", "origin", timeout: 90)
    #expect(run.status == 0, "\(run.summary)")
    try a.taskqOK("sync")
    for id in ["P-1", "P-2"] {
      let record = try a.record(id)
      #expect(record.status == .review, "\(id): \(record.status)")
      #expect(record.repo == ".")
      #expect(record.worktreePath == b.root + "/worktrees/repo/\(id)", "\(record.worktreePath ?? "nil")")
      #expect(try b.git("rev-list", "--count", "main..task/\(id)") == "1")
      #expect(try a.git("branch", "--list", "task/\(id)") == "")
    }
    #expect(try a.queueTip() == shared.queueTip())
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates() == [])
    if canSetHostName {
      let workers = try workers(shared)
      #expect(workers.contains { $0.hasPrefix("w2:") }, "\(workers)")
    }
  }
}
