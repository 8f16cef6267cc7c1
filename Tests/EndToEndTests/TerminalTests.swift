import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// A real terminal, driven by tmux: the command runs in a pane of a given size and the test reads the
/// screen as a user sees it.
struct TmuxPane {
  let socket = "taskq-test-\(UUID().uuidString.prefix(8))"

  static var isAvailable: Bool { ProcessRunner.resolve("tmux") != nil }

  /// Starts `command` (a shell line) in a detached session of `columns`×`rows`, in `directory`, with the
  /// test binary first on PATH.
  init(columns: Int, rows: Int, directory: String, command: String, environment: [String: String] = [:]) throws {
    var exports = ["PATH": Taskq.binaryDirectory + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "")]
    exports.merge(environment) { _, new in new }
    let prefix = exports.sorted { $0.key < $1.key }.map { "export \($0.key)='\($0.value)';" }.joined(separator: " ")
    let line =
      "unset GIT_PAGER PAGER LESS GIT_PAGER_IN_USE NO_COLOR; \(prefix) cd '\(directory)' && \(command); echo \"[exit $?]\"; sleep 60"
    try tmux(["new-session", "-d", "-x", String(columns), "-y", String(rows), "sh", "-c", line])
  }

  @discardableResult
  func tmux(_ arguments: [String]) throws -> String {
    let result = try ProcessRunner.run(
      ProcessSpec(
        "tmux", ["-L", socket, "-f", "/dev/null"] + arguments, environment: ["TERM": "xterm-256color"], timeout: 20))
    guard result.succeeded else { throw TestFailure("tmux \(arguments): \(result.stderrText)") }
    return result.stdoutText
  }

  /// The screen's lines (without colour).
  func screen() throws -> [String] {
    try tmux(["capture-pane", "-p"]).components(separatedBy: "\n")
  }

  /// The screen with its SGR sequences (`capture-pane -e`).
  func screenWithEscapes() throws -> String { try tmux(["capture-pane", "-p", "-e"]) }

  func send(_ keys: String...) throws { try tmux(["send-keys"] + keys) }

  /// Waits until `predicate` holds for the screen (at most `timeout` seconds) and returns that screen.
  @discardableResult
  func wait(timeout: Double = 15, until predicate: ([String]) -> Bool) throws -> [String] {
    let end = Date().addingTimeInterval(timeout)
    var lines = try screen()
    while !predicate(lines) {
      if Date() > end { throw TestFailure("the screen never matched:\n" + lines.joined(separator: "\n")) }
      Thread.sleep(forTimeInterval: 0.1)
      lines = try screen()
    }
    return lines
  }

  func close() { _ = try? tmux(["kill-server"]) }
}

/// The terminal behaviour a user meets: the pager, the width of `status`, `--watch` on a long queue.
@Suite(.enabled(if: TmuxPane.isAvailable, "tmux is not installed"))
struct TerminalTests {
  /// A queue of `count` todo tasks, T-001….
  static func longQueue(_ count: Int) throws -> ScratchRepository {
    let repository = try ScratchRepository()
    let store = try repository.store()
    for index in 1...count {
      try repository.addTask(String(format: "T-%03d", index), body: "Task number \(index)", store: store)
    }
    return repository
  }

  @Test func longOutputGoesThroughLessOnATerminal() throws {
    let repository = try Self.longQueue(40)
    let pane = try TmuxPane(columns: 80, rows: 20, directory: repository.path, command: "git taskq status")
    defer { pane.close() }
    // less (LESS=FRX) waits on a full screen with its prompt on the last line.
    let lines = try pane.wait { $0.contains("todo (40)") && $0.last { !$0.isEmpty }?.hasPrefix(":") == true }
    #expect(!lines.contains { $0.contains("[exit") })
    try pane.send("q")
    try pane.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
  }

  @Test(arguments: ["git --no-pager taskq status", "git -P taskq status", "git taskq status | cat"])
  func noPagerWhenGitSaysSoOrOutputIsAPipe(command: String) throws {
    let repository = try Self.longQueue(40)
    let pane = try TmuxPane(columns: 80, rows: 20, directory: repository.path, command: command)
    defer { pane.close() }
    let lines = try pane.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    #expect(lines.contains { $0.hasPrefix("  T-040") })
  }

  @Test func aShortOutputPrintsAndReturnsAtOnce() throws {
    let repository = try Self.longQueue(3)
    let pane = try TmuxPane(columns: 80, rows: 20, directory: repository.path, command: "git taskq status")
    defer { pane.close() }
    let lines = try pane.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    #expect(lines.contains { $0.hasPrefix("todo (3)") })
  }

  @Test func gitPagerAndPagerTaskqChooseThePager() throws {
    let repository = try Self.longQueue(40)
    try repository.git("config", "pager.taskq", "sed s/^/PAGED:/")
    let pane = try TmuxPane(columns: 80, rows: 20, directory: repository.path, command: "git taskq log -n 3")
    defer { pane.close() }
    let lines = try pane.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    #expect(lines.filter { $0.hasPrefix("PAGED:") }.count == 3, "\(lines)")
    let environment = try TmuxPane(
      columns: 80, rows: 50, directory: repository.path, command: "git taskq show --id T-001",
      environment: ["GIT_PAGER": "sed s/^/GIT_PAGER:/"])
    defer { environment.close() }
    let shown = try environment.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    #expect(shown.first?.hasPrefix("GIT_PAGER:task T-001") == true, "\(shown)")
  }

  @Test func noPagerForJSON() throws {
    let repository = try Self.longQueue(40)
    let pane = try TmuxPane(
      columns: 80, rows: 20, directory: repository.path, command: "git taskq status --json | tail -3",
      environment: ["GIT_PAGER": "sed s/^/PAGED:/"])
    defer { pane.close() }
    var lines = try pane.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    #expect(!lines.contains { $0.hasPrefix("PAGED:") })
    // On the terminal itself too.
    let direct = try TmuxPane(
      columns: 80, rows: 60, directory: repository.path, command: "git taskq show --id T-001 --json",
      environment: ["GIT_PAGER": "sed s/^/PAGED:/"])
    defer { direct.close() }
    lines = try direct.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    #expect(!lines.contains { $0.hasPrefix("PAGED:") })
    #expect(lines.contains { $0.contains("\"record\"") })
  }

  /// A queue a user would look at: a long id, a long branch, a long title, a dependency, a failure, a
  /// review, and many finished tasks.
  static func mixedQueue(todo: Int = 3, cancelled: Int = 8) throws -> ScratchRepository {
    let repository = try ScratchRepository()
    let store = try repository.store()
    try repository.addTask(
      "T-001", body: "Implement the --verbose flag for every subcommand of the CLI so users see progress",
      store: store)
    try repository.addTask("T-002", body: "Fix the importer", dependsOn: ["T-001"], priority: 5, store: store)
    try store.add(
      NewTask(
        id: "T-this-is-a-very-long-task-identifier-000", repo: repository.path, base: "main",
        branch: "feature/a-very-long-branch-name-that-goes-on-and-on-forever-and-ever-x", body: "Long id"))
    for index in 0..<max(0, todo - 3) {
      try repository.addTask(String(format: "Q-%03d", index), body: "Queued task \(index)", store: store)
    }
    try repository.addTask("R-1", body: "Review me", store: store)
    try repository.drive("R-1", to: .review, store: store)
    try repository.addTask("F-1", body: "Fails", store: store)
    try repository.drive("F-1", to: .planning, store: store)
    try store.fail("F-1", summary: "make-plan: exit status 1", report: "# report\n")
    for index in 1...cancelled {
      try repository.addTask("C-\(index)", body: "Dropped \(index)", store: store)
      try store.cancel("C-\(index)")
    }
    return repository
  }

  @Test func statusFitsEightyColumns() throws {
    let repository = try Self.mixedQueue()
    let pane = try TmuxPane(
      columns: 80, rows: 40, directory: repository.path, command: "git taskq status",
      environment: ["GIT_PAGER": "cat"])
    defer { pane.close() }
    let lines = try pane.wait { $0.contains { $0.hasPrefix("[exit 0]") } }
    let shown = lines.prefix { !$0.hasPrefix("[exit") }
    // Every row fits: none wraps (a wrapped row would start without the two-space indent or a header).
    #expect(shown.allSatisfy { $0.count <= 80 }, "\(shown)")
    let rows = shown.filter { $0.hasPrefix("  ") }
    #expect(rows.count == 3 + 1 + 1 + 5 + 1, "\(shown)")
    #expect(rows.contains { $0.hasPrefix("  T-this-is-a-ver… ") })
    #expect(rows.contains { $0.contains("Implement the --verbose") })
    #expect(rows.contains { $0.contains("waiting on T-001") })
    #expect(rows.contains { $0.hasPrefix("  … 3 more cancelled (git taskq status --all)") })
    // The titles start in one column.
    let offsets = ["  Implement the --verbose", "  Long id", "  Fix the i"].compactMap { title in
      rows.lazy.compactMap { $0.range(of: title)?.lowerBound.utf16Offset(in: $0) }.first
    }
    #expect(offsets.count == 3 && Set(offsets).count == 1, "\(shown)")
  }

  @Test func watchCollapsesLongGroupsSoReviewAndFailedStayOnScreen() throws {
    let repository = try Self.mixedQueue(todo: 60)
    let pane = try TmuxPane(columns: 80, rows: 24, directory: repository.path, command: "git taskq status --watch 1")
    defer { pane.close() }
    let lines = try pane.wait {
      $0.contains { $0.hasPrefix("review (1)") } && $0.contains { $0.hasPrefix("failed (1)") }
    }
    #expect(lines.contains { $0.hasPrefix("todo (60)") })
    #expect(lines.contains { $0.contains("more todo") }, "\(lines)")
    #expect(lines.contains { $0.hasPrefix("  R-1") } && lines.contains { $0.hasPrefix("  F-1") })
    #expect(lines.contains { $0.hasPrefix("cancelled (8)") })
    #expect(lines.allSatisfy { $0.count <= 80 })
  }

  /// The `run` board at 60 columns with a long id: every line fits (no stale line at a redraw), totals,
  /// one line per active task, the cursor hidden while it draws and back at the end, and a summary that
  /// names the tasks left in todo and why.
  @Test func runBoardAtSixtyColumnsWithALongID() throws {
    let world = try FakeWorld()
    let store = try world.repository.store()
    let long = "T-a-very-long-task-identifier-for-the-board-0001"
    try world.repository.addTask(long, body: "Long one", store: store)
    try world.repository.addTask("T-2", body: "Second", store: store)
    try world.repository.addTask("T-3", body: "Needs T-2", dependsOn: ["T-2"], store: store)
    try world.repository.addTask("T-4", body: "Dropped", store: store)
    try world.repository.addTask("T-5", body: "Needs T-4", dependsOn: ["T-4"], store: store)
    try store.cancel("T-4")
    var environment = world.runEnvironment(["FAKE_OPENCODE_DELAY": "1"])
    environment["NO_COLOR"] = nil
    environment["TERM"] = "xterm-256color"
    let pane = try TmuxPane(
      columns: 60, rows: 24, directory: world.path, command: "git taskq run --max-parallel 2",
      environment: environment.filter { $0.key != "PATH" }.merging(["PATH": environment["PATH"] ?? ""]) { $1 })
    defer { pane.close() }
    let middle = try pane.wait(timeout: 150) { $0.contains { $0.contains("▸ T-a-very") } }
    #expect(middle.contains { $0.hasPrefix("running ") && $0.contains("queued") && $0.contains("review") })
    #expect(middle.allSatisfy { $0.count <= 60 }, "\(middle)")
    #expect(try pane.tmux(["display-message", "-p", "#{cursor_flag}"]).hasPrefix("0"))
    #expect(try pane.screenWithEscapes().contains("\u{1B}["))
    let end = try pane.wait(timeout: 150) { $0.contains { $0.hasPrefix("[exit") } }
    let before = end.prefix { !$0.hasPrefix("[exit") }
    // No board left behind: its lines are gone, each finished task is one line.
    #expect(!before.contains { $0.contains("▸") }, "\(before)")
    #expect(!before.contains { $0.hasPrefix("running ") }, "\(before)")
    let events = before.filter { $0.range(of: #"^\d\d:\d\d:\d\d "#, options: .regularExpression) != nil }
    #expect(events.count == 2, "\(before)")
    #expect(events.allSatisfy { $0.count <= 60 })
    #expect(events.contains { $0.hasSuffix(" T-2: building → review (ready for review)") })
    #expect(try pane.tmux(["display-message", "-p", "#{cursor_flag}"]).hasPrefix("1"))
    // The summary on standard output is plain text (the terminal may wrap it).
    let summary = before.filter { !events.contains($0) }.joined()
    #expect(summary.contains("review (2):"), "\(summary)")
    #expect(
      summary.contains("left in todo (2): T-3 waiting on T-2 (review); T-5 blocked by T-4 (cancelled)"), "\(summary)")
  }

  /// `run --poll` says that it waits; Ctrl-C ends it with the cursor shown again.
  @Test func pollShowsItWaitsAndCtrlCGivesTheCursorBack() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-1", body: "One")
    var environment = world.runEnvironment()
    environment["TERM"] = "xterm-256color"
    let pane = try TmuxPane(
      columns: 60, rows: 20, directory: world.path, command: "trap true INT; git taskq run --poll 1",
      environment: environment)
    defer { pane.close() }
    let waiting = try pane.wait(timeout: 150) { lines in
      lines.contains { $0.contains("waiting for tasks to run (checking every 1s)") || $0.hasPrefix("[exit") }
    }
    #expect(waiting.contains { $0.contains("waiting for tasks to run (checking every 1s)") }, "\(waiting)")
    #expect(try pane.tmux(["display-message", "-p", "#{cursor_flag}"]).hasPrefix("0"))
    try pane.send("C-c")
    let end = try pane.wait(timeout: 120) { $0.contains { $0.hasPrefix("[exit") } }
    #expect(end.contains("[exit 130]"), "\(end)")
    #expect(!end.contains { $0.contains("waiting for tasks") })
    #expect(try pane.tmux(["display-message", "-p", "#{cursor_flag}"]).hasPrefix("1"))
  }
}
