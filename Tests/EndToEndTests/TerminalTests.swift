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
}
