import Git

/// The tasks of one queue commit, with the tree ids they were read from.
///
/// Trees are content-addressed, so a bucket (or task) tree whose id did not change holds exactly the tasks
/// it held before: bringing an index from one commit to another re-reads only the task trees whose ids
/// changed, whatever the history between the two commits (no ancestry is assumed).
///
/// Each task is an ``Entry``: the few fields that the collapsed `status` view, its sort and a claim need
/// (id, status, priority, seq, the seconds of its status timestamp, its dependencies), decoded; its record
/// and the title of its task file are decoded on demand (``record(at:)``, ``title(at:)``), from the cache
/// file's bytes (``CacheBacking``) or from what was read from git. A listing of 10,000 tasks decodes the 170
/// records it shows, not 10,000.
struct RecordIndex: Sendable {
  /// One `tasks/<bb>` tree.
  struct Bucket: Sendable {
    var name: String
    var tree: ObjectID
    /// The tree ids of its task directories, 40 hexadecimal digits each, in tree order.
    var taskTrees: [UInt8]
    /// For each task directory, the position of its entry in ``RecordIndex/entries``.
    var positions: [UInt32]

    var count: Int { positions.count }

    func taskTree(_ index: Int) -> ArraySlice<UInt8> { taskTrees[(index * 40)..<(index * 40 + 40)] }
  }

  /// What a listing and a claim need of one task, decoded; the rest on demand through ``source``.
  struct Entry: Sendable {
    var id: String
    var status: TaskStatus
    var priority: Int
    var seq: Int
    /// `status_changed_at` (or, without one, `updated_at`) in seconds since 1970 (``StatusTime``).
    var since: Int?
    var dependsOn: [String]
    var source: Source

    init(
      id: String, status: TaskStatus, priority: Int, seq: Int, since: Int?, dependsOn: [String], source: Source
    ) {
      self.id = id
      self.status = status
      self.priority = priority
      self.seq = seq
      self.since = since
      self.dependsOn = dependsOn
      self.source = source
    }

    /// The entry of a record read from git, with its task file's title.
    init(_ record: TaskRecord, title: String?) {
      self.init(
        id: record.id, status: record.status, priority: record.priority, seq: record.seq,
        since: StatusTime.seconds(record.statusChangedAt ?? record.updatedAt), dependsOn: record.dependsOn,
        source: .loaded(LoadedTask(record: record, title: title)))
    }
  }

  /// Where an entry's record and title are.
  enum Source: Sendable {
    /// In the cache file: the record's offset in its records section, the title's string number plus one
    /// (0: no title).
    case stored(record: UInt32, title: UInt32)
    /// Decoded already (read from git, or from the file).
    case loaded(LoadedTask)
  }

  /// A decoded record and its title, shared between copies of an index.
  final class LoadedTask: Sendable {
    let record: TaskRecord
    let title: String?

    init(record: TaskRecord, title: String?) {
      self.record = record
      self.title = title
    }
  }

  /// The commit the tasks belong to.
  var commit: ObjectID
  /// The `tasks` tree of that commit, `nil` when it has none.
  var tasksTree: ObjectID?
  var buckets: [Bucket]
  /// Every task in the order ``QueueSnapshot/records()`` returns them (by `seq`).
  var entries: [Entry]
  /// The cache file the ``Source/stored(record:title:)`` entries point into.
  var backing: CacheBacking?
  /// Task directories read from git since this index was last written to (or read from) the cache file.
  var unsaved: Int
  /// Every record, once ``SnapshotCache/records(of:)`` has decoded them at this commit.
  var allRecordsMemo: [TaskRecord]?

  init(
    commit: ObjectID, tasksTree: ObjectID?, buckets: [Bucket], entries: [Entry], backing: CacheBacking?,
    unsaved: Int
  ) {
    self.commit = commit
    self.tasksTree = tasksTree
    self.buckets = buckets
    self.entries = entries
    self.backing = backing
    self.unsaved = unsaved
  }

  /// An index of `records` (without titles).
  init(commit: ObjectID, tasksTree: ObjectID?, buckets: [Bucket], records: [TaskRecord], unsaved: Int) {
    self.init(
      commit: commit, tasksTree: tasksTree, buckets: buckets, entries: records.map { Entry($0, title: nil) },
      backing: nil, unsaved: unsaved)
  }

  /// An index of nothing, to build a first index from.
  static func empty(commit: ObjectID) -> RecordIndex {
    RecordIndex(commit: commit, tasksTree: nil, buckets: [], entries: [], backing: nil, unsaved: 0)
  }

  /// The record of entry `position`.
  ///
  /// - Throws: ``CacheFormatError`` when the cache file's bytes do not decode (its checksum held, so only
  ///   a bug can cause it; callers read from git then).
  func record(at position: Int) throws -> TaskRecord {
    switch entries[position].source {
    case .loaded(let task): return task.record
    case .stored(let offset, _):
      guard let backing else { throw CacheFormatError(reason: "no cache file behind a stored entry") }
      return try backing.record(at: offset)
    }
  }

  /// The title of entry `position`'s task file (see ``record(at:)`` for the error).
  func title(at position: Int) throws -> String? {
    switch entries[position].source {
    case .loaded(let task): return task.title
    case .stored(_, let title):
      guard title > 0 else { return nil }
      guard let backing else { throw CacheFormatError(reason: "no cache file behind a stored entry") }
      return try backing.string(Int(title) - 1)
    }
  }

  /// Every record, in order (decoding those still in the file).
  func allRecords() throws -> [TaskRecord] {
    var result: [TaskRecord] = []
    result.reserveCapacity(entries.count)
    for position in entries.indices { result.append(try record(at: position)) }
    return result
  }

  /// Every record; empty when one does not decode (tests; the cache itself uses ``allRecords()``).
  var records: [TaskRecord] { (try? allRecords()) ?? [] }

  /// Brings this index to `commit` (whose root tree is `root`), keeping every record whose task tree is
  /// unchanged and reading the others from `repository`.
  ///
  /// The result is exactly what a full read returns: records gathered in tree order (buckets, then task
  /// directories) and sorted by `seq` with the full read's stable sort. Take the index out of any shared
  /// place first: when it is the only owner of its records, a transition updates them in place.
  ///
  /// - Throws: ``DamageFound`` when a task directory breaks ``RecordRules`` (the caller then reads in full,
  ///   which skips it), or what reading the trees throws.
  mutating func update(to commit: ObjectID, root: Tree, repository: Repository) throws {
    allRecordsMemo = nil
    if let tasksItem = root.item(named: Layout.tasksDirectory), !tasksItem.isDirectory { throw DamageFound() }
    guard let tasksEntry = root.entry(named: Layout.tasksDirectory), tasksEntry.kind == .tree else {
      self = RecordIndex(commit: commit, tasksTree: nil, buckets: [], entries: [], backing: nil, unsaved: unsaved)
      return
    }
    self.commit = commit
    if tasksEntry.id == tasksTree { return }
    let oldBuckets = Dictionary(buckets.indices.map { (buckets[$0].name, $0) }, uniquingKeysWith: { a, _ in a })

    // Walk the new tree. Each task directory becomes a slot: an old record (by position) or a new one.
    var slots: [Int] = []  // >= 0: position in `records`; < 0: -1 - position in `fresh`
    slots.reserveCapacity(entries.count + 1)
    var fresh: [Entry] = []
    var newBuckets: [Bucket] = []
    newBuckets.reserveCapacity(256)
    // Whether the list of seqs in tree order is unchanged, so that the sorted order is unchanged too.
    var sameOrder = true
    for bucketEntry in try repository.tree(tasksEntry.id).items {
      // The same rules as a full read: any damage sends the caller to the full read, which skips it.
      if QueueSnapshot.bucketProblem(bucketEntry) != nil { throw DamageFound() }
      let old = oldBuckets[bucketEntry.name].map { buckets[$0] }
      if let old, old.tree == bucketEntry.id {
        for position in old.positions { slots.append(Int(position)) }
        newBuckets.append(old)
        continue
      }
      // A changed (or new) bucket: keep its unchanged task directories, read the others.
      var known: [ArraySlice<UInt8>: Int] = [:]
      if let old {
        for index in 0..<old.count { known[old.taskTree(index)] = Int(old.positions[index]) }
      }
      var bucket = Bucket(name: bucketEntry.name, tree: bucketEntry.id, taskTrees: [], positions: [])
      var slot = 0
      for taskEntry in try repository.tree(bucketEntry.id).items {
        guard taskEntry.isDirectory else { throw DamageFound() }
        let hex = Array(taskEntry.id.hex.utf8)
        bucket.taskTrees.append(contentsOf: hex)
        // A task tree seen before is reused only under its own name in its own bucket (a copy elsewhere is
        // damage). `known` holds only this bucket's old entries, each read here and checked by
        // ``RecordRules`` (its id belongs in this bucket), so the name is all there is left to compare:
        // hashing every id of a changed bucket again cost 6 % of `status` at 100,000 tasks.
        if let position = known[hex[...]], entries[position].id == taskEntry.name {
          slots.append(position)
          bucket.positions.append(UInt32(position))
          if old.map({ slot >= $0.count || Int($0.positions[slot]) != position }) ?? true { sameOrder = false }
        } else {
          let read = try QueueSnapshot.readTask(
            bucket: bucketEntry.name, name: taskEntry.name, kind: .tree, id: taskEntry.id, repository: repository)
          guard case .record(let record) = read else { throw DamageFound() }
          let title = QueueSnapshot.title(
            ofTaskTree: taskEntry.id, taskID: taskEntry.name, repository: repository)
          // Same place in tree order and same seq as the record it replaces: the order does not move.
          if let old, slot < old.count, entries[Int(old.positions[slot])].seq == record.seq {
            let position = Int(old.positions[slot])
            bucket.positions.append(UInt32(position))
            slots.append(-1 - fresh.count)
          } else {
            sameOrder = false
            bucket.positions.append(0)
            slots.append(-1 - fresh.count)
          }
          fresh.append(Entry(record, title: title))
          unsaved += 1
        }
        slot += 1
      }
      if slot != (old?.count ?? 0) { sameOrder = false }
      newBuckets.append(bucket)
    }
    if slots.count != entries.count { sameOrder = false }

    if sameOrder {
      // Every slot keeps its sorted position: write the re-read records in place.
      var freshIndex = 0
      var slotIndex = 0
      for bucket in newBuckets {
        for position in bucket.positions {
          if slots[slotIndex] < 0 {
            entries[Int(position)] = fresh[freshIndex]
            freshIndex += 1
          }
          slotIndex += 1
        }
      }
      buckets = newBuckets
      tasksTree = tasksEntry.id
      return
    }

    // The general case. The full read sorts by seq, stably over tree order: the order of (seq, place in
    // tree order). The entries kept from this index are in that order already (their places keep their
    // relative order, and their seqs are unchanged), so only the re-read ones are sorted, then merged in:
    // O(n) rather than a sort of every entry (10 ms at 100,000 tasks).
    func seq(_ slot: Int) -> Int { slots[slot] >= 0 ? entries[slots[slot]].seq : fresh[-1 - slots[slot]].seq }
    var keptSlot = [Int](repeating: -1, count: entries.count)
    var freshSlots: [Int] = []
    for (slot, source) in slots.enumerated() {
      if source >= 0 { keptSlot[source] = slot } else { freshSlots.append(slot) }
    }
    freshSlots.sort { (seq($0), $0) < (seq($1), $1) }
    var order: [Int] = []
    order.reserveCapacity(slots.count)
    var next = 0
    for position in entries.indices {
      let slot = keptSlot[position]
      guard slot >= 0 else { continue }
      let key = (entries[position].seq, slot)
      while next < freshSlots.count, (seq(freshSlots[next]), freshSlots[next]) < key {
        order.append(freshSlots[next])
        next += 1
      }
      order.append(slot)
    }
    order.append(contentsOf: freshSlots[next...])
    var rank = [UInt32](repeating: 0, count: order.count)
    for (sortedPosition, slot) in order.enumerated() { rank[slot] = UInt32(sortedPosition) }
    var slotIndex = 0
    for bucket in newBuckets.indices {
      for index in newBuckets[bucket].positions.indices {
        newBuckets[bucket].positions[index] = rank[slotIndex]
        slotIndex += 1
      }
    }
    let sorted = order.map { slot in slots[slot] >= 0 ? entries[slots[slot]] : fresh[-1 - slots[slot]] }
    entries = sorted
    buckets = newBuckets
    tasksTree = tasksEntry.id
  }
}

/// A damaged task directory met while updating an index: the index is not used, the full read skips it.
struct DamageFound: Error {}
