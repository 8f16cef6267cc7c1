import Foundation
import Git
import TaskQueue

/// Removes a task's runtime artifacts without ever destroying work.
///
/// Containers are matched by our labels (never by a name substring), worktrees are removed through libgit2
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

  public init(settings: RunSettings) {
    self.settings = settings
    self.engine = ContainerEngine(program: settings.containerProgram, timeout: settings.setupTimeout)
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
    for name in names.sorted() {
      // Only containers that carry our labels for this very task.
      guard engine.label(ContainerLabel.managed, of: name) == "true",
        engine.label(ContainerLabel.task, of: name) == record.id
      else {
        if name == record.container && engine.isRunning(name) != nil {
          result.messages.append("container \(name) not removed: it does not carry git-taskq's labels for this task")
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
    guard let repository = try? Repository.open(at: record.repo),
      let registered = try? repository.worktreePath(named: record.id),
      TaskPipeline.normalize(registered) == TaskPipeline.normalize(path)
    else {
      result.worktreeKept = true
      result.messages.append("kept \(path): it is not this task's registered worktree of \(record.repo)")
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
