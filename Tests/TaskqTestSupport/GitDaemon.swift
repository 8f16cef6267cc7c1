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
  public private(set) var port: Int
  private var group: ProcessGroup?

  /// Starts the daemon on a free port.
  ///
  /// - Throws: ``TestFailure`` when no port could be served within a few tries.
  public init(basePath: String) throws {
    self.basePath = basePath
    port = 0
    for _ in 0..<5 {
      port = Int.random(in: 20_000...40_000)
      guard Loopback.isFree(port) else { continue }
      if (try? start()) != nil { return }
    }
    throw TestFailure("git daemon could not listen on any of 5 loopback ports")
  }

  /// The URL of `path` (relative to `basePath`) on this daemon.
  public func url(_ path: String) -> String { "git://127.0.0.1:\(port)/\(path)" }

  public var isRunning: Bool { group != nil }

  /// Starts the daemon (again) on its port, and waits until it listens.
  public func start() throws {
    stop()
    let started = try ProcessGroup(
      "git",
      [
        "daemon", "--reuseaddr", "--export-all", "--enable=receive-pack", "--listen=127.0.0.1", "--port=\(port)",
        "--base-path=\(basePath)", basePath,
      ])
    group = started
    let deadline = monotonicSeconds() + 15
    while !Loopback.isListening(port) {
      if monotonicSeconds() > deadline {
        stop()
        throw TestFailure("git daemon did not listen on 127.0.0.1:\(port) within 15 s")
      }
      usleep(20_000)
    }
  }

  /// Kills the daemon and every connection it serves (SIGKILL to its process group), as a crash would.
  public func stop() {
    guard let group else { return }
    group.signalGroup(SIGKILL)
    group.wait()
    self.group = nil
  }

  deinit { stop() }
}

/// Whether this process may give a command a host name of its own (`unshare --uts`, which needs root or a
/// user namespace), checked once.
public let canSetHostName: Bool = {
  let probe = ProcessSpec("unshare", ["--uts", "/bin/sh", "-c", "hostname taskq-probe && hostname"], timeout: 10)
  guard let result = try? ProcessRunner.run(probe) else { return false }
  return result.succeeded && result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines) == "taskq-probe"
}()
