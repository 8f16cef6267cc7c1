import ArgumentParser

/// `git taskq`: the root command.
struct GitTaskq: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "git-taskq",
    abstract: "Queue AI-coding tasks in git and drive each through plan, build and review.",
    discussion: """
      The queue lives in the repository, on the ref refs/taskq/queue: every task record and every \
      transition is a commit, written with a compare-and-swap, so concurrent workers never lose or \
      double-claim a task. 'git log refs/taskq/queue' is the audit trail.

      Lifecycle: todo -> planning -> building -> review -> done, with failed (then retry) and cancelled.

      Exit status: 0 success; 1 the operation was refused or failed (the queue is unchanged); \
      64 bad usage; 128 not in a git repository.
      """,
    version: "0.1.0",
    subcommands: [
      Add.self, Edit.self, Status.self, Show.self, Log.self, Approve.self, Cancel.self, Retry.self, Remove.self,
      Run.self, Review.self, Cleanup.self, Sync.self, Recover.self, Fsck.self, Config.self, Import.self,
      Complete.self, GitCompletion.self,
    ]
  )
}
