import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a task's container is made of.
public struct ContainerRequest: Sendable {
  public var name: String
  public var taskID: String
  public var repository: String
  /// The queue's identity (``ContainerEngine/queueIdentity(commonDirectory:)``), for the ownership label.
  public var queue: String
  /// The main repository's git directory, mounted at its own path (the worktree's `.git` file points there).
  public var gitDirectory: String
  public var worktree: String
  public var hostPort: Int
  public var containerPort: Int
  public var image: String
  public var environment: [String: String]
}

/// The labels that mark a container as ours; cleanup removes nothing without them.
///
/// A container is ours only when its name is one this queue gives the task (`task-<id>-<created>-<queue tag>`,
/// or `task-<id>-<created>` before the tag) and
/// its labels carry `managed`, that task id and this queue (its git directory): two repositories with the
/// same task ids, or a look-alike container of someone else, are never touched.
public enum ContainerLabel {
  public static let managed = "git-taskq.managed"
  public static let task = "git-taskq.task"
  public static let repository = "git-taskq.repo"
  public static let queue = "git-taskq.queue"
}

/// The container engine, behind the `docker` CLI (or a compatible one such as `podman`).
///
/// Every call is an argv array with a timeout; nothing reaches a shell.
public struct ContainerEngine: Sendable {
  public var program: String
  public var timeout: Double

  public init(program: String, timeout: Double) {
    self.program = program
    self.timeout = timeout
  }

  /// `task-<id>-<created-compact>-<queue tag>`: unique per task and attempt history, as the seed named them
  /// (`task-<id>-<created>`), and per queue: two repositories served by one engine may each have a task of
  /// the same id created in the same second, and `docker run` refuses a name in use. The tag is 8 hex digits
  /// of a hash of the queue's identity (``queueIdentity(commonDirectory:)``), so it is the same at every
  /// start and cleanup of this queue.
  public static func containerName(for record: TaskRecord, queue: String) -> String {
    "\(legacyContainerName(for: record))-\(queueTag(queue))"
  }

  /// The name the versions before the queue tag gave: cleanup still recognises it (with our labels for
  /// this task of this queue, as any name), no start gives it.
  static func legacyContainerName(for record: TaskRecord) -> String {
    let created = Timestamp.parse(record.createdAt).map(Timestamp.compact) ?? "0"
    return "task-\(record.id)-\(created)"
  }

  /// The names this queue gives, or gave, `record`'s container.
  public static func containerNames(for record: TaskRecord, queue: String) -> [String] {
    [containerName(for: record, queue: queue), legacyContainerName(for: record)]
  }

  /// 8 lowercase hex digits of the FNV-1a hash of `queue`: stable across runs and machines (not Swift's
  /// seeded `Hasher`); not a secret, ownership is the labels' job.
  static func queueTag(_ queue: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in queue.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
    let folded = UInt32(truncatingIfNeeded: hash ^ (hash >> 32))
    let hex = String(folded, radix: 16)
    return String(repeating: "0", count: 8 - hex.count) + hex
  }

  /// The value of the queue label: the queue repository's git directory, without a trailing slash.
  public static func queueIdentity(commonDirectory: String) -> String {
    Paths.trimmingTrailingSlashes(commonDirectory)
  }

  /// Whether container `name` is this queue's container of `record`: a name this queue gives (or gave) it,
  /// and the labels managed, task id and queue. Three `inspect` calls at most; `false` when the engine
  /// cannot say.
  public func isOurs(_ name: String, of record: TaskRecord, queue: String) -> Bool {
    Self.containerNames(for: record, queue: queue).contains(name) && isOurs(name, taskID: record.id, queue: queue)
  }

  /// Whether container `name` carries our labels for task `taskID` of `queue` (the name is not checked).
  public func isOurs(_ name: String, taskID: String, queue: String) -> Bool {
    label(ContainerLabel.managed, of: name) == "true" && label(ContainerLabel.task, of: name) == taskID
      && label(ContainerLabel.queue, of: name) == queue
  }

  /// Names of the containers labelled as managed by `queue` (running or not), with their task label.
  public func containers(ofQueue queue: String) -> [(name: String, task: String)] {
    guard
      let result = try? ProcessRunner.run(
        ProcessSpec(
          program,
          [
            "ps", "-a", "--filter", "label=\(ContainerLabel.managed)=true", "--filter",
            "label=\(ContainerLabel.queue)=\(queue)", "--format", "{{.Names}}",
          ], timeout: timeout)),
      result.succeeded
    else { return [] }
    return result.stdoutText.split(separator: "\n").map { $0.trimmingSpaces() }
      .filter { !$0.isEmpty }
      .compactMap { name in label(ContainerLabel.task, of: name).map { (name, $0) } }
  }

  /// Why the engine cannot be used, or `nil` when it answers (`version` with a timeout of `seconds`).
  public func unavailability(timeout seconds: Double = 10) -> String? {
    let spec = ProcessSpec(program, ["version", "--format", "{{.Server.Version}}"], timeout: seconds)
    guard let result = try? ProcessRunner.run(spec) else { return "'\(program)' cannot be started" }
    if result.succeeded { return nil }
    if result.ending == .timedOut { return "'\(program) version' did not answer within \(Int(seconds)) s" }
    let line =
      (result.stderrText + result.stdoutText).split(separator: "\n").map {
        $0.trimmingSpaces()
      }.last { !$0.isEmpty } ?? result.endingDescription
    return "the container engine does not answer ('\(program) version': \(line))"
  }

  /// The argv of `docker run` for `request` (published on 127.0.0.1 only).
  public func runArguments(_ request: ContainerRequest) -> [String] {
    // `--init`: a small init as PID 1 passes SIGTERM on to the server (PID 1 itself ignores signals it has
    // no handler for, so `docker stop` would wait out its grace) and reaps what `docker exec` leaves.
    var args = [
      "run", "-d", "--init", "--name", request.name,
      "--label", "\(ContainerLabel.managed)=true",
      "--label", "\(ContainerLabel.task)=\(request.taskID)",
      "--label", "\(ContainerLabel.repository)=\(request.repository)",
      "--label", "\(ContainerLabel.queue)=\(request.queue)",
      "-p", "127.0.0.1:\(request.hostPort):\(request.containerPort)",
      "-v", "\(request.worktree):\(request.worktree)",
      "-v", "\(request.gitDirectory):\(request.gitDirectory)",
      "-w", request.worktree,
    ]
    // Only the names: `docker run -e NAME` takes the value from the CLI's own environment, so no value
    // (a server password) ever appears in an argv, a process listing or a failure report.
    for key in request.environment.keys.sorted() {
      args += ["-e", key]
    }
    args += [request.image, "serve", "--hostname", "0.0.0.0", "--port", String(request.containerPort)]
    return args
  }

  /// Starts the container; throws ``StageFailure`` with the engine's output when it does not start.
  ///
  /// `shouldStop`, polled while the engine works, ends a slow start (an image pull can take minutes) early.
  public func start(_ request: ContainerRequest, shouldStop: (() -> Bool)? = nil) throws -> ProcessResult {
    let spec = ProcessSpec(program, runArguments(request), environment: request.environment, timeout: timeout)
    // Guarded: if the worker dies while the engine works (a pull can take minutes), the container goes too.
    let guarded = AgentGuard.wrap(spec, stopContainer: (program, request.name), removeContainer: true)
    let result = try ProcessRunner.run(guarded, shouldStop: shouldStop)
    guard result.succeeded else {
      throw StageFailure(
        stage: "container", summary: "\(program) run \(result.endingDescription)", spec: spec, result: result)
    }
    return result
  }

  /// `docker exec -w <dir> <container> <argv…>`.
  public func execSpec(container: String, directory: String, _ argv: [String], timeout: Double) -> ProcessSpec {
    ProcessSpec(program, ["exec", "-w", directory, container] + argv, timeout: timeout)
  }

  /// Whether `name` is running; `nil` when the engine does not know it.
  public func isRunning(_ name: String) -> Bool? {
    guard
      let result = try? ProcessRunner.run(
        ProcessSpec(program, ["inspect", "--type", "container", "-f", "{{.State.Running}}", name], timeout: timeout)),
      result.succeeded
    else { return nil }
    return result.stdoutText.trimmingWhitespace() == "true"
  }

  /// The value of one of our labels on container `name`, or `nil`.
  public func label(_ label: String, of name: String) -> String? {
    guard
      let result = try? ProcessRunner.run(
        ProcessSpec(
          program, ["inspect", "--type", "container", "-f", "{{index .Config.Labels \"\(label)\"}}", name],
          timeout: timeout)),
      result.succeeded
    else { return nil }
    let value = result.stdoutText.trimmingWhitespace()
    return value.isEmpty || value == "<no value>" ? nil : value
  }

  /// The labels of each of `names` that exists (running or not), from one `inspect` of them all; `nil`
  /// when the engine cannot say. A name that does not exist is absent from the result.
  ///
  /// Values are trimmed as ``label(_:of:)`` trims them, so ``isOurs(labels:taskID:queue:)`` on a result
  /// decides as ``isOurs(_:taskID:queue:)`` does, with one process instead of three per container.
  public func labels(of names: [String]) -> [String: [String: String]]? {
    guard !names.isEmpty else { return [:] }
    let format = "{{.Name}}{{\"\\t\"}}{{json .Config.Labels}}"
    guard
      let result = try? ProcessRunner.run(
        ProcessSpec(program, ["inspect", "--type", "container", "-f", format] + names, timeout: timeout))
    else { return nil }
    // Exit status 1 when some of the names do not exist: the others are printed all the same.
    guard result.succeeded || result.ending == .exited(1) else { return nil }
    var found: [String: [String: String]] = [:]
    for line in result.stdout.split(separator: UInt8(ascii: "\n")) {
      guard let tab = line.firstIndex(of: UInt8(ascii: "\t")) else { continue }
      var name = String(decoding: line[..<tab], as: UTF8.self)
      if name.hasPrefix("/") { name.removeFirst() }
      guard names.contains(name) else { continue }
      // `null` when the container has no labels; anything unreadable counts as no labels (not ours).
      let object = try? JSONDecoder().decode([String: String]?.self, from: Data(line[(tab + 1)...]))
      var labels: [String: String] = [:]
      for (key, value) in (object ?? nil) ?? [:] {
        let text = value.trimmingWhitespace()
        guard !text.isEmpty, text != "<no value>" else { continue }
        labels[key] = text
      }
      found[name] = labels
    }
    return found
  }

  /// Whether `labels` (of ``labels(of:)``) are ours for task `taskID` of `queue`.
  public static func isOurs(labels: [String: String], taskID: String, queue: String) -> Bool {
    labels[ContainerLabel.managed] == "true" && labels[ContainerLabel.task] == taskID
      && labels[ContainerLabel.queue] == queue
  }

  /// Names of containers (running or not) labelled as task `id`'s, matched exactly, never by substring.
  public func containers(forTask id: String) -> [String] {
    guard
      let result = try? ProcessRunner.run(
        ProcessSpec(
          program,
          ["ps", "-a", "--filter", "label=\(ContainerLabel.task)=\(id)", "--format", "{{.Names}}"],
          timeout: timeout)),
      result.succeeded
    else { return [] }
    return result.stdoutText.split(separator: "\n").map { $0.trimmingSpaces() }
      .filter { !$0.isEmpty }
  }

  /// Stops container `name` (its server and anything exec'd in it), keeping it for inspection.
  @discardableResult
  public func stop(_ name: String, grace: Int = 3) throws -> ProcessResult {
    try ProcessRunner.run(ProcessSpec(program, ["stop", "-t", String(grace), name], timeout: timeout))
  }

  /// Removes container `name` (`rm -f`). Returns the result; a container that does not exist is not an error.
  @discardableResult
  public func remove(_ name: String) throws -> ProcessResult {
    try ProcessRunner.run(ProcessSpec(program, ["rm", "-f", name], timeout: timeout))
  }

  /// The last lines of the container's log, or `nil`.
  public func logTail(_ name: String, lines: Int = 40) -> String? {
    guard
      let result = try? ProcessRunner.run(
        ProcessSpec(program, ["logs", "--tail", String(lines), name], timeout: min(timeout, 15)))
    else { return nil }
    let text = result.stdoutText + result.stderrText
    return text.isEmpty ? nil : text
  }
}

/// A stage that did not succeed: what ran, how it ended, and why, for the failure report.
public struct StageFailure: Error, CustomStringConvertible {
  public var stage: String
  public var summary: String
  public var spec: ProcessSpec?
  public var result: ProcessResult?
  public var detail: String?

  public init(
    stage: String, summary: String, spec: ProcessSpec? = nil, result: ProcessResult? = nil, detail: String? = nil
  ) {
    self.stage = stage
    self.summary = summary
    self.spec = spec
    self.result = result
    self.detail = detail
  }

  public var description: String { "\(stage): \(summary)" }
}
