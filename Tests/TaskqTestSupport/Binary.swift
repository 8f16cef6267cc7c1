import Foundation
import Orchestrator

/// The built `git-taskq` binary and a way to run it as a user would.
public enum Taskq {
  /// The binary next to the test bundle (`.build/<config>/git-taskq`), or `$TASKQ_BINARY`.
  public static let binary: String = {
    if let explicit = ProcessInfo.processInfo.environment["TASKQ_BINARY"] { return explicit }
    var directory = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").deletingLastPathComponent()
    for _ in 0..<6 {
      let candidate = directory.appendingPathComponent("git-taskq").path
      if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
      directory = directory.deletingLastPathComponent()
    }
    let fallback = FileManager.default.currentDirectoryPath + "/.build/debug/git-taskq"
    return fallback
  }()

  /// The directory holding the binary, for `PATH` (so `git taskq` finds it).
  public static var binaryDirectory: String { (binary as NSString).deletingLastPathComponent }

  /// Runs `git-taskq ARGS` in `directory`.
  ///
  /// The environment is this process's, with `HOME` pointed at `home` when given (so no user
  /// configuration leaks in), plus `environment`.
  @discardableResult
  public static func run(
    _ arguments: [String], in directory: String, environment: [String: String] = [:], input: String? = nil,
    timeout: Double = 60
  ) throws -> ProcessResult {
    var env = environment
    env["GIT_CONFIG_NOSYSTEM"] = env["GIT_CONFIG_NOSYSTEM"] ?? "1"
    return try ProcessRunner.run(
      ProcessSpec(
        binary, arguments, environment: env, directory: directory, input: input.map { Array($0.utf8) },
        timeout: timeout))
  }
}

extension ProcessResult {
  /// The exit status, or -1 when the process did not exit normally.
  public var status: Int32 {
    if case .exited(let code) = ending { return code }
    return -1
  }
}
