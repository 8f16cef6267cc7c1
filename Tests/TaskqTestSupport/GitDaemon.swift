import Foundation
import Orchestrator

#if canImport(Glibc)
import Glibc
#endif

/// A real `git daemon` on a free loopback port, serving every repository under `basePath` for fetch and
/// push (`--export-all --enable=receive-pack`), that a test can kill and start again on the same port.
///
/// Its output goes to /dev/null; `git://127.0.0.1:<port>/<path under basePath>` reaches a repository.
public final class GitDaemon {
  public let basePath: String
  private let server = LoopbackServer(name: "git daemon")

  /// Starts the daemon on a free port.
  ///
  /// - Throws: ``TestFailure`` when no port could be served within a few tries.
  public init(basePath: String) throws {
    self.basePath = basePath
    try server.startOnFreePort { Self.command(port: $0, basePath: basePath) }
  }

  public var port: Int { server.port }

  /// The URL of `path` (relative to `basePath`) on this daemon.
  public func url(_ path: String) -> String { "git://127.0.0.1:\(port)/\(path)" }

  public var isRunning: Bool { server.isRunning }

  /// Starts the daemon (again) on its port, and waits until it listens.
  public func start() throws { try server.start(Self.command(port: port, basePath: basePath)) }

  /// Kills the daemon and every connection it serves (SIGKILL to its process group), as a crash would.
  public func stop() { server.stop() }

  private static func command(port: Int, basePath: String) -> (program: String, arguments: [String]) {
    (
      "git",
      [
        "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", "--port=\(port)",
        "--base-path=\(basePath)", basePath,
      ]
    )
  }
}

/// Whether this process may give a command a host name of its own (`unshare --uts`, which needs root or a
/// user namespace), checked once.
public let canSetHostName: Bool = {
  let probe = ProcessSpec("unshare", ["--uts", "/bin/sh", "-c", "hostname taskq-probe && hostname"], timeout: 10)
  guard let result = try? ProcessRunner.run(probe) else { return false }
  return result.succeeded && result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "taskq-probe"
}()
