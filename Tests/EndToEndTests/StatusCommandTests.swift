import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `git taskq status` as text: aligned columns, the notes of each status, and colour chosen as git does.
@Suite struct StatusCommandTests {
  /// A queue with a task in each interesting state: T-1 todo, T-2 todo waiting on T-1 (priority 5), T-3
  /// failed with a two-line error, T-4 in review with a port, T-5 cancelled before it ran.
  static func populated() throws -> ScratchRepository {
    let repository = try ScratchRepository()
    let store = try repository.store()
    try repository.addTask("T-1", store: store)
    try repository.addTask("T-2", dependsOn: ["T-1"], priority: 5, store: store)
    try repository.addTask("T-3", store: store)
    try repository.drive("T-3", to: .planning, store: store)
    try store.fail("T-3", summary: "opencode run --command make-plan: exit status 1\nsecond line", report: "# report\n")
    try repository.addTask("T-4", store: store)
    try repository.drive("T-4", to: .review, store: store)
    try store.update { tx in
      var record = try tx.existing("T-4")
      record.port = 4123
      tx.put(record)
      tx.operation = Operation(
        kind: "port", task: "T-4", from: .review, to: .review, worker: tx.worker, detail: "port 4123")
    }
    try repository.addTask("T-5", store: store)
    try store.cancel("T-5")
    return repository
  }

  /// The environment of a run that must not see the developer's colour settings.
  static let plain = ["NO_COLOR": "", "TERM": "xterm-256color", "GIT_CONFIG_PARAMETERS": ""]

  @Test func groupsInLifecycleOrderWithAlignedColumnsAndNotes() throws {
    let repository = try Self.populated()
    let result = try repository.taskqOK("status", environment: Self.plain)
    let lines = result.stdoutText.components(separatedBy: "\n").filter { !$0.isEmpty }
    let headers = lines.filter { !$0.hasPrefix(" ") }
    #expect(headers == ["todo (2)", "review (1)", "failed (1)", "cancelled (1)"])
    let byID = Dictionary(
      lines.filter { $0.hasPrefix("  ") }.map { line in
        (String(line.dropFirst(2).prefix { $0 != " " }), line)
      }, uniquingKeysWith: { a, _ in a })
    // Priority first within a group.
    #expect(lines[1].hasPrefix("  T-2 "))
    #expect(byID["T-2"]?.contains("priority 5") == true)
    #expect(byID["T-2"]?.contains("waiting on T-1") == true)
    #expect(byID["T-4"]?.contains("attempt 1") == true)
    #expect(byID["T-4"]?.contains("port 4123") == true)
    #expect(byID["T-3"]?.hasSuffix("error: opencode run --command make-plan: exit status 1") == true)
    #expect(byID["T-3"]?.contains("second line") == false)
    // Never ran: no attempt.
    #expect(byID["T-5"]?.contains("attempt") == false)
    #expect(byID["T-1"]?.contains("attempt") == false)
    // Columns line up: the branch starts at the same offset on every line.
    let offsets = Set(
      byID.map { id, line in
        line.range(of: "task/\(id)").map { line.distance(from: line.startIndex, to: $0.lowerBound) }
      })
    #expect(offsets.count == 1, "\(result.stdoutText)")
    #expect(!result.stdoutText.contains("\u{1B}"))
    // No trailing blanks.
    #expect(lines.allSatisfy { !$0.hasSuffix(" ") })
  }

  @Test func blockedByACancelledDependency() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    try repository.addTask("T-2", dependsOn: ["T-1"])
    try repository.store().cancel("T-1")
    let result = try repository.taskqOK("status", "--id", "T-2", environment: Self.plain)
    #expect(result.stdoutText.hasPrefix("todo (1)\n  T-2 "))
    #expect(result.stdoutText.contains("blocked by T-1 (cancelled)"))
  }

  /// The note of a todo task T-2 that depends on T-1, for each state T-1 can be in.
  static let dependencyNotes: [(TaskStatus?, String?)] = [
    (.todo, "waiting on T-1 (todo)"), (.planning, "waiting on T-1 (planning)"),
    (.building, "waiting on T-1 (building)"), (.review, "waiting on T-1 (review)"),
    (.failed, "waiting on T-1 (failed)"), (.done, nil), (.cancelled, "blocked by T-1 (cancelled)"),
    (nil, "blocked by T-1 (removed)"),
  ]

  /// `status` and `status --id` say the same of every dependency state (one function decides it).
  @Test(arguments: dependencyNotes)
  func statusAndStatusIDAgreeOnDependencies(state: TaskStatus?, note: String?) throws {
    let repository = try ScratchRepository()
    let store = try repository.store()
    try repository.addTask("T-1", store: store)
    try repository.addTask("T-2", dependsOn: ["T-1"], store: store)
    if let state {
      try repository.drive("T-1", to: state, store: store)
    } else {
      // A dependency that is gone (removed on another machine before this one synced).
      try store.update { tx in
        tx.removeTask("T-1")
        tx.operation = Operation(kind: "remove", task: "T-1", from: .todo, to: nil, worker: tx.worker)
      }
    }
    let all = try repository.taskqOK("status", environment: Self.plain).stdoutText
    let one = try repository.taskqOK("status", "--id", "T-2", environment: Self.plain).stdoutText
    let lineOfT2 = { (text: String) in text.components(separatedBy: "\n").first { $0.hasPrefix("  T-2 ") } ?? "" }
    for line in [lineOfT2(all), lineOfT2(one)] {
      if let note {
        #expect(line.hasSuffix(note), "\(line)")
      } else {
        #expect(!line.contains("waiting") && !line.contains("blocked"), "\(line)")
      }
    }
  }

  @Test func finishedGroupsShowTheMostRecentFiveUnlessAll() throws {
    let repository = try ScratchRepository()
    let store = try repository.store()
    for index in 1...8 {
      try repository.addTask("C-\(index)", body: "# Dropped \(index)\n\nbody", store: store)
      try store.cancel("C-\(index)")
    }
    let text = try repository.taskqOK("status", environment: Self.plain).stdoutText
    let lines = text.components(separatedBy: "\n").filter { !$0.isEmpty }
    #expect(lines.first == "cancelled (8)")
    #expect(lines.count == 1 + 5 + 1, "\(text)")
    #expect(lines.last == "  … 3 more cancelled (git taskq status --all)")
    // The title: the first line of the body, without its heading marks.
    #expect(lines[1].hasSuffix("Dropped 8") || lines[1].contains("Dropped 8 "), "\(lines[1])")
    let all = try repository.taskqOK("status", "--all", environment: Self.plain).stdoutText
    #expect(all.components(separatedBy: "\n").filter { $0.hasPrefix("  C-") }.count == 8)
    #expect(!all.contains("more cancelled"))
  }

  /// A queue of thousands stays readable, and `status` reads a bounded number of task files for titles.
  @Test func aLongGroupShowsItsFirstFiftyUnlessAll() throws {
    let repository = try ScratchRepository()
    let store = try repository.store()
    for index in 1...55 { try repository.addTask(String(format: "T-%02d", index), store: store) }
    let text = try repository.taskqOK("status", environment: Self.plain).stdoutText
    let rows = text.components(separatedBy: "\n").filter { $0.hasPrefix("  ") }
    #expect(rows.count == 51)
    #expect(rows.dropLast().last?.hasPrefix("  T-50 ") == true)
    #expect(rows.last == "  … 5 more todo (git taskq status --all)")
    let all = try repository.taskqOK("status", "--all", environment: Self.plain).stdoutText
    #expect(all.components(separatedBy: "\n").filter { $0.hasPrefix("  T-") }.count == 55)
  }

  @Test func emptyQueueSaysHowToAdd() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskqOK("status", environment: Self.plain)
    #expect(result.stdoutText == "no tasks (add one with 'git taskq add')\n")
  }

  @Test func unknownIDIsAnError() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("status", "--id", "T-9", environment: Self.plain)
    #expect(result.status == 1)
    #expect(result.stderrText == "error: task 'T-9' not found (see 'git taskq status')\n")
  }

  // MARK: Colour

  /// Whether `text` has an SGR escape sequence.
  static func isColored(_ text: String) -> Bool { text.contains("\u{1B}[") }

  @Test(
    arguments: [
      // (arguments, environment, git config, coloured?)
      (["--color=always"], [:], [:], true),
      (["--color"], [:], [:], true),
      (["--color", "always"], [:], [:], true),
      (["--color=never"], [:], ["color.ui": "always"], false),
      (["--no-color"], [:], ["color.ui": "always"], false),
      (["--color=auto"], [:], ["color.ui": "always"], false),
      ([], [:], [:], false),
      ([], [:], ["color.ui": "always"], true),
      ([], [:], ["color.ui": "true"], false),
      ([], [:], ["color.taskq": "always", "color.ui": "never"], true),
      ([], [:], ["color.taskq": "never", "color.ui": "always"], false),
      ([], ["NO_COLOR": "1"], ["color.ui": "always"], false),
      (["--color=always"], ["NO_COLOR": "1"], [:], true),
      ([], ["GIT_CONFIG_PARAMETERS": "'color.ui'='always'"], [:], true),
      ([], ["GIT_CONFIG_PARAMETERS": "'color.ui=always'"], [:], true),
      ([], ["GIT_CONFIG_PARAMETERS": "'color.taskq'='never'"], ["color.ui": "always"], false),
      ([], ["GIT_PAGER_IN_USE": "true"], [:], true),
      ([], ["GIT_PAGER_IN_USE": "true", "TERM": "dumb"], [:], false),
    ] as [([String], [String: String], [String: String], Bool)])
  func colourFollowsGit(arguments: [String], environment: [String: String], config: [String: String], colored: Bool)
    throws
  {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    for (key, value) in config { try repository.git("config", key, value) }
    let result = try repository.runTaskqOK(
      (["status"] + arguments), environment: Self.plain.merging(environment) { _, new in new })
    #expect(Self.isColored(result.stdoutText) == colored, "\(arguments) \(environment) \(config): \(result.stdoutText)")
  }

  @Test func gitDashCReachesTheColourChoice() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let path = "\(Taskq.binaryDirectory):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"
    let env = Self.plain.merging(["PATH": path]) { _, new in new }
    let always = try ProcessRunner.run(
      ProcessSpec(
        "git", ["-c", "color.ui=always", "taskq", "status"], environment: env, directory: repository.path, timeout: 60))
    #expect(always.succeeded, "\(always.summary)")
    #expect(Self.isColored(always.stdoutText))
    let never = try ProcessRunner.run(
      ProcessSpec(
        "git", ["-c", "color.ui=never", "taskq", "status", "--color=auto"], environment: env,
        directory: repository.path, timeout: 60))
    #expect(!Self.isColored(never.stdoutText))
  }

  @Test func colourMarksStatusesAndErrors() throws {
    let repository = try Self.populated()
    let result = try repository.taskqOK("status", "--color=always", environment: Self.plain)
    let text = result.stdoutText
    #expect(text.contains("\u{1B}[1;33mtodo (2)\u{1B}[m"))
    #expect(text.contains("\u{1B}[1;32mreview (1)\u{1B}[m"))
    #expect(text.contains("\u{1B}[1;31mfailed (1)\u{1B}[m"))
    #expect(text.contains("\u{1B}[31merror: opencode run --command make-plan: exit status 1\u{1B}[m"))
    #expect(text.contains("\u{1B}[33mwaiting on T-1 (todo)\u{1B}[m"))
    // Without the escapes it is the plain text (ages may have ticked between the two runs).
    func normalized(_ text: String) -> String {
      text.replacingOccurrences(of: "\u{1B}\\[[0-9;]*m", with: "", options: .regularExpression)
        .replacingOccurrences(of: "  [0-9]+[smhd]  ", with: "  AGE  ", options: .regularExpression)
        .replacingOccurrences(of: " +", with: " ", options: .regularExpression)
    }
    #expect(normalized(text) == normalized(try repository.runTaskqOK(["status"], environment: Self.plain).stdoutText))
  }

  @Test func badColorValueIsAUsageError() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("status", "--color=sometimes", environment: Self.plain)
    #expect(result.status == 64)
  }

  // MARK: --watch in a pipe (the terminal is StatusWatchTests')

  @Test func watchInAPipePrintsFramesUntilStopped() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    let spec = ProcessSpec(
      Taskq.binary, ["status", "--watch", "0.2"],
      environment: Self.plain.merging(["GIT_CONFIG_NOSYSTEM": "1"]) { _, n in n },
      directory: repository.path, timeout: 1.5)
    let result = try ProcessRunner.run(spec)
    #expect(result.ending == .timedOut)
    let frames = result.stdoutText.components(separatedBy: "Every 0.2s: git taskq status")
    #expect(frames.count >= 3, "\(result.stdoutText)")
    #expect(result.stdoutText.contains("  T-1 "))
    #expect(!Self.isColored(result.stdoutText))
  }

  @Test(arguments: [["--watch", "0"], ["--watch", "-3"], ["--watch", "--json"], ["--json", "--watch", "5"]])
  func watchRefusesBadUsage(arguments: [String]) throws {
    let repository = try ScratchRepository()
    let result = try repository.runTaskq((["status"] + arguments), environment: Self.plain)
    #expect(result.status == 64, "\(result.summary)")
  }
}

extension ScratchRepository {
  /// Runs the built `git-taskq` with an argument array and throws unless it exits 0.
  @discardableResult
  func runTaskqOK(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    let result = try Taskq.run(arguments, in: path, environment: environment)
    guard result.succeeded else {
      throw TestFailure("git-taskq \(arguments.joined(separator: " ")): \(result.summary)")
    }
    return result
  }

  /// Runs the built `git-taskq` with an argument array.
  @discardableResult
  func runTaskq(_ arguments: [String], environment: [String: String] = [:]) throws -> ProcessResult {
    try Taskq.run(arguments, in: path, environment: environment)
  }
}
