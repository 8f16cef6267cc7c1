import CLibGit2

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open git repository.
///
/// Owns its `git_repository` pointer. Not `Sendable`: libgit2 objects must stay on one thread, so open one
/// `Repository` per worker thread.
public final class Repository {
  let pointer: OpaquePointer
  /// The trees the last ``editTree(_:applying:)`` read and wrote, by id: where the next edit starts.
  var recentTrees: [ObjectID: [UInt8]] = [:]
  /// Writes loose objects without libgit2's deflate (see ``LooseObjectWriter``); `nil` where libgit2 must.
  private lazy var looseObjects: LooseObjectWriter? = LooseObjectWriter.make(for: self)

  init(pointer: OpaquePointer) { self.pointer = pointer }

  deinit { git_repository_free(pointer) }

  /// Opens the repository the way the git command line finds it: `GIT_DIR`, `GIT_WORK_TREE` and friends
  /// when set, else by searching upwards from `path` (default: the current directory).
  ///
  /// - Throws: ``GitError`` with code `.notFound` outside a repository.
  public static func discover(from path: String? = nil) throws -> Repository {
    Library.ensureInitialised()
    var out: OpaquePointer?
    var start = path
    var flags = path == nil ? GIT_REPOSITORY_OPEN_FROM_ENV.rawValue : 0
    if path == nil, getenv("GIT_WORK_TREE") != nil {
      // libgit2 1.5 refuses GIT_WORK_TREE ("unimplemented") with OPEN_FROM_ENV. The queue needs only the
      // git directory: open GIT_DIR when given, else search upwards from the current directory.
      if let gitDir = getenv("GIT_DIR") {
        start = String(cString: gitDir)
        flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue
      } else {
        start = "."
        flags = 0
      }
    }
    try GitError.check(git_repository_open_ext(&out, start, flags, nil), "git_repository_open_ext")
    guard let out else { throw GitError.internal("git_repository_open_ext") }
    return Repository(pointer: out)
  }

  /// Opens the repository at exactly `path` (a working directory or a git directory), without searching
  /// parent directories.
  public static func open(at path: String) throws -> Repository {
    Library.ensureInitialised()
    var out: OpaquePointer?
    try GitError.check(
      git_repository_open_ext(&out, path, GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue, nil),
      "git_repository_open_ext")
    guard let out else { throw GitError.internal("git_repository_open_ext") }
    return Repository(pointer: out)
  }

  /// Creates a new repository (used by tests and tooling).
  public static func create(at path: String, bare: Bool = false) throws -> Repository {
    Library.ensureInitialised()
    var out: OpaquePointer?
    try GitError.check(git_repository_init(&out, path, bare ? 1 : 0), "git_repository_init")
    guard let out else { throw GitError.internal("git_repository_init") }
    return Repository(pointer: out)
  }

  /// The git directory of this repository (for a linked worktree, its private one), with a trailing `/`.
  public var gitDirectory: String { string(git_repository_path(pointer)) ?? "" }

  /// The directory shared by all worktrees of this repository (`objects/`, `refs/`), with a trailing `/`.
  public var commonDirectory: String { string(git_repository_commondir(pointer)) ?? gitDirectory }

  /// The working directory, with a trailing `/`; `nil` for a bare repository.
  public var workingDirectory: String? { string(git_repository_workdir(pointer)) }

  public var isBare: Bool { git_repository_is_bare(pointer) != 0 }

  /// The top-level directory of the main working tree (not of a linked worktree), without a trailing `/`;
  /// for a bare repository the git directory.
  public var mainWorkingDirectory: String {
    var common = commonDirectory
    while common.hasSuffix("/") { common.removeLast() }
    if isBare && git_repository_is_worktree(pointer) == 0 { return common }
    if common.hasSuffix("/.git") { return String(common.dropLast(5)) }
    return common
  }

  // MARK: References

  /// The object a reference points at, or `nil` when the reference does not exist.
  public func referenceTarget(_ name: String) throws -> ObjectID? {
    var oid = git_oid()
    let rc = git_reference_name_to_id(&oid, pointer, name)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try GitError.check(rc, "git_reference_name_to_id")
    return ObjectID(oid)
  }

  /// Points `name` at `target` if and only if it currently points at `expected` (`nil`: does not exist).
  ///
  /// This is the compare-and-swap every queue write rests on. Both cases are checked under the ref's lock:
  /// "does not exist" is passed to libgit2 as a zero old id, since a NULL old id matches anything under the
  /// lock (libgit2 1.5 checks existence only before taking it, so two first writers could both succeed).
  /// When the reference has a reflog, the update is appended to it with `message`.
  /// - Throws: ``GitError`` `.modified` or `.exists` when the reference moved, `.locked` when another
  ///   process holds its lock at this instant.
  public func updateReference(
    _ name: String, to target: ObjectID, expected: ObjectID?, message: String
  ) throws {
    var out: OpaquePointer?
    var new = target.raw
    // A zero id means "must not exist", checked under the lock.
    var old = expected?.raw ?? git_oid()
    try GitError.check(
      git_reference_create_matching(&out, pointer, name, &new, expected == nil ? 0 : 1, &old, message),
      "git_reference_create_matching")
    git_reference_free(out)
  }

  /// Makes sure reference `name` has a reflog, so that every later update of it is logged (git logs only
  /// branches, remote-tracking refs and notes by default). Cheap when the log exists.
  public func ensureReflog(for name: String) throws {
    try GitError.check(git_reference_ensure_log(pointer, name), "git_reference_ensure_log")
  }

  /// Deletes a reference; does nothing when it does not exist.
  public func deleteReference(_ name: String) throws {
    var ref: OpaquePointer?
    let rc = git_reference_lookup(&ref, pointer, name)
    if rc == GIT_ENOTFOUND.rawValue { return }
    try GitError.check(rc, "git_reference_lookup")
    defer { git_reference_free(ref) }
    try GitError.check(git_reference_delete(ref), "git_reference_delete")
  }

  /// Resolves a revision expression (`main`, `HEAD~2`, an id) to the commit it names, or `nil`.
  public func resolveCommit(_ revision: String) throws -> ObjectID? {
    var object: OpaquePointer?
    let rc = git_revparse_single(&object, pointer, revision)
    if rc == GIT_ENOTFOUND.rawValue || rc == GIT_EAMBIGUOUS.rawValue || rc == GIT_EINVALIDSPEC.rawValue {
      return nil
    }
    try GitError.check(rc, "git_revparse_single")
    defer { git_object_free(object) }
    var peeled: OpaquePointer?
    let prc = git_object_peel(&peeled, object, GIT_OBJECT_COMMIT)
    if prc == GIT_ENOTFOUND.rawValue || prc == GIT_EINVALIDSPEC.rawValue || prc == GIT_EAMBIGUOUS.rawValue {
      return nil
    }
    try GitError.check(prc, "git_object_peel")
    defer { git_object_free(peeled) }
    guard let id = git_object_id(peeled) else { return nil }
    return ObjectID(id.pointee)
  }

  /// Names of references matching a glob such as `refs/heads/task/*`.
  public func referenceNames(matching glob: String) throws -> [String] {
    var iterator: OpaquePointer?
    try GitError.check(git_reference_iterator_glob_new(&iterator, pointer, glob), "git_reference_iterator_glob_new")
    defer { git_reference_iterator_free(iterator) }
    var names: [String] = []
    var name: UnsafePointer<CChar>?
    while true {
      let rc = git_reference_next_name(&name, iterator)
      if rc == GIT_ITEROVER.rawValue { break }
      try GitError.check(rc, "git_reference_next_name")
      if let value = string(name) { names.append(value) }
    }
    return names
  }

  // MARK: Objects

  /// Writes a blob into the object database.
  public func writeBlob(_ bytes: [UInt8]) throws -> ObjectID {
    try writeObject(bytes, kind: .blob)
  }

  /// The content of a blob.
  public func blob(_ id: ObjectID) throws -> [UInt8] {
    var blob: OpaquePointer?
    var raw = id.raw
    try GitError.check(git_blob_lookup(&blob, pointer, &raw), "git_blob_lookup")
    defer { git_blob_free(blob) }
    let size = Int(git_blob_rawsize(blob))
    guard size > 0, let content = git_blob_rawcontent(blob) else { return [] }
    return Array(UnsafeRawBufferPointer(start: content, count: size))
  }

  public func tree(_ id: ObjectID) throws -> Tree {
    var tree: OpaquePointer?
    var raw = id.raw
    try GitError.check(git_tree_lookup(&tree, pointer, &raw), "git_tree_lookup")
    guard let tree else { throw GitError.internal("git_tree_lookup") }
    return Tree(pointer: tree, repository: self)
  }

  public func commit(_ id: ObjectID) throws -> Commit {
    var commit: OpaquePointer?
    var raw = id.raw
    try GitError.check(git_commit_lookup(&commit, pointer, &raw), "git_commit_lookup")
    guard let commit else { throw GitError.internal("git_commit_lookup") }
    return Commit(pointer: commit, repository: self)
  }

  /// Writes (if needed) and returns the empty tree.
  public func emptyTree() throws -> Tree {
    var builder: OpaquePointer?
    try GitError.check(git_treebuilder_new(&builder, pointer, nil), "git_treebuilder_new")
    defer { git_treebuilder_free(builder) }
    var oid = git_oid()
    try GitError.check(git_treebuilder_write(&oid, builder), "git_treebuilder_write")
    return try tree(ObjectID(oid))
  }

  /// Creates a tree from `base` with `updates` applied; only the trees along the updated paths are
  /// rewritten, so the cost is proportional to the depth, not to the size of the tree.
  public func createTree(from base: Tree, applying updates: [TreeUpdate]) throws -> ObjectID {
    try editTree(base.id, applying: updates).root
  }

  /// ``createTree(from:applying:)`` through libgit2's `git_tree_create_updated`: the reference that
  /// ``editTree(_:applying:)`` is tested against.
  public func createTreeWithLibgit2(from base: Tree, applying updates: [TreeUpdate]) throws -> ObjectID {
    var oid = git_oid()
    // The C structs borrow the path strings: keep them alive for the call.
    let paths = updates.map { strdup($0.path) }
    defer { for path in paths { free(path) } }
    var raw: [git_tree_update] = []
    raw.reserveCapacity(updates.count)
    for (index, update) in updates.enumerated() {
      var entry = git_tree_update()
      entry.path = UnsafePointer(paths[index])
      switch update.action {
      case .upsertBlob(let id):
        entry.action = GIT_TREE_UPDATE_UPSERT
        entry.id = id.raw
        entry.filemode = GIT_FILEMODE_BLOB
      case .upsertTree(let id):
        entry.action = GIT_TREE_UPDATE_UPSERT
        entry.id = id.raw
        entry.filemode = GIT_FILEMODE_TREE
      case .remove:
        entry.action = GIT_TREE_UPDATE_REMOVE
      }
      raw.append(entry)
    }
    try base.withPointer { basePointer in
      _ = try GitError.check(
        git_tree_create_updated(&oid, pointer, basePointer, raw.count, raw), "git_tree_create_updated")
    }
    return ObjectID(oid)
  }

  /// Creates a commit object (without moving any reference).
  public func createCommit(
    tree: ObjectID, parents: [ObjectID], message: String, signature: Signature
  ) throws -> ObjectID {
    try writeObject(commitBytes(tree: tree, parents: parents, message: message, signature: signature), kind: .commit)
  }

  /// The exact bytes of a commit object with this content, stamped now, without writing it; write them
  /// with ``writeObject(_:kind:)`` (again, should the object be lost: the id stays the same).
  public func commitBytes(
    tree: ObjectID, parents: [ObjectID], message: String, signature: Signature
  ) throws -> [UInt8] {
    if let bytes = Self.commitBytes(
      tree: tree, parents: parents, message: message, signature: signature, time: time(nil))
    {
      return bytes
    }
    return try commitBytesWithLibgit2(tree: tree, parents: parents, message: message, signature: signature)
  }

  /// The bytes `git_commit_create_buffer` makes (encoding UTF-8, author and committer both `signature` at
  /// `time` in the local time zone), composed in Swift: no lookup of the tree and parents, no signature
  /// object. `nil` for a signature libgit2 would trim or refuse (empty, surrounding white space, `<`, `>`,
  /// a newline or NUL): ``commitBytesWithLibgit2(tree:parents:message:signature:)`` then decides.
  static func commitBytes(
    tree: ObjectID, parents: [ObjectID], message: String, signature: Signature, time: time_t
  ) -> [UInt8]? {
    func plain(_ text: String) -> Bool {
      guard let first = text.utf8.first, let last = text.utf8.last else { return false }
      let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D]
      if space.contains(first) || space.contains(last) { return false }
      return !text.utf8.contains { $0 == 0x3C || $0 == 0x3E || $0 == 0x0A || $0 == 0 }
    }
    guard plain(signature.name), plain(signature.email) else { return nil }
    var now = time
    var local = tm()
    guard localtime_r(&now, &local) != nil else { return nil }
    let offset = Int(local.tm_gmtoff) / 60
    let magnitude = abs(offset)
    let zone =
      (offset < 0 ? "-" : "+") + (magnitude / 60 < 10 ? "0" : "") + String(magnitude / 60)
      + (magnitude % 60 < 10 ? "0" : "") + String(magnitude % 60)
    let person = "\(signature.name) <\(signature.email)> \(UInt32(truncatingIfNeeded: time)) \(zone)\n"
    var out: [UInt8] = []
    out.reserveCapacity(160 + 48 * parents.count + message.utf8.count)
    out.append(contentsOf: "tree \(tree.hex)\n".utf8)
    for parent in parents { out.append(contentsOf: "parent \(parent.hex)\n".utf8) }
    out.append(contentsOf: "author \(person)committer \(person)encoding UTF-8\n\n".utf8)
    // libgit2 reads the message as a C string: it ends at the first NUL.
    out.append(contentsOf: message.utf8.prefix { $0 != 0 })
    return out
  }

  /// ``commitBytes(tree:parents:message:signature:)`` through libgit2's `git_commit_create_buffer`, now.
  public func commitBytesWithLibgit2(
    tree: ObjectID, parents: [ObjectID], message: String, signature: Signature
  ) throws -> [UInt8] {
    let treeObject = try self.tree(tree)
    let parentObjects = try parents.map { try commit($0) }
    var sig: UnsafeMutablePointer<git_signature>?
    try GitError.check(git_signature_now(&sig, signature.name, signature.email), "git_signature_now")
    defer { git_signature_free(sig) }
    var buffer = git_buf()
    defer { git_buf_dispose(&buffer) }
    // Every object whose pointer libgit2 reads stays alive for the whole call (see Sources/Git/README.md).
    try treeObject.withPointer { treePointer in
      try Commit.withPointers(parentObjects) { parentPointers in
        var pointers = parentPointers
        try pointers.withUnsafeMutableBufferPointer { list in
          _ = try GitError.check(
            git_commit_create_buffer(
              &buffer, pointer, sig, sig, "UTF-8", message, treePointer, list.count, list.baseAddress),
            "git_commit_create_buffer")
        }
      }
    }
    guard let bytes = buffer.ptr else { throw GitError.internal("git_commit_create_buffer") }
    return bytes.withMemoryRebound(to: UInt8.self, capacity: buffer.size) {
      Array(UnsafeBufferPointer(start: $0, count: buffer.size))
    }
  }

  /// The kinds of object ``writeObject(_:kind:)`` writes.
  public enum ObjectKind: Sendable {
    case blob, tree, commit

    var raw: git_object_t {
      switch self {
      case .blob: return GIT_OBJECT_BLOB
      case .tree: return GIT_OBJECT_TREE
      case .commit: return GIT_OBJECT_COMMIT
      }
    }
  }

  /// Writes an object's exact bytes into the object database and returns its id.
  public func writeObject(_ bytes: [UInt8], kind: ObjectKind) throws -> ObjectID {
    try bytes.withUnsafeBytes { try writeObject($0, kind: kind) }
  }

  /// Writes an object's exact bytes into the object database and returns its id.
  func writeObject(_ bytes: UnsafeRawBufferPointer, kind: ObjectKind) throws -> ObjectID {
    if let looseObjects { return try looseObjects.put(bytes, kind: kind) }
    var odb: OpaquePointer?
    try GitError.check(git_repository_odb(&odb, pointer), "git_repository_odb")
    defer { git_odb_free(odb) }
    var oid = git_oid()
    try GitError.check(git_odb_write(&oid, odb, bytes.baseAddress, bytes.count, kind.raw), "git_odb_write")
    return ObjectID(oid)
  }

  /// Whether the object database holds `id` (loose or packed), without reading it.
  public func objectExists(_ id: ObjectID) throws -> Bool {
    var odb: OpaquePointer?
    try GitError.check(git_repository_odb(&odb, pointer), "git_repository_odb")
    defer { git_odb_free(odb) }
    var raw = id.raw
    return git_odb_exists(odb, &raw) == 1
  }

  /// The identity git would use for a commit here (`user.name`/`user.email`, cleaned as git cleans them:
  /// see ``Signature/cleaned(name:email:)``), or `nil` when either is not configured or nothing is left.
  public func configuredSignature() -> Signature? {
    guard let config = try? configuration(), let name = try? config.string("user.name"),
      let email = try? config.string("user.email")
    else { return nil }
    return Signature.cleaned(name: name, email: email)
  }

  /// The best common ancestor of two commits, or `nil` when their histories are unrelated.
  public func mergeBase(_ a: ObjectID, _ b: ObjectID) throws -> ObjectID? {
    var out = git_oid()
    var ra = a.raw
    var rb = b.raw
    let rc = git_merge_base(&out, pointer, &ra, &rb)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try GitError.check(rc, "git_merge_base")
    return ObjectID(out)
  }

  /// Whether `ancestor` is reachable from `descendant` (or equal to it).
  public func isAncestor(_ ancestor: ObjectID, of descendant: ObjectID) throws -> Bool {
    if ancestor == descendant { return true }
    var a = descendant.raw
    var b = ancestor.raw
    let rc = git_graph_descendant_of(pointer, &a, &b)
    try GitError.check(rc, "git_graph_descendant_of")
    return rc == 1
  }

  /// Commits reachable from `tip`, newest first, stopping before `hiding` and its ancestors.
  public func history(from tip: ObjectID, hiding: ObjectID? = nil) throws -> [Commit] {
    var commits: [Commit] = []
    try walk(from: tip, hiding: hiding) {
      commits.append($0)
      return true
    }
    return commits
  }

  /// Visits the commits reachable from `tip`, newest first (stopping before `hiding` and its ancestors),
  /// until `visit` returns false.
  ///
  /// - Parameters:
  ///   - tip: the newest commit.
  ///   - hiding: a commit whose ancestors (and itself) are not visited.
  ///   - firstParent: follow first parents only, unsorted, as `git log --first-parent`: the history is
  ///     then read only as far as `visit` goes (any sorting makes libgit2 read every commit reachable
  ///     from `tip` before the first one is returned). For a linear history (the queue's) the order is
  ///     the same.
  ///   - visit: called with each commit; returns whether to go on.
  /// - Throws: a ``GitError`` when a commit cannot be read, or what `visit` throws.
  public func walk(
    from tip: ObjectID, hiding: ObjectID? = nil, firstParent: Bool = false, _ visit: (Commit) throws -> Bool
  ) throws {
    var walker: OpaquePointer?
    try GitError.check(git_revwalk_new(&walker, pointer), "git_revwalk_new")
    defer { git_revwalk_free(walker) }
    if firstParent {
      git_revwalk_sorting(walker, GIT_SORT_NONE.rawValue)
      git_revwalk_simplify_first_parent(walker)
    } else {
      git_revwalk_sorting(walker, GIT_SORT_TOPOLOGICAL.rawValue | GIT_SORT_TIME.rawValue)
    }
    var start = tip.raw
    try GitError.check(git_revwalk_push(walker, &start), "git_revwalk_push")
    if var hide = hiding?.raw {
      try GitError.check(git_revwalk_hide(walker, &hide), "git_revwalk_hide")
    }
    var oid = git_oid()
    while true {
      let rc = git_revwalk_next(&oid, walker)
      if rc == GIT_ITEROVER.rawValue { break }
      try GitError.check(rc, "git_revwalk_next")
      guard try visit(try commit(ObjectID(oid))) else { break }
    }
  }

  /// A read-only snapshot of the configuration in force here (repository, user, system).
  public func configuration() throws -> Configuration {
    var config: OpaquePointer?
    try GitError.check(git_repository_config_snapshot(&config, pointer), "git_repository_config_snapshot")
    guard let config else { throw GitError.internal("git_repository_config_snapshot") }
    return Configuration(pointer: config)
  }
}

/// A commit author or committer identity.
public struct Signature: Sendable, Equatable {
  public var name: String
  public var email: String
  public init(name: String, email: String) {
    self.name = name
    self.email = email
  }

  /// The identity git writes for a configured `name` and `email` (its ident.c): "crud" (control
  /// characters, space, `,:;<>"\'`) trimmed from both ends, then `<`, `>` and newlines removed
  /// everywhere, since they delimit the identity in a commit. `nil` when either is left empty (git
  /// refuses an empty name).
  public static func cleaned(name: String, email: String) -> Signature? {
    func clean(_ text: String) -> String {
      let crud: Set<UInt8> = [0x2C, 0x3A, 0x3B, 0x3C, 0x3E, 0x22, 0x5C, 0x27]
      let bytes = Array(text.utf8)
      var start = 0
      var end = bytes.count
      while start < end, bytes[start] <= 0x20 || crud.contains(bytes[start]) { start += 1 }
      while end > start, bytes[end - 1] <= 0x20 || crud.contains(bytes[end - 1]) { end -= 1 }
      let kept = bytes[start..<end].filter { $0 != 0x0A && $0 != 0x3C && $0 != 0x3E }
      return String(decoding: kept, as: UTF8.self)
    }
    let cleanName = clean(name)
    let cleanEmail = clean(email)
    guard !cleanName.isEmpty, !cleanEmail.isEmpty else { return nil }
    return Signature(name: cleanName, email: cleanEmail)
  }
}

extension GitError {
  /// An "impossible" state: libgit2 reported success but returned nothing.
  static func `internal`(_ function: String) -> GitError {
    GitError(
      code: .generic, message: "internal error: \(function) returned no object (please report this bug)",
      function: function)
  }
}

extension Repository {
  /// Whether `name` is acceptable as a branch name (`refs/heads/<name>` is a valid reference name).
  public static func isValidBranchName(_ name: String) -> Bool {
    Library.ensureInitialised()
    var valid: Int32 = 0
    guard git_reference_name_is_valid(&valid, "refs/heads/" + name) == 0 else { return false }
    return valid == 1 && !name.hasPrefix("-")
  }
}
