import Foundation
import Git
import TaskqTestSupport
import Testing

/// Reading `taskq.*` keys and the level that sets them.
@Suite struct ConfigurationTests {
  @Test func readsValuesAndTheirLevel() throws {
    let scratch = try ScratchRepository()
    try scratch.git("config", "taskq.reposRoot", "/somewhere")
    let configuration = try scratch.open().configuration()
    #expect(try configuration.string("taskq.reposRoot") == "/somewhere")
    #expect(try configuration.string("taskq.reposroot") == "/somewhere")  // keys are case-insensitive
    #expect(try configuration.origin(of: "taskq.reposRoot") == "local")
    #expect(try configuration.string("taskq.missing") == nil)
    #expect(try configuration.origin(of: "taskq.missing") == nil)
  }

  @Test func readsAndAddsMultipleValues() throws {
    let scratch = try ScratchRepository()
    #expect(try scratch.open().configuration().strings("taskq.trustedPath") == [])
    try scratch.git("config", "--add", "taskq.trustedPath", "/a")
    try scratch.open().addLocalConfigValue("taskq.trustedPath", "/b c")
    try scratch.open().addLocalConfigValue("taskq.trustedPath", "/a")
    #expect(try scratch.open().configuration().strings("taskq.trustedPath") == ["/a", "/b c", "/a"])
    #expect(try scratch.git("config", "--local", "--get-all", "taskq.trustedPath") == "/a\n/b c\n/a")
  }
}
