import Foundation
import Orchestrator
import Synchronization
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Acknowledged writes at the libgit2 boundary: the first write's compare-and-swap, a paused writer's lock,
/// and commit parents that must survive release-build lifetimes.
///
/// scripts/test.sh runs this suite twice: with the debug binary, and with a **release** binary under
/// `MALLOC_PERTURB_` (`TASKQ_BINARY`), where Swift ends object lifetimes at their last use and freed memory
/// is overwritten, so a pointer handed to libgit2 from a dead owner corrupts what is written at once.
@Suite(.serialized) struct LibGit2BoundaryTests {
  /// A busy loop pinned to CPU 0 for as long as the value lives, so that racing writers pinned there too
  /// are preempted at random points (the first-write race needs a writer to lose the CPU between libgit2's
  /// existence check and its lock).
  final class Load {
    private let group: ProcessGroup?
    static let hasTaskset = FileManager.default.isExecutableFile(atPath: "/usr/bin/taskset")

    init() throws {
      group =
        Self.hasTaskset
        ? try ProcessGroup("/usr/bin/taskset", ["-c", "0", "/bin/sh", "-c", "while :; do :; done"]) : nil
    }

    /// `arguments` prefixed to run on CPU 0 when taskset exists.
    static func pinned(_ program: String, _ arguments: [String]) -> (String, [String]) {
      hasTaskset ? ("/usr/bin/taskset", ["-c", "0", program] + arguments) : (program, arguments)
    }
  }

  /// Runs `git-taskq ARGS` (pinned to CPU 0 under ``Load``) in `directory`.
  static func taskq(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws
    -> ProcessResult
  {
    let (program, argv) = Load.pinned(Taskq.binary, arguments)
    var env = environment
    env["GIT_CONFIG_NOSYSTEM"] = "1"
    return try ProcessRunner.run(ProcessSpec(program, argv, environment: env, directory: directory, timeout: 120))
  }

  /// Eight writers create the queue at once, round after round, on one loaded CPU: every acknowledged add
  /// is in the ref's tree. (Before the fix a NULL old id let two first writers both succeed, and the first
  /// one's task vanished in about one round of six.)
  @Test func concurrentFirstWritesAllLand() throws {
    let soak = ProcessInfo.processInfo.environment["TASKQ_SOAK"] == "1"
    let rounds = soak ? 150 : 20
    let writers = 8
    let load = try Load()
    var lost: [String] = []
    var refused: [String] = []
    for round in 0..<rounds {
      let scratch = try ScratchRepository()
      let path = scratch.path
      let acknowledged = Mutex<Set<String>>([])
      let failures = Mutex<[String]>([])
      ConcurrencyTests.onThreads(writers) { writer in
        let id = "F\(round)-\(writer)"
        guard let result = try? Self.taskq(["add", "--id", id, "--task", "first write \(id)"], in: path) else {
          failures.withLock { $0.append("\(id): could not run") }
          return
        }
        if result.status == 0 {
          acknowledged.withLock { _ = $0.insert(id) }
        } else {
          failures.withLock { $0.append("\(id): \(result.summary)") }
        }
      }
      let present = Set(try scratch.queueRecordIDs())
      let acked = acknowledged.withLock { $0 }
      lost += acked.subtracting(present).sorted().map { "round \(round): \($0) acknowledged but missing" }
      refused += failures.withLock { $0 }
      #expect(present.isSubset(of: acked), "round \(round): tasks nobody acknowledged: \(present.subtracting(acked))")
    }
    withExtendedLifetime(load) {}
    print("first writes: \(rounds) rounds × \(writers) writers, \(lost.count) lost, \(refused.count) refused")
    #expect(lost.isEmpty, "\(lost.prefix(10).joined(separator: "\n"))")
    #expect(refused.isEmpty, "\(refused.prefix(5).joined(separator: "\n"))")
  }

  /// The use-after-free: a parent commit larger than libgit2's object cache threshold (an import's long
  /// message) was freed before `git_commit_create` read it, so the next add's commit named a garbage parent.
  @Test func theParentOfEveryWriteIsThePreviousTip() throws {
    let scratch = try ScratchRepository()
    try Self.writePythonQueue(tasks: 600, repository: scratch.path)
    let imported = try scratch.taskq("import")
    #expect(imported.status == 0, "\(imported.summary)")
    for n in 1...3 {
      let before = try #require(try scratch.queueTip())
      let added = try scratch.taskq("add", "--id", "AFTER-\(n)", "--task", "after a long import \(n)")
      #expect(added.status == 0, "\(added.summary)")
      let parent = try scratch.git("rev-parse", "refs/taskq/queue^")
      #expect(parent == before, "add \(n): parent \(parent), previous tip \(before)")
    }
    let cancelled = try scratch.taskq("cancel", "--id", "T-0001")
    #expect(cancelled.status == 0, "\(cancelled.summary)")
    let fsck = try scratch.fsck()
    #expect(fsck.status == 0 && fsck.output.isEmpty, "\(fsck.output)")
    #expect(try scratch.git("rev-list", "--count", "refs/taskq/queue") == "5")
    let check = try scratch.taskq("fsck")
    #expect(check.status == 0, "\(check.summary)")
  }

  /// A writer stopped (SIGSTOP) while it holds the writer lock: another writer waits rather than taking the
  /// queue from it, nothing is lost, and once resumed both land.
  @Test func aPausedWriterIsWaitedForAndBothWritesLand() throws {
    let scratch = try ScratchRepository()
    try scratch.taskqOK("add", "--id", "FIRST", "--task", "so that the ref exists")
    let environment = [
      "GIT_CONFIG_NOSYSTEM": "1", "TASKQ_TEST_STOP_WHILE_LOCKED": "1",
      "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
    ]
    let paused = try ProcessGroup(
      "/bin/sh", ["-c", "cd \"$0\" && exec \"$1\" add --id PAUSED --task paused", scratch.path, Taskq.binary],
      environment: environment)
    #expect(Self.waitUntilStopped(paused.pid), "the writer did not stop while holding the lock")
    let writerLock = scratch.path + "/.git/taskq/queue.writer"
    #expect(try String(contentsOfFile: writerLock, encoding: .utf8).hasPrefix("\(paused.pid) "))

    // Another writer meanwhile, in the background: it must wait, not remove anything.
    let other = Mutex<ProcessResult?>(nil)
    let path = scratch.path
    let thread = Thread {
      let result = try? Taskq.run(["add", "--id", "OTHER", "--task", "other"], in: path)
      other.withLock { $0 = result }
    }
    thread.start()
    usleep(1_500_000)
    #expect(other.withLock { $0 } == nil, "the other writer did not wait for the paused one")
    kill(paused.pid, SIGCONT)
    let status = paused.wait()
    #expect(status == 0, "paused writer: wait status \(status)")
    for _ in 0..<600 where other.withLock({ $0 }) == nil { usleep(50_000) }
    let result = try #require(other.withLock { $0 })
    #expect(result.status == 0, "\(result.summary)")
    #expect(Set(try scratch.queueRecordIDs()) == ["FIRST", "PAUSED", "OTHER"])
    #expect(try scratch.fsck().status == 0)
  }

  /// A prune while a writer is stopped just before its compare-and-swap (its objects are unreachable
  /// then): when the prune took only the trees below the root (as `git prune` does part-way through its
  /// walk), the writer finds them missing after the swap and writes them again; when it took the commit too,
  /// libgit2 refuses the swap and the writer writes everything again. Either way the add lands and
  /// `git fsck --full` is clean.
  @Test(arguments: ["subtrees", "everything"])
  func objectsPrunedWhileAWriterIsStoppedAreWrittenAgain(pruned: String) throws {
    let scratch = try ScratchRepository()
    try scratch.taskqOK("add", "--id", "FIRST", "--task", "so that the ref exists")
    let path = scratch.path
    let paused = try ProcessGroup(
      "/bin/sh",
      ["-c", "cd \"$0\" && exec \"$1\" add --id PRUNED --task pruned 2>\"$0/../stderr\"", path, Taskq.binary],
      environment: [
        "GIT_CONFIG_NOSYSTEM": "1", "TASKQ_TEST_STOP_WHILE_LOCKED": "1",
        "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin",
      ])
    #expect(Self.waitUntilStopped(paused.pid), "the writer did not stop")
    if pruned == "everything" {
      try scratch.git("prune", "--expire=now")
    } else {
      let unreachable = try scratch.git("prune", "-n", "--expire=now").components(separatedBy: "\n")
      let commit = try #require(unreachable.first { $0.hasSuffix(" commit") }?.split(separator: " ").first)
      let root = try scratch.git("rev-parse", "\(commit)^{tree}")
      var removed = 0
      for line in unreachable where line.hasSuffix(" tree") {
        let id = String(line.prefix(40))
        guard id != root else { continue }
        try FileManager.default.removeItem(atPath: path + "/.git/objects/\(id.prefix(2))/\(id.dropFirst(2))")
        removed += 1
      }
      #expect(removed >= 2, "\(unreachable)")
    }
    kill(paused.pid, SIGCONT)
    let status = paused.wait()
    let stderr = (try? String(contentsOfFile: scratch.directory.path + "/stderr", encoding: .utf8)) ?? ""
    #expect(status == 0, "wait status \(status): \(stderr)")
    #expect(
      stderr.contains(pruned == "everything" ? "was pruned before it reached the ref" : "wrote them again"), "\(stderr)"
    )
    let fsck = try ProcessRunner.run(
      ProcessSpec("git", ["fsck", "--full", "--no-dangling", "--no-progress"], directory: path, timeout: 120))
    #expect(fsck.succeeded && fsck.stdoutText.isEmpty, "\(fsck.stdoutText) \(fsck.stderrText)")
    #expect(Set(try scratch.queueRecordIDs()) == ["FIRST", "PRUNED"])
    #expect(try scratch.taskq("status").status == 0)
  }

  /// Writers stopped for longer than a stale lock's age at random moments while three others add in a loop:
  /// every acknowledged add is present, every failure says so in one line, and the queue stays valid.
  @Test func writersStoppedAtRandomLoseNothing() throws {
    let seconds: Double = ProcessInfo.processInfo.environment["TASKQ_SOAK"] == "1" ? 120 : 12
    let world = try FakeWorld()
    let place = CrashRaceTests.Place(path: world.path, state: world.state, environment: world.runEnvironment())
    let ledger = CrashRaceTests.Ledger()
    let deadline = Date().addingTimeInterval(seconds)
    let pauses = Mutex(0)
    let pauser = Thread {
      while Date() < deadline {
        usleep(UInt32.random(in: 100_000...400_000))
        ledger.withRandomRunning { pid in
          guard kill(pid, SIGSTOP) == 0 else { return }
          pauses.withLock { $0 += 1 }
          usleep(UInt32.random(in: 1_100_000...1_800_000))
          kill(pid, SIGCONT)
        }
      }
    }
    pauser.start()
    let failures = Mutex<[String]>([])
    ConcurrencyTests.onThreads(3) { slot in
      var n = 0
      while Date() < deadline {
        n += 1
        let id = "P\(slot)-\(n)"
        ledger.attempt()
        guard
          let result = CrashRaceTests.run(place, slot: slot, ["add", "--id", id, "--task", "t \(id)"], ledger: ledger)
        else { continue }
        if result.status == 0 {
          ledger.ack("add", id)
        } else if result.stderrLines.count != 1 || !result.stderrText.hasPrefix("error: ") {
          failures.withLock { $0.append("\(id): \(result.summary)") }
        }
      }
    }
    while !pauser.isFinished { usleep(50_000) }
    let present = Set(try world.records().map(\.id))
    let missing = ledger.acknowledged.map(\.id).filter { !present.contains($0) }
    print(
      "stopped writers: \(Int(seconds)) s, \(ledger.attempted) adds, \(ledger.acknowledged.count) acknowledged, "
        + "\(pauses.withLock { $0 }) pauses, \(missing.count) lost")
    #expect(missing.isEmpty, "acknowledged but missing: \(missing.prefix(10))")
    #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 }.prefix(3))")
    #expect(pauses.withLock { $0 } > 0)
    #expect(ledger.acknowledged.count > 10)
    let fsck = try world.repository.fsck()
    #expect(fsck.status == 0, "\(fsck.output)")
  }

  /// The stress mix of issue 10: first writes, an import with a long message, adds, cancels and syncs, from
  /// many processes on two clones of one remote, all on one loaded CPU. Then every acknowledged operation is
  /// in the queue, both clones and the remote agree, and `git fsck --full` and `git taskq fsck` are clean.
  @Test func mixedWritersUnderLoadKeepEveryAcknowledgedOperation() throws {
    let seconds: Double = ProcessInfo.processInfo.environment["TASKQ_SOAK"] == "1" ? 120 : 15
    let remote = try SharedRemote()
    let a = try remote.machine("A")
    let b = try remote.machine("B")
    let load = try Load()
    let importDirectory = a.root + "/python-queue"
    try Self.writePythonQueue(tasks: 200, repository: importDirectory)
    let acknowledged = Mutex<[(operation: String, id: String)]>([])
    let counts = Mutex<[String: Int]>([:])
    let deadline = Date().addingTimeInterval(seconds)

    @Sendable func run(_ machine: Machine, _ arguments: [String]) -> ProcessResult? {
      let (program, argv) = Load.pinned(Taskq.binary, arguments)
      counts.withLock { $0[arguments[0], default: 0] += 1 }
      return try? ProcessRunner.run(
        ProcessSpec(
          program, argv, environment: machine.runEnvironment(), inheritEnvironment: false, directory: machine.path,
          timeout: 120))
    }
    @Sendable func ack(_ operation: String, _ id: String) { acknowledged.withLock { $0.append((operation, id)) } }

    ConcurrencyTests.onThreads(7) { slot in
      var n = 0
      var mine: [String] = []
      switch slot {
      case 0:  // the importer: one long-message commit racing the first adds, then idempotent repeats
        while Date() < deadline {
          if let result = run(a, ["import", "--from", importDirectory + "/queue"]), result.status == 0 {
            ack("import", "")
          }
          usleep(1_500_000)
        }
      case 1:  // A's syncer
        while Date() < deadline {
          _ = run(a, ["sync"])
          usleep(300_000)
        }
      case 2, 3, 4:  // A's writers: first writes, adds, cancels of their own tasks
        while Date() < deadline {
          n += 1
          if n % 5 == 0, let id = mine.popLast() {
            if run(a, ["cancel", "--id", id])?.status == 0 { ack("cancel", id) }
            continue
          }
          let id = "A\(slot)-\(n)"
          if run(a, ["add", "--id", id, "--task", "from A \(id)"])?.status == 0 {
            ack("add", id)
            mine.append(id)
          }
        }
      default:  // B: joins once the remote has a queue, then adds and syncs
        while Date() < deadline, (try? b.queueTip()) == nil {
          _ = run(b, ["sync"])
          usleep(300_000)
        }
        while Date() < deadline {
          n += 1
          let id = "B\(slot)-\(n)"
          if run(b, ["add", "--id", id, "--task", "from B \(id)"])?.status == 0 { ack("add", id) }
          if n % 3 == 0 { _ = run(b, ["sync"]) }
        }
      }
    }
    withExtendedLifetime(load) {}

    // Converge: sync both clones until they and the remote agree.
    for _ in 0..<4 {
      _ = try a.taskq("sync")
      _ = try b.taskq("sync")
      if try a.queueTip() == remote.queueTip(), try b.queueTip() == remote.queueTip() { break }
    }
    #expect(try a.queueTip() == remote.queueTip())
    #expect(try b.queueTip() == remote.queueTip())

    var violations: [String] = []
    let records = Dictionary(uniqueKeysWithValues: try remote.records().map { ($0.id, $0) })
    let acks = acknowledged.withLock { $0 }
    for (operation, id) in acks {
      switch operation {
      case "add" where records[id] == nil: violations.append("\(id): acknowledged add is missing")
      case "cancel" where records[id]?.status != .cancelled:
        violations.append("\(id): acknowledged cancel, now \(records[id]?.status.rawValue ?? "missing")")
      default: break
      }
    }
    if acks.contains(where: { $0.operation == "import" }) {
      let imported = (0..<200).map { String(format: "T-%04d", $0) }.filter { records[$0] == nil }
      if !imported.isEmpty { violations.append("imported but missing: \(imported.prefix(5))") }
    }
    let adds = try Git.run(
      ["log", "--format=%(trailers:key=Taskq-Op,valueonly,separator=)", Layout.refName], in: remote.bare
    ).components(separatedBy: "\n").filter { $0 == "add" }.count
    let addAcks = acks.filter { $0.operation == "add" }.count
    if adds != addAcks { violations.append("\(adds) add commits for \(addAcks) acknowledged adds") }
    for (name, path) in [("A", a.path), ("B", b.path), ("remote", remote.bare)] {
      // git fetch starts `git gc --auto` in the background when loose objects pile up: let it finish (it
      // packs objects and deletes their loose copies, which a concurrent fsck reports as missing).
      let gitDirectory = path.hasSuffix(".git") ? path : path + "/.git"
      try waitUntil("background gc in \(name)", timeout: 120) {
        !FileManager.default.fileExists(atPath: gitDirectory + "/gc.pid")
          && !FileManager.default.fileExists(atPath: gitDirectory + "/objects/maintenance.lock")
      }
      let fsck = try ProcessRunner.run(
        ProcessSpec(
          "git", ["fsck", "--full", "--strict", "--no-dangling", "--no-progress"], directory: path, timeout: 300))
      if !fsck.succeeded || !fsck.stdoutText.isEmpty {
        violations.append("git fsck --full (\(name)): \(fsck.stdoutText) \(fsck.stderrText)")
      }
    }
    for machine in [a, b] {
      let check = try machine.taskq("fsck")
      if check.status != 0 { violations.append("git taskq fsck (\(machine.name)): \(check.stdoutText)") }
    }
    let figures =
      "mixed stress: \(Int(seconds)) s, commands \(counts.withLock { $0 }.sorted { $0.key < $1.key }), "
      + "\(acks.count) acknowledged (\(addAcks) adds), \(records.count) tasks, \(violations.count) violations"
    print(figures)
    #expect(violations.isEmpty, "\(figures)\n\(violations.prefix(20).joined(separator: "\n"))")
    #expect(addAcks > 20)
  }

  // MARK: Helpers

  /// Waits (up to 10 s) until `pid` is stopped (state `T` in /proc).
  static func waitUntilStopped(_ pid: pid_t) -> Bool {
    for _ in 0..<200 {
      if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = stat.lastIndex(of: ")")
      {
        let state = stat[stat.index(close, offsetBy: 2)]
        if state == "T" || state == "t" { return true }
      }
      usleep(50_000)
    }
    return false
  }

  /// Writes a queue in the Python taskq's layout (`queue/tasks.jsonl` and `queue/tasks/<id>.md`), `tasks`
  /// todo tasks, so that `import` makes one commit with a long message.
  static func writePythonQueue(tasks: Int, repository: String) throws {
    var lines = ""
    try FileManager.default.createDirectory(atPath: repository + "/queue/tasks", withIntermediateDirectories: true)
    for n in 0..<tasks {
      let id = String(format: "T-%04d", n)
      lines +=
        "{\"id\": \"\(id)\", \"repo\": \"\(repository)\", \"base\": \"main\", \"task_file\": \"queue/tasks/\(id).md\", "
        + "\"status\": \"todo\", \"branch\": \"task/\(id)\", \"worktree_path\": null, \"container\": null, "
        + "\"port\": null, \"session_id\": null, \"attempt\": 0, \"error_file\": null, "
        + "\"created_at\": \"2026-11-18T08:02:11.482913+00:00\", \"updated_at\": \"2026-11-18T08:02:11.482913+00:00\"}\n"
      try "---\nid: \(id)\nrepo: \(repository)\nbase: main\n---\nTask \(id) of a long import.\n".write(
        toFile: repository + "/queue/tasks/\(id).md", atomically: false, encoding: .utf8)
    }
    try lines.write(toFile: repository + "/queue/tasks.jsonl", atomically: false, encoding: .utf8)
  }
}

extension CrashRaceTests.Ledger {
  /// Calls `body` with the pid of a random running git-taskq slot, if any (outside the ledger's lock).
  func withRandomRunning(_ body: (Int32) -> Void) {
    guard let pid = randomRunningPID() else { return }
    body(pid)
  }
}
