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

  /// libgit2 1.5 writes `"` and `\` unescaped (git then refuses the whole file) and a tab as a space: such
  /// a value is refused and nothing is written, so the repository's config stays readable.
  @Test(arguments: ["/p\"q", "/p\\q", "/p\tq", "/p\nq"])
  func aValueLibgit2CannotWriteIsRefusedAndTheConfigStaysReadable(_ value: String) throws {
    let scratch = try ScratchRepository()
    #expect(throws: GitError.self) { try scratch.open().addLocalConfigValue("taskq.trustedPath", value) }
    try scratch.open().addLocalConfigValue("taskq.trustedPath", "/after")
    #expect(try scratch.git("config", "--local", "--get-all", "taskq.trustedPath") == "/after")
  }
}
