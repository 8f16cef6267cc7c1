import Foundation
import Git
import TaskqTestSupport
import Testing

/// Blobs, trees and commits written through the wrapper, checked with the git CLI.
@Suite struct ObjectTests {
  @Test(arguments: [
    [UInt8](),
    Array("hello\n".utf8),
    Array(0...255).map(UInt8.init),
    [UInt8](repeating: 0x41, count: 200_000),
  ])
  func blobRoundTripsAndMatchesGitHashObject(bytes: [UInt8]) throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let id = try repository.writeBlob(bytes)
    #expect(try repository.blob(id) == bytes)
    let cli = try gitHashObject(bytes, in: scratch.path)
    #expect(id.hex == cli)
    #expect(try scratch.git("cat-file", "-t", id.hex) == "blob")
  }

  @Test func objectIDParsesOnlyFullHex() throws {
    let hex = "0123456789abcdef0123456789abcdef01234567"
    #expect(ObjectID(hex: hex)?.hex == hex)
    #expect(ObjectID(hex: hex.uppercased())?.hex == hex)
    #expect(ObjectID(hex: String(hex.dropLast())) == nil)
    #expect(ObjectID(hex: hex + "0") == nil)
    #expect(ObjectID(hex: "zz23456789abcdef0123456789abcdef01234567") == nil)
    #expect(ObjectID(hex: "") == nil)
  }

  @Test func lookingUpAMissingBlobThrowsNotFound() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let missing = try #require(ObjectID(hex: "0123456789abcdef0123456789abcdef01234567"))
    let error = try #require(throws: GitError.self) { try repository.blob(missing) }
    #expect(error.code == .notFound)
    #expect(!error.message.isEmpty)
    #expect(error.function == "git_blob_lookup")
  }

  @Test func emptyTreeIsGitsEmptyTree() throws {
    let scratch = try ScratchRepository()
    let tree = try scratch.open().emptyTree()
    #expect(tree.id.hex == "4b825dc642cb6eb9a060e54bf8d69288fbee4904")
    #expect(tree.entries.isEmpty)
  }

  @Test func createTreeWritesNestedPathsThatGitReadsBack() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let a = try repository.writeBlob(Array("a\n".utf8))
    let b = try repository.writeBlob(Array("b\n".utf8))
    let id = try repository.createTree(
      from: try repository.emptyTree(),
      applying: [.write("top.txt", blob: a), .write("dir/sub/deep.txt", blob: b), .write("dir/side.txt", blob: a)])
    let listing = try scratch.git("ls-tree", "-r", "--name-only", id.hex)
    #expect(listing.components(separatedBy: "\n") == ["dir/side.txt", "dir/sub/deep.txt", "top.txt"])
    #expect(try scratch.git("show", "\(id.hex):dir/sub/deep.txt") == "b")

    let tree = try repository.tree(id)
    #expect(tree.entries.map(\.name) == ["dir", "top.txt"])
    #expect(tree.entries.map(\.kind) == [.tree, .blob])
    #expect(tree.entry(named: "top.txt")?.id == a)
    #expect(tree.entry(named: "missing") == nil)
    #expect(try tree.entry(atPath: "dir/sub/deep.txt")?.id == b)
    #expect(try tree.entry(atPath: "dir/nope/deep.txt") == nil)
    #expect(try tree.blob(atPath: "dir/side.txt") == Array("a\n".utf8))
    #expect(try tree.blob(atPath: "dir") == nil)
    #expect(try tree.subtree(atPath: "dir/sub")?.entries.map(\.name) == ["deep.txt"])
    #expect(try tree.subtree(atPath: "top.txt") == nil)
    #expect(try scratch.fsck() == (0, ""))
  }

  @Test func upsertReplacesAnEntryAndLeavesTheRestShared() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let one = try repository.writeBlob(Array("1".utf8))
    let two = try repository.writeBlob(Array("2".utf8))
    let first = try repository.createTree(
      from: try repository.emptyTree(), applying: [.write("x/a", blob: one), .write("y/b", blob: one)])
    let second = try repository.createTree(from: try repository.tree(first), applying: [.write("x/a", blob: two)])
    #expect(try scratch.git("show", "\(second.hex):x/a") == "2")
    // The untouched subtree is the same object: only the path that changed was rewritten.
    #expect(try scratch.git("rev-parse", "\(first.hex):y") == scratch.git("rev-parse", "\(second.hex):y"))
    #expect(try scratch.git("rev-parse", "\(first.hex):x") != scratch.git("rev-parse", "\(second.hex):x"))
  }

  @Test func removeDeletesAFileAndAWholeDirectory() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("z".utf8))
    let base = try repository.createTree(
      from: try repository.emptyTree(),
      applying: [.write("d/one", blob: blob), .write("d/two", blob: blob), .write("e/sub/f", blob: blob)])
    let fileRemoved = try repository.createTree(from: try repository.tree(base), applying: [.remove("d/one")])
    #expect(try scratch.git("ls-tree", "-r", "--name-only", fileRemoved.hex) == "d/two\ne/sub/f")
    let directoryRemoved = try repository.createTree(from: try repository.tree(base), applying: [.remove("e")])
    #expect(try scratch.git("ls-tree", "-r", "--name-only", directoryRemoved.hex) == "d/one\nd/two")
  }

  /// libgit2's `git_tree_create_updated` drops a directory whose last entry is removed, as git itself never
  /// writes an empty subtree; the queue relies on this when it removes the last task of a bucket.
  @Test func removingTheLastEntryOfADirectoryDropsTheDirectory() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("z".utf8))
    let base = try repository.createTree(
      from: try repository.emptyTree(), applying: [.write("keep", blob: blob), .write("a/b/only", blob: blob)])
    let updated = try repository.createTree(from: try repository.tree(base), applying: [.remove("a/b/only")])
    #expect(try scratch.git("ls-tree", "-r", "-t", "--name-only", updated.hex) == "keep")
    let tree = try repository.tree(updated)
    #expect(tree.entries.map(\.name) == ["keep"])
    #expect(try tree.entry(atPath: "a") == nil)

    let everything = try repository.createTree(
      from: try repository.tree(base),
      applying: [
        .remove("keep"), .remove("a/b/only"),
      ])
    #expect(everything == (try repository.emptyTree().id))
  }

  @Test func removingAMissingPathThrowsNamingIt() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("z".utf8))
    let base = try repository.createTree(from: try repository.emptyTree(), applying: [.write("a", blob: blob)])
    let error = try #require(throws: GitError.self) {
      try repository.createTree(from: try repository.tree(base), applying: [.remove("nope/x")])
    }
    #expect(error.function == "editTree")
    #expect(!error.message.isEmpty)
    #expect(error.description == error.message)
  }

  @Test func commitRecordsTreeParentsMessageAndSignature() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("content\n".utf8))
    let tree = try repository.createTree(from: try repository.emptyTree(), applying: [.write("f", blob: blob)])
    let signature = Signature(name: "Ada Lovelace", email: "ada@example.com")
    let root = try repository.createCommit(tree: tree, parents: [], message: "first\n", signature: signature)
    let child = try repository.createCommit(
      tree: tree, parents: [root], message: "second\n\nTaskq-Op: add\n", signature: signature)

    #expect(try scratch.git("cat-file", "-t", child.hex) == "commit")
    #expect(try scratch.git("rev-parse", "\(child.hex)^") == root.hex)
    #expect(try scratch.git("rev-parse", "\(child.hex)^{tree}") == tree.hex)
    #expect(
      try scratch.git("log", "-1", "--format=%an <%ae>|%cn <%ce>", child.hex)
        == "Ada Lovelace <ada@example.com>|Ada Lovelace <ada@example.com>")
    #expect(try scratch.git("log", "-1", "--format=%B", child.hex) == "second\n\nTaskq-Op: add")
    #expect(try scratch.git("rev-list", "--count", root.hex) == "1")

    let commit = try repository.commit(child)
    #expect(commit.id == child)
    #expect(commit.treeID == tree)
    #expect(commit.parentIDs == [root])
    #expect(commit.message == "second\n\nTaskq-Op: add\n")
    #expect(commit.committer == signature)
    #expect(abs(Int(commit.time) - Int(Date().timeIntervalSince1970)) < 120)
    #expect(try repository.commit(root).parentIDs.isEmpty)
  }

  /// Parents larger than libgit2's object cache threshold (a long message), several at once: every parent
  /// pointer handed to libgit2 must come from a live owner (in a release build a dead one is freed at once).
  @Test func manyLargeParentsAreRecordedExactly() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let tree = try repository.emptyTree().id
    let signature = Signature(name: "T", email: "t@example.com")
    let long = String(repeating: "a line of a long import message\n", count: 2_000)
    let parents = try (0..<5).map {
      try repository.createCommit(tree: tree, parents: [], message: "parent \($0)\n\n" + long, signature: signature)
    }
    let child = try repository.createCommit(tree: tree, parents: parents, message: "child\n", signature: signature)
    #expect(try repository.commit(child).parentIDs == parents)
    #expect(try scratch.git("rev-parse", "\(child.hex)^@") == parents.map(\.hex).joined(separator: "\n"))
  }

  /// A commit's bytes can be written again with the same id (how a write repairs objects a concurrent
  /// `git gc --prune=now` removed), and `objectExists` sees whether the database holds it.
  @Test func commitBytesWriteTheSameObjectAgain() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let tree = try repository.emptyTree().id
    let head = try #require(try repository.referenceTarget("refs/heads/main"))
    let bytes = try repository.commitBytes(
      tree: tree, parents: [head], message: "again\n", signature: Signature(name: "T", email: "t@example.com"))
    let id = try repository.writeObject(bytes, kind: .commit)
    #expect(try scratch.git("cat-file", "-t", id.hex) == "commit")
    #expect(try repository.commit(id).parentIDs == [head])
    #expect(try repository.objectExists(id))
    let path = scratch.path + "/.git/objects/" + id.hex.prefix(2) + "/" + id.hex.dropFirst(2)
    try FileManager.default.removeItem(atPath: path)
    #expect(try !repository.objectExists(id))
    #expect(try repository.writeObject(bytes, kind: .commit) == id)
    #expect(try repository.objectExists(id))
    #expect(try scratch.git("rev-parse", "\(id.hex)^") == head.hex)
  }

  @Test func historyWalksNewestFirstAndStopsAtHidden() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let tree = try repository.emptyTree().id
    let signature = Signature(name: "T", email: "t@example.com")
    var parents: [ObjectID] = []
    var made: [ObjectID] = []
    for n in 0..<4 {
      let id = try repository.createCommit(tree: tree, parents: parents, message: "c\(n)", signature: signature)
      made.append(id)
      parents = [id]
    }
    #expect(try repository.history(from: made[3]).map(\.id) == made.reversed())
    #expect(try repository.history(from: made[3], hiding: made[1]).map(\.id) == [made[3], made[2]])
    #expect(try repository.isAncestor(made[0], of: made[3]))
    #expect(try !repository.isAncestor(made[3], of: made[0]))
    #expect(try repository.mergeBase(made[2], made[3]) == made[2])
    let unrelated = try repository.createCommit(tree: tree, parents: [], message: "other", signature: signature)
    #expect(try repository.mergeBase(made[3], unrelated) == nil)
  }

  @Test func resolveCommitReturnsNilForWhatDoesNotExist() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let head = try scratch.git("rev-parse", "HEAD")
    #expect(try repository.resolveCommit("main")?.hex == head)
    #expect(try repository.resolveCommit("HEAD")?.hex == head)
    #expect(try repository.resolveCommit(head)?.hex == head)
    #expect(try repository.resolveCommit("refs/heads/main")?.hex == head)
    #expect(try repository.resolveCommit("no-such-branch") == nil)
    #expect(try repository.resolveCommit("HEAD~5") == nil)
    #expect(try repository.resolveCommit("a..b") == nil)
    #expect(try repository.resolveCommit("main:README.md") == nil)  // a blob, not a commit
  }
}

/// The object id git itself computes for `bytes`.
func gitHashObject(_ bytes: [UInt8], in directory: String) throws -> String {
  let file = directory + "/.hash-probe-\(UUID().uuidString)"
  try Data(bytes).write(to: URL(fileURLWithPath: file))
  defer { try? FileManager.default.removeItem(atPath: file) }
  return try Git.run(["hash-object", file], in: directory)
}

/// ``Repository/editTree(_:applying:)`` edits trees as raw bytes, in Swift; libgit2's
/// `git_tree_create_updated` is the reference. Random edits on random trees must give the same ids.
@Suite struct TreeEditorTests {
  @Test func randomEditsGiveLibgit2sTrees() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    var generator = SeededGenerator(seed: 0x7A5C_0DE5)
    let blobs = try (0..<6).map { try repository.writeBlob(Array("blob \($0)\n".utf8)) }
    // Names that sort differently as files and as directories ("a" < "a-b" < "a/"...), and nesting.
    let names = ["a", "a-b", "a.c", "a0", "b", "bb", "tasks", "taskq.json", "Z", "é"]
    var paths: Set<String> = []
    try Self.checkAgainstLibgit2(repository, rounds: 300) { _ in
      var updates: [TreeUpdate] = []
      // libgit2 refuses a batch that names one path twice (or a path and one inside it).
      func overlaps(_ path: String) -> Bool {
        updates.contains { $0.path == path || $0.path.hasPrefix(path + "/") || path.hasPrefix($0.path + "/") }
      }
      for _ in 0..<Int.random(in: 1...4, using: &generator) {
        if !paths.isEmpty, Int.random(in: 0..<4, using: &generator) == 0 {
          let path = paths.randomElement(using: &generator)!
          if overlaps(path) { continue }
          updates.append(.remove(path))
          paths = paths.filter { $0 != path && !$0.hasPrefix(path + "/") }
        } else {
          let depth = Int.random(in: 1...3, using: &generator)
          let path = (0..<depth).map { _ in names.randomElement(using: &generator)! }.joined(separator: "/")
          // A path through a file, or a file where a directory is: both tools refuse; keep to valid ones.
          let prefixes = (1..<depth).map { path.split(separator: "/").prefix($0).joined(separator: "/") }
          if prefixes.contains(where: paths.contains) || paths.contains(where: { $0.hasPrefix(path + "/") })
            || overlaps(path)
          {
            continue
          }
          updates.append(.write(path, blob: blobs.randomElement(using: &generator)!))
          paths.insert(path)
        }
      }
      return updates
    }
    #expect(try scratch.fsck() == (0, ""))
  }

  /// Applies each batch of updates `next` makes to two trees, one edited by ``Repository/createTree``
  /// and one by libgit2, and checks that they stay the same tree.
  static func checkAgainstLibgit2(
    _ repository: Repository, rounds: Int, _ next: (Int) throws -> [TreeUpdate]
  ) throws {
    var ours = try repository.emptyTree()
    var theirs = try repository.emptyTree()
    for round in 0..<rounds {
      let updates = try next(round)
      let mine = try repository.createTree(from: ours, applying: updates)
      let reference = try repository.createTreeWithLibgit2(from: theirs, applying: updates)
      #expect(mine == reference, "round \(round): \(updates.map(\.path))")
      guard mine == reference else { return }
      ours = try repository.tree(mine)
      theirs = try repository.tree(reference)
    }
  }

  /// Batches of many paths (an import's): names are then found through an index, not a scan.
  @Test func largeBatchesGiveLibgit2sTrees() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    var generator = SeededGenerator(seed: 42)
    let blobs = try (0..<3).map { try repository.writeBlob(Array("v\($0)".utf8)) }
    var present: Set<String> = []
    try Self.checkAgainstLibgit2(repository, rounds: 12) { _ in
      var updates: [TreeUpdate] = []
      var named: Set<String> = []
      for _ in 0..<120 {
        let path = "d\(Int.random(in: 0..<20, using: &generator))/f\(Int.random(in: 0..<30, using: &generator))"
        guard named.insert(path).inserted else { continue }
        if present.contains(path), Bool.random(using: &generator) {
          updates.append(.remove(path))
          present.remove(path)
        } else {
          updates.append(.write(path, blob: blobs.randomElement(using: &generator)!))
          present.insert(path)
        }
      }
      return updates
    }
  }

  /// A tree not as git writes it (from another machine: entries out of order, a zero-padded mode) is
  /// edited by libgit2, which writes it canonical: the same result as libgit2 alone, and git accepts it.
  @Test(arguments: ["unsorted", "zero-padded", "unknown-mode"])
  func aNonCanonicalTreeIsEditedByLibgit2(kind: String) throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("x".utf8))
    let inner = try repository.editTree(nil, applying: [.write("f", blob: blob)]).root
    func entry(_ mode: String, _ name: String, _ id: ObjectID) -> [UInt8] {
      var bytes = Array("\(mode) \(name)\u{0}".utf8)
      bytes += stride(from: 0, to: 40, by: 2).map { offset in
        let hex = id.hex
        let start = hex.index(hex.startIndex, offsetBy: offset)
        return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
      }
      return bytes
    }
    let raw: [UInt8]
    switch kind {
    case "unsorted": raw = entry("100644", "b", blob) + entry("100644", "a", blob) + entry("40000", "d", inner)
    case "zero-padded": raw = entry("100644", "a", blob) + entry("040000", "d", inner)
    default: raw = entry("100664", "a", blob) + entry("40000", "d", inner)
    }
    let file = scratch.path + "/odd-tree"
    try Data(raw).write(to: URL(fileURLWithPath: file))
    let odd = try #require(ObjectID(hex: try scratch.git("hash-object", "-t", "tree", "--literally", "-w", file)))
    let updates: [TreeUpdate] = [.write("d/g", blob: blob), .write("c", blob: blob)]
    let edit = try repository.editTree(odd, applying: updates)
    let reference = try repository.createTreeWithLibgit2(from: try repository.tree(odd), applying: updates)
    #expect(edit.root == reference)
    #expect(edit.written.first == edit.root)
    #expect(
      Set(edit.written)
        == Set([edit.root, try #require(ObjectID(hex: try scratch.git("rev-parse", "\(edit.root.hex):d")))]))
    #expect(try scratch.git("ls-tree", "--name-only", edit.root.hex) == "a\nc\nd" || kind == "unsorted")
  }

  /// Every tree an edit wrote is listed, the root first, and each is in the database (read by git).
  @Test func anEditListsTheTreesItWrote() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("x".utf8))
    let first = try repository.editTree(nil, applying: [.write("tasks/ab/T-1/record.json", blob: blob)])
    #expect(first.written.first == first.root)
    #expect(first.written.count == 4)
    for id in first.written { #expect(try scratch.git("cat-file", "-t", id.hex) == "tree") }
    let second = try repository.editTree(first.root, applying: [.write("tasks/ab/T-1/other", blob: blob)])
    #expect(second.written.count == 4)
    #expect(Set(second.written).isDisjoint(with: first.written))
    // Writing what is already there changes nothing and writes nothing.
    let same = try repository.editTree(second.root, applying: [.write("tasks/ab/T-1/other", blob: blob)])
    #expect(same.root == second.root)
    #expect(same.written == [second.root])
  }

  @Test func invalidPathsAndPathsThroughFilesAreRefused() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("x".utf8))
    let base = try repository.editTree(nil, applying: [.write("file", blob: blob)]).root
    for path in ["", "a//b", "a/./b", "../a", ".git/x", "a/.GIT", "file/inside"] {
      let error = try #require(throws: GitError.self, "\(path)") {
        try repository.editTree(base, applying: [.write(path, blob: blob)])
      }
      #expect(error.function == "editTree")
    }
    #expect(try repository.editTree(base, applying: [.write("a/.gitx", blob: blob)]).root != base)
  }

  /// Objects are written as stored (uncompressed) zlib streams: git reads them, and a blob larger than one
  /// stored block (65,535 bytes) spans several.
  @Test func looseObjectsAreStoredZlibThatGitReads() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let big = (0..<150_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
    let id = try repository.writeBlob(big)
    let path = scratch.path + "/.git/objects/" + id.hex.prefix(2) + "/" + id.hex.dropFirst(2)
    let file = try #require(FileManager.default.contents(atPath: path))
    #expect(file.count > big.count)  // stored, not compressed
    #expect(file.prefix(2) == Data([0x78, 0x01]))
    #expect(try scratch.git("cat-file", "-s", id.hex) == "150000")
    #expect(try gitHashObject(big, in: scratch.path) == id.hex)
    #expect(try scratch.fsck() == (0, ""))
  }
}

/// Commit bytes are composed in Swift; libgit2's `git_commit_create_buffer` is the reference, for plain
/// signatures and for those libgit2 trims or refuses (which go to libgit2 itself).
@Suite struct CommitBytesTests {
  @Test(arguments: [
    ("Ada Lovelace", "ada@example.com", "first\n"),
    ("Zoë Ünïcode 名前", "z@例え.jp", "line\n\nTaskq-Op: add\nTaskq-Task: T-1\n"),
    ("a", "b", ""),
    ("Name", "e@x", "cut at\u{0}the NUL"),
    ("  padded  ", "e@x", "trimmed by libgit2\n"),
    ("Tab\tinside", "e@x", "kept\n"),
  ])
  func swiftBytesAreLibgit2s(name: String, email: String, message: String) throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let tree = try repository.emptyTree().id
    let head = try #require(try repository.referenceTarget("refs/heads/main"))
    let other = try repository.createCommit(
      tree: tree, parents: [], message: "other\n", signature: Signature(name: "T", email: "t@x"))
    let signature = Signature(name: name, email: email)
    for parents in [[], [head], [head, other]] {
      // Both stamp the current second: take the pair again if a second boundary fell between them.
      var pair: ([UInt8], [UInt8]) = ([], [0])
      for _ in 0..<5 where pair.0 != pair.1 {
        pair = (
          try repository.commitBytes(tree: tree, parents: parents, message: message, signature: signature),
          try repository.commitBytesWithLibgit2(tree: tree, parents: parents, message: message, signature: signature)
        )
      }
      #expect(pair.0 == pair.1, "\(String(decoding: pair.0, as: UTF8.self))")
    }
  }

  @Test func aSignatureLibgit2RefusesIsRefused() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let tree = try repository.emptyTree().id
    for signature in [Signature(name: "a<b", email: "e@x"), Signature(name: "n", email: "e>x")] {
      #expect(throws: GitError.self) {
        try repository.commitBytes(tree: tree, parents: [], message: "m\n", signature: signature)
      }
    }
  }
}

/// A deterministic random source (SplitMix64), so a failing round can be replayed.
struct SeededGenerator: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
