import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  struct Approve: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Approve a task in review (review -> done), and optionally merge its branch.",
      discussion: """
        Marks the task done and prints the commands that merge its branch into its base or push it. \
        The branch always stays; 'git taskq cleanup' removes the container and worktree afterwards.

        With --merge, git-taskq also merges task/<id> (the task's branch) into its base in the \
        task's repository, and only a fast-forward or a clean merge:
          - when the base already contains the branch, there is nothing to merge;
          - a fast-forward of a base that no working tree has checked out moves the base ref (a \
            compare-and-swap: a commit that arrives meanwhile is never lost);
          - when the base is the branch checked out in the repository's main working tree and that \
            tree is clean, 'git merge --ff-only' or 'git merge --no-edit' runs there.
        Anything else is refused before anything changes, with the commands to run by hand, and the \
        task stays in review: a merge that conflicts, a base checked out with uncommitted changes, \
        checked out in a linked worktree, or diverged from the branch while not checked out.

        With a remote (--remote, or taskq.remote set), the approve is published first: sync, check the \
        merge, approve, sync again, and merge only once the remote took the approve. When the remote \
        drops it (the task was cancelled there) or cannot be reached, nothing is merged, and the error \
        says what to run next. In a queue synced before but with no remote given, --merge is refused \
        (a later sync could drop the approve and leave the merge behind); the error names the command \
        with --remote. A task already done is merged without a second approve.

        Approval is refused while the task's worktree has uncommitted or untracked changes (they are \
        not on the branch and would be left behind); the refusal names them. Commit them in the \
        worktree, or pass --force to approve anyway.

        Examples:
          git taskq approve --id T-001
          git taskq approve --id T-001 --merge
          git taskq approve --id T-001 --merge --remote origin
          git taskq approve --id T-001 --force
          git -C ~/src/sisifo switch main && git taskq approve --id T-002 --merge
        """)

    @OptionGroup var task: TaskIDOption

    @Flag(help: "Merge the task's branch into its base too (fast-forward or clean merge only).")
    var merge = false

    @Flag(help: "Approve even though the task's worktree has uncommitted or untracked changes.")
    var force = false

    @Option(
      help: ArgumentHelp(
        "With --merge: publish the approve to this remote before merging (default: taskq.remote, if set).",
        valueName: "REMOTE"))
    var remote: String?

    func validate() throws {
      if remote != nil && !merge {
        throw ValidationError("--remote goes with --merge (a plain approve is published by 'git taskq sync')")
      }
    }

    func run(_ context: CommandContext) async throws {
      let configured = context.settings.string(.remote)
      let approval = Approval(
        store: context.store, queueRepository: context.queueRepository,
        reposRoot: context.settings.path(.reposRoot), remote: remote ?? (configured.isEmpty ? nil : configured))
      for line in try approval.approve(task.id, merge: merge, force: force, note: { Console.out($0) }) {
        Console.out(line)
      }
    }
  }

  struct Cancel: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Cancel a task (todo|planning|building|review|failed -> cancelled).",
      discussion: """
        A task that a worker is running is stopped by that worker within a few seconds. Nothing is \
        deleted: 'git taskq cleanup' removes the container and worktree.

        Examples:
          git taskq cancel --id T-001
          git taskq cancel --id T-001 && git taskq cleanup --id T-001
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      let record = try context.store.cancel(task.id)
      // The status it left, as the commit that cancelled it recorded (not a read from before the write).
      let from = try context.store.history(task: task.id, limit: 1).first?.operation.from
      print("\(record.id): \(from?.rawValue ?? "?") → cancelled")
    }
  }

  struct Retry: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Retry a failed task (failed -> todo).",
      discussion: """
        Clears the runtime handles (container, port, session, worker) and counts one more attempt. The \
        failure reports stay in the queue. Run 'git taskq run' again to process the task.

        Examples:
          git taskq retry --id T-001
          git taskq retry --id T-001 && git taskq run --id T-001
          git taskq edit --id T-001 && git taskq retry --id T-001
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      let record = try context.store.retry(task.id)
      print("\(record.id): failed → todo (attempt \(record.attempt + 1) next)")
    }
  }

  struct Remove: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove a task from the queue.",
      discussion: """
        Refused while the task is planning or building (cancel it first) and while a task that is not \
        finished depends on it. Its container is stopped and removed, and its worktree too unless it \
        holds uncommitted work (then it is kept, and named); the branch stays. The queue's history \
        keeps the task: 'git log refs/taskq/queue'. A damaged task directory that 'git taskq fsck' names \
        is removed by its directory name, whatever it holds.

        Examples:
          git taskq remove --id T-001
          git taskq log --id T-001
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      // A damaged directory (see 'git taskq fsck') is removed by its directory name.
      if let removed = try context.store.removeDamaged(named: task.id) {
        for damage in removed { print("\(damage.path): removed (damaged: \(damage.problem))") }
        return
      }
      let record = try context.store.remove(task.id)
      print("\(record.id): removed (was \(record.status.rawValue))")
      // Nothing of it keeps running: its container goes, and its worktree unless it holds work.
      for line in try RemovalCleanup.clean(record, in: context) { print("\(record.id): \(line)") }
    }
  }
}
