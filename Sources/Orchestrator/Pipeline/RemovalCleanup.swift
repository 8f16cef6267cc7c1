import TaskQueue

/// What `remove` leaves of a task on this machine: nothing that keeps running.
public enum RemovalCleanup {
  /// Stops and removes the container of `record`, a task just removed from the queue, and its worktree
  /// unless that holds uncommitted work (then it is kept, and named). A record this machine does not
  /// trust for cleanup (see ``RecordPolicy``) is left alone.
  ///
  /// - Parameters:
  ///   - record: the removed task's record.
  ///   - workspace: the opened repository, store and settings.
  /// - Returns: one line per thing done or kept, for standard output.
  /// - Throws: ``QueueError`` for settings `run` could not use either.
  public static func clean(_ record: TaskRecord, in workspace: QueueWorkspace) throws -> [String] {
    let settings = try RunSettings(workspace.settings)
    let policy = RecordPolicy(settings: settings, queueRepository: workspace.queueRepository)
    guard record.container != nil || record.worktreePath != nil, policy.refusal(record, for: .cleanup) == nil
    else { return [] }
    let result = Cleaner(settings: settings, queueDirectory: workspace.commonDirectory).clean(
      record, keepWorktree: false, force: false, secrets: ServerSecrets(commonDirectory: workspace.commonDirectory))
    return result.messages
  }
}
