import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The changes one ``QueueStore/update(_:)`` makes, on top of a fresh snapshot.
///
/// Reads see the pending changes. Nothing touches the repository until the store commits the transaction.
public struct QueueTransaction {
  /// The snapshot this attempt started from (the ref's tip at that moment).
  public let base: QueueSnapshot
  public var meta: QueueMeta
  /// Who makes the change (`host:pid`), for the record and the trailers.
  public let worker: String
  /// The clock of this attempt, one value for every field it stamps.
  public let now: Int
  /// What the commit says; the closure sets it.
  public var operation: Operation?

  var records: [String: TaskRecord] = [:]
  var files: [String: [UInt8]] = [:]
  var removedTasks: Set<String> = []

  init(base: QueueSnapshot, worker: String, now: Int) {
    self.base = base
    self.meta = base.meta
    self.worker = worker
    self.now = now
  }

  public var hasChanges: Bool { !records.isEmpty || !files.isEmpty || !removedTasks.isEmpty || meta != base.meta }

  /// The record of `id` as this transaction sees it.
  public func record(_ id: String) throws -> TaskRecord? {
    if removedTasks.contains(id) { return nil }
    if let pending = records[id] { return pending }
    return try base.record(id)
  }

  /// The record of `id`; ``QueueError/notFound(_:)`` or ``QueueError/damaged(id:problem:)`` (see
  /// ``QueueSnapshot/existing(_:)``) when there is none.
  public func existing(_ id: String) throws -> TaskRecord {
    if let record = try record(id) { return record }
    if removedTasks.contains(id) { throw QueueError.notFound(id) }
    return try base.existing(id)
  }

  /// Every record as this transaction sees it, in FIFO order.
  public func allRecords() throws -> [TaskRecord] {
    // Nothing pending yet (a claim's first look): the snapshot's list, as it is (cached, in FIFO order).
    if records.isEmpty && removedTasks.isEmpty { return try base.records() }
    var byID: [String: TaskRecord] = [:]
    for record in try base.records() where !removedTasks.contains(record.id) { byID[record.id] = record }
    for (id, record) in records { byID[id] = record }
    return byID.values.sorted { $0.seq < $1.seq }
  }

  /// Stores `record` (stamping `updated_at`).
  public mutating func put(_ record: TaskRecord) {
    var record = record
    record.updatedAt = Timestamp.iso(now)
    removedTasks.remove(record.id)
    records[record.id] = record
  }

  /// Writes a file inside task `id`'s directory (e.g. `task.md`, `errors/<ts>.md`).
  public mutating func putFile(_ id: String, _ name: String, _ text: String) {
    files["\(Layout.taskDirectory(id))/\(name)"] = Array(text.utf8)
  }

  /// Removes task `id` with everything under its directory.
  public mutating func removeTask(_ id: String) {
    records[id] = nil
    files = files.filter { !$0.key.hasPrefix(Layout.taskDirectory(id) + "/") }
    removedTasks.insert(id)
  }

  /// Moves `record` to `status`, checking the state machine, and stamps the transition time (and `updated_at`).
  public mutating func move(_ record: inout TaskRecord, to status: TaskStatus, command: String) throws {
    guard record.status.canMove(to: status) else {
      let needs = TaskStatus.displayOrder.filter { $0.canMove(to: status) }
      throw QueueError.illegalTransition(id: record.id, command: command, status: record.status, needs: needs)
    }
    record.status = status
    // Both stamps now, so the record a command returns (not only the one ``put(_:)`` stores) carries them.
    let stamp = Timestamp.iso(now)
    record.statusChangedAt = stamp
    record.updatedAt = stamp
  }

  /// Records a failure report under the task's `errors/` and points `error_file` at it. Returns the path.
  @discardableResult
  public mutating func addErrorReport(_ record: inout TaskRecord, markdown: String, summary: String) throws -> String {
    let existing = Set(try base.errorReports(record.id))
    var name = "\(Timestamp.compact(now)).md"
    var n = 2
    while existing.contains(name) || files["\(Layout.errorsDirectory(record.id))/\(name)"] != nil {
      name = "\(Timestamp.compact(now))-\(n).md"
      n += 1
    }
    putFile(record.id, "errors/\(name)", Self.capped(markdown, RecordRules.maximumErrorReportSize - 64))
    let path = "\(Layout.errorsDirectory(record.id))/\(name)"
    record.errorFile = Layout.revisionPath(path)
    record.lastError = Self.capped(summary, RecordRules.maximumLastErrorLength - 8)
    return path
  }

  /// The tree updates this transaction makes, records encoded as pretty, key-sorted JSON.
  func treeUpdates(repository: Repository) throws -> [TreeUpdate] {
    var updates: [TreeUpdate] = []
    for id in removedTasks.sorted() where records[id] == nil {
      updates.append(.remove(Layout.taskDirectory(id)))
    }
    for (id, record) in records.sorted(by: { $0.key < $1.key }) {
      // No write of ours turns a valid queue into one that readers would skip.
      if let problem = RecordRules.problem(with: record, bucket: Layout.bucket(of: id), name: id) {
        throw QueueError.invalidRecord(id: id, problem: problem)
      }
      updates.append(.write(Layout.recordPath(id), blob: try repository.writeBlob(try Layout.storedJSON(record))))
    }
    for (path, bytes) in files.sorted(by: { $0.key < $1.key }) {
      let cap = path.hasSuffix("/task.md") ? RecordRules.maximumTaskFileSize : RecordRules.maximumErrorReportSize
      if bytes.count > cap {
        throw QueueError.invalidRecord(
          id: path, problem: "the file is \(bytes.count) bytes, more than the cap of \(cap)")
      }
      updates.append(.write(path, blob: try repository.writeBlob(bytes)))
    }
    if meta != base.meta || base.commit == nil {
      updates.append(.write(Layout.metaPath, blob: try repository.writeBlob(try Layout.storedJSON(meta))))
    }
    return updates
  }

  /// `text` cut to at most `bytes` bytes of UTF-8 (on a character boundary), with `…` when cut.
  static func capped(_ text: String, _ bytes: Int) -> String {
    guard text.utf8.count > bytes else { return text }
    var out = ""
    var used = 0
    for character in text {
      let size = character.utf8.count
      if used + size > bytes - 3 { break }
      out.append(character)
      used += size
    }
    return out + "…"
  }
}
