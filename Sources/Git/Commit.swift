import CLibGit2

/// A commit object. Owns its `git_commit` pointer; keeps its repository alive.
public final class Commit {
  private let pointer: OpaquePointer
  /// libgit2 objects belong to their repository's object cache: the repository must outlive them.
  let repository: Repository

  init(pointer: OpaquePointer, repository: Repository) {
    self.pointer = pointer
    self.repository = repository
  }

  deinit { git_commit_free(pointer) }

  /// Calls `body` with the `git_commit` pointer; this commit stays alive until `body` returns.
  ///
  /// The only way to reach the pointer from outside this file: a raw pointer that escaped could be read by
  /// libgit2 after Swift freed its owner (release builds end lifetimes at the last use).
  func withPointer<Result>(_ body: (OpaquePointer) throws -> Result) rethrows -> Result {
    try withExtendedLifetime(self) { try body(pointer) }
  }

  /// Calls `body` with the pointers of `commits`, all kept alive until `body` returns (for C arrays of
  /// parents).
  static func withPointers<Result>(
    _ commits: [Commit], _ body: ([OpaquePointer?]) throws -> Result
  ) rethrows -> Result {
    try withExtendedLifetime(commits) { try body(commits.map { $0.pointer }) }
  }

  public var id: ObjectID {
    guard let oid = git_commit_id(pointer) else { return ObjectID(git_oid()) }
    return ObjectID(oid.pointee)
  }

  public var treeID: ObjectID {
    guard let oid = git_commit_tree_id(pointer) else { return ObjectID(git_oid()) }
    return ObjectID(oid.pointee)
  }

  /// The full message, subject and body.
  public var message: String { string(git_commit_message(pointer)) ?? "" }

  /// Committer time, seconds since 1970.
  public var time: Int64 { Int64(git_commit_time(pointer)) }

  public var committer: Signature {
    guard let sig = git_commit_committer(pointer) else { return Signature(name: "", email: "") }
    return Signature(name: string(sig.pointee.name) ?? "", email: string(sig.pointee.email) ?? "")
  }

  public var parentIDs: [ObjectID] {
    (0..<git_commit_parentcount(pointer)).compactMap { index in
      git_commit_parent_id(pointer, index).map { ObjectID($0.pointee) }
    }
  }
}
