import ArgumentParser

/// `git taskq`: the root command.
struct GitTaskq: AsyncParsableCommand {
  /// What `git taskq --version` prints.
  static let version = "0.1.0"

  static let configuration = CommandConfiguration(
    commandName: "git-taskq",
    abstract: "Queue AI-coding tasks in git and drive each through plan, build and review.",
    usage: "git taskq <command> [<options>]",
    discussion: """
      The queue lives in the repository, on the ref refs/taskq/queue: every task record and every \
      transition is a commit, written with a compare-and-swap, so concurrent workers never lose or \
      double-claim a task. 'git log refs/taskq/queue' is the audit trail.

      Lifecycle: todo -> planning -> building -> review -> done, with failed (then retry) and cancelled.

      Exit status: 0 success; 1 the operation was refused or failed (the queue is unchanged); \
      64 bad usage; 128 not in a git repository; 130 interrupted.

      Examples:
        git taskq add --id T-001 --task "Implement feature X"
        git taskq run --max-parallel 2
        git taskq status --watch
        git taskq review --id T-001
        git taskq approve --id T-001 --merge
        git taskq cleanup

      See 'git taskq help <command>' for one command, and docs/ in the source for the storage format, the \
      JSON output and every setting.
      """,
    // No `version:` here: argument-parser would add --version to every subcommand; `Entrypoint` answers a
    // `git taskq --version` itself.
    // Hidden helpers of shell completion and of the manual.
    subcommands: [Complete.self, GitCompletion.self, Manual.self],
    groupedSubcommands: [
      CommandGroup(name: "Queue", subcommands: [Add.self, Edit.self, Import.self, Status.self, Show.self, Log.self]),
      CommandGroup(name: "Lifecycle", subcommands: [Approve.self, Cancel.self, Retry.self, Remove.self]),
      CommandGroup(name: "Runtime", subcommands: [Run.self, Review.self, Cleanup.self, Recover.self]),
      CommandGroup(name: "Sharing and checking", subcommands: [Sync.self, Fsck.self, Config.self]),
    ]
  )
}
