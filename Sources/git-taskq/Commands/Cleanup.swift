import ArgumentParser
import Foundation
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Cleanup: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Remove containers and worktrees of finished tasks.",
      discussion: """
        Without --id, cleans every done and cancelled task. Containers are matched by git-taskq's labels \
        (never by a name substring); worktrees are removed through libgit2. It never destroys work: a \
        worktree with uncommitted changes is kept and reported unless --force, and branches always stay. \
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
        targets = [record]
      } else {
        let wanted: Set<TaskStatus> = doneOnly ? [.done] : cancelledOnly ? [.cancelled] : [.done, .cancelled]
        targets = try snapshot.records().filter { wanted.contains($0.status) }
      }
      let cleaner = Cleaner(settings: settings)
      var kept = 0
      var cleaned = 0
      var refused = 0
      let policy = RecordPolicy(settings: settings, queueRepository: context.repository.mainWorkingDirectory)
      for record in targets {
        // The record may come from a remote: touch nothing it names unless this machine trusts it.
        if let refusal = policy.refusal(record, for: .cleanup) {
          Console.error("error: \(refusal)")
          refused += 1
          continue
        }
        let result = cleaner.clean(
          record, keepWorktree: keepWorktree, force: force,
          secrets: ServerSecrets(commonDirectory: context.repository.commonDirectory))
        for line in result.messages { print("\(record.id): \(line)") }
        if result.worktreeKept && !keepWorktree { kept += 1 }
        let updated = try context.store.recordCleanup(record.id, result: result)
        if updated != record || !result.messages.isEmpty { cleaned += 1 }
      }
      print("cleaned \(cleaned) task(s)" + (kept > 0 ? ", kept \(kept) worktree(s) with work in them" : ""))
      if refused > 0 { throw ExitCode(1) }
    }
  }
}
