import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// Hostile input beyond ``BadInputTests``: an alias bomb as a value, bad configuration values for every
/// command that reads them (one line naming the key, non-zero exit, the ref unchanged), and what must be
/// accepted: a BOM and CRLF line ends, a body that begins with `-` (it reaches the agent as the prompt).
@Suite struct HostileInputTests {
  /// A billion-laughs frontmatter whose bomb is a value (`base: *d`), not a key.
  static let aliasBomb = """
    ---
    id: H-1
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    base: *d
    ---
    Body

    """

  @Test(arguments: [
    ("alias bomb as a value", aliasBomb, "the frontmatter uses a YAML alias"),
    ("an alias to the id", "---\nid: &x H-2\nbase: *x\n---\nBody\n", "the frontmatter uses a YAML alias"),
    ("a scalar frontmatter", "---\njust words\n---\nBody\n", "the frontmatter"),
    ("a BOM and no closing ---", "\u{FEFF}---\nid: H-3\nBody\n", "the frontmatter"),
  ])
  func hostileTaskFilesAreRefused(name: String, text: String, message: String) throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let file = try repository.directory.write("files/hostile.md", text)
    let tip = try repository.queueTip()
    let result = try repository.taskq(["add", "--task-file", file])
    #expect(result.status == 1, "\(name): \(result.summary)")
    #expect(result.stderrLines.count == 1, "\(name): \(result.stderrText)")
    #expect(
      result.stderrLines.first?.hasPrefix("error: task file '\(file)': \(message)") == true,
      "\(name): \(result.stderrText)")
    #expect(try repository.queueTip() == tip, "\(name)")
  }

  @Test(arguments: [
    ("a BOM", "\u{FEFF}---\nid: H-BOM\npriority: 2\n---\nBody text\n", "H-BOM", 2, "Body text"),
    (
      "CRLF line ends", "---\r\nid: H-CRLF\r\npriority: 3\r\n---\r\nLine one\r\nLine two\r\n", "H-CRLF", 3,
      "Line one\nLine two"
    ),
    ("a BOM and CRLF", "\u{FEFF}---\r\nid: H-BOTH\r\npriority: 4\r\n---\r\nBoth\r\n", "H-BOTH", 4, "Both"),
  ])
  func aBOMAndCRLFAreAcceptedAndParsedRight(name: String, text: String, id: String, priority: Int, body: String) throws
  {
    let repository = try ScratchRepository()
    let file = try repository.directory.write("files/task.md", text)
    let result = try repository.taskq(["add", "--task-file", file])
    #expect(result.status == 0, "\(name): \(result.summary)")
    let record = try #require(try repository.store().snapshot().record(id), "\(name)")
    #expect(record.priority == priority)
    let stored = try #require(try repository.store().snapshot().taskFile(id))
    #expect(stored.hasSuffix("\npriority: \(priority)\n---\n\(body)\n"), "\(name): \(stored)")
    #expect(!stored.contains("\r") && !stored.contains("\u{FEFF}"), "\(name): \(stored)")
  }

  /// Each bad value: every command that reads it refuses with one line naming the key.
  @Test(arguments: [
    ("taskq.maxParallel", "0"), ("taskq.maxParallel", "abc"), ("taskq.portRange", "5-4"),
    ("taskq.portRange", "80-90"), ("taskq.portRange", "abc"), ("taskq.runtime", "vm"),
    ("taskq.planTimeout", "-1"), ("taskq.serverPassword", "maybe"), ("taskq.image", "-x"),
  ])
  func badConfigurationValuesAreOneLineNamingTheKey(key: String, value: String) throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    try repository.addTask("T-2")
    try repository.drive("T-2", to: .done)
    try repository.git("config", key, value)
    let tip = try repository.queueTip()
    var commands: [[String]] = [["run"], ["run", "--id", "T-1"]]
    if key != "taskq.maxParallel" { commands += [["cleanup"], ["review", "--id", "T-1"]] }
    for arguments in commands {
      let result = try repository.taskq(arguments)
      #expect(result.status == 1, "\(key)=\(value) \(arguments): \(result.summary)")
      #expect(result.stderrLines.count == 1, "\(key)=\(value) \(arguments): \(result.stderrText)")
      #expect(
        result.stderrLines.first?.hasPrefix("error: invalid value '\(value)' for \(key): expected ") == true,
        "\(key)=\(value) \(arguments): \(result.stderrText)")
      #expect(try repository.queueTip() == tip, "\(key)=\(value) \(arguments) moved the queue")
    }
  }

  @Test func aBodyThatBeginsWithADashReachesTheAgentAsThePrompt() throws {
    let world = try FakeWorld()
    let body = "-rf --version --help"
    let added = try world.taskq("add", "--id", "T-1", "--task", body)
    #expect(added.status == 0, "\(added.summary)")
    let result = try world.taskq("run", "--runtime", "local")
    #expect(result.status == 0, "\(result.summary)")
    let agents = try world.calls("opencode")
    #expect(agents.count == 2)
    for call in agents {
      let separator = try #require(call.arguments.firstIndex(of: "--"), "\(call)")
      #expect(Array(call.arguments[(separator + 1)...]) == [body], "\(call)")
    }
  }
}
