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
      let settings = try RunSettings(context.settings)
      let maxParallel = try context.settings.positiveInt(.maxParallel)
      var poll: Double?
      if let pollValue { poll = pollValue < 0 ? Double(try context.settings.positiveInt(.poll)) : pollValue }
      if let id { try TaskID.validate(id) }
      if settings.runtime == .docker, ProcessRunner.resolve(settings.containerProgram) == nil {
        throw QueueError.invalidValue(
          key: context.settings.describe(.containerProgram), value: settings.containerProgram,
          expected: "a container CLI on PATH (install docker or podman, or use --runtime local)")
      }
      if settings.runtime == .docker,
        let reason = ContainerEngine(program: settings.containerProgram, timeout: 10).unavailability(timeout: 10)
      {
        // Once, before anything is claimed: otherwise every task would fail at `docker run`.
        throw RunRefusal("\(reason): start it, or use --runtime local (nothing was claimed)")
      }
      if settings.runtime == .local, ProcessRunner.resolve(settings.agentProgram) == nil {
        throw QueueError.invalidValue(
          key: context.settings.describe(.agentProgram), value: settings.agentProgram,
          expected: "an agent program on PATH (install opencode, or set taskq.agentProgram)")
      }
      let mode: RunEvents.Mode = json ? .json : (Output.isTerminal(2) && Output.isTerminal(1) ? .board : .lines)
      let board =
        mode == .board
        ? RunBoard(
          colored: ColorChoice.resolve(
            flag: nil, configuration: try? context.repository.configuration(), isTerminal: Output.isTerminal(2)),
          pollSeconds: poll, queued: RunBoard.todoCount) : nil
      let events = RunEvents(mode: mode, display: board)
      if mode == .lines, let poll {
        // Without the board, say once that an idle run is waiting, not stuck.
        Console.error("polling for tasks every \(Status.formatSeconds(poll)) (Ctrl-C to stop)")
      }
      let configuredRemote = context.settings.string(.remote)
      let remote = self.remote ?? (configuredRemote.isEmpty ? nil : configuredRemote)
      let options = RunOptions(
        maxParallel: maxParallel, poll: poll, onlyID: id, cleanupOnFail: cleanupOnFail, dirtyRun: dirtyRun,
        leaseSeconds: try context.settings.positiveInt(.lease), remote: remote)
      if let remote {
        // Fail early on a missing or unreachable remote, and start from the shared state.
        let sync = QueueSync(
          store: context.store, transport: GitCLITransport(gitDirectory: context.repository.gitDirectory))
        let report = try sync.sync(remote: remote)
        Console.error(report.summary)
      }
      let runner = TaskRunner(
        gitDirectory: context.repository.gitDirectory, settings: settings, options: options, events: events)
      Interrupts.install()
      if try !runner.recoverLostWorkers().isEmpty, let remote {
        _ = try? QueueSync(
          store: context.store, transport: GitCLITransport(gitDirectory: context.repository.gitDirectory)
        )
        .sync(remote: remote)
      }
      let outcomes = try runner.run()
      if let remote {
        // Publish what the last transitions left behind (a worker's own push may have lost a race).
        let sync = QueueSync(
          store: context.store, transport: GitCLITransport(gitDirectory: context.repository.gitDirectory))
        do {
          Console.error(try sync.sync(remote: remote).summary)
        } catch {
          Console.error("warning: the last transitions are not published yet: \(error) (run 'git taskq sync')")
        }
      }
      if !json { Output.write(RunSummary.text(outcomes, records: try? context.store.snapshot().records()), to: 1) }
      if Interrupts.isRequested { throw ExitCode(130) }
      // A task the user cancelled is not a failure of the run.
      if outcomes.contains(where: { $0.1 != .review && $0.1 != .cancelled }) { throw ExitCode(1) }
    }
  }
}

/// A one-line refusal of `run` before anything was claimed.
struct RunRefusal: Error, CustomStringConvertible, LocalizedError {
  var description: String
  init(_ description: String) { self.description = description }
  var errorDescription: String? { description }
}
