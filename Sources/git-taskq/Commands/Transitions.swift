import Foundation
import ArgumentParser
import TaskQueue

extension GitTaskq {
  struct Approve: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Approve a task in review (review -> done).",
      discussion: """
        Marks the task done. Its branch stays for you to merge or push; 'git taskq cleanup' removes the \
        container and worktree afterwards.

        Examples:
          git taskq approve --id T-001
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      let record = try context.store.approve(task.id)
      print("\(record.id): review → done")
      print("merge it with:  git -C \(shellQuote(record.repo)) merge \(record.branch)")
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
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      let before = try context.store.snapshot().record(task.id)
      let record = try context.store.cancel(task.id)
      print("\(record.id): \(before?.status.rawValue ?? "?") → cancelled")
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
        finished depends on it. The queue's history keeps the task: 'git log refs/taskq/queue'.

        Examples:
          git taskq remove --id T-001
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      let record = try context.store.remove(task.id)
      print("\(record.id): removed (was \(record.status.rawValue))")
    }
  }
}

/// Quotes `text` for a POSIX shell when it needs it (for commands we print, never for commands we run).
func shellQuote(_ text: String) -> String {
  let safe = text.allSatisfy { $0.isLetter || $0.isNumber || "/._-:@=+,".contains($0) }
  return safe && !text.isEmpty ? text : "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
