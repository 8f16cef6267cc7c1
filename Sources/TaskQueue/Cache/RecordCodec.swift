/// The binary form of a ``TaskRecord`` in the snapshot cache: every stored property, in declaration order.
///
/// Decoding this is several times faster than decoding `record.json`, which is why the cache stores records
/// rather than JSON. The price is that this codec must list every property of ``TaskRecord``:
/// ``coversTaskRecord`` compares ``fields`` with the properties `Mirror` finds, and when they differ (a
/// property was added without updating this file) the cache is not used at all, so a stale codec can slow
/// reads down but never drop a field. `SnapshotCacheTests` fails in that case.
enum RecordCodec {
  /// The properties of ``TaskRecord`` this codec writes, in declaration order.
  static let fields = [
    "id", "repo", "base", "branch", "taskFile", "status", "worktreePath", "container", "port", "sessionID",
    "attempt", "errorFile", "createdAt", "updatedAt", "seq", "priority", "dependsOn", "worker",
    "leaseExpiresAt", "statusChangedAt", "lastError",
  ]

  /// Whether ``fields`` is exactly the list of ``TaskRecord``'s stored properties.
  static let coversTaskRecord: Bool = {
    let probe = TaskRecord(id: "x", repo: "", base: "", branch: "", taskFile: "", createdAt: "", seq: 0)
    return Mirror(reflecting: probe).children.map { $0.label ?? "" } == fields
  }()

  /// A fingerprint of the codec, written into the cache header: a file written by a different codec is
  /// ignored.
  static let schema: UInt32 = {
    var hash: UInt32 = 0x811c_9dc5
    for byte in fields.joined(separator: ",").utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
    return hash
  }()

  static func write(_ r: TaskRecord, to w: inout ByteWriter) {
    w.string(r.id)
    w.string(r.repo)
    w.string(r.base)
    w.string(r.branch)
    w.string(r.taskFile)
    w.string(r.status.rawValue)
    w.optionalString(r.worktreePath)
    w.optionalString(r.container)
    w.optionalInt(r.port)
    w.optionalString(r.sessionID)
    w.int(r.attempt)
    w.optionalString(r.errorFile)
    w.string(r.createdAt)
    w.string(r.updatedAt)
    w.int(r.seq)
    w.int(r.priority)
    w.strings(r.dependsOn)
    w.optionalString(r.worker)
    w.optionalString(r.leaseExpiresAt)
    w.optionalString(r.statusChangedAt)
    w.optionalString(r.lastError)
  }

  static func read(from r: inout ByteReader) throws -> TaskRecord {
    let id = try r.string()
    let repo = try r.string()
    let base = try r.string()
    let branch = try r.string()
    let taskFile = try r.string()
    guard let status = TaskStatus(rawValue: try r.string()) else { throw CacheFormatError(reason: "bad status") }
    var record = TaskRecord(
      id: id, repo: repo, base: base, branch: branch, taskFile: taskFile, status: status, createdAt: "", seq: 0)
    record.worktreePath = try r.optionalString()
    record.container = try r.optionalString()
    record.port = try r.optionalInt()
    record.sessionID = try r.optionalString()
    record.attempt = try r.int()
    record.errorFile = try r.optionalString()
    record.createdAt = try r.string()
    record.updatedAt = try r.string()
    record.seq = try r.int()
    record.priority = try r.int()
    record.dependsOn = try r.strings()
    record.worker = try r.optionalString()
    record.leaseExpiresAt = try r.optionalString()
    record.statusChangedAt = try r.optionalString()
    record.lastError = try r.optionalString()
    return record
  }
}
