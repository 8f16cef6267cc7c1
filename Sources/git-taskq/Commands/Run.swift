import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  struct Run: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run todo tasks: plan, build, and leave each for review.",
      discussion: """
        Each worker claims the next runnable task (highest priority, then first in; dependencies done) \
        with a compare-and-swap of the queue, so two 'run' processes never run the same task. For each \
        task: branch task/<id> from its base and a worktree (libgit2), a container running an OpenCode \
        server on a reserved 127.0.0.1 port, then 'opencode run --command make-plan' and \
        '--command execute-plan'. Every stage is a commit on refs/taskq/queue. A failure moves the task \
        to failed with a report (git taskq show --id ID); container and worktree are kept unless \
        --cleanup-on-fail.

        Without --poll, one pass runs every claimable task, at most --max-parallel at a time, then \
        prints one line per outcome. Ctrl-C stops claiming, stops the agents and containers and marks \
        in-flight tasks failed ("interrupted"; retry brings them back). One Ctrl-C may arrive twice (from \
        the terminal and forwarded by git): signals within 1 s count as one; a second Ctrl-C a second or \
        more later exits at once. An agent never outlives its worker: if 'run' is killed, its agents \
        stop, and 'git taskq recover' (or the next run) fails its tasks as "worker lost" at once.

        After 'retry', a plain 'run' reuses the worktree the queue records for the task (branch kept); \
        --dirty-run is needed only for a worktree the queue does not record as the task's.

        --remote NAME (or taskq.remote) shares the work between machines: each claim counts only once \
        it is pushed to the remote, every transition is pushed as it happens, and the lease \
        (taskq.lease seconds) is renewed while the task runs; a task whose lease expired is recovered \
        as failed ("worker lost") by 'git taskq recover' or the next run.

        --runtime local (or taskq.runtime=local) runs the agent directly in the worktree, without a \
        container; taskq.agentProgram names the agent.

        Exit status: 0 when every task reached review (or was cancelled by the user); 1 when a task \
        failed or the run could not start (no container engine answers, for example); 130 when \
        interrupted.

        Examples:
          git taskq run --max-parallel 4
          git taskq run --max-parallel 2 --poll
          git taskq run --max-parallel 2 --poll 10
          git taskq run --id T-001
          git taskq run --id T-001 --dirty-run
          git taskq run --id T-001 --cleanup-on-fail
          git taskq run --runtime local --json
        """)

    @Option(help: ArgumentHelp("Run only this task, once (it must be todo; no polling).", valueName: "ID"))
    var id: String?

    @Option(help: ArgumentHelp("Maximum concurrent workers (default: taskq.maxParallel = 3).", valueName: "N"))
    var maxParallel: Int?

    @Option(
      name: .customLong("poll"), parsing: .unconditional,
      help: ArgumentHelp("Keep polling for new tasks every SECONDS (default 5).", valueName: "SECONDS"))
    var pollValue: Double?

    @Flag(help: "Remove the task's container and (clean) worktree when it fails.")
    var cleanupOnFail = false

    @Flag(help: "Also reuse a registered worktree of the task that the queue does not record as its own.")
    var dirtyRun = false

    @Option(help: ArgumentHelp("docker (default) or local.", valueName: "RUNTIME"))
    var runtime: String?

    @Flag(help: "Print one JSON object per event on stdout (see docs/json.md).")
    var json = false

    @Option(
      help: ArgumentHelp(
        "Claim through this remote and publish every transition to it (default: taskq.remote, if set).",
        valueName: "REMOTE"))
    var remote: String?

    /// `--poll` alone means 5 s: argument-parser cannot make an option's value optional, so the bare flag is
    /// rewritten before parsing (see `Entrypoint`).
    static let bareFlagValue = "-1"

    var settingOverrides: [SettingKey: String] {
      var overrides: [SettingKey: String] = [:]
      if let runtime { overrides[.runtime] = runtime }
      if let maxParallel { overrides[.maxParallel] = String(maxParallel) }
      return overrides
    }

    func validate() throws {
      if let maxParallel, maxParallel < 1 { throw ValidationError("--max-parallel must be at least 1") }
      if let pollValue, pollValue <= 0 && pollValue != -1 {
        throw ValidationError("--poll must be a positive number of seconds")
      }
      if id != nil && pollValue != nil {
        throw ValidationError("--id runs one task once; it cannot be combined with --poll")
      }
    }

    func run(_ context: CommandContext) async throws {
      let poll: RunSession.Poll = pollValue.map { $0 < 0 ? .configured : .every($0) } ?? .off
      let session = try RunSession(
        workspace: context, onlyID: id, poll: poll, cleanupOnFail: cleanupOnFail, dirtyRun: dirtyRun, remote: remote)
      let mode: RunEvents.Mode = json ? .json : (Output.isTerminal(2) && Output.isTerminal(1) ? .board : .lines)
      let board =
        mode == .board
        ? RunBoard(
          colored: ColorChoice.resolve(
            // Colour only: the configuration was read once already, so this cannot fail in practice, and a
            // board without colour is the right answer if it did.
            flag: nil, configuration: context.settings.gitConfig, isTerminal: Output.isTerminal(2)),
          pollSeconds: session.options.poll, queued: RunBoard.todoCount) : nil
      if mode == .lines, let poll = session.options.poll {
        // Without the board, say once that an idle run is waiting, not stuck.
        Console.error("polling for tasks every \(Status.formatSeconds(poll)) (Ctrl-C to stop)")
      }
      let outcomes = try session.run(events: RunEvents(mode: mode, display: board), note: { Console.error($0) })
      // Without the records the summary only leaves out why tasks are left in todo: the run is over either way.
      if !json { Output.write(RunSummary.text(outcomes, records: try? context.store.snapshot().records()), to: 1) }
      if Interrupts.isRequested { throw ExitCode(130) }
      // A task the user cancelled is not a failure of the run.
      if outcomes.contains(where: { $0.1 != .review && $0.1 != .cancelled }) { throw ExitCode(1) }
    }
  }
}
