import Foundation
import Git
import TaskqTestSupport
import Testing

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
    #expect(
      try repository.referenceNames(matching: "refs/heads/task/*").sorted()
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
