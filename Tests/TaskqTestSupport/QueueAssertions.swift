import Foundation
import Git
import Orchestrator
import TaskQueue

#if canImport(Glibc)
import Glibc
#endif

// Helpers the queue suites share. They return facts (strings, decoded JSON, flags) and leave the asserting to
// the tests, so this target does not depend on the testing library.

/// The field names of the seed's `tasks.jsonl`, which `status --json | jq` scripts rely on.
public let seedRecordFields = [
  "id", "repo", "base", "task_file", "status", "branch", "worktree_path", "container", "port", "session_id",
  "attempt", "error_file", "created_at", "updated_at",
]

extension ScratchRepository {
  /// Runs the built `git-taskq` in this repository (or in `directory`).
  @discardableResult
  public func taskq(
    _ arguments: String..., in directory: String? = nil, environment: [String: String] = [:],
    input: String? = nil
  ) throws -> ProcessResult {
    try Taskq.run(arguments, in: directory ?? path, environment: environment, input: input)
  }

  /// Runs the built `git-taskq` with an argument array.
  @discardableResult
  public func taskq(
    _ arguments: [String], in directory: String? = nil, environment: [String: String] = [:], input: String? = nil
  ) throws -> ProcessResult {
    try Taskq.run(arguments, in: directory ?? path, environment: environment, input: input)
  }

  /// Runs the built `git-taskq` and throws unless it exits 0.
  @discardableResult
  public func taskqOK(_ arguments: String..., environment: [String: String] = [:], input: String? = nil) throws
    -> ProcessResult
  {
    let result = try Taskq.run(arguments, in: path, environment: environment, input: input)
    guard result.succeeded else {
      throw TestFailure(
        "git-taskq \(arguments.joined(separator: " ")): \(result.endingDescription): \(result.stderrText)")
    }
    return result
  }

  /// A queue store on this repository, with its own `Repository` handle.
  public func store(worker: String = "test-worker") throws -> QueueStore {
    QueueStore(repository: try open(), worker: worker)
  }

  /// Adds `id` in-process (base `main`, this repository).
  @discardableResult
  public func addTask(
    _ id: String, body: String = "Do the thing.", dependsOn: [String] = [], priority: Int = 0,
    store: QueueStore? = nil
  ) throws -> TaskRecord {
    let store = try store ?? self.store()
    return try store.add(
      NewTask(id: id, repo: path, base: "main", priority: priority, dependsOn: dependsOn, body: body))
  }

  /// Moves task `id` from `todo` to `status` along legal transitions (the path a worker would take).
  public func drive(_ id: String, to status: TaskStatus, store: QueueStore? = nil) throws {
    let store = try store ?? self.store()
    for step in Self.path(to: status) {
      try store.transition(id, to: step, command: "test")
    }
  }

  /// The legal path from `todo` to `status`.
  public static func path(to status: TaskStatus) -> [TaskStatus] {
    switch status {
    case .todo: []
    case .planning: [.planning]
    case .building: [.planning, .building]
    case .review: [.planning, .building, .review]
    case .failed: [.planning, .failed]
    case .done: [.planning, .building, .review, .done]
    case .cancelled: [.cancelled]
    }
  }

  /// Every path of the queue's tree (`git ls-tree -r --name-only refs/taskq/queue`), `[]` without a queue.
  public func queuePaths() throws -> [String] {
    guard try queueTip() != nil else { return [] }
    let out = try git("ls-tree", "-r", "--name-only", "refs/taskq/queue")
    return out.isEmpty ? [] : out.components(separatedBy: "\n")
  }

  /// The ids that have a `record.json` in the queue's tree (duplicates kept, so tests can count them).
  public func queueRecordIDs() throws -> [String] {
    try queuePaths().filter { $0.hasSuffix("/record.json") }.map {
      $0.split(separator: "/").dropLast().last.map(String.init) ?? ""
    }
  }

  /// The full messages of the queue's commits, newest first (`git log --format=%B refs/taskq/queue`).
  public func queueMessages() throws -> [String] {
    guard try queueTip() != nil else { return [] }
    let out = try git("log", "--format=%B%x00", "refs/taskq/queue")
    return out.components(separatedBy: "\0").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
      .filter { !$0.isEmpty }
  }

  /// The values of trailer `key` of every queue commit, newest first, as git itself parses them.
  public func queueTrailers(_ key: String) throws -> [String] {
    let out = try git("log", "--format=%(trailers:key=\(key),valueonly,separator=%x2C)%x00", "refs/taskq/queue")
    return out.components(separatedBy: "\0").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
      .dropLast()
      .map { $0 }
  }

  /// A file of the queue's tree, as `git show refs/taskq/queue:<path>` prints it.
  public func queueFile(_ relative: String) throws -> String {
    try git("show", "refs/taskq/queue:\(relative)")
  }

  /// `git fsck --strict --no-dangling` (objects that lost a compare-and-swap race are dangling, not damage):
  /// its exit status and everything it printed.
  public func fsck() throws -> (status: Int32, output: String) {
    let result = try ProcessRunner.run(
      ProcessSpec("git", ["fsck", "--strict", "--no-dangling", "--no-progress"], directory: path, timeout: 120))
    return (result.status, (result.stdoutText + result.stderrText).trimmingCharacters(in: .whitespacesAndNewlines))
  }

  /// The path of the ref's lock file.
  public var queueLockPath: String { path + "/.git/refs/taskq/queue.lock" }

  /// Number of loose objects and packs (`git count-objects -v`), to prove that nothing was written.
  public func objectCount() throws -> String {
    let out = try git("count-objects", "-v")
    return out.components(separatedBy: "\n").filter { $0.hasPrefix("count:") || $0.hasPrefix("in-pack:") }
      .joined(separator: " ")
  }

  /// Writes a queue commit by hand, with the git CLI only: `taskq.json` = `meta`, plus `files`, on top of the
  /// current tip (if any), and points the ref at it. Returns the new commit.
  @discardableResult
  public func writeQueueCommitWithCLI(meta: String, files: [String: String] = [:], message: String = "hand-made")
    throws -> String
  {
    let index = directory.path + "/hand-index-\(UUID().uuidString)"
    defer { unlink(index) }
    let env = ["GIT_INDEX_FILE": index]
    let parent = try queueTip()
    if let parent { try Git.run(["read-tree", parent], in: path, environment: env) }
    for (name, text) in files.merging(["taskq.json": meta], uniquingKeysWith: { a, _ in a }) {
      let blob = try ProcessRunner.run(
        ProcessSpec("git", ["hash-object", "-w", "--stdin"], directory: path, input: Array(text.utf8), timeout: 30))
      guard blob.succeeded else { throw TestFailure("git hash-object failed: \(blob.stderrText)") }
      let id = blob.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
      try Git.run(["update-index", "--add", "--cacheinfo", "100644,\(id),\(name)"], in: path, environment: env)
    }
    let tree = try Git.run(["write-tree"], in: path, environment: env)
    var arguments = ["commit-tree", tree, "-m", message]
    if let parent { arguments += ["-p", parent] }
    let commit = try Git.run(arguments, in: path)
    try Git.run(["update-ref", "refs/taskq/queue", commit] + (parent.map { [$0] } ?? [""]), in: path)
    return commit
  }
}

extension ProcessResult {
  /// Lines of stderr, without the empty line after the final newline.
  public var stderrLines: [String] {
    var lines = stderrText.components(separatedBy: "\n")
    if lines.last == "" { lines.removeLast() }
    return lines
  }

  /// stdout decoded as JSON.
  public func json() throws -> Any {
    try JSONSerialization.jsonObject(with: Data(stdout), options: [.fragmentsAllowed])
  }

  /// stdout decoded as a JSON array of objects.
  public func jsonObjects() throws -> [[String: Any]] {
    guard let array = try json() as? [[String: Any]] else {
      throw TestFailure("stdout is not a JSON array of objects: \(stdoutText)")
    }
    return array
  }

  /// stdout decoded as one JSON object.
  public func jsonObject() throws -> [String: Any] {
    guard let object = try json() as? [String: Any] else {
      throw TestFailure("stdout is not a JSON object: \(stdoutText)")
    }
    return object
  }

  /// A one-line summary for failure messages.
  public var summary: String {
    "\(endingDescription); stdout: \(stdoutText.prefix(600)); stderr: \(stderrText.prefix(600))"
  }
}

/// The first two hex digits of `printf %s ID | sha256sum`, computed by the coreutils CLI.
public func sha256sumBucket(_ id: String) throws -> String {
  let result = try ProcessRunner.run(ProcessSpec("sha256sum", [], input: Array(id.utf8), timeout: 30))
  guard result.succeeded else { throw TestFailure("sha256sum failed: \(result.stderrText)") }
  return String(result.stdoutText.prefix(2))
}

/// Sets a file's modification time with `touch -d` (e.g. `"1 minute ago"`).
public func backdate(_ path: String, _ when: String) throws {
  let result = try ProcessRunner.run(ProcessSpec("touch", ["-d", when, path], timeout: 30))
  guard result.succeeded else { throw TestFailure("touch -d failed: \(result.stderrText)") }
}

/// Seconds on a monotonic clock, for figures the suites print.
public func monotonicSeconds() -> Double {
  var ts = timespec()
  clock_gettime(CLOCK_MONOTONIC, &ts)
  return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// A program started in its own process group, so that a test can SIGKILL it and everything it started at
/// a moment of its choosing (``ProcessRunner`` only stops a group on a timeout, with SIGTERM first).
/// Its output goes to /dev/null.
public final class ProcessGroup {
  public let pid: pid_t
  private var reaped = false

  public init(_ program: String, _ arguments: [String], environment: [String: String] = [:]) throws {
    var env = ProcessInfo.processInfo.environment
    for (key, value) in environment { env[key] = value }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    posix_spawnattr_setpgroup(&attributes, 0)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    sigaddset(&defaults, SIGPIPE)
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF))
    let argv = ([program] + arguments).map { strdup($0) } + [nil]
    let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for pointer in argv { free(pointer) }
      for pointer in envp { free(pointer) }
    }
    var child: pid_t = 0
    let rc = posix_spawnp(&child, program, &actions, &attributes, argv, envp)
    guard rc == 0 else { throw TestFailure("cannot start \(program): \(String(cString: strerror(rc)))") }
    pid = child
  }

  /// Sends `signal` to the whole group.
  public func signalGroup(_ signal: Int32) { kill(-pid, signal) }

  /// Waits for the group's leader and returns its raw wait status.
  @discardableResult
  public func wait() -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    reaped = true
    return status
  }

  deinit {
    if !reaped {
      kill(-pid, SIGKILL)
      var status: Int32 = 0
      waitpid(pid, &status, 0)
    }
  }
}
