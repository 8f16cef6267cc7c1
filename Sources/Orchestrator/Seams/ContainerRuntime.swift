import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What the pipeline asks of a container engine: start a task's server, run the agent inside it, look at
/// it, stop and remove it.
///
/// ``ContainerEngine`` (the docker or podman CLI) is the real one; tests of the pipeline give a fake that
/// records the calls and fails where the test says. Every call is bounded in time by the implementation.
public protocol ContainerRuntime: Sendable {
  /// Starts the container of `request` (detached); `shouldStop` is polled to give up early.
  func start(_ request: ContainerRequest, shouldStop: (() -> Bool)?) throws -> ProcessResult
  /// The command line that runs `argv` in `container`, in `directory` (run through an ``AgentRunner``).
  func execSpec(container: String, directory: String, _ argv: [String], timeout: Double) -> ProcessSpec
  /// Whether the container runs; `nil` when there is no such container (or the engine cannot say).
  func isRunning(_ name: String) -> Bool?
  /// Whether `name` carries this queue's labels for `record`'s task (only then may it be removed).
  func isOurs(_ name: String, of record: TaskRecord, queue: String) -> Bool
  /// Stops the container, giving its process `grace` seconds.
  func stop(_ name: String, grace: Int) throws -> ProcessResult
  /// Removes the container (running or not).
  func remove(_ name: String) throws -> ProcessResult
  /// The last `lines` lines of its log, for a failure report.
  func logTail(_ name: String, lines: Int) -> String?
}

extension ContainerRuntime {
  public func stop(_ name: String) throws -> ProcessResult { try stop(name, grace: 3) }
  public func logTail(_ name: String) -> String? { logTail(name, lines: 40) }
}

extension ContainerEngine: ContainerRuntime {}
