import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Completion of task ids from the snapshot cache without libgit2 (`FastRead`): the same answer as the
/// libgit2 path in every queue state, and the libgit2 path whenever the cache is not provably current.
///
/// A run with `TASKQ_LIBGIT2` naming a missing file shows which path answered: the fast one succeeds
/// without libgit2, the libgit2 one fails with the loader's line.
@Suite struct FastReadTests {
  static let noLibgit2 = ["TASKQ_LIBGIT2": "/nonexistent/libgit2.so.1.5"]
  static let noCache = ["TASKQ_NO_CACHE": "1"]
  /// Completion lines whose answers come from the queue: every command with an `--id`, and a list.
  static let lines: [[String]] = [
    ["__complete", "--", "cancel", "--id", ""], ["__complete", "--", "status", "--id", "T"],
    ["__complete", "--", "approve", "--id", ""], ["__complete", "--", "retry", "--id", ""],
    ["__complete", "--", "add", "--depends-on", "T-1,"],
  ]

  /// Each completion line's output through libgit2 (no cache at all).
  static func throughLibgit2(_ repository: ScratchRepository, in directory: String? = nil) throws -> [String] {
    try lines.map { try repository.taskq($0, in: directory, environment: noCache).stdoutText }
  }

  /// Asserts that every completion line answers as through libgit2 and, when `fast`, without libgit2.
  static func expectSameAnswers(
    _ repository: ScratchRepository, in directory: String? = nil, fast: Bool,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let expected = try throughLibgit2(repository, in: directory)
    for (line, want) in zip(lines, expected) {
      // Without libgit2 first: the run through libgit2 below writes the cache file when there is none.
      let withoutLibgit2 = try repository.taskq(line, in: directory, environment: noLibgit2)
      if fast {
        #expect(withoutLibgit2.status == 0, "\(line): \(withoutLibgit2.stderrText)", sourceLocation: sourceLocation)
        #expect(withoutLibgit2.stdoutText == want, "\(line)", sourceLocation: sourceLocation)
      } else {
        #expect(withoutLibgit2.status == 1, "\(line): answered without libgit2", sourceLocation: sourceLocation)
        #expect(withoutLibgit2.stderrText.hasPrefix("error: cannot load libgit2"), sourceLocation: sourceLocation)
      }
      let cached = try repository.taskq(line, in: directory)
      #expect(cached.status == 0, sourceLocation: sourceLocation)
      #expect(cached.stdoutText == want, "\(line)", sourceLocation: sourceLocation)
    }
  }

  /// T-1 todo, T-2 review, T-3 failed, T-4 done, T-5 cancelled, T-6 todo waiting on T-1.
  static func populated() throws -> ScratchRepository {
    let repository = try ScratchRepository()
    let store = try repository.store()
    for id in ["T-1", "T-2", "T-3", "T-4", "T-5"] { try repository.addTask(id, store: store) }
    try repository.addTask("T-6", dependsOn: ["T-1"], store: store)
    try repository.drive("T-2", to: .review, store: store)
    try repository.drive("T-3", to: .failed, store: store)
    try repository.drive("T-4", to: .done, store: store)
    try store.cancel("T-5")
    return repository
  }

  /// Brings the cache file up to the queue's tip, as any status does.
  static func warmCache(_ repository: ScratchRepository) throws {
    _ = try repository.taskqOK("status", "--all")
  }

  @Test func currentCacheAnswersWithoutLibgit2AsLibgit2Does() throws {
    let repository = try Self.populated()
    try Self.warmCache(repository)
    try Self.expectSameAnswers(repository, fast: true)
    // From a subdirectory too.
    try FileManager.default.createDirectory(atPath: repository.path + "/sub/dir", withIntermediateDirectories: true)
    try Self.expectSameAnswers(repository, in: repository.path + "/sub/dir", fast: true)
  }

  @Test func staleOrMissingCacheFallsBackToLibgit2() throws {
    let repository = try Self.populated()
    // No cache file yet: libgit2 answers (and writes it).
    let first = try repository.taskq(["__complete", "--", "cancel", "--id", ""], environment: Self.noLibgit2)
    #expect(first.status == 1)
    #expect(
      try repository.taskqOK("__complete", "--", "cancel", "--id", "").stdoutText
        == (try Self.throughLibgit2(repository)).first)
    // The queue moved on after the cache was written: libgit2 answers, with the new task.
    try Self.warmCache(repository)
    try repository.addTask("T-7")
    let stale = try repository.taskq(["__complete", "--", "cancel", "--id", "T-7"], environment: Self.noLibgit2)
    #expect(stale.status == 1)
    #expect(try repository.taskqOK("__complete", "--", "cancel", "--id", "T-7").stdoutText == "T-7 \n")
    // TASKQ_NO_CACHE turns the fast path off as well.
    let off = try repository.taskq(
      ["__complete", "--", "cancel", "--id", ""], environment: Self.noLibgit2.merging(Self.noCache) { a, _ in a })
    #expect(off.status == 1)
  }

  @Test func packedRefIsReadToo() throws {
    let repository = try Self.populated()
    try Self.warmCache(repository)
    try repository.git("pack-refs", "--all")
    #expect(!FileManager.default.fileExists(atPath: repository.path + "/.git/refs/taskq/queue"))
    try Self.expectSameAnswers(repository, fast: true)
  }

  @Test func noQueueIsLibgit2s() throws {
    let repository = try ScratchRepository()
    let line = ["__complete", "--", "cancel", "--id", ""]
    #expect(try repository.taskq(line, environment: Self.noLibgit2).status == 1)
    let answered = try repository.taskq(line)
    #expect(answered.status == 0)
    #expect(answered.stdoutText.isEmpty)
  }

  @Test func repositoriesFoundOtherwiseAreLibgit2s() throws {
    let repository = try Self.populated()
    try Self.warmCache(repository)
    let line = ["__complete", "--", "cancel", "--id", ""]
    // GIT_DIR (and the other variables that move the repository) leave the discovery to libgit2.
    let outside = try ScratchDirectory()
    let viaGitDir = try repository.taskq(line, in: outside.path, environment: ["GIT_DIR": repository.path + "/.git"])
    #expect(viaGitDir.stdoutText == (try Self.throughLibgit2(repository)).first)
    #expect(viaGitDir.stdoutText.contains("T-1 "))
    let withoutLibgit2 = try repository.taskq(
      line, in: outside.path,
      environment: Self.noLibgit2.merging(["GIT_DIR": repository.path + "/.git"]) { a, _ in a })
    #expect(withoutLibgit2.status == 1)
    // A linked worktree (a gitfile) and the git directory itself are libgit2's too.
    let worktree = repository.directory.path + "/linked"
    try repository.git("worktree", "add", "-q", "-b", "other", worktree)
    let fromWorktree = try repository.taskq(line, in: worktree, environment: Self.noLibgit2)
    #expect(fromWorktree.status == 1)
    #expect(try repository.taskq(line, in: worktree).stdoutText == (try Self.throughLibgit2(repository)).first)
    let fromGitDir = try repository.taskq(line, in: repository.path + "/.git", environment: Self.noLibgit2)
    #expect(fromGitDir.status == 1)
  }

  /// A repository owned by someone else: libgit2's safe.directory check decides (it refuses), not the cache.
  @Test(.enabled(if: geteuid() == 0, "needs root to give the repository away"))
  func repositoryOfAnotherUserIsLibgit2s() throws {
    let repository = try Self.populated()
    try Self.warmCache(repository)
    let line = ["__complete", "--", "cancel", "--id", ""]
    for path in [repository.path, repository.path + "/.git"] {
      #expect(chown(path, 4242, 4242) == 0)
      let refused = try repository.taskq(line, environment: Self.noLibgit2)
      #expect(refused.status == 1, "\(path): answered without libgit2")
      let answered = try repository.taskq(line)
      #expect(answered.stdoutText == (try repository.taskq(line, environment: Self.noCache)).stdoutText)
      #expect(answered.stdoutText.isEmpty, "libgit2 refuses a repository of another user")
      #expect(chown(path, 0, 0) == 0)
    }
  }
}
