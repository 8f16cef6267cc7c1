import CLibGit2

/// What ``Repository/editTree(_:applying:)`` made.
public struct TreeEdit: Sendable {
  /// The new root tree.
  public var root: ObjectID
  /// Every tree the edit wrote, the root first: the objects a concurrent prune could take before a ref
  /// reaches them.
  public var written: [ObjectID]
}

extension Repository {
  /// Applies `updates` to the tree `base` (`nil`: the empty tree) and writes the trees that change, from
  /// the changed entries up to the root; untouched subtrees are shared by id. The semantics are
  /// `git_tree_create_updated`'s, which this replaces on the write path: updates apply in order, a
  /// directory left empty disappears from its parent, and removing a path that does not exist fails.
  ///
  /// Trees are edited as their raw bytes: an entry is found by a scan and the rest is copied as it is,
  /// with no object per entry. The trees an edit read and wrote are kept, so the next edit of the same
  /// repository (a worker's next transition) starts from them without reading. Blob ids are taken as
  /// given; a tree id (``TreeUpdate/writeTree(_:tree:)``) must name a tree in the database. A tree on the
  /// way that is not in git's canonical form goes to libgit2 (see ``createTreeWithLibgit2(from:applying:)``).
  ///
  /// - Throws: ``GitError`` (function `editTree`) for a missing path to remove, an invalid path component,
  ///   a path through a file; libgit2's error for a tree it cannot read; or the underlying write error.
  public func editTree(_ base: ObjectID?, applying updates: [TreeUpdate]) throws -> TreeEdit {
    do {
      return try editRawTrees(base, applying: updates)
    } catch is TreeEditor.NotCanonical {
      // A tree on the way is not as git writes it (entries out of order or twice, a zero-padded or unknown
      // mode, bytes that do not parse: it came from elsewhere). libgit2 reads it entry by entry and writes
      // a canonical tree, or says why it cannot.
      let root = try createTreeWithLibgit2(from: try base.map { try tree($0) } ?? emptyTree(), applying: updates)
      recentTrees = [:]
      return TreeEdit(root: root, written: [root] + (try subtreeIDs(below: root, along: updates)))
    }
  }

  private func editRawTrees(_ base: ObjectID?, applying updates: [TreeUpdate]) throws -> TreeEdit {
    var editor = TreeEditor(repository: self)
    defer { editor.close() }
    var edits: [TreeEditor.Edit] = []
    edits.reserveCapacity(updates.count)
    for update in updates {
      let components = update.path.split(separator: "/", omittingEmptySubsequences: false).map {
        Array($0.utf8)
      }
      for component in components where !TreeEditor.isValidName(component) {
        throw GitError(
          code: .invalid, message: "invalid path '\(update.path)' for a tree entry", function: "editTree")
      }
      if case .upsertTree(let id) = update.action { try editor.requireTree(id, path: update.path) }
      edits.append(TreeEditor.Edit(components: components[...], action: update.action, path: update.path))
    }
    let root = try editor.rewrite(base, edits, isRoot: true) ?? editor.writeTree([])
    recentTrees = editor.seen
    var written = editor.written.filter { $0 != root }
    written.insert(root, at: 0)
    return TreeEdit(root: root, written: written)
  }
}

extension Repository {
  /// The ids of the trees below `root` on the way to every updated path (`tasks`, `tasks/<bb>`, …).
  func subtreeIDs(below root: ObjectID, along updates: [TreeUpdate]) throws -> [ObjectID] {
    var found: [String: ObjectID] = [:]
    var loaded: [String: Tree] = ["": try tree(root)]
    for update in updates {
      let directories = update.path.split(separator: "/").dropLast().map(String.init)
      var path = ""
      for (index, name) in directories.enumerated() {
        guard let current = loaded[path] else { break }
        let next = path.isEmpty ? name : path + "/" + name
        if found[next] == nil {
          guard let entry = current.entry(named: name), entry.kind == .tree else { break }
          found[next] = entry.id
        }
        if index < directories.count - 1, loaded[next] == nil, let id = found[next] { loaded[next] = try tree(id) }
        path = next
      }
    }
    return Array(found.values)
  }
}

/// The raw-bytes tree editing behind ``Repository/editTree(_:applying:)``.
struct TreeEditor {
  /// A tree that is not in git's canonical form: the edit goes to libgit2.
  struct NotCanonical: Error {}

  struct Edit {
    var components: ArraySlice<[UInt8]>
    var action: TreeUpdate.Action
    var path: String
  }

  /// One entry of a raw tree: `<mode> <name>\0<20-byte id>`.
  struct Entry {
    var start: Int
    var nameStart: Int
    var nameEnd: Int
    var isTree: Bool
    var end: Int { nameEnd + 21 }
  }

  /// An entry the edit puts in a tree.
  struct NewEntry {
    var name: [UInt8]
    var isTree: Bool
    var id: ObjectID
  }

  /// Where the updates of one name leave it.
  enum State {
    /// Untouched.
    case original
    case removed
    /// Replaced by this entry.
    case entry(NewEntry)
    /// A directory edited further down (by the edits collected beside it), starting from tree `base`
    /// (`nil`: empty).
    case nested(base: ObjectID?)
  }

  /// The state of one name after `edit` (whose first component is that name); `deeper` collects the
  /// edits below the name since it last became a directory.
  static func apply(
    _ edit: Edit, to state: State, existing: Entry?, raw: [UInt8], deeper: inout [Edit]
  ) throws -> State {
    let name = edit.components.first ?? []
    if edit.components.count == 1 {
      deeper = []
      switch edit.action {
      case .remove:
        switch state {
        case .original where existing == nil, .removed:
          throw GitError(
            code: .notFound,
            message: "failed to remove entry '\(edit.path)': it is not in the tree", function: "editTree")
        default:
          return .removed
        }
      case .upsertBlob(let id):
        return .entry(NewEntry(name: name, isTree: false, id: id))
      case .upsertTree(let id):
        return .entry(NewEntry(name: name, isTree: true, id: id))
      }
    }
    var rest = edit
    rest.components = edit.components.dropFirst()
    let throughFile = GitError(
      code: .invalid,
      message: "cannot write '\(edit.path)': '\(String(decoding: name, as: UTF8.self))' is a file",
      function: "editTree")
    deeper.append(rest)
    switch state {
    case .original:
      guard let existing else { return .nested(base: nil) }
      guard existing.isTree else { throw throughFile }
      return .nested(base: id(of: existing, in: raw))
    case .removed:
      return .nested(base: nil)
    case .entry(let new):
      guard new.isTree else { throw throughFile }
      return .nested(base: new.id)
    case .nested:
      return state
    }
  }

  /// Finds an entry's index by name: a scan for a few lookups, a dictionary for many (an import).
  static func finder(_ entries: [Entry], raw: [UInt8], lookups: Int) -> ([UInt8]) -> Int? {
    guard lookups > 8, entries.count > 8 else {
      return { wanted in entries.firstIndex { name(of: $0, in: raw).elementsEqual(wanted) } }
    }
    var byName: [ArraySlice<UInt8>: Int] = [:]
    for (index, entry) in entries.enumerated() where byName[name(of: entry, in: raw)] == nil {
      byName[name(of: entry, in: raw)] = index
    }
    return { wanted in byName[wanted[...]] }
  }

  /// Whether `old` already is `new` (same kind, id and mode).
  static func holds(_ old: Entry, raw: [UInt8], _ new: NewEntry) -> Bool {
    old.isTree == new.isTree && id(of: old, in: raw) == new.id
      && raw[old.start..<(old.nameStart - 1)].elementsEqual((new.isTree ? "40000" : "100644").utf8)
  }

  let repository: Repository
  /// The trees read or written by this edit, by id (and those of the previous edit, to start from).
  var seen: [ObjectID: [UInt8]] = [:]
  var written: [ObjectID] = []
  private var odb: OpaquePointer?

  init(repository: Repository) {
    self.repository = repository
  }

  /// A name git accepts in a tree: not empty, not `.`, `..` or `.git` (any case), no NUL.
  static func isValidName(_ name: [UInt8]) -> Bool {
    if name.isEmpty || name == [0x2E] || name == [0x2E, 0x2E] || name.contains(0) { return false }
    if name.count == 4, name[0] == 0x2E, name[1] | 0x20 == 0x67, name[2] | 0x20 == 0x69, name[3] | 0x20 == 0x74 {
      return false
    }
    return true
  }

  /// Applies `edits` (paths relative to this tree) to tree `id` (`nil`: none yet). Returns the new tree's
  /// id, or `nil` when it is left empty (and is not the root).
  mutating func rewrite(_ id: ObjectID?, _ edits: [Edit], isRoot: Bool) throws -> ObjectID? {
    let raw = try id.map { try read($0) } ?? []
    let entries = try Self.parse(raw, id: id)
    // The updates of each name, in order of first mention (a dictionary's append is in place: an import's
    // tens of thousands of paths stay linear).
    var order: [[UInt8]] = []
    var groups: [[UInt8]: [Edit]] = [:]
    for edit in edits {
      guard let name = edit.components.first else { continue }
      if groups[name] == nil { order.append(name) }
      groups[name, default: []].append(edit)
    }
    let find = Self.finder(entries, raw: raw, lookups: order.count)
    var dropped = [Bool](repeating: false, count: entries.count)
    var added: [NewEntry] = []
    var replaced: [(old: Int, new: NewEntry)] = []
    for name in order {
      let index = find(name)
      let existing = index.map { entries[$0] }
      // Where its updates leave the name, applied in order as libgit2 applies them.
      var state = State.original
      var deeper: [Edit] = []
      for edit in groups[name] ?? [] {
        state = try Self.apply(edit, to: state, existing: existing, raw: raw, deeper: &deeper)
      }
      var new: NewEntry?
      switch state {
      case .original:
        continue
      case .removed:
        break
      case .entry(let entry):
        new = entry
      case .nested(let base):
        let updated = try rewrite(base, deeper, isRoot: false)
        if let existing, existing.isTree, let updated, Self.id(of: existing, in: raw) == updated { continue }
        new = updated.map { NewEntry(name: name, isTree: true, id: $0) }
      }
      if let index { dropped[index] = true }
      if let new {
        added.append(new)
        if let index { replaced.append((index, new)) }
      }
    }
    // Nothing changed here (every update rewrote an entry with what it held): the same tree.
    let droppedCount = dropped.reduce(0) { $0 + ($1 ? 1 : 0) }
    if let id, droppedCount == added.count,
      replaced.count == added.count && replaced.allSatisfy({ Self.holds(entries[$0.old], raw: raw, $0.new) })
    {
      return id
    }
    added.sort { Self.precedes($0.name[...], $0.isTree, $1.name[...], $1.isTree) }
    var out: [UInt8] = []
    out.reserveCapacity(raw.count + added.count * 64)
    var next = 0
    for (index, entry) in entries.enumerated() {
      if dropped[index] { continue }
      let name = Self.name(of: entry, in: raw)
      while next < added.count, Self.precedes(added[next].name[...], added[next].isTree, name, entry.isTree) {
        Self.append(added[next], to: &out)
        next += 1
      }
      out.append(contentsOf: raw[entry.start..<entry.end])
    }
    while next < added.count {
      Self.append(added[next], to: &out)
      next += 1
    }
    if out.isEmpty && !isRoot { return nil }
    return try writeTree(out)
  }

  /// Writes a tree's bytes and remembers them.
  mutating func writeTree(_ bytes: [UInt8]) throws -> ObjectID {
    let id = try bytes.withUnsafeBytes { try repository.writeObject($0, kind: .tree) }
    seen[id] = bytes
    written.append(id)
    return id
  }

  /// Checks that `id` names a tree in the database (for a whole tree put at `path`).
  mutating func requireTree(_ id: ObjectID, path: String) throws {
    if seen[id] != nil || repository.recentTrees[id] != nil { return }
    var size = 0
    var type = GIT_OBJECT_INVALID
    var raw = id.raw
    try GitError.check(git_odb_read_header(&size, &type, try database(), &raw), "git_odb_read_header")
    guard type == GIT_OBJECT_TREE else {
      throw GitError(
        code: .invalid, message: "cannot put '\(id.hex)' at '\(path)': it is not a tree", function: "editTree")
    }
  }

  /// The raw bytes of tree `id`: kept from this or the previous edit, else read from the database.
  private mutating func read(_ id: ObjectID) throws -> [UInt8] {
    if let bytes = seen[id] ?? repository.recentTrees[id] {
      seen[id] = bytes
      return bytes
    }
    var object: OpaquePointer?
    var raw = id.raw
    try GitError.check(git_odb_read(&object, try database(), &raw), "git_odb_read")
    defer { git_odb_object_free(object) }
    guard git_odb_object_type(object) == GIT_OBJECT_TREE else {
      throw GitError(code: .invalid, message: "object \(id.hex) is not a tree", function: "editTree")
    }
    let size = git_odb_object_size(object)
    let bytes = size == 0 ? [] : Array(UnsafeRawBufferPointer(start: git_odb_object_data(object), count: size))
    seen[id] = bytes
    return bytes
  }

  private mutating func database() throws -> OpaquePointer? {
    if odb == nil { try GitError.check(git_repository_odb(&odb, repository.pointer), "git_repository_odb") }
    return odb
  }

  /// Frees the odb handle; call once done (the editor is a value type and has no deinit).
  mutating func close() {
    git_odb_free(odb)
    odb = nil
  }

  /// The entries of a raw tree; ``NotCanonical`` unless it is exactly as git writes trees: entries in
  /// git's order, each name once, modes `40000`, `100644`, `100755`, `120000` or `160000`.
  static func parse(_ raw: [UInt8], id: ObjectID?) throws -> [Entry] {
    var entries: [Entry] = []
    var index = 0
    while index < raw.count {
      let start = index
      guard let space = raw[start...].prefix(7).firstIndex(of: 0x20) else { throw NotCanonical() }
      let mode = raw[start..<space]
      let isTree = mode.elementsEqual("40000".utf8)
      guard isTree || canonicalFileModes.contains(where: { mode.elementsEqual($0) }) else { throw NotCanonical() }
      let nameStart = space + 1
      guard nameStart < raw.count, let nul = raw[nameStart...].firstIndex(of: 0), nul > nameStart,
        nul + 21 <= raw.count
      else { throw NotCanonical() }
      let entry = Entry(start: start, nameStart: nameStart, nameEnd: nul, isTree: isTree)
      if let previous = entries.last,
        !precedes(name(of: previous, in: raw), previous.isTree, name(of: entry, in: raw), entry.isTree)
      {
        throw NotCanonical()
      }
      entries.append(entry)
      index = nul + 21
    }
    return entries
  }

  static let canonicalFileModes: [[UInt8]] = ["100644", "100755", "120000", "160000"].map { Array($0.utf8) }

  static func name(of entry: Entry, in raw: [UInt8]) -> ArraySlice<UInt8> { raw[entry.nameStart..<entry.nameEnd] }

  static func id(of entry: Entry, in raw: [UInt8]) -> ObjectID {
    var oid = git_oid()
    withUnsafeMutableBytes(of: &oid.id) { target in
      raw.withUnsafeBytes { source in
        target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(entry.nameEnd + 1)..<entry.end]))
      }
    }
    return ObjectID(oid)
  }

  /// git's order of tree entries: names compared as bytes, a tree's as if it ended with `/`.
  static func precedes(_ a: ArraySlice<UInt8>, _ aIsTree: Bool, _ b: ArraySlice<UInt8>, _ bIsTree: Bool) -> Bool {
    var i = a.startIndex
    var j = b.startIndex
    while i < a.endIndex, j < b.endIndex {
      if a[i] != b[j] { return a[i] < b[j] }
      i += 1
      j += 1
    }
    let ca: UInt8 = i < a.endIndex ? a[i] : (aIsTree ? 0x2F : 0)
    let cb: UInt8 = j < b.endIndex ? b[j] : (bIsTree ? 0x2F : 0)
    return ca < cb
  }

  static func append(_ entry: NewEntry, to out: inout [UInt8]) {
    out.append(contentsOf: (entry.isTree ? "40000 " : "100644 ").utf8)
    out.append(contentsOf: entry.name)
    out.append(0)
    withUnsafeBytes(of: entry.id.raw.id) { out.append(contentsOf: $0) }
  }
}
