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
      let request = CleanupRun.Request(
        id: id, doneOnly: doneOnly, cancelledOnly: cancelledOnly, keepWorktree: keepWorktree, force: force)
      let refused = try CleanupRun(workspace: context, request: request)
        .run(out: { print($0) }, refused: { Console.error("error: \($0)") })
      if refused > 0 { throw ExitCode(1) }
    }
  }
}
