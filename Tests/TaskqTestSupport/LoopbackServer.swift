import Foundation
import Orchestrator

#if canImport(Glibc)
import Glibc
#endif

/// A server program in its own process group on a loopback port, that a test can kill (as a crash would)
/// and start again on the same port: what ``GitDaemon`` and ``GitHTTPServer`` run their servers with.
///
/// Its output goes to /dev/null.
public final class LoopbackServer {
  /// What failures call it ("git daemon").
  public let name: String
  public private(set) var port = 0
  private var group: ProcessGroup?

  public init(name: String) { self.name = name }

  public var isRunning: Bool { group != nil }

  /// Starts `command(port)` on the first of a few random free ports that it comes to listen on.
  ///
  /// - Throws: ``TestFailure`` when no port could be served within a few tries.
  public func startOnFreePort(_ command: (_ port: Int) -> (program: String, arguments: [String])) throws {
    for _ in 0..<5 {
      port = Int.random(in: 20_000...40_000)
      guard Loopback.isFree(port) else { continue }
      if (try? start(command(port))) != nil { return }
    }
    throw TestFailure("\(name) could not listen on any of 5 loopback ports")
  }

  /// Starts `command` (again; it must listen on ``port``), and waits until the port listens.
  public func start(_ command: (program: String, arguments: [String])) throws {
    stop()
    group = try ProcessGroup(command.program, command.arguments)
    let deadline = monotonicSeconds() + 15
    while !Loopback.isListening(port) {
      if monotonicSeconds() > deadline {
        stop()
        throw TestFailure("\(name) did not listen on 127.0.0.1:\(port) within 15 s")
      }
      usleep(20_000)
    }
  }

  /// Kills the server and everything it started (SIGKILL to its process group), as a crash would.
  public func stop() {
    guard let group else { return }
    group.signalGroup(SIGKILL)
    group.wait()
    self.group = nil
  }

  deinit { stop() }
}
