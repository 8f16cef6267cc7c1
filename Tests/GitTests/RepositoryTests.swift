import Foundation
import Git
import TaskqTestSupport
import Testing

/// Opening and discovering repositories the way the git command line does.
@Suite struct RepositoryOpenTests {
  @Test func openFindsTheWorkingDirectoryAndGitDirectory() throws {
    let scratch = try ScratchRepository()
    let repository = try Repository.open(at: scratch.path)
    #expect(repository.workingDirectory == scratch.path + "/")
    #expect(repository.gitDirectory == scratch.path + "/.git/")
    #expect(repository.commonDirectory == scratch.path + "/.git/")
    #expect(repository.mainWorkingDirectory == scratch.path)
    #expect(!repository.isBare)
  }

  @Test func openAtTheGitDirectoryIsLikeGitDir() throws {
    let scratch = try ScratchRepository()
    let repository = try Repository.open(at: scratch.path + "/.git")
    #expect(repository.gitDirectory == scratch.path + "/.git/")
    #expect(repository.mainWorkingDirectory == scratch.path)
    #expect(try repository.resolveCommit("main") != nil)
  }

  @Test func openDoesNotSearchParentDirectories() throws {
    let scratch = try ScratchRepository()
    let sub = scratch.path + "/a/b"
    try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
    let error = try #require(throws: GitError.self) { try Repository.open(at: sub) }
    #expect(error.code == .notFound)
    #expect(!error.message.isEmpty)
    #expect(error.function == "git_repository_open_ext")
  }

  @Test func discoverSearchesUpwardsFromASubdirectory() throws {
    let scratch = try ScratchRepository()
    let sub = scratch.path + "/a/b/c"
    try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
    let repository = try Repository.discover(from: sub)
    #expect(repository.workingDirectory == scratch.path + "/")
    #expect(repository.mainWorkingDirectory == scratch.path)
  }

  @Test func discoverOutsideARepositoryThrowsNotFoundWithLibgit2sMessage() throws {
    let outside = try ScratchDirectory()
    let error = try #require(throws: GitError.self) { try Repository.discover(from: outside.path) }
    #expect(error.code == .notFound)
    #expect(error.message.contains("could not find repository"), "\(error.message)")
    #expect(error.description == error.message)
  }

  @Test func discoverInALinkedWorktreeSharesTheCommonDirectory() throws {
    let scratch = try ScratchRepository()
    let worktree = scratch.directory.path + "/wt"
    try scratch.git("worktree", "add", "-q", "-b", "side", worktree)
    let sub = worktree + "/deeper"
    try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
    let repository = try Repository.discover(from: sub)
    #expect(repository.workingDirectory == worktree + "/")
    #expect(repository.gitDirectory == scratch.path + "/.git/worktrees/wt/")
    #expect(repository.commonDirectory == scratch.path + "/.git/")
    #expect(repository.mainWorkingDirectory == scratch.path)
    // A ref written through the worktree is the main repository's ref.
    let head = try #require(try repository.resolveCommit("HEAD"))
    try repository.updateReference("refs/taskq/probe", to: head, expected: nil, message: "probe")
    #expect(try scratch.git("rev-parse", "refs/taskq/probe") == head.hex)
  }

  @Test func bareRepositoryMainDirectoryIsTheGitDirectory() throws {
    let scratch = try ScratchDirectory()
    let repository = try Repository.create(at: scratch.path + "/bare.git", bare: true)
    #expect(repository.isBare)
    #expect(repository.workingDirectory == nil)
    #expect(repository.mainWorkingDirectory == scratch.path + "/bare.git")
  }
}

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
    let cli = try ProcessRunnerBridge.hashObject(bytes, in: scratch.path)
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

    let everything = try repository.createTree(from: try repository.tree(base), applying: [
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
    #expect(try scratch.git("log", "-1", "--format=%an <%ae>|%cn <%ce>", child.hex)
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

/// The compare-and-swap of a reference, which every queue write rests on.
@Suite struct ReferenceTests {
  let ref = "refs/taskq/queue"

  func commits(_ repository: Repository, _ count: Int) throws -> [ObjectID] {
    let tree = try repository.emptyTree().id
    let signature = Signature(name: "T", email: "t@example.com")
    return try (0..<count).map {
      try repository.createCommit(tree: tree, parents: [], message: "commit \($0)", signature: signature)
    }
  }

  @Test func referenceTargetIsNilWhenMissing() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    #expect(try repository.referenceTarget(ref) == nil)
    #expect(try repository.referenceTarget("refs/heads/main")?.hex == scratch.git("rev-parse", "main"))
  }

  @Test func createsWhenExpectedNilAndTheRefIsMissing() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 1)
    try repository.updateReference(ref, to: c[0], expected: nil, message: "create")
    #expect(try repository.referenceTarget(ref) == c[0])
    #expect(try scratch.git("rev-parse", ref) == c[0].hex)
  }

  @Test func creatingAnExistingRefFailsWithExists() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 2)
    try repository.updateReference(ref, to: c[0], expected: nil, message: "create")
    let error = try #require(throws: GitError.self) {
      try repository.updateReference(ref, to: c[1], expected: nil, message: "create again")
    }
    #expect(error.code == .exists)
    #expect(error.function == "git_reference_create_matching")
    #expect(error.message.contains("already exists"), "\(error.message)")
    #expect(try repository.referenceTarget(ref) == c[0])
  }

  @Test func updatesWhenExpectedMatches() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 3)
    try repository.updateReference(ref, to: c[0], expected: nil, message: "create")
    try repository.updateReference(ref, to: c[1], expected: c[0], message: "move")
    try repository.updateReference(ref, to: c[2], expected: c[1], message: "move")
    #expect(try scratch.git("rev-parse", ref) == c[2].hex)
  }

  @Test func staleExpectedFailsWithModifiedAndLeavesTheRef() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 3)
    try repository.updateReference(ref, to: c[0], expected: nil, message: "create")
    try repository.updateReference(ref, to: c[1], expected: c[0], message: "move")
    let error = try #require(throws: GitError.self) {
      try repository.updateReference(ref, to: c[2], expected: c[0], message: "stale")
    }
    #expect(error.code == .modified)
    #expect(error.function == "git_reference_create_matching")
    #expect(!error.message.isEmpty)
    #expect(try scratch.git("rev-parse", ref) == c[1].hex)
  }

  @Test func expectedValueOnAMissingRefFails() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 2)
    let error = try #require(throws: GitError.self) {
      try repository.updateReference(ref, to: c[1], expected: c[0], message: "no such ref")
    }
    #expect([GitError.Code.modified, .notFound].contains(error.code), "\(error.code.rawValue) \(error.message)")
    #expect(try repository.referenceTarget(ref) == nil)
  }

  @Test func aConcurrentWriterSeenThroughAnotherHandleMakesTheSwapFail() throws {
    let scratch = try ScratchRepository()
    let mine = try scratch.open()
    let theirs = try scratch.open()
    let c = try commits(mine, 3)
    try mine.updateReference(ref, to: c[0], expected: nil, message: "create")
    try theirs.updateReference(ref, to: c[1], expected: c[0], message: "theirs")
    let error = try #require(throws: GitError.self) {
      try mine.updateReference(ref, to: c[2], expected: c[0], message: "mine")
    }
    #expect(error.code == .modified)
    #expect(try mine.referenceTarget(ref) == c[1])
  }

  @Test func aHeldLockFileFailsWithLocked() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 2)
    try repository.updateReference(ref, to: c[0], expected: nil, message: "create")
    #expect(FileManager.default.createFile(atPath: scratch.queueLockPath, contents: Data()))
    let error = try #require(throws: GitError.self) {
      try repository.updateReference(ref, to: c[1], expected: c[0], message: "locked")
    }
    #expect(error.code == .locked)
    #expect(error.message.contains("queue.lock"), "\(error.message)")
    #expect(FileManager.default.fileExists(atPath: scratch.queueLockPath))
    #expect(try repository.referenceTarget(ref) == c[0])
  }

  @Test func updateReferenceWritesTheReflogMessage() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 1)
    try repository.updateReference("refs/heads/probe", to: c[0], expected: nil, message: "taskq: probe message")
    #expect(try scratch.git("reflog", "-1", "--format=%gs", "refs/heads/probe") == "taskq: probe message")
  }

  @Test func deleteReferenceAndListByGlob() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let c = try commits(repository, 1)
    for name in ["refs/heads/task/a", "refs/heads/task/b", "refs/heads/other"] {
      try repository.updateReference(name, to: c[0], expected: nil, message: "m")
    }
    #expect(try repository.referenceNames(matching: "refs/heads/task/*").sorted()
      == ["refs/heads/task/a", "refs/heads/task/b"])
    try repository.deleteReference("refs/heads/task/a")
    try repository.deleteReference("refs/heads/task/missing")  // no error
    #expect(try repository.referenceNames(matching: "refs/heads/task/*") == ["refs/heads/task/b"])
    #expect(try repository.referenceTarget("refs/heads/task/a") == nil)
  }

  @Test(arguments: [
    ("task/T-001", true), ("feature/my-branch", true), ("main", true), ("a..b", false), ("-x", false),
    ("a b", false), ("x.lock", false), ("a@{b", false), ("a~b", false), ("a:b", false), ("", false),
    ("trailing/", false), ("a\\b", false),
  ])
  func branchNameValidity(name: String, valid: Bool) {
    #expect(Repository.isValidBranchName(name) == valid)
  }
}

@Suite struct ConfigurationTests {
  @Test func readsValuesAndTheirLevel() throws {
    let scratch = try ScratchRepository()
    try scratch.git("config", "taskq.reposRoot", "/somewhere")
    let configuration = try scratch.open().configuration()
    #expect(try configuration.string("taskq.reposRoot") == "/somewhere")
    #expect(try configuration.string("taskq.reposroot") == "/somewhere")  // keys are case-insensitive
    #expect(try configuration.origin(of: "taskq.reposRoot") == "local")
    #expect(try configuration.string("taskq.missing") == nil)
    #expect(try configuration.origin(of: "taskq.missing") == nil)
  }
}

/// `git hash-object` through the process runner (the object id git itself computes).
enum ProcessRunnerBridge {
  static func hashObject(_ bytes: [UInt8], in directory: String) throws -> String {
    let directoryPath = directory
    let file = directoryPath + "/.hash-probe-\(UUID().uuidString)"
    #expect(FileManager.default.createFile(atPath: file, contents: Data(bytes)))
    defer { try? FileManager.default.removeItem(atPath: file) }
    return try Git.run(["hash-object", file], in: directoryPath)
  }
}
