import Git
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Checks the machine around the queue: a stale ref lock, the external programs, containers and worktrees
/// of ours whose task no longer exists, and records that point outside the configured roots (a queue
/// pulled from a remote is untrusted input).
public struct MachineChecker {
  let store: QueueStore
  let settings: RunSettings
  let engine: ContainerEngine

  public init(store: QueueStore, settings: RunSettings) {
    self.store = store
    self.settings = settings
    self.engine = ContainerEngine(program: settings.containerProgram, timeout: min(settings.setupTimeout, 20))
  }

  public func check(records: [TaskRecord]) -> [Finding] {
    var findings: [Finding] = []
    switch store.staleLock() {
    case .leftByDeadWriter(let age):
      findings.append(
        Finding(
          .warning, "stale lock '\(store.lockPath)' (\(age)s old) left by a git-taskq writer that died",
          fix: "the next write removes it (or: rm \(store.lockPath))"))
    case .foreign(let age) where age >= 5:
      findings.append(
        Finding(
          .warning, "'\(store.lockPath)' (\(age)s old) is held by another git process or left by one that crashed",
          fix: "if no git process is running: rm -rf \(store.lockPath) (git-taskq never removes another program's lock)"
        ))
    case .foreign, nil:
      break
    }
    findings += programs()
    findings += containers(records)
    findings += lostWorkers(records)
    findings += worktrees(records)
    let policy = RecordPolicy(settings: settings, queueRepository: store.repository.mainWorkingDirectory)
    for record in records {
      findings += policy.problems(record).map { Finding(.warning, task: record.id, $0.message, fix: $0.fix) }
    }
    return findings
  }

  func programs() -> [Finding] {
    var findings: [Finding] = []
    if settings.runtime == .docker, ProcessRunner.resolve(settings.containerProgram) == nil {
      findings.append(
        Finding(
          .warning, "'\(settings.containerProgram)' is not on PATH: 'run' cannot start containers",
          fix: "install docker or podman, or git config taskq.runtime local"))
    }
    if settings.runtime == .docker, ProcessRunner.resolve(settings.containerProgram) != nil,
      let reason = engine.unavailability(timeout: 5)
    {
      findings.append(
        Finding(
          .warning, "\(reason): 'run' refuses to start",
          fix: "start the engine (docker, or podman system service), or git config taskq.runtime local"))
    }
    if settings.runtime == .local, ProcessRunner.resolve(settings.agentProgram) == nil {
      findings.append(
        Finding(
          .warning, "'\(settings.agentProgram)' is not on PATH: 'run --runtime local' cannot start the agent",
          fix: "install opencode, or git config taskq.agentProgram PATH"))
    }
    if ProcessRunner.resolve(settings.reviewProgram) == nil {
      findings.append(
        Finding(
          .warning, "'\(settings.reviewProgram)' is not on PATH: 'review' can only --print",
          fix: "install OpenChamber, or git config taskq.reviewProgram PATH"))
    }
    return findings
  }

  /// This queue's containers (by the queue label) whose task is no longer in the queue.
  func containers(_ records: [TaskRecord]) -> [Finding] {
    guard ProcessRunner.resolve(settings.containerProgram) != nil else { return [] }
    let queue = ContainerEngine.queueIdentity(commonDirectory: store.repository.commonDirectory)
    let ids = Set(records.map(\.id))
    return engine.containers(ofQueue: queue).filter { !ids.contains($0.task) && $0.name.hasPrefix("task-\($0.task)-") }
      .map {
        Finding(
          .warning, "container \($0.name) belongs to task '\($0.task)', which is not in the queue",
          fix: "git taskq cleanup")
      }
  }

  /// Active tasks whose worker was a process of this host that is gone (its agents may still run).
  func lostWorkers(_ records: [TaskRecord]) -> [Finding] {
    records.compactMap { record in
      guard record.status.isActive, let owner = record.worker, let process = WorkerProcess(owner),
        process.isOnThisHost, !process.isAlive
      else { return nil }
      return Finding(
        .warning, task: record.id, "its worker \(owner) no longer runs on this host (killed or crashed)",
        fix: "git taskq recover")
    }
  }

  func worktrees(_ records: [TaskRecord]) -> [Finding] {
    var findings: [Finding] = []
    let ids = Set(records.map(\.id))
    // Only repositories this machine trusts are opened: a record's `repo` is untrusted input.
    let policy = RecordPolicy(settings: settings, queueRepository: store.repository.mainWorkingDirectory)
    let trusted = records.compactMap(policy.trustedRepositoryPath)
    let repositories = Set(trusted + [store.repository.mainWorkingDirectory])
    for path in repositories.sorted() {
      guard let repository = try? Repository.open(at: path), let names = try? repository.worktreeNames() else {
        continue
      }
      for name in (try? repository.halfMadeWorktreeNames()) ?? [] where ids.contains(name) {
        findings.append(
          Finding(
            .warning, task: name,
            "its worktree registration \(repository.commonDirectory)worktrees/\(name) is half-made (a worker was killed, or the disk was full, while making it)",
            fix: "git taskq cleanup --id \(name) (the next attempt repairs it too)"))
      }
      for name in names where !ids.contains(name) && TaskID.problem(with: name) == nil {
        guard let worktree = try? repository.worktreePath(named: name),
          TaskPipeline.normalize(worktree).hasPrefix(settings.worktreesRoot + "/")
        else { continue }
        findings.append(
          Finding(
            .warning, "worktree \(worktree) of \(path) belongs to task '\(name)', which is not in the queue",
            fix: "git -C \(path) worktree remove \(worktree)"))
      }
    }
    return findings
  }
}
