import Foundation
import Git
import TaskqTestSupport
import Testing

/// ``Repository/addWorktree(named:at:branch:)`` writes what `git_worktree_add` wrote (the files below,
/// as libgit2 1.5 writes them) without libgit2's check that opened every linked worktree as a repository;
/// real git reads the result.
@Suite struct WorktreeAddTests {
  @Test func aWorktreeIsWhatGitReads() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let head = try #require(try repository.referenceTarget("refs/heads/main"))
    #expect(try repository.createBranch("task/T-1", at: head))
    let path = scratch.directory.path + "/worktrees/repo/T-1"
    try repository.addWorktree(named: "T-1", at: path, branch: "task/T-1")

    let admin = scratch.path + "/.git/worktrees/T-1/"
    func read(_ file: String) throws -> String { try String(contentsOfFile: file, encoding: .utf8) }
    #expect(try read(path + "/.git") == "gitdir: \(admin)\n")
    #expect(try read(admin + "commondir") == scratch.path + "/.git/\n")
    #expect(try read(admin + "gitdir") == path + "/.git\n")
    #expect(try read(admin + "HEAD") == "ref: refs/heads/task/T-1\n")
    // Checked out, clean, on its branch, listed by git.
    #expect(try read(path + "/README.md") == "# scratch\n")
    #expect(try scratch.git("status", "--porcelain", in: path) == "")
    #expect(try scratch.git("symbolic-ref", "HEAD", in: path) == "refs/heads/task/T-1")
    #expect(try scratch.git("worktree", "list", "--porcelain").contains("worktree \(path)\n"))
    #expect(try repository.worktreePath(named: "T-1") == path)
    #expect(try repository.worktreeNames() == ["T-1"])
    #expect(!repository.isHalfMadeWorktree(named: "T-1"))
  }

  /// A branch checked out in the main working tree or in another worktree is refused, as libgit2 refused
  /// it, and nothing of the new registration is left behind.
  @Test func aBranchCheckedOutElsewhereIsRefused() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let head = try #require(try repository.referenceTarget("refs/heads/main"))
    #expect(try repository.createBranch("task/T-1", at: head))
    try repository.addWorktree(named: "T-1", at: scratch.directory.path + "/wt/T-1", branch: "task/T-1")

    for (name, branch) in [("T-2", "task/T-1"), ("T-3", "main")] {
      let path = scratch.directory.path + "/wt/" + name
      let error = try #require(throws: GitError.self) {
        try repository.addWorktree(named: name, at: path, branch: branch)
      }
      #expect(error.message == "reference is already checked out")
      #expect(!FileManager.default.fileExists(atPath: path))
      #expect(!FileManager.default.fileExists(atPath: scratch.path + "/.git/worktrees/" + name))
    }
    #expect(try repository.isCheckedOut(branch: "task/T-1"))
    #expect(try !repository.isCheckedOut(branch: "task/T-9"))
  }

  /// A path that exists already, or a registration of that name: an error, and what was there stays.
  @Test func anExistingPathOrNameIsAnErrorAndIsLeftAlone() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let head = try #require(try repository.referenceTarget("refs/heads/main"))
    #expect(try repository.createBranch("task/T-1", at: head))
    #expect(try repository.createBranch("task/T-2", at: head))
    let taken = try scratch.directory.write("taken/T-1/keep.txt", "mine\n")
    let pathError = try #require(throws: GitError.self) {
      try repository.addWorktree(named: "T-1", at: scratch.directory.path + "/taken/T-1", branch: "task/T-1")
    }
    #expect(pathError.message.contains("directory exists"), "\(pathError.message)")
    #expect(FileManager.default.fileExists(atPath: taken))
    #expect(!FileManager.default.fileExists(atPath: scratch.path + "/.git/worktrees/T-1"))

    try repository.addWorktree(named: "T-1", at: scratch.directory.path + "/wt/T-1", branch: "task/T-1")
    let nameError = try #require(throws: GitError.self) {
      try repository.addWorktree(named: "T-1", at: scratch.directory.path + "/wt/other", branch: "task/T-2")
    }
    #expect(nameError.code == .exists)
    #expect(!FileManager.default.fileExists(atPath: scratch.directory.path + "/wt/other"))
    #expect(try scratch.git("symbolic-ref", "HEAD", in: scratch.directory.path + "/wt/T-1") == "refs/heads/task/T-1")
  }

  /// One registration is looked at, not all: half-made (a file missing or empty, or a detached `HEAD`
  /// naming no commit) or not; an unknown name is not half-made.
  @Test func aHalfMadeRegistrationIsFoundByName() throws {
    let scratch = try ScratchRepository()
    let repository = try scratch.open()
    let head = try #require(try repository.referenceTarget("refs/heads/main"))
    for id in ["T-1", "T-2", "T-3"] {
      #expect(try repository.createBranch("task/\(id)", at: head))
      try repository.addWorktree(named: id, at: scratch.directory.path + "/wt/" + id, branch: "task/\(id)")
    }
    let admin = scratch.path + "/.git/worktrees/"
    try FileManager.default.removeItem(atPath: admin + "T-2/HEAD")
    try String(repeating: "ab", count: 20).write(toFile: admin + "T-3/HEAD", atomically: true, encoding: .utf8)
    #expect(!repository.isHalfMadeWorktree(named: "T-1"))
    #expect(repository.isHalfMadeWorktree(named: "T-2"))
    #expect(repository.isHalfMadeWorktree(named: "T-3"))
    #expect(!repository.isHalfMadeWorktree(named: "T-9"))
    #expect(!repository.isHalfMadeWorktree(named: "../T-1"))
    #expect(try repository.halfMadeWorktreeNames() == ["T-2", "T-3"])
  }
}
