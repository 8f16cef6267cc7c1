import CLibGit2

/// One entry of a tree with its file mode (``TreeEntry`` without the mode stays as it was).
public struct TreeItem: Sendable, Equatable {
  public var name: String
  public var id: ObjectID
  public var kind: TreeEntry.Kind
  /// The git file mode: `0o100644` (file), `0o100755` (executable), `0o120000` (symlink), `0o040000`
  /// (tree), `0o160000` (gitlink).
  public var mode: UInt32

  public static let regularFile: UInt32 = 0o100644
  public static let executableFile: UInt32 = 0o100755
  public static let directory: UInt32 = 0o040000

  /// A regular file (plain or executable): not a symlink, a gitlink or a tree.
  public var isRegularFile: Bool { kind == .blob && (mode == Self.regularFile || mode == Self.executableFile) }
  public var isDirectory: Bool { kind == .tree && mode == Self.directory }
}

extension Tree {
  /// The direct entries with their modes, in git's order.
  public var items: [TreeItem] {
    withPointer { pointer in
      let count = git_tree_entrycount(pointer)
      var result: [TreeItem] = []
      result.reserveCapacity(count)
      for index in 0..<count {
        let entry = git_tree_entry_byindex(pointer, index)
        result.append(TreeItem(borrowing: entry))
      }
      return result
    }
  }

  /// The direct entry called `name` with its mode, or `nil`.
  public func item(named name: String) -> TreeItem? {
    withPointer { pointer in
      guard let entry = git_tree_entry_byname(pointer, name) else { return nil }
      return TreeItem(borrowing: entry)
    }
  }
}

extension TreeItem {
  init(borrowing entry: OpaquePointer?) {
    let plain = TreeEntry(borrowing: entry)
    name = plain.name
    id = plain.id
    kind = plain.kind
    mode = entry.map { UInt32(git_tree_entry_filemode_raw($0).rawValue) } ?? 0
  }
}

extension Repository {
  /// A copy of `tree` without the entry at `components` (a path, one name per element), or `nil` when
  /// there is no such entry. Every tree along the path is rebuilt with a tree builder, so names that
  /// `git_tree_create_updated` refuses (`..`, names that are not valid UTF-8) can still be removed.
  /// A directory left empty by the removal is removed too.
  ///
  /// - Returns: the new tree's id.
  public func tree(_ tree: Tree, removing components: [String]) throws -> ObjectID? {
    guard let first = components.first else { return nil }
    return try tree.withPointer { treePointer -> ObjectID? in
      var builder: OpaquePointer?
      try GitError.check(git_treebuilder_new(&builder, pointer, treePointer), "git_treebuilder_new")
      defer { git_treebuilder_free(builder) }
      // Find the entry by its name as Swift decodes it, and use libgit2's own bytes for it.
      var found: OpaquePointer?
      for index in 0..<git_tree_entrycount(treePointer) {
        let entry = git_tree_entry_byindex(treePointer, index)
        if string(git_tree_entry_name(entry)) == first {
          found = entry
          break
        }
      }
      guard let found, let rawName = git_tree_entry_name(found) else { return nil }
      if components.count == 1 {
        try GitError.check(git_treebuilder_remove(builder, rawName), "git_treebuilder_remove")
      } else {
        guard git_tree_entry_type(found) == GIT_OBJECT_TREE, let childID = git_tree_entry_id(found) else {
          return nil
        }
        let child = try self.tree(ObjectID(childID.pointee))
        guard let newChild = try self.tree(child, removing: Array(components.dropFirst())) else { return nil }
        if try self.tree(newChild).entries.isEmpty {
          try GitError.check(git_treebuilder_remove(builder, rawName), "git_treebuilder_remove")
        } else {
          var raw = newChild.raw
          try GitError.check(
            git_treebuilder_insert(nil, builder, rawName, &raw, GIT_FILEMODE_TREE), "git_treebuilder_insert")
        }
      }
      var oid = git_oid()
      try GitError.check(git_treebuilder_write(&oid, builder), "git_treebuilder_write")
      return ObjectID(oid)
    }
  }
}
