import Foundation
import Git

/// The queue as one commit of `refs/taskq/queue` holds it. Read-only; records are decoded on demand.
public final class QueueSnapshot {
  /// The commit this snapshot reads, `nil` for a queue that has never been written.
  public let commit: ObjectID?
  public let meta: QueueMeta
  let tree: Tree?
  let repository: Repository

  init(repository: Repository, commit: ObjectID?, tree: Tree?, meta: QueueMeta) {
    self.repository = repository
    self.commit = commit
    self.tree = tree
    self.meta = meta
  }

  /// Reads the snapshot at `commit` (or the empty queue), refusing a newer storage format.
  static func load(repository: Repository, commit: ObjectID?) throws -> QueueSnapshot {
    guard let commit else {
      return QueueSnapshot(repository: repository, commit: nil, tree: nil, meta: QueueMeta())
    }
    let tree = try repository.tree(try repository.commit(commit).treeID)
    guard let bytes = try tree.blob(atPath: Layout.metaPath) else {
      throw QueueError.corrupt("\(Layout.metaPath) is missing at \(commit.hex.prefix(12))")
    }
    let meta = try decodeMeta(bytes)
    return QueueSnapshot(repository: repository, commit: commit, tree: tree, meta: meta)
  }

  static func decodeMeta(_ bytes: [UInt8]) throws -> QueueMeta {
    guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
      let format = object["format"] as? Int
    else { throw QueueError.corrupt("\(Layout.metaPath) is not valid") }
    if format > Layout.formatVersion {
      throw QueueError.newerFormat(found: format, supported: Layout.formatVersion)
    }
    guard format >= 1, let next = object["next_seq"] as? Int else {
      throw QueueError.corrupt("\(Layout.metaPath) is not valid")
    }
    return QueueMeta(format: format, nextSeq: next)
  }

  /// The record of task `id`, or `nil`.
  public func record(_ id: String) throws -> TaskRecord? {
    guard TaskID.problem(with: id) == nil, let tree else { return nil }
    guard let bytes = try tree.blob(atPath: Layout.recordPath(id)) else { return nil }
    return try Self.decodeRecord(bytes, path: Layout.recordPath(id))
  }

  /// Every record, in FIFO order (`seq`).
  ///
  /// Served by the derived snapshot cache (``SnapshotCache``) when it is current or close; the result is
  /// always exactly what ``readAllRecords()`` returns.
  public func records() throws -> [TaskRecord] {
    try SnapshotCache.records(of: self)
  }

  /// Every record, read from the tree itself (no cache): one blob read and JSON decode per task.
  func readAllRecords() throws -> [TaskRecord] {
    guard let tree, let tasks = try tree.subtree(atPath: Layout.tasksDirectory) else { return [] }
    var result: [TaskRecord] = []
    for bucket in tasks.entries where bucket.kind == .tree {
      let bucketTree = try repository.tree(bucket.id)
      for task in bucketTree.entries where task.kind == .tree {
        let taskTree = try repository.tree(task.id)
        guard let entry = taskTree.entry(named: "record.json") else {
          throw QueueError.corrupt("tasks/\(bucket.name)/\(task.name) has no record.json")
        }
        result.append(try Self.decodeRecord(try repository.blob(entry.id), path: "tasks/\(bucket.name)/\(task.name)"))
      }
    }
    result.sort { $0.seq < $1.seq }
    return result
  }

  /// The canonical task file (frontmatter and body) of task `id`.
  public func taskFile(_ id: String) throws -> String? {
    guard let tree, let bytes = try tree.blob(atPath: Layout.taskFilePath(id)) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }

  /// The names of task `id`'s failure reports, oldest first.
  public func errorReports(_ id: String) throws -> [String] {
    guard let tree, let dir = try tree.subtree(atPath: Layout.errorsDirectory(id)) else { return [] }
    return dir.entries.filter { $0.kind == .blob }.map(\.name).sorted()
  }

  /// A file by its path inside the tree.
  public func file(atPath path: String) throws -> String? {
    guard let tree, let bytes = try tree.blob(atPath: path) else { return nil }
    return String(decoding: bytes, as: UTF8.self)
  }

  static func decodeRecord(_ bytes: [UInt8], path: String) throws -> TaskRecord {
    do {
      return try JSONDecoder().decode(TaskRecord.self, from: Data(bytes))
    } catch {
      throw QueueError.corrupt("\(path)/record.json cannot be read")
    }
  }
}
