import CLibGit2

/// A tree object. Owns its `git_tree` pointer; keeps its repository alive.
public final class Tree {
  private let pointer: OpaquePointer
  /// libgit2 objects belong to their repository's object cache: the repository must outlive them.
  let repository: Repository

  init(pointer: OpaquePointer, repository: Repository) {
    self.pointer = pointer
    self.repository = repository
  }

  deinit { git_tree_free(pointer) }

  /// Calls `body` with the `git_tree` pointer; this tree stays alive until `body` returns.
  ///
  /// The only way to reach the pointer from outside this file (see ``Commit/withPointer(_:)``).
  func withPointer<Result>(_ body: (OpaquePointer) throws -> Result) rethrows -> Result {
    try withExtendedLifetime(self) { try body(pointer) }
  }

  public var id: ObjectID {
    guard let oid = git_tree_id(pointer) else { return ObjectID(git_oid()) }
    return ObjectID(oid.pointee)
  }

  /// The entry at a slash-separated path below this tree, or `nil` when there is none.
  public func entry(atPath path: String) throws -> TreeEntry? {
    var entry: OpaquePointer?
    let rc = git_tree_entry_bypath(&entry, pointer, path)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try GitError.check(rc, "git_tree_entry_bypath")
    defer { git_tree_entry_free(entry) }
    return TreeEntry(borrowing: entry)
  }

  /// The direct entry called `name`, or `nil`; cheaper than ``entry(atPath:)`` (a binary search, no copy).
  public func entry(named name: String) -> TreeEntry? {
    guard let entry = git_tree_entry_byname(pointer, name) else { return nil }
    return TreeEntry(borrowing: entry)
  }

  /// The direct entries of this tree, in git's order.
  public var entries: [TreeEntry] {
    let count = git_tree_entrycount(pointer)
    var result: [TreeEntry] = []
    result.reserveCapacity(count)
    for index in 0..<count {
      result.append(TreeEntry(borrowing: git_tree_entry_byindex(pointer, index)))
    }
    return result
  }

  /// The subtree at `path`, or `nil` when there is none (or it is not a tree).
  public func subtree(atPath path: String) throws -> Tree? {
    guard let entry = try entry(atPath: path), entry.kind == .tree else { return nil }
    return try repository.tree(entry.id)
  }

  /// The content of the blob at `path`, or `nil` when there is none.
  public func blob(atPath path: String) throws -> [UInt8]? {
    guard let entry = try entry(atPath: path), entry.kind == .blob else { return nil }
    return try repository.blob(entry.id)
  }
}

/// One entry of a tree, copied out of libgit2.
public struct TreeEntry: Sendable, Equatable {
  public enum Kind: Sendable, Equatable { case blob, tree, commit, other }
  public var name: String
  public var id: ObjectID
  public var kind: Kind

  init(borrowing entry: OpaquePointer?) {
    name = string(git_tree_entry_name(entry)) ?? ""
    id = git_tree_entry_id(entry).map { ObjectID($0.pointee) } ?? ObjectID(git_oid())
    switch git_tree_entry_type(entry) {
    case GIT_OBJECT_BLOB: kind = .blob
    case GIT_OBJECT_TREE: kind = .tree
    case GIT_OBJECT_COMMIT: kind = .commit
    default: kind = .other
    }
  }
}

/// One change applied by ``Repository/createTree(from:applying:)``.
public struct TreeUpdate: Sendable {
  public enum Action: Sendable {
    case upsertBlob(ObjectID)
    /// Puts a whole existing tree at the path (replacing what was there).
    case upsertTree(ObjectID)
    case remove
  }
  public var path: String
  public var action: Action

  public static func write(_ path: String, blob: ObjectID) -> TreeUpdate {
    TreeUpdate(path: path, action: .upsertBlob(blob))
  }
  public static func writeTree(_ path: String, tree: ObjectID) -> TreeUpdate {
    TreeUpdate(path: path, action: .upsertTree(tree))
  }
  public static func remove(_ path: String) -> TreeUpdate {
    TreeUpdate(path: path, action: .remove)
  }
}
