import TaskQueue

/// A refusal of `run` before anything was claimed, on one line.
public struct RunRefusal: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// One `run` from start to end: the checks that must pass before anything is claimed, then
/// sync → recover lost workers → sync → the worker pool → sync, when the work is shared through a remote.
///
/// Not `Sendable` (it holds the workspace's repository); the pool opens its own handles per thread.
public struct RunSession {
  /// `--poll`: off (one pass), every N seconds, or every `taskq.poll` seconds (the bare flag).
  public enum Poll: Equatable {
    case off
    case every(Double)
    case configured
  }

  public let workspace: QueueWorkspace
  public let settings: RunSettings
  public let options: RunOptions

  /// Resolves the run's settings and options, and refuses a run that cannot start.
  ///
  /// - Parameters:
  ///   - workspace: the opened repository, store and settings.
  ///   - onlyID: `--id`: run this task only, once.
  ///   - poll: `--poll`.
  ///   - cleanupOnFail: `--cleanup-on-fail`.
  ///   - dirtyRun: `--dirty-run`.
  ///   - remote: `--remote`; `nil` for `taskq.remote` (when set).
  /// - Throws: ``QueueError`` for a setting it cannot use (the container or agent program is not on
  ///   `PATH`); ``RunRefusal`` when no container engine answers. Nothing is claimed then.
  public init(
    workspace: QueueWorkspace, onlyID: String?, poll: Poll, cleanupOnFail: Bool, dirtyRun: Bool,
    remote: String?
  ) throws {
    let configuration = workspace.settings
    let settings = try RunSettings(configuration)
    let maxParallel = try configuration.positiveInt(.maxParallel)
    let seconds: Double? =
      switch poll {
      case .off: nil
      case .every(let seconds): seconds
      case .configured: Double(try configuration.positiveInt(.poll))
      }
    if let onlyID { try TaskID.validate(onlyID) }
    if settings.runtime == .docker, ProcessRunner.resolve(settings.containerProgram) == nil {
      throw QueueError.invalidValue(
        key: configuration.describe(.containerProgram), value: settings.containerProgram,
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
        key: configuration.describe(.agentProgram), value: settings.agentProgram,
        expected: "an agent program on PATH (install opencode, or set taskq.agentProgram)")
    }
    let configuredRemote = configuration.string(.remote)
    self.workspace = workspace
    self.settings = settings
    self.options = RunOptions(
      maxParallel: maxParallel, poll: seconds, onlyID: onlyID, cleanupOnFail: cleanupOnFail, dirtyRun: dirtyRun,
      leaseSeconds: try configuration.positiveInt(.lease),
      remote: remote ?? (configuredRemote.isEmpty ? nil : configuredRemote))
  }

  /// Runs the pool until nothing is claimable (or until interrupted, with `--poll`).
  ///
  /// With a remote: the first sync fails early on a missing or unreachable remote and starts from the
  /// shared state; a recovery of lost workers is published at once; a last publish pushes what the last
  /// transitions left behind (a worker's own push may have lost a race), and only warns when it fails,
  /// since the work itself is done and recorded here.
  ///
  /// - Parameters:
  ///   - events: where the pool reports progress.
  ///   - note: lines for the operator (sync summaries, warnings), for standard error.
  /// - Returns: each processed task's outcome, in the order they finished.
  /// - Throws: the first sync's error (nothing was claimed then), or the pool's.
  public func run(events: RunEvents, note: (String) -> Void) throws -> [(String, Outcome)] {
    let sync = QueueSync.forRemote(store: workspace.store, gitDirectory: workspace.gitDirectory)
    if let remote = options.remote { try sync.sync(remote: remote).lines.forEach(note) }
    let runner = TaskRunner(
      gitDirectory: workspace.gitDirectory, settings: settings, options: options, events: events)
    Interrupts.install()
    if try !runner.recoverLostWorkers().isEmpty, let remote = options.remote {
      do {
        Self.noticed(try sync.sync(remote: remote)).forEach(note)
      } catch {
        // Not fatal: the recovery is recorded here, and the workers' own pushes or the last sync below
        // publish it; say so rather than drop it.
        note("warning: the recovery of lost workers is not published yet: \(error) (run 'git taskq sync')")
      }
    }
    let outcomes = try runner.run()
    if let remote = options.remote {
      do {
        // A publish, not a whole sync: what the workers recorded goes out (with a fetch and a replay only if
        // the push is refused); when the workers' pushes already carried everything, no network at all.
        try sync.publish(remote: remote).lines.forEach(note)
      } catch {
        note("warning: the last transitions are not published yet: \(error) (run 'git taskq sync')")
      }
    }
    return outcomes
  }

  /// `recover`: fails the tasks of lost workers, between two syncs when `remote` is given (the second
  /// only when something was recovered).
  ///
  /// With a remote, only expired leases count, as in `run --remote`: two machines may share a host name,
  /// so a worker name's pid says nothing about a process of another machine.
  ///
  /// - Returns: the recovered ids, and the lines of the syncs: the first one's when it dropped or
  ///   superseded an operation (see ``SyncReport/notices``), the second one's always.
  public static func recover(in workspace: QueueWorkspace, remote: String?) throws -> (
    recovered: [String], lines: [String]
  ) {
    let sync = QueueSync.forRemote(store: workspace.store, gitDirectory: workspace.gitDirectory)
    var lines: [String] = []
    if let remote { lines += noticed(try sync.sync(remote: remote)) }
    let events = RunEvents(mode: .lines)
    let runner = TaskRunner(
      gitDirectory: workspace.gitDirectory, settings: try RunSettings(workspace.settings),
      options: RunOptions(remote: remote), events: events)
    let recovered = try runner.recoverLostWorkers()
    _ = events.stop()
    guard let remote, !recovered.isEmpty else { return (recovered, lines) }
    return (recovered, lines + (try sync.sync(remote: remote).lines))
  }

  /// A sync's lines when it dropped or superseded an operation, else none: for the syncs whose summary a
  /// command does not print, so that what they dropped is still named.
  public static func noticed(_ report: SyncReport) -> [String] {
    report.notices.isEmpty ? [] : report.lines
  }
}
