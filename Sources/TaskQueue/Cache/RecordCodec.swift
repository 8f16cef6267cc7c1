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

  /// A fingerprint of the codec (its fields and the statuses it numbers), written into the cache header: a
  /// file written by a different codec is ignored.
  static let schema: UInt32 = {
    var hash: UInt32 = 0x811c_9dc5
    let text = fields.joined(separator: ",") + ";" + TaskStatus.allCases.map(\.rawValue).joined(separator: ",")
    for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 0x0100_0193 }
    return hash
  }()

  /// Writes `r` with its strings as numbers into `strings` (most records share their repository, base and
  /// many timestamps, and making a `String` is what decoding spends its time on).
  static func write(_ r: TaskRecord, to w: inout ByteWriter, strings: inout StringTable) {
    func text(_ value: String) { w.u32(strings.number(value)) }
    func optional(_ value: String?) { w.u32(value.map { strings.number($0) + 1 } ?? 0) }
    text(r.id)
    text(r.repo)
    text(r.base)
    text(r.branch)
    text(r.taskFile)
    w.u8(UInt8(TaskStatus.allCases.firstIndex(of: r.status) ?? 0))
    optional(r.worktreePath)
    optional(r.container)
    w.optionalInt(r.port)
    optional(r.sessionID)
    w.int(r.attempt)
    optional(r.errorFile)
    text(r.createdAt)
    text(r.updatedAt)
    w.int(r.seq)
    w.int(r.priority)
    w.u32(UInt32(r.dependsOn.count))
    for dependency in r.dependsOn { text(dependency) }
    optional(r.worker)
    optional(r.leaseExpiresAt)
    optional(r.statusChangedAt)
    optional(r.lastError)
  }

  /// Reads a record written by ``write(_:to:strings:)``; `string` gives the string of a number of the table
  /// (and throws for a number outside it).
  static func read(from r: inout ByteReader, string: (Int) throws -> String) throws -> TaskRecord {
    func text() throws -> String { try string(Int(try r.u32())) }
    func optional() throws -> String? {
      let number = Int(try r.u32())
      guard number > 0 else { return nil }
      return try string(number - 1)
    }
    let id = try text()
    let repo = try text()
    let base = try text()
    let branch = try text()
    let taskFile = try text()
    let statusNumber = Int(try r.u8())
    guard statusNumber < TaskStatus.allCases.count else { throw CacheFormatError(reason: "bad status") }
    var record = TaskRecord(
      id: id, repo: repo, base: base, branch: branch, taskFile: taskFile,
      status: TaskStatus.allCases[statusNumber], createdAt: "", seq: 0)
    record.worktreePath = try optional()
    record.container = try optional()
    record.port = try r.optionalInt()
    record.sessionID = try optional()
    record.attempt = try r.int()
    record.errorFile = try optional()
    record.createdAt = try text()
    record.updatedAt = try text()
    record.seq = try r.int()
    record.priority = try r.int()
    let dependencies = Int(try r.u32())
    guard dependencies <= r.remaining / 4 else { throw CacheFormatError(reason: "bad count") }
    record.dependsOn = try (0..<dependencies).map { _ in try text() }
    record.worker = try optional()
    record.leaseExpiresAt = try optional()
    record.statusChangedAt = try optional()
    record.lastError = try optional()
    return record
  }
}

/// The distinct strings of a cache file, each written once and referred to by number.
struct StringTable {
  private var numbers: [String: UInt32] = [:]
  private(set) var strings: [String] = []

  mutating func number(_ value: String) -> UInt32 {
    if let known = numbers[value] { return known }
    let number = UInt32(strings.count)
    numbers[value] = number
    strings.append(value)
    return number
  }
}
