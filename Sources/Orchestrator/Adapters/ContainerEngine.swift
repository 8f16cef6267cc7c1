import Foundation
import TaskQueue

/// What a task's container is made of.
public struct ContainerRequest: Sendable {
  public var name: String
  public var taskID: String
  public var repository: String
  /// The main repository's git directory, mounted at its own path (the worktree's `.git` file points there).
  public var gitDirectory: String
  public var worktree: String
  public var hostPort: Int
  public var containerPort: Int
  public var image: String
  public var environment: [String: String]
}

/// The labels that mark a container as ours; cleanup removes nothing without them.
public enum ContainerLabel {
  public static let managed = "git-taskq.managed"
  public static let task = "git-taskq.task"
  public static let repository = "git-taskq.repo"
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

  /// `task-<id>-<created-compact>`: unique per task and attempt history, as the seed named them.
  public static func containerName(for record: TaskRecord) -> String {
    let created = Timestamp.parse(record.createdAt).map(Timestamp.compact) ?? "0"
    return "task-\(record.id)-\(created)"
  }

  /// The argv of `docker run` for `request` (published on 127.0.0.1 only).
  public func runArguments(_ request: ContainerRequest) -> [String] {
    var args = [
      "run", "-d", "--name", request.name,
      "--label", "\(ContainerLabel.managed)=true",
      "--label", "\(ContainerLabel.task)=\(request.taskID)",
      "--label", "\(ContainerLabel.repository)=\(request.repository)",
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
    let result = try ProcessRunner.run(spec, shouldStop: shouldStop)
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
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "true"
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
    let value = result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    return value.isEmpty || value == "<no value>" ? nil : value
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
    return result.stdoutText.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
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
