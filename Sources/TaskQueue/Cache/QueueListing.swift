/// Every task of a snapshot, in FIFO order (`seq`), as a list that reads only what it is asked for.
///
/// The fields a listing groups, sorts and filters by (id, status, priority, seq, the status timestamp,
/// dependencies) are at hand for every task; a task's full record and title are decoded when asked for.
/// From the snapshot cache, `status` at 10,000 tasks decodes the ~170 records it shows and a claim the
/// one it takes. Position `i` is the same task as `records()[i]` of the same snapshot.
///
/// Everything here comes from the queue, which is untrusted: escape it before showing it.
public struct QueueListing {
  private enum Storage {
    case index(RecordIndex)
    case records([TaskRecord], title: (String) -> String?)
  }

  private let storage: Storage
  /// Where a record or title is read when the cache's bytes fail (never expected: they held a checksum).
  private let snapshot: QueueSnapshot?

  init(index: RecordIndex, snapshot: QueueSnapshot) {
    storage = .index(index)
    self.snapshot = snapshot
  }

  /// The full read's records, titles read from `snapshot` per task.
  init(records: [TaskRecord], snapshot: QueueSnapshot) {
    storage = .records(
      records,
      title: { id in (try? snapshot.taskFile(id)).flatMap { $0 }.flatMap(TaskTitle.of(taskFile:)) })
    self.snapshot = snapshot
  }

  /// A listing of `records`, each title given by `title` (from a task's id).
  public init(records: [TaskRecord], title: @escaping (String) -> String?) {
    storage = .records(records, title: title)
    snapshot = nil
  }

  /// The snapshot cache's index and the file its stored entries point into, when the listing comes from
  /// one (writers that read the file's bytes directly: ``RecordJSON/write(_:chunk:to:)``).
  var cacheIndex: (RecordIndex, CacheBacking)? {
    guard case .index(let index) = storage, let backing = index.backing else { return nil }
    return (index, backing)
  }

  /// How many tasks there are.
  public var count: Int {
    switch storage {
    case .index(let index): index.entries.count
    case .records(let records, _): records.count
    }
  }

  public var isEmpty: Bool { count == 0 }

  public func id(_ i: Int) -> String {
    switch storage {
    case .index(let index): index.entries[i].id
    case .records(let records, _): records[i].id
    }
  }

  public func status(_ i: Int) -> TaskStatus {
    switch storage {
    case .index(let index): index.entries[i].status
    case .records(let records, _): records[i].status
    }
  }

  public func priority(_ i: Int) -> Int {
    switch storage {
    case .index(let index): index.entries[i].priority
    case .records(let records, _): records[i].priority
    }
  }

  public func seq(_ i: Int) -> Int {
    switch storage {
    case .index(let index): index.entries[i].seq
    case .records(let records, _): records[i].seq
    }
  }

  /// `status_changed_at`, or `updated_at` without one, in seconds since 1970 (``StatusTime``); `nil` when
  /// it is not a timestamp.
  public func since(_ i: Int) -> Int? {
    switch storage {
    case .index(let index): index.entries[i].since
    case .records(let records, _): StatusTime.seconds(records[i].statusChangedAt ?? records[i].updatedAt)
    }
  }

  public func dependsOn(_ i: Int) -> [String] {
    switch storage {
    case .index(let index): index.entries[i].dependsOn
    case .records(let records, _): records[i].dependsOn
    }
  }

  /// The full record of task `i`.
  ///
  /// - Throws: what reading it from git throws, when the cache's bytes do not decode.
  public func record(_ i: Int) throws -> TaskRecord {
    switch storage {
    case .index(let index):
      if let record = try? index.record(at: i) { return record }
      let id = index.entries[i].id
      guard let record = try snapshot?.record(id) else { throw QueueError.notFound(id) }
      return record
    case .records(let records, _): return records[i]
    }
  }

  /// The title of task `i`: the first line of its task file's body (``TaskTitle``), `nil` without one.
  public func title(_ i: Int) -> String? {
    switch storage {
    case .index(let index):
      if let title = try? index.title(at: i) { return title }
      let id = index.entries[i].id
      return (try? snapshot?.taskFile(id)).flatMap { $0 }.flatMap(TaskTitle.of(taskFile:))
    case .records(let records, let title): return title(records[i].id)
    }
  }
}
