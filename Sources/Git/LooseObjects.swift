import CLibGit2

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes loose objects the way git does with `core.looseCompression=0`: the object's header and content in
/// one zlib stream of *stored* (uncompressed) deflate blocks, written to a temporary file in
/// `objects/xx/` and renamed to its name.
///
/// Why not libgit2's writer: for every object it sets up a deflate stream (zlib allocates and clears
/// ~256 KB), rescans `objects/pack/` when the object is not there yet, and a queue write makes five or six
/// objects. Most of a one-record transition went there (docs/performance.md, "Writing objects"). Stored
/// blocks cost nothing to make, and a loose object takes a file-system block whether or not it is
/// compressed: the records and trees of a queue are a few KB at most. `git gc` packs (and compresses) them
/// like any other loose object; git and libgit2 read them with the same inflate.
///
/// The object's name is still computed by libgit2 (`git_odb_hash`, git's collision-detecting SHA-1).
/// An object file that exists already is replaced by a new one with the same bytes: that freshens it (a new
/// mtime), as git freshens an object it would write again, so a concurrent `git gc` does not prune an
/// object that is about to become reachable.
struct LooseObjectWriter {
  /// The `objects/` directory, with a trailing `/`.
  let directory: String

  /// The writer for `repository`, or `nil` when libgit2's writer must do it: the environment moves the
  /// object directory (`GIT_OBJECT_DIRECTORY`), or the configuration asks for `fsync`
  /// (`core.fsyncObjectFiles`), which libgit2 honours.
  static func make(for repository: Repository) -> LooseObjectWriter? {
    if getenv("GIT_OBJECT_DIRECTORY") != nil { return nil }
    var config: OpaquePointer?
    guard git_repository_config_snapshot(&config, repository.pointer) == 0 else { return nil }
    defer { git_config_free(config) }
    var fsync: Int32 = 0
    if git_config_get_bool(&fsync, config, "core.fsyncObjectFiles") == 0, fsync != 0 { return nil }
    let objects = repository.commonDirectory + "objects/"
    var info = stat()
    guard stat(objects, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { return nil }
    return LooseObjectWriter(directory: objects)
  }

  /// Writes the object (again, when it exists: see above) and returns its id.
  func put(_ content: UnsafeRawBufferPointer, kind: Repository.ObjectKind) throws -> ObjectID {
    var oid = git_oid()
    try GitError.check(git_odb_hash(&oid, content.baseAddress, content.count, kind.raw), "git_odb_hash")
    let id = ObjectID(oid)
    let hex = id.hex
    let folder = directory + hex.prefix(2) + "/"
    let path = folder + hex.dropFirst(2)
    // No look first: a queue write's objects are new but for rare repeats, and a look is a path walk
    // through a large directory (on ext4 a tenth of a transition). An object that is there already is
    // replaced by the same bytes, which also freshens it, as git does for an object it would write again.
    let stream = Self.storedZlib(header: Array("\(kind.name) \(content.count)\0".utf8), content: content)
    try Self.store(stream, folder: folder, path: path)
    return id
  }

  /// The zlib stream (RFC 1950) of `header` followed by `content`, as stored deflate blocks (RFC 1951,
  /// block type 0) of at most 65,535 bytes, with the Adler-32 of the whole.
  static func storedZlib(header: [UInt8], content: UnsafeRawBufferPointer) -> [UInt8] {
    let total = header.count + content.count
    let blocks = max(1, (total + 65_534) / 65_535)
    var out: [UInt8] = []
    out.reserveCapacity(2 + total + 5 * blocks + 4)
    // CMF 0x78: deflate, 32 KB window; FLG 0x01: no dictionary, "fastest", (0x78 << 8 | 0x01) % 31 == 0.
    out.append(0x78)
    out.append(0x01)
    var adler = Adler32()
    var remaining = total
    var position = 0
    func append(_ range: Range<Int>) {
      // The bytes of the logical stream header + content at `range`.
      let split = header.count
      if range.lowerBound < split {
        let part = header[range.lowerBound..<min(range.upperBound, split)]
        out.append(contentsOf: part)
        part.withUnsafeBytes { adler.update($0) }
      }
      if range.upperBound > split {
        let start = max(range.lowerBound, split) - split
        let part = UnsafeRawBufferPointer(rebasing: content[start..<(range.upperBound - split)])
        out.append(contentsOf: part)
        adler.update(part)
      }
    }
    repeat {
      let length = min(remaining, 65_535)
      remaining -= length
      out.append(remaining == 0 ? 0x01 : 0x00)  // BFINAL on the last block, BTYPE 00 (stored)
      out.append(UInt8(length & 0xff))
      out.append(UInt8(length >> 8))
      out.append(UInt8(~length & 0xff))
      out.append(UInt8((~length >> 8) & 0xff))
      append(position..<(position + length))
      position += length
    } while remaining > 0
    let sum = adler.value
    out.append(UInt8(sum >> 24))
    out.append(UInt8((sum >> 16) & 0xff))
    out.append(UInt8((sum >> 8) & 0xff))
    out.append(UInt8(sum & 0xff))
    return out
  }

  /// Writes `bytes` to a new temporary file in `folder` and renames it to `path`. A concurrent `git gc`
  /// may remove an empty `objects/xx/` at any moment: the folder is made again and the write retried.
  static func store(_ bytes: [UInt8], folder: String, path: String) throws {
    var attempt = 0
    while true {
      attempt += 1
      let temporary = folder + "tmp_obj_" + temporarySuffix()
      var fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
      if fd < 0, errno == ENOENT {
        if mkdir(folder, 0o777) != 0, errno != EEXIST { throw failure("cannot create directory '\(folder)'") }
        fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o444)
      }
      if fd < 0 {
        if errno == ENOENT, attempt < 5 { continue }
        throw failure("cannot create temporary object file '\(temporary)'")
      }
      let written = bytes.withUnsafeBytes { writeAll(fd, $0) }
      let closed = close(fd) == 0
      guard written, closed else {
        let error = failure("cannot write object file '\(temporary)'")
        unlink(temporary)
        throw error
      }
      if rename(temporary, path) == 0 { return }
      let error = failure("failed to rename '\(temporary)' to '\(path)'")
      let code = errno
      unlink(temporary)
      if code == ENOENT, attempt < 5 { continue }
      throw error
    }
  }

  private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    var offset = 0
    while offset < bytes.count {
      let n = write(fd, base + offset, bytes.count - offset)
      if n < 0 {
        if errno == EINTR { continue }
        return false
      }
      offset += n
    }
    return true
  }

  private static func temporarySuffix() -> String {
    String(UInt64.random(in: 0...UInt64.max), radix: 36)
  }

  /// A ``GitError`` shaped like libgit2's own for the same failure (function `git_odb_write`, the path and
  /// the system's reason), read from `errno` now.
  private static func failure(_ what: String) -> GitError {
    let reason = String(cString: strerror(errno))
    return GitError(code: .generic, errorClass: 2, message: "\(what): \(reason)", function: "git_odb_write")
  }
}

/// Adler-32 (RFC 1950), the checksum that closes a zlib stream.
struct Adler32 {
  private var a: UInt32 = 1
  private var b: UInt32 = 0

  mutating func update(_ bytes: UnsafeRawBufferPointer) {
    var index = 0
    while index < bytes.count {
      // 5552 bytes is the most that cannot overflow 32 bits before the modulo (zlib's NMAX).
      let end = min(index + 5552, bytes.count)
      while index < end {
        a &+= UInt32(bytes[index])
        b &+= a
        index += 1
      }
      a %= 65_521
      b %= 65_521
    }
  }

  var value: UInt32 { b << 16 | a }
}

extension Repository.ObjectKind {
  /// The type name in an object's header.
  var name: String {
    switch self {
    case .blob: return "blob"
    case .tree: return "tree"
    case .commit: return "commit"
    }
  }
}
