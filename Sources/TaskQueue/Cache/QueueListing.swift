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

/// What one line of `status` shows of a task beyond the listing's fields: read from the cache file's
/// bytes without decoding the whole record (`status --all` draws 10,000 of these).
///
/// `worker` and `leaseExpiresAt` are set only for an active task (planning, building), `lastError` only
/// for a failed one: the only cases in which a line shows them. Both ways of making a row (from a
/// ``TaskRecord`` and from the cache) follow that rule, so they give the same row.
public struct ListingRow: Sendable {
  public var id: String
  public var status: TaskStatus
  public var repo: String
  public var base: String
  public var branch: String
  public var attempt: Int
  public var port: Int?
  /// Whether the record names a worktree or a container.
  public var hasWorktreeOrContainer: Bool
  public var worker: String?
  public var leaseExpiresAt: String?
  public var lastError: String?
  public var dependsOn: [String]
  public var priority: Int

  public init(_ r: TaskRecord) {
    id = r.id
    status = r.status
    repo = r.repo
    base = r.base
    branch = r.branch
    attempt = r.attempt
    port = r.port
    hasWorktreeOrContainer = r.worktreePath != nil || r.container != nil
    worker = r.status.isActive ? r.worker : nil
    leaseExpiresAt = r.status.isActive ? r.leaseExpiresAt : nil
    lastError = r.status == .failed ? r.lastError : nil
    dependsOn = r.dependsOn
    priority = r.priority
  }

  /// Whether the task ran at least once, so that its attempt is worth showing (as ``TaskRecord`` rows
  /// count it: a cancelled task ran when it has a worktree or a container).
  public var hasRun: Bool {
    attempt > 0 || status.isActive || status == .review || status == .failed || status == .done
      || (status == .cancelled && hasWorktreeOrContainer)
  }

  /// ``TaskRecord/isStale(now:)``: an active task whose lease expired before `now`.
  public func isStale(now: Int) -> Bool {
    guard status.isActive, let lease = leaseExpiresAt, let expiry = Timestamp.parse(lease) else { return false }
    return expiry < now
  }
}

extension QueueListing {
  /// Reads the ``ListingRow`` of any task; from the cache, strings shared by many tasks (the repository,
  /// the base) are made once.
  public func rowReader() -> RowReader { RowReader(self) }

  /// See ``rowReader()``. Confined to one thread.
  public final class RowReader {
    private let tasks: QueueListing
    private let cache: (RecordIndex, CacheBacking)?
    private var shared: [UInt32: String] = [:]

    init(_ tasks: QueueListing) {
      self.tasks = tasks
      cache = tasks.cacheIndex
    }

    /// The row of task `i`.
    ///
    /// - Throws: what reading the record from git throws, when the cache's bytes do not decode.
    public func row(_ i: Int) throws -> ListingRow {
      if let (index, backing) = cache, case .stored(let offset, _) = index.entries[i].source,
        let row = try? backing.listingRow(at: offset, dependsOn: index.entries[i].dependsOn, shared: &shared)
      {
        return row
      }
      return ListingRow(try tasks.record(i))
    }
  }
}

extension CacheBacking {
  /// The ``ListingRow`` of the record at `offset`, reading only the strings the row shows; `shared` keeps
  /// the repository and base strings by number.
  func listingRow(at offset: UInt32, dependsOn: [String], shared: inout [UInt32: String]) throws -> ListingRow {
    guard Int(offset) < records.count else { throw CacheFormatError(reason: "bad offset") }
    var r = ByteReader(
      UnsafeRawBufferPointer(rebasing: storage.buffer[(records.lowerBound + Int(offset))..<records.upperBound]))
    func optional(_ number: UInt32) throws -> String? { number == 0 ? nil : try string(Int(number) - 1) }
    func memo(_ number: UInt32) throws -> String {
      if let known = shared[number] { return known }
      let text = try string(Int(number))
      shared[number] = text
      return text
    }
    let id = try string(Int(try r.u32()))
    let repo = try memo(try r.u32())
    let base = try memo(try r.u32())
    let branch = try string(Int(try r.u32()))
    _ = try r.u32()  // task file
    let statusNumber = Int(try r.u8())
    guard statusNumber < TaskStatus.allCases.count else { throw CacheFormatError(reason: "bad status") }
    let status = TaskStatus.allCases[statusNumber]
    let worktreePath = try r.u32()
    let container = try r.u32()
    let port = try r.optionalInt()
    _ = try r.u32()  // session
    let attempt = try r.int()
    _ = try r.u32()  // error file
    _ = try r.raw(8)  // created, updated
    _ = try r.int()  // seq
    let priority = try r.int()
    let dependencies = Int(try r.u32())
    _ = try r.raw(dependencies * 4)
    let worker = try r.u32()
    let lease = try r.u32()
    _ = try r.u32()  // status changed
    let lastError = try r.u32()
    var row = ListingRow(
      id: id, status: status, repo: repo, base: base, branch: branch, attempt: attempt, port: port,
      hasWorktreeOrContainer: worktreePath != 0 || container != 0, dependsOn: dependsOn, priority: priority)
    if status.isActive {
      row.worker = try optional(worker)
      row.leaseExpiresAt = try optional(lease)
    }
    if status == .failed { row.lastError = try optional(lastError) }
    return row
  }
}

extension ListingRow {
  init(
    id: String, status: TaskStatus, repo: String, base: String, branch: String, attempt: Int, port: Int?,
    hasWorktreeOrContainer: Bool, dependsOn: [String], priority: Int
  ) {
    self.id = id
    self.status = status
    self.repo = repo
    self.base = base
    self.branch = branch
    self.attempt = attempt
    self.port = port
    self.hasWorktreeOrContainer = hasWorktreeOrContainer
    self.dependsOn = dependsOn
    self.priority = priority
  }
}
