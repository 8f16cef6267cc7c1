import ArgumentParser
import Foundation
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Fsck: QueueCommand {
    static let configuration = CommandConfiguration(
      commandName: "fsck",
      abstract: "Check the queue and the machine around it.",
      discussion: """
        Checks the whole queue at refs/taskq/queue: its format, that every record parses and has a legal \
        status, unique ids and sequence numbers, each task at its bucket path, task files present, \
        error_file targets present, dependencies, and that the history's Taskq-* trailers agree with the \
        records. Then the machine: a stale ref lock, expired leases, containers and worktrees of ours \
        whose task no longer exists, records that point outside the configured roots or ports, and \
        missing docker/opencode/openchamber.

        Each finding is one line: what is wrong and the command that fixes it. Exit status 1 when the \
        queue is damaged (an 'error:' finding), 0 otherwise.

        Examples:
          git taskq fsck
          git taskq fsck --json
        """)

    @Flag(help: "Print the findings as JSON: {ok, findings: [{severity, task, message, fix}]} (see docs/json.md).")
    var json = false

    struct Output: Encodable {
      var ok: Bool
      var findings: [Finding]
    }

    func run(_ context: CommandContext) async throws {
      var findings = try QueueChecker(store: context.store).check()
      let records = (try? context.store.snapshot().records()) ?? []
      if let settings = try? RunSettings(context.settings) {
        findings += MachineChecker(store: context.store, settings: settings).check(records: records)
      }
      let damaged = findings.contains { $0.severity == .error }
      if json {
        Console.printJSON(try Console.json(Output(ok: !damaged, findings: findings)))
      } else if findings.isEmpty {
        print("ok: \(records.count) task(s), no problems found")
      } else {
        for finding in findings { Console.out(TerminalText.line("\(finding)")) }
      }
      if damaged { throw ExitCode(1) }
    }
  }
}
