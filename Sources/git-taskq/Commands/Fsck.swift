import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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

        With --repair, first: when refs/taskq/queue points at a commit that cannot be read (e.g. pruned \
        by 'git gc --prune=now' racing a writer), the ref is moved by compare-and-swap to the newest \
        intact commit in its reflog or a remote-tracking ref, and every operation lost is named; then \
        every damaged task directory is removed in one commit that 'git taskq sync' carries to every \
        machine. The check then runs on the repaired queue.

        Examples:
          git taskq fsck
          git taskq fsck --json
          git taskq fsck --repair
        """)

    @Flag(help: "Print the findings as JSON: {ok, findings: [{severity, task, message, fix}]} (see docs/json.md).")
    var json = false

    @Flag(help: "Move an unreadable ref back to the newest intact commit, and remove damaged task directories.")
    var repair = false

    struct Output: Encodable {
      var ok: Bool
      var findings: [Finding]
    }

    func run(_ context: CommandContext) async throws {
      // fsck names every damaged record itself.
      DamageNotice.install(nil)
      if repair {
        if let fixed = try context.store.repairTip() {
          Console.error(
            "repaired: refs/taskq/queue moved from unreadable \(fixed.from.hex.prefix(12)) to \(fixed.to.hex.prefix(12)) (from \(fixed.source))"
          )
          for operation in fixed.lost { Console.error("lost: \(operation)") }
        }
        for damage in try context.store.removeDamaged(where: { _ in true }) {
          Console.error("repaired: removed \(damage.description)")
        }
      }
      let (findings, taskCount) = try FsckChecks.check(context)
      let damaged = findings.contains { $0.severity == .error }
      if json {
        Console.printJSON(try Console.json(Output(ok: !damaged, findings: findings)))
      } else if findings.isEmpty {
        print("ok: \(taskCount) task(s), no problems found")
      } else {
        for finding in findings { Console.out(TerminalText.line("\(finding)")) }
      }
      if damaged { throw ExitCode(1) }
    }
  }
}
