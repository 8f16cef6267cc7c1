import Foundation
import Orchestrator
import Synchronization
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `git taskq sync` between clones of a real bare remote, each clone standing for a machine.
///
/// Every write goes through the built binary (or, to stand for a worker's own commits, an in-process store); every
/// check reads git itself: refs, the remote's reflog, the commits' subjects.
@Suite struct SyncTests {
  /// The queue of `machine` and the remote's are the same commit, linear, never force-pushed.
  func expectConverged(
    _ shared: SharedRemote, _ machines: Machine..., sourceLocation: SourceLocation = #_sourceLocation
  )
    throws
  {
    let remote = try shared.queueTip()
    #expect(remote != nil, sourceLocation: sourceLocation)
    for machine in machines {
      #expect(try machine.queueTip() == remote, "\(machine.name)", sourceLocation: sourceLocation)
    }
    #expect(try shared.mergeCommits().isEmpty, sourceLocation: sourceLocation)
    #expect(try shared.forcedUpdates() == [], sourceLocation: sourceLocation)
  }

  func add(_ machine: Machine, _ id: String, _ shared: SharedRemote, body: String? = nil) throws {
    try machine.taskqOK("add", "--id", id, "--repo", shared.target, "--task", body ?? "Task \(id) from \(machine.name)")
  }

  // MARK: The cases of sync

  @Test func syncWithNoQueueAnywhereSaysSoAndWritesNothing() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let result = try a.taskq("sync")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText == "sync origin: nothing to sync (no queue here or there)\n")
    #expect(try a.queueTip() == nil)
    #expect(try a.trackingTip() == nil)
    #expect(try shared.queueTip() == nil)
  }

  @Test func firstSyncCreatesTheRemoteQueueAndTheOtherCloneFastForwards() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try add(a, "T-2", shared)

    let created = try a.taskqOK("sync")
    #expect(created.stdoutText == "sync origin: created the remote queue (2 commit(s))\n")
    #expect(try shared.queueTip() == a.queueTip())
    #expect(try a.trackingTip() == a.queueTip())

    let received = try b.taskqOK("sync")
    #expect(received.stdoutText == "sync origin: fast-forwarded the local queue by 2 commit(s)\n")
    #expect(try b.records().map(\.id) == ["T-1", "T-2"])
    #expect(try b.taskqOK("sync").stdoutText == "sync origin: up to date\n")
    #expect(try a.taskqOK("sync").stdoutText == "sync origin: up to date\n")
    try expectConverged(shared, a, b)
    #expect(try shared.reflog().count == 1)
  }

  @Test func oneSideBehindIsFastForwardedEitherWay() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try add(b, "T-2", shared)
    #expect(try b.taskqOK("sync").stdoutText == "sync origin: pushed 1 commit(s)\n")
    #expect(try a.taskqOK("sync").stdoutText == "sync origin: fast-forwarded the local queue by 1 commit(s)\n")
    try a.taskqOK("cancel", "--id", "T-2")
    #expect(try a.taskqOK("sync").stdoutText == "sync origin: pushed 1 commit(s)\n")
    #expect(try b.taskqOK("sync").stdoutText == "sync origin: fast-forwarded the local queue by 1 commit(s)\n")
    #expect(try b.record("T-2").status == .cancelled)
    try expectConverged(shared, a, b)
    #expect(
      try shared.subjects() == ["T-1: added (todo)", "T-2: added (todo)", "T-2: todo → cancelled"])
  }

  // MARK: Both moved

  /// Twelve `add` processes at once on two clones, then both clones sync, also at once.
  ///
  /// Six `add` processes per clone, while the remote already holds a queue. Every task ends on both clones and the
  /// remote exactly once, with its own `seq`, and the remote's history is one line that was only ever extended.
  @Test(arguments: [true, false])
  func concurrentAddsOnBothClonesMeetAfterSync(fileURL: Bool) throws {
    let shared = try SharedRemote(fileURL: fileURL)
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-0", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")

    let ids = (1...6).flatMap { ["A-\($0)", "B-\($0)"] }
    let target = shared.target
    let adds = try concurrently(ids.count) { index in
      let id = ids[index]
      let machine = id.hasPrefix("A") ? a : b
      return try machine.taskq("add", "--id", id, "--repo", target, "--task", "Task \(id)")
    }
    for (id, result) in zip(ids, adds) { #expect(result.status == 0, "add \(id): \(result.summary)") }

    let syncs = try concurrently(2) { index in try (index == 0 ? a : b).taskq("sync") }
    for result in syncs { #expect(result.status == 0, "\(result.summary)") }
    // The one that synced first lacks the other's tasks until it syncs again.
    try a.taskqOK("sync")
    try b.taskqOK("sync")

    try expectConverged(shared, a, b)
    let expected = Set(["T-0"] + ids)
    for machine in [a, b] {
      let records = try machine.records()
      #expect(records.count == 13, "\(machine.name)")
      #expect(Set(records.map(\.id)) == expected, "\(machine.name)")
      #expect(Set(records.map(\.seq)) == Set(1...13), "\(machine.name): seq \(records.map(\.seq))")
      // Each task's directory exactly once in the tree.
      let recordFiles = try machine.git("ls-tree", "-r", "--name-only", "refs/taskq/queue")
        .split(separator: "\n").filter { $0.hasSuffix("/record.json") }
      #expect(recordFiles.count == 13, "\(machine.name)")
    }
    #expect(try shared.subjects().filter { $0.hasSuffix(": added (todo)") }.count == 13)
    let fsck = try a.taskq("fsck")
    #expect(fsck.status == 0, "\(fsck.summary)")
  }

  /// A approves T-1 while B cancels it; B syncs first.
  ///
  /// A's approve no longer applies and is reported on
  /// stdout; A's approve of T-2 (still in review on the remote) and its new task are replayed on top.
  @Test func conflictingTransitionsAreReplayedOrDroppedAndReported() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    for id in ["T-1", "T-2", "T-3"] { try add(a, id, shared) }
    let worker = try a.store(worker: "host-a:1")
    for id in ["T-1", "T-2"] {
      for step: TaskStatus in [.planning, .building, .review] { try worker.transition(id, to: step, command: "test") }
    }
    try a.taskqOK("sync")
    try b.taskqOK("sync")

    try a.taskqOK("approve", "--id", "T-1")
    try a.taskqOK("approve", "--id", "T-2")
    try a.taskqOK("cancel", "--id", "T-3")
    try add(a, "T-5", shared)
    try b.taskqOK("cancel", "--id", "T-1")
    try b.taskqOK("cancel", "--id", "T-3")
    try add(b, "T-4", shared)
    try b.taskqOK("sync")
    let remoteBefore = try shared.queueTip()

    let result = try a.taskq("sync")
    #expect(result.status == 0, "\(result.summary)")
    #expect(
      result.stdoutText == """
        sync origin: received 3 commit(s), replayed 2 local operation(s), 2 dropped, pushed
          T-1: approve dropped: it was cancelled on the remote
          T-3: cancel dropped: it is already 'cancelled' on the remote

        """)
    #expect(try a.record("T-1").status == .cancelled)
    #expect(try a.record("T-2").status == .done)
    #expect(try a.record("T-3").status == .cancelled)
    #expect(try a.record("T-4").seq == 4)
    #expect(try a.record("T-5").seq == 5)

    // The remote's commits stay as they were; A's replayed ones follow, with their original messages.
    let subjects = try shared.subjects()
    #expect(
      Array(subjects.suffix(5)) == [
        "T-1: review → cancelled", "T-3: todo → cancelled", "T-4: added (todo)", "T-2: review → done",
        "T-5: added (todo)",
      ])
    #expect(!subjects.contains("T-1: review → done"))
    #expect(try a.git("rev-parse", "refs/taskq/queue~2") == remoteBefore)
    #expect(try a.git("log", "-1", "--format=%an", "refs/taskq/queue") == "Machine A")

    #expect(try b.taskqOK("sync").stdoutText == "sync origin: fast-forwarded the local queue by 2 commit(s)\n")
    try expectConverged(shared, a, b)
  }

  /// A local operation whose task was removed on the remote is dropped with that reason.
  @Test func operationOnATaskRemovedOnTheRemoteIsDropped() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try a.taskqOK("cancel", "--id", "T-1")
    try b.taskqOK("remove", "--id", "T-1")
    try b.taskqOK("sync")
    let result = try a.taskqOK("sync")
    #expect(
      result.stdoutText.contains("  T-1: cancel dropped: the task was removed on the remote\n"), "\(result.summary)")
    #expect(try a.records().isEmpty)
    try expectConverged(shared, a, b)
  }

  /// Both clones add a task with the same id: the second add is dropped, and so is everything the clone did
  /// to its own task afterwards, which would otherwise overwrite the remote's task of that name.
  @Test func operationsOnATaskWhoseAddWasDroppedAreDroppedToo() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-0", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try add(a, "T-9", shared, body: "A's own task")
    try a.taskqOK("cancel", "--id", "T-9")
    try add(b, "T-9", shared, body: "B's own task")
    try b.taskqOK("sync")

    let result = try a.taskqOK("sync")
    #expect(
      result.stdoutText.contains(
        "  T-9: add dropped: a task 'T-9' already exists on the remote (to keep yours, add it again under another id: git show "
      ), "\(result.summary)"
    )
    #expect(result.stdoutText.contains("  T-9: cancel dropped: "), "\(result.summary)")
    #expect(try a.record("T-9").status == .todo)
    let body = try a.git("show", "refs/taskq/queue:\(Layout.taskFilePath("T-9"))")
    #expect(body.contains("B's own task"), "\(body)")
    try expectConverged(shared, a, b)
  }

  /// A worker cut off from the remote must not take back its task once it was retried elsewhere.
  ///
  /// The worker goes on locally while its task is recovered, retried and claimed again by another worker. When it
  /// reconnects, its stale steps must not take the task back.
  /// Two machines; A's worker `host-a:1` claims T-1 and publishes the claim, then goes offline and takes
  /// the task through setup to building.
  func aWorkerGoneOfflineInBuilding(_ shared: SharedRemote) throws -> (a: Machine, b: Machine, worker: QueueStore) {
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    let workerA = try a.store(worker: "host-a:1")
    _ = try workerA.claimNext(only: "T-1")
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try workerA.advance("T-1", kind: "setup", detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    try workerA.advance("T-1", to: .building, kind: "build", detail: "plan made")
    return (a, b, workerA)
  }

  @Test func aStaleWorkersStepsDoNotTakeBackATaskClaimedAgain() throws {
    let shared = try SharedRemote()
    let (a, b, _) = try aWorkerGoneOfflineInBuilding(shared)
    // B: the task was given up (recovered, retried) and claimed by B's worker.
    let workerB = try b.store(worker: "host-b:2")
    try workerB.fail("T-1", kind: "recover", summary: "worker lost", report: "lost")
    try b.taskqOK("retry", "--id", "T-1")
    _ = try workerB.claimNext(only: "T-1")
    try b.taskqOK("sync")

    let result = try a.taskqOK("sync")
    #expect(
      result.stdoutText == """
        sync origin: received 3 commit(s), replayed 0 local operation(s), 2 dropped
          T-1: setup dropped: it was retried on the remote (now attempt 2)
          T-1: build dropped: it was retried on the remote (now attempt 2)

        """, "\(result.summary)")
    let record = try a.record("T-1")
    #expect(record.worker == "host-b:2")
    #expect(record.status == .planning)
    #expect(record.attempt == 1)
    #expect(record.worktreePath == nil)
    // B's report of the lost worker stays in the queue.
    #expect(try a.git("show", try #require(record.errorFile)) == "lost")
    try expectConverged(shared, a, b)
  }

  /// A worker cut off from the remote finishes its task while another machine, seeing its lease expire,
  /// fails it as "worker lost". When the worker comes back with the same attempt's steps, they replay over
  /// the recovery (reported as superseded): finished work is never dropped.
  @Test func aWorkerThatFinishedSupersedesItsRecoveryElsewhere() throws {
    let shared = try SharedRemote()
    let (a, b, workerA) = try aWorkerGoneOfflineInBuilding(shared)
    // A, still offline: its worker finishes the task.
    try workerA.advance("T-1", to: .review, kind: "review", detail: "ready for review") {
      $0.worker = nil
      $0.leaseExpiresAt = nil
    }
    // B: the lease looked expired, so B failed the task as "worker lost".
    try b.store(worker: "host-b:2").fail("T-1", kind: "recover", summary: "worker lost", report: "lost")
    try b.taskqOK("sync")

    let result = try a.taskqOK("sync")
    #expect(result.stdoutText.contains("replayed 3 local operation(s), pushed"), "\(result.summary)")
    #expect(
      result.stdoutText.contains("  T-1: the remote's recovery (worker lost) superseded"), "\(result.summary)")
    #expect(!result.stdoutText.contains("dropped"), "\(result.summary)")
    let record = try a.record("T-1")
    #expect(record.status == .review)
    #expect(record.worktreePath == "/a/T-1")
    try b.taskqOK("sync")
    #expect(try b.record("T-1").status == .review)
    // The recovery stays in the history, followed by the worker's steps.
    let subjects = try shared.subjects()
    #expect(subjects.contains { $0.hasPrefix("T-1: planning → failed") }, "\(subjects)")
    #expect(subjects.last?.hasPrefix("T-1: building → review") == true, "\(subjects)")
    try expectConverged(shared, a, b)
  }

  /// Two workers claim the same task, each on its own clone, before either pushed (`run --id` claims before
  /// its first push). The loser's claim is dropped, and so are the steps it took after it.
  @Test func aWorkerWhoseClaimLostKeepsNoStepOnTheTask() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    let workerA = try a.store(worker: "host-a:1")
    _ = try workerA.claimNext(only: "T-1")
    try workerA.advance("T-1", kind: "setup", detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    _ = try b.store(worker: "host-b:2").claimNext(only: "T-1")
    try b.taskqOK("sync")

    let result = try a.taskqOK("sync")
    #expect(
      result.stdoutText == """
        sync origin: received 1 commit(s), replayed 0 local operation(s), 2 dropped
          T-1: claim dropped: it is already 'planning' on the remote (claimed by host-b:2)
          T-1: setup dropped: it is claimed by host-b:2 on the remote

        """, "\(result.summary)")
    let record = try a.record("T-1")
    #expect(record.worker == "host-b:2")
    #expect(record.worktreePath == nil)
    try expectConverged(shared, a, b)
  }

  /// A recovers a task whose lease looked expired in its last fetched state, but the worker renewed it on
  /// the remote meanwhile: the recovery no longer holds and is dropped, and the worker keeps its task.
  @Test func aRecoveryOfATaskWhoseLeaseWasRenewedOnTheRemoteIsDropped() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    let worker = try b.store(worker: "host-b:2")
    _ = try worker.claimNext(only: "T-1", leaseSeconds: 1)
    try b.taskqOK("sync")
    try a.taskqOK("sync")
    usleep(2_200_000)
    try worker.renewLease("T-1", seconds: 600)
    try b.taskqOK("sync")

    #expect(try a.taskqOK("status").stdoutText.contains("STALE"))
    #expect(try a.taskqOK("recover").stdoutText.hasSuffix("recovered 1 task(s): T-1\n"))
    let result = try a.taskqOK("sync")
    #expect(
      result.stdoutText.contains("  T-1: recover dropped: its worker renewed the lease on the remote"),
      "\(result.summary)")
    let record = try a.record("T-1")
    #expect(record.status == .planning)
    #expect(record.worker == "host-b:2")
    try expectConverged(shared, a, b)
  }

  // MARK: status

  @Test func statusSaysAheadAndBehindTheLastFetchedRemoteState() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    #expect(try !a.taskqOK("status").stdoutText.contains("queue: "), "no remote state fetched yet")
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    #expect(try !a.taskqOK("status").stdoutText.contains("queue:"))

    try add(a, "T-2", shared)
    let ahead = try a.taskqOK("status").stdoutText
    #expect(ahead.hasPrefix("queue: 1 ahead of origin (as of the last fetch; run 'git taskq sync')\n"), "\(ahead)")

    try add(b, "T-3", shared)
    try b.taskqOK("cancel", "--id", "T-1")
    try b.taskqOK("sync")
    // A fetches as git would (what sync does first), without syncing.
    try a.git("fetch", "-q", "origin", "+refs/taskq/queue:refs/taskq/remotes/origin/queue")
    let both = try a.taskqOK("status").stdoutText
    #expect(both.hasPrefix("queue: 1 ahead of, 2 behind origin"), "\(both)")

    try a.taskqOK("sync")
    try b.taskqOK("sync")
    #expect(try !a.taskqOK("status").stdoutText.contains("queue:"))
    try b.taskqOK("cancel", "--id", "T-2")
    try b.taskqOK("sync")
    try a.git("fetch", "-q", "origin", "+refs/taskq/queue:refs/taskq/remotes/origin/queue")
    let behind = try a.taskqOK("status").stdoutText
    #expect(behind.hasPrefix("queue: 1 behind origin (as of the last fetch; run 'git taskq sync')\n"), "\(behind)")
  }

  // MARK: Bad situations

  /// One `error: …` line on stderr, a non-zero exit, nothing on stdout, and the local queue unchanged.
  func expectRefused(
    _ result: ProcessResult, _ machine: Machine, tip: String?, containing text: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    #expect(result.status == 1, "\(result.summary)", sourceLocation: sourceLocation)
    #expect(result.stdoutText == "", sourceLocation: sourceLocation)
    #expect(result.stderrLines.count == 1, "\(result.stderrText)", sourceLocation: sourceLocation)
    #expect(result.stderrText.hasPrefix("error: "), sourceLocation: sourceLocation)
    #expect(result.stderrText.contains(text), "\(result.stderrText)", sourceLocation: sourceLocation)
    #expect(try machine.queueTip() == tip, sourceLocation: sourceLocation)
  }

  @Test func noSuchRemote() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    try add(a, "T-1", shared)
    let tip = try a.queueTip()
    try expectRefused(
      try a.taskq("sync", "upstream"), a, tip: tip,
      containing: "no such remote 'upstream' (see 'git remote -v'; add one with 'git remote add upstream URL')")
    try a.git("config", "taskq.remote", "elsewhere")
    try expectRefused(try a.taskq("sync"), a, tip: tip, containing: "no such remote 'elsewhere'")
    #expect(try shared.queueTip() == nil)
  }

  @Test(arguments: ["path", "url"])
  func unreachableRemoteLeavesTheLocalQueueUsable(kind: String) throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let missing = kind == "path" ? shared.scratch.path + "/moved-away.git" : "file:///nonexistent"
    try a.git("remote", "add", "gone", missing)
    try add(a, "T-1", shared)
    let tip = try a.queueTip()
    let result = try a.taskq("sync", "gone")
    try expectRefused(result, a, tip: tip, containing: "cannot reach remote 'gone': ")
    #expect(result.stderrText.contains("the local queue is unchanged and still usable"), "\(result.stderrText)")
    #expect(try a.trackingTip("gone") == nil)
    try a.taskqOK("cancel", "--id", "T-1")
  }

  /// The remote refuses the queue's ref (here a pre-receive hook; elsewhere permissions or push rules):
  /// one error line at once, with the remote's words, not 25 attempts (6 s) that end in "other writers".
  @Test func aRemoteThatRefusesTheQueueSaysSoAtOnce() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    try shared.scratch.write(
      "remote.git/hooks/pre-receive", "#!/bin/sh\necho 'queue refs are read-only here' >&2\nexit 1\n",
      executable: true)
    try add(a, "T-1", shared)
    let tip = try a.queueTip()
    let result = try a.taskq("sync")
    try expectRefused(
      result, a, tip: tip, containing: "remote 'origin' refused refs/taskq/queue: pre-receive hook declined")
    #expect(result.stderrText.contains("queue refs are read-only here"), "\(result.stderrText)")
    #expect(try shared.queueTip() == nil)
  }

  /// A real `git daemon` on loopback that serves fetches but not pushes (no `--enable=receive-pack`): the
  /// push is a refusal with the server's words, not "cannot reach"; and once the daemon is gone, git's whole
  /// reason ("unable to connect to 127.0.0.1: …errno=Connection refused"), not its first half.
  @Test func aReadOnlyDaemonRefusesAndAStoppedOneIsUnreachable() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let port = Int.random(in: 20_000...40_000)
    let daemon = try ProcessGroup(
      "git",
      [
        "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1", "--port=\(port)",
        "--base-path=\(shared.scratch.path)", shared.scratch.path,
      ])
    #expect(Self.waitForPort(port), "git daemon did not listen on \(port)")
    try a.git("remote", "add", "daemon", "git://127.0.0.1:\(port)/remote.git")
    try add(a, "T-1", shared)
    let tip = try a.queueTip()
    let refused = try a.taskq("sync", "daemon")
    try expectRefused(
      refused, a, tip: tip,
      containing: "remote 'daemon' refused refs/taskq/queue: remote error: access denied or repository not exported")
    #expect(try shared.queueTip() == nil)

    daemon.signalGroup(SIGKILL)
    daemon.wait()
    let gone = try a.taskq("sync", "daemon")
    try expectRefused(gone, a, tip: tip, containing: "cannot reach remote 'daemon': unable to connect to 127.0.0.1: ")
    #expect(gone.stderrText.contains("Connection refused"), "\(gone.stderrText)")
  }

  /// ssh ends its lines with CR LF: the message keeps no carriage return.
  @Test func sshMessagesKeepNoCarriageReturn() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let ssh = try shared.scratch.write(
      "fake-ssh", "#!/bin/sh\nprintf 'ssh: connect to host far port 22: Connection refused\\r\\n' >&2\nexit 255\n",
      executable: true)
    try a.git("remote", "add", "far", "ssh://far.example.invalid/queue.git")
    try a.git("config", "core.sshCommand", ssh)
    try add(a, "T-1", shared)
    let result = try a.taskq("sync", "far")
    try expectRefused(
      result, a, tip: try a.queueTip(), containing: "cannot reach remote 'far': ssh: connect to host far port 22")
    #expect(!result.stderrText.contains("\r") && !result.stderrText.contains("\\u{d}"), "\(result.stderrText)")
  }

  /// Waits up to 10 s until something accepts connections on 127.0.0.1:`port`.
  static func waitForPort(_ port: Int) -> Bool {
    for _ in 0..<200 {
      if Loopback.isListening(port) { return true }
      usleep(50_000)
    }
    return false
  }

  /// The transport is git's own: an ssh command the user chose (`core.sshCommand`, `GIT_SSH`) is used, as
  /// `git fetch` would use it.
  @Test(arguments: ["core.sshCommand", "GIT_SSH"])
  func theUsersSSHCommandIsUsed(setting: String) throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let log = a.root + "/ssh.log"
    let ssh = try shared.scratch.write(
      "fake-ssh", "#!/bin/sh\necho \"$@\" >> '\(log)'\necho 'fake-ssh: no network here' >&2\nexit 255\n",
      executable: true)
    try a.git("remote", "add", "far", "ssh://git.example.invalid/queue.git")
    if setting == "GIT_SSH" { a.environment["GIT_SSH"] = ssh } else { try a.git("config", "core.sshCommand", ssh) }
    try add(a, "T-1", shared)
    let tip = try a.queueTip()
    let result = try a.taskq("sync", "far")
    try expectRefused(result, a, tip: tip, containing: "cannot reach remote 'far': fake-ssh: no network here")
    let calls = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
    #expect(calls.contains("git.example.invalid"), "\(calls)")
  }

  /// A fresh clone does not fetch refs/taskq/queue, so its first add starts a queue of its own: its first
  /// sync replays it onto the remote's like any other replay. An id taken on both sides is dropped, with
  /// the command that re-adds it under another id; nothing else is lost.
  @Test func aCloneThatAddedBeforeItsFirstSyncConverges() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("add", "--id", "T-2", "--repo", shared.target, "--task", "B's own task")
    try b.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "B's idea of T-1")
    try b.taskqOK("cancel", "--id", "T-2")
    #expect(try b.queueTip() != nil)

    let result = try b.taskq("sync")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("replayed 2 local operation(s), 1 dropped"), "\(result.stdoutText)")
    let drop = try #require(result.stdoutText.components(separatedBy: "\n").first { $0.contains("T-1: add dropped") })
    #expect(drop.contains("a task 'T-1' already exists on the remote"), "\(drop)")
    #expect(try shared.queueTip() == b.queueTip())
    #expect(try b.record("T-1").status == .todo)
    #expect(try b.record("T-2").status == .cancelled)
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates().isEmpty)

    // The hint works: the dropped task's file is still in the dropped commit.
    let show = try #require(drop.range(of: "git show ")).upperBound
    let object = String(drop[show...].prefix { $0 != " " })
    let body = try b.git("show", object)
    #expect(body.contains("B's idea of T-1"), "\(body)")
    let readded = try b.taskq(
      ["add", "--id", "T-1-2", "--repo", shared.target, "--task-file", "-"], input: body + "\n")
    #expect(readded.status == 0, "\(readded.summary)")
    try b.taskqOK("sync")
    try a.taskqOK("sync")
    #expect(Set(try a.records().map(\.id)) == ["T-1", "T-2", "T-1-2"])
  }

  /// A fresh clone whose remote's queue was never fetched: the first `add` (or `status`) says once that
  /// `git taskq sync` shares the queue; nothing more after that, and nothing in a repository without remotes.
  @Test func aFreshCloneIsToldOnceThatSyncSharesTheQueue() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let first = try a.taskq(["add", "--id", "T-1", "--repo", shared.target, "--task", "one"])
    #expect(first.status == 0, "\(first.summary)")
    #expect(
      first.stderrText.contains("hint: the queue is not shared with 'origin' yet: 'git taskq sync'"),
      "\(first.stderrText)")
    let second = try a.taskq(["add", "--id", "T-2", "--repo", shared.target, "--task", "two"])
    #expect(!second.stderrText.contains("hint:"), "\(second.stderrText)")
    #expect(!(try a.taskq("status")).stderrText.contains("hint:"))

    let b = try shared.machine("B")
    try b.taskqOK("sync")
    #expect(!(try b.taskq("status")).stderrText.contains("hint:"))
    let alone = try ScratchRepository()
    let result = try alone.taskq("add", "--id", "T-1", "--task", "no remote here")
    #expect(result.status == 0 && !result.stderrText.contains("hint:"), "\(result.summary)")
  }

  /// Three clones add at once against a remote that has no queue yet, each syncing as it goes: every
  /// acknowledged add ends on the remote, in one linear history.
  @Test func threeClonesStartingTheirOwnQueuesAllConverge() throws {
    let shared = try SharedRemote()
    let machines = try ["A", "B", "C"].map { try shared.machine($0) }
    let target = shared.target
    let acknowledged = Mutex<[String]>([])
    ConcurrencyTests.onThreads(3) { index in
      let machine = machines[index]
      for n in 1...8 {
        let id = "\(machine.name)-\(n)"
        if (try? machine.taskq("add", "--id", id, "--repo", target, "--task", "task \(id)"))?.status == 0 {
          acknowledged.withLock { $0.append(id) }
        }
        if n % 3 == 0 { _ = try? machine.taskq("sync") }
      }
    }
    for _ in 0..<2 {
      for machine in machines { try machine.taskqOK("sync") }
    }
    let onRemote = Set(try shared.records().map(\.id))
    let acked = Set(acknowledged.withLock { $0 })
    #expect(acked.count == 24)
    #expect(acked.subtracting(onRemote).isEmpty, "stranded: \(acked.subtracting(onRemote).sorted())")
    for machine in machines { #expect(try machine.queueTip() == shared.queueTip()) }
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates().isEmpty)
  }

  /// The remote's queue was written by a newer git-taskq (crafted here with the git CLI on top of the
  /// shared queue and pushed plainly).
  @Test(arguments: [false, true])
  func aRemoteQueueOfANewerFormatIsRefused(localChanges: Bool) throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    try b.taskqOK("sync")

    let index = b.root + "/crafted-index"
    let env = ["GIT_INDEX_FILE": index]
    try Git.run(["read-tree", "refs/taskq/queue"], in: b.path, environment: env)
    let blob = try ProcessRunner.run(
      ProcessSpec(
        "git", ["hash-object", "-w", "--stdin"], directory: b.path,
        input: Array("{\"format\": 2, \"next_seq\": 2}\n".utf8), timeout: 30))
    let blobID = blob.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    try Git.run(["update-index", "--cacheinfo", "100644,\(blobID),taskq.json"], in: b.path, environment: env)
    let tree = try Git.run(["write-tree"], in: b.path, environment: env)
    let commit = try b.git("commit-tree", tree, "-p", "refs/taskq/queue", "-m", "format 2")
    try b.git("push", "-q", "origin", "\(commit):refs/taskq/queue")

    if localChanges { try a.taskqOK("cancel", "--id", "T-1") }
    let tip = try a.queueTip()
    try expectRefused(
      try a.taskq("sync"), a, tip: tip,
      containing: "the queue uses storage format 2, this git-taskq reads up to 1 (upgrade git-taskq)")
    #expect(try shared.queueTip() == commit)
    #expect(try a.taskqOK("status").stdoutText.contains("T-1"))
  }

  // MARK: Offline first

  /// With the remote gone, every queue command works on the local queue; `sync` says the remote cannot be
  /// reached; once it is back, `sync` publishes everything.
  @Test func everyQueueCommandWorksWithTheRemoteMissing() throws {
    let shared = try SharedRemote(fileURL: false)
    let a = try shared.machine("A")
    try add(a, "T-1", shared)
    try a.taskqOK("sync")
    let away = shared.scratch.path + "/away.git"
    try FileManager.default.moveItem(atPath: shared.bare, toPath: away)

    try a.runDemoAgentLocally()
    try add(a, "T-2", shared)
    try add(a, "T-3", shared)
    try a.taskqOK("status")
    try a.taskqOK("status", "--json")
    try a.taskqOK("show", "--id", "T-1")
    try a.taskqOK("log")
    try a.taskqOK("config")
    try a.taskqOK("cancel", "--id", "T-3")
    try a.taskqOK("remove", "--id", "T-3")
    try a.taskqOK("run", "--max-parallel", "2", timeout: 90)
    #expect(try a.record("T-1").status == .review)
    try a.taskqOK("approve", "--id", "T-1")
    try a.taskqOK("recover")
    try a.taskqOK("cleanup")
    try a.taskqOK("fsck")

    let tip = try a.queueTip()
    let offline = try a.taskq("sync")
    try expectRefused(offline, a, tip: tip, containing: "cannot reach remote 'origin'")
    #expect(try a.taskqOK("status").stdoutText.contains("queue: "), "ahead of the last fetched state")

    try FileManager.default.moveItem(atPath: away, toPath: shared.bare)
    let back = try a.taskqOK("sync")
    #expect(back.stdoutText.hasPrefix("sync origin: pushed "), "\(back.summary)")
    try expectConverged(shared, a)
    #expect(try shared.records().map(\.status) == [.done, .review])
  }
}
