#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Runs one agent stage (`opencode run …`, directly or through `docker exec`) to its end.
///
/// The real one is ``ProcessRunner``: a process group, a timeout, the output's tail. A fake gets the same
/// ``ProcessSpec`` (its environment names the task, `TASKQ_TASK_ID`) and plays a stage: succeed with a
/// session id, fail, or keep polling `shouldStop` the way a long agent is stopped by a cancel.
public protocol AgentRunner: Sendable {
  /// Runs `spec`; `shouldStop` is polled while it runs, and the process group is stopped when it says so
  /// (the result's ending is then ``ProcessResult/Ending/stopped``).
  ///
  /// - Throws: ``SpawnError`` when the program cannot be started.
  func run(_ spec: ProcessSpec, shouldStop: @escaping () -> Bool) throws -> ProcessResult
}

/// Agents as subprocesses (``ProcessRunner/run(_:grace:shouldStop:)``).
public struct ProcessAgentRunner: AgentRunner {
  public init() {}

  public func run(_ spec: ProcessSpec, shouldStop: @escaping () -> Bool) throws -> ProcessResult {
    try ProcessRunner.run(spec, shouldStop: shouldStop)
  }
}
