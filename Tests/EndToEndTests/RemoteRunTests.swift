import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `run --remote`: workers on two clones share the work through a real bare remote.
///
/// The clones are two "machines" on one file system, on the local runtime with the shipped demo agent. Tasks work on
/// one shared target repository, each with a worktree path of its own, so that both clones see the same paths.
@Suite struct RemoteRunTests {
  func useLocalRuntime(_ machine: Machine, agent: String = FakeWorld.demoAgent) throws {
    try machine.git("config", "taskq.runtime", "local")
    try machine.git("config", "taskq.agentProgram", agent)
    try machine.git("config", "taskq.worktreesRoot", machine.root + "/worktrees")
  }

  func addTask(_ machine: Machine, _ id: String, _ shared: SharedRemote) throws {
    try machine.taskqOK(
      "add", "--id", id, "--repo", shared.target, "--worktree-path", shared.scratch.path + "/worktrees/" + id,
      "--task", "Write the notes of \(id)")
  }

  /// The ids of one outcome line of `run`'s summary, such as `review (3): T-01 T-02 T-03  — next: …`.
  func ids(_ label: String, in output: String) -> [String] {
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("\(label) (") }) else { return [] }
    let list = line.split(separator: ":", maxSplits: 1).last?.components(separatedBy: "  —").first ?? ""
    return list.split(separator: " ").map(String.init)
  }

  @Test func twoMachinesRunTwentyTasksEachExactlyOnce() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    let tasks = (1...20).map { String(format: "T-%02d", $0) }
    for id in tasks { try addTask(a, id, shared) }
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    for machine in [a, b] {
      try useLocalRuntime(machine)
      // Long enough stages that both machines are at work at the same time.
      machine.environment["DEMO_AGENT_DELAY"] = "0.1"
    }

    let runs = try concurrently(2) { index in
      try (index == 0 ? a : b).taskq("run", "--remote", "origin", "--max-parallel", "2", timeout: 150)
    }
    for (machine, run) in zip([a, b], runs) { #expect(run.status == 0, "\(machine.name): \(run.summary)") }
    try a.taskqOK("sync")
    try b.taskqOK("sync")

    // Each machine reports the tasks it ran; together they are every task, none twice.
    let ranByA = ids("review", in: runs[0].stdoutText)
    let ranByB = ids("review", in: runs[1].stdoutText)
    #expect(Set(ranByA).isDisjoint(with: ranByB), "A: \(ranByA) B: \(ranByB)")
    #expect((ranByA + ranByB).sorted() == tasks, "A: \(ranByA) B: \(ranByB)")
    #expect(
      !ranByA.isEmpty && !ranByB.isEmpty,
      "both machines worked: A \(ranByA), B \(ranByB); A said: \(runs[0].stderrText.suffix(1500)) \(runs[0].stdoutText.suffix(1500))"
    )

    // The remote's history: one claim and one arrival in review per task, on one line, never forced.
    let subjects = try shared.subjects()
    for id in tasks {
      let claims = subjects.filter { $0 == "\(id): todo → planning" }
      let reviews = subjects.filter { $0.hasPrefix("\(id): ") && $0.contains("→ review") }
      #expect(claims.count == 1, "\(id): \(claims)")
      #expect(reviews.count == 1, "\(id): \(reviews)")
      // The agent ran once: one commit on the task's branch.
      #expect(try Git.run(["rev-list", "--count", "main..task/\(id)"], in: shared.target) == "1", "\(id)")
    }
    #expect(try shared.records().allSatisfy { $0.status == .review && $0.worker == nil })
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates() == [])
    #expect(try a.queueTip() == shared.queueTip())
    #expect(try b.queueTip() == shared.queueTip())
  }

  /// Tasks added on one clone without `--repo` or `--worktree-path` run on another clone at a different
  /// path, with no trust configured: the record says "the repository that holds this queue", which each
  /// machine resolves to its own clone, and the worktree is derived where the attempt runs.
  @Test func tasksAddedOnOneCloneRunOnAnotherAtADifferentPath() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    for machine in [a, b] { try machine.git("config", "--unset-all", "taskq.trustedPath") }
    for id in ["P-1", "P-2"] { try a.taskqOK("add", "--id", id, "--task", "Write the notes of \(id)") }
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try useLocalRuntime(b)
    let run = try b.taskq("run", "--remote", "origin", timeout: 120)
    #expect(run.status == 0, "\(run.summary)")
    try a.taskqOK("sync")
    for id in ["P-1", "P-2"] {
      let record = try a.record(id)
      #expect(record.status == .review, "\(id): \(record.status)")
      #expect(record.repo == ".")
      #expect(record.worktreePath == b.root + "/worktrees/repo/\(id)", "\(record.worktreePath ?? "nil")")
      // The agent's commit is on task/<id> in B's clone, not in A's.
      #expect(try Git.run(["rev-list", "--count", "main..task/\(id)"], in: b.path) == "1")
      #expect(try a.git("branch", "--list", "task/\(id)") == "")
    }
  }

  /// The remote (a real `git daemon` with receive-pack, on loopback) goes away mid-run and comes back: the
  /// worker pauses its claims instead of ending, the task in flight finishes and is published once the
  /// server is back, and the run then claims and finishes the rest.
  @Test func aServerThatGoesAwayPausesClaimsAndTheRunFinishes() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let port = Int.random(in: 20_000...40_000)
    func daemon() throws -> ProcessGroup {
      let group = try ProcessGroup(
        "git",
        [
          "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1",
          "--port=\(port)", "--base-path=\(shared.scratch.path)", shared.scratch.path,
        ])
      #expect(SyncTests.waitForPort(port), "git daemon did not listen on \(port)")
      return group
    }
    var server = try daemon()
    try a.git("remote", "add", "daemon", "git://127.0.0.1:\(port)/remote.git")
    let tasks = ["T-1", "T-2", "T-3"]
    for id in tasks { try addTask(a, id, shared) }
    try a.taskqOK("sync", "daemon")
    try useLocalRuntime(a)
    a.environment["DEMO_AGENT_DELAY"] = "1.5"

    let run = try a.start("run", "--remote", "daemon", "--max-parallel", "1", timeout: 150)
    try waitUntil("the first claim on the server", timeout: 60) {
      try shared.subjects().contains { $0.hasSuffix(": todo → planning") }
    }
    server.signalGroup(SIGKILL)
    server.wait()
    Thread.sleep(forTimeInterval: 5)
    #expect(!run.isFinished, "the run ended while the server was away")
    server = try daemon()
    let result = try run.wait(timeout: 150)
    #expect(result.status == 0, "\(result.summary)")
    // The outage is seen by a claim ("claims paused") or by the publisher of the task in flight.
    #expect(
      result.stderrText.contains("claims paused") || result.stderrText.contains("could not publish to 'daemon'"),
      "\(result.stderrText)")
    withExtendedLifetime(server) {}

    let records = try shared.records()
    #expect(records.map(\.id).sorted() == tasks)
    #expect(records.allSatisfy { $0.status == .review }, "\(records.map { "\($0.id) \($0.status)" })")
    let subjects = try shared.subjects()
    for id in tasks { #expect(subjects.filter { $0 == "\(id): todo → planning" }.count == 1, "\(id): \(subjects)") }
    #expect(try shared.forcedUpdates() == [])
  }

  /// A worker killed with SIGKILL mid-task loses the task to another machine, which finishes it.
  ///
  /// A's worker is killed while its agent hangs. Its lease (2 s) runs out; B sees the task as
  /// stale, recovers it ("worker lost"), retries it and runs it to review, reusing A's worktree.
  @Test func aKilledWorkersTaskIsRecoveredAndFinishedByAnotherMachine() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    let pidFile = a.root + "/hanging-agent.pid"
    let hang = a.root + "/hanging-agent"
    try "#!/bin/sh\necho $$ > '\(pidFile)'\nexec sleep 120\n".write(toFile: hang, atomically: true, encoding: .utf8)
    chmod(hang, 0o755)
    defer {
      if let pid = readPID(pidFile), pid > 1 { kill(pid, SIGKILL) }
    }
    try useLocalRuntime(a, agent: hang)
    try useLocalRuntime(b)
    try a.git("config", "taskq.lease", "2")
    try addTask(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")

    let run = try a.start("run", "--remote", "origin", "--id", "T-1")
    try waitUntil("A's agent to start", timeout: 30) { readPID(pidFile) != nil }
    // The steps before the agent are pushed in the background, not before it starts: wait until A's queue
    // is all on the remote (its setup step, and its lease renewals, pushed at once), so that A dies with
    // nothing unpublished. A dead worker's unpublished steps, replayed by a later sync of A, are another
    // case (they must lose to the recovery: SyncReplayTests).
    try waitUntil("A's queue to be all on the remote", timeout: 20) {
      try shared.subjects().contains { $0.hasPrefix("T-1: ") && $0.contains("worktree ready") }
        && a.queueTip() == shared.queueTip()
    }
    let owner = try a.record("T-1").worker
    #expect(owner?.contains(":\(run.pid)@") == true, "\(owner ?? "nil")")
    run.killNow()
    let killed = try run.wait(timeout: 20)
    #expect(killed.ending == .signalled(SIGKILL), "\(killed.summary)")

    // B sees the claim, then its lease expire.
    try waitUntil("T-1 to be stale on B", timeout: 20) {
      try b.taskqOK("sync")
      return try b.taskqOK("status").stdoutText.contains("STALE")
    }
    let line = try b.taskqOK("status").stdoutText.split(separator: "\n").first { $0.contains("T-1") } ?? ""
    #expect(line.contains("STALE: lease expired (git taskq recover)"), "\(line)")

    let recover = try b.taskqOK("recover", "--remote", "origin")
    #expect(recover.stdoutText.hasSuffix("recovered 1 task(s): T-1\n"), "\(recover.summary)")
    let failed = try b.record("T-1")
    #expect(failed.status == .failed)
    #expect(failed.worker == nil && failed.leaseExpiresAt == nil)
    let report = try b.git("show", try #require(failed.errorFile))
    #expect(report.contains("worker lost"), "\(report)")
    #expect(report.contains(owner ?? "?"), "\(report)")
    #expect(try shared.subjects().last == "T-1: planning → failed (worker lost: \(owner ?? "?"))")
    try a.taskqOK("sync")
    #expect(try a.record("T-1").status == .failed)

    try b.taskqOK("retry", "--id", "T-1")
    let rerun = try b.taskq("run", "--remote", "origin", "--id", "T-1", "--dirty-run", timeout: 60)
    #expect(rerun.status == 0, "\(rerun.summary)")
    try a.taskqOK("sync")
    let done = try a.record("T-1")
    #expect(done.status == .review)
    #expect(done.attempt == 1)
    #expect(done.worktreePath == shared.scratch.path + "/worktrees/T-1")
    #expect(try shared.queueTip() == a.queueTip())
    #expect(try Git.run(["rev-list", "--count", "main..task/T-1"], in: shared.target) == "1")
    #expect(try shared.forcedUpdates() == [])
  }
}
