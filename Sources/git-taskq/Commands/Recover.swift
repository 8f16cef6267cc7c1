import ArgumentParser
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Recover: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Fail tasks whose worker is gone, so retry can bring them back.",
      discussion: """
        A planning or building task whose lease expired (its worker stopped renewing it: killed, \
        crashed or cut off), or, without a remote, whose worker was a process of this host that no \
        longer exists, moves to failed with a "worker lost" report. 'git taskq run' does the same when \
        it starts. With a remote (--remote or taskq.remote) the queue is synced first and the result \
        pushed, and only the lease counts: two machines may share a host name.

        Examples:
          git taskq recover
          git taskq recover --remote origin
          git taskq retry --id T-001 && git taskq run --id T-001
        """)

    @Option(
      help: ArgumentHelp("Sync with this remote before and after (default: taskq.remote, if set).", valueName: "REMOTE")
    )
    var remote: String?

    func run(_ context: CommandContext) async throws {
      let configured = context.settings.string(.remote)
      let remote = self.remote ?? (configured.isEmpty ? nil : configured)
      let (recovered, lines) = try RunSession.recover(in: context, remote: remote)
      for line in lines { Console.out(line) }
      Swift.print(
        recovered.isEmpty
          ? "nothing to recover" : "recovered \(recovered.count) task(s): \(recovered.joined(separator: " "))")
    }
  }
}
