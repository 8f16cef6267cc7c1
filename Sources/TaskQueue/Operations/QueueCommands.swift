import Git

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

/// A task to add, with every value resolved.
public struct NewTask: Sendable, Equatable {
  public var id: String
  public var repo: String
  public var base: String
  public var branch: String
  public var worktreePath: String?
  public var priority: Int
  public var dependsOn: [String]
  public var body: String

  public init(
    id: String, repo: String, base: String, branch: String? = nil, worktreePath: String? = nil,
    priority: Int = 0, dependsOn: [String] = [], body: String
  ) {
    self.id = id
    self.repo = repo
    self.base = base
    self.branch = branch ?? "task/\(id)"
    self.worktreePath = worktreePath
    self.priority = priority
    self.dependsOn = dependsOn
    self.body = body
  }
}

extension QueueStore {
  /// Adds a `todo` task. The id must be new and every dependency must exist.
  @discardableResult
  public func add(_ task: NewTask) throws -> TaskRecord {
    try TaskID.validate(task.id)
    for dependency in task.dependsOn { try TaskID.validate(dependency) }
    return try update { tx in
      if try tx.record(task.id) != nil || tx.base.hasTaskDirectory(task.id) { throw QueueError.duplicate(task.id) }
      try tx.checkDependenciesExist(of: task.id, task.dependsOn)
      var record = TaskRecord(
        id: task.id, repo: task.repo, base: task.base, branch: task.branch,
        taskFile: Layout.revisionPath(Layout.taskFilePath(task.id)), worktreePath: task.worktreePath,
        createdAt: Timestamp.iso(tx.now), seq: tx.meta.nextSeq, priority: task.priority,
        dependsOn: task.dependsOn)
      record.updatedAt = record.createdAt
      tx.meta.nextSeq += 1
      tx.put(record)
      tx.putFile(task.id, "task.md", TaskFile.canonical(for: record, body: task.body))
      tx.operation = Operation(kind: .add, task: task.id, from: nil, to: .todo, worker: tx.worker)
      return record
    }
  }

  /// `review → done`.
  @discardableResult
  public func approve(_ id: String) throws -> TaskRecord {
    try transition(id, to: .done, command: "approve")
  }

  /// `todo|planning|building|review|failed → cancelled`. A worker running the task notices and stops.
  @discardableResult
  public func cancel(_ id: String) throws -> TaskRecord {
    try transition(id, to: .cancelled, command: "cancel")
  }

  /// `failed → todo`: clears the runtime handles and counts one more attempt.
  @discardableResult
  public func retry(_ id: String) throws -> TaskRecord {
    try transition(id, to: .todo, command: "retry") { record in
      record.attempt += 1
      record.clearRuntimeHandles(keepWorktree: true)
    }
  }

  /// Moves task `id` to `status` through the state machine, with an optional edit of the record.
  @discardableResult
  public func transition(
    _ id: String, to status: TaskStatus, command: String, detail: String? = nil,
    edit: (inout TaskRecord) throws -> Void = { _ in }
  ) throws -> TaskRecord {
    try TaskID.validate(id)
    return try update { tx in
      var record = try tx.existing(id)
      let from = record.status
      try tx.move(&record, to: status, command: command)
      try edit(&record)
      tx.put(record)
      tx.operation = Operation(
        kind: OperationKind(rawValue: command), task: id, from: from, to: status, worker: tx.worker, detail: detail)
      return record
    }
  }

  /// Deletes task `id` and its files from the queue (history keeps them). Refused while it runs.
  @discardableResult
  public func remove(_ id: String) throws -> TaskRecord {
    try TaskID.validate(id)
    return try update { tx in
      let record = try tx.existing(id)
      if record.status.isActive {
        throw QueueError.illegalTransition(
          id: id, command: "remove", status: record.status,
          needs: TaskStatus.displayOrder.filter { !$0.isActive })
      }
      let dependents = try tx.allRecords().filter { $0.dependsOn.contains(id) && !$0.status.isTerminal }
      if let first = dependents.first {
        throw QueueError.dependency(
          "cannot remove task '\(id)': task '\(first.id)' depends on it (remove or cancel '\(first.id)' first)")
      }
      tx.removeTask(id)
      tx.operation = Operation(kind: .remove, task: id, from: record.status, to: nil, worker: tx.worker)
      return record
    }
  }

  /// Removes the damaged task directories (see ``RecordRules``) that `select` picks, in one commit whose
  /// `Taskq-Op: repair` trailers name each path, so that `sync` carries the removal to every machine.
  ///
  /// A compare-and-swap like every write; nothing is written when nothing is selected.
  ///
  /// - Returns: what was removed (empty when nothing matched).
  @discardableResult
  public func removeDamaged(where select: (DamagedRecord) -> Bool) throws -> [DamagedRecord] {
    var attempt = 0
    while true {
      attempt += 1
      let base = try snapshot()
      let chosen = try base.damagedRecords().filter(select)
      guard let commit = base.commit, var tree = base.tree, !chosen.isEmpty else { return [] }
      for damage in chosen {
        if let next = try repository.tree(tree, removing: damage.components) { tree = try repository.tree(next) }
      }
      var operation = Operation(
        kind: .repair, task: chosen[0].path, from: nil, to: nil, worker: worker,
        detail: chosen.count == 1 ? "damaged record removed" : "\(chosen.count) damaged records removed")
      operation.otherTasks = chosen.dropFirst().map(\.path)
      let newCommit = try repository.createCommit(
        tree: tree.id, parents: [commit], message: operation.message, signature: signature)
      do {
        try? repository.ensureReflog(for: Layout.refName)
        try repository.updateReference(
          Layout.refName, to: newCommit, expected: commit, message: "taskq: \(operation.subject)")
        return chosen
      } catch let error as GitError where [.modified, .exists, .locked].contains(error.code) {
        guard attempt < maximumAttempts else { throw QueueError.contention(attempts: attempt) }
        usleep(UInt32(Int.random(in: 200...min(25_000, 200 << min(attempt, 7)))))
      }
    }
  }

  /// `remove --id <name>` for a name that is no valid task but names damaged directories: removes those.
  ///
  /// - Returns: the removed directories, or `nil` when task `name` is a valid record or nothing is damaged
  ///   under that name (the caller then removes the task as usual).
  public func removeDamaged(named name: String) throws -> [DamagedRecord]? {
    let snapshot = try snapshot()
    if try snapshot.record(name) != nil { return nil }
    guard !(try snapshot.damage(named: name)).isEmpty else { return nil }
    return try removeDamaged { $0.name == name || ($0.name.isEmpty && $0.bucket == name) }
  }
}
