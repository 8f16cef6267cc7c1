import Foundation
import Git
import TaskQueue

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
    if let age = store.abandonedLockAge() {
      findings.append(
        Finding(
          .warning, "stale lock '\(store.lockPath)' (\(Int(age))s old) left by a writer that died",
          fix: "rm \(store.lockPath) (the next write also removes it)"))
    }
    findings += programs()
    findings += containers(records)
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

  func containers(_ records: [TaskRecord]) -> [Finding] {
    guard ProcessRunner.resolve(settings.containerProgram) != nil,
      let result = try? ProcessRunner.run(
        ProcessSpec(
          settings.containerProgram,
          [
            "ps", "-a", "--filter", "label=\(ContainerLabel.managed)=true", "--format",
            "{{.Names}}\t{{.Label \"\(ContainerLabel.task)\"}}\t{{.Label \"\(ContainerLabel.repository)\"}}",
          ],
          timeout: 20)),
      result.succeeded
    else { return [] }
    let ids = Set(records.map(\.id))
    let ourRepository = store.repository.mainWorkingDirectory
    var findings: [Finding] = []
    for line in result.stdoutText.split(separator: "\n") {
      let fields = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
      guard fields.count >= 3, fields[2] == ourRepository || records.contains(where: { $0.repo == fields[2] }) else {
        continue
      }
      if !ids.contains(fields[1]) {
        findings.append(
          Finding(
            .warning, "container \(fields[0]) belongs to task '\(fields[1])', which is not in the queue",
            fix: "\(settings.containerProgram) rm -f \(fields[0])"))
      }
    }
    return findings
  }

  func worktrees(_ records: [TaskRecord]) -> [Finding] {
    var findings: [Finding] = []
    let ids = Set(records.map(\.id))
    // Only repositories this machine trusts are opened: a record's `repo` is untrusted input.
    let policy = RecordPolicy(settings: settings, queueRepository: store.repository.mainWorkingDirectory)
    let trusted = records.map(\.repo).filter(policy.isTrustedRepository)
    let repositories = Set(trusted + [store.repository.mainWorkingDirectory])
    for path in repositories.sorted() {
      guard let repository = try? Repository.open(at: path), let names = try? repository.worktreeNames() else {
        continue
      }
      for name in (try? repository.brokenWorktreeNames()) ?? [] where ids.contains(name) {
        findings.append(
          Finding(
            .warning, task: name,
            "its worktree registration in \(path) is half-written (a worker was killed while making it)",
            fix: "git taskq recover"))
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
