import CLibGit2

/// A commit object. Owns its `git_commit` pointer.
public final class Commit {
  let pointer: OpaquePointer

  init(pointer: OpaquePointer) { self.pointer = pointer }

  deinit { git_commit_free(pointer) }

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
