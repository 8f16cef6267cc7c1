import Foundation
import Git
import Orchestrator
import TaskQueue

#if canImport(Glibc)
import Glibc
#endif

/// One call of a fake program (`docker`, `opencode`, `openchamber`), as the fakes record it in `FAKE_LOG`.
public struct FakeCall: Sendable, Equatable, CustomStringConvertible {
  public var program: String
  public var pid: Int32
  /// The working directory of the call.
  public var directory: String
  /// The variables of git-taskq's contract that were set (`OPENCODE_HOST`, `TASKQ_TASK_ID`, …).
  public var environment: [String: String]
  /// argv without the program.
  public var arguments: [String]

  public var description: String { ([program] + arguments).joined(separator: " ") }
}

/// A container as the fake `docker` keeps it (`$FAKE_STATE/containers/<name>/`).
public struct FakeContainer: Sendable, Equatable {
  public var name: String
  public var labels: [String: String]
  public var hostPort: Int?
  /// The container's "main process": the health server (or a stand-in), in its own session.
  public var pid: Int32?
  public var image: String
  public var isRunning: Bool
}

/// A scratch repository wired to the fake `docker`, `opencode` and `openchamber`, for driving the real
/// `git-taskq` binary end to end without touching the real home, engine or ports.
///
/// Every world gets its own `HOME`, worktrees root, fake-engine state, call log and block of loopback
/// ports (so tests running in parallel never race for a port). `deinit` kills whatever the fakes left
/// running (health servers, hanging agents, background runs). Confine a world to one test.
public final class FakeWorld {
  public let repository: ScratchRepository
  /// The directory holding the fakes (first on `PATH`).
  public let bin: String
  public let home: String
  public let worktreesRoot: String
  /// `FAKE_STATE`: containers and hang markers of the fakes.
  public let state: String
  /// `FAKE_LOG`: every call of a fake.
  public let log: String
  /// `taskq.portRange` of this world.
  public let ports: ClosedRange<Int>
  /// Extra variables for every run of this world, such as `FAKE_OPENCODE_FAIL`.
  public var environment: [String: String] = [:]
  private var background: [BackgroundRun] = []

  public var path: String { repository.path }

  /// The fixtures' `bin` directory in the source tree (found from this file, so a clean clone works).
  public static let fixtures: String = {
    let here = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    return here.deletingLastPathComponent().appendingPathComponent("EndToEndTests/Fixtures/bin").path
  }()

  /// The repository's shipped demo agent (`scripts/demo-agent`).
  public static let demoAgent: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("scripts/demo-agent").path
  }()

  /// Makes the scratch repository, copies the fakes in and configures `taskq.*` for this world.
  ///
  /// - Parameter portCount: how many host ports `taskq.portRange` spans.
  /// - Throws: when a fixture is missing or git cannot be configured.
  public init(portCount: Int = 12) throws {
    repository = try ScratchRepository()
    let root = repository.directory.path
    bin = root + "/fakes"
    home = root + "/home"
    worktreesRoot = root + "/worktrees"
    state = root + "/fake-state"
    log = root + "/fake-calls.log"
    ports = PortBlocks.shared.next(count: portCount)
    let files = FileManager.default
    for directory in [bin, home, home + "/.config", worktreesRoot, state] {
      try files.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }
    // Copied (and made executable here) so the fakes work whatever mode a checkout gave them.
    for name in ["docker", "opencode", "openchamber", "fake-common.bash", "fake-opencode-server.py"] {
      let source = Self.fixtures + "/" + name
      guard files.fileExists(atPath: source) else { throw TestFailure("fixture \(source) is missing") }
      try files.copyItem(atPath: source, toPath: bin + "/" + name)
      chmod(bin + "/" + name, name.contains(".") ? 0o644 : 0o755)
    }
    try config("taskq.worktreesRoot", worktreesRoot)
    try config("taskq.reposRoot", home + "/repos")
    try config("taskq.portRange", "\(ports.lowerBound)-\(ports.upperBound)")
    try config("taskq.image", "example.test/opencode:fake")
    try config("taskq.healthTimeout", "20")
    try config("taskq.setupTimeout", "20")
    try config("taskq.planTimeout", "30")
    try config("taskq.buildTimeout", "30")
  }

  deinit {
    for run in background { run.kill() }
    for container in (try? containers()) ?? [] {
      if let pid = container.pid, pid > 1 {
        Glibc.kill(-pid, SIGKILL)
        Glibc.kill(pid, SIGKILL)
      }
    }
    let hang = state + "/hang"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: hang)) ?? [] {
      guard let pid = Self.readPID(hang + "/" + name), pid > 1 else { continue }
      if name.hasSuffix(".agent") { Glibc.kill(-pid, SIGKILL) }
      Glibc.kill(pid, SIGKILL)
    }
  }

  // MARK: Running git-taskq

  /// `git config KEY VALUE` in the repository.
  public func config(_ key: String, _ value: String) throws {
    try repository.git("config", key, value)
  }

  /// The whole environment of a run: this process's without `TASKQ_*`, `FAKE_*`, `GIT_*` and
  /// `OPENCODE_*` (so a developer's settings cannot leak in), the fakes first on `PATH`, then the binary,
  /// then the system's, a scratch `HOME`, and the world's `environment` and `extra` on top.
  public func runEnvironment(_ extra: [String: String] = [:]) -> [String: String] {
    let inherited = ProcessInfo.processInfo.environment
    var env = inherited.filter { key, _ in
      !["TASKQ_", "FAKE_", "GIT_", "OPENCODE_"].contains { key.hasPrefix($0) }
    }
    let system = inherited["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
    env.merge([
      "PATH": "\(bin):\(Taskq.binaryDirectory):\(system)",
      "HOME": home,
      "XDG_CONFIG_HOME": home + "/.config",
      "GIT_CONFIG_NOSYSTEM": "1",
      "FAKE_LOG": log,
      "FAKE_STATE": state,
      "NO_COLOR": "1",
    ]) { _, new in new }
    env.merge(environment) { _, new in new }
    env.merge(extra) { _, new in new }
    return env
  }

  /// Runs `program ARGS`, such as the fake `docker`, in the repository with this world's environment only.
  @discardableResult
  public func execute(
    _ program: String, _ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 90
  ) throws -> ProcessResult {
    try ProcessRunner.run(
      ProcessSpec(
        program, arguments, environment: runEnvironment(extra), inheritEnvironment: false, directory: path,
        timeout: timeout))
  }

  /// Runs `git-taskq ARGS` in the repository and waits for it.
  @discardableResult
  public func taskq(_ arguments: String..., environment extra: [String: String] = [:], timeout: Double = 90)
    throws -> ProcessResult
  {
    try taskq(arguments, environment: extra, timeout: timeout)
  }

  /// Runs `git-taskq ARGS` in the repository and waits for it.
  @discardableResult
  public func taskq(_ arguments: [String], environment extra: [String: String] = [:], timeout: Double = 90)
    throws -> ProcessResult
  {
    try execute(Taskq.binary, arguments, environment: extra, timeout: timeout)
  }

  /// Starts `git-taskq ARGS` in the background (through ``ProcessRunner`` on a thread of its own), so a test
  /// can watch the queue and signal the process meanwhile.
  public func start(_ arguments: String..., environment extra: [String: String] = [:], timeout: Double = 120)
    throws -> BackgroundRun
  {
    let pidFile = state + "/background-\(UUID().uuidString).pid"
    // `sh` writes its pid and execs the binary, which keeps that pid.
    let spec = ProcessSpec(
      "/bin/sh",
      ["-c", "echo $$ > \"$0.tmp\" && mv \"$0.tmp\" \"$0\" && exec \"$@\"", pidFile, Taskq.binary] + arguments,
      environment: runEnvironment(extra), inheritEnvironment: false, directory: path, timeout: timeout)
    let run = BackgroundRun(spec: spec)
    background.append(run)
    try waitUntil("the background run to start", timeout: 20) { Self.readPID(pidFile) != nil || run.isFinished }
    guard let pid = Self.readPID(pidFile) else {
      throw TestFailure("background git-taskq did not start: \(run.peek()?.summary ?? "")")
    }
    run.pid = pid
    return run
  }

  // MARK: Reading the world

  /// The queue's record of `id`.
  public func record(_ id: String) throws -> TaskRecord {
    guard let record = try repository.store().snapshot().record(id) else {
      throw TestFailure("task \(id) is not in the queue")
    }
    return record
  }

  /// Every record of the queue.
  public func records() throws -> [TaskRecord] { try repository.store().snapshot().records() }

  /// The queue's operations for `task` (all tasks when `nil`), oldest first.
  public func history(task: String? = nil) throws -> [HistoryEntry] {
    try repository.store().history(task: task).reversed()
  }

  /// The recorded calls of the fakes, in order, optionally of one program only.
  public func calls(_ program: String? = nil) throws -> [FakeCall] {
    guard FileManager.default.fileExists(atPath: log) else { return [] }
    let text = try String(contentsOfFile: log, encoding: .utf8)
    var calls: [FakeCall] = []
    for record in text.components(separatedBy: "\u{1E}\n") where !record.isEmpty {
      var fields = record.components(separatedBy: "\u{1F}")
      guard fields.last == "" else { throw TestFailure("malformed fake log record: \(record)") }
      fields.removeLast()
      guard fields.count >= 4, let pid = Int32(fields[1]), let count = Int(fields[3]), fields.count >= 4 + count
      else { throw TestFailure("malformed fake log record: \(record)") }
      var environment: [String: String] = [:]
      for entry in fields[4..<(4 + count)] {
        let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
      }
      let call = FakeCall(
        program: fields[0], pid: pid, directory: fields[2], environment: environment,
        arguments: Array(fields[(4 + count)...]))
      if program == nil || call.program == program { calls.append(call) }
    }
    return calls
  }

  /// The fake docker's calls of one subcommand (`run`, `exec`, `rm`, …).
  public func dockerCalls(_ subcommand: String) throws -> [FakeCall] {
    try calls("docker").filter { $0.arguments.first == subcommand }
  }

  /// The containers the fake docker knows now.
  public func containers() throws -> [FakeContainer] {
    let directory = state + "/containers"
    guard FileManager.default.fileExists(atPath: directory) else { return [] }
    return try FileManager.default.contentsOfDirectory(atPath: directory).sorted().compactMap(container(named:))
  }

  /// The fake docker's container `name`, or `nil`.
  public func container(named name: String) -> FakeContainer? {
    let directory = state + "/containers/" + name
    guard FileManager.default.fileExists(atPath: directory + "/labels") else { return nil }
    func read(_ file: String) -> String {
      ((try? String(contentsOfFile: directory + "/" + file, encoding: .utf8)) ?? "")
        .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    var labels: [String: String] = [:]
    for line in read("labels").split(separator: "\n") {
      let parts = line.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      labels[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
    }
    let pid = Int32(read("pid"))
    return FakeContainer(
      name: name, labels: labels, hostPort: Int(read("port")), pid: pid, image: read("image"),
      isRunning: pid.map(isProcessAlive) ?? false)
  }

  /// The pids a hanging fake agent wrote for task `id`'s `command`: the agent (its process group leader)
  /// and its child `sleep`; `nil` until both exist.
  public func hangingAgent(_ id: String, _ command: String) -> (agent: Int32, child: Int32)? {
    let base = state + "/hang/\(id).\(command)"
    guard let agent = Self.readPID(base + ".agent"), let child = Self.readPID(base + ".child") else { return nil }
    return (agent, child)
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

  /// Waits until task `id` has `status`.
  public func waitForStatus(_ id: String, _ status: TaskStatus, timeout: Double = 30) throws {
    try waitUntil("\(id) to be \(status.rawValue)", timeout: timeout) { try record(id).status == status }
  }

  static func readPID(_ path: String) -> Int32? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
  }
}

/// Whether process `pid` exists and is not a zombie.
public func isProcessAlive(_ pid: Int32) -> Bool {
  guard pid > 0, kill(pid, 0) == 0 || errno == EPERM else { return false }
  guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
  guard let close = stat.range(of: ") ", options: .backwards) else { return true }
  return stat[close.upperBound...].first != "Z"
}

/// A `git-taskq` started in the background (``FakeWorld/start(_:environment:timeout:)``,
/// ``Machine/start(_:timeout:)``), waited for on a thread of its own.
public final class BackgroundRun: @unchecked Sendable {
  /// The pid of the `git-taskq` process.
  public internal(set) var pid: Int32 = 0
  private let lock = NSLock()
  private var outcome: Result<ProcessResult, any Error>?
  private let finished = DispatchSemaphore(value: 0)

  init(spec: ProcessSpec) {
    let thread = Thread { [self] in
      let result = Result { try ProcessRunner.run(spec) }
      lock.withLock { outcome = result }
      finished.signal()
    }
    thread.start()
  }

  public var isFinished: Bool { lock.withLock { outcome != nil } }

  func peek() -> ProcessResult? { lock.withLock { try? outcome?.get() } }

  /// Sends `signal` to the process (only to it: its agents live in process groups of their own).
  public func signal(_ signal: Int32) {
    if pid > 0 && !isFinished { Glibc.kill(pid, signal) }
  }

  /// Sends SIGKILL to the process only (its agents live in process groups of their own).
  public func killNow() { signal(SIGKILL) }

  /// Waits for the process to end; throws when it has not after `timeout` seconds.
  public func wait(timeout: Double = 60) throws -> ProcessResult {
    if finished.wait(timeout: .now() + timeout) == .timedOut {
      throw TestFailure("git-taskq (pid \(pid)) still runs after \(timeout) s")
    }
    finished.signal()
    guard let outcome = lock.withLock({ self.outcome }) else { throw TestFailure("git-taskq left no outcome") }
    return try outcome.get()
  }

  func kill() {
    guard pid > 0, !isFinished else { return }
    Glibc.kill(-pid, SIGKILL)
    Glibc.kill(pid, SIGKILL)
    _ = finished.wait(timeout: .now() + 10)
    finished.signal()
  }
}

/// Hands out disjoint blocks of loopback ports to the worlds of this test process, from a base that
/// depends on the pid (so two test processes rarely meet), below the kernel's ephemeral range.
final class PortBlocks: @unchecked Sendable {
  static let shared = PortBlocks()
  private let lock = NSLock()
  private var next: Int

  private init() {
    next = 20_000 + Int(getpid() % 300) * 40
  }

  func next(count: Int) -> ClosedRange<Int> {
    lock.withLock {
      if next + count > 32_000 { next = 20_000 }
      let block = next...(next + count - 1)
      next += count
      return block
    }
  }
}

extension FakeWorld {
  /// The latest failure report of `id`, as `git show <error_file>` prints it.
  public func errorReport(_ id: String) throws -> String {
    let record = try record(id)
    guard let file = record.errorFile else { throw TestFailure("task \(id) has no error_file") }
    return try repository.git("show", file)
  }

  /// The worktrees git itself lists (`git worktree list --porcelain`), main working directory included.
  public func gitWorktrees() throws -> [String] {
    try repository.git("worktree", "list", "--porcelain").split(separator: "\n")
      .filter { $0.hasPrefix("worktree ") }.map { String($0.dropFirst("worktree ".count)) }
  }

  /// The default worktree path of task `id`: `<worktrees root>/<repo name>/<id>`.
  public func worktree(_ id: String) -> String { worktreesRoot + "/repo/" + id }

  /// The queue's identity on container labels (`git-taskq.queue`): its git directory, as git names it.
  public func queueIdentity() throws -> String {
    var directory = try repository.git("rev-parse", "--path-format=absolute", "--git-common-dir")
    while directory.hasSuffix("/") || directory.hasSuffix("\n") { directory.removeLast() }
    return directory
  }

  /// The container name git-taskq gives `record` in this world's queue: `task-<id>-<created, compact>-<tag>`,
  /// the tag being 8 hex digits of the FNV-1a hash of the queue's git directory (computed here from the
  /// record's `created_at` and git's own answer for the directory, independently of the code under test).
  public func containerName(_ record: TaskRecord) throws -> String {
    let created = record.createdAt.prefix(19).filter { $0 != "-" && $0 != ":" }
    let directory = try queueIdentity()
    var hash: UInt64 = 14_695_981_039_346_656_037  // FNV-1a offset basis
    for byte in directory.utf8 { hash = (hash ^ UInt64(byte)) &* 1_099_511_628_211 }
    let tag = String(format: "%08x", UInt32(truncatingIfNeeded: hash ^ (hash >> 32)))
    return "task-\(record.id)-\(created)Z-\(tag)"
  }

  /// Where git-taskq keeps task `id`'s server password: `.git/taskq/secrets/<id>`.
  public func secretPath(_ id: String) -> String { path + "/.git/taskq/secrets/" + id }

  /// Task `id`'s server password, or `nil` when there is none on this machine.
  public func serverPassword(_ id: String) -> String? {
    (try? String(contentsOfFile: secretPath(id), encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// `GET /global/health` on task `id`'s server, with its password when it has one.
  public func health(_ id: String) throws -> Int? {
    guard let port = try record(id).port else { return nil }
    let authorization = serverPassword(id).map { "Basic " + Data("opencode:\($0)".utf8).base64EncodedString() }
    return Loopback.httpStatus(port: port, path: "/global/health", timeout: 2, authorization: authorization)
  }

  /// This machine's host name, as git-taskq writes it in `host:pid`.
  public static var hostName: String {
    var buffer = [CChar](repeating: 0, count: 256)
    guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }
}
