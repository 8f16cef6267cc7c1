/// One task as stored in `record.json`.
///
/// Field names are the seed's (`status --json | jq` scripts keep working) plus ours. Absent values are
/// written as `null`, so every record has every field.
public struct TaskRecord: Codable, Equatable, Sendable {
  public var id: String
  public var repo: String
  public var base: String
  public var branch: String
  /// Where the canonical task file lives: `refs/taskq/queue:tasks/<bb>/<id>/task.md`.
  public var taskFile: String
  public var status: TaskStatus
  public var worktreePath: String?
  public var container: String?
  public var port: Int?
  public var sessionID: String?
  public var attempt: Int
  /// The latest failure report: `refs/taskq/queue:tasks/<bb>/<id>/errors/<ts>.md`.
  public var errorFile: String?
  public var createdAt: String
  public var updatedAt: String
  /// First-in-first-out order, from `taskq.json`'s `next_seq`.
  public var seq: Int
  /// Higher runs first.
  public var priority: Int
  public var dependsOn: [String]
  /// `host:pid` of the worker that holds the task while it is `planning` or `building`.
  public var worker: String?
  public var leaseExpiresAt: String?
  /// When the task entered its current status.
  public var statusChangedAt: String?
  /// The first line of the latest failure, for `status`.
  public var lastError: String?

  public init(
    id: String, repo: String, base: String, branch: String, taskFile: String, status: TaskStatus = .todo,
    worktreePath: String? = nil, attempt: Int = 0, createdAt: String, seq: Int, priority: Int = 0,
    dependsOn: [String] = []
  ) {
    self.id = id
    self.repo = repo
    self.base = base
    self.branch = branch
    self.taskFile = taskFile
    self.status = status
    self.worktreePath = worktreePath
    self.attempt = attempt
    self.createdAt = createdAt
    self.updatedAt = createdAt
    self.statusChangedAt = createdAt
    self.seq = seq
    self.priority = priority
    self.dependsOn = dependsOn
  }

  enum CodingKeys: String, CodingKey {
    case id, repo, base, branch, status, container, port, attempt, seq, priority, worker
    case taskFile = "task_file"
    case worktreePath = "worktree_path"
    case sessionID = "session_id"
    case errorFile = "error_file"
    case createdAt = "created_at"
    case updatedAt = "updated_at"
    case dependsOn = "depends_on"
    case leaseExpiresAt = "lease_expires_at"
    case statusChangedAt = "status_changed_at"
    case lastError = "last_error"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    id = try c.decode(String.self, forKey: .id)
    repo = try c.decode(String.self, forKey: .repo)
    base = try c.decode(String.self, forKey: .base)
    branch = try c.decodeIfPresent(String.self, forKey: .branch) ?? "task/\(id)"
    taskFile = try c.decodeIfPresent(String.self, forKey: .taskFile) ?? ""
    status = try c.decode(TaskStatus.self, forKey: .status)
    worktreePath = try c.decodeIfPresent(String.self, forKey: .worktreePath)
    container = try c.decodeIfPresent(String.self, forKey: .container)
    port = try c.decodeIfPresent(Int.self, forKey: .port)
    sessionID = try c.decodeIfPresent(String.self, forKey: .sessionID)
    attempt = try c.decodeIfPresent(Int.self, forKey: .attempt) ?? 0
    errorFile = try c.decodeIfPresent(String.self, forKey: .errorFile)
    createdAt = try c.decode(String.self, forKey: .createdAt)
    updatedAt = try c.decodeIfPresent(String.self, forKey: .updatedAt) ?? createdAt
    seq = try c.decodeIfPresent(Int.self, forKey: .seq) ?? 0
    priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? 0
    dependsOn = try c.decodeIfPresent([String].self, forKey: .dependsOn) ?? []
    worker = try c.decodeIfPresent(String.self, forKey: .worker)
    leaseExpiresAt = try c.decodeIfPresent(String.self, forKey: .leaseExpiresAt)
    statusChangedAt = try c.decodeIfPresent(String.self, forKey: .statusChangedAt)
    lastError = try c.decodeIfPresent(String.self, forKey: .lastError)
  }

  public func encode(to encoder: any Encoder) throws {
    // `encode` (not `encodeIfPresent`) so that absent values appear as `null`.
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(id, forKey: .id)
    try c.encode(repo, forKey: .repo)
    try c.encode(base, forKey: .base)
    try c.encode(taskFile, forKey: .taskFile)
    try c.encode(status, forKey: .status)
    try c.encode(branch, forKey: .branch)
    try c.encode(worktreePath, forKey: .worktreePath)
    try c.encode(container, forKey: .container)
    try c.encode(port, forKey: .port)
    try c.encode(sessionID, forKey: .sessionID)
    try c.encode(attempt, forKey: .attempt)
    try c.encode(errorFile, forKey: .errorFile)
    try c.encode(createdAt, forKey: .createdAt)
    try c.encode(updatedAt, forKey: .updatedAt)
    try c.encode(seq, forKey: .seq)
    try c.encode(priority, forKey: .priority)
    try c.encode(dependsOn, forKey: .dependsOn)
    try c.encode(worker, forKey: .worker)
    try c.encode(leaseExpiresAt, forKey: .leaseExpiresAt)
    try c.encode(statusChangedAt, forKey: .statusChangedAt)
    try c.encode(lastError, forKey: .lastError)
  }

  /// Whether a worker holds this task under a lease that ran out at `now` (its worker is presumed lost).
  public func isStale(now: Int) -> Bool {
    guard status.isActive, let lease = leaseExpiresAt, let expiry = Timestamp.parse(lease) else { return false }
    return expiry < now
  }

  /// Clears what belongs to one run (container, port, session, worker, lease), as `retry` and `cleanup` do.
  public mutating func clearRuntimeHandles(keepWorktree: Bool) {
    container = nil
    port = nil
    sessionID = nil
    worker = nil
    leaseExpiresAt = nil
    if !keepWorktree { worktreePath = nil }
  }
}
