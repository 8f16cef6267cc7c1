import Foundation
import Orchestrator
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Worker names (`host:pid@start`) and whether the process behind one still runs.
@Suite struct WorkerProcessTests {
  @Test func theCurrentProcessIsAliveUnderItsOwnName() throws {
    let me = try #require(WorkerProcess(WorkerProcess.current))
    #expect(me.pid == getpid())
    #expect(me.isOnThisHost)
    #expect(me.start == WorkerProcess.startTime(of: getpid()))
    #expect(me.isAlive)
  }

  /// A live pid with another start time is a reused pid: the worker that had it is dead.
  @Test func aReusedPidIsNotTakenForTheWorker() throws {
    let start = try #require(WorkerProcess.startTime(of: getpid()))
    let impostor = try #require(WorkerProcess("\(WorkerProcess.hostName):\(getpid())@\(start + 1)"))
    #expect(!impostor.isAlive)
  }

  @Test(arguments: [
    ("h:12", "h", Int32(12), UInt64?.none), ("a:b:7@99", "a:b", 7, 99), ("host.example:1@0", "host.example", 1, 0),
  ])
  func namesParse(_ name: String, _ host: String, _ pid: Int32, _ start: UInt64?) throws {
    let worker = try #require(WorkerProcess(name))
    #expect(worker.host == host && worker.pid == pid && worker.start == start)
  }

  @Test(arguments: ["", "host", "host:", "host:0", "host:-3", "host:12@", "host:12@x", "test-worker"])
  func otherNamesAreNotWorkerProcesses(_ name: String) {
    #expect(WorkerProcess(name) == nil)
  }

  /// A dead process (reaped) is dead, whatever its name says.
  @Test func aFinishedProcessIsDead() throws {
    let result = try ProcessRunner.run(ProcessSpec("/bin/sh", ["-c", "echo $$"], timeout: 10))
    let pid = try #require(Int32(result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)))
    #expect(!(try #require(WorkerProcess("\(WorkerProcess.hostName):\(pid)@1"))).isAlive)
  }
}
