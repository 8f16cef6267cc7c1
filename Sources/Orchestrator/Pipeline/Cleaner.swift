import Git
import Synchronization
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
public struct Cleaner: Sendable {
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

  /// The uncommitted and untracked paths of the working tree at `path`; `nil` when there is none (gone, or
  /// not a repository), so a caller refuses only what it can name.
  public static func uncommittedChanges(at path: String) -> [String]? {
    guard FileManager.default.fileExists(atPath: path) else { return nil }
    // Not a repository (or unreadable): nothing to name, and `clean` checks again before deleting.
    return try? Repository.open(at: path).uncommittedChanges()
  }

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

  /// Cleans up one task: its container (unless `containersRemoved` says what ``removeContainers(of:)``
  /// did about it already), its server secret once the container is gone, and its worktree (kept when
  /// `keepWorktree`, or when it has uncommitted changes and not `force`).
  public func clean(
    _ record: TaskRecord, keepWorktree: Bool, force: Bool, secrets: ServerSecrets? = nil,
    containersRemoved: Result? = nil
  ) -> Result {
    var result = Result()
    if let containersRemoved {
      result = containersRemoved
    } else {
      removeContainers(record, into: &result)
    }
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
    names.formUnion(ContainerEngine.containerNames(for: record, queue: queue))
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

  /// How many containers ``removeContainers(of:)`` removes at once: the engine works on several at a time
  /// (20 `rm -f` take ~3 times less side by side than one after another, measured on Podman), and a bound
  /// keeps a cleanup of hundreds from starting hundreds of engine clients.
  public static let parallelRemovals = 8

  /// The containers of `records` removed as ``removeContainer(_:)`` removes each (only this queue's
  /// container of the task, with the same messages), but with one `inspect` for all of them and the
  /// removals ``parallelRemovals`` at a time. Returns one result per record, in order.
  public func removeContainers(of records: [TaskRecord]) -> [Result] {
    var results = [Result](repeating: Result(), count: records.count)
    let involved = records.indices.filter { records[$0].container != nil || settings.runtime == .docker }
    guard !involved.isEmpty else { return results }
    guard ProcessRunner.resolve(settings.containerProgram) != nil else {
      for index in involved { removeContainers(records[index], into: &results[index]) }
      return results
    }
    // The only container cleanup may remove is the one named as this queue names the task's; the recorded
    // name is looked at too, to say why it stays. (A container that merely carries the task's label under
    // another name is never ours: ``isOurs(_:of:queue:)`` checks the name.)
    func candidates(_ record: TaskRecord) -> [String] {
      Set(ContainerEngine.containerNames(for: record, queue: queue) + (record.container.map { [$0] } ?? [])).sorted()
    }
    let names = Set(involved.flatMap { candidates(records[$0]) }).sorted()
    guard let labels = engine.labels(of: names) else {
      // The engine could not list them at once: one by one, as before.
      let each = Self.parallelMap(involved, width: Self.parallelRemovals) { [self] index in
        var result = Result()
        removeContainers(records[index], into: &result)
        return result
      }
      for (index, result) in zip(involved, each) { results[index] = result }
      return results
    }
    var doomed: [String] = []
    for index in involved {
      let record = records[index]
      let ours = ContainerEngine.containerNames(for: record, queue: queue)
      for name in candidates(record) where ours.contains(name) {
        if let found = labels[name], ContainerEngine.isOurs(labels: found, taskID: record.id, queue: queue) {
          doomed.append(name)
        }
      }
    }
    let engine = self.engine
    let removals = Self.parallelMap(doomed, width: Self.parallelRemovals) { name in
      (try? engine.remove(name))?.succeeded ?? false
    }
    let removed = Dictionary(zip(doomed, removals), uniquingKeysWith: { a, b in a && b })
    for index in involved {
      let record = records[index]
      for name in candidates(record) {
        guard let succeeded = removed[name], ContainerEngine.containerNames(for: record, queue: queue).contains(name)
        else {
          if name == record.container && labels[name] != nil {
            results[index].messages.append(
              "container \(name) not removed: it does not carry git-taskq's labels for this task of this repository")
          }
          continue
        }
        if succeeded {
          results[index].removedContainers.append(name)
          results[index].messages.append("removed container \(name)")
        } else {
          results[index].messages.append(
            "container \(name) could not be removed (try: \(settings.containerProgram) rm -f \(name))")
        }
      }
    }
    return results
  }

  /// `transform` of each of `items`, `width` at a time on their own threads (engine calls block on a
  /// subprocess, so the cooperative pool, one thread per core, would run them nearly one by one).
  static func parallelMap<Item: Sendable, Value: Sendable>(
    _ items: [Item], width: Int, _ transform: @escaping @Sendable (Item) -> Value
  ) -> [Value] {
    guard items.count > 1 else { return items.map(transform) }
    let box = ParallelResults<Value>(count: items.count)
    var threads: [PosixThread] = []
    for lane in 0..<min(width, items.count) {
      let work: @Sendable () -> Void = {
        for index in stride(from: lane, to: items.count, by: width) { box.set(index, transform(items[index])) }
      }
      do {
        threads.append(try PosixThread(stackSize: 1 << 20, work))
      } catch {
        // No thread to be had: this lane runs here, so every item is still done.
        work()
      }
    }
    for thread in threads { thread.join() }
    return box.values
  }

  func removeWorktree(_ record: TaskRecord, path: String, force: Bool, into result: inout Result) {
    guard FileManager.default.fileExists(atPath: path) else { return }
    // The repository is the one the checkout belongs to (its common directory), wherever `repo` resolves.
    guard let checkout = try? Repository.open(at: path),
      let repository = try? Repository.open(at: checkout.commonDirectory),
      let registered = try? repository.worktreePath(named: record.id),
      TaskPipeline.resolved(registered) == TaskPipeline.resolved(path)
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

/// The results of ``Cleaner/parallelMap(_:width:_:)``, filled in by its threads.
private final class ParallelResults<Value: Sendable>: Sendable {
  private let slots: Mutex<[Value?]>

  init(count: Int) { slots = Mutex([Value?](repeating: nil, count: count)) }

  func set(_ index: Int, _ value: Value) { slots.withLock { $0[index] = value } }

  var values: [Value] { slots.withLock { $0.compactMap { $0 } } }
}
