#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The agent processes of a task on this host, found by the marks every agent carries in its environment
/// (`TASKQ_TASK_ID` and `TASKQ_WORKTREE`, inherited by everything it starts).
///
/// Used where a worker is known to be gone: `recover` stops what it left running, and a new attempt refuses
/// to start a second agent in a worktree where one still runs. Only processes of this user can be read.
public enum AgentProcesses {
  /// Pids of the live processes marked with task `taskID` and `worktree`, excluding this process.
  public static func running(taskID: String, worktree: String) -> [Int32] {
    let wanted = ["TASKQ_TASK_ID=\(taskID)", "TASKQ_WORKTREE=\(worktree)"]
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    let me = getpid()
    var pids: [Int32] = []
    for entry in entries {
      guard let pid = Int32(entry), pid != me, !WorkerProcess.isZombie(pid),
        let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ")
      else { continue }
      let variables = Set(data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) })
      if wanted.allSatisfy(variables.contains) { pids.append(pid) }
    }
    return pids.sorted()
  }

  /// Stops the task's agent processes: SIGTERM, then SIGKILL after `grace` seconds. Returns their pids.
  @discardableResult
  public static func stop(taskID: String, worktree: String, grace: Double = 2) -> [Int32] {
    let pids = running(taskID: taskID, worktree: worktree)
    guard !pids.isEmpty else { return [] }
    for pid in pids { kill(pid, SIGTERM) }
    let deadline = ProcessRunner.monotonic() + grace
    while ProcessRunner.monotonic() < deadline {
      if pids.allSatisfy({ kill($0, 0) != 0 || WorkerProcess.isZombie($0) }) { return pids }
      usleep(50_000)
    }
    for pid in pids { kill(pid, SIGKILL) }
    return pids
  }
}
