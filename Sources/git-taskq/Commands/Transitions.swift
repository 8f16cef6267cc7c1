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

        With --merge, git-taskq first merges task/<id> (the task's branch) into its base in the \
        task's repository, and approves only if that worked:
          - when the base already contains the branch, there is nothing to merge;
          - a fast-forward of a base that no working tree has checked out moves the base ref (a \
            compare-and-swap: a commit that arrives meanwhile is never lost);
          - when the base is the branch checked out in the repository's main working tree and that \
            tree is clean, 'git merge --ff-only' or 'git merge --no-edit' runs there; a merge that \
            conflicts is aborted.
        Anything else is refused, with the commands to run by hand, and the task stays in review: a \
        base checked out with uncommitted changes, checked out in a linked worktree, or diverged from \
        the branch while not checked out.

        Approval is refused while the task's worktree has uncommitted or untracked changes (they are \
        not on the branch and would be left behind); the refusal names them. Commit them in the \
        worktree, or pass --force to approve anyway.

        Examples:
          git taskq approve --id T-001
          git taskq approve --id T-001 --merge
          git taskq approve --id T-001 --force
          git -C ~/src/sisifo switch main && git taskq approve --id T-002 --merge
        """)

    @OptionGroup var task: TaskIDOption

    @Flag(help: "Merge the task's branch into its base first (fast-forward or clean merge only).")
    var merge = false

    @Flag(help: "Approve even though the task's worktree has uncommitted or untracked changes.")
    var force = false

    func run(_ context: CommandContext) async throws {
      try TaskID.validate(task.id)
      guard let current = try context.store.snapshot().record(task.id) else { throw QueueError.notFound(task.id) }
      let repositoryPath =
        RepositoryReference(stored: current.repo).resolve(
          queueRepository: context.repository.mainWorkingDirectory, reposRoot: context.settings.path(.reposRoot))
        ?? current.repo
      let merger = BranchMerger(
        taskID: current.id, repositoryPath: repositoryPath, branch: current.branch, base: current.base)
      // Work the agent left uncommitted is not on the branch: approving would drop it silently.
      if !force, current.status == .review, let refusal = BranchMerger.uncommittedWorkRefusal(current) {
        throw MergeRefusal(refusal)
      }
      guard merge else {
        let record = try context.store.approve(task.id)
        print("\(record.id): review → done")
        for line in merger.instructions(remote: BranchMerger.pushRemote(repositoryPath: repositoryPath)) { print(line) }
        return
      }
      // Checked before merging, so that a task that cannot be approved is not merged; checked again by the
      // approval's compare-and-swap.
      guard current.status == .review else {
        throw QueueError.illegalTransition(id: current.id, command: "approve", status: current.status, needs: [.review])
      }
      let outcome = try merger.merge()
      let summary = outcome.summary(branch: current.branch, base: current.base)
      let record: TaskRecord
      do {
        record = try context.store.transition(
          task.id, to: .done, command: "approve", detail: outcome.detail(base: current.base))
      } catch {
        Console.error("warning: \(summary), but the task was not approved:")
        throw error
      }
      print("\(record.id): review → done; \(summary)")
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
      let settings = try RunSettings(context.settings)
      let policy = RecordPolicy(settings: settings, queueRepository: context.repository.mainWorkingDirectory)
      guard record.container != nil || record.worktreePath != nil, policy.refusal(record, for: .cleanup) == nil
      else { return }
      let result = Cleaner(settings: settings, queueDirectory: context.repository.commonDirectory).clean(
        record, keepWorktree: false, force: false,
        secrets: ServerSecrets(commonDirectory: context.repository.commonDirectory))
      for line in result.messages { print("\(record.id): \(line)") }
    }
  }
}

/// Quotes `text` for a POSIX shell when it needs it (for commands we print, never for commands we run).
func shellQuote(_ text: String) -> String {
  let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "/._-:@=+,".contains($0) }
  return safe && !text.isEmpty ? text : "'" + text.replacing("'", with: "'\\''") + "'"
}
