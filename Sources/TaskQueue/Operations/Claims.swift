import Git

/// The transitions a worker makes while it runs a task. Each is one compare-and-swap, checked against the
/// fresh snapshot, so a task is claimed once and a cancelled task is noticed at the worker's next write.
extension QueueStore {
  /// Whether `record` can be claimed now: `todo`, with every dependency `done`.
  public static func isClaimable(_ record: TaskRecord, among byID: [String: TaskRecord]) -> Bool {
    record.status == .todo && record.dependsOn.allSatisfy { byID[$0]?.status == .done }
  }

  /// The order claims follow: higher priority first, then first in, first out.
  public static func claimOrder(_ a: TaskRecord, _ b: TaskRecord) -> Bool {
    a.priority != b.priority ? a.priority > b.priority : a.seq < b.seq
  }

  /// The task a claim takes among `claimable`: the first in ``claimOrder(_:_:)`` when `spread` is 1, else a
  /// random one of the first `spread` tasks of the highest priority among them.
  ///
  /// Workers on several machines that all take "the next" task collide on it, and all but one lose the
  /// push; picking at random among the first few spreads them over different tasks. Priority is never
  /// crossed: a lower-priority task is not picked while one of higher priority is claimable.
  public static func pick(among claimable: [TaskRecord], spread: Int) -> TaskRecord? {
    guard spread > 1 else { return claimable.min(by: claimOrder) }
    guard let top = claimable.map(\.priority).max() else { return nil }
    let first = claimable.filter { $0.priority == top }.sorted(by: claimOrder).prefix(spread)
    return first.randomElement()
  }

  /// ``pick(among:spread:)`` over `listing`: the position of the task a claim takes among the claimable
  /// ones (`todo`, every dependency `done`, as ``isClaimable(_:among:)``), without decoding any record.
  ///
  /// The same choice as ``pick(among:spread:)`` on the listing's records: the listing is in the same order,
  /// and a dependency is the first task of that id, as in its dictionary.
  static func pick(in listing: QueueListing, spread: Int) -> Int? {
    var byID: [String: Int]?
    func isClaimable(_ i: Int) -> Bool {
      guard listing.status(i) == .todo else { return false }
      let dependencies = listing.dependsOn(i)
      if dependencies.isEmpty { return true }
      if byID == nil {
        var map: [String: Int] = [:]
        map.reserveCapacity(listing.count)
        for position in 0..<listing.count where map[listing.id(position)] == nil {
          map[listing.id(position)] = position
        }
        byID = map
      }
      return dependencies.allSatisfy { id in byID?[id].map { listing.status($0) == .done } ?? false }
    }
    func precedes(_ a: Int, _ b: Int) -> Bool {
      let (pa, pb) = (listing.priority(a), listing.priority(b))
      return pa != pb ? pa > pb : listing.seq(a) < listing.seq(b)
    }
    guard spread > 1 else {
      // `min(by:)`: the first of the smallest; checking dependencies only for a task that would win.
      var best: Int?
      for i in 0..<listing.count where listing.status(i) == .todo {
        if let current = best, !precedes(i, current) { continue }
        if isClaimable(i) { best = i }
      }
      return best
    }
    let claimable = (0..<listing.count).filter(isClaimable)
    guard let top = claimable.map(listing.priority).max() else { return nil }
    let first = claimable.filter { listing.priority($0) == top }.sorted(by: precedes).prefix(spread)
    return first.randomElement()
  }

  /// Claims the next runnable task (`todo → planning`) for this store's worker, or returns `nil` when there
  /// is none. With `id`, claims exactly that task, which must be `todo` with its dependencies done.
  /// With `spread` above 1 it picks at random among the first `spread` claimable tasks of the highest
  /// priority (see ``pick(among:spread:)``); 1, the default, takes the very next one.
  public func claimNext(only id: String? = nil, leaseSeconds: Int = 600, spread: Int = 1) throws -> TaskRecord? {
    if let id { try TaskID.validate(id) }
    return try update { tx in
      var candidate: TaskRecord
      if let id {
        candidate = try tx.existing(id)
        guard candidate.status == .todo else {
          throw QueueError.illegalTransition(id: id, command: "run", status: candidate.status, needs: [.todo])
        }
        let waiting = try candidate.dependsOn.filter { try tx.record($0)?.status != .done }
        if !waiting.isEmpty {
          throw QueueError.dependency(
            "cannot run task '\(id)': it waits on \(waiting.map { "'\($0)'" }.joined(separator: ", ")) (approve those first)"
          )
        }
      } else if !tx.records.isEmpty || !tx.removedTasks.isEmpty {
        let records = try tx.allRecords()
        let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        guard let next = Self.pick(among: records.filter({ Self.isClaimable($0, among: byID) }), spread: spread) else {
          return nil
        }
        candidate = next
      } else {
        // Nothing pending (every claim's first look): pick on the listing's few fields, decode one record.
        let listing = try tx.base.listing()
        guard let next = Self.pick(in: listing, spread: spread) else { return nil }
        candidate = try listing.record(next)
      }
      try tx.move(&candidate, to: .planning, command: "claim")
      candidate.worker = tx.worker
      candidate.leaseExpiresAt = Timestamp.iso(tx.now + leaseSeconds)
      tx.put(candidate)
      tx.operation = Operation(kind: .claim, task: candidate.id, from: .todo, to: .planning, worker: tx.worker)
      return candidate
    }
  }

  /// Changes a running task's record without changing its status (e.g. worktree ready), or moves it to the
  /// next stage when `to` is given. Throws ``QueueError/lostClaim(id:status:)`` when the task is no longer
  /// `planning`/`building` under this worker (cancelled, or recovered by someone else).
  @discardableResult
  public func advance(
    _ id: String, to status: TaskStatus? = nil, kind: OperationKind, detail: String? = nil,
    edit: (inout TaskRecord) throws -> Void = { _ in }
  ) throws -> TaskRecord {
    try update { tx in
      var record = try tx.existing(id)
      guard record.status.isActive, record.worker == tx.worker else {
        throw QueueError.lostClaim(id: id, status: record.status)
      }
      let from = record.status
      if let status { try tx.move(&record, to: status, command: kind.rawValue) }
      try edit(&record)
      tx.put(record)
      tx.operation = Operation(
        kind: kind, task: id, from: from, to: record.status, worker: tx.worker, detail: detail)
      return record
    }
  }

  /// Reserves a host port for task `id`: the lowest in `range` that no active or reviewed task holds and
  /// for which `isFree` is true (it binds now). Recorded in the queue, so two workers never get the same.
  public func reservePort(for id: String, in range: ClosedRange<Int>, isFree: (Int) -> Bool) throws -> Int? {
    var chosen: Int?
    try update { tx in
      chosen = nil
      var record = try tx.existing(id)
      guard record.status.isActive, record.worker == tx.worker else {
        throw QueueError.lostClaim(id: id, status: record.status)
      }
      let held = Set(
        try tx.allRecords().filter { $0.id != id && ($0.status.isActive || $0.status == .review) }.compactMap(\.port))
      guard let port = range.first(where: { !held.contains($0) && isFree($0) }) else { return }
      chosen = port
      record.port = port
      tx.put(record)
      tx.operation = Operation(
        kind: .port, task: id, from: record.status, to: record.status, worker: tx.worker, detail: "port \(port)")
    }
    return chosen
  }

  /// Moves a running (or reviewed) task to `failed` with a report under its `errors/`, unless it was
  /// cancelled meanwhile (then the report is still kept, and the task stays `cancelled`).
  ///
  /// - Returns: the record as stored.
  @discardableResult
  public func fail(
    _ id: String, kind: OperationKind = .fail, summary: String, report: String, requireWorker: String? = nil,
    edit: (inout TaskRecord) -> Void = { _ in }
  ) throws -> TaskRecord {
    try update { tx in
      var record = try tx.existing(id)
      if let requireWorker, record.worker != requireWorker, record.status.isActive {
        throw QueueError.lostClaim(id: id, status: record.status)
      }
      let from = record.status
      try tx.addErrorReport(&record, markdown: report, summary: summary)
      if record.status.canMove(to: .failed) {
        try tx.move(&record, to: .failed, command: kind.rawValue)
        record.worker = nil
        record.leaseExpiresAt = nil
      }
      edit(&record)
      tx.put(record)
      tx.operation = Operation(
        kind: kind, task: id, from: from, to: record.status, worker: tx.worker,
        detail: summary.count > 60 ? String(summary.prefix(57)) + "..." : summary)
      return record
    }
  }
}

extension QueueStore {
  /// Extends the lease of a task this worker holds to `now + seconds`.
  @discardableResult
  public func renewLease(_ id: String, seconds: Int) throws -> TaskRecord {
    try advance(id, kind: .renew, detail: "lease renewed") { record in
      record.leaseExpiresAt = Timestamp.iso(clock.nowSeconds() + seconds)
    }
  }

  /// Moves every `planning`/`building` task whose lease expired to `failed` with a "worker lost" report, so
  /// `retry` brings it back. `report` makes the markdown for a record. Returns the recovered records.
  public func recoverStale(report: (TaskRecord) -> String) throws -> [TaskRecord] {
    let now = clock.nowSeconds()
    var recovered: [TaskRecord] = []
    for record in try snapshot().records() where record.isStale(now: now) {
      do {
        let stored = try update { tx -> TaskRecord? in
          // Checked again on the fresh snapshot: the worker may have renewed or finished meanwhile.
          var current = try tx.existing(record.id)
          guard current.isStale(now: tx.now) else { return nil }
          let from = current.status
          let owner = current.worker ?? "unknown"
          try tx.addErrorReport(&current, markdown: report(current), summary: "worker lost (\(owner))")
          try tx.move(&current, to: .failed, command: "recover")
          current.worker = nil
          current.leaseExpiresAt = nil
          tx.put(current)
          tx.operation = Operation(
            kind: .recover, task: current.id, from: from, to: .failed, worker: tx.worker,
            detail: "worker lost: \(owner)")
          return current
        }
        if let stored { recovered.append(stored) }
      }
    }
    return recovered
  }
}

extension QueueStore {
  /// Takes back claims this worker just made and could not publish, leaving no commit behind: the queue
  /// ref goes back to `before` (a compare-and-swap, logged in the reflog), as if they were never made.
  ///
  /// Only when every commit since `before` is one of these claims by this worker, and none of them was
  /// pushed (the remote's queue as last fetched or pushed, `remoteTip`, does not contain them); otherwise
  /// returns `false` and nothing changes (give them back with ``releaseClaim(_:)`` then).
  public func withdrawClaims(_ ids: Set<String>, since before: ObjectID?, remoteTip: ObjectID?) throws -> Bool {
    guard let before, let tip = try tip(), tip != before else { return false }
    let commits = try repository.history(from: tip, hiding: before)
    guard commits.count == ids.count,
      Set(
        commits.compactMap { commit -> String? in
          guard let operation = Operation.parse(message: commit.message), operation.kind == "claim",
            operation.worker == worker
          else { return nil }
          return operation.task
        }) == ids
    else { return false }
    if let remoteTip, try remoteTip != before && !repository.isAncestor(remoteTip, of: before) { return false }
    do {
      try compareAndSwap(to: before, expected: tip, message: "taskq: claims not published, withdrawn")
    } catch let error as GitError where [.modified, .exists].contains(error.code) {
      return false
    }
    return true
  }

  /// Gives back a claim this worker could not publish (`planning → todo`, before any work was done): with
  /// `run --remote` a claim counts only once its push succeeded. The one move outside the state machine.
  /// Also gives back a task claimed ahead that no worker started (`detail` says which).
  @discardableResult
  public func releaseClaim(_ id: String, detail: String = "claim not published") throws -> TaskRecord {
    try update { tx in
      var record = try tx.existing(id)
      guard record.status == .planning, record.worker == tx.worker else {
        throw QueueError.lostClaim(id: id, status: record.status)
      }
      record.status = .todo
      record.statusChangedAt = Timestamp.iso(tx.now)
      record.worker = nil
      record.leaseExpiresAt = nil
      tx.put(record)
      tx.operation = Operation(
        kind: .release, task: id, from: .planning, to: .todo, worker: tx.worker, detail: detail)
      return record
    }
  }
}
