import ArgumentParser
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  struct Import: QueueCommand {
    static let configuration = CommandConfiguration(
      commandName: "import",
      abstract: "Import the queue of the Python taskq into refs/taskq/queue.",
      discussion: """
        Reads the Python tool's queue/tasks.jsonl, queue/tasks/<id>.md and queue/errors/<id>-<ts>.md \
        under DIR (default: the top of this repository; DIR may also be the queue directory itself) \
        and writes every task into the queue in one commit (operation 'import'). Ids, statuses, \
        timestamps (created_at, updated_at), attempts, branches, worktrees, containers, ports and \
        sessions are kept; each task's error reports are stored under its errors/ in the queue, and \
        error_file points at the one the Python record named. Tasks are numbered in the order of \
        tasks.jsonl, after the tasks already in the queue.

        A task whose id is in the queue already is left out, so importing twice changes nothing. A \
        line that is not a valid record (not JSON, a missing field, an invalid id or status), or whose \
        task file is missing or invalid, is reported on standard error and left out; the rest is \
        imported. A task that was planning or building keeps its status with an expired lease: 'git \
        taskq recover' moves it to failed, and 'git taskq retry' runs it again. The files under queue/ \
        are not changed.

        The Python tool's own values are taken as it writes them: "port": 0 and empty strings mean \
        unset, error_file may be an absolute path (its file name is matched under errors/), an \
        updated_at without a UTC offset is UTC (it gets +00:00), fields of its own \
        (opencode_attempt_dir, …) are ignored, and branches are kept as written (task/t-001).

        Exit status: 0 when the queue holds every task that could be read (lines left out are \
        warnings); 1 when nothing could be read (no tasks.jsonl, or every line was left out) or the \
        import was refused.

        Examples:
          git taskq import
          git taskq import --from ~/src/sisifo
          git taskq import --from ~/src/sisifo/queue --dry-run
        """)

    @Option(
      help: ArgumentHelp(
        "The directory that holds the Python tool's queue/ (default: this repository's top).", valueName: "DIR"))
    var from: String?

    @Flag(help: "Show what would be imported, and write nothing.")
    var dryRun = false

    func run(_ context: CommandContext) async throws {
      let queue = try PythonQueue.read(from: from ?? context.queueRepository)
      let report = try context.store.importTasks(queue, dryRun: dryRun)
      for problem in queue.problems { Console.error("warning: skipped \(problem)") }
      for note in report.notes { Console.error("note: \(note)") }
      let verb = dryRun ? "would import" : "imported"
      if report.imported.isEmpty {
        print("nothing to import from \(queue.directory)" + Self.present(report))
      } else {
        let reports = report.errorReports > 0 ? " with \(report.errorReports) error report(s)" : ""
        print(
          "\(verb) \(report.imported.count) task(s)\(reports) from \(queue.directory)\(dryRun ? "" : " in one commit")"
            + Self.present(report))
        for status in TaskStatus.displayOrder {
          let ids = report.imported.filter { $0.status == status }.map(\.id)
          if !ids.isEmpty { print("  \(status.rawValue) (\(ids.count)): \(Self.list(ids))") }
        }
      }
      if !queue.problems.isEmpty {
        Console.error("warning: \(queue.problems.count) line(s) or file(s) were left out; fix them and import again")
        if queue.tasks.isEmpty {
          Console.error("error: no task could be read from \(queue.directory)/tasks.jsonl (see the warnings above)")
          throw ExitCode(1)
        }
      }
    }

    static func present(_ report: ImportReport) -> String {
      report.alreadyPresent.isEmpty
        ? "" : " (\(report.alreadyPresent.count) already in the queue: \(Self.list(report.alreadyPresent)))"
    }

    /// At most 10 ids, then how many more: an import of thousands stays readable.
    static func list(_ ids: [String]) -> String {
      ids.prefix(10).joined(separator: " ") + (ids.count > 10 ? " … and \(ids.count - 10) more" : "")
    }
  }
}
