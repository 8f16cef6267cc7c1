import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

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
  ///
  /// - Throws: ``QueueError/unreadableTip(commit:detail:)`` when the commit or its tree is missing from the
  ///   object database (e.g. pruned by `git gc --prune=now` racing a writer), naming the repair.
  static func load(repository: Repository, commit: ObjectID?) throws -> QueueSnapshot {
    guard let commit else {
      return QueueSnapshot(repository: repository, commit: nil, tree: nil, meta: QueueMeta())
    }
    let tree: Tree
    do {
      tree = try repository.tree(try repository.commit(commit).treeID)
    } catch let error as GitError where error.code == .notFound {
      throw QueueError.unreadableTip(commit: String(commit.hex.prefix(12)), detail: "object missing")
    }
    guard let item = tree.item(named: Layout.metaPath), item.isRegularFile else {
      throw QueueError.corrupt("\(Layout.metaPath) is missing at \(commit.hex.prefix(12))")
    }
    let bytes: [UInt8]
    do {
      guard try repository.objectHeader(item.id).size <= RecordRules.maximumMetaSize else {
        throw QueueError.corrupt("\(Layout.metaPath) is larger than \(RecordRules.maximumMetaSize) bytes")
      }
      bytes = try repository.blob(item.id)
    } catch let error as GitError where error.code == .notFound {
      throw QueueError.unreadableTip(commit: String(commit.hex.prefix(12)), detail: "its taskq.json is missing")
    }
    let meta = try decodeMeta(bytes)
    return QueueSnapshot(repository: repository, commit: commit, tree: tree, meta: meta)
  }

  static func decodeMeta(_ bytes: [UInt8]) throws -> QueueMeta {
    // Every writer's form, read without `JSONDecoder` (a tenth of a transition's CPU); any other through it.
    if let (format, next) = QueueMeta.parseStored(bytes) {
      if format > Layout.formatVersion {
        throw QueueError.newerFormat(found: format, supported: Layout.formatVersion)
      }
      guard format >= 1, next >= 1 else { throw QueueError.corrupt("\(Layout.metaPath) is not valid") }
      try checkNextSeq(next)
      return QueueMeta(format: format, nextSeq: next)
    }
    struct Fields: Decodable {
      var format: Int
      var nextSeq: Int?
      enum CodingKeys: String, CodingKey {
        case format
        case nextSeq = "next_seq"
      }
    }
    guard let object = try? JSONDecoder().decode(Fields.self, from: Data(bytes)) else {
      throw QueueError.corrupt("\(Layout.metaPath) is not valid")
    }
    let format = object.format
    if format > Layout.formatVersion {
      throw QueueError.newerFormat(found: format, supported: Layout.formatVersion)
    }
    guard format >= 1, let next = object.nextSeq, next >= 1 else {
      throw QueueError.corrupt("\(Layout.metaPath) is not valid")
    }
    try checkNextSeq(next)
    return QueueMeta(format: format, nextSeq: next)
  }

  /// The largest `next_seq` a queue may hold: 2^53, the largest integer every JSON reader keeps exact. Far
  /// beyond any real queue, and far enough below `Int.max` that no count of adds, imports or replays can
  /// overflow it (a record from a remote with `next_seq` near `Int.max` crashed `add` and `sync`).
  static let maximumNextSeq = 1 << 53

  static func checkNextSeq(_ next: Int) throws {
    guard next <= maximumNextSeq else {
      throw QueueError.corrupt(
        "\(Layout.metaPath) is not valid: next_seq \(next) is above \(maximumNextSeq)")
    }
  }

  /// `tasks/` and the bucket trees read so far. libgit2's object cache keeps no tree above 4 KB, and
  /// `tasks` (256 buckets, ~7 KB) is one: a lookup by path from the root read and inflated it again every
  /// time (10,000 times for the titles of `status --all`, and once per record or task file otherwise).
  private var tasksTree: Tree??
  private var bucketTrees: [String: Tree] = [:]

  /// The entry of task `id`'s directory in its bucket (of any kind), or `nil` when there is none.
  func taskDirectoryItem(_ id: String) throws -> TreeItem? {
    let name = Layout.bucket(of: id)
    let bucket: Tree
    if let known = bucketTrees[name] {
      bucket = known
    } else {
      if tasksTree == nil { tasksTree = .some(try tree?.subtree(atPath: Layout.tasksDirectory)) }
      guard let tasks = tasksTree ?? nil, let item = tasks.item(named: name), item.kind == .tree else { return nil }
      bucket = try repository.tree(item.id)
      bucketTrees[name] = bucket
    }
    return bucket.item(named: id)
  }

  /// The record of task `id`, or `nil` (also when its directory is damaged: see ``damage(named:)``).
  public func record(_ id: String) throws -> TaskRecord? {
    switch try read(id) {
    case .record(let record): return record
    case .damaged, nil: return nil
    }
  }

  /// The record of task `id`, for a command that needs it: ``QueueError/damaged(id:problem:)`` when its
  /// directory is there but breaks ``RecordRules``, ``QueueError/notFound(_:)`` when there is none.
  public func existing(_ id: String) throws -> TaskRecord {
    switch try read(id) {
    case .record(let record): return record
    case .damaged(let damage): throw QueueError.damaged(id: id, problem: damage.problem)
    case nil: throw QueueError.notFound(id)
    }
  }

  /// Task `id`'s directory read and checked, or `nil` when there is none.
  private func read(_ id: String) throws -> TaskRead? {
    guard TaskID.problem(with: id) == nil, tree != nil else { return nil }
    return try readable {
      guard let entry = try taskDirectoryItem(id) else { return nil }
      return try Self.readTask(
        bucket: Layout.bucket(of: id), name: id, kind: entry.kind, id: entry.id, repository: repository)
    }
  }

  /// `body`, with an object missing from the database (a tree or blob of this commit pruned by a
  /// `git gc --prune=now` that raced its writer), or one that does not parse (a malformed tree from
  /// another machine), reported as ``QueueError/unreadableTip(commit:detail:)``, which names the repair,
  /// instead of libgit2's raw message.
  func readable<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as GitError where error.code == .notFound {
      throw QueueError.unreadableTip(
        commit: String(commit?.hex.prefix(12) ?? "?"), detail: "an object of its tree is missing")
    } catch let error as GitError where error.message.hasPrefix("failed to parse") {
      throw QueueError.unreadableTip(
        commit: String(commit?.hex.prefix(12) ?? "?"), detail: "an object of its tree is malformed: \(error.message)")
    }
  }

  /// Every damaged task directory named `name` (in any bucket), for `remove` and error messages.
  public func damage(named name: String) throws -> [DamagedRecord] {
    try damagedRecords().filter { $0.name == name || ($0.name.isEmpty && $0.bucket == name) }
  }

  /// Whether the tree has a directory (valid or not) at task `id`'s place.
  public func hasTaskDirectory(_ id: String) throws -> Bool {
    guard TaskID.problem(with: id) == nil, let tree else { return false }
    return try tree.entry(atPath: Layout.taskDirectory(id)) != nil
  }

  /// Every task directory that breaks ``RecordRules``, in tree order.
  public func damagedRecords() throws -> [DamagedRecord] {
    try readable { try scan().damaged }
  }

  /// Every record, in FIFO order (`seq`).
  ///
  /// Served by the derived snapshot cache (``SnapshotCache``) when it is current or close; the result is
  /// always exactly what ``readAllRecords()`` returns.
  public func records() throws -> [TaskRecord] {
    try readable { try SnapshotCache.records(of: self) }
  }

  /// Every task as a listing (`status`, claims): the few fields needed to group, sort and pick, with
  /// records and titles decoded only for the tasks asked for. Served by the snapshot cache; without it,
  /// from the full read (titles then read per task).
  public func listing() throws -> QueueListing {
    try readable { try SnapshotCache.listing(of: self) }
  }

  /// Every valid record, read from the tree itself (no cache): one blob read and JSON decode per task.
  /// Damaged directories are skipped and reported once through ``DamageNotice``.
  func readAllRecords() throws -> [TaskRecord] {
    let (records, damaged) = try scan()
    DamageNotice.report(damaged.count)
    return records
  }

  /// Every task directory, split into valid records (FIFO order) and damaged ones.
  func scan() throws -> (records: [TaskRecord], damaged: [DamagedRecord]) {
    guard let tree, let tasksItem = tree.item(named: Layout.tasksDirectory) else { return ([], []) }
    guard tasksItem.isDirectory else {
      return ([], [DamagedRecord(bucket: "", name: "", problem: "'tasks' is not a directory")])
    }
    let tasks = try repository.tree(tasksItem.id)
    var result: [TaskRecord] = []
    var damaged: [DamagedRecord] = []
    for bucket in tasks.items {
      if let problem = Self.bucketProblem(bucket) {
        damaged.append(DamagedRecord(bucket: bucket.name, name: "", problem: problem))
        continue
      }
      for task in try repository.tree(bucket.id).items {
        switch try Self.readTask(
          bucket: bucket.name, name: task.name, kind: task.isDirectory ? .tree : .other, id: task.id,
          repository: repository)
        {
        case .record(let record): result.append(record)
        case .damaged(let damage): damaged.append(damage)
        }
      }
    }
    result.sort { $0.seq < $1.seq }
    return (result, damaged)
  }

  /// Why `tasks/<bucket>` is not a bucket (a directory named by two lowercase hex digits), or `nil`.
  static func bucketProblem(_ bucket: TreeItem) -> String? {
    let hex =
      bucket.name.utf8.count == 2
      && bucket.name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    if !hex { return "not a bucket (buckets are two lowercase hex digits)" }
    if !bucket.isDirectory { return "the bucket is \(RecordRules.describe(bucket)), not a directory" }
    return nil
  }

  /// What one task directory holds, checked by ``RecordRules``.
  enum TaskRead {
    case record(TaskRecord)
    case damaged(DamagedRecord)
  }

  /// Reads and checks the task directory `tasks/<bucket>/<name>` (a tree `id` when `kind` is `.tree`).
  static func readTask(
    bucket: String, name: String, kind: TreeEntry.Kind, id: ObjectID, repository: Repository
  ) throws -> TaskRead {
    func damaged(_ problem: String) -> TaskRead {
      .damaged(DamagedRecord(bucket: bucket, name: name, problem: problem))
    }
    if let problem = PathComponent.problem(with: name) { return damaged("its name is unsafe: \(problem)") }
    if let problem = TaskID.problem(with: name) { return damaged("its name is not a task id: \(problem)") }
    guard kind == .tree else { return damaged("it is not a directory") }
    let taskTree = try repository.tree(id)
    if let problem = try RecordRules.problem(withEntries: taskTree, repository: repository) {
      return damaged(problem)
    }
    guard let recordItem = taskTree.item(named: "record.json") else { return damaged("it has no record.json") }
    let record: TaskRecord
    do {
      record = try decodeRecord(try repository.blob(recordItem.id))
    } catch let error as RecordDecodingError {
      return damaged("record.json cannot be read: \(error.reason)")
    }
    if let problem = RecordRules.problem(with: record, bucket: bucket, name: name) { return damaged(problem) }
    return .record(record)
  }

  /// The canonical task file (frontmatter and body) of task `id`; `nil` when it has none, or when it is not
  /// a regular file within ``RecordRules/maximumTaskFileSize`` (fsck names that).
  public func taskFile(_ id: String) throws -> String? {
    guard TaskID.problem(with: id) == nil, PathComponent.problem(with: id) == nil else { return nil }
    return try readable {
      guard let item = try taskDirectoryItem(id), item.kind == .tree else { return nil }
      return try Self.regularFile(
        named: "task.md", in: try repository.tree(item.id), path: Layout.taskFilePath(id),
        cap: RecordRules.maximumTaskFileSize, repository: repository)
    }
  }

  /// The title of the task whose directory is the tree `id` (named `taskID`), as `status` shows it: the
  /// first line of the body of its task file as ``taskFile(_:)`` returns it (``TaskTitle``); `nil` when it
  /// has none or it cannot be read.
  ///
  /// The snapshot cache keeps it with the record, keyed by the same task tree id, so it changes whenever
  /// `task.md` does.
  static func title(ofTaskTree id: ObjectID, taskID: String, repository: Repository) -> String? {
    guard TaskID.problem(with: taskID) == nil, PathComponent.problem(with: taskID) == nil,
      let tree = try? repository.tree(id),
      let text = try? regularFile(
        named: "task.md", in: tree, path: Layout.taskFilePath(taskID), cap: RecordRules.maximumTaskFileSize,
        repository: repository)
    else { return nil }
    return TaskTitle.of(taskFile: text)
  }

  /// The names of task `id`'s failure reports, oldest first (regular files with safe names only).
  public func errorReports(_ id: String) throws -> [String] {
    guard TaskID.problem(with: id) == nil, let tree, let dir = try tree.subtree(atPath: Layout.errorsDirectory(id))
    else { return [] }
    return dir.items.filter { $0.isRegularFile && PathComponent.problem(with: $0.name) == nil }.map(\.name).sorted()
  }

  /// A file by its path inside the tree; `nil` when there is none or it is not a regular file. A file above
  /// ``RecordRules/maximumErrorReportSize`` is not loaded: a one-line note stands for it.
  public func file(atPath path: String) throws -> String? {
    try readable { try regularFile(atPath: path, cap: RecordRules.maximumErrorReportSize) }
  }

  private func regularFile(atPath path: String, cap: Int) throws -> String? {
    guard let tree else { return nil }
    let parts = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
    guard let name = parts.last, parts.allSatisfy({ PathComponent.problem(with: $0) == nil }) else { return nil }
    let parent: Tree
    if parts.count == 1 {
      parent = tree
    } else {
      guard let directory = try tree.subtree(atPath: parts.dropLast().joined(separator: "/")) else { return nil }
      parent = directory
    }
    return try Self.regularFile(named: name, in: parent, path: path, cap: cap, repository: repository)
  }

  /// The regular file `name` of `parent` (at `path` in the tree, for the note), as ``file(atPath:)``.
  private static func regularFile(
    named name: String, in parent: Tree, path: String, cap: Int, repository: Repository
  ) throws -> String? {
    guard let item = parent.item(named: name), item.isRegularFile else { return nil }
    let size = try repository.objectHeader(item.id).size
    if size > cap {
      return "(\(path) is \(size) bytes, more than the cap of \(cap): not shown; see 'git taskq fsck')\n"
    }
    return String(decoding: try repository.blob(item.id), as: UTF8.self)
  }

  /// Decodes `record.json` (the caller has checked its size).
  static func decodeRecord(_ bytes: [UInt8]) throws -> TaskRecord {
    // Every writer's form without `JSONDecoder`; anything else through it, as before.
    if let record = StoredRecord.parse(bytes) { return record }
    do {
      return try JSONDecoder().decode(TaskRecord.self, from: Data(bytes))
    } catch DecodingError.keyNotFound(let key, _) {
      throw RecordDecodingError(reason: "field '\(key.stringValue)' is missing")
    } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
      throw RecordDecodingError(reason: "it is not valid JSON, or a number where an integer belongs is not one")
    } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context),
      let DecodingError.dataCorrupted(context)
    {
      let key = context.codingPath.last?.stringValue
      throw RecordDecodingError(
        reason: key.map { "field '\($0)' has the wrong type or value" } ?? "it is not a JSON object")
    } catch {
      throw RecordDecodingError(reason: "it is not valid JSON")
    }
  }
}

/// Why `record.json` did not decode.
struct RecordDecodingError: Error {
  var reason: String
}
