import Git
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Drives one claimed task through setup, plan and build to review, recording every stage in the queue.
///
/// Confined to one thread: it owns that thread's ``QueueStore`` (and so its repository handle).
final class TaskPipeline {
  let store: QueueStore
  let settings: RunSettings
  let options: RunOptions
  let events: RunEvents
  /// The outside world: container engine, agent, health probe, clock, interrupt.
  let environment: RunEnvironment
  var engine: any ContainerRuntime { environment.containers }
  /// With `run --remote`: publishes every transition as it happens.
  let sync: QueueSync?
  /// With `run --remote` inside a pool: the process's publisher, which pushes the transitions of all its
  /// workers together (see ``RemotePublisher``); `publish()` then only asks it to.
  var publisher: RemotePublisher?
  /// When this worker's lease on the current task runs out (seconds since 1970).
  var leaseExpiry = 0

  /// A pipeline over `store` (confined to this thread) that publishes through `sync` when given.
  ///
  /// - Parameters:
  ///   - store: this thread's store of the queue.
  ///   - settings: images, programs, timeouts, roots.
  ///   - options: the options of this `run`.
  ///   - events: where progress goes.
  ///   - sync: with `run --remote`, what publishes each transition.
  ///   - environment: the seams to the outside world; the real ones (``RunEnvironment/live(settings:)``)
  ///     when `nil`.
  init(
    store: QueueStore, settings: RunSettings, options: RunOptions, events: RunEvents, sync: QueueSync? = nil,
    environment: RunEnvironment? = nil
  ) {
    self.store = store
    self.settings = settings
    self.options = options
    self.events = events
    self.sync = sync
    self.environment = environment ?? .live(settings: settings)
  }

  /// This queue's identity on container labels.
  var queue: String { ContainerEngine.queueIdentity(commonDirectory: store.repository.commonDirectory) }

  var policy: RecordPolicy { RecordPolicy(settings: settings, queueRepository: store.repository.mainWorkingDirectory) }

  /// Pushes the local queue to the remote (with `run --remote`). An unreachable remote is a warning: the
  /// transition is recorded locally and the next sync publishes it.
  func publish() {
    if let publisher {
      publisher.request()
      return
    }
    guard let sync, let remote = options.remote else { return }
    do {
      let report = try sync.sync(remote: remote)
      for drop in report.dropped { events.note("warning: \(drop)") }
    } catch {
      events.note("warning: could not publish to '\(remote)': \(error)")
    }
  }

  /// Renews the lease when a third of it is left (and publishes the renewal).
  func renewLeaseIfDue(_ id: String) throws {
    let now = environment.clock.nowSeconds()
    guard leaseExpiry - now <= max(1, options.leaseSeconds / 3) else { return }
    let record = try store.renewLease(id, seconds: options.leaseSeconds)
    leaseExpiry = record.leaseExpiresAt.flatMap(Timestamp.parse) ?? now + options.leaseSeconds
    // Pushed before the agent goes on (not only queued): see RemotePublisher.flush.
    if let publisher { publisher.flush(isUrgent: true) } else { publish() }
  }

  /// Runs `claimed` (already `planning` under this worker) to its end for this run.
  func process(_ claimed: TaskRecord) -> Outcome {
    var record = claimed
    let id = record.id
    var stage = Stage.setup
    leaseExpiry =
      record.leaseExpiresAt.flatMap(Timestamp.parse) ?? environment.clock.nowSeconds() + options.leaseSeconds
    do {
      events.event(id, "claimed by \(store.worker)", from: .todo, to: .planning, stage: Stage.setup.rawValue)
      // The record may come from a remote: never create a worktree outside what this machine trusts.
      if let refusal = policy.refusal(record, for: .run) {
        throw StageFailure(
          .setup, summary: refusal,
          detail: "Nothing was created: the task's repo or worktree_path is not trusted on this machine.")
      }
      let worktree = try prepareWorktree(record)
      record = try store.advance(id, kind: .setup, detail: "worktree ready") { $0.worktreePath = worktree }
      publish()
      events.event(id, "worktree \(worktree)", stage: Stage.setup.rawValue)

      var attach: String?
      if settings.runtime == .docker {
        stage = .container
        record = try startContainer(record, worktree: worktree)
        attach = "http://127.0.0.1:\(settings.containerPort)"
      }

      stage = .planning
      events.event(id, "\(settings.planCommand) started", stage: settings.planCommand)
      let plan = try runAgent(
        record, command: settings.planCommand, attach: attach, session: nil,
        timeout: settings.planTimeout, stage: .planning)
      let session = AgentCommand.sessionID(in: plan.stdoutText)
      record = try store.advance(id, to: .building, kind: .build, detail: "plan made") { $0.sessionID = session }
      publish()
      events.event(id, "plan made", from: .planning, to: .building, stage: settings.buildCommand)

      stage = .building
      _ = try runAgent(
        record, command: settings.buildCommand, attach: attach, session: session,
        timeout: settings.buildTimeout, stage: .building)
      record = try store.advance(id, to: .review, kind: .review, detail: "ready for review") {
        $0.worker = nil
        $0.leaseExpiresAt = nil
      }
      publish()
      events.event(id, "ready for review", from: .building, to: .review)
      return .review
    } catch let QueueError.lostClaim(_, status) {
      // A cancelled task's container is left for `cleanup`, like a failed one: nothing is destroyed here.
      events.event(id, "stopped: the task is now '\(status.rawValue)'")
      return status == .cancelled ? .cancelled : .lost(status.rawValue)
    } catch let failure as StageFailure {
      return fail(id, stage: stage, failure: failure)
    } catch {
      return fail(id, stage: stage, failure: StageFailure(stage, summary: "\(error)"))
    }
  }

  // MARK: Stages

  /// Creates branch `task/<id>` from the base and its worktree, through libgit2. Returns the worktree path.
  /// Held while a worktree is made (see ``prepareWorktree(_:)``).
  private static let worktreeCreation = Lock()

  func prepareWorktree(_ record: TaskRecord) throws -> String {
    guard let repositoryPath = policy.repositoryPath(record) else {
      throw StageFailure(.setup, summary: "repo '\(record.repo)' names no repository on this machine")
    }
    let repository: Repository
    do {
      repository = try Repository.open(at: repositoryPath)
    } catch {
      throw StageFailure(.setup, summary: "repository '\(repositoryPath)' cannot be opened: \(error)")
    }
    guard let base = try repository.resolveCommit(record.base) else {
      throw StageFailure(.setup, summary: "base '\(record.base)' does not exist in '\(repositoryPath)'")
    }
    let repoName = PathName.lastComponent(repository.mainWorkingDirectory)
    let path: String
    do {
      path = try pinnedWorktree(record) ?? SafePath.join(settings.worktreesRoot, repoName, record.id)
    } catch let failure as StageFailure {
      throw failure
    } catch {
      throw StageFailure(.setup, summary: "no worktree path for '\(record.id)': \(error)")
    }
    // A registration half-written by a worker killed inside libgit2 (or a full disk) holds no work: start
    // again, and drop the directory libgit2 may have made if nothing but its `.git` file is in it.
    if repository.isHalfMadeWorktree(named: record.id) {
      try repository.removeHalfMadeWorktree(named: record.id)
      events.event(record.id, "removed a half-made worktree registration", stage: Stage.setup.rawValue)
      Self.removeIfEmptyCheckout(path)
    }
    let registered = try repository.worktreePath(named: record.id).map(Self.resolved)
    if registered == nil, FileManager.default.fileExists(atPath: path) {
      // What an add stopped before its registration was complete left here: a checkout whose `.git` names
      // this task's registration (see Repository.removeLeftoverCheckout). An empty directory stays taken.
      repository.removeLeftoverCheckout(at: path, named: record.id)
    }
    if FileManager.default.fileExists(atPath: path) {
      // The queue records this worktree as this task's (an earlier attempt made it, `retry` kept it): it is
      // the task's own, so it is reused with its branch. `--dirty-run` reuses one the queue does not record.
      let isOwn =
        registered == Self.resolved(path)
        && (record.worktreePath.map(Self.resolved) == Self.resolved(path) || options.dirtyRun)
      if isOwn {
        if let pid = AgentProcesses.running(taskID: record.id, worktree: path).first {
          throw StageFailure(
            .setup, summary: "an agent of an earlier attempt still runs in '\(path)' (pid \(pid))",
            detail: "Two agents never share a worktree: stop it (kill \(pid)) or wait for it, then retry.")
        }
        return path
      }
      throw StageFailure(
        .setup, summary: "worktree path '\(path)' already exists",
        detail: registered == Self.resolved(path)
          ? "It is this task's worktree from an earlier attempt: reuse it with 'git taskq run --id \(record.id) --dirty-run', or remove it with 'git taskq cleanup --id \(record.id)'."
          : "It is not a worktree of '\(repositoryPath)'; move it away or give the task another worktree_path.")
    }
    if let registered {
      // A registered worktree whose directory is gone is stale: prune it. One that exists elsewhere is
      // someone's work: never touch it.
      guard !FileManager.default.fileExists(atPath: registered) else {
        throw StageFailure(
          .setup,
          summary: "a worktree named '\(record.id)' already exists in '\(repositoryPath)' at '\(registered)'",
          detail:
            "Remove it ('git -C \(repositoryPath) worktree remove \(registered)') if it is not needed, then retry.")
      }
      try repository.removeWorktree(named: record.id)
    }
    do {
      // One worktree made at a time in this process: libgit2 reads every worktree's HEAD while adding one,
      // and a sibling half-made at that instant once failed an add with "reference is already checked out"
      // (four claims of one push set up at once). It takes milliseconds.
      try Self.worktreeCreation.withLock {
        try repository.createBranch(record.branch, at: base)
        try repository.addWorktree(named: record.id, at: path, branch: record.branch)
      }
    } catch let error as GitError {
      throw StageFailure(.setup, summary: "worktree '\(path)' cannot be created: \(error.message)")
    }
    return path
  }

  /// The worktree path the user pinned for `record` (`--worktree-path`, kept in its task file), checked
  /// against this machine's trust; `nil` when none was pinned, so the path is derived here. The record's
  /// own `worktree_path` is where the last attempt ran, possibly on another machine.
  func pinnedWorktree(_ record: TaskRecord) throws -> String? {
    guard let text = try store.snapshot().taskFile(record.id),
      let pinned = try TaskFile.parse(Array(text.utf8), path: "task.md").worktreePath
    else { return nil }
    guard policy.isTrustedWorktree(pinned) else {
      throw StageFailure(
        .setup,
        summary:
          "refusing task '\(record.id)': its pinned worktree_path '\(pinned)' is outside taskq.worktreesRoot and every taskq.trustedPath",
        detail:
          "Check the task with 'git taskq show --id \(record.id)', then trust it: git config --add taskq.trustedPath \(pinned)"
      )
    }
    return pinned
  }

  func startContainer(_ record: TaskRecord, worktree: String) throws -> TaskRecord {
    let id = record.id
    guard let port = try store.reservePort(for: id, in: settings.portRange, isFree: Loopback.isFree) else {
      throw StageFailure(
        .container,
        summary: "no free port in \(settings.portRange.lowerBound)-\(settings.portRange.upperBound)",
        detail: "Every port of taskq.portRange is held by an active task or bound by another program.")
    }
    let name = ContainerEngine.containerName(for: record, queue: queue)
    // The task's own container from an earlier attempt (its name and our labels) is in the way of the new
    // one: remove it. Nothing else is touched, whatever its labels say.
    if engine.isRunning(name) != nil, engine.isOurs(name, of: record, queue: queue) {
      // A failed removal is said, not reported as done: `docker run` then fails on the name in use.
      let failure: String
      do {
        let removal = try engine.remove(name)
        failure = removal.succeeded ? "" : removal.endingDescription
      } catch {
        failure = "\(error)"
      }
      if failure.isEmpty {
        events.event(id, "removed the container of an earlier attempt, \(name)")
      } else {
        events.note("warning: \(id): could not remove the container of an earlier attempt, \(name) (\(failure))")
      }
    }
    let repositoryPath = policy.repositoryPath(record) ?? record.repo
    let repository = try Repository.open(at: repositoryPath)
    let common = Paths.trimmingTrailingSlashes(repository.commonDirectory)
    var environment: [String: String] = [:]
    var authorization: String?
    if settings.serverPassword {
      let password = try ServerSecrets(commonDirectory: store.repository.commonDirectory).password(for: id)
      environment["OPENCODE_SERVER_PASSWORD"] = password
      authorization = ServerSecrets.authorization(password)
    }
    let request = ContainerRequest(
      name: name, taskID: id, repository: repositoryPath, queue: queue, gitDirectory: common, worktree: worktree,
      hostPort: port,
      containerPort: settings.containerPort, image: settings.image, environment: environment)
    events.event(id, "starting container \(name) on 127.0.0.1:\(port)", stage: Stage.container.rawValue)
    // Record the name first, so that a crash between start and record still lets cleanup find it.
    var updated = try store.advance(id, kind: .setup, detail: "container \(name)") {
      $0.container = name
      $0.port = port
    }
    publish()
    _ = try engine.start(request, shouldStop: self.environment.isInterrupted)
    try waitUntilHealthy(id: id, name: name, port: port, authorization: authorization)
    updated = try store.advance(id, kind: .setup, detail: "server ready")
    publish()
    events.event(id, "server ready on 127.0.0.1:\(port)", stage: Stage.container.rawValue)
    return updated
  }

  func waitUntilHealthy(id: String, name: String, port: Int, authorization: String?) throws {
    let clock = environment.clock
    let start = clock.now()
    var lastCheck = -Double.infinity
    while clock.now() - start < settings.healthTimeout {
      try checkInterrupted()
      if environment.health.httpStatus(port: port, path: "/global/health", timeout: 1, authorization: authorization)
        == 200
      {
        return
      }
      if clock.now() - lastCheck > 2 {
        lastCheck = clock.now()
        // A `cancel` from another process stops the wait, as it stops an agent stage.
        // A read that fails is tried again at the next poll; the wait's timeout bounds it.
        if let status = try? store.snapshot().record(id)?.status, status == .cancelled {
          throw QueueError.lostClaim(id: id, status: status)
        }
        if engine.isRunning(name) == false {
          throw StageFailure(.container, summary: "container \(name) exited before its server answered")
        }
      }
      clock.sleep(seconds: 0.2)
    }
    throw StageFailure(
      .container,
      summary:
        "the OpenCode server did not answer GET /global/health on 127.0.0.1:\(port) within \(Int(settings.healthTimeout)) s"
    )
  }

  func runAgent(
    _ record: TaskRecord, command: String, attach: String?, session: String?, timeout: Double, stage: Stage
  ) throws -> ProcessResult {
    let body = try store.snapshot().taskFile(record.id).map(Self.body(ofTaskFile:)) ?? ""
    let agent = AgentCommand(
      program: settings.runtime == .docker ? "opencode" : settings.agentProgram, command: command,
      agent: settings.agent, model: settings.model, variant: settings.variant, attach: attach, session: session,
      title: "taskq \(record.id)")
    let argv = agent.arguments(prompt: body)
    let worktree = record.worktreePath ?? ""
    var spec: ProcessSpec
    var guarded: ProcessSpec
    // The agent (or the `docker exec` client) carries its task and worktree in its environment, so that an
    // agent left by a lost worker can be found (see AgentProcesses).
    let marks = ["TASKQ_TASK_ID": record.id, "TASKQ_WORKTREE": worktree]
    if settings.runtime == .docker, let container = record.container {
      spec = engine.execSpec(container: container, directory: worktree, argv, timeout: timeout)
      spec.environment = marks
      guarded = AgentGuard.wrap(spec, stopContainer: (settings.containerProgram, container))
    } else {
      spec = ProcessSpec(argv[0], Array(argv.dropFirst()), directory: worktree, timeout: timeout)
      spec.environment = marks.merging(["TASKQ_STAGE": stage.rawValue]) { a, _ in a }
      guarded = AgentGuard.wrap(spec)
    }
    // The steps so far are only requested (``publish()``), not waited for: the publisher pushes them in the
    // background, or the next claim round's push carries them. A worker killed before they are pushed leaves
    // them in the local queue; a later sync of this clone replays them, and the replay makes a dead worker's
    // steps lose to the remote's recovery of its task.
    let clock = environment.clock
    var lastPoll = -Double.infinity
    var cancelled = false
    var lost: TaskStatus?
    let result: ProcessResult
    do {
      result = try environment.agents.run(guarded) { [self] in
        if environment.isInterrupted() { return true }
        // Re-read the task at most once a second: a `cancel` from another process stops the agent.
        guard clock.now() - lastPoll > 1 else { return false }
        lastPoll = clock.now()
        // A read that fails is tried again at the next poll; the stage's timeout bounds it.
        if let status = try? store.snapshot().record(record.id)?.status, status == .cancelled {
          cancelled = true
          return true
        }
        // A renewal that finds the task moved (cancelled on a remote, recovered) stops the agent too.
        do {
          try renewLeaseIfDue(record.id)
        } catch QueueError.lostClaim(_, let status) {
          cancelled = status == .cancelled
          lost = status
          return true
        } catch {
          events.note("warning: \(record.id): lease not renewed: \(error)")
        }
        return false
      }
    } catch let error as SpawnError {
      throw StageFailure(stage, summary: error.description, spec: spec)
    }
    if settings.runtime == .docker, let container = record.container,
      result.ending == .timedOut || result.ending == .stopped
    {
      // Killing the `docker exec` client does not stop what it started inside the container (moby/moby#9098):
      // stop the container (it is kept, stopped, for inspection).
      // Best effort: the stage has failed already, and its report says so; a container left running is
      // found by `fsck` and removed by `cleanup`.
      _ = try? engine.stop(container)
    }
    if cancelled { throw QueueError.lostClaim(id: record.id, status: .cancelled) }
    if let lost { throw QueueError.lostClaim(id: record.id, status: lost) }
    if result.ending == .stopped {
      throw StageFailure(stage, summary: "interrupted", spec: spec, result: result)
    }
    guard result.succeeded else {
      var summary = "\(command) \(result.endingDescription)"
      if let line = Self.lastErrorLine(result) { summary += ": \(line)" }
      throw StageFailure(stage, summary: summary, spec: spec, result: result)
    }
    return result
  }

  // MARK: Failure

  func fail(_ id: String, stage: Stage, failure: StageFailure) -> Outcome {
    let interrupted = environment.isInterrupted()
    let summary = interrupted ? "interrupted by Ctrl-C or SIGTERM" : failure.summary
    // Unreadable record: the failure cannot be recorded either, and the outcome still says it failed.
    let current = (try? store.snapshot().record(id)) ?? nil
    guard let record = current else { return .failed(summary) }
    // Only a container named as ours is asked for its log (the record may name another program's).
    let log = record.container.flatMap { $0.hasPrefix("task-\(id)-") ? engine.logTail($0) : nil }
    let report = ErrorReport(
      record: record, stage: stage.rawValue, summary: summary, worker: store.worker, failure: failure,
      containerLog: log,
      note: interrupted ? "The run was interrupted (Ctrl-C or SIGTERM); `retry` brings the task back." : nil)
    do {
      let stored = try store.fail(
        id, kind: interrupted ? .interrupt : .fail, summary: summary, report: report.markdown)
      publish()
      events.event(id, summary, from: record.status, to: stored.status)
      if options.cleanupOnFail {
        cleanUpAfterFailure(stored)
      } else if stage == .container, let container = stored.container {
        // A container that never served (failed start or health check, interrupted start) is of no use
        // for inspection: its log is in the report. Remove it, so nothing is left running.
        let removed = Cleaner(settings: settings, queueDirectory: store.repository.commonDirectory)
          .removeContainer(stored)
        if !removed.removedContainers.isEmpty {
          events.event(id, "removed container \(container)")
          recordCleanup(id, removed.keepingWorktree())
        }
      }
    } catch {
      events.note("warning: \(id): the failure could not be recorded: \(error)")
    }
    return interrupted ? .interrupted : .failed(summary)
  }

  func cleanUpAfterFailure(_ record: TaskRecord) {
    if let refusal = policy.refusal(record, for: .cleanup) {
      events.note("\(record.id): not cleaned up: \(refusal)")
      return
    }
    let result = Cleaner(settings: settings, queueDirectory: store.repository.commonDirectory).clean(
      record, keepWorktree: false, force: false)
    for line in result.messages { events.note("\(record.id): \(line)") }
    recordCleanup(record.id, result)
  }

  /// Records a cleanup that happened; the container or worktree is gone either way, so a record that
  /// cannot be written is said, not thrown (the next `cleanup` or `fsck` sees the stale handle).
  func recordCleanup(_ id: String, _ result: Cleaner.Result) {
    do {
      _ = try store.recordCleanup(id, result: result)
    } catch {
      events.note("warning: \(id): the cleanup could not be recorded: \(error)")
    }
  }

  /// Throws when the run was interrupted (Ctrl-C, SIGTERM), to end a stage's waiting.
  func checkInterrupted() throws {
    if environment.isInterrupted() { throw StageFailure(.container, summary: "interrupted") }
  }

  // MARK: Helpers

  /// The body of a canonical task file (everything after the frontmatter).
  static func body(ofTaskFile text: String) -> String {
    guard text.hasPrefix("---\n"),
      let end = text[text.index(text.startIndex, offsetBy: 3)...].firstRange(of: "\n---\n")
    else { return text }
    return String(text[end.upperBound...]).trimmingWhitespace()
  }

  /// The last line of the agent's stderr (else stdout) that says something, cut to 200 characters.
  static func lastErrorLine(_ result: ProcessResult) -> String? {
    for text in [result.stderrText, result.stdoutText] {
      if let line = text.split(separator: "\n").map({ $0.trimmingSpaces() }).last(where: {
        !$0.isEmpty
      }) {
        return line.count > 200 ? String(line.prefix(197)) + "..." : line
      }
    }
    return nil
  }

  /// Removes `path` when it holds nothing but a `.git` file (what libgit2 leaves of a worktree it could not
  /// finish); anything else there is someone's and stays.
  static func removeIfEmptyCheckout(_ path: String) {
    // Only an empty checkout is removed; anything unreadable or still there is left alone.
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: path),
      entries.allSatisfy({ $0 == ".git" })
    else { return }
    // If it stays, the worktree's creation that follows fails on it and reports the path.
    try? FileManager.default.removeItem(atPath: path)
  }

  static func normalize(_ path: String) -> String { Paths.trimmingTrailingSlashes(path) }

  /// `path` with its symbolic links resolved when it exists, else ``normalize(_:)``: a worktree is
  /// registered under its resolved path, and a record keeps the configured one (a `worktreesRoot` reached
  /// through a symbolic link).
  static func resolved(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return normalize(path) }
    defer { free(resolved) }
    return String(cString: resolved)
  }
}
