import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `git taskq approve`: the printed merge and push commands, and `--merge`, which merges `task/<id>` into
/// its base only when that is a fast-forward or a clean merge, and approves only when it merged.
@Suite struct ApproveMergeTests {
  /// A repository on `main` with task `T-1` in review and a branch `task/T-1` one commit ahead of `main`
  /// (adding `feature.txt`); `main` stays checked out.
  static func reviewed() throws -> ScratchRepository {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    try repository.drive("T-1", to: .review)
    try repository.git("checkout", "-q", "-b", "task/T-1")
    try "feature\n".write(toFile: repository.path + "/feature.txt", atomically: true, encoding: .utf8)
    try repository.git("add", "feature.txt")
    try repository.git("commit", "-q", "-m", "T-1: add the feature")
    try repository.git("checkout", "-q", "main")
    return repository
  }

  /// Commits `text` to `file` on the checked-out branch.
  static func commit(_ repository: ScratchRepository, _ file: String, _ text: String, _ message: String) throws {
    try text.write(toFile: repository.path + "/" + file, atomically: true, encoding: .utf8)
    try repository.git("add", file)
    try repository.git("commit", "-q", "-m", message)
  }

  static func status(_ repository: ScratchRepository, _ id: String = "T-1") throws -> TaskStatus? {
    try repository.store().snapshot().record(id)?.status
  }

  /// Work the agent left uncommitted is not on the branch: approve refuses, naming it, unless --force.
  @Test(arguments: [false, true])
  func uncommittedWorkInTheTasksWorktreeIsRefusedWithoutForce(_ merge: Bool) throws {
    let repository = try Self.reviewed()
    let worktree = repository.directory.path + "/wt-T-1"
    try repository.git("worktree", "add", "-q", worktree, "task/T-1")
    let store = try repository.store()
    _ = try store.update { tx in
      var record = try tx.existing("T-1")
      record.worktreePath = worktree
      tx.put(record)
      tx.operation = Operation(kind: "setup", task: "T-1", from: .review, to: .review, worker: tx.worker)
      return record
    }
    try "draft\n".write(toFile: worktree + "/notes.txt", atomically: true, encoding: .utf8)
    let tip = try repository.queueTip()
    let refused = try repository.taskq(["approve", "--id", "T-1"] + (merge ? ["--merge"] : []))
    #expect(refused.status == 1)
    #expect(
      refused.stderrText.hasPrefix(
        "error: the worktree of task 'T-1' has uncommitted or untracked changes that are not on 'task/T-1': 'notes.txt'"
      ),
      "\(refused.stderrText)")
    #expect(try repository.queueTip() == tip)
    #expect(try Self.status(repository) == .review)
    let forced = try repository.taskq(["approve", "--id", "T-1", "--force"] + (merge ? ["--merge"] : []))
    #expect(forced.status == 0, "\(forced.summary)")
    #expect(try Self.status(repository) == .done)
  }

  @Test func plainApprovePrintsHowToMergeAndPush() throws {
    let repository = try Self.reviewed()
    try repository.git("remote", "add", "origin", repository.directory.path + "/nowhere.git")
    let result = try repository.taskqOK("approve", "--id", "T-1")
    #expect(
      result.stdoutText == """
        T-1: review → done
        merge it:  git -C \(repository.path) merge task/T-1
        push it:   git -C \(repository.path) push -u origin task/T-1

        """)
    #expect(try Self.status(repository) == .done)
    // Nothing was merged.
    #expect(try repository.git("rev-parse", "main") != (try repository.git("rev-parse", "task/T-1")))
  }

  @Test func plainApproveSaysToSwitchWhenTheBaseIsNotCheckedOut() throws {
    let repository = try Self.reviewed()
    try repository.git("checkout", "-q", "-b", "elsewhere")
    let result = try repository.taskqOK("approve", "--id", "T-1")
    #expect(
      result.stdoutText.contains(
        "merge it:  git -C \(repository.path) switch main && git -C \(repository.path) merge task/T-1\n"))
    #expect(result.stdoutText.contains("push it:   git -C \(repository.path) push -u <remote> task/T-1\n"))
  }

  @Test func fastForwardOfTheCheckedOutBaseUpdatesTheWorkingTree() throws {
    let repository = try Self.reviewed()
    let tip = try repository.git("rev-parse", "task/T-1")
    let result = try repository.taskqOK("approve", "--id", "T-1", "--merge")
    #expect(
      result.stdoutText.range(
        of:
          #"^T-1: review → done; merged 1 commit\(s\) of 'task/T-1' into 'main' \(fast-forward, [0-9a-f]{7}\.\.[0-9a-f]{7}\)\n$"#,
        options: .regularExpression) != nil, "\(result.stdoutText)")
    #expect(try repository.git("rev-parse", "main") == tip)
    #expect(FileManager.default.fileExists(atPath: repository.path + "/feature.txt"))
    #expect(try repository.git("status", "--porcelain").isEmpty)
    #expect(try Self.status(repository) == .done)
    #expect(
      try repository.git("log", "-1", "--format=%s", "refs/taskq/queue")
        == "T-1: review → done (merged into main, fast-forward)")
  }

  @Test func fastForwardOfABaseNobodyHasCheckedOutMovesOnlyTheRef() throws {
    let repository = try Self.reviewed()
    try repository.git("checkout", "-q", "-b", "elsewhere")
    let tip = try repository.git("rev-parse", "task/T-1")
    let result = try repository.taskqOK("approve", "--id", "T-1", "--merge")
    #expect(result.stdoutText.contains("merged 1 commit(s) of 'task/T-1' into 'main' (fast-forward, "))
    #expect(try repository.git("rev-parse", "main") == tip)
    // The working tree (on 'elsewhere') is untouched.
    #expect(try repository.git("symbolic-ref", "--short", "HEAD") == "elsewhere")
    #expect(!FileManager.default.fileExists(atPath: repository.path + "/feature.txt"))
    #expect(try repository.git("reflog", "-1", "--format=%gs", "main").contains("git taskq approve --merge"))
    #expect(try Self.status(repository) == .done)
  }

  @Test func cleanMergeMakesAMergeCommit() throws {
    let repository = try Self.reviewed()
    try Self.commit(repository, "other.txt", "other\n", "meanwhile on main")
    let result = try repository.taskqOK("approve", "--id", "T-1", "--merge")
    #expect(result.stdoutText.contains("merged 1 commit(s) of 'task/T-1' into 'main' (merge commit, "))
    #expect(try repository.git("rev-list", "--parents", "-n", "1", "main").split(separator: " ").count == 3)
    #expect(try repository.git("merge-base", "--is-ancestor", "task/T-1", "main").isEmpty)
    #expect(FileManager.default.fileExists(atPath: repository.path + "/feature.txt"))
    #expect(try Self.status(repository) == .done)
  }

  @Test func conflictingMergeIsRefusedBeforeAnythingChanges() throws {
    let repository = try Self.reviewed()
    try repository.git("checkout", "-q", "task/T-1")
    try Self.commit(repository, "README.md", "theirs\n", "T-1 edits the readme")
    try repository.git("checkout", "-q", "main")
    try Self.commit(repository, "README.md", "ours\n", "main edits the readme")
    let main = try repository.git("rev-parse", "main")
    let queue = try repository.queueTip()
    let result = try repository.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    // Found by a trial merge (`git merge-tree`) before anything changes: no merge to abort.
    #expect(
      result.stderrText
        == "error: merging 'task/T-1' into 'main' conflicts in 'README.md'; resolve it by hand: git -C \(repository.path) merge task/T-1, then 'git taskq approve --id T-1'\n",
      "\(result.stderrText)")
    #expect(try repository.git("rev-parse", "main") == main)
    #expect(try repository.git("status", "--porcelain").isEmpty)
    #expect(!FileManager.default.fileExists(atPath: repository.path + "/.git/MERGE_HEAD"))
    #expect(try repository.queueTip() == queue)
    #expect(try Self.status(repository) == .review)
  }

  @Test func uncommittedChangesInTheBasesWorkingTreeAreRefused() throws {
    let repository = try Self.reviewed()
    try "local edit\n".write(toFile: repository.path + "/README.md", atomically: true, encoding: .utf8)
    let main = try repository.git("rev-parse", "main")
    let result = try repository.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    #expect(
      result.stderrText
        == "error: 'main' is checked out in '\(repository.path)' with uncommitted changes ('README.md'); commit or stash them, or merge by hand: git -C \(repository.path) merge --ff-only task/T-1, then 'git taskq approve --id T-1'\n"
    )
    #expect(try repository.git("rev-parse", "main") == main)
    #expect(try String(contentsOfFile: repository.path + "/README.md", encoding: .utf8) == "local edit\n")
    #expect(try Self.status(repository) == .review)
  }

  @Test func divergedBaseThatIsNotCheckedOutIsRefused() throws {
    let repository = try Self.reviewed()
    try Self.commit(repository, "other.txt", "other\n", "meanwhile on main")
    try repository.git("checkout", "-q", "-b", "elsewhere")
    let main = try repository.git("rev-parse", "main")
    let result = try repository.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    #expect(result.stderrText.contains("'task/T-1' and 'main' have diverged"))
    #expect(
      result.stderrText.contains("git -C \(repository.path) switch main && git -C \(repository.path) merge task/T-1"))
    #expect(try repository.git("rev-parse", "main") == main)
    #expect(try Self.status(repository) == .review)
  }

  @Test func baseCheckedOutInALinkedWorktreeIsRefused() throws {
    let repository = try Self.reviewed()
    try repository.git("checkout", "-q", "-b", "elsewhere")
    let linked = repository.directory.path + "/linked"
    try repository.git("worktree", "add", "-q", linked, "main")
    let main = try repository.git("rev-parse", "main")
    let result = try repository.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    #expect(
      result.stderrText.contains("'main' is checked out in the linked worktree '\(linked)'"), "\(result.stderrText)")
    #expect(result.stderrText.contains("git -C \(linked) merge --ff-only task/T-1"))
    #expect(try repository.git("rev-parse", "main") == main)
    #expect(try Self.status(repository) == .review)
  }

  @Test func alreadyMergedBranchIsApproved() throws {
    let repository = try Self.reviewed()
    try repository.git("merge", "-q", "--ff-only", "task/T-1")
    let result = try repository.taskqOK("approve", "--id", "T-1", "--merge")
    #expect(
      result.stdoutText == "T-1: review → done; 'task/T-1' was already merged into 'main' (nothing new to merge)\n")
    #expect(try Self.status(repository) == .done)
  }

  @Test func missingBranchIsRefused() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    try repository.drive("T-1", to: .review)
    let result = try repository.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    #expect(result.stderrText == "error: branch 'task/T-1' does not exist in '\(repository.path)' (nothing to merge)\n")
    #expect(try Self.status(repository) == .review)
  }

  @Test func aTaskNotInReviewIsNeitherMergedNorApproved() throws {
    let repository = try Self.reviewed()
    try repository.store().cancel("T-1")
    let main = try repository.git("rev-parse", "main")
    let result = try repository.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    #expect(result.stderrText == "error: cannot approve task 'T-1': it is 'cancelled' (approve needs 'review')\n")
    #expect(try repository.git("rev-parse", "main") == main)
  }

  @Test func unknownTaskIsNotFound() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("approve", "--id", "T-9", "--merge")
    #expect(result.status == 1)
    #expect(result.stderrText == "error: task 'T-9' not found (see 'git taskq status')\n")
  }

  @Test func aTaskAlreadyDoneIsMergedWithoutASecondApprove() throws {
    let repository = try Self.reviewed()
    try repository.taskqOK("approve", "--id", "T-1")
    let queue = try repository.queueTip()
    let result = try repository.taskqOK("approve", "--id", "T-1", "--merge")
    #expect(
      result.stdoutText.hasPrefix("T-1: already done; merged 1 commit(s) of 'task/T-1' into 'main' (fast-forward, "))
    #expect(try repository.git("rev-parse", "main") == (try repository.git("rev-parse", "task/T-1")))
    #expect(try repository.queueTip() == queue)
  }

  @Test func remoteWithoutMergeIsAUsageError() throws {
    let repository = try Self.reviewed()
    let result = try repository.taskq("approve", "--id", "T-1", "--remote", "origin")
    #expect(result.status == 64, "\(result.summary)")
    #expect(result.stderrText.contains("--remote goes with --merge"), "\(result.stderrText)")
    #expect(try Self.status(repository) == .review)
  }

  // MARK: With a remote: the merge follows the published approve

  /// Clones A and B of a shared remote, both with task `T-1` (repo: the shared target) in review, and the
  /// target's `task/T-1` one commit ahead of its `main`, which is checked out.
  static func sharedReview() throws -> (SharedRemote, Machine, Machine) {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try a.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "Add the feature")
    let store = try a.store(worker: "worker-a")
    for step in ScratchRepository.path(to: .review) { try store.transition("T-1", to: step, command: "test") }
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    try Git.run(["checkout", "-q", "-b", "task/T-1"], in: shared.target)
    try "feature\n".write(toFile: shared.target + "/feature.txt", atomically: true, encoding: .utf8)
    try Git.run(["add", "feature.txt"], in: shared.target)
    try Git.run(["commit", "-q", "-m", "T-1: add the feature"], in: shared.target)
    try Git.run(["checkout", "-q", "main"], in: shared.target)
    return (shared, a, b)
  }

  static func main(_ shared: SharedRemote) throws -> String { try Git.run(["rev-parse", "main"], in: shared.target) }

  @Test(arguments: [false, true])
  func withARemoteTheMergeFollowsThePublishedApprove(configured: Bool) throws {
    let (shared, a, _) = try Self.sharedReview()
    if configured { try a.git("config", "taskq.remote", "origin") }
    let result = try a.taskq(["approve", "--id", "T-1", "--merge"] + (configured ? [] : ["--remote", "origin"]))
    #expect(result.status == 0, "\(result.summary)")
    #expect(
      result.stdoutText.hasPrefix(
        "T-1: review → done (published to 'origin'); merged 1 commit(s) of 'task/T-1' into 'main' (fast-forward, "),
      "\(result.stdoutText)")
    #expect(try Self.main(shared) == (try Git.run(["rev-parse", "task/T-1"], in: shared.target)))
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .done)
    #expect(try shared.subjects().last == "T-1: review → done (merge into main follows)")
    #expect(try a.queueTip() == shared.queueTip())
  }

  /// B cancels the task and publishes it while A's approve is on its way to the server (a pre-receive hook
  /// of the remote runs B's commands once): A's push loses the race, its sync replays the approve onto the
  /// cancelled task and drops it, and nothing is merged.
  @Test func anApproveDroppedByTheRemoteMergesNothing() throws {
    let (shared, a, b) = try Self.sharedReview()
    let environment = b.runEnvironment().map { "export \($0.key)=\(shellQuote($0.value))" }.joined(separator: "\n")
    try shared.scratch.write(
      "remote.git/hooks/pre-receive",
      """
      #!/bin/sh
      cat >/dev/null
      [ -e "$0.ran" ] && exit 0
      touch "$0.ran"
      for name in $(env | sed -n 's/^\\(GIT_[A-Za-z_]*\\)=.*/\\1/p'); do unset "$name"; done
      \(environment)
      cd \(shellQuote(b.path)) && git-taskq cancel --id T-1 >&2 && git-taskq sync >&2
      """, executable: true)
    let main = try Self.main(shared)
    let result = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(result.status == 1, "\(result.summary)")
    #expect(
      result.stderrText == "error: T-1: approve dropped: it was cancelled on the remote; nothing was merged\n",
      "\(result.stderrText)")
    #expect(FileManager.default.fileExists(atPath: shared.bare + "/hooks/pre-receive.ran"))
    #expect(try Self.main(shared) == main)
    #expect(try a.record("T-1").status == .cancelled)
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .cancelled)
    #expect(try !shared.subjects().contains { $0.hasPrefix("T-1: review → done") })
    #expect(try shared.forcedUpdates() == [])
  }

  /// The remote refuses the approve (a hook): nothing is merged, and the line names the command to run once
  /// it answers; that command then publishes the approve and merges.
  @Test func anApproveTheRemoteRefusesMergesNothingUntilItIsPublished() throws {
    let (shared, a, _) = try Self.sharedReview()
    let hook = try shared.scratch.write(
      "remote.git/hooks/pre-receive", "#!/bin/sh\necho 'the queue is frozen' >&2\nexit 1\n", executable: true)
    let main = try Self.main(shared)
    let remoteTip = try shared.queueTip()
    let refused = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(refused.status == 1, "\(refused.summary)")
    #expect(
      refused.stderrText
        == "error: T-1 is approved here, but the approve is not published (remote 'origin' refused refs/taskq/queue: pre-receive hook declined (remote: the queue is frozen)); nothing was merged: once 'origin' answers, run git taskq approve --id T-1 --merge --remote origin\n",
      "\(refused.stderrText)")
    #expect(try Self.main(shared) == main)
    #expect(try shared.queueTip() == remoteTip)

    try FileManager.default.removeItem(atPath: hook)
    let again = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(again.status == 0, "\(again.summary)")
    #expect(
      again.stdoutText.hasPrefix("T-1: already done; merged 1 commit(s) of 'task/T-1' into 'main' (fast-forward, "),
      "\(again.stdoutText)")
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .done)
    #expect(try Self.main(shared) == (try Git.run(["rev-parse", "task/T-1"], in: shared.target)))
  }

  /// The approve waits unpublished; meanwhile B cancels the task. Running the named command again publishes
  /// nothing of it: the sync drops the approve, and nothing is merged.
  @Test func anUnpublishedApproveThatIsDroppedLaterMergesNothingOnTheRetry() throws {
    let (shared, a, b) = try Self.sharedReview()
    let hook = try shared.scratch.write("remote.git/hooks/pre-receive", "#!/bin/sh\nexit 1\n", executable: true)
    let refused = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(refused.status == 1, "\(refused.summary)")
    #expect(try a.record("T-1").status == .done)
    try FileManager.default.removeItem(atPath: hook)
    try b.taskqOK("cancel", "--id", "T-1")
    try b.taskqOK("sync")
    let main = try Self.main(shared)
    let again = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(again.status == 1, "\(again.summary)")
    #expect(
      again.stderrText == "error: T-1: approve dropped: it was cancelled on the remote; nothing was merged\n",
      "\(again.stderrText)")
    #expect(try Self.main(shared) == main)
    #expect(try a.record("T-1").status == .cancelled)
  }

  @Test func anUnreachableRemoteApprovesAndMergesNothing() throws {
    let (shared, a, _) = try Self.sharedReview()
    try a.git("remote", "add", "gone", shared.scratch.path + "/nowhere.git")
    let queue = try a.queueTip()
    let main = try Self.main(shared)
    let result = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "gone")
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stderrText.hasPrefix("error: cannot reach remote 'gone': "), "\(result.stderrText)")
    #expect(
      result.stderrText.hasSuffix(
        "; nothing was approved or merged: run the same command once 'gone' answers\n"), "\(result.stderrText)")
    #expect(result.stderrText.split(separator: "\n").count == 1)
    #expect(try a.queueTip() == queue)
    #expect(try Self.main(shared) == main)
  }

  /// A merge that cannot happen is found before the approve is published.
  @Test func aMergeThatWouldBeRefusedPublishesNoApprove() throws {
    let (shared, a, _) = try Self.sharedReview()
    try "local edit\n".write(toFile: shared.target + "/README.md", atomically: true, encoding: .utf8)
    let remoteTip = try shared.queueTip()
    let result = try a.taskq("approve", "--id", "T-1", "--merge", "--remote", "origin")
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stderrText.contains("with uncommitted changes ('README.md')"), "\(result.stderrText)")
    #expect(try shared.queueTip() == remoteTip)
    #expect(try a.record("T-1").status == .review)
  }

  /// Offline in a queue synced before: `--merge` is refused, naming the command with the remote.
  @Test func offlineInASharedQueueMergeIsRefusedWithTheCommandToRun() throws {
    let (shared, a, _) = try Self.sharedReview()
    let queue = try a.queueTip()
    let main = try Self.main(shared)
    let result = try a.taskq("approve", "--id", "T-1", "--merge")
    #expect(result.status == 1)
    #expect(
      result.stderrText
        == "error: the queue is shared through 'origin', where this approve could still be dropped after the merge (the task cancelled there); nothing was changed: run git taskq approve --id T-1 --merge --remote origin\n"
    )
    #expect(try a.queueTip() == queue)
    #expect(try Self.main(shared) == main)
    // A plain approve still works offline, and says how to merge by hand.
    let plain = try a.taskqOK("approve", "--id", "T-1")
    #expect(plain.stdoutText.hasPrefix("T-1: review → done\nmerge it:  git -C \(shared.target) merge task/T-1\n"))
  }
}
