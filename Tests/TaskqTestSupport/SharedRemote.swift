import Foundation
import Git
import Orchestrator
import TaskQueue

#if canImport(Glibc)
import Glibc
#endif

/// A bare remote (`git init --bare`), a target repository the tasks work on, and clones of the remote that
/// stand for machines, all in one scratch directory.
///
/// The remote keeps a reflog of every ref (`core.logAllRefUpdates=always`), so a test can prove that no
/// update was forced. Every machine has its own `HOME` and git identity; they share the file system, so a
/// task's `repo` (the target) is the same absolute path on each. Confine a value to one test.
public final class SharedRemote {
  public let scratch: ScratchDirectory
  /// The bare repository's path.
  public let bare: String
  /// What the clones' `origin` points at: `file://<bare>` or the plain path.
  public let url: String
  /// A repository with a `main` branch, the `--repo` of the tasks.
  public let target: String
  private var machines: [Machine] = []

  /// - Parameter fileURL: clone through a `file://` URL (git's "smart" local transport) or a plain path.
  /// - Throws: ``TestFailure`` when git cannot make the repositories.
  public init(fileURL: Bool = true) throws {
    scratch = try ScratchDirectory(prefix: "taskq-sync")
    bare = scratch.path + "/remote.git"
    target = scratch.path + "/target"
    url = fileURL ? "file://" + bare : bare
    try Git.run(["init", "-q", "--bare", "-b", "main", bare], in: scratch.path)
    try Git.run(["config", "core.logAllRefUpdates", "always"], in: bare)
    try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
    try Git.run(["init", "-q", "-b", "main"], in: target)
    try Git.run(["config", "user.name", "Target"], in: target)
    try Git.run(["config", "user.email", "target@example.com"], in: target)
    try "# target\n".write(toFile: target + "/README.md", atomically: true, encoding: .utf8)
    try Git.run(["add", "README.md"], in: target)
    try Git.run(["commit", "-q", "-m", "initial commit"], in: target)
    // The remote gets the code too, as a shared repository would have it.
    try Git.run(["push", "-q", bare, "main"], in: target)
  }

  deinit {
    for machine in machines { machine.stopBackground() }
  }

  /// A new clone of the remote: `<scratch>/<name>/repo`, with `HOME` `<scratch>/<name>/home`.
  ///
  /// - Parameters:
  ///   - name: The machine's name (its directory, its git identity).
  ///   - cloneURL: Where to clone from, and the clone's `origin` (e.g. a ``GitDaemon``'s URL of the remote);
  ///     `url` when `nil`.
  /// - Returns: The machine.
  /// - Throws: ``TestFailure`` when git cannot clone.
  public func machine(_ name: String, cloneURL: String? = nil) throws -> Machine {
    let machine = try Machine(name: name, root: scratch.path + "/" + name, cloneFrom: cloneURL ?? url)
    machines.append(machine)
    return machine
  }

  /// `count` machines cloned through `cloneURL` (a server's URL), `<prefix>1`…`<prefix>N`, each under a host
  /// name of its own (its name) when `unshare --uts` is allowed, running the demo agent locally.
  public func demoMachines(_ count: Int, prefix: String, cloneURL: String) throws -> [Machine] {
    try (1...count).map { index in
      let machine = try self.machine("\(prefix)\(index)", cloneURL: cloneURL)
      // Without a UTS namespace (not root, no user namespaces), the workers still differ by clone and pid.
      if canSetHostName { machine.hostname = machine.name }
      try machine.runDemoAgentLocally()
      return machine
    }
  }

  // MARK: The remote's side

  /// The remote's `refs/taskq/queue`, or `nil` when it has none.
  public func queueTip() throws -> String? {
    let result = try ProcessRunner.run(
      ProcessSpec("git", ["rev-parse", "--verify", "-q", Layout.refName], directory: bare, timeout: 30))
    return result.succeeded ? result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) : nil
  }

  /// Subjects of the remote queue's commits, oldest first.
  public func subjects() throws -> [String] {
    guard try queueTip() != nil else { return [] }
    let out = try Git.run(["log", "--reverse", "--format=%s", Layout.refName], in: bare)
    return out.isEmpty ? [] : out.components(separatedBy: "\n")
  }

  /// The commits of the remote queue that have more than one parent (a merge), which must be none.
  public func mergeCommits() throws -> [String] {
    guard try queueTip() != nil else { return [] }
    let out = try Git.run(["rev-list", "--min-parents=2", Layout.refName], in: bare)
    return out.isEmpty ? [] : out.components(separatedBy: "\n")
  }

  /// Every update of the remote's queue ref, oldest first, from the remote's own reflog.
  public func reflog() throws -> [(old: String, new: String)] {
    let file = bare + "/logs/" + Layout.refName
    guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { line in
      let fields = line.split(separator: " ", maxSplits: 2)
      guard fields.count >= 2 else { return nil }
      return (String(fields[0]), String(fields[1]))
    }
  }

  /// The reflog entries whose new value does not descend from the value before: forced updates.
  public func forcedUpdates() throws -> [String] {
    var forced: [String] = []
    var previous: String?
    for entry in try reflog() {
      let old = entry.old.allSatisfy { $0 == "0" } ? nil : entry.old
      if let expected = previous, old != expected { forced.append("entry \(entry) does not start at \(expected)") }
      if let old {
        let result = try ProcessRunner.run(
          ProcessSpec("git", ["merge-base", "--is-ancestor", old, entry.new], directory: bare, timeout: 30))
        if !result.succeeded { forced.append("\(entry.new) does not descend from \(old)") }
      }
      previous = entry.new
    }
    return forced
  }

  /// Every record of the remote's queue, read with a store of its own.
  public func records() throws -> [TaskRecord] {
    try QueueStore(repository: try Repository.open(at: bare)).snapshot().records()
  }
}

/// A clone of the shared remote standing for one machine: its own directory, `HOME` and git identity.
///
/// `@unchecked Sendable` so a test can run commands on several machines at once from threads: running a
/// command only reads the machine; set `environment` before that.
public final class Machine: @unchecked Sendable {
  public let name: String
  public let path: String
  public let home: String
  /// A scratch directory of this machine (pid files, scripts).
  public let root: String
  /// Extra variables for every run on this machine.
  public var environment: [String: String] = [:]
  /// The host name `git-taskq` runs under on this machine, in a UTS namespace of its own (`unshare --uts`,
  /// see ``canSetHostName``), so that its workers are `<hostname>:<pid>` as on another machine; `nil`: the
  /// host's own.
  public var hostname: String?
  private var background: [BackgroundRun] = []

  init(name: String, root: String, cloneFrom url: String) throws {
    self.name = name
    self.root = root
    path = root + "/repo"
    home = root + "/home"
    try FileManager.default.createDirectory(atPath: home + "/.config", withIntermediateDirectories: true)
    try Git.run(["clone", "-q", url, path], in: root, environment: ["HOME": home])
    try git("config", "user.name", "Machine \(name)")
    try git("config", "user.email", "\(name.lowercased())@example.com")
    // The machines share the target repository and worktree directories of the scratch tree: trust it
    // here, as a team would trust its shared paths (records are untrusted input otherwise).
    try git("config", "--add", "taskq.trustedPath", (root as NSString).deletingLastPathComponent)
  }

  /// This process's environment without `TASKQ_*`, `GIT_*`, `FAKE_*` and `OPENCODE_*` (so a developer's
  /// settings cannot leak in), the binary on `PATH`, this machine's `HOME`, and `environment` on top.
  /// Runs tasks on the local runtime with the demo agent, worktrees under this machine's scratch directory.
  public func runDemoAgentLocally() throws {
    try git("config", "taskq.runtime", "local")
    try git("config", "taskq.agentProgram", FakeWorld.demoAgent)
    try git("config", "taskq.worktreesRoot", root + "/worktrees")
  }

  public func runEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    let inherited = ProcessInfo.processInfo.environment
    var env = inherited.filter { key, _ in !["TASKQ_", "FAKE_", "GIT_", "OPENCODE_"].contains { key.hasPrefix($0) } }
    env.merge([
      "PATH": "\(Taskq.binaryDirectory):\(inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin")",
      "HOME": home,
      "XDG_CONFIG_HOME": home + "/.config",
      "GIT_CONFIG_NOSYSTEM": "1",
      "NO_COLOR": "1",
    ]) { _, new in new }
    env.merge(environment) { _, new in new }
    env.merge(extra) { _, new in new }
    return env
  }

  /// Runs `git-taskq ARGS` in the clone.
  @discardableResult
  public func taskq(_ arguments: String..., environment extra: [String: String] = [:], timeout: Double = 60) throws
    -> ProcessResult
  {
    try taskq(arguments, environment: extra, timeout: timeout)
  }

  @discardableResult
  public func taskq(
    _ arguments: [String], environment extra: [String: String] = [:], input: String? = nil, timeout: Double = 60
  ) throws -> ProcessResult {
    let (program, argv) = command(Taskq.binary, arguments)
    return try ProcessRunner.run(
      ProcessSpec(
        program, argv, environment: runEnvironment(extra), inheritEnvironment: false, directory: path,
        input: input.map { Array($0.utf8) }, timeout: timeout))
  }

  /// `program arguments`, under `hostname` when it is set: `unshare --uts` gives the command a host name of
  /// its own and execs it in the same process (same pid).
  func command(_ program: String, _ arguments: [String]) -> (String, [String]) {
    guard let hostname else { return (program, arguments) }
    return ("unshare", ["--uts", "/bin/sh", "-c", "hostname \"$0\" && exec \"$@\"", hostname, program] + arguments)
  }

  /// Runs `git-taskq ARGS` and throws unless it exits 0.
  @discardableResult
  public func taskqOK(_ arguments: String..., timeout: Double = 60) throws -> ProcessResult {
    let result = try taskq(arguments, timeout: timeout)
    guard result.succeeded else {
      throw TestFailure("\(name): git-taskq \(arguments.joined(separator: " ")): \(result.summary)")
    }
    return result
  }

  /// Runs the git CLI in the clone (with this machine's `HOME`); its stdout, trimmed.
  @discardableResult
  public func git(_ arguments: String...) throws -> String {
    try Git.run(arguments, in: path, environment: ["HOME": home, "GIT_CONFIG_NOSYSTEM": "1"])
  }

  /// The clone's `refs/taskq/queue`, or `nil`.
  public func queueTip() throws -> String? { try ref(Layout.refName) }

  /// The clone's copy of the remote's queue (`refs/taskq/remotes/origin/queue`), or `nil`.
  public func trackingTip(_ remote: String = "origin") throws -> String? {
    try ref(QueueSync.trackingRef(for: remote))
  }

  func ref(_ name: String) throws -> String? {
    let result = try ProcessRunner.run(
      ProcessSpec("git", ["rev-parse", "--verify", "-q", name], directory: path, timeout: 30))
    return result.succeeded ? result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) : nil
  }

  /// Every record of the clone's queue.
  public func records() throws -> [TaskRecord] {
    try QueueStore(repository: try Repository.open(at: path)).snapshot().records()
  }

  /// The clone's record of `id`.
  public func record(_ id: String) throws -> TaskRecord {
    guard let record = try records().first(where: { $0.id == id }) else {
      throw TestFailure("\(name): task \(id) is not in the queue")
    }
    return record
  }

  /// A store on the clone acting as `worker`, for moving tasks in-process (a worker's own commits).
  public func store(worker: String) throws -> QueueStore {
    QueueStore(repository: try Repository.open(at: path), worker: worker)
  }

  /// Subjects of the clone's queue commits, oldest first.
  public func subjects() throws -> [String] {
    guard try queueTip() != nil else { return [] }
    let out = try git("log", "--reverse", "--format=%s", Layout.refName)
    return out.isEmpty ? [] : out.components(separatedBy: "\n")
  }

  /// Starts `git-taskq ARGS` in the background; its pid is known once this returns.
  public func start(_ arguments: String..., timeout: Double = 120) throws -> BackgroundRun {
    let pidFile = root + "/background-\(UUID().uuidString).pid"
    // `sh` writes its pid and execs the binary, which keeps that pid.
    let (program, argv) = command(
      "/bin/sh",
      ["-c", "echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec \"$@\"", pidFile, Taskq.binary] + arguments)
    let spec = ProcessSpec(
      program, argv, environment: runEnvironment(), inheritEnvironment: false, directory: path, timeout: timeout)
    let process = BackgroundRun(spec: spec)
    background.append(process)
    try waitUntil("\(name)'s background git-taskq to start", timeout: 20) {
      readPID(pidFile) != nil || process.isFinished
    }
    guard let pid = readPID(pidFile) else { throw TestFailure("background git-taskq did not start") }
    process.pid = pid
    return process
  }

  func stopBackground() {
    for process in background { process.kill() }
  }
}

/// Polls `condition` every 50 ms until it holds; throws after `timeout` seconds, naming `what`.
public func waitUntil(_ what: String, timeout: Double = 30, _ condition: () throws -> Bool) throws {
  let deadline = monotonicSeconds() + timeout
  while true {
    if try condition() { return }
    if monotonicSeconds() > deadline { throw TestFailure("timed out after \(timeout) s waiting for \(what)") }
    usleep(50_000)
  }
}

/// The pid written in `path`, or `nil`.
public func readPID(_ path: String) -> Int32? {
  guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
  return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
}

/// Runs `body(i)` for `0..<count` on threads of their own, all at once; the results in index order.
public func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) throws -> [T] {
  let results = ResultSlots<T>(count: count)
  let group = DispatchGroup()
  for index in 0..<count {
    group.enter()
    Thread {
      results.set(index, Result { try body(index) })
      group.leave()
    }.start()
  }
  group.wait()
  return try results.values()
}

/// The results of ``concurrently(_:_:)``, one slot per call, behind a lock.
private final class ResultSlots<T>: @unchecked Sendable {
  private let lock = NSLock()
  private var slots: [Result<T, any Error>?]

  init(count: Int) { slots = Array(repeating: nil, count: count) }

  func set(_ index: Int, _ result: Result<T, any Error>) { lock.withLock { slots[index] = result } }

  func values() throws -> [T] {
    try lock.withLock { slots }.map { slot in
      guard let slot else { throw TestFailure("a concurrent call left no result") }
      return try slot.get()
    }
  }
}
