import Foundation
import Git
import TaskQueue
import TaskqTestSupport
import Testing

/// Settings: a configuration that cannot be read is an error, never silently the defaults.
@Suite struct SettingsTests {
  @Test func aReadableConfigurationWinsOverTheDefaults() throws {
    let scratch = try ScratchRepository()
    try scratch.git("config", "taskq.maxParallel", "5")
    let settings = try Settings(configuration: try scratch.open().configuration(), environment: [:])
    #expect(try settings.positiveInt(.maxParallel) == 5)
    #expect(settings.origin(.maxParallel) == .gitConfig("local"))
  }

  @Test func aBrokenConfigurationIsReportedNotReplacedByTheDefaults() throws {
    let scratch = try ScratchRepository()
    try scratch.git("config", "taskq.maxParallel", "5")
    let repository = try scratch.open()
    let config = scratch.path + "/.git/config"
    let text = try String(contentsOfFile: config, encoding: .utf8)
    try (text + "[taskq\n\tbroken = \"unterminated\n").write(toFile: config, atomically: true, encoding: .utf8)
    #expect(throws: GitError.self) {
      _ = try Settings(configuration: try repository.configuration(), environment: [:])
    }
  }
}
