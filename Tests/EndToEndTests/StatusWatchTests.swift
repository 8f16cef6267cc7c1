import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A tmux server of its own (a private socket in a scratch directory).
///
/// For checking what a person sees in a real terminal. `deinit` ends that server, and only it.
final class TmuxTerminal {
  static let program: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first {
    FileManager.default.isExecutableFile(atPath: $0)
  }

  let scratch: ScratchDirectory
  var socket: String { scratch.path + "/tmux.sock" }

  /// Starts `command` (an argv) in a detached session of `columns`×`rows`, in `directory`, with exactly
  /// `environment`.
  init(_ command: [String], in directory: String, environment: [String: String], columns: Int = 120, rows: Int = 30)
    throws
  {
    scratch = try ScratchDirectory(prefix: "taskq-tmux")
    let env = environment.map { "\($0.key)=\($0.value)" }.sorted()
    // `env -i` so that nothing of the tmux server's own environment reaches the command. A shell around it
    // prints its exit status and keeps the pane: tmux 3.3 sometimes loses the status (and its "Pane is
    // dead" line) of a command that ends at once.
    let reporting = ["sh", "-c", "\"$@\"; printf '\\n[exit %d]\\n' $?; exec sleep 3600", "sh"]
    try tmux(
      [
        "set-option", "-g", "remain-on-exit", "on", ";", "new-session", "-d", "-s", "taskq", "-x", "\(columns)", "-y",
        "\(rows)", "-c", directory, "env", "-i",
      ] + env + reporting + command)
  }

  deinit {
    _ = try? tmux(["kill-server"])
  }

  @discardableResult
  func tmux(_ arguments: [String]) throws -> String {
    guard let program = Self.program else { throw TestFailure("tmux is not installed") }
    let result = try ProcessRunner.run(
      ProcessSpec(program, ["-S", socket, "-f", "/dev/null"] + arguments, environment: ["TMUX": ""], timeout: 30))
    guard result.succeeded else {
      throw TestFailure("tmux \(arguments.joined(separator: " ")): \(result.summary)")
    }
    return result.stdoutText
  }

  /// The screen as text (`capture-pane -p`), or with its colours as escape sequences (`-e`), with the lines
  /// scrolled off it (`-S -`) when `history` (tmux scrolls by a line to say that a command ended).
  func screen(escapes: Bool = false, history: Bool = false) throws -> String {
    try tmux(["capture-pane", "-p", "-t", "taskq"] + (escapes ? ["-e"] : []) + (history ? ["-S", "-"] : []))
  }

  /// Whether the command in the pane has ended.
  func isDead() throws -> Bool {
    try tmux(["display-message", "-p", "-t", "taskq", "#{pane_dead}"]).trimmingCharacters(in: .whitespacesAndNewlines)
      == "1"
  }

  func send(_ keys: String...) throws { try tmux(["send-keys", "-t", "taskq"] + keys) }

  /// Waits for the command to end; returns its exit status and everything it wrote (scrollback included,
  /// the status line left out).
  func waitForExit(timeout: Double = 60) throws -> (status: Int, screen: String) {
    let deadline = monotonicSeconds() + timeout
    while monotonicSeconds() < deadline {
      let screen = try screen(history: true)
      if let line = screen.components(separatedBy: "\n").last(where: { $0.hasPrefix("[exit ") }),
        let status = Int(line.dropFirst("[exit ".count).dropLast())
      {
        return (status, screen.components(separatedBy: "\n").filter { !$0.hasPrefix("[exit ") }.joined(separator: "\n"))
      }
      usleep(100_000)
    }
    throw TestFailure("the command still runs after \(timeout) s; the screen is:\n\(try screen(history: true))")
  }

  /// Polls the screen until `condition` holds; throws with the last screen after `timeout` seconds.
  @discardableResult
  func waitFor(_ what: String, timeout: Double = 60, history: Bool = false, _ condition: (String) -> Bool) throws
    -> String
  {
    let deadline = monotonicSeconds() + timeout
    var last = ""
    while monotonicSeconds() < deadline {
      last = try screen(history: history)
      if condition(last) { return last }
      usleep(100_000)
    }
    throw TestFailure("timed out waiting for \(what); the screen was:\n\(last)")
  }
}

/// `git taskq status --watch` in a real terminal (tmux), as a person sees it.
@Suite(
  .enabled(
    if: TmuxTerminal.program != nil, "tmux is not installed (apt-get install tmux): the terminal test is skipped"))
struct StatusWatchTests {
  static func environment(home: String) -> [String: String] {
    [
      "PATH": "\(Taskq.binaryDirectory):/usr/local/bin:/usr/bin:/bin",
      "HOME": home,
      "TERM": "xterm-256color",
      "GIT_CONFIG_NOSYSTEM": "1",
      "LANG": "C.UTF-8",
    ]
  }

  @Test func redrawsInPlaceWithColourUntilInterrupted() throws {
    let repository = try ScratchRepository()
    let store = try repository.store()
    try repository.addTask("T-001", store: store)
    try repository.addTask("T-002", dependsOn: ["T-001"], store: store)
    try repository.addTask("T-003", store: store)
    try repository.drive("T-003", to: .planning, store: store)
    try store.fail("T-003", summary: "make-plan: exit status 1", report: "# failed\n")
    let home = repository.directory.path + "/home"
    try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)

    let terminal = try TmuxTerminal(
      [Taskq.binary, "status", "--watch", "1"], in: repository.path, environment: Self.environment(home: home))
    let first = try terminal.waitFor("the first frame") { $0.contains("T-003") }
    let lines = first.components(separatedBy: "\n")
    #expect(lines.first?.hasPrefix("Every 1s: git taskq status") == true, "\(first)")
    #expect(first.contains("todo (2)"))
    #expect(first.contains("waiting on T-001"))
    #expect(first.contains("failed (1)"))
    #expect(first.contains("error: make-plan: exit status 1"))
    // One frame on the screen, not a scrolling log.
    #expect(first.components(separatedBy: "Every 1s").count == 2)

    // auto colour on a terminal: the failed group and its error are red.
    let colored = try terminal.screen(escapes: true)
    #expect(colored.contains("\u{1B}["), "\(colored)")
    #expect(colored.contains("31m"), "no red on the screen:\n\(colored)")

    // A change in the queue shows up at the next redraw; a removed task leaves no trace.
    try repository.taskqOK("add", "--id", "T-004", "--task", "Added while watching")
    try repository.taskqOK("remove", "--id", "T-002")
    let second = try terminal.waitFor("T-004 to appear and T-002 to go") {
      $0.contains("T-004") && !$0.contains("T-002")
    }
    #expect(second.contains("todo (2)"))
    #expect(second.components(separatedBy: "Every 1s").count == 2)
    #expect(!second.contains("waiting on"))

    // Ctrl-C ends it.
    try terminal.send("C-c")
    let deadline = monotonicSeconds() + 30
    // The shell around it either dies of the same Ctrl-C or reports the interrupted status.
    func ended() throws -> Bool { try terminal.isDead() || terminal.screen(history: true).contains("[exit 130]") }
    while try !ended(), monotonicSeconds() < deadline { usleep(100_000) }
    #expect(try ended())
  }

  @Test func neverColourWhenNoColorIsSet() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-001")
    var environment = Self.environment(home: repository.directory.path)
    environment["NO_COLOR"] = "1"
    let terminal = try TmuxTerminal(
      [Taskq.binary, "status", "--watch", "1"], in: repository.path, environment: environment)
    try terminal.waitFor("the first frame") { $0.contains("T-001") }
    let colored = try terminal.screen(escapes: true)
    #expect(!colored.contains("\u{1B}["), "\(colored)")
    try terminal.send("C-c")
  }

  @Test func longLinesAreCutToTheWindow() throws {
    let repository = try ScratchRepository()
    let store = try repository.store()
    try repository.addTask("T-001", store: store)
    try repository.drive("T-001", to: .planning, store: store)
    try store.fail("T-001", summary: "x" + String(repeating: " very long error", count: 20), report: "# failed\n")
    let terminal = try TmuxTerminal(
      [Taskq.binary, "status", "--watch", "1"], in: repository.path,
      environment: Self.environment(home: repository.directory.path), columns: 60, rows: 10)
    let screen = try terminal.waitFor("the first frame") { $0.contains("T-001") }
    // Cut, not wrapped: the task's line is one screen line and the next screen line is empty.
    let lines = screen.components(separatedBy: "\n")
    let index = try #require(lines.firstIndex { $0.hasPrefix("  T-001") })
    #expect(lines[index].count <= 60)
    #expect(lines.indices.contains(index + 1) ? lines[index + 1].trimmingCharacters(in: .whitespaces).isEmpty : true)
    try terminal.send("C-c")
  }
}
