/// Records a new version of a task's file: the `edit` operation.
///
/// The checks are `add`'s, through ``AddRequest``; the id cannot change, and dependencies must exist and
/// must not make a cycle. Only the frontmatter keys the user changed change the record, so a failed task
/// keeps the worktree its run recorded.
public struct TaskEdit {
  public let store: QueueStore
  public let settings: Settings

  public init(store: QueueStore, settings: Settings) {
    self.store = store
    self.settings = settings
  }

  /// The statuses whose task file can be edited: a running task's agent already read its file, and a
  /// reviewed or finished one is history.
  public static let editable: [TaskStatus] = [.todo, .failed]

  /// What an edit recorded: the stored record and the keys that changed (`body`, `priority`, …).
  public struct Outcome {
    public var record: TaskRecord
    public var changed: [String]
  }

  public static func checkEditable(_ record: TaskRecord) throws {
    guard editable.contains(record.status) else {
      throw QueueError.illegalTransition(id: record.id, command: "edit", status: record.status, needs: editable)
    }
  }

  /// The task file of task `id` as stored, to start an edit from.
  ///
  /// - Throws: ``QueueError`` when the id is malformed, the task is not in the queue or cannot be edited.
  public func start(_ id: String) throws -> String {
    try TaskID.validate(id)
    let snapshot = try store.snapshot()
    let record = try snapshot.existing(id)
    try Self.checkEditable(record)
    return try snapshot.taskFile(id) ?? ""
  }

  /// Checks the file at `editedPath` and records it, as one compare-and-swap.
  ///
  /// - Parameters:
  ///   - id: the task.
  ///   - original: the text the edit started from; the edit is refused when the stored file is no longer
  ///     that text (someone else changed the task meanwhile).
  ///   - editedPath: the file the user edited.
  /// - Returns: the stored record and what changed; nothing is recorded when nothing changed.
  /// - Throws: ``QueueError`` for a file `add` would refuse, a changed id, a dependency that is missing or
  ///   makes a cycle, or a task changed meanwhile; the store's errors.
  public func apply(id: String, original: String, editedPath: String) throws -> Outcome {
    let (edited, _) = try TaskFile.read(path: editedPath)
    if let newID = edited.id, newID != id {
      throw QueueError.taskFile(
        path: editedPath,
        problem: "the id cannot change (it is '\(id)'; add a new task for '\(QueueError.printable(newID))')")
    }
    // The stored file was written by `add` or an earlier edit, so it parses; if it somehow does not,
    // every key counts as changed, which records the whole edited file: nothing is lost.
    let before = try? TaskFile.parse(Array(original.utf8), path: "original")
    var request = AddRequest()
    request.id = id
    request.taskFile = editedPath
    let resolved = try request.resolve(settings: settings, current: store.repository)
    var changed: [String] = []
    let record = try store.update { tx -> TaskRecord in
      var record = try tx.existing(id)
      try Self.checkEditable(record)
      guard let current = try tx.base.taskFile(id), current == original else {
        throw QueueError.conflictingOptions(
          "task '\(id)' was changed by someone else while you edited it (see 'git taskq log --id \(id)')")
      }
      changed = []
      func update<T: Equatable>(_ key: String, _ old: T?, _ new: T?, _ apply: () -> Void) {
        if old != new {
          apply()
          changed.append(key)
        }
      }
      update("repo", before?.repo, edited.repo) { record.repo = resolved.repo }
      update("base", before?.base, edited.base) { record.base = resolved.base }
      update("branch", before?.branch, edited.branch) { record.branch = resolved.branch }
      update("worktree_path", before?.worktreePath, edited.worktreePath) { record.worktreePath = resolved.worktreePath }
      update("priority", before?.priority ?? 0, edited.priority ?? 0) { record.priority = resolved.priority }
      update("depends_on", before?.dependsOn ?? [], edited.dependsOn ?? []) { record.dependsOn = resolved.dependsOn }
      if before?.body != edited.body { changed.append("body") }
      // Only comments or formatting changed: nothing to record.
      guard !changed.isEmpty else { return record }
      try tx.checkDependenciesExist(of: record.id, record.dependsOn)
      try tx.checkNoDependencyCycle(record)
      tx.put(record)
      tx.putFile(id, "task.md", TaskFile.canonical(for: record, body: edited.body))
      tx.operation = Operation(
        kind: "edit", task: id, from: record.status, to: record.status, worker: tx.worker,
        detail: "edited: " + changed.joined(separator: ", "))
      return record
    }
    return Outcome(record: record, changed: changed)
  }
}
