import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `run --remote` at speed: several clones (machines) claiming through a real `git daemon`, claims of
/// several tasks in one push, a `cancel` from another machine reaching a running agent, and the shared ssh
/// connection. Speed itself is measured by `scripts/bench-sync.sh`, not here: these tests check what must
/// stay true while it is fast.
@Suite struct RemoteThroughputTests {
  func useLocalRuntime(_ machine: Machine, agent: String = "/bin/true") throws {
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
  }

  /// A `git daemon --enable=receive-pack` serving the shared remote on a loopback port.
  func daemon(_ shared: SharedRemote) throws -> (ProcessGroup, String) {
    for _ in 0..<5 {
      let port = Int.random(in: 20_000...40_000)
      let group = try ProcessGroup(
        "git",
        [
          "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", "--port=\(port)",
          "--base-path=\(shared.scratch.path)", shared.scratch.path,
        ])
      if SyncTests.waitForPort(port) { return (group, "git://127.0.0.1:\(port)/remote.git") }
      group.signalGroup(SIGKILL)
      group.wait()
    }
    throw TestFailure("git daemon did not listen")
  }

  /// Claims of the remote's reflog entries: for each push the server took, the claim commits it brought.
  func claimsPerPush(_ shared: SharedRemote) throws -> [Int] {
    try shared.reflog().map { entry in
      let range = entry.old.allSatisfy { $0 == "0" } ? entry.new : "\(entry.old)..\(entry.new)"
      let subjects = try Git.run(["log", "--format=%s", range], in: shared.bare)
      return subjects.split(separator: "\n").filter { $0.hasSuffix(": todo → planning") }.count
    }
  }

  /// Seven workers on three clones, through a real git daemon: every task is claimed once in the remote's
  /// history and reaches review once, on one line, never forced.
  @Test func sevenWorkersOnThreeClonesThroughAGitDaemonClaimEachTaskOnce() throws {
    let shared = try SharedRemote()
    let (server, url) = try daemon(shared)
    defer {
      server.signalGroup(SIGKILL)
      server.wait()
    }
    let machines = try ["A", "B", "C"].map { try shared.machine($0) }
    let tasks = (1...30).map { String(format: "T-%02d", $0) }
    try addTasks(tasks, on: machines[0], shared)
    try machines[0].taskqOK("sync")
    for machine in machines {
      try machine.git("remote", "set-url", "origin", url)
      try machine.taskqOK("sync")
      try useLocalRuntime(machine)
    }
    let parallel = ["3", "2", "2"]
    let runs = try concurrently(3) { index in
      try machines[index].taskq("run", "--remote", "origin", "--max-parallel", parallel[index], timeout: 240)
    }
    for (machine, run) in zip(machines, runs) { #expect(run.status == 0, "\(machine.name): \(run.summary)") }

    let subjects = try shared.subjects()
    for id in tasks {
      #expect(subjects.filter { $0 == "\(id): todo → planning" }.count == 1, "\(id): \(subjects)")
      #expect(subjects.filter { $0.hasPrefix("\(id): ") && $0.hasSuffix("→ review (ready for review)") }.count == 1)
      #expect(!subjects.contains("\(id): planning → todo (claim not published)"), "\(id)")
    }
    #expect(try shared.records().allSatisfy { $0.status == .review && $0.worker == nil })
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates() == [])
    // Every machine reports its own tasks, and together they are all of them, none twice.
    let reported = runs.flatMap { run in
      run.stdoutText.split(separator: "\n").filter { $0.hasPrefix("review (") }
        .flatMap {
          $0.split(separator: ":", maxSplits: 1).last?.components(separatedBy: "  —").first?
            .split(separator: " ").map(String.init) ?? []
        }
    }
    #expect(reported.sorted() == tasks, "\(reported)")
  }

  /// One machine with four free workers claims four tasks in one round: one push brings the four claims to
  /// the remote (its reflog shows one update with four claim commits).
  @Test func freeWorkersClaimSeveralTasksInOnePush() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let tasks = ["T-1", "T-2", "T-3", "T-4"]
    try addTasks(tasks, on: a, shared)
    try a.taskqOK("sync")
    try useLocalRuntime(a)
    // The run's outcome is not the point here (four worktrees made at the same instant in one repository
    // can race inside libgit2); the claims are.
    _ = try a.taskq("run", "--remote", "origin", "--max-parallel", "4", timeout: 120)
    let perPush = try claimsPerPush(shared)
    #expect(perPush.reduce(0, +) == 4, "\(perPush)")
    #expect(perPush.contains(4), "claims per push: \(perPush)")
    let subjects = try shared.subjects()
    for id in tasks { #expect(subjects.filter { $0 == "\(id): todo → planning" }.count == 1, "\(id)") }
    #expect(try shared.forcedUpdates() == [])
  }

  /// Nothing waits for a push before an agent runs: a task of no-op agents costs about one push (its claim
  /// round's, which also carries the previous task's steps), where waiting for the steps before each of the
  /// two agents cost three.
  @Test func aTaskOfNoOpAgentsCostsAboutOnePush() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let tasks = (1...12).map { String(format: "T-%02d", $0) }
    try addTasks(tasks, on: a, shared)
    try a.taskqOK("sync")
    try useLocalRuntime(a)
    let pushesBefore = try shared.reflog().count
    let run = try a.taskq("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    #expect(run.status == 0, "\(run.summary)")
    #expect(try shared.records().allSatisfy { $0.status == .review })
    let subjects = try shared.subjects()
    for id in tasks { #expect(subjects.filter { $0 == "\(id): todo → planning" }.count == 1, "\(id)") }
    // One per task, plus the last push of the run, plus slack for a loaded machine (a task whose steps
    // take longer than the publisher's coalescing delay is pushed twice).
    let pushes = try shared.reflog().count - pushesBefore
    #expect(pushes <= tasks.count * 3 / 2 + 2, "\(pushes) pushes for \(tasks.count) tasks")
    #expect(try shared.forcedUpdates() == [])
  }

  /// A `cancel` made on another machine stops the running agent within 10 s (the remote is fetched every
  /// few seconds while a task runs), and the worker reports the task cancelled.
  @Test func aCancelFromAnotherMachineStopsTheRunningAgentWithinTenSeconds() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    let pidFile = a.root + "/agent.pid"
    let sleeper = try shared.scratch.write(
      "sleeping-agent", "#!/bin/sh\necho $$ > '\(pidFile)'\nexec sleep 120\n", executable: true)
    defer {
      if let pid = readPID(pidFile), pid > 1 { kill(pid, SIGKILL) }
    }
    try useLocalRuntime(a, agent: sleeper)
    try addTasks(["T-1"], on: a, shared)
    try a.taskqOK("sync")
    let run = try a.start("run", "--remote", "origin", "--id", "T-1", timeout: 120)
    try waitUntil("A's agent to start", timeout: 30) { readPID(pidFile) != nil }
    let agent = try #require(readPID(pidFile))

    try b.taskqOK("sync")
    #expect(try b.record("T-1").status == .planning)
    try b.taskqOK("cancel", "--id", "T-1")
    try b.taskqOK("sync")
    let cancelled = monotonicSeconds()
    try waitUntil("the cancelled agent to stop", timeout: 10) { kill(agent, 0) != 0 }
    let seconds = monotonicSeconds() - cancelled
    #expect(seconds < 10, "\(seconds) s")
    let result = try run.wait(timeout: 60)
    #expect(result.stdoutText.contains("T-1: stopped: the task is now 'cancelled'"), "\(result.summary)")
    try a.taskqOK("sync")
    #expect(try shared.records().first?.status == .cancelled)
    #expect(try shared.forcedUpdates() == [])
  }

  /// Over ssh, `run --remote` asks ssh to share one connection (ControlMaster, sockets in a private
  /// directory under the git directory) when the user chose no ssh command; a one-off `sync` does not, and a
  /// command the user chose is used as it is.
  @Test func runSharesTheSSHConnectionUnlessTheUserChoseAnSSHCommand() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let log = a.root + "/ssh.log"
    // An `ssh` that logs its arguments and runs the remote command here (the remote is a local path).
    let bin = a.root + "/bin"
    try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
    let ssh = bin + "/ssh"
    try """
    #!/bin/sh
    echo "$*" >> '\(log)'
    for last; do :; done
    case "$last" in git-*) exec sh -c "$last" ;; esac
    exit 255
    """.write(toFile: ssh, atomically: true, encoding: .utf8)
    chmod(ssh, 0o755)
    a.environment["PATH"] = bin + ":" + a.runEnvironment()["PATH", default: "/usr/bin:/bin"]
    try a.git("remote", "add", "far", "fakehost:\(shared.bare)")
    try addTasks(["T-1"], on: a, shared)
    try a.taskqOK("sync", "far")
    let syncCalls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    #expect(syncCalls.contains("fakehost"), "\(syncCalls)")
    #expect(syncCalls.contains("BatchMode=yes"), "\(syncCalls)")
    #expect(!syncCalls.contains("ControlMaster"), "\(syncCalls)")

    try FileManager.default.removeItem(atPath: log)
    try useLocalRuntime(a)
    let run = try a.taskq("run", "--remote", "far", timeout: 120)
    #expect(run.status == 0, "\(run.summary)")
    let runCalls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    #expect(runCalls.contains("ControlMaster=auto"), "\(runCalls)")
    // Under the git directory, or in /tmp when that path is too long for a socket (removed at the end).
    let inGitDirectory = runCalls.contains("ControlPath=\(a.path)/.git/taskq/ssh/%C")
    #expect(inGitDirectory || runCalls.contains("ControlPath=/tmp/taskq-ssh-\(getuid())-"), "\(runCalls)")
    if inGitDirectory {
      var info = stat()
      let directory = a.path + "/.git/taskq/ssh"
      #expect(lstat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700, "\(String(info.st_mode, radix: 8))")
    }
    #expect(try shared.records().first?.status == .review)

    // The user's own ssh command wins: no options of ours.
    try FileManager.default.removeItem(atPath: log)
    try addTasks(["T-2"], on: a, shared)
    try a.git("config", "core.sshCommand", ssh)
    let own = try a.taskq("run", "--remote", "far", timeout: 120)
    #expect(own.status == 0, "\(own.summary)")
    let ownCalls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    #expect(ownCalls.contains("fakehost"), "\(ownCalls)")
    #expect(!ownCalls.contains("ControlMaster") && !ownCalls.contains("BatchMode"), "\(ownCalls)")
    #expect(try shared.records().allSatisfy { $0.status == .review })
  }
}

private func monotonicSeconds() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}
