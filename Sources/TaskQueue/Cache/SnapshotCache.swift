import Git
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The derived, deletable snapshot cache of DESIGN §10: every task of one queue commit (see ``RecordIndex``).
///
/// ``QueueSnapshot/records()`` and ``QueueSnapshot/listing()`` ask it first. A cache at the snapshot's commit answers at once; one at
/// another commit is brought up to date by re-reading only the task trees whose ids differ (see
/// ``RecordIndex``); without one, the queue is read in full and the cache written. Two layers: the last
/// index of this process (long-lived workers claim without touching the file) and the file under the git
/// directory (one-shot commands such as `status`).
///
/// The ref stays the only truth. The file can be deleted at any time; one that is missing, truncated,
/// corrupt or of another format is ignored. Set `TASKQ_NO_CACHE=1` to bypass it (reads are then full).
public enum SnapshotCache {
  /// Records re-read from git before the file is rewritten.
  ///
  /// Rewriting costs O(all records); re-reading a few changed tasks costs little, so a file a few commits
  /// behind is still worth reading.
  static let rewriteThreshold = 32

  /// Whether the cache is used: not disabled by `TASKQ_NO_CACHE`, and the codec covers every field.
  static var isEnabled: Bool {
    guard let value = getenv("TASKQ_NO_CACHE") else { return RecordCodec.coversTaskRecord }
    return value.pointee == 0 && RecordCodec.coversTaskRecord
  }

  /// Every record of `snapshot`, as ``QueueSnapshot/readAllRecords()`` would return them.
  static func records(of snapshot: QueueSnapshot) throws -> [TaskRecord] {
    let key = snapshot.repository.commonDirectory
    guard var index = try index(of: snapshot) else { return try snapshot.readAllRecords() }
    if let all = index.allRecordsMemo { return all }
    guard let all = try? index.allRecords() else {
      // The file's bytes held their checksum but not their form (a bug): forget it, read from git.
      clear(for: snapshot.repository)
      return try snapshot.readAllRecords()
    }
    // Kept with the index, so that a long-lived process asking again at the same commit pays nothing.
    index.allRecordsMemo = all
    Memory.shared.keep(index, for: key)
    return all
  }

  /// The tasks of `snapshot` as a listing: every task's few listing fields, records decoded on demand.
  static func listing(of snapshot: QueueSnapshot) throws -> QueueListing {
    guard let index = try index(of: snapshot) else {
      return QueueListing(records: try snapshot.readAllRecords(), snapshot: snapshot)
    }
    return QueueListing(index: index, snapshot: snapshot)
  }

  /// The index of `snapshot`'s commit: from this process's memory, the file, or git (writing the file);
  /// `nil` when the cache is off, the queue has damaged task directories (the full read skips them), or
  /// the queue was never written.
  static func index(of snapshot: QueueSnapshot) throws -> RecordIndex? {
    guard let commit = snapshot.commit, let root = snapshot.tree else { return nil }
    guard isEnabled else { return nil }
    let repository = snapshot.repository
    let key = repository.commonDirectory
    // Taken out of the shared slot, so that the update below owns the entries and can change them in place.
    let remembered = Memory.shared.take(key)
    if let remembered, remembered.commit == commit {
      Memory.shared.keep(remembered, for: key)
      return remembered
    }
    var index: RecordIndex
    var isFullRead = false
    if let known = remembered ?? CacheFile.load(for: repository) {
      index = known
    } else {
      index = RecordIndex.empty(commit: commit)
      isFullRead = true
    }
    if index.commit != commit || isFullRead {
      do {
        try index.update(to: commit, root: root, repository: repository)
      } catch is DamageFound {
        // Damaged directories are rare and must stay visible: no cache for this queue until they are removed.
        return nil
      }
      if index.unsaved >= rewriteThreshold || isFullRead,
        (try? repository.referenceTarget(Layout.refName)) == commit
      {
        CacheFile.store(index, for: repository)
        index.unsaved = 0
      }
    }
    Memory.shared.keep(index, for: key)
    return index
  }

  /// Forgets this process's index and, unless `keepingFile`, deletes the cache file (tests, benchmarks).
  ///
  /// Nothing is lost: the next read rebuilds what it needs from the ref.
  public static func clear(for repository: Repository, keepingFile: Bool = false) {
    Memory.shared.take(repository.commonDirectory)
    if !keepingFile { CacheFile.remove(for: repository) }
  }

  /// The last index this process computed, per repository.
  final class Memory: Sendable {
    static let shared = Memory()
    private let indexes = Mutex<[String: RecordIndex]>([:])

    @discardableResult
    func take(_ key: String) -> RecordIndex? {
      indexes.withLock { $0.removeValue(forKey: key) }
    }

    func keep(_ index: RecordIndex, for key: String) {
      indexes.withLock { $0[key] = index }
    }
  }
}
