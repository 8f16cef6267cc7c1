import Foundation
import Git
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Breaks of this round's changes (replay rule, push-free runs, replaced remotes, snapshot cache v4,
/// completion from a table) found by attacking them: each test fails until the break is fixed.
@Suite struct RedTeamRoundTests {
  /// The snapshot cache was mapped (`MAP_PRIVATE`) and its strings and records decoded from the mapping long
  /// after the checksum was checked. `MAP_PRIVATE` does not copy pages that were never written: a process (or
  /// a person with `truncate`/`: >`) that shortens the file in place made the next read of a page past the new
  /// end raise SIGBUS. A long-lived `status --watch` keeps the index of an unchanged queue in memory and
  /// redraws its titles from it, so it died of SIGBUS instead of going on. The file is now read into private
  /// memory (`CacheStorage(reading:)`).
  @Test
  func aWatchSurvivesTheCacheFileTruncatedUnderIt() throws {
    let repo = try ScratchRepository()
    for n in 1...150 {
      try repo.addTask("T-\(n)", body: "Task number \(n) " + String(repeating: "words ", count: 60))
    }
    try repo.taskqOK("status")
    let cache = repo.path + "/.git/taskq/cache-v1"
    #expect(FileManager.default.fileExists(atPath: cache), "status wrote no cache file")
    let path = Taskq.binaryDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
    let watch = try ProcessGroup(
      "/usr/bin/git", ["-C", repo.path, "taskq", "status", "--watch", "0.2"],
      environment: ["PATH": path, "GIT_CONFIG_NOSYSTEM": "1"])
    usleep(2_000_000)
    #expect(truncate(cache, 0) == 0)
    usleep(2_000_000)
    watch.signalGroup(SIGTERM)
    let status = watch.wait()
    // Still running, so ended by our SIGTERM: either `git` died of it, or (when the test runner's thread
    // blocks SIGTERM, which spawned children inherit) `git` waited for git-taskq, which stops on SIGTERM with
    // 128 + 15. A child that crashed makes `git` exit by itself with 128 + its signal (SIGBUS: 135).
    let killed = status & 0x7f
    let exitCode = (status >> 8) & 0xff
    #expect(
      killed == SIGTERM || (killed == 0 && exitCode == 128 + SIGTERM),
      "status --watch ended by itself after the cache file was truncated (raw wait status \(status))")
  }

  /// A task file whose title holds terminal escapes and a stray carriage return: the cached title (slim
  /// entries, v4) and the one read from git must print the same, and neither may reach the terminal raw.
  @Test func hostileTitlesPrintTheSameFromTheCacheAndFromGit() throws {
    let repo = try ScratchRepository()
    let hostile = "\u{1B}]0;owned\u{07}\u{1B}[2J\u{1B}[31mEvil\r title \u{9B}31m\n\nBody."
    try repo.addTask("T-1", body: hostile)
    try repo.addTask("T-2", body: "# \u{1B}[5mBlink\u{1B}[0m\n")
    for arguments in [["status"], ["status", "--all"], ["status", "--json"], ["show", "--id", "T-1"]] {
      _ = try repo.taskq(arguments)  // writes the cache
      let cached = try repo.taskq(arguments)
      let direct = try repo.taskq(arguments, environment: ["TASKQ_NO_CACHE": "1"])
      #expect(cached.status == 0 && direct.status == 0, "\(arguments): \(cached.summary) \(direct.summary)")
      #expect(cached.stdoutText == direct.stdoutText, "\(arguments): the cache and git disagree")
      #expect(!cached.stdoutText.contains("\u{1B}"), "\(arguments) printed an escape: \(cached.stdoutText)")
      #expect(!cached.stdoutText.contains("\r"), "\(arguments) printed a carriage return")
    }
  }

  /// A FIFO (or a directory) where the cache file should be: the mapping opened it blocking, so `status`
  /// waited forever for a writer. A cache that is not a regular file counts as absent.
  @Test func aCacheThatIsNotARegularFileIsIgnored() throws {
    let repo = try ScratchRepository()
    try repo.addTask("T-1", body: "One")
    try repo.taskqOK("status")
    let cache = repo.path + "/.git/taskq/cache-v1"
    unlink(cache)
    #expect(mkfifo(cache, 0o644) == 0)
    let result = try Taskq.run(["status"], in: repo.path, timeout: 20)
    #expect(result.status == 0, "status with a FIFO as its cache file: \(result.summary)")
    #expect(result.stdoutText.contains("T-1"))
    unlink(cache)
    #expect(mkdir(cache, 0o755) == 0)
    let again = try Taskq.run(["status"], in: repo.path, timeout: 20)
    #expect(again.status == 0 && again.stdoutText.contains("T-1"), "\(again.summary)")
  }
}
