import Foundation
import Orchestrator
import Testing

/// The process runner every adapter stands on: argv arrays, captured output, timeouts that kill the whole
/// process group.
@Suite struct ProcessRunnerTests {
  @Test func capturesOutputAndExitStatusOfAnArgvArray() throws {
    // One argv element with spaces, quotes and a leading dash: no shell ever sees it.
    let tricky = "-n 'quoted' $HOME; rm -rf /"
    let result = try ProcessRunner.run(
      ProcessSpec("/bin/sh", ["-c", "printf '%s' \"$1\"; echo err >&2; exit 3", "sh", tricky], timeout: 10))
    #expect(result.ending == .exited(3))
    #expect(result.stdoutText == tricky)
    #expect(result.stderrText == "err\n")
  }

  @Test func aTimeoutKillsTheWholeProcessGroup() throws {
    let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("runner-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: scratch) }
    let pidFile = scratch + "/child.pid"
    let start = Date()
    let result = try ProcessRunner.run(
      ProcessSpec("/bin/sh", ["-c", "sleep 60 & echo $! > \"$1\"; wait", "sh", pidFile], timeout: 1), grace: 0.5)
    #expect(result.ending == .timedOut)
    #expect(Date().timeIntervalSince(start) < 5)
    let text = try String(contentsOfFile: pidFile, encoding: .utf8)
    let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    usleep(200_000)
    #expect(!Self.isRunning(pid), "the grandchild \(pid) survived the timeout")
  }

  /// Whether `pid` exists and is not a zombie (killed but not yet reaped by whoever adopted it).
  static func isRunning(_ pid: Int32) -> Bool {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
      let close = stat.lastIndex(of: ")")
    else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
  }

  @Test func aStopRequestEndsTheProcess() throws {
    let start = Date()
    let result = try ProcessRunner.run(ProcessSpec("/bin/sleep", ["30"], timeout: 60), grace: 0.5) {
      Date().timeIntervalSince(start) > 0.3
    }
    #expect(result.ending == .stopped)
    #expect(Date().timeIntervalSince(start) < 5)
  }

  @Test func aMissingProgramIsAClearError() throws {
    #expect(throws: SpawnError.self) {
      try ProcessRunner.run(ProcessSpec("taskq-no-such-program", [], timeout: 5))
    }
  }

  @Test func theOutputKeepsItsTailWhenTooLong() throws {
    let result = try ProcessRunner.run(ProcessSpec("/bin/sh", ["-c", "seq 1 200000"], timeout: 30, outputLimit: 1000))
    #expect(result.succeeded)
    #expect(result.stdout.count <= 2000)
    #expect(result.stdoutText.hasSuffix("200000\n"))
  }
}
