import ArgumentParser
import Foundation
import Orchestrator
import TaskQueue

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
        prints one line per outcome. Ctrl-C stops claiming, stops the agents and marks in-flight tasks \
        failed ("interrupted"; retry brings them back); a second Ctrl-C exits at once.

        --remote NAME (or taskq.remote) shares the work between machines: each claim counts only once \
        it is pushed to the remote, every transition is pushed as it happens, and the lease \
        (taskq.lease seconds) is renewed while the task runs; a task whose lease expired is recovered \
        as failed ("worker lost") by 'git taskq recover' or the next run.

        --runtime local (or taskq.runtime=local) runs the agent directly in the worktree, without a \
        container; taskq.agentProgram names the agent.

        Exit status: 0 when every task reached review; 1 when a task failed or the run could not start; \
        130 when interrupted.

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

    @Flag(help: "Reuse an existing worktree and remove stale task containers before setup.")
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
      if outcomes.contains(where: { $0.1 != .review }) { throw ExitCode(1) }
    }

    /// One line per outcome: `review (2): T-001 T-002`.
    static func summary(_ outcomes: [(String, Outcome)]) -> String {
      if outcomes.isEmpty { return "nothing to run (no todo task whose dependencies are done)\n" }
      var lines: [String] = []
      for label in ["review", "failed", "interrupted", "cancelled", "lost"] {
        let ids = outcomes.filter { $0.1.label == label }.map(\.0)
        guard !ids.isEmpty else { continue }
        var line = "\(label) (\(ids.count)): \(ids.joined(separator: " "))"
        switch label {
        case "review": line += "  — next: git taskq review --id \(ids[0])"
        case "failed", "interrupted": line += "  — see: git taskq show --id \(ids[0])"
        default: break
        }
        lines.append(line)
      }
      return lines.joined(separator: "\n") + "\n"
    }
  }
}
