import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `git taskq sync` on the clone of a worker that was killed before its steps were published (issue 13):
/// another machine recovered the task once the lease expired, and the dead worker's leftover steps must
/// not revive it under a process that no longer exists.
@Suite struct DeadWorkerReplayTests {
  /// The worker name (`host:pid@start`) of a process of this host that certainly no longer runs: a `sleep`
  /// started, its start time read, then killed and reaped. Should the kernel give its pid to another
  /// process, that one has another start time.
  static func deadWorkerName() throws -> String {
    let sleeper = try ProcessGroup("/bin/sleep", ["30"])
    let start = WorkerProcess.startTime(of: sleeper.pid)
    sleeper.signalGroup(SIGKILL)
    sleeper.wait()
    let pid = sleeper.pid
    let name = "\(WorkerProcess.hostName):\(pid)@\(try #require(start))"
    let worker = try #require(WorkerProcess(name))
    #expect(worker.isOnThisHost && !worker.isAlive, "\(name)")
    return name
  }

  @Test func aDeadWorkersUnpublishedStepsAreDroppedAndTheRecoveryStays() throws {
    let shared = try SharedRemote()
    let a = try shared.machine("A")
    let b = try shared.machine("B")
    try a.taskqOK("add", "--id", "T-1", "--repo", shared.target, "--task", "Task T-1 from A")
    // A's worker claims T-1 with a 1 s lease and publishes the claim; then it is killed.
    let dead = try Self.deadWorkerName()
    let worker = try a.store(worker: dead)
    _ = try worker.claimNext(only: "T-1", leaseSeconds: 1)
    try a.taskqOK("sync")
    // Its last steps, recorded before it died, never reached the remote.
    try worker.advance("T-1", kind: "setup", detail: "worktree ready") { $0.worktreePath = "/a/T-1" }
    try worker.advance("T-1", to: .building, kind: "build", detail: "plan made")
    // B sees the lease expire and recovers the task through the remote.
    try b.taskqOK("sync")
    usleep(2_200_000)
    let recovered = try b.taskqOK("recover", "--remote", "origin")
    #expect(recovered.stdoutText.contains("recovered 1 task(s): T-1"), "\(recovered.summary)")
    #expect(try shared.records().first { $0.id == "T-1" }?.status == .failed)

    let result = try a.taskqOK("sync")
    let reason = "the remote recovered it (worker lost) and its worker \(dead) no longer runs"
    #expect(
      result.stdoutText == """
        sync origin: received 1 commit(s), replayed 0 local operation(s), 2 dropped
          T-1: setup dropped: \(reason)
          T-1: build dropped: \(reason)

        """, "\(result.summary)")
    let remote = try #require(try shared.records().first { $0.id == "T-1" })
    #expect(remote.status == .failed && remote.worker == nil && remote.worktreePath == nil)
    #expect(try a.record("T-1").status == .failed)
    #expect(try a.queueTip() == shared.queueTip())
    #expect(try shared.subjects().last?.hasPrefix("T-1: planning → failed") == true)
  }
}
