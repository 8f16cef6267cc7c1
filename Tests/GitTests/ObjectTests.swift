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

  @Test func removingAMissingPathThrowsWithLibgit2sMessage() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let blob = try repository.writeBlob(Array("z".utf8))
    let base = try repository.createTree(from: try repository.emptyTree(), applying: [.write("a", blob: blob)])
    let error = try #require(throws: GitError.self) {
      try repository.createTree(from: try repository.tree(base), applying: [.remove("nope/x")])
    }
    #expect(error.function == "git_tree_create_updated")
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
