import Git

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The snapshot cache on disk: `<common git dir>/taskq/cache-v1`, one ``RecordIndex``.
///
/// Layout (little-endian): the magic `TASKQIX\0`, the format version (u32), the codec's schema fingerprint
/// (u32), the commit and the `tasks` tree as 40 hex digits each (zeros: none), the payload length and its
/// checksum (u64 each), then the payload:
///
/// 1. the distinct strings (a count, then each as a length and its UTF-8 bytes);
/// 2. the entries in `seq` order, each the slim part a listing and a claim read: id (a string number),
///    status, priority, seq, the status timestamp in seconds (optional), the task file's title (string
///    number plus one, 0 for none), the dependencies (a count and string numbers), and the offset of its
///    record in the next section;
/// 3. the records section (a length, then every record in ``RecordCodec``'s form, strings as numbers),
///    decoded only for the entries asked for;
/// 4. each bucket with its tree, its task trees and the positions of their entries.
///
/// Anything unexpected makes the file count as absent.
enum CacheFile {
  static let name = "cache-v1"
  static let magic: [UInt8] = Array("TASKQIX".utf8) + [0]
  /// 4: the slim entries and titles (issue 15); 3: records only.
  static let version: UInt32 = 4
  static let headerSize = 8 + 4 + 4 + 40 + 40 + 8 + 8
  private static let noTree = [UInt8](repeating: UInt8(ascii: "0"), count: 40)

  /// The cache file of `repository`: under the directory shared by all of its worktrees.
  static func path(for repository: Repository) -> String {
    repository.commonDirectory + "taskq/" + name
  }

  // MARK: Encoding

  /// The file's bytes for `index`.
  ///
  /// - Throws: ``CacheFormatError`` when a stored entry of `index` does not decode.
  static func encode(_ index: RecordIndex) throws -> [UInt8] {
    var w = ByteWriter(capacity: 64 + index.entries.count * 400)
    w.raw(magic)
    w.u32(version)
    w.u32(RecordCodec.schema)
    w.raw(Array(index.commit.hex.utf8))
    w.raw(index.tasksTree.map { Array($0.hex.utf8) } ?? noTree)
    w.u64(0)  // payload length, patched below
    w.u64(0)  // checksum, patched below
    var strings = StringTable()
    var slim = ByteWriter(capacity: index.entries.count * 48)
    var records = ByteWriter(capacity: index.entries.count * 100)
    for position in index.entries.indices {
      let entry = index.entries[position]
      let record = try index.record(at: position)
      let title = try index.title(at: position)
      slim.u32(strings.number(entry.id))
      slim.u8(UInt8(TaskStatus.allCases.firstIndex(of: entry.status) ?? 0))
      slim.int(entry.priority)
      slim.int(entry.seq)
      slim.optionalInt(entry.since)
      slim.u32(title.map { strings.number($0) + 1 } ?? 0)
      slim.u32(UInt32(entry.dependsOn.count))
      for dependency in entry.dependsOn { slim.u32(strings.number(dependency)) }
      slim.u32(UInt32(records.bytes.count))
      RecordCodec.write(record, to: &records, strings: &strings)
    }
    w.strings(strings.strings)
    w.u32(UInt32(index.entries.count))
    w.raw(slim.bytes)
    w.u32(UInt32(records.bytes.count))
    w.raw(records.bytes)
    w.u32(UInt32(index.buckets.count))
    for bucket in index.buckets {
      w.string(bucket.name)
      w.raw(Array(bucket.tree.hex.utf8))
      w.u32(UInt32(bucket.count))
      w.raw(bucket.taskTrees)
      for position in bucket.positions { w.u32(position) }
    }
    let payloadLength = w.bytes.count - headerSize
    let checksum = w.bytes.withUnsafeBytes { cacheChecksum(UnsafeRawBufferPointer(rebasing: $0[headerSize...])) }
    w.patch(UInt64(payloadLength), at: headerSize - 16)
    w.patch(checksum, at: headerSize - 8)
    return w.bytes
  }

  /// The index in `bytes`: its entries decoded, its records and titles left in the bytes until asked for.
  static func decode(_ bytes: [UInt8]) throws -> RecordIndex {
    try decode(CacheStorage(copying: bytes))
  }

  /// The index in `storage` (which its stored entries keep alive).
  static func decode(_ storage: CacheStorage) throws -> RecordIndex {
    let buffer = storage.buffer
    let header = try { () throws -> (ObjectID, ObjectID?) in
      var r = ByteReader(buffer)
      guard Array(try r.raw(8)) == magic else { throw CacheFormatError(reason: "not a cache file") }
      guard try r.u32() == version, try r.u32() == RecordCodec.schema else {
        throw CacheFormatError(reason: "other format")
      }
      let commit = try objectID(try r.raw(40))
      let treeHex = try r.raw(40)
      let tasksTree = Array(treeHex) == noTree ? nil : try objectID(treeHex)
      let length = try r.u64()
      let checksum = try r.u64()
      guard length == UInt64(r.remaining) else { throw CacheFormatError(reason: "truncated") }
      guard cacheChecksum(UnsafeRawBufferPointer(rebasing: buffer[r.offset...])) == checksum else {
        throw CacheFormatError(reason: "checksum")
      }
      return (commit, tasksTree)
    }()
    // The string table: only where each string starts; a string is made when it is asked for.
    var starts: [UInt32] = []
    var offset = headerSize
    do {
      var r = ByteReader(buffer)
      _ = try r.raw(headerSize)
      let count = Int(try r.u32())
      guard count <= r.remaining / 4 else { throw CacheFormatError(reason: "bad count") }
      starts.reserveCapacity(count)
      for _ in 0..<count {
        starts.append(UInt32(r.offset))
        _ = try r.raw(Int(try r.u32()))
      }
      offset = r.offset
    }
    var backing = CacheBacking(storage: storage, stringStarts: starts, records: 0..<0)
    var entries: [RecordIndex.Entry] = []
    var buckets: [RecordIndex.Bucket] = []
    do {
      var r = ByteReader(buffer)
      _ = try r.raw(offset)
      let entryCount = Int(try r.u32())
      guard entryCount <= r.remaining / 34 else { throw CacheFormatError(reason: "bad count") }
      entries.reserveCapacity(entryCount)
      var offsets: [UInt32] = []
      offsets.reserveCapacity(entryCount)
      for _ in 0..<entryCount {
        let id = try backing.string(Int(try r.u32()))
        // The checksum guards against accidents, not against a crafted file: an id that git would show as a
        // damaged directory must not reach a listing or completion from here.
        guard TaskID.isValid(id) else { throw CacheFormatError(reason: "bad task id") }
        let statusNumber = Int(try r.u8())
        guard statusNumber < TaskStatus.allCases.count else { throw CacheFormatError(reason: "bad status") }
        let priority = try r.int()
        let seq = try r.int()
        let since = try r.optionalInt()
        let title = try r.u32()
        guard title <= starts.count else { throw CacheFormatError(reason: "bad string number") }
        let dependencyCount = Int(try r.u32())
        guard dependencyCount <= r.remaining / 4 else { throw CacheFormatError(reason: "bad count") }
        var dependencies: [String] = []
        if dependencyCount > 0 {
          dependencies.reserveCapacity(dependencyCount)
          for _ in 0..<dependencyCount {
            let dependency = try backing.string(Int(try r.u32()))
            guard TaskID.isValid(dependency) else { throw CacheFormatError(reason: "bad dependency id") }
            dependencies.append(dependency)
          }
        }
        let recordOffset = try r.u32()
        offsets.append(recordOffset)
        entries.append(
          RecordIndex.Entry(
            id: id, status: TaskStatus.allCases[statusNumber], priority: priority, seq: seq, since: since,
            dependsOn: dependencies, source: .stored(record: recordOffset, title: title)))
      }
      let recordsLength = Int(try r.u32())
      let recordsStart = r.offset
      _ = try r.raw(recordsLength)
      guard offsets.allSatisfy({ Int($0) < recordsLength }) else { throw CacheFormatError(reason: "bad offset") }
      backing = CacheBacking(
        storage: storage, stringStarts: starts, records: recordsStart..<(recordsStart + recordsLength))

      let bucketCount = Int(try r.u32())
      guard bucketCount <= r.remaining / 48 else { throw CacheFormatError(reason: "bad count") }
      buckets.reserveCapacity(bucketCount)
      var covered = 0
      for _ in 0..<bucketCount {
        let name = try r.string()
        let tree = try objectID(try r.raw(40))
        let count = Int(try r.u32())
        guard count <= r.remaining / 44 else { throw CacheFormatError(reason: "bad count") }
        let taskTrees = Array(try r.raw(count * 40))
        var positions: [UInt32] = []
        positions.reserveCapacity(count)
        for _ in 0..<count {
          let position = try r.u32()
          guard position < entryCount else { throw CacheFormatError(reason: "bad position") }
          positions.append(position)
        }
        covered += count
        buckets.append(RecordIndex.Bucket(name: name, tree: tree, taskTrees: taskTrees, positions: positions))
      }
      guard r.remaining == 0, covered == entryCount else { throw CacheFormatError(reason: "inconsistent") }
    }
    return RecordIndex(
      commit: header.0, tasksTree: header.1, buckets: buckets, entries: entries, backing: backing, unsaved: 0)
  }

  private static func objectID(_ hex: UnsafeRawBufferPointer) throws -> ObjectID {
    guard let id = ObjectID(hex: String(decoding: hex, as: UTF8.self)) else {
      throw CacheFormatError(reason: "bad object id")
    }
    return id
  }

  // MARK: Files

  /// The index stored for `repository`, or `nil` when there is none or it cannot be trusted.
  ///
  /// The file is read whole into private memory (records no one asks for are still never decoded), not
  /// mapped: this tool only ever replaces the file by `rename`, but another program may truncate it in place,
  /// and a mapping would then kill a long-lived reader (`status --watch`, `run`) with SIGBUS.
  static func load(for repository: Repository) -> RecordIndex? {
    load(atPath: path(for: repository))
  }

  /// The index stored at `path` (``FastRead`` finds it without a ``Repository``).
  static func load(atPath path: String) -> RecordIndex? {
    let storage = CacheStorage(reading: path, headerSize: headerSize) { header, size in
      // The magic, and a payload length that is the rest of the file: checked before the file is read.
      header.prefix(8).elementsEqual(magic)
        && UInt64(littleEndian: header.loadUnaligned(fromByteOffset: headerSize - 16, as: UInt64.self))
          == UInt64(size - headerSize)
    }
    guard let storage else { return nil }
    return try? decode(storage)
  }

  /// Replaces the stored index atomically: a private temporary file, then `rename`.
  ///
  /// Best effort: a cache that cannot be written is simply not there next time.
  static func store(_ index: RecordIndex, for repository: Repository) {
    let final = path(for: repository)
    let directory = String(final.dropLast(name.count + 1))
    mkdir(directory, 0o755)
    let temporary = "\(final).tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
    let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    guard let bytes = try? encode(index) else {
      close(fd)
      unlink(temporary)
      return
    }
    let written = bytes.withUnsafeBytes { buffer -> Bool in
      var offset = 0
      while offset < buffer.count {
        let n = write(fd, buffer.baseAddress.map { $0 + offset }, buffer.count - offset)
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        offset += n
      }
      return true
    }
    close(fd)
    if !written || rename(temporary, final) != 0 { unlink(temporary) }
  }

  /// Removes the stored index (nothing is lost: it is derived from the ref).
  static func remove(for repository: Repository) {
    unlink(path(for: repository))
  }
}
