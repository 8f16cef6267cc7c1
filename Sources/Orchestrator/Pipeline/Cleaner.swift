import Git
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Removes a task's runtime artifacts without ever destroying work.
///
/// A container is removed only when it is this queue's container of the task (its recorded name and the
/// labels managed, task and queue: see ``ContainerLabel``), worktrees are removed through libgit2
/// and only when they are registered worktrees of the task's repository at the recorded path, and a
/// worktree with uncommitted changes is kept unless `force`. Branches always stay.
public struct Cleaner {
  public struct Result: Sendable {
    public var messages: [String] = []
    public var removedContainers: [String] = []
    public var worktreeRemoved = false
    /// The worktree still exists (kept on purpose, or because it had changes).
    public var worktreeKept = false
  }

  let settings: RunSettings
  let engine: ContainerEngine
  /// The queue's identity, for the ownership label (``ContainerEngine/queueIdentity(commonDirectory:)``).
  let queue: String

  /// A cleaner for the tasks of the queue whose git directory is `queueDirectory`.
  public init(settings: RunSettings, queueDirectory: String) {
    self.settings = settings
    self.engine = ContainerEngine(program: settings.containerProgram, timeout: settings.setupTimeout)
    self.queue = ContainerEngine.queueIdentity(commonDirectory: queueDirectory)
  }

  /// Removes this queue's containers whose task is not in `ids` (removed from the queue). Returns one
  /// message per container.
  public func removeOrphanContainers(keeping ids: Set<String>) -> [String] {
    guard ProcessRunner.resolve(settings.containerProgram) != nil else { return [] }
    var messages: [String] = []
    for (name, task) in engine.containers(ofQueue: queue) where !ids.contains(task) {
      guard name.hasPrefix("task-\(task)-") else { continue }
      if let removal = try? engine.remove(name), removal.succeeded {
        messages.append("removed container \(name) of task '\(task)', which is no longer in the queue")
      } else {
        messages.append("container \(name) could not be removed (try: \(settings.containerProgram) rm -f \(name))")
      }
    }
    return messages
  }

  /// Removes the worktree registrations that a worker killed inside libgit2's worktree creation (or a full
  /// disk) left half-written, for tasks of `records` that no worker holds, with the directory libgit2 made
  /// when nothing but its `.git` file is in it. Returns one message per repair.
  public func repairHalfMadeWorktrees(_ records: [TaskRecord], queueRepository: String) -> [String] {
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    let policy = RecordPolicy(settings: settings, queueRepository: queueRepository)
    let repositories = Set(records.compactMap(policy.trustedRepositoryPath) + [queueRepository])
    var messages: [String] = []
    for path in repositories.sorted() {
      guard policy.isTrustedRepository(path), let repository = try? Repository.open(at: path),
        let broken = try? repository.halfMadeWorktreeNames()
      else { continue }
      for name in broken {
        guard let record = byID[name], !record.status.isActive else { continue }
        do {
          try repository.removeHalfMadeWorktree(named: name)
        } catch {
          messages.append("\(name): the half-made worktree registration in \(path) could not be removed: \(error)")
          continue
        }
        if let worktree = record.worktreePath { TaskPipeline.removeIfEmptyCheckout(worktree) }
        messages.append("\(name): removed a half-made worktree registration in \(path) (its worker was killed)")
      }
    }
    return messages
  }

  /// Stops and removes the task's container (when it is ours) and nothing else.
  public func removeContainer(_ record: TaskRecord) -> Result {
    var result = Result()
    removeContainers(record, into: &result)
    return result
  }

  public func clean(_ record: TaskRecord, keepWorktree: Bool, force: Bool, secrets: ServerSecrets? = nil) -> Result {
    var result = Result()
    removeContainers(record, into: &result)
    if let secrets, result.removedContainers.count > 0 || record.container == nil { secrets.remove(for: record.id) }
    if let path = record.worktreePath {
      if keepWorktree {
        result.worktreeKept = FileManager.default.fileExists(atPath: path)
      } else {
        removeWorktree(record, path: path, force: force, into: &result)
      }
    }
    return result
  }

  func removeContainers(_ record: TaskRecord, into result: inout Result) {
    // On the local runtime no container is ever made; a task that had one has it recorded (the name is
    // recorded before the start) or, after a retry cleared it, carries our labels: look those up only when
    // containers are in use.
    guard record.container != nil || settings.runtime == .docker else { return }
    let engineAvailable = ProcessRunner.resolve(settings.containerProgram) != nil
    guard engineAvailable else {
      if let container = record.container {
        result.messages.append("container \(container) not removed: '\(settings.containerProgram)' is not on PATH")
      }
      return
    }
    var names = Set(engine.containers(forTask: record.id))
    if let container = record.container { names.insert(container) }
    // After a retry the record no longer names the container; the name is the task's all the same.
    names.insert(ContainerEngine.containerName(for: record))
    for name in names.sorted() {
      // Only this queue's container of this very task: its name and all three labels.
      guard engine.isOurs(name, of: record, queue: queue) else {
        if name == record.container && engine.isRunning(name) != nil {
          result.messages.append(
            "container \(name) not removed: it does not carry git-taskq's labels for this task of this repository")
        }
        continue
      }
      if let removal = try? engine.remove(name), removal.succeeded {
        result.removedContainers.append(name)
        result.messages.append("removed container \(name)")
      } else {
        result.messages.append(
          "container \(name) could not be removed (try: \(settings.containerProgram) rm -f \(name))")
      }
    }
  }

  func removeWorktree(_ record: TaskRecord, path: String, force: Bool, into result: inout Result) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    // The repository is the one the checkout belongs to (its common directory), wherever `repo` resolves.
    guard let checkout = try? Repository.open(at: path),
      let repository = try? Repository.open(at: checkout.commonDirectory),
      let registered = try? repository.worktreePath(named: record.id),
      TaskPipeline.normalize(registered) == TaskPipeline.normalize(path)
    else {
      result.worktreeKept = true
      result.messages.append("kept \(path): it is not a registered worktree of task '\(record.id)'")
      return
    }
    if !force {
      let changes: [String]
      do {
        changes = try Repository.open(at: path).uncommittedChanges()
      } catch {
        result.worktreeKept = true
        result.messages.append("kept worktree \(path): its status cannot be read (\(error))")
        return
      }
      if !changes.isEmpty {
        result.worktreeKept = true
        result.messages.append(
          "kept worktree \(path): \(changes.count) uncommitted change(s) (commit them, or 'cleanup --id \(record.id) --force')"
        )
        return
      }
    }
    do {
      try repository.removeWorktree(named: record.id)
      result.worktreeRemoved = true
      result.messages.append("removed worktree \(path) (branch \(record.branch) kept)")
    } catch {
      result.worktreeKept = true
      result.messages.append("worktree \(path) could not be removed: \(error)")
    }
  }
}

extension QueueStore {
  /// Records a cleanup: runtime handles cleared, the worktree path kept only when the worktree still exists.
  @discardableResult
  public func recordCleanup(_ id: String, result: Cleaner.Result) throws -> TaskRecord {
    try update { tx in
      var record = try tx.existing(id)
      let before = record
      record.clearRuntimeHandles(keepWorktree: result.worktreeKept)
      guard record != before else { return record }
      tx.put(record)
      tx.operation = Operation(
        kind: "cleanup", task: id, from: record.status, to: record.status, worker: tx.worker,
        detail: result.worktreeRemoved ? "cleaned up, worktree removed" : "cleaned up")
      return record
    }
  }
}

extension Cleaner.Result {
  /// This result with the worktree counted as kept (when only the container was cleaned).
  public func keepingWorktree() -> Cleaner.Result {
    var result = self
    result.worktreeKept = true
    return result
  }
}
