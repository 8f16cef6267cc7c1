import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `fsck`'s checks as one call: settings the machine checks cannot use are a finding, not a silent skip.
@Suite struct FsckChecksTests {
  @Test func unusableSettingsAreReportedAsSkippedMachineChecks() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    let (findings, count) = try FsckChecks.check(try scratch.workspace(overrides: [.portRange: "99-1"]))
    #expect(count == 1)
    let skipped = findings.filter { $0.message.hasPrefix("the checks of this machine were skipped: ") }
    #expect(skipped.count == 1)
    #expect(skipped.first?.severity == .warning)
    #expect(skipped.first?.message.contains("--port-range") == true)
  }

  @Test func usableSettingsRunTheMachineChecksQuietly() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-001")
    let (findings, _) = try FsckChecks.check(try scratch.workspace(overrides: [.runtime: "local"]))
    #expect(!findings.contains { $0.message.hasPrefix("the checks of this machine were skipped") })
  }
}
