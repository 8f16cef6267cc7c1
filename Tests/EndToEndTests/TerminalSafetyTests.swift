import Foundation
import TaskQueue
import TaskqTestSupport
import Testing

/// Queue data never reaches the terminal raw (issue 11, point 4): records written with git plumbing, as
/// a remote could deliver them, hold ESC (CSI and OSC), BEL, CR and a C1 CSI in their free-text fields,
/// their task file and a trailer. Every text output shows them as `\u{1b}`…; JSON keeps the exact values.
@Suite struct TerminalSafetyTests {
  /// An OSC title change, a screen clear, a bell, a carriage return and a C1 CSI.
  static let hostile = "boom \u{1B}]0;pwned\u{07} \u{1B}[2J\rover \u{9B}31m red"

  /// T-1 (building, its worker and last_error hostile), T-2 (failed, its last_error hostile), and a last
  /// commit whose Taskq-Worker trailer is hostile; the task file of T-1 holds an escape in its body.
  static func world() throws -> ScratchRepository {
    let repository = try ScratchRepository()
    let store = try repository.store()
    try repository.addTask("T-1", store: store)
    try repository.drive("T-1", to: .building, store: store)
    try repository.addTask("T-2", store: store)
    try repository.drive("T-2", to: .failed, store: store)
    var files: [String: String] = [:]
    for (id, status) in [("T-1", "building"), ("T-2", "failed")] {
      let directory = Layout.taskDirectory(id)
      let text = try repository.git("show", "refs/taskq/queue:\(directory)/record.json")
      var object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
      object["last_error"] = hostile
      object["status"] = status
      if id == "T-1" { object["worker"] = "host\u{1B}[31m:42" }
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      files["\(directory)/record.json"] = String(decoding: data, as: UTF8.self)
    }
    let taskFile = try repository.git("show", "refs/taskq/queue:\(Layout.taskDirectory("T-1"))/task.md")
    files["\(Layout.taskDirectory("T-1"))/task.md"] = taskFile + "\nTitle \u{1B}]52;c;cGF5bG9hZA==\u{07} here\n"
    let meta = try repository.git("show", "refs/taskq/queue:taskq.json")
    try repository.writeQueueCommitWithCLI(
      meta: meta, files: files,
      message:
        "T-1: note\n\nTaskq-Op: note\nTaskq-Task: T-1\nTaskq-Worker: evil\u{1B}]0;title\u{07}\u{9B}2J")
    return repository
  }

  /// Whether `text` holds a control character a terminal acts on (newline and tab aside).
  static func hasRawControl(_ text: String) -> Bool {
    text.unicodeScalars.contains { s in
      (s.value < 0x20 && s != "\n" && s != "\t") || (0x7F...0x9F).contains(s.value)
    }
  }

  static let plain = ["NO_COLOR": "1", "GIT_CONFIG_PARAMETERS": ""]

  @Test(arguments: [
    ["status"], ["status", "--id", "T-1"], ["status", "--id", "T-2"], ["show", "--id", "T-1"],
    ["show", "--id", "T-2"], ["log"], ["log", "--id", "T-1"],
  ])
  func textOutputShowsControlsVisibly(arguments: [String]) throws {
    let repository = try Self.world()
    let result = try repository.taskq(arguments, environment: Self.plain)
    #expect(result.status == 0, "\(result.summary)")
    #expect(!Self.hasRawControl(result.stdoutText), "\(arguments): \(result.stdoutText.debugDescription)")
    #expect(!Self.hasRawControl(result.stderrText), "\(arguments): \(result.stderrText.debugDescription)")
    #expect(result.stdoutText.contains("\\u{1b}"), "\(arguments): \(result.stdoutText)")
  }

  @Test func colourKeepsItsOwnEscapesOnly() throws {
    let repository = try Self.world()
    let text = try repository.taskqOK("status", "--color=always", environment: Self.plain).stdoutText
    // Our own SGR sequences only: every ESC starts `ESC [ digits/; m`.
    let withoutOurs = text.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
    #expect(!Self.hasRawControl(withoutOurs), "\(withoutOurs.debugDescription)")
    // status shows the first line (a CR ends it); show shows all of it.
    #expect(text.contains("error: boom \\u{1b}]0;pwned\\u{7} \\u{1b}[2J"))
    let show = try repository.taskqOK("show", "--id", "T-2", environment: Self.plain).stdoutText
    #expect(show.contains("  last error   boom \\u{1b}]0;pwned\\u{7} \\u{1b}[2J\\u{d}over \\u{9b}31m red\n"))
  }

  @Test func showKeepsTheLinesOfTheTaskFileAndEscapesTheRest() throws {
    let repository = try Self.world()
    let text = try repository.taskqOK("show", "--id", "T-1", environment: Self.plain).stdoutText
    #expect(text.contains("\nTitle \\u{1b}]52;c;cGF5bG9hZA==\\u{7} here\n"))
    #expect(text.contains("  worker       host\\u{1b}[31m:42\n"))
  }

  @Test func jsonKeepsTheExactValues() throws {
    let repository = try Self.world()
    let status = try repository.taskqOK("status", "--json").jsonObjects()
    #expect(status.first { $0["id"] as? String == "T-2" }?["last_error"] as? String == Self.hostile)
    let show = try repository.taskqOK("show", "--id", "T-1", "--json")
    // C1 controls, which JSON allows raw, are escaped too (`\u009b`): still the exact value.
    #expect(!Self.hasRawControl(show.stdoutText))
    #expect(!Self.hasRawControl(try repository.taskqOK("status", "--json").stdoutText))
    #expect(!Self.hasRawControl(try repository.taskqOK("log", "--json").stdoutText))
    let record = try #require(try show.jsonObject()["record"] as? [String: Any])
    #expect(record["worker"] as? String == "host\u{1B}[31m:42")
    let log = try repository.taskqOK("log", "--json").jsonObjects()
    #expect(log.first?["worker"] as? String == "evil\u{1B}]0;title\u{07}\u{9B}2J")
  }

  @Test func errorLinesShowControlsVisibly() throws {
    let repository = try Self.world()
    // A refusal that names queue data: T-1 is building, so it cannot be removed.
    let result = try repository.taskq(["remove", "--id", "T-1"], environment: Self.plain)
    #expect(result.status != 0)
    #expect(!Self.hasRawControl(result.stderrText), "\(result.stderrText.debugDescription)")
  }

  @Test func terminalTextMakesEveryControlVisible() {
    #expect(
      TerminalText.line("a\u{1B}[2Jb\u{07}\r\n\t\u{9B}\u{202E}c")
        == "a\\u{1b}[2Jb\\u{7}\\u{d}\\u{a}\\u{9}\\u{9b}\\u{202e}c")
    #expect(TerminalText.block("one\r\ntwo\n\tthree\u{1B}") == "one\ntwo\n\tthree\\u{1b}")
    #expect(TerminalText.line("plain ünïcode — ok") == "plain ünïcode — ok")
  }
}
