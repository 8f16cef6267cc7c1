import Foundation
import Git
import Orchestrator

/// A temporary directory, removed when the value is released.
public final class ScratchDirectory {
  public let path: String

  public init(prefix: String = "taskq-test") throws {
    let base = ProcessInfo.processInfo.environment["TMPDIR"] ?? "/tmp"
    var template = Array("\(base)/\(prefix).XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
    // Resolve symlinks so paths compare equal to what git reports.
    path = URL(fileURLWithPath: String(cString: made)).resolvingSymlinksInPath().path
  }

  deinit {
    if ProcessInfo.processInfo.environment["TASKQ_KEEP_SCRATCH"] == nil {
      try? FileManager.default.removeItem(atPath: path)
    }
  }

  /// Writes a file below this directory (creating parents) and returns its path.
  @discardableResult
  public func write(_ relative: String, _ text: String, executable: Bool = false) throws -> String {
    let file = path + "/" + relative
    try FileManager.default.createDirectory(
      atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try text.write(toFile: file, atomically: true, encoding: .utf8)
    if executable { chmod(file, 0o755) }
    return file
  }
}

/// A real git repository in a scratch directory, on branch `main` with one commit.
public final class ScratchRepository {
  public let directory: ScratchDirectory
  public var path: String { directory.path + "/repo" }

  public init(name: String = "repo") throws {
    directory = try ScratchDirectory()
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try git("init", "-q", "-b", "main")
    try git("config", "user.name", "Test User")
    try git("config", "user.email", "test@example.com")
    try "# scratch\n".write(toFile: path + "/README.md", atomically: true, encoding: .utf8)
    try git("add", "README.md")
    try git("commit", "-q", "-m", "initial commit")
  }

  /// Runs the git CLI in the repository and returns its stdout (trimmed); throws when it fails.
  @discardableResult
  public func git(_ arguments: String..., in directory: String? = nil) throws -> String {
    try Git.run(arguments, in: directory ?? path)
  }

  /// The OID of `refs/taskq/queue`, or `nil` when it does not exist.
  public func queueTip() throws -> String? {
    let result = try ProcessRunner.run(
      ProcessSpec("git", ["rev-parse", "--verify", "-q", "refs/taskq/queue"], directory: path, timeout: 30))
    return result.succeeded ? result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) : nil
  }

  public func open() throws -> Repository { try Repository.open(at: path) }
}

/// Runs the git CLI.
public enum Git {
  @discardableResult
  public static func run(_ arguments: [String], in directory: String, environment: [String: String] = [:]) throws
    -> String
  {
    let result = try ProcessRunner.run(
      ProcessSpec("git", arguments, environment: environment, directory: directory, timeout: 60))
    guard result.succeeded else {
      throw TestFailure("git \(arguments.joined(separator: " ")) failed: \(result.stderrText)")
    }
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
  }
}

public struct TestFailure: Error, CustomStringConvertible {
  public var description: String
  public init(_ description: String) { self.description = description }
}
