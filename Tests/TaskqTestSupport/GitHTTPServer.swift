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
  /// When set, every push is answered 403 Forbidden with this text (git prints it as `remote: <text>`);
  /// takes effect at the next ``start()``.
  public var pushRefusal: String?
  /// The HTTP status of a refused push: 403, or 401 (which asks for credentials).
  public var pushRefusalStatus = 403
  private let server = LoopbackServer(name: "the git HTTP server")

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
    try server.startOnFreePort { Self.command(port: $0, basePath: basePath, refusal: pushRefusal, status: status) }
  }

  public var port: Int { server.port }

  /// The URL of `path` (relative to `basePath`) on this server.
  public func url(_ path: String) -> String { "http://127.0.0.1:\(port)/\(path)" }

  public var isRunning: Bool { server.isRunning }

  /// Starts the server (again) on its port, and waits until it listens.
  public func start() throws {
    try server.start(Self.command(port: port, basePath: basePath, refusal: pushRefusal, status: pushRefusalStatus))
  }

  /// Kills the server and every `git http-backend` it runs (SIGKILL to its process group), as a crash would.
  public func stop() { server.stop() }

  private static func command(port: Int, basePath: String, refusal: String?, status: Int) -> (
    program: String, arguments: [String]
  ) {
    var arguments = ["-u", script, String(port), basePath]
    if let refusal { arguments += ["--refuse-push", refusal, String(status)] }
    return ("python3", arguments)
  }
}
