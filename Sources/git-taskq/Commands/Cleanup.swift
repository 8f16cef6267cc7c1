import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  struct Cleanup: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove containers and worktrees of finished tasks.",
      discussion: """
        Without --id, cleans every done and cancelled task, removes this repository's task containers \
        whose task is no longer in the queue, and repairs half-made worktree registrations. A container \
        is removed only when it is this repository's container of the task: its recorded name and the \
        labels git-taskq.managed, git-taskq.task and git-taskq.queue (never a name substring, never \
        another repository's). Worktrees are removed through libgit2. It never destroys work: a worktree \
        with uncommitted changes is kept and reported unless --force, 'cleanup --id' of such a task or \
        of a task in review refuses without --force, and branches always stay. \
        Runtime fields (container, port, session) are cleared; with --keep-worktree the record keeps the \
        worktree path. Failure reports stay in the queue's history. Safe to run again.

        Examples:
          git taskq cleanup
          git taskq cleanup --id T-001
          git taskq cleanup --done-only
          git taskq cleanup --keep-worktree
        """)

    @Option(help: ArgumentHelp("Clean only this task (any status but planning/building).", valueName: "ID"))
    var id: String?

    @Flag(help: "Only tasks in done.")
    var doneOnly = false

    @Flag(help: "Only tasks in cancelled.")
    var cancelledOnly = false

    @Flag(help: "Remove containers but keep worktrees.")
    var keepWorktree = false

    @Flag(help: "Also remove worktrees that have uncommitted changes.")
    var force = false

    func validate() throws {
      if doneOnly && cancelledOnly { throw ValidationError("--done-only and --cancelled-only exclude each other") }
    }

    func run(_ context: CommandContext) async throws {
      let settings = try RunSettings(context.settings)
      let snapshot = try context.store.snapshot()
      var targets: [TaskRecord]
      if let id {
        try TaskID.validate(id)
        guard let record = try snapshot.record(id) else { throw QueueError.notFound(id) }
        if record.status.isActive {
          throw QueueError.illegalTransition(
            id: id, command: "clean up", status: record.status,
            needs: TaskStatus.displayOrder.filter { !$0.isActive })
        }
        if doneOnly && record.status != .done || cancelledOnly && record.status != .cancelled {
          throw QueueError.illegalTransition(
            id: id, command: "clean up", status: record.status, needs: doneOnly ? [.done] : [.cancelled])
        }
        if !force {
          if record.status == .review {
            throw CleanupRefusal(
              "task '\(id)' is in review: cleaning it up would stop its server and remove its worktree before anyone approved it; approve or cancel it first, or pass --force"
            )
          }
          if !keepWorktree, let path = record.worktreePath, let changes = Cleaner.uncommittedChanges(at: path),
            !changes.isEmpty
          {
            let shown = changes.prefix(5).map { "'\($0)'" }.joined(separator: ", ") + (changes.count > 5 ? ", …" : "")
            throw CleanupRefusal(
              "the worktree of task '\(id)' has uncommitted work (\(shown)); commit it, or pass --force to delete it, or --keep-worktree"
            )
          }
        }
        targets = [record]
      } else {
        let wanted: Set<TaskStatus> = doneOnly ? [.done] : cancelledOnly ? [.cancelled] : [.done, .cancelled]
        targets = try snapshot.records().filter { wanted.contains($0.status) }
      }
      let cleaner = Cleaner(settings: settings, queueDirectory: context.commonDirectory)
      var kept = 0
      var cleaned = 0
      var refused = 0
      let policy = RecordPolicy(settings: settings, queueRepository: context.queueRepository)
      // The record may come from a remote: touch nothing it names unless this machine trusts it.
      var trusted: [TaskRecord] = []
      for record in targets {
        if let refusal = policy.refusal(record, for: .cleanup) {
          Console.error("error: \(refusal)")
          refused += 1
        } else {
          trusted.append(record)
        }
      }
      // Containers first, side by side (stopping and removing one takes the engine ~0.3 s); then each
      // task's worktree and record, in order.
      let secrets = ServerSecrets(commonDirectory: context.commonDirectory)
      let containers = cleaner.removeContainers(of: trusted)
      for (record, removal) in zip(trusted, containers) {
        let result = cleaner.clean(
          record, keepWorktree: keepWorktree, force: force, secrets: secrets, containersRemoved: removal)
        for line in result.messages { print("\(record.id): \(line)") }
        if result.worktreeKept && !keepWorktree { kept += 1 }
        _ = try context.store.recordCleanup(record.id, result: result)
        if !result.removedContainers.isEmpty || result.worktreeRemoved { cleaned += 1 }
      }
      var extra = 0
      let all = try context.store.snapshot().records()
      if id == nil {
        for line in cleaner.removeOrphanContainers(keeping: Set(all.map(\.id))) {
          print(line)
          extra += 1
        }
      }
      let scope = id.map { id in all.filter { $0.id == id } } ?? all
      for line in cleaner.repairHalfMadeWorktrees(scope, queueRepository: context.queueRepository) {
        print(line)
        extra += 1
      }
      var summary = cleaned > 0 ? "cleaned \(cleaned) task(s)" : "nothing to clean up"
      if extra > 0 { summary += ", \(extra) other repair(s)" }
      if kept > 0 { summary += ", kept \(kept) worktree(s) with work in them" }
      print(summary)
      if refused > 0 { throw ExitCode(1) }
    }
  }
}

/// A one-line refusal of `cleanup` (nothing was changed).
struct CleanupRefusal: Error, CustomStringConvertible, LocalizedError {
  var description: String
  init(_ description: String) { self.description = description }
  var errorDescription: String? { description }
}
