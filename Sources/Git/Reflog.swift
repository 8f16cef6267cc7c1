import CLibGit2

/// One entry of a reference's reflog: the move from `old` to `new`, and why.
public struct ReflogEntry: Sendable, Equatable {
  /// The previous target (zeros for the entry that created the reference).
  public var old: ObjectID
  public var new: ObjectID
  public var message: String
  public var time: Int
}

extension Repository {
  /// The reflog of reference `name`, newest first; empty when it has none.
  public func reflog(of name: String) throws -> [ReflogEntry] {
    var log: OpaquePointer?
    try GitError.check(git_reflog_read(&log, pointer, name), "git_reflog_read")
    defer { git_reflog_free(log) }
    var entries: [ReflogEntry] = []
    let count = git_reflog_entrycount(log)
    entries.reserveCapacity(count)
    for index in 0..<count {
      guard let entry = git_reflog_entry_byindex(log, index) else { continue }
      let old = git_reflog_entry_id_old(entry).map { ObjectID($0.pointee) } ?? ObjectID(git_oid())
      let new = git_reflog_entry_id_new(entry).map { ObjectID($0.pointee) } ?? ObjectID(git_oid())
      let time = git_reflog_entry_committer(entry).map { Int($0.pointee.when.time) } ?? 0
      entries.append(
        ReflogEntry(old: old, new: new, message: string(git_reflog_entry_message(entry)) ?? "", time: time))
    }
    return entries
  }

  /// Drops the entries of reference `name`'s reflog whose new target `drop` selects, rewriting the
  /// neighbours so the log stays a chain, and writes it back (`git_reflog_drop`, `git_reflog_write`).
  ///
  /// - Returns: how many entries were dropped.
  @discardableResult
  public func dropReflogEntries(of name: String, where drop: (ObjectID) -> Bool) throws -> Int {
    var log: OpaquePointer?
    try GitError.check(git_reflog_read(&log, pointer, name), "git_reflog_read")
    defer { git_reflog_free(log) }
    var dropped = 0
    var index = git_reflog_entrycount(log)
    while index > 0 {
      index -= 1
      guard let entry = git_reflog_entry_byindex(log, index), let new = git_reflog_entry_id_new(entry) else {
        continue
      }
      if drop(ObjectID(new.pointee)) {
        try GitError.check(git_reflog_drop(log, index, 1), "git_reflog_drop")
        dropped += 1
      }
    }
    if dropped > 0 { try GitError.check(git_reflog_write(log), "git_reflog_write") }
    return dropped
  }
}
