import CLibGit2

/// A git object id (SHA-1), a value type.
public struct ObjectID: Hashable, Sendable, CustomStringConvertible {
  var raw: git_oid

  init(_ raw: git_oid) { self.raw = raw }

  /// Parses a full 40-digit hexadecimal id; `nil` when `hex` is not one.
  public init?(hex: String) {
    // A parse error is recorded in libgit2's thread state, which exists only once libgit2 is initialised:
    // without this, the first id parsed in a process could crash it.
    Library.ensureInitialised()
    var oid = git_oid()
    guard hex.utf8.count == 40, git_oid_fromstr(&oid, hex) == 0 else { return nil }
    self.raw = oid
  }

  public var hex: String {
    var buffer = [CChar](repeating: 0, count: 41)
    var copy = raw
    git_oid_tostr(&buffer, 41, &copy)
    return String(decoding: buffer.prefix(40).map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  public var description: String { hex }

  public static func == (lhs: ObjectID, rhs: ObjectID) -> Bool {
    var l = lhs.raw
    var r = rhs.raw
    return git_oid_equal(&l, &r) != 0
  }

  public func hash(into hasher: inout Hasher) {
    withUnsafeBytes(of: raw.id) { hasher.combine(bytes: $0) }
  }
}
