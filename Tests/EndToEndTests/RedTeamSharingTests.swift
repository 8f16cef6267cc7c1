import Foundation
import Git
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Breaks of the queue sharing (issue 13) found by attacking it as a careless teammate or a hostile remote
/// would: each test fails until the break is fixed.
@Suite struct RedTeamSharingTests {
  /// The remote's `task.md` of `id`.
  static func remoteTaskFile(_ shared: SharedRemote, _ id: String) throws -> String {
    try Git.run(["show", "\(Layout.refName):\(Layout.taskDirectory(id))/task.md"], in: shared.bare)
  }

  /// docs/sharing.md says `git fetch origin refs/taskq/queue:refs/taskq/queue` works too. A clone that took
  /// the queue that way has no tracking ref, so `approve --merge` (no remote given, none configured) treats
  /// the queue as never shared and merges at once; the task had been cancelled on the remote, so the next
  /// sync drops the approve and `main` keeps a cancelled task's work.
  @Test func aQueueFetchedByHandDoesNotMergeAnApproveTheRemoteDrops() throws {
    let (shared, a, b) = try ApproveMergeTests.sharedReview()
    // B's queue is A's, taken by hand as the docs allow (no `git taskq sync` ever ran on B).
    try b.git("update-ref", "-d", QueueSync.trackingRef(for: "origin"))
    try b.git("update-ref", "-d", Layout.refName)
    try b.git("fetch", "-q", "origin", "\(Layout.refName):\(Layout.refName)")
    #expect(try b.trackingTip() == nil)
    #expect(try b.record("T-1").status == .review)
    // Meanwhile A cancels the task and publishes it.
    try a.taskqOK("cancel", "--id", "T-1")
    try a.taskqOK("sync")
    let main = try ApproveMergeTests.main(shared)
    let result = try b.taskq("approve", "--id", "T-1", "--merge")
    _ = try b.taskq("sync")
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .cancelled)
    #expect(
      try ApproveMergeTests.main(shared) == main,
      "main got the work of a task cancelled on the remote: \(result.summary)")
  }

  /// The remote removed T-1 and added another task under the same id, which reached review there. A's
  /// approve of its own (old) T-1, waiting unpublished, replays onto the new task: same id, same attempt,
  /// same state, so it applies. The new task's directory is overwritten with the old one (its task text
  /// lost on the remote) and it becomes `done` without review, and A merges.
  @Test func anUnpublishedApproveDoesNotApproveAnotherTaskAddedUnderTheSameID() throws {
    let (shared, a, b) = try ApproveMergeTests.sharedReview()
    let hook = try shared.scratch.write("remote.git/hooks/pre-receive", "#!/bin/sh\nexit 1\n", executable: true)
    let refused = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(refused.status == 1, "\(refused.summary)")
    try FileManager.default.removeItem(atPath: hook)
    // B: the old T-1 goes, a new T-1 comes and is run to review.
    try b.taskqOK("remove", "--id", "T-1")
    try b.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "Something else entirely")
    let store = try b.store(worker: "worker-b")
    for step in ScratchRepository.path(to: .review) { try store.transition("T-1", to: step, command: "test") }
    try b.taskqOK("sync")
    #expect(try Self.remoteTaskFile(shared, "T-1").contains("Something else entirely"))
    let main = try ApproveMergeTests.main(shared)

    let again = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(again.status == 1, "\(again.summary)")
    #expect(try Self.remoteTaskFile(shared, "T-1").contains("Something else entirely"))
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .review)
    #expect(try ApproveMergeTests.main(shared) == main)
  }

  /// The remote's `refs/taskq/queue` is not a queue commit: a blob, or a commit of the code (someone ran
  /// `git push origin main:refs/taskq/queue`). `sync` must say that the *remote's* queue is wrong, in one
  /// line. Today it blames the local queue: "refs/taskq/queue points at …, which cannot be read (object
  /// missing): run 'git taskq fsck --repair'" (fsck then finds nothing to repair) or "the queue is damaged:
  /// taskq.json is missing at … (run 'git fsck' and see 'git log refs/taskq/queue')".
  @Test(arguments: ["blob", "code commit"])
  func aRemoteQueueRefThatIsNoQueueIsNamedAsTheRemotes(_ kind: String) throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    try a.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "Do it")
    try a.taskqOK("sync")
    let bogus =
      kind == "blob"
      ? try Git.run(["hash-object", "-w", try shared.scratch.write("junk.txt", "junk\n")], in: shared.bare)
      : try Git.run(["rev-parse", "main"], in: shared.bare)
    try Git.run(["update-ref", Layout.refName, bogus], in: shared.bare)
    try a.taskqOK("add", "--id", "T-2", "--repo", shared.target, "--task", "Do more")
    let local = try a.queueTip()
    let sync = try a.taskq("sync")
    #expect(sync.status == 1, "\(sync.summary)")
    #expect(sync.stderrLines.count == 1, "\(sync.summary)")
    #expect(sync.stderrText.contains("'origin'"), "the error does not name the remote: \(sync.summary)")
    #expect(
      !sync.stderrText.contains("fsck"), "the error sends the user to repair a sound local queue: \(sync.summary)")
    #expect(try a.queueTip() == local)
    #expect(try a.taskq("fsck").status == 0)
  }

  /// "No operation disappears without a line saying so" (docs/sharing.md) holds for `sync` only: the syncs
  /// inside `approve --merge --remote`, `recover --remote` and `run --remote` drop the user's other local
  /// operations without naming them (Approval.swift looks only for its own approve's drop; Recover.swift
  /// and TaskRunner.claim discard the report; Run.swift prints the summary's count, not the lines).
  @Test(arguments: [
    ["approve", "--id", "T-1", "--merge", "--remote", "origin"], ["recover", "--remote", "origin"],
    ["run", "--remote", "origin"],
  ])
  func aCommandThatSyncsNamesEveryOperationItsSyncDrops(_ command: [String]) throws {
    let (shared, a, b) = try ApproveMergeTests.sharedReview()
    try a.git("config", "taskq.runtime", "local")
    try a.git("config", "taskq.agentProgram", FakeWorld.demoAgent)
    try a.taskqOK("add", "--id", "T-2", "--repo", shared.target, "--task", "Another feature")
    let store = try a.store(worker: "worker-a")
    for step in ScratchRepository.path(to: .review) { try store.transition("T-2", to: step, command: "test") }
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    // B approves T-2 and publishes; A, not knowing, cancels it.
    try b.taskqOK("approve", "--id", "T-2")
    try b.taskqOK("sync")
    try a.taskqOK("cancel", "--id", "T-2")
    let result = try a.taskq(command)
    #expect(try a.record("T-2").status == .done, "\(result.summary)")
    let output = result.stdoutText + result.stderrText
    #expect(output.contains("T-2: cancel dropped"), "\(command.joined(separator: " ")): \(result.summary)")
  }

  /// Two clones edit the same todo task: B changes the body and publishes; A, not synced since, sets a
  /// priority. A's sync replays its edit (the task is still `todo`, the state the edit started from) and
  /// brings A's whole directory, so B's published body is reverted without a line ("replayed 1 local
  /// operation(s), pushed"). An acknowledged operation is lost: either both edits survive, or A's is
  /// dropped and named.
  @Test func aReplayedEditDoesNotSilentlyRevertAnEditPublishedMeanwhile() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try a.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "Do it")
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    let body = try shared.scratch.write(
      "edit-body", "#!/bin/sh\necho 'Also write tests.' >> \"$1\"\n", executable: true)
    let priority = try shared.scratch.write(
      "edit-priority", "#!/bin/sh\nsed -i 's/^branch: .*/&\\npriority: 7/' \"$1\"\n", executable: true)
    let edited = try b.taskq(["edit", "--id", "T-1"], environment: ["GIT_EDITOR": body])
    #expect(edited.status == 0, "\(edited.summary)")
    try b.taskqOK("sync")
    #expect(try Self.remoteTaskFile(shared, "T-1").contains("Also write tests."))
    let other = try a.taskq(["edit", "--id", "T-1"], environment: ["GIT_EDITOR": priority])
    #expect(other.status == 0 && other.stdoutText.contains("priority"), "\(other.summary)")
    let sync = try a.taskqOK("sync")
    let kept = try Self.remoteTaskFile(shared, "T-1").contains("Also write tests.")
    #expect(
      kept || sync.stdoutText.contains("T-1: edit dropped"),
      "B's published edit was reverted without a line: \(sync.stdoutText)")
  }

  /// The server takes the approve and dies before it answers (a reference-transaction hook kills
  /// receive-pack once the queue ref is committed, as a crash or a cut connection would). `approve --merge`
  /// then says "the approve is not published", which is false: the remote holds `review → done`. Nothing is
  /// merged (safe), but the one line must not assert what it cannot know.
  @Test func anApproveWhoseAnswerIsLostIsNotCalledUnpublished() throws {
    let (shared, a, _) = try ApproveMergeTests.sharedReview()
    _ = try shared.scratch.write(
      "remote.git/hooks/reference-transaction",
      "#!/bin/sh\n[ \"$1\" = committed ] && grep -q taskq/queue && kill -9 $PPID\nexit 0\n", executable: true)
    let result = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(result.status == 1, "\(result.summary)")
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .done)
    #expect(
      !result.stderrText.contains("the approve is not published"),
      "the remote holds the approve, the line says it does not: \(result.stderrText)")
  }

  /// A imports three tasks (one `import` commit, Taskq-Task T-1, T-2, T-3) while B, unaware, adds a T-1
  /// of its own and publishes first. A's sync drops the whole import because its first task exists on the
  /// remote (QueueSync.conflict looks at `operation.task` only): T-2 and T-3, which nobody else has, vanish
  /// from A's queue and never reach the remote, and the one drop line names only T-1 (with the command to
  /// re-add T-1). Expected: T-2 and T-3 replayed (only T-1 left out and named), or each named.
  ///
  /// When the clash is on a later task (B adds T-2), the import applies and `apply` skips T-2 without a
  /// line: A's imported T-2 is replaced by B's, where a plain `add` would have been named with the command
  /// to keep it.
  @Test(arguments: ["T-1", "T-2"])
  func anImportWhoseTaskExistsOnTheRemoteLosesTasksSilently(_ clash: String) throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    var lines = ""
    for id in ["T-1", "T-2", "T-3"] {
      _ = try shared.scratch.write("python/queue/tasks/\(id).md", "Task \(id) from the old queue\n")
      lines +=
        "{\"id\": \"\(id)\", \"repo\": \"\(shared.target)\", \"base\": \"main\", \"status\": \"todo\", \"port\": 0, \"created_at\": \"2026-11-29T12:51:10+00:00\"}\n"
    }
    _ = try shared.scratch.write("python/queue/tasks.jsonl", lines)
    try a.taskqOK("add", "--id", "T-0", "--repo", shared.target, "--task", "Zero")
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try b.taskqOK("add", "--id", clash, "--repo", shared.target, "--task", "B's own \(clash)")
    try b.taskqOK("sync")
    try a.taskqOK("import", "--from", shared.scratch.path + "/python")
    let sync = try a.taskqOK("sync")
    let remote = Set(try shared.records().map(\.id))
    for id in ["T-1", "T-2", "T-3"] where id != clash {
      #expect(
        remote.contains(id) || sync.stdoutText.contains(id),
        "\(id) was imported on A and is now nowhere, with no line naming it: \(sync.stdoutText)")
    }
    #expect(sync.stdoutText.contains(clash), "A's imported \(clash) was left out without a line: \(sync.stdoutText)")
  }

  /// A remote's record is untrusted, and its `worker` may hold a line break. When the remote drops A's
  /// approve because the task is held there, the reason names that worker ("… (claimed by <worker>)") and
  /// `approve --merge` prints it through `TerminalText.block`, which keeps line breaks: the remote writes a
  /// second line of its choosing on A's terminal (here a fake success). The error must stay one line.
  @Test func aRemoteWorkerNameCannotAddALineToTheApprovesError() throws {
    let (shared, a, b) = try ApproveMergeTests.sharedReview()
    let hook = try shared.scratch.write("remote.git/hooks/pre-receive", "#!/bin/sh\nexit 1\n", executable: true)
    #expect(try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin").status == 1)
    try FileManager.default.removeItem(atPath: hook)
    try b.taskqOK("remove", "--id", "T-1")
    try b.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "Held elsewhere")
    let evil = try b.store(worker: "w9:1)\nT-1: review → done (published to 'origin'); merged into 'main' (")
    _ = try evil.claimNext(only: "T-1", leaseSeconds: 600)
    try b.taskqOK("sync")
    let result = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stderrLines.count == 1, "the remote's worker name added a line: \(result.stderrText)")
  }

  /// A task added without `--repo` runs in the clone of whichever machine claims it, so its branch exists
  /// only there. On another machine, `approve --merge --remote` says only "branch 'task/T-1' does not exist
  /// in '<this clone>' (nothing to merge)": not that the task ran on B (its record's worktree_path says
  /// where), nor what to do. A plain `approve` there prints "merge it: git -C <this clone> merge task/T-1"
  /// and a push of that branch, commands that cannot work.
  @Test func approvingATaskThatRanOnAnotherMachineSaysWhereItsBranchIs() throws {
    let shared = try SharedRemote()
    let (a, b) = (try shared.machine("A"), try shared.machine("B"))
    for machine in [a, b] {
      try machine.runDemoAgentLocally()
    }
    try a.taskqOK("add", "--id", "T-1", "--task", "Write the notes of T-1")
    try a.taskqOK("sync")
    let run = try b.taskq("run", "--remote", "origin", timeout: 90)
    #expect(run.status == 0, "\(run.summary)")
    try a.taskqOK("sync")
    let record = try a.record("T-1")
    #expect(record.status == .review)
    let ranAt = try #require(record.worktreePath)
    #expect(try a.git("branch", "--list", "task/T-1").isEmpty)

    let merge = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(merge.status == 1, "\(merge.summary)")
    #expect(merge.stderrLines.count == 1, "\(merge.summary)")
    #expect(
      merge.stderrText.contains(ranAt) || merge.stderrText.contains("another machine"),
      "the error does not say the task ran elsewhere (\(ranAt)): \(merge.stderrText)")
    let plain = try a.taskq("approve", "--id", "T-1")
    #expect(plain.status == 0, "\(plain.summary)")
    #expect(
      !plain.stdoutText.contains("merge task/T-1"),
      "plain approve names a merge of a branch this clone does not have: \(plain.stdoutText)")
  }

  /// Two machines with the same host name (VMs from one image, containers given one name). A runs T-1;
  /// B runs `recover --remote origin`. With a remote, the lease decides (TaskRunner.recoverLostWorkers says
  /// "Across machines two hosts may share a name; there the lease decides"), and `run --remote` follows that;
  /// but `recover` builds its runner with `RunOptions()` (no remote), so B checks A's pid on B, finds no such
  /// process, and fails A's live task as "worker lost" while its lease runs.
  @Test func recoverWithARemoteDoesNotFailALiveTaskOfAnotherHostOfTheSameName() throws {
    try #require(canSetHostName, "needs 'unshare --uts' to give the machines one host name")
    let shared = try SharedRemote()
    let (a, b) = (try shared.machine("A"), try shared.machine("B"))
    for machine in [a, b] {
      machine.hostname = "box"
      try machine.runDemoAgentLocally()
    }
    try a.taskqOK("add", "--id", "T-1", "--task", "Write the notes of T-1")
    try a.taskqOK("sync")
    a.environment["DEMO_AGENT_DELAY"] = "20"
    let run = try a.start("run", "--remote", "origin", timeout: 60)
    defer {
      // Interrupted, `run` stops its agent too.
      run.signal(SIGINT)
      _ = try? run.wait(timeout: 20)
    }
    try waitUntil("A's claim of T-1 on the remote", timeout: 20) {
      try shared.records().first { $0.id == "T-1" }?.status == .planning
    }
    // B is another computer: its own host name space and its own processes (A's pid is not there).
    let recover = try ProcessRunner.run(
      ProcessSpec(
        "unshare",
        [
          "--uts", "--pid", "--fork", "--mount-proc", "/bin/sh", "-c", "hostname box && exec \"$@\"", "box",
          Taskq.binary, "recover", "--remote", "origin",
        ], environment: b.runEnvironment(), inheritEnvironment: false, directory: b.path, timeout: 60))
    #expect(recover.status == 0, "\(recover.summary)")
    #expect(
      try shared.records().first { $0.id == "T-1" }?.status == .planning,
      "B failed A's live task: \(recover.stdoutText)")
  }
}
