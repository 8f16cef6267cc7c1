#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `status --json` output for records, written directly: byte for byte what `JSONEncoder` with
/// `[.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]` writes, about 20 times faster (10,000 records:
/// ~140 ms with `JSONEncoder`, ~6 ms here, measured by `taskq-bench`).
///
/// Like the cache's codec it names every field; when ``TaskRecord`` gains one that is not listed here,
/// ``isComplete`` turns false and the functions fall back to `JSONEncoder`, so output is never missing a key.
public enum RecordJSON {
  /// Whether this writer knows every property of ``TaskRecord`` (else `JSONEncoder` is used).
  public static var isComplete: Bool { RecordCodec.coversTaskRecord }

  /// The records as a pretty-printed JSON array, keys sorted.
  public static func array(_ records: [TaskRecord]) -> String {
    guard isComplete else { return fallback(records) }
    var out = JSONBytes(capacity: 64 + records.count * 700)
    if records.isEmpty {
      out.append("[\n\n]")
    } else {
      out.append("[\n  ")
      for (index, record) in records.enumerated() {
        if index > 0 { out.append(",\n  ") }
        out.record(record, keys: keysInArray)
      }
      out.append("\n]")
    }
    return String(decoding: out.bytes, as: UTF8.self)
  }

  /// ``array(_:)``'s text as UTF-8, for `count` records that `record` gives one at a time (so a listing
  /// decodes each from the snapshot cache as it is written, and no array of every record is made).
  public static func arrayBytes(count: Int, record: (Int) throws -> TaskRecord) throws -> [UInt8] {
    guard isComplete else { return Array(fallback(try (0..<count).map(record)).utf8) }
    var out = JSONBytes(capacity: 64 + count * 700)
    if count == 0 {
      out.append("[\n\n]")
    } else {
      out.append("[\n  ")
      for index in 0..<count {
        if index > 0 { out.append(",\n  ") }
        out.record(try record(index), keys: keysInArray)
      }
      out.append("\n]")
    }
    return out.bytes
  }

  /// ``arrayBytes(count:record:)``'s bytes for `records`, cleaned (``clean(_:)``): what `status --json`
  /// prints from a full read, in one piece.
  public static func cleanArrayBytes(_ records: [TaskRecord]) -> [UInt8] {
    (try? clean(arrayBytes(count: records.count) { records[$0] })) ?? []
  }

  /// JSON made safe for a terminal, in one pass over its bytes. JSON escapes C0 controls (`\u001b`) but
  /// allows C1 controls and the line separators raw; those are escaped too (`\u009b`), which keeps the exact
  /// value (they occur only inside strings, since everything else in JSON is ASCII). Empty arrays become
  /// `[]` (Foundation's pretty printer writes `[\n\n  ]`; a raw newline cannot occur inside a JSON string,
  /// so the pattern only ever matches an empty array).
  public static func clean(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    bytes.withUnsafeBufferPointer { clean($0, into: &out) }
    return out
  }

  /// Appends `bytes` cleaned as ``clean(_:)`` cleans them to `out`.
  static func clean(_ bytes: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
    let hex = Array("0123456789abcdef".utf8)
    func escape(_ value: Int) {
      out.append(contentsOf: [0x5C, 0x75])
      for shift in [12, 8, 4, 0] { out.append(hex[(value >> shift) & 0xF]) }
    }
    // Runs of bytes that stay as they are are copied whole (`status --json` at 10,000 tasks is 6.5 MB).
    var index = 0
    var run = 0
    let count = bytes.count
    func flush(upTo end: Int) {
      if end > run { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<end])) }
    }
    while index < count {
      let byte = bytes[index]
      guard byte == 0x5B || byte == 0xC2 || byte == 0xE2 || byte == 0x7F else {
        index += 1
        continue
      }
      if byte == 0x5B, index + 2 < count, bytes[index + 1] == 10, bytes[index + 2] == 10 {
        // `[`, newline, newline, spaces, `]`: an empty array.
        var end = index + 3
        while end < count, bytes[end] == 0x20 { end += 1 }
        if end < count, bytes[end] == 0x5D {
          flush(upTo: index)
          out.append(contentsOf: [0x5B, 0x5D])
          index = end + 1
          run = index
          continue
        }
      } else if byte == 0xC2, index + 1 < count, (0x80...0x9F).contains(bytes[index + 1]) {
        flush(upTo: index)
        escape(Int(bytes[index + 1]))
        index += 2
        run = index
        continue
      } else if byte == 0xE2, index + 2 < count, bytes[index + 1] == 0x80,
        bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9
      {
        flush(upTo: index)
        escape(bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029)
        index += 3
        run = index
        continue
      } else if byte == 0x7F {
        flush(upTo: index)
        escape(0x7F)
        index += 1
        run = index
        continue
      }
      index += 1
    }
    flush(upTo: count)
  }

  /// `status --json` of a listing: ``cleanArrayBytes(_:)`` of its records, handed to `sink` in pieces of a
  /// few hundred KB (so no buffer of the whole 6.5 MB at 10,000 tasks is made).
  ///
  /// From the snapshot cache, each record's JSON is written straight from the file's bytes (its strings
  /// copied as they are when nothing in them needs escaping), without decoding a ``TaskRecord``: the
  /// same bytes, checked against the full read's by `SnapshotCacheTests`.
  public static func write(
    _ tasks: QueueListing, chunk: Int = 1 << 18, to sink: (UnsafeBufferPointer<UInt8>) -> Void
  ) throws {
    guard isComplete, let (index, backing) = tasks.cacheIndex else {
      let bytes = clean(try arrayBytes(count: tasks.count, record: tasks.record))
      bytes.withUnsafeBufferPointer { sink($0) }
      return
    }
    var out = RawBytes(capacity: chunk + 65536)
    guard !index.entries.isEmpty else {
      out.bytes("[]")
      return sink(out.buffer)
    }
    let writer = CachedRecordJSON(backing: backing)
    out.bytes("[\n  ")
    for position in index.entries.indices {
      if position > 0 { out.bytes(",\n  ") }
      let start = out.count
      var written = false
      if case .stored(let offset, _) = index.entries[position].source {
        written = (try? writer.append(recordAt: offset, to: &out)) != nil
        if !written { out.truncate(to: start) }
      }
      if !written {
        // Read from git (or the cache's bytes failed): the ordinary writer, then cleaned.
        var one = JSONBytes(capacity: 1024)
        one.record(try tasks.record(position), keys: keysInArray)
        var cleaned: [UInt8] = []
        one.bytes.withUnsafeBufferPointer { clean($0, into: &cleaned) }
        cleaned.withUnsafeBufferPointer { out.bytes($0) }
      }
      if out.count >= chunk {
        sink(out.buffer)
        out.removeAll()
      }
    }
    out.bytes("\n]")
    sink(out.buffer)
  }

  /// One record as a pretty-printed JSON object, keys sorted.
  public static func object(_ record: TaskRecord) -> String {
    guard isComplete else { return fallback(record) }
    var out = JSONBytes(capacity: 800)
    out.record(record, keys: keysAtTop)
    return String(decoding: out.bytes, as: UTF8.self)
  }

  private static func fallback<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
  }

  /// The coding keys of ``TaskRecord``, sorted as `.sortedKeys` sorts them.
  static let sortedKeys = [
    "attempt", "base", "branch", "container", "created_at", "depends_on", "error_file", "id", "last_error",
    "lease_expires_at", "port", "priority", "repo", "seq", "session_id", "status", "status_changed_at",
    "task_file", "updated_at", "worker", "worktree_path",
  ]

  /// What comes before each value: a newline, the indentation and `"key" : `; for a record at the top
  /// level and for one inside the array.
  static let keysAtTop = KeyLines(indent: 0)
  static let keysInArray = KeyLines(indent: 2)
}

/// The bytes before each key's value, for one indentation.
struct KeyLines {
  /// `\n<spaces>"key" : ` for each key of ``RecordJSON/sortedKeys``.
  let lines: [[UInt8]]
  /// The indentation of the closing brace and of the `depends_on` closing bracket.
  let closing: [UInt8]
  let bracket: [UInt8]
  let element: [UInt8]

  init(indent: Int) {
    let inner = String(repeating: " ", count: indent + 2)
    lines = RecordJSON.sortedKeys.map { Array("\n\(inner)\"\($0)\" : ".utf8) }
    closing = Array(("\n" + String(repeating: " ", count: indent) + "}").utf8)
    bracket = Array(("\n" + inner + "]").utf8)
    element = Array(("\n" + String(repeating: " ", count: indent + 4)).utf8)
  }
}

/// A growing buffer of JSON text.
struct JSONBytes {
  var bytes: [UInt8] = []

  init(capacity: Int) { bytes.reserveCapacity(capacity) }

  mutating func append(_ text: StaticString) {
    text.withUTF8Buffer { bytes.append(contentsOf: $0) }
  }

  mutating func int(_ value: Int?) {
    guard let value else { return append("null") }
    bytes.append(contentsOf: String(value).utf8)
  }

  /// A JSON string literal as `JSONEncoder` writes it: `"` and `\` escaped, the usual short escapes,
  /// other control characters as `\u00xx`, everything else (including `/` and non-ASCII) as is.
  mutating func string(_ value: String?) {
    guard var value else { return append("null") }
    bytes.append(UInt8(ascii: "\""))
    value.withUTF8 { utf8 in
      var start = 0
      for index in 0..<utf8.count {
        let byte = utf8[index]
        guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
        start = index + 1
        switch byte {
        case 0x22: append("\\\"")
        case 0x5C: append("\\\\")
        case 0x08: append("\\b")
        case 0x0C: append("\\f")
        case 0x0A: append("\\n")
        case 0x0D: append("\\r")
        case 0x09: append("\\t")
        default:
          append("\\u00")
          bytes.append(hexDigit(byte >> 4))
          bytes.append(hexDigit(byte & 0xF))
        }
      }
      bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start...]))
    }
    bytes.append(UInt8(ascii: "\""))
  }

  private func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 48 + value : 87 + value }

  /// `{`, each key (in ``RecordJSON/sortedKeys`` order) and value, and the closing brace.
  mutating func record(_ r: TaskRecord, keys: KeyLines) {
    var key = 0
    func next(_ out: inout JSONBytes) {
      out.bytes.append(key == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
      out.bytes.append(contentsOf: keys.lines[key])
      key += 1
    }
    next(&self)
    int(r.attempt)
    next(&self)
    string(r.base)
    next(&self)
    string(r.branch)
    next(&self)
    string(r.container)
    next(&self)
    string(r.createdAt)
    next(&self)
    if r.dependsOn.isEmpty {
      append("[\n")
    } else {
      append("[")
      for (index, dependency) in r.dependsOn.enumerated() {
        if index > 0 { append(",") }
        bytes.append(contentsOf: keys.element)
        string(dependency)
      }
    }
    bytes.append(contentsOf: keys.bracket)
    next(&self)
    string(r.errorFile)
    next(&self)
    string(r.id)
    next(&self)
    string(r.lastError)
    next(&self)
    string(r.leaseExpiresAt)
    next(&self)
    int(r.port)
    next(&self)
    int(r.priority)
    next(&self)
    string(r.repo)
    next(&self)
    int(r.seq)
    next(&self)
    string(r.sessionID)
    next(&self)
    string(r.status.rawValue)
    next(&self)
    string(r.statusChangedAt)
    next(&self)
    string(r.taskFile)
    next(&self)
    string(r.updatedAt)
    next(&self)
    string(r.worker)
    next(&self)
    string(r.worktreePath)
    bytes.append(contentsOf: keys.closing)
  }
}

/// A growing byte buffer written through a raw pointer: `status --json` appends ~45 pieces per record, and
/// `Array.append` costs several times a `memcpy` of a few bytes (measured: ~40 % of the writer's time).
struct RawBytes: ~Copyable {
  private(set) var base: UnsafeMutablePointer<UInt8>
  private(set) var count = 0
  private var capacity: Int

  init(capacity: Int) {
    self.capacity = max(capacity, 64)
    base = .allocate(capacity: self.capacity)
  }

  deinit { base.deallocate() }

  var buffer: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: base, count: count) }

  mutating func removeAll() { count = 0 }

  mutating func truncate(to length: Int) { count = min(count, length) }

  /// Room for `extra` more bytes.
  @inline(__always) mutating func reserve(_ extra: Int) {
    guard count + extra > capacity else { return }
    let grown = max(capacity * 2, count + extra)
    let new = UnsafeMutablePointer<UInt8>.allocate(capacity: grown)
    new.update(from: base, count: count)
    base.deallocate()
    base = new
    capacity = grown
  }

  @inline(__always) mutating func byte(_ value: UInt8) {
    reserve(1)
    base[count] = value
    count += 1
  }

  @inline(__always) mutating func bytes(_ source: UnsafeRawPointer, _ length: Int) {
    reserve(length)
    (base + count).update(from: source.assumingMemoryBound(to: UInt8.self), count: length)
    count += length
  }

  mutating func bytes(_ source: UnsafeBufferPointer<UInt8>) {
    guard let start = source.baseAddress else { return }
    bytes(UnsafeRawPointer(start), source.count)
  }

  mutating func bytes(_ text: StaticString) {
    bytes(UnsafeRawPointer(text.utf8Start), text.utf8CodeUnitCount)
  }

  /// `value` in decimal, as `String(value)` writes it.
  mutating func decimal(_ value: Int) {
    reserve(21)
    if value < 0 { byte(UInt8(ascii: "-")) }
    var n = value.magnitude
    var digits = 1
    var scan = n
    while scan >= 10 {
      scan /= 10
      digits += 1
    }
    var position = count + digits - 1
    repeat {
      base[position] = UInt8(ascii: "0") + UInt8(n % 10)
      position -= 1
      n /= 10
    } while n > 0
    count += digits
  }
}

/// `status --json`'s records written from a cache file's bytes (``RecordJSON/write(_:chunk:to:)``).
struct CachedRecordJSON {
  let backing: CacheBacking
  /// The key lines of ``RecordJSON/keysInArray``, one after the other, and where each starts.
  private let keyBytes: [UInt8]
  private let keyStarts: [Int]
  private let bracket: [UInt8]
  private let element: [UInt8]
  private let closing: [UInt8]
  private let statuses: [[UInt8]]

  init(backing: CacheBacking) {
    self.backing = backing
    let keys = RecordJSON.keysInArray
    var bytes: [UInt8] = []
    var starts: [Int] = []
    for line in keys.lines {
      starts.append(bytes.count)
      bytes.append(contentsOf: line)
    }
    starts.append(bytes.count)
    keyBytes = bytes
    keyStarts = starts
    bracket = keys.bracket
    element = keys.element
    closing = keys.closing
    statuses = TaskStatus.allCases.map { Array("\"\($0.rawValue)\"".utf8) }
  }

  /// Appends the JSON of the record at `offset` of the records section, as ``JSONBytes/record(_:keys:)``
  /// writes it inside the array and ``RecordJSON/clean(_:)`` cleans it, without making a ``TaskRecord``.
  ///
  /// Reads the fields in ``RecordCodec``'s order, then writes them in key order. A string that holds
  /// nothing to escape (no control character, quote, backslash, DEL, C1 control or line separator) is
  /// copied as it is; any other goes through ``JSONBytes/string(_:)`` and the cleaning, as the full read's
  /// does.
  ///
  /// - Throws: ``CacheFormatError`` when the bytes do not decode (the caller writes the record read from
  ///   git instead, after truncating `out` to where it was).
  func append(recordAt offset: UInt32, to out: inout RawBytes) throws {
    guard Int(offset) < backing.records.count else { throw CacheFormatError(reason: "bad offset") }
    let buffer = backing.storage.buffer
    var r = ByteReader(
      UnsafeRawBufferPointer(rebasing: buffer[(backing.records.lowerBound + Int(offset))..<backing.records.upperBound]))
    let id = try r.u32()
    let repo = try r.u32()
    let base = try r.u32()
    let branch = try r.u32()
    let taskFile = try r.u32()
    let status = Int(try r.u8())
    guard status < statuses.count else { throw CacheFormatError(reason: "bad status") }
    let worktreePath = try r.u32()
    let container = try r.u32()
    let port = try r.optionalInt()
    let sessionID = try r.u32()
    let attempt = try r.int()
    let errorFile = try r.u32()
    let createdAt = try r.u32()
    let updatedAt = try r.u32()
    let seq = try r.int()
    let priority = try r.int()
    let dependencies = Int(try r.u32())
    guard dependencies <= r.remaining / 4 else { throw CacheFormatError(reason: "bad count") }
    var dependencyReader = r
    _ = try r.raw(dependencies * 4)
    let worker = try r.u32()
    let leaseExpiresAt = try r.u32()
    let statusChangedAt = try r.u32()
    let lastError = try r.u32()

    try keyBytes.withUnsafeBufferPointer { keys in
      try backing.stringStarts.withUnsafeBufferPointer { starts in
        guard let keyBase = keys.baseAddress, let memory = buffer.baseAddress else { return }
        var key = 0
        func next(_ out: inout RawBytes) {
          out.byte(key == 0 ? UInt8(ascii: "{") : UInt8(ascii: ","))
          out.bytes(keyBase + keyStarts[key], keyStarts[key + 1] - keyStarts[key])
          key += 1
        }
        // A string of the table by number (`optional`: 0 is null, n is string n - 1).
        func text(_ number: UInt32, optional: Bool = false, _ out: inout RawBytes) throws {
          var number = Int(number)
          if optional {
            guard number > 0 else { return out.bytes("null") }
            number -= 1
          }
          guard number < starts.count else { throw CacheFormatError(reason: "bad string number") }
          let start = Int(starts[number])
          guard start + 4 <= buffer.count else { throw CacheFormatError(reason: "truncated") }
          let length = Int(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: start, as: UInt32.self)))
          guard length <= buffer.count - start - 4 else { throw CacheFormatError(reason: "truncated") }
          let utf8 = UnsafeRawBufferPointer(start: memory + start + 4, count: length)
          if Self.isPlain(utf8) {
            out.reserve(length + 2)
            out.byte(UInt8(ascii: "\""))
            out.bytes(memory + start + 4, length)
            out.byte(UInt8(ascii: "\""))
          } else {
            var one = JSONBytes(capacity: length + 16)
            one.string(String(decoding: utf8, as: UTF8.self))
            var cleaned: [UInt8] = []
            one.bytes.withUnsafeBufferPointer { RecordJSON.clean($0, into: &cleaned) }
            cleaned.withUnsafeBufferPointer { out.bytes($0) }
          }
        }
        next(&out)
        out.decimal(attempt)
        next(&out)
        try text(base, &out)
        next(&out)
        try text(branch, &out)
        next(&out)
        try text(container, optional: true, &out)
        next(&out)
        try text(createdAt, &out)
        next(&out)
        if dependencies == 0 {
          out.bytes("[]")
        } else {
          out.byte(UInt8(ascii: "["))
          for index in 0..<dependencies {
            if index > 0 { out.byte(UInt8(ascii: ",")) }
            element.withUnsafeBufferPointer { out.bytes($0) }
            try text(try dependencyReader.u32(), &out)
          }
          bracket.withUnsafeBufferPointer { out.bytes($0) }
        }
        next(&out)
        try text(errorFile, optional: true, &out)
        next(&out)
        try text(id, &out)
        next(&out)
        try text(lastError, optional: true, &out)
        next(&out)
        try text(leaseExpiresAt, optional: true, &out)
        next(&out)
        if let port { out.decimal(port) } else { out.bytes("null") }
        next(&out)
        out.decimal(priority)
        next(&out)
        try text(repo, &out)
        next(&out)
        out.decimal(seq)
        next(&out)
        try text(sessionID, optional: true, &out)
        next(&out)
        statuses[status].withUnsafeBufferPointer { out.bytes($0) }
        next(&out)
        try text(statusChangedAt, optional: true, &out)
        next(&out)
        try text(taskFile, &out)
        next(&out)
        try text(updatedAt, &out)
        next(&out)
        try text(worker, optional: true, &out)
        next(&out)
        try text(worktreePath, optional: true, &out)
        closing.withUnsafeBufferPointer { out.bytes($0) }
      }
    }
  }

  /// Whether `utf8` goes into JSON as it is: no byte below 0x20, no `"`, `\`, DEL, and no C1 control or
  /// line separator (their lead bytes 0xC2 and 0xE2 are taken as a sign; other non-ASCII text is plain).
  /// Eight bytes at a time while they are all ASCII.
  @inline(__always) static func isPlain(_ utf8: UnsafeRawBufferPointer) -> Bool {
    let ones: UInt64 = 0x0101_0101_0101_0101
    let highs: UInt64 = 0x8080_8080_8080_8080
    var index = 0
    let count = utf8.count
    while index + 8 <= count {
      let w = utf8.loadUnaligned(fromByteOffset: index, as: UInt64.self)
      // A byte below 0x20, a byte equal to 0x22, 0x5C or 0x7F, or any byte >= 0x80: look closer.
      let below = (w &- ones &* 0x20) & ~w
      let quote = w ^ (ones &* 0x22)
      let backslash = w ^ (ones &* 0x5C)
      let delete = w ^ (ones &* 0x7F)
      let flags =
        below | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((delete &- ones) & ~delete) | w
      if flags & highs != 0 { break }
      index += 8
    }
    while index < count {
      let byte = utf8[index]
      if byte < 0x20 || byte == 0x22 || byte == 0x5C || byte == 0x7F || byte == 0xC2 || byte == 0xE2 { return false }
      index += 1
    }
    return true
  }
}
