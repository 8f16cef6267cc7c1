import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `git taskq fsck --repair` did to a ref that pointed at an unreadable commit.
public struct TipRepair: Sendable, Equatable {
  /// Where the ref pointed (unreadable).
  public var from: ObjectID
  /// The intact commit it points at now.
  public var to: ObjectID
  /// Where that commit was found: `reflog` or a remote-tracking ref's name.
  public var source: String
  /// The operations recorded after `to` that the repair dropped, newest first (reflog messages, or the
  /// trailers' subjects where the commits can still be read).
  public var lost: [String]
}

extension QueueStore {
  /// Whether the queue at `commit` can be read in full: the commit, its tree, `taskq.json`, every task
  /// directory, and the history behind it.
  public func isIntact(_ commit: ObjectID) -> Bool {
    do {
      let snapshot = try QueueSnapshot.load(repository: repository, commit: commit)
      _ = try snapshot.scan()
      _ = try repository.history(from: commit)
      return true
    } catch {
      return false
    }
  }

  /// Moves `refs/taskq/queue` from an unreadable commit (e.g. one `git gc --prune=now` pruned while a writer
  /// made it) back to the newest intact commit found in its reflog or in a remote-tracking ref
  /// (`refs/taskq/remotes/<remote>/queue`), by compare-and-swap.
  ///
  /// - Returns: the repair, or `nil` when the tip is intact (or there is no queue).
  /// - Throws: ``QueueError/noIntactCommit(tip:)`` when no intact commit is known, or a ``GitError`` (the ref moved
  ///   meanwhile: run it again).
  public func repairTip() throws -> TipRepair? {
    guard let tip = try tip(), !isIntact(tip) else { return nil }
    let reflog = (try? repository.reflog(of: Layout.refName)) ?? []
    var candidates: [(ObjectID, String)] = []
    for entry in reflog { candidates.append((entry.new, "reflog")) }
    for entry in reflog { candidates.append((entry.old, "reflog")) }
    for name in (try? repository.referenceNames(matching: "refs/taskq/remotes/*")) ?? [] where name.hasSuffix("/queue")
    {
      if let target = try? repository.referenceTarget(name) { candidates.append((target, name)) }
    }
    var best: (id: ObjectID, source: String, time: Int64)?
    var seen: Set<ObjectID> = []
    let zero = ObjectID(hex: String(repeating: "0", count: 40))
    for (candidate, source) in candidates where candidate != tip && candidate != zero {
      guard seen.insert(candidate).inserted, isIntact(candidate), let commit = try? repository.commit(candidate)
      else { continue }
      if best.map({ commit.time > $0.time }) ?? true { best = (candidate, source, commit.time) }
    }
    guard let best else {
      throw QueueError.noIntactCommit(tip: String(tip.hex.prefix(12)))
    }
    // The operations after the chosen commit: reflog entries until one that reached it (or its past).
    var lost: [String] = []
    for entry in reflog {
      if entry.new == best.id || ((try? repository.isAncestor(entry.new, of: best.id)) ?? false) { break }
      if let commit = try? repository.commit(entry.new), let operation = Operation.parse(message: commit.message) {
        lost.append(operation.subject)
      } else {
        var message = entry.message
        if message.hasPrefix("taskq: ") { message.removeFirst(7) }
        lost.append(message.isEmpty ? "commit \(entry.new.hex.prefix(12))" : message)
      }
    }
    if reflog.isEmpty { lost.append("every operation after \(best.id.hex.prefix(12)) (the ref has no reflog)") }
    try? repository.ensureReflog(for: Layout.refName)
    try repository.updateReference(
      Layout.refName, to: best.id, expected: tip,
      message: "taskq: fsck --repair: from unreadable \(tip.hex.prefix(12)) to \(best.source)")
    // Entries whose commit is gone would make `git fsck` report the reflog as invalid.
    // Entries whose commit is gone or broken would make `git fsck` report the reflog.
    try? repository.dropReflogEntries(of: Layout.refName) { id in
      (try? QueueSnapshot.load(repository: repository, commit: id).scan()) == nil
    }
    return TipRepair(from: tip, to: best.id, source: best.source, lost: lost.map { QueueError.printable($0) })
  }
}
