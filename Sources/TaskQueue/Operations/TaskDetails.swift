/// One task as `show` presents it: its record, its task file, and the names of its failure reports.
public struct TaskDetails: Encodable {
  public var record: TaskRecord
  /// The task file as the queue stores it (frontmatter with every resolved value, then the body).
  public var taskFile: String
  /// Each failure report as `git show` takes it (`refs/taskq/queue:tasks/<bb>/<id>/errors/<name>.md`),
  /// oldest first.
  public var errorReports: [String]

  enum CodingKeys: String, CodingKey {
    case record
    case taskFile = "task_file"
    case errorReports = "error_reports"
  }

  /// Reads task `id` from the queue's tip.
  ///
  /// - Parameters:
  ///   - id: the task.
  ///   - store: the queue.
  /// - Returns: the task's details.
  /// - Throws: ``QueueError`` when the id is malformed or the task is not in the queue; the store's errors.
  public static func read(_ id: String, from store: QueueStore) throws -> TaskDetails {
    try TaskID.validate(id)
    let snapshot = try store.snapshot()
    let record = try snapshot.existing(id)
    let reports = try snapshot.errorReports(id).map { Layout.revisionPath(Layout.errorsDirectory(id) + "/" + $0) }
    return TaskDetails(record: record, taskFile: try snapshot.taskFile(id) ?? "", errorReports: reports)
  }
}
