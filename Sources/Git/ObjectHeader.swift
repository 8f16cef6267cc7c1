import CLibGit2

/// The size and type of an object, read from the object database without loading its content.
public struct ObjectHeader: Sendable, Equatable {
  public enum Kind: Sendable, Equatable { case blob, tree, commit, tag, other }
  public var size: Int
  public var kind: Kind
}

extension Repository {
  /// The size and kind of object `id`, without inflating its content (`git_odb_read_header`).
  ///
  /// Lets a reader refuse a hostile 50 MB blob before it costs 50 MB of memory.
  ///
  /// - Throws: a ``GitError`` (`.notFound` when the object is missing).
  public func objectHeader(_ id: ObjectID) throws -> ObjectHeader {
    var odb: OpaquePointer?
    try GitError.check(git_repository_odb(&odb, pointer), "git_repository_odb")
    defer { git_odb_free(odb) }
    var size = 0
    var type = GIT_OBJECT_INVALID
    var raw = id.raw
    try GitError.check(git_odb_read_header(&size, &type, odb, &raw), "git_odb_read_header")
    let kind: ObjectHeader.Kind
    switch type {
    case GIT_OBJECT_BLOB: kind = .blob
    case GIT_OBJECT_TREE: kind = .tree
    case GIT_OBJECT_COMMIT: kind = .commit
    case GIT_OBJECT_TAG: kind = .tag
    default: kind = .other
    }
    return ObjectHeader(size: size, kind: kind)
  }
}
