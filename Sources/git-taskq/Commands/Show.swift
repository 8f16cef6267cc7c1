import ArgumentParser
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  struct Show: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show one task: its record, its task file and its failure reports.",
      discussion: """
        Prints the fields of the task's record that are set (status, repository, base, branch, \
        worktree, container, port, session, attempt, priority, dependencies, worker and lease, times, \
        the last error), then its task file as the queue stores it (the frontmatter with every \
        resolved value, and the body), then the names of its failure reports, oldest first, as \
        'git show' takes them. --json prints the same as one object (see docs/json.md).

        Examples:
          git taskq show --id T-001
          git taskq show --id T-001 --json
          git show refs/taskq/queue:tasks/<bb>/T-001/errors/<report>.md
        """)

    @OptionGroup var task: TaskIDOption

    @Flag(help: "Print JSON: {record, task_file, error_reports} (see docs/json.md).")
    var json = false

    func run(_ context: CommandContext) async throws {
      let details = try TaskDetails.read(task.id, from: context.store)
      if json {
        Console.printJSON(try Console.json(details))
        return
      }
      Pager.print(Self.text(details, context), configuration: context.settings.gitConfig)
    }

    /// The fields of the record that are set, the task file, and the failure reports' names.
    static func text(_ details: TaskDetails, _ context: CommandContext) -> String {
      let record = details.record
      var lines = ["task \(record.id)"]
      // `repo` as stored (machine-independent), with what it is on this machine when that differs.
      let here = RepositoryReference(stored: record.repo).resolve(
        queueRepository: context.queueRepository, reposRoot: context.settings.path(.reposRoot))
      let repo = here.map { $0 == record.repo ? record.repo : "\(record.repo) (\($0))" } ?? record.repo
      let fields: [(String, String?)] = [
        ("status", record.status.rawValue), ("repo", repo), ("base", record.base),
        ("branch", record.branch), ("worktree", record.worktreePath), ("container", record.container),
        ("port", record.port.map(String.init)), ("session", record.sessionID),
        ("attempt", StatusView.attemptText(record)),
        ("priority", record.priority == 0 ? nil : String(record.priority)),
        ("depends on", record.dependsOn.isEmpty ? nil : record.dependsOn.joined(separator: ", ")),
        ("worker", record.worker), ("lease until", record.leaseExpiresAt), ("created", record.createdAt),
        ("updated", record.updatedAt), ("task file", record.taskFile), ("last error", record.lastError),
      ]
      for (name, value) in fields {
        if let value {
          lines.append("  \(name.padded(to: 12)) \(TerminalText.line(value))")
        }
      }
      lines.append("")
      lines.append(details.taskFile.trimmingLineBreaks())
      lines.append("")
      if details.errorReports.isEmpty {
        lines.append("no error reports")
      } else {
        lines.append("error reports (read with 'git show <name>'):")
        lines.append(contentsOf: details.errorReports.map { "  \($0)" })
      }
      return TerminalText.block(lines.joined(separator: "\n"))
    }
  }
}
