import Foundation
import Orchestrator

#if canImport(Glibc)
import Glibc
#endif

/// git's smart HTTP protocol on a free loopback port: `Tests/EndToEndTests/Fixtures/git-http-server.py`
/// (Python's standard library) hands every request to `git http-backend`, serving every repository under
/// `basePath` for fetch and push. A test can kill it and start it again on the same port, and make it refuse
/// pushes with HTTP 403.
///
/// Its output goes to /dev/null; `http://127.0.0.1:<port>/<path under basePath>` reaches a repository.
public final class GitHTTPServer {
  public let basePath: String
  public private(set) var port: Int
  /// When set, every push is answered 403 Forbidden with this text (git prints it as `remote: <text>`);
  /// takes effect at the next ``start()``.
  public var pushRefusal: String?
  /// The HTTP status of a refused push: 403, or 401 (which asks for credentials).
  public var pushRefusalStatus = 403
  private var group: ProcessGroup?

  /// The server script in the source tree (found from this file, so a clean clone works).
  public static let script: String = {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("EndToEndTests/Fixtures/git-http-server.py").path
  }()

  /// Starts the server on a free port.
  ///
  /// - Parameters:
  ///   - basePath: The directory whose repositories are served.
  ///   - pushRefusal: See ``pushRefusal``.
  ///   - status: See ``pushRefusalStatus``.
  /// - Throws: ``TestFailure`` when no port could be served within a few tries.
  public init(basePath: String, pushRefusal: String? = nil, status: Int = 403) throws {
    self.basePath = basePath
    self.pushRefusal = pushRefusal
    pushRefusalStatus = status
    port = 0
    for _ in 0..<5 {
      port = Int.random(in: 20_000...40_000)
      guard Loopback.isFree(port) else { continue }
      if (try? start()) != nil { return }
    }
    throw TestFailure("the git HTTP server could not listen on any of 5 loopback ports")
  }

  /// The URL of `path` (relative to `basePath`) on this server.
  public func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

  public var isRunning: Bool { group != nil }

  /// Starts the server (again) on its port, and waits until it listens.
  public func start() throws {
    stop()
    var arguments = ["-u", Self.script, String(port), basePath]
    if let pushRefusal { arguments += ["--refuse-push", pushRefusal, String(pushRefusalStatus)] }
    let started = try ProcessGroup("python3", arguments)
    group = started
    let deadline = monotonicSeconds() + 15
    while !Loopback.isListening(port) {
      if monotonicSeconds() > deadline {
        stop()
        throw TestFailure("the git HTTP server did not listen on 127.0.0.1:\(port) within 15 s")
      }
      usleep(20_000)
    }
  }

  /// Kills the server and every `git http-backend` it runs (SIGKILL to its process group), as a crash would.
  public func stop() {
    guard let group else { return }
    group.signalGroup(SIGKILL)
    group.wait()
    self.group = nil
  }

  deinit { stop() }
}
