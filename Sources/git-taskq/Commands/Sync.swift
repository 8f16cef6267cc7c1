import ArgumentParser
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Sync: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Share the queue through a git remote: fetch, replay, push.",
      discussion: """
        Brings the local refs/taskq/queue and the remote's together. When one side is behind it is \
        fast-forwarded. When both moved, the local operations since the common base are replayed on top \
        of the remote's queue (from their Taskq-* trailers) through the same checks as the commands; an \
        operation that no longer applies (e.g. an approve of a task cancelled on the remote) is dropped \
        and reported. The push is a plain push: when someone else wrote first, sync starts again. Never a \
        text merge, never a forced push.

        The remote defaults to taskq.remote, else origin. The first sync to a remote without a queue \
        creates it. The remote's state is kept in refs/taskq/remotes/<remote>/queue.

        Examples:
          git taskq sync
          git taskq sync upstream
          git config taskq.remote origin
        """)

    @Argument(help: ArgumentHelp("The remote (default: taskq.remote, else origin).", valueName: "remote"))
    var remote: String?

    func run(_ context: CommandContext) async throws {
      let name = remote ?? Self.defaultRemote(context.settings)
      let report = try QueueSync.forRemote(store: context.store, gitDirectory: context.gitDirectory).sync(remote: name)
      for line in report.lines { Console.out(line) }
    }

    static func defaultRemote(_ settings: Settings) -> String {
      let configured = settings.string(.remote)
      return configured.isEmpty ? "origin" : configured
    }
  }
}
