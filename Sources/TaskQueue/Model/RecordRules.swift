import Git

/// The one rule set every reader applies to a task directory of a queue commit (status, show, log, run,
/// claims, sync's replay, review, cleanup, recover, fsck, import): what `tasks/<bb>/<name>/` must be for its
/// record to be used. A directory that breaks a rule is a ``DamagedRecord``: skipped, reported once, and
/// removable with `git taskq remove --id <name>` or `git taskq fsck --repair`.
///
/// The caps (documented in docs/storage-format.md) bound what one hostile record can cost a reader; every
/// writer of ours stays within them.
public enum RecordRules {
  /// `record.json`, in bytes.
  public static let maximumRecordSize = 64 << 10
  /// `task.md`, in bytes: the largest task file `add` accepts, plus room for the canonical frontmatter.
  public static let maximumTaskFileSize = TaskFile.maximumSize + (64 << 10)
  /// One failure report under `errors/`, in bytes.
  public static let maximumErrorReportSize = 1 << 20
  /// Failure reports per task.
  public static let maximumErrorReports = 1000
  /// Any string field of a record, in bytes (paths up to PATH_MAX).
  public static let maximumFieldLength = 4096
  /// `last_error`, in bytes.
  public static let maximumLastErrorLength = 4096
  /// Entries of `depends_on`.
  public static let maximumDependencies = 1000
  /// `attempt`.
  public static let maximumAttempt = 1_000_000
  /// `taskq.json`, in bytes.
  public static let maximumMetaSize = 4096
  /// One `Taskq-*` trailer value, in characters (longer ones are cut when read).
  public static let maximumTrailerLength = 512

  /// Why the directory `tasks/<bucket>/<name>` holding `record` is not acceptable, or `nil`.
  ///
  /// Checks the id's syntax (as `add` does), that the directory is named after the id and sits in the id's
  /// bucket, and the type and range of every field.
  public static func problem(with record: TaskRecord, bucket: String, name: String) -> String? {
    if let problem = TaskID.problem(with: record.id) { return "its id is invalid: \(problem)" }
    if record.id != name { return "record.json names the task '\(QueueError.printable(record.id))'" }
    if Layout.bucket(of: record.id) != bucket {
      return "it is stored in bucket '\(bucket)', its id belongs in '\(Layout.bucket(of: record.id))'"
    }
    let strings: [(String, String?)] = [
      ("repo", record.repo), ("base", record.base), ("branch", record.branch), ("task_file", record.taskFile),
      ("worktree_path", record.worktreePath), ("container", record.container), ("session_id", record.sessionID),
      ("error_file", record.errorFile), ("created_at", record.createdAt), ("updated_at", record.updatedAt),
      ("worker", record.worker), ("lease_expires_at", record.leaseExpiresAt),
      ("status_changed_at", record.statusChangedAt),
    ]
    for (key, value) in strings {
      guard let value else { continue }
      if value.utf8.count > maximumFieldLength { return "'\(key)' is longer than \(maximumFieldLength) bytes" }
      if value.utf8.contains(0) { return "'\(key)' contains a NUL byte" }
    }
    if let lastError = record.lastError, lastError.utf8.count > maximumLastErrorLength {
      return "'last_error' is longer than \(maximumLastErrorLength) bytes"
    }
    if record.repo.isEmpty { return "'repo' is empty" }
    if record.base.isEmpty { return "'base' is empty" }
    if !Repository.isValidBranchName(record.branch) {
      return "'branch' is not a valid branch name: '\(QueueError.printable(record.branch))'"
    }
    let taskFile = Layout.revisionPath(Layout.taskFilePath(record.id))
    if !record.taskFile.isEmpty && record.taskFile != taskFile { return "'task_file' is not '\(taskFile)'" }
    if let errorFile = record.errorFile {
      let prefix = Layout.revisionPath(Layout.errorsDirectory(record.id)) + "/"
      guard errorFile.hasPrefix(prefix), PathComponent.problem(with: String(errorFile.dropFirst(prefix.count))) == nil
      else { return "'error_file' is not a report of this task ('\(prefix)<name>')" }
    }
    if let container = record.container, !isContainerName(container) {
      return "'container' is not a container name: '\(QueueError.printable(container))'"
    }
    if let port = record.port, !(1...65535).contains(port) { return "'port' \(port) is not in 1-65535" }
    if !(0...maximumAttempt).contains(record.attempt) { return "'attempt' \(record.attempt) is out of range" }
    if record.seq < 0 { return "'seq' \(record.seq) is negative" }
    if record.dependsOn.count > maximumDependencies {
      return "'depends_on' has more than \(maximumDependencies) entries"
    }
    for dependency in record.dependsOn {
      if let problem = TaskID.problem(with: dependency) {
        return "'depends_on' holds an invalid id '\(QueueError.printable(dependency))': \(problem)"
      }
      if dependency == record.id { return "it depends on itself" }
    }
    let times: [(String, String?)] = [
      ("created_at", record.createdAt), ("updated_at", record.updatedAt),
      ("lease_expires_at", record.leaseExpiresAt), ("status_changed_at", record.statusChangedAt),
    ]
    for (key, value) in times {
      if let value, Timestamp.parse(value) == nil {
        return "'\(key)' is not an ISO-8601 time: '\(QueueError.printable(value))'"
      }
    }
    return nil
  }

  /// Why the entries of a task directory are not acceptable (`record.json` and `task.md` regular files of at
  /// most their cap, `errors` a directory of such reports), or `nil`. Sizes come from object headers: no
  /// blob is loaded.
  static func problem(withEntries taskTree: Tree, repository: Repository) throws -> String? {
    guard let record = taskTree.item(named: "record.json") else { return "it has no record.json" }
    if !record.isRegularFile { return "record.json is \(describe(record)), not a regular file" }
    if let problem = try sizeProblem(record, "record.json", maximumRecordSize, repository) { return problem }
    if let taskFile = taskTree.item(named: "task.md") {
      if !taskFile.isRegularFile { return "task.md is \(describe(taskFile)), not a regular file" }
      if let problem = try sizeProblem(taskFile, "task.md", maximumTaskFileSize, repository) { return problem }
    }
    if let errors = taskTree.item(named: "errors") {
      guard errors.isDirectory else { return "errors is \(describe(errors)), not a directory" }
      if let problem = try problem(withReports: try repository.tree(errors.id), repository: repository) {
        return problem
      }
    }
    return nil
  }

  /// Why the failure reports in `errors` are not acceptable, or `nil`.
  static func problem(withReports errors: Tree, repository: Repository) throws -> String? {
    let items = errors.items
    if items.count > maximumErrorReports { return "it has more than \(maximumErrorReports) failure reports" }
    for item in items {
      if PathComponent.problem(with: item.name) != nil {
        return "errors/ holds an entry with an unsafe name '\(QueueError.printable(item.name))'"
      }
      if !item.isRegularFile { return "errors/\(item.name) is \(describe(item)), not a regular file" }
      if let problem = try sizeProblem(item, "errors/\(item.name)", maximumErrorReportSize, repository) {
        return problem
      }
    }
    return nil
  }

  static func sizeProblem(_ item: TreeItem, _ name: String, _ cap: Int, _ repository: Repository) throws -> String? {
    let size = try repository.objectHeader(item.id).size
    return size > cap ? "\(name) is \(size) bytes, more than the cap of \(cap)" : nil
  }

  static func describe(_ item: TreeItem) -> String {
    switch item.mode {
    case 0o120000: return "a symbolic link"
    case 0o160000: return "a gitlink (submodule)"
    case TreeItem.directory: return "a directory"
    default: return "an entry of mode \(String(item.mode, radix: 8))"
    }
  }

  /// Docker's container names: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
  static func isContainerName(_ name: String) -> Bool {
    guard let first = name.utf8.first, isAlphanumeric(first) else { return false }
    return name.utf8.allSatisfy {
      isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
    }
  }

  private static func isAlphanumeric(_ b: UInt8) -> Bool {
    (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122)
  }
}

/// A task directory of a queue commit that breaks ``RecordRules``: skipped by every reader, named by `fsck`.
public struct DamagedRecord: Sendable, Equatable, CustomStringConvertible {
  /// The bucket directory's name (`tasks/<bucket>`).
  public var bucket: String
  /// The task directory's name, as stored (not necessarily a valid id); empty when the bucket itself is bad.
  public var name: String
  public var problem: String

  public init(bucket: String, name: String, problem: String) {
    self.bucket = bucket
    self.name = name
    self.problem = problem
  }

  /// `tasks/<bucket>/<name>` (or `tasks/<bucket>` for a bad bucket).
  public var path: String { components.joined(separator: "/") }

  /// The path components inside the queue's tree.
  var components: [String] {
    if bucket.isEmpty && name.isEmpty { return [Layout.tasksDirectory] }
    return name.isEmpty ? [Layout.tasksDirectory, bucket] : [Layout.tasksDirectory, bucket, name]
  }

  public var description: String { "'\(QueueError.printable(path))': \(problem)" }
}
