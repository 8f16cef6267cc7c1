#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Little-endian bytes for the snapshot cache file: a growable writer and a bounds-checked reader.
///
/// The reader never traps on bad input: any overrun or malformed value throws ``CacheFormatError``, which the
/// cache treats as "no cache" (a full read follows).
struct ByteWriter {
  private(set) var bytes: [UInt8] = []

  init(capacity: Int = 0) { bytes.reserveCapacity(capacity) }

  mutating func u8(_ value: UInt8) { bytes.append(value) }

  mutating func u32(_ value: UInt32) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func u64(_ value: UInt64) {
    withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
  }

  mutating func int(_ value: Int) { u64(UInt64(bitPattern: Int64(value))) }

  mutating func raw(_ data: some Collection<UInt8>) { bytes.append(contentsOf: data) }

  mutating func string(_ value: String) {
    var value = value
    value.withUTF8 { utf8 in
      u32(UInt32(utf8.count))
      bytes.append(contentsOf: utf8)
    }
  }

  mutating func strings(_ values: [String]) {
    u32(UInt32(values.count))
    for value in values { string(value) }
  }

  mutating func optionalInt(_ value: Int?) {
    guard let value else { return u8(0) }
    u8(1)
    int(value)
  }

  /// Overwrites 8 bytes at `offset` (for lengths and checksums known only at the end).
  mutating func patch(_ value: UInt64, at offset: Int) {
    withUnsafeBytes(of: value.littleEndian) { raw in
      for index in 0..<8 { bytes[offset + index] = raw[index] }
    }
  }
}

/// Why a cache file could not be read.
///
/// Never shown to users: it only means "read the queue in full".
struct CacheFormatError: Error, Equatable {
  var reason: String
}

struct ByteReader {
  let buffer: UnsafeRawBufferPointer
  private(set) var offset = 0

  init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

  var remaining: Int { buffer.count - offset }

  private mutating func take(_ count: Int) throws -> Int {
    guard count >= 0, count <= remaining else { throw CacheFormatError(reason: "truncated") }
    defer { offset += count }
    return offset
  }

  mutating func u8() throws -> UInt8 { buffer[try take(1)] }

  mutating func u32() throws -> UInt32 {
    UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: try take(4), as: UInt32.self))
  }

  mutating func u64() throws -> UInt64 {
    UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: try take(8), as: UInt64.self))
  }

  mutating func int() throws -> Int {
    let value = Int64(bitPattern: try u64())
    guard let exact = Int(exactly: value) else { throw CacheFormatError(reason: "integer out of range") }
    return exact
  }

  /// `count` bytes, borrowed from the buffer.
  mutating func raw(_ count: Int) throws -> UnsafeRawBufferPointer {
    let start = try take(count)
    return UnsafeRawBufferPointer(rebasing: buffer[start..<(start + count)])
  }

  mutating func string() throws -> String {
    let count = Int(try u32())
    // The checksum has vouched for the bytes; `decoding` never fails (and is the fast path for ASCII).
    return String(decoding: try raw(count), as: UTF8.self)
  }

  mutating func optionalInt() throws -> Int? {
    switch try u8() {
    case 0: return nil
    case 1: return try int()
    default: throw CacheFormatError(reason: "bad optional tag")
    }
  }

  mutating func strings() throws -> [String] {
    let count = Int(try u32())
    guard count <= remaining / 4 else { throw CacheFormatError(reason: "bad count") }
    var result: [String] = []
    result.reserveCapacity(count)
    for _ in 0..<count { result.append(try string()) }
    return result
  }
}

/// A fast 64-bit checksum of the cache payload (8 bytes per step).
///
/// It catches truncation and stray writes. Not cryptographic: the cache is derived data that only this tool writes.
func cacheChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
  var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(bytes.count)
  let prime: UInt64 = 0x0000_0100_0000_01b3
  var index = 0
  while index + 8 <= bytes.count {
    let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self))
    hash = (hash ^ word) &* prime
    hash ^= hash >> 29
    index += 8
  }
  while index < bytes.count {
    hash = (hash ^ UInt64(bytes[index])) &* prime
    index += 1
  }
  return hash
}

/// The bytes of a cache file, in private memory: read from the file (``init(reading:)``) or copied (tests).
///
/// Immutable once made; shared by every copy of the index decoded from it, and freed with the last.
final class CacheStorage: @unchecked Sendable {
  let buffer: UnsafeRawBufferPointer

  /// A private copy of `bytes` (tests).
  init(copying bytes: [UInt8]) {
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
    bytes.withUnsafeBytes { memory.copyMemory(from: $0) }
    buffer = UnsafeRawBufferPointer(rebasing: memory[0..<bytes.count])
  }

  /// The file at `path`, read into private memory; `nil` when it is missing, not a regular file, empty, too
  /// large, or changes size while it is read. Opened without blocking: a FIFO put in its place would otherwise
  /// hang every read.
  ///
  /// Read, not mapped: a snapshot lives as long as the process that holds it (`status --watch`, `run`), and a
  /// mapped file that anything truncates in place turns the next access to its lost pages into SIGBUS, which
  /// kills the process. A private copy cannot be taken away.
  ///
  /// `accepts` sees the file's first `headerSize` bytes and its size before anything else is read or
  /// allocated, so a file that cannot be a cache (a sparse gigabyte, another program's file) costs one
  /// small read, not its size in memory.
  init?(reading path: String, headerSize: Int, accepts: (_ header: UnsafeRawBufferPointer, _ size: Int) -> Bool) {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var info = stat()
    guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size > 0, info.st_size < 1 << 31 else {
      return nil
    }
    let size = Int(info.st_size)
    var header = [UInt8](repeating: 0, count: headerSize)
    let headerRead = header.withUnsafeMutableBytes { pread(fd, $0.baseAddress, headerSize, 0) }
    guard headerRead == headerSize, header.withUnsafeBytes({ accepts($0, size) }) else { return nil }
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 8)
    var offset = 0
    while offset < size {
      let n = pread(fd, memory.baseAddress.map { $0 + offset }, size - offset, off_t(offset))
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else { break }
      offset += n
    }
    guard offset == size else {
      memory.deallocate()
      return nil
    }
    buffer = UnsafeRawBufferPointer(memory)
  }

  deinit {
    buffer.baseAddress.map { UnsafeMutableRawPointer(mutating: $0).deallocate() }
  }
}

/// The strings and records section of a cache file that entries of a ``RecordIndex`` still point into:
/// strings and records are decoded from here when asked for.
final class CacheBacking: Sendable {
  let storage: CacheStorage
  /// Where each string of the table starts (its length prefix).
  let stringStarts: [UInt32]
  /// The records section.
  let records: Range<Int>

  init(storage: CacheStorage, stringStarts: [UInt32], records: Range<Int>) {
    self.storage = storage
    self.stringStarts = stringStarts
    self.records = records
  }

  /// String number `number` of the table.
  func string(_ number: Int) throws -> String {
    guard number >= 0, number < stringStarts.count else { throw CacheFormatError(reason: "bad string number") }
    var r = ByteReader(storage.buffer)
    _ = try r.raw(Int(stringStarts[number]))
    return try r.string()
  }

  /// The record at `offset` in the records section.
  func record(at offset: UInt32) throws -> TaskRecord {
    guard Int(offset) < records.count else { throw CacheFormatError(reason: "bad offset") }
    var r = ByteReader(
      UnsafeRawBufferPointer(rebasing: storage.buffer[(records.lowerBound + Int(offset))..<records.upperBound]))
    return try RecordCodec.read(from: &r, string: string)
  }
}
