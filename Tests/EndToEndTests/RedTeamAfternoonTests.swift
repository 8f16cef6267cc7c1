import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Red team, afternoon of the lazy libgit2 loading and of completion from the snapshot cache: each test
/// failed on the code it was written against (the symptom is in its doc comment), and passes since its fix.
@Suite struct RedTeamAfternoonTests {
  static let line = ["__complete", "--", "cancel", "--id", ""]
  static let noCache = ["TASKQ_NO_CACHE": "1"]

  /// `core.worktree` names a directory owned by another user. libgit2 1.5.1 checks the ownership of the
  /// working directory it will use (`core.worktree`'s), refuses the repository (safe.directory), and the
  /// libgit2 path completes nothing; ``FastRead`` checks only the owner of the directory holding `.git`
  /// and answers every id from the cache.
  ///
  /// Symptom: `git taskq __complete -- cancel --id ''` prints `T-1 … T-6` while
  /// `TASKQ_NO_CACHE=1 git taskq __complete -- cancel --id ''` prints nothing (and `status` fails).
  @Test(
    .enabled(if: geteuid() == 0, "needs root to give a directory away"))
  func coreWorktreeOfAnotherUserIsRefusedAsLibgit2Refuses() throws {
    let repository = try FastReadTests.populated()
    try FastReadTests.warmCache(repository)
    let elsewhere = repository.directory.path + "/elsewhere"
    try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
    #expect(chown(elsewhere, 4242, 4242) == 0)
    _ = try repository.git("config", "core.worktree", elsewhere)
    let throughLibgit2 = try repository.taskq(Self.line, environment: Self.noCache)
    #expect(throughLibgit2.stdoutText.isEmpty, "libgit2 refuses the repository: \(throughLibgit2.stdoutText)")
    let answered = try repository.taskq(Self.line)
    #expect(answered.stdoutText == throughLibgit2.stdoutText)
  }

  /// `core.repositoryformatversion = 2`: libgit2 refuses to open the repository ("unsupported repository
  /// version 2"), so every command fails and the libgit2 path completes nothing; ``FastRead`` only looks
  /// for the word "extensions" in the configuration and answers from the cache.
  ///
  /// Symptom: `git config core.repositoryformatversion 2; git-taskq __complete -- cancel --id ''` prints
  /// the ids; with `TASKQ_NO_CACHE=1` it prints nothing.
  @Test
  func unsupportedRepositoryFormatIsLibgit2s() throws {
    let repository = try FastReadTests.populated()
    try FastReadTests.warmCache(repository)
    _ = try repository.git("config", "core.repositoryformatversion", "2")
    let throughLibgit2 = try repository.taskq(Self.line, environment: Self.noCache)
    #expect(throughLibgit2.stdoutText.isEmpty, "libgit2 refuses the repository: \(throughLibgit2.stdoutText)")
    #expect(try repository.taskq("status").status != 0)
    let answered = try repository.taskq(Self.line)
    #expect(answered.stdoutText == throughLibgit2.stdoutText)
  }

  /// A subdirectory holds a `.git` directory that is not a repository (no `HEAD`, no `objects`: a partial
  /// copy, a leftover of an aborted clone) but has a `refs/taskq/queue` and a `taskq/cache-v1` that match.
  /// libgit2's discovery skips a `.git` that is not a valid repository and goes on to the enclosing one;
  /// ``FastRead`` takes the first `.git` directory it meets and answers from its stale copy.
  ///
  /// Symptom: in `sub/`, after `git taskq add --id T-7 …` in the enclosing repository,
  /// `git-taskq __complete -- cancel --id ''` offers no T-7; with `TASKQ_NO_CACHE=1` it does.
  @Test
  func aDotGitThatIsNotARepositoryDoesNotShadowTheRealOne() throws {
    let repository = try FastReadTests.populated()
    try FastReadTests.warmCache(repository)
    let sub = repository.path + "/sub"
    let fake = sub + "/.git"
    let manager = FileManager.default
    try manager.createDirectory(atPath: fake + "/refs/taskq", withIntermediateDirectories: true)
    try manager.createDirectory(atPath: fake + "/taskq", withIntermediateDirectories: true)
    for file in ["refs/taskq/queue", "taskq/cache-v1", "config"] {
      try manager.copyItem(atPath: repository.path + "/.git/" + file, toPath: fake + "/" + file)
    }
    try repository.addTask("T-7")
    let throughLibgit2 = try repository.taskq(Self.line, in: sub, environment: Self.noCache)
    #expect(throughLibgit2.stdoutText.contains("T-7 "))
    let answered = try repository.taskq(Self.line, in: sub)
    #expect(answered.stdoutText == throughLibgit2.stdoutText)
  }

  /// A cache file whose commit is the queue's tip but whose ids are hostile (an escape sequence, a
  /// newline): ``CacheFile/decode`` does not check ids with ``TaskID``, and completion prints them raw.
  /// (The libgit2 path reads the same cache through ``QueueStore`` when the cache is only a few commits
  /// behind, so it is not a fallback either.)
  ///
  /// Symptom: `git-taskq __complete -- cancel --id '' | od -c` shows `033 [ m` and a line split in two
  /// (`T`, `2`) where the queue holds T-1 and T-2.
  @Test
  func hostileIdsInTheCacheNeverReachCompletion() throws {
    let repository = try FastReadTests.populated()
    try FastReadTests.warmCache(repository)
    let path = repository.path + "/.git/taskq/cache-v1"
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let headerSize = 112
    func replace(_ old: String, _ new: [UInt8]) throws {
      let needle = Array(old.utf8)
      let start = try #require(
        (headerSize...(bytes.count - needle.count)).first { Array(bytes[$0..<($0 + needle.count)]) == needle })
      bytes.replaceSubrange(start..<(start + needle.count), with: new)
    }
    try replace("T-1", [0x1b, UInt8(ascii: "["), UInt8(ascii: "m")])
    try replace("T-2", [UInt8(ascii: "T"), 0x0a, UInt8(ascii: "2")])
    let checksum = Self.checksum(Array(bytes[headerSize...]))
    withUnsafeBytes(of: checksum.littleEndian) { bytes.replaceSubrange(104..<112, with: $0) }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    // The file is refused (an id git would show as a damaged directory): status reads the queue from git.
    let status = try repository.taskqOK("status", "--all").stdoutText
    #expect(status.contains("T-1") && !status.contains("\\u{1b}[m") && !status.contains("\u{1B}"), "\(status)")

    let answered = try repository.taskq(Self.line)
    #expect(answered.status == 0)
    let controls = answered.stdoutText.unicodeScalars.filter { $0.value < 0x20 && $0 != "\n" }
    #expect(controls.isEmpty, "control characters in completion: \(Array(answered.stdoutText.utf8))")
    for candidate in answered.stdoutText.split(separator: "\n") {
      let id = String(candidate.dropLast())
      #expect(TaskID.problem(with: id) == nil, "offered '\(id)'")
      #expect(["T-1", "T-2", "T-3", "T-4", "T-5", "T-6"].contains(id), "offered '\(id)'")
    }
  }

  /// The cache file's checksum (CacheBytes.swift `cacheChecksum`), to craft a file it accepts.
  static func checksum(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(bytes.count)
    let prime: UInt64 = 0x0000_0100_0000_01b3
    var index = 0
    while index + 8 <= bytes.count {
      var word: UInt64 = 0
      for k in 0..<8 { word |= UInt64(bytes[index + k]) << (8 * UInt64(k)) }
      hash = (hash ^ word) &* prime
      hash ^= hash >> 29
      index += 8
    }
    while index < bytes.count {
      hash = (hash ^ UInt64(bytes[index])) &* prime
      index += 1
    }
    return hash
  }

  /// libgit2 cannot be loaded because the first `libgit2.so.1.5` on `LD_LIBRARY_PATH` is not a library,
  /// in a directory whose name holds a newline: the loader's line quotes `dlerror()` raw, and the error
  /// is two lines (the rule: one line saying what is wrong).
  ///
  /// Symptom: `LD_LIBRARY_PATH=$'/tmp/a\nb' git-taskq status` (with an empty `/tmp/a\nb/libgit2.so.1.5`)
  /// prints `error: cannot load libgit2 1.5.1 (/tmp/a` and `b/libgit2.so.1.5: file too short): …`.
  @Test
  func libraryLoadingErrorIsOneLine() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let directory = repository.directory.path + "/lib\nrary"
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    #expect(FileManager.default.createFile(atPath: directory + "/libgit2.so.1.5", contents: Data()))
    let result = try repository.taskq(["status"], environment: ["LD_LIBRARY_PATH": directory])
    #expect(result.status == 1)
    #expect(result.stderrText.hasPrefix("error: cannot load libgit2"))
    #expect(result.stderrText.split(separator: "\n").count == 1, "\(result.stderrText)")
  }

  /// A cache file of 1 GiB (sparse: a stray `truncate`, a disk tool, a file another program left there):
  /// ``CacheStorage/init(reading:)`` reads the whole file into memory before looking at its 112-byte
  /// header (the magic, the payload length), where the mapping it replaced touched only the pages read.
  /// One TAB then costs a gigabyte of memory and seconds of reading, for a file that is not a cache.
  ///
  /// Symptom: `truncate -s 1G .git/taskq/cache-v1; /usr/bin/time -f %M git-taskq __complete -- cancel --id ''`
  /// reports ~1,050,000 KB of maximum resident memory (2,071,492 KB and 8 s at 2000 MB).
  @Test
  func aHugeCacheFileIsNotReadWhole() throws {
    let repository = try FastReadTests.populated()
    try FastReadTests.warmCache(repository)
    let path = repository.path + "/.git/taskq/cache-v1"
    #expect(truncate(path, 1 << 30) == 0)
    let result = try ProcessRunner.run(
      ProcessSpec(
        "/usr/bin/time", ["-f", "maxrss=%M", Taskq.binary] + Self.line, environment: ["GIT_CONFIG_NOSYSTEM": "1"],
        directory: repository.path, timeout: 120))
    #expect(result.succeeded, "\(result.stderrText)")
    let line = try #require(result.stderrText.split(separator: "\n").last { $0.hasPrefix("maxrss=") })
    let kilobytes = try #require(Int(line.dropFirst("maxrss=".count)))
    #expect(kilobytes < 256 * 1024, "maximum resident memory \(kilobytes) KB for one completion")
  }
}
