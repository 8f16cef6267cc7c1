import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A one-line refusal of `review`.
public struct ReviewError: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// `review`: a task in review, checked ready on this machine, and how to open it in the review UI.
///
/// ``prepare(id:in:)`` makes every check before anything starts: the task is in review, its record is
/// trusted here (it may come from a remote), its worktree exists, its container runs and its OpenCode
/// server answers.
public struct ReviewLaunch {
  public var taskID: String
  public var worktree: String
  /// `http://127.0.0.1:<port>`, the task's OpenCode server.
  public var url: String
  /// The server's password on this machine, when the server has one.
  public var password: String?
  /// Where that password is kept (`<git common dir>/taskq/secrets/<id>`).
  public var secretFile: String
  /// The review UI (taskq.reviewProgram).
  public var program: String

  public init(
    taskID: String, worktree: String, url: String, password: String?, secretFile: String, program: String
  ) {
    self.taskID = taskID
    self.worktree = worktree
    self.url = url
    self.password = password
    self.secretFile = secretFile
    self.program = program
  }

  /// Checks that task `id` can be reviewed here.
  ///
  /// - Throws: ``ReviewError`` (one line saying what is missing and how to fix it), ``QueueError``.
  public static func prepare(id: String, in workspace: QueueWorkspace) throws -> ReviewLaunch {
    try TaskID.validate(id)
    let settings = try RunSettings(workspace.settings)
    let record = try workspace.store.snapshot().existing(id)
    guard record.status == .review else {
      throw QueueError.illegalTransition(id: record.id, command: "review", status: record.status, needs: [.review])
    }
    // The record may come from a remote: check it before looking at any path, container or port it names.
    let policy = RecordPolicy(settings: settings, queueRepository: workspace.queueRepository)
    if let refusal = policy.refusal(record, for: .review) { throw ReviewError(refusal) }
    guard let worktree = record.worktreePath, FileManager.default.fileExists(atPath: worktree) else {
      throw ReviewError("task '\(record.id)' has no worktree on this machine (it was cleaned up, or ran elsewhere)")
    }
    guard let port = record.port, let container = record.container else {
      throw ReviewError(
        "task '\(record.id)' ran on the local runtime: there is no server to attach; inspect it with 'git -C \(worktree) log -p \(record.base)..'"
      )
    }
    let engine = ContainerEngine(program: settings.containerProgram, timeout: settings.setupTimeout)
    guard ProcessRunner.resolve(settings.containerProgram) != nil else {
      throw ReviewError("'\(settings.containerProgram)' is not on PATH (install it, or set taskq.containerProgram)")
    }
    guard engine.isRunning(container) == true else {
      throw ReviewError(
        "container '\(container)' of task '\(record.id)' is not running (start it with '\(settings.containerProgram) start \(container)', or retry the task)"
      )
    }
    let secrets = ServerSecrets(commonDirectory: workspace.commonDirectory)
    let password = secrets.existing(for: record.id)
    guard
      Loopback.httpStatus(
        port: port, path: "/global/health", timeout: 3, authorization: password.map(ServerSecrets.authorization))
        == 200
    else {
      throw ReviewError(
        "the OpenCode server of task '\(record.id)' does not answer on 127.0.0.1:\(port) (see '\(settings.containerProgram) logs \(container)')"
      )
    }
    return ReviewLaunch(
      taskID: record.id, worktree: worktree, url: "http://127.0.0.1:\(port)", password: password,
      secretFile: try secrets.path(for: record.id), program: settings.reviewProgram)
  }

  /// What the review UI gets on top of this process's environment.
  public var environment: [String: String] {
    var environment = ["OPENCODE_HOST": url, "OPENCODE_SKIP_START": "true"]
    if let password { environment["OPENCODE_SERVER_PASSWORD"] = password }
    return environment
  }

  /// What `review --print` prints: the URL, the command that opens the review, and where the password is.
  public var printedLines: [String] {
    let passwordPart = password == nil ? "" : "OPENCODE_SERVER_PASSWORD=$(cat \(shellQuote(secretFile))) "
    var lines = [
      "url: \(url)",
      "command: cd \(shellQuote(worktree)) && \(passwordPart)OPENCODE_HOST=\(url) OPENCODE_SKIP_START=true \(program)",
    ]
    if password != nil { lines.append("user: opencode  password: in \(secretFile) (this machine only)") }
    return lines
  }

  /// Replaces this process with the review UI, in the worktree, keeping the terminal (it is interactive).
  ///
  /// - Throws: ``ReviewError`` when the program is not on `PATH` or cannot be started; on success it does
  ///   not return.
  public func replaceProcess() throws {
    guard let executable = ProcessRunner.resolve(program) else {
      throw ReviewError(
        "'\(program)' is not on PATH (install OpenChamber, or use 'git taskq review --id \(taskID) --print')")
    }
    guard chdir(worktree) == 0 else { throw ReviewError("cannot enter the worktree '\(worktree)'") }
    for (key, value) in environment { setenv(key, value, 1) }
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(executable), nil]
    execv(executable, argv)
    throw ReviewError("cannot start '\(executable)': \(String(cString: strerror(errno)))")
  }
}
