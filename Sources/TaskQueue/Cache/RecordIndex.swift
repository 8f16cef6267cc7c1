import Git

/// The decoded records of one queue commit, with the tree ids they were read from.
///
/// Trees are content-addressed, so a bucket (or task) tree whose id did not change holds exactly the records
/// it held before: bringing an index from one commit to another re-reads only the task trees whose ids
/// changed, whatever the history between the two commits (no ancestry is assumed).
struct RecordIndex: Sendable {
  /// One `tasks/<bb>` tree.
  struct Bucket: Sendable {
    var name: String
    var tree: ObjectID
    /// The tree ids of its task directories, 40 hexadecimal digits each, in tree order.
    var taskTrees: [UInt8]
    /// For each task directory, the position of its record in ``RecordIndex/records``.
    var positions: [UInt32]

    var count: Int { positions.count }

    func taskTree(_ index: Int) -> ArraySlice<UInt8> { taskTrees[(index * 40)..<(index * 40 + 40)] }
  }

  /// The commit the records belong to.
  var commit: ObjectID
  /// The `tasks` tree of that commit, `nil` when it has none.
  var tasksTree: ObjectID?
  var buckets: [Bucket]
  /// Every record in the order ``QueueSnapshot/records()`` returns them (by `seq`).
  var records: [TaskRecord]
  /// Task directories read from git since this index was last written to (or read from) the cache file.
  var unsaved: Int

  /// An index of nothing, to build a first index from.
  static func empty(commit: ObjectID) -> RecordIndex {
    RecordIndex(commit: commit, tasksTree: nil, buckets: [], records: [], unsaved: 0)
  }

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
    if let tasksItem = root.item(named: Layout.tasksDirectory), !tasksItem.isDirectory { throw DamageFound() }
    guard let tasksEntry = root.entry(named: Layout.tasksDirectory), tasksEntry.kind == .tree else {
      self = RecordIndex(commit: commit, tasksTree: nil, buckets: [], records: [], unsaved: unsaved)
      return
    }
    self.commit = commit
    if tasksEntry.id == tasksTree { return }
    let oldBuckets = Dictionary(buckets.indices.map { (buckets[$0].name, $0) }, uniquingKeysWith: { a, _ in a })

    // Walk the new tree. Each task directory becomes a slot: an old record (by position) or a new one.
    var slots: [Int] = []  // >= 0: position in `records`; < 0: -1 - position in `fresh`
    slots.reserveCapacity(records.count + 1)
    var fresh: [TaskRecord] = []
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
        // damage).
        if let position = known[hex[...]], records[position].id == taskEntry.name,
          Layout.bucket(of: taskEntry.name) == bucketEntry.name
        {
          slots.append(position)
          bucket.positions.append(UInt32(position))
          if old.map({ slot >= $0.count || Int($0.positions[slot]) != position }) ?? true { sameOrder = false }
        } else {
          let read = try QueueSnapshot.readTask(
            bucket: bucketEntry.name, name: taskEntry.name, kind: .tree, id: taskEntry.id, repository: repository)
          guard case .record(let record) = read else { throw DamageFound() }
          // Same place in tree order and same seq as the record it replaces: the order does not move.
          if let old, slot < old.count, records[Int(old.positions[slot])].seq == record.seq {
            let position = Int(old.positions[slot])
            bucket.positions.append(UInt32(position))
            slots.append(-1 - fresh.count)
          } else {
            sameOrder = false
            bucket.positions.append(0)
            slots.append(-1 - fresh.count)
          }
          fresh.append(record)
          unsaved += 1
        }
        slot += 1
      }
      if slot != (old?.count ?? 0) { sameOrder = false }
      newBuckets.append(bucket)
    }
    if slots.count != records.count { sameOrder = false }

    if sameOrder {
      // Every slot keeps its sorted position: write the re-read records in place.
      var freshIndex = 0
      var slotIndex = 0
      for bucket in newBuckets {
        for position in bucket.positions {
          if slots[slotIndex] < 0 {
            records[Int(position)] = fresh[freshIndex]
            freshIndex += 1
          }
          slotIndex += 1
        }
      }
      buckets = newBuckets
      tasksTree = tasksEntry.id
      return
    }

    // The general case: sort the slots by seq with the full read's stable sort, then place every record.
    let seqs = slots.map { $0 >= 0 ? records[$0].seq : fresh[-1 - $0].seq }
    let order = slots.indices.sorted { seqs[$0] < seqs[$1] }
    var rank = [UInt32](repeating: 0, count: order.count)
    for (sortedPosition, slot) in order.enumerated() { rank[slot] = UInt32(sortedPosition) }
    var slotIndex = 0
    for bucket in newBuckets.indices {
      for index in newBuckets[bucket].positions.indices {
        newBuckets[bucket].positions[index] = rank[slotIndex]
        slotIndex += 1
      }
    }
    let sorted = order.map { slot in slots[slot] >= 0 ? records[slots[slot]] : fresh[-1 - slots[slot]] }
    records = sorted
    buckets = newBuckets
    tasksTree = tasksEntry.id
  }
}

/// A damaged task directory met while updating an index: the index is not used, the full read skips it.
struct DamageFound: Error {}
