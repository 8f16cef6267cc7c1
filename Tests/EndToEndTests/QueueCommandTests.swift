import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// Every queue command and flag of the built binary in scratch repositories: add, status, show, log,
/// approve, cancel, retry, remove, config.
@Suite struct QueueCommandTests {
  // MARK: add

  @Test func addWithTaskPrintsTheResolvedValuesAndStoresTheRecord() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskqOK("add", "--id", "T-001", "--task", "Implement cleanup feature")
    #expect(result.stdoutText == "T-001: added (todo) repo=\(repository.path) base=main branch=task/T-001\n")
    #expect(result.stderrText.isEmpty)
    let records = try repository.taskqOK("status", "--json").jsonObjects()
    #expect(records.count == 1)
    let record = try #require(records.first)
    #expect(record["id"] as? String == "T-001")
    // The queue's own repository, stored so that every clone finds itself ('.').
    #expect(record["repo"] as? String == ".")
    #expect(record["base"] as? String == "main")
    #expect(record["branch"] as? String == "task/T-001")
    #expect(record["status"] as? String == "todo")
    #expect(record["attempt"] as? Int == 0)
    #expect(record["worktree_path"] is NSNull)
    let taskFile = try #require(record["task_file"] as? String)
    #expect(taskFile == "refs/taskq/queue:tasks/\(try sha256sumBucket("T-001"))/T-001/task.md")
    #expect(try repository.git("show", taskFile).hasSuffix("---\nImplement cleanup feature"))
  }

  @Test func addTakesEveryFlag() throws {
    let repository = try ScratchRepository()
    let other = try ScratchRepository()
    try other.git("branch", "develop")
    try repository.taskqOK("add", "--id", "A", "--task", "first")
    try repository.taskqOK("add", "--id", "B", "--task", "second")
    let result = try repository.taskqOK(
      "add", "--id", "T-2", "--repo", other.path, "--base", "develop", "--branch", "feature/my-branch",
      "--worktree-path", "/tmp/worktrees/T-2", "--priority", "5", "--depends-on", "A, B", "--task", "Fix bug Y")
    #expect(result.stdoutText == "T-2: added (todo) repo=\(other.path) base=develop branch=feature/my-branch\n")
    let record = try repository.taskqOK("status", "--id", "T-2", "--json").jsonObject()
    #expect(record["repo"] as? String == other.path)
    #expect(record["base"] as? String == "develop")
    #expect(record["branch"] as? String == "feature/my-branch")
    #expect(record["worktree_path"] as? String == "/tmp/worktrees/T-2")
    #expect(record["priority"] as? Int == 5)
    #expect(record["depends_on"] as? [String] == ["A", "B"])
    #expect(record["seq"] as? Int == 3)
    // The canonical task file holds every resolved value.
    let canonical = try repository.git("show", try #require(record["task_file"] as? String))
    for line in [
      "id: T-2", "repo: \(other.path)", "base: develop", "branch: feature/my-branch",
      "worktree_path: /tmp/worktrees/T-2", "priority: 5", "- A", "- B",
    ] {
      #expect(canonical.contains(line + "\n"), "\(line) missing from \(canonical)")
    }
    // The other repository's queue is untouched: the queue lives where the command ran.
    #expect(try other.queueTip() == nil)
  }

  @Test func aRelativeWorktreePathIsMadeAbsolute() throws {
    let repository = try ScratchRepository()
    try FileManager.default.createDirectory(atPath: repository.path + "/sub", withIntermediateDirectories: true)
    let result = try repository.taskq(
      ["add", "--id", "T-1", "--task", "x", "--worktree-path", "../wt/T-1"], in: repository.path + "/sub")
    #expect(result.status == 0, "\(result.summary)")
    let record = try repository.taskqOK("status", "--id", "T-1", "--json").jsonObject()
    #expect(record["worktree_path"] as? String == repository.path + "/wt/T-1")
  }

  @Test func addFromATaskFileReadsTheFrontmatterAndLeavesTheFileUnchanged() throws {
    let repository = try ScratchRepository()
    let other = try ScratchRepository()
    try other.git("branch", "release")
    let text = """
      ---
      id: T-EXAMPLE
      repo: \(other.path)
      base: release
      branch: feature/example
      worktree_path: /tmp/wt/example
      ---
      Implement a small change with tests.

      Acceptance criteria:
      - Keep changes scoped.

      """
    let file = try repository.directory.write("tasks/example-task.md", text)
    try backdate(file, "2 days ago")
    let before = try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date
    let result = try repository.taskqOK("add", "--task-file", file)
    #expect(result.stdoutText == "T-EXAMPLE: added (todo) repo=\(other.path) base=release branch=feature/example\n")
    #expect(try String(contentsOfFile: file, encoding: .utf8) == text)
    #expect(try FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date == before)
    let show = try repository.taskqOK("show", "--id", "T-EXAMPLE", "--json").jsonObject()
    let stored = try #require(show["task_file"] as? String)
    #expect(
      stored.hasSuffix("---\nImplement a small change with tests.\n\nAcceptance criteria:\n- Keep changes scoped.\n"))
    let record = try #require(show["record"] as? [String: Any])
    #expect(record["worktree_path"] as? String == "/tmp/wt/example")
  }

  @Test func theIDDefaultsToTheFileStemAndFlagsOverrideTheFrontmatter() throws {
    let repository = try ScratchRepository()
    try repository.git("branch", "develop")
    let file = try repository.directory.write("T-003.md", "---\nbase: nonexistent\nbranch: from-file\n---\nBody\n")
    let result = try repository.taskqOK("add", "--task-file", file, "--base", "develop", "--branch", "from-flag")
    #expect(result.stdoutText == "T-003: added (todo) repo=\(repository.path) base=develop branch=from-flag\n")
    // --id wins over the frontmatter and the stem.
    let named = try repository.directory.write("stem.md", "---\nid: FROM-FILE\n---\nBody\n")
    #expect(
      try repository.taskqOK("add", "--task-file", named, "--id", "FROM-FLAG").stdoutText.hasPrefix("FROM-FLAG: added"))
    let crlf = try repository.directory.write("T-CRLF.md", "\u{FEFF}---\r\npriority: 2\r\n---\r\nWindows body\r\n")
    try repository.taskqOK("add", "--task-file", crlf)
    let record = try repository.taskqOK("status", "--id", "T-CRLF", "--json").jsonObject()
    #expect(record["priority"] as? Int == 2)
  }

  @Test func addReadsTheTaskFileFromStandardInput() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--task-file", "-", "--id", "T-STDIN", input: "Body from a pipe.\n")
    try repository.taskqOK("add", "--task-file", "-", input: "---\nid: T-FM\npriority: 3\n---\nWith frontmatter.\n")
    // Larger than a pipe's buffer: read to the end.
    let big = String(repeating: "0123456789abcdef\n", count: 20_000)
    try repository.taskqOK("add", "--task-file", "-", "--id", "T-BIG", input: big)
    let show = try repository.taskqOK("show", "--id", "T-STDIN", "--json").jsonObject()
    #expect((show["task_file"] as? String)?.hasSuffix("---\nBody from a pipe.\n") == true)
    let fm = try repository.taskqOK("status", "--id", "T-FM", "--json").jsonObject()
    #expect(fm["priority"] as? Int == 3)
    let stored = try repository.git("show", "refs/taskq/queue:tasks/\(try sha256sumBucket("T-BIG"))/T-BIG/task.md")
    #expect(stored.hasSuffix(big.trimmingCharacters(in: .newlines)))
    #expect(stored.utf8.count > big.utf8.count - 1)
    // Without an id anywhere, stdin has no stem to fall back on.
    let missing = try repository.taskq("add", "--task-file", "-", input: "Body\n")
    #expect(missing.status == 1)
    #expect(missing.stderrLines == ["error: no task id: pass --id, or put 'id:' in the frontmatter"])
  }

  @Test func dependsOnInTheFrontmatterAsAListAndAsAString() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "A", "--task", "a")
    try repository.taskqOK("add", "--id", "B", "--task", "b")
    let list = try repository.directory.write("L.md", "---\ndepends_on:\n  - A\n  - B\n---\nBody\n")
    let string = try repository.directory.write("S.md", "---\ndepends_on: A,B\n---\nBody\n")
    try repository.taskqOK("add", "--task-file", list)
    try repository.taskqOK("add", "--task-file", string)
    for id in ["L", "S"] {
      #expect(
        try repository.taskqOK("status", "--id", id, "--json").jsonObject()["depends_on"] as? [String] == ["A", "B"])
    }
  }

  // MARK: --repo

  @Test func repoIsTheCurrentRepositoryByDefault() throws {
    let repository = try ScratchRepository()
    try FileManager.default.createDirectory(atPath: repository.path + "/deep/er", withIntermediateDirectories: true)
    let result = try repository.taskq(["add", "--id", "T-1", "--task", "x"], in: repository.path + "/deep/er")
    #expect(result.status == 0, "\(result.summary)")
    #expect(try repository.taskqOK("status", "--id", "T-1", "--json").jsonObject()["repo"] as? String == ".")
  }

  @Test func repoAsARelativePath() throws {
    let repository = try ScratchRepository()
    try Git.run(["init", "-q", "-b", "main", repository.directory.path + "/other"], in: repository.directory.path)
    try Git.run(
      ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"],
      in: repository.directory.path + "/other")
    try repository.taskqOK("add", "--id", "T-1", "--task", "x", "--repo", "../other")
    try repository.taskqOK("add", "--id", "T-2", "--task", "x", "--repo", "./")
    #expect(
      try repository.taskqOK("status", "--id", "T-1", "--json").jsonObject()["repo"] as? String
        == repository.directory.path + "/other")
    // A path naming the queue's own repository is stored as '.'.
    #expect(try repository.taskqOK("status", "--id", "T-2", "--json").jsonObject()["repo"] as? String == ".")
  }

  @Test func repoAsAShortNameUnderTheReposRootFromGitConfig() throws {
    let repository = try ScratchRepository()
    let root = try ScratchDirectory()
    try Git.run(["init", "-q", "-b", "main", root.path + "/sisifo"], in: root.path)
    try Git.run(
      ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"],
      in: root.path + "/sisifo")
    try repository.git("config", "taskq.reposRoot", root.path)
    let result = try repository.taskqOK("add", "--id", "T-1", "--repo", "sisifo", "--task", "Fix bug Y")
    #expect(result.stdoutText.contains("repo=\(root.path)/sisifo "))
    // Stored as the name: every machine resolves it under its own taskq.reposRoot.
    #expect(try repository.taskqOK("status", "--id", "T-1", "--json").jsonObject()["repo"] as? String == "sisifo")
    #expect(try repository.taskqOK("config").stdoutText.contains("\(root.path)  [git config (local)]"))
  }

  @Test func repoAsAShortNameUnderTheReposRootFromTheEnvironment() throws {
    let repository = try ScratchRepository()
    let root = try ScratchDirectory()
    try Git.run(["init", "-q", "-b", "main", root.path + "/sisifo"], in: root.path)
    try Git.run(
      ["-c", "user.name=T", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "init"],
      in: root.path + "/sisifo")
    // The environment wins over git config.
    try repository.git("config", "taskq.reposRoot", "/nonexistent/root")
    let env = ["TASKQ_REPOS_ROOT": root.path]
    let result = try repository.taskqOK("add", "--id", "T-1", "--repo", "sisifo", "--task", "x", environment: env)
    #expect(result.stdoutText.contains("repo=\(root.path)/sisifo "))
    // A short name from the frontmatter resolves the same way.
    let file = try repository.directory.write("T-2.md", "---\nrepo: sisifo\n---\nBody\n")
    #expect(
      try repository.taskqOK("add", "--task-file", file, environment: env).stdoutText.contains(
        "repo=\(root.path)/sisifo "))
    #expect(try repository.taskqOK("config", environment: env).stdoutText.contains("[environment TASKQ_REPOS_ROOT]"))
  }

  @Test func theBaseDefaultsToTaskqBase() throws {
    let repository = try ScratchRepository()
    try repository.git("branch", "trunk")
    try repository.git("config", "taskq.base", "trunk")
    #expect(try repository.taskqOK("add", "--id", "T-1", "--task", "x").stdoutText.contains(" base=trunk "))
    let missing = try repository.taskq("add", "--id", "T-2", "--task", "x", environment: ["TASKQ_BASE": "gone"])
    #expect(missing.status == 1)
    #expect(
      missing.stderrLines == [
        "error: base branch 'gone' does not exist in '\(repository.path)' (pass --base, or create it)"
      ])
  }

  // MARK: status

  @Test func statusJSONIsAnArrayWithTheSeedFieldNames() throws {
    let repository = try ScratchRepository()
    #expect(try repository.taskqOK("status", "--json").jsonObjects().isEmpty)
    for id in ["T-1", "T-2", "T-3"] { try repository.taskqOK("add", "--id", id, "--task", "x") }
    try repository.drive("T-2", to: .review)
    let records = try repository.taskqOK("status", "--json").jsonObjects()
    #expect(records.map { $0["id"] as? String } == ["T-1", "T-2", "T-3"])
    for record in records {
      for field in seedRecordFields {
        #expect(record.keys.contains(field), "status --json lacks '\(field)'")
      }
      let created = try #require(record["created_at"] as? String)
      #expect(Timestamp.parse(created) != nil && created.hasSuffix("+00:00"))
    }
    // Empty lists print compactly, in every JSON output.
    #expect(try repository.taskqOK("status", "--json").stdoutText.contains("    \"depends_on\" : [],\n"))
    #expect(try repository.taskqOK("show", "--id", "T-1", "--json").stdoutText.contains("\"error_reports\" : [],"))
    #expect(try ScratchRepository().taskqOK("status", "--json").stdoutText == "[]\n")
    // With --id: the single object.
    let one = try repository.taskqOK("status", "--id", "T-2", "--json").jsonObject()
    #expect(one["id"] as? String == "T-2")
    #expect(one["status"] as? String == "review")
  }

  @Test func theSeedsJqFilterKeepsWorking() throws {
    guard ProcessRunner.resolve("jq") != nil else {
      print("QueueCommandTests.theSeedsJqFilterKeepsWorking: skipped, jq is not installed")
      return
    }
    let repository = try ScratchRepository()
    for id in ["T-1", "T-2", "T-3"] { try repository.addTask(id) }
    try repository.drive("T-3", to: .review)
    let script = "'\(Taskq.binary)' status --json | jq -r '.[] | select(.status==\"review\") | .id'"
    let result = try ProcessRunner.run(ProcessSpec("sh", ["-c", script], directory: repository.path, timeout: 60))
    #expect(result.succeeded, "\(result.summary)")
    #expect(result.stdoutText == "T-3\n")
  }

  @Test func statusTextGroupsByStatusWithCounts() throws {
    let repository = try ScratchRepository()
    #expect(try repository.taskqOK("status").stdoutText == "no tasks (add one with 'git taskq add')\n")
    for id in ["T-1", "T-2", "T-3"] { try repository.addTask(id) }
    try repository.store().cancel("T-2")
    let text = try repository.taskqOK("status", environment: ["NO_COLOR": "1"]).stdoutText
    let headers = text.components(separatedBy: "\n").filter { !$0.isEmpty && !$0.hasPrefix(" ") }
    #expect(headers == ["todo (2)", "cancelled (1)"])
    let one = try repository.taskqOK("status", "--id", "T-3", environment: ["NO_COLOR": "1"]).stdoutText
    #expect(one.hasPrefix("todo (1)\n  T-3 "))
    #expect(!one.contains("T-1"))
  }

  /// A forged commit with a 100 KB subject (as a remote could push): `log` cuts it, one bounded line.
  @Test func logCutsAForgedLongSubject() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    let subject = String(repeating: "S", count: 100_000)
    try repository.writeQueueCommitWithCLI(
      meta: "{\"format\": 1, \"next_seq\": 2}\n",
      message: subject + "\n\nTaskq-Op: update\nTaskq-Task: T-1\nTaskq-Worker: forger\n")
    let log = try repository.taskqOK("log")
    let lines = log.stdoutText.components(separatedBy: "\n")
    #expect(lines.count >= 2, "\(log.summary)")
    #expect(lines.allSatisfy { $0.count < 1_000 }, "longest line: \(lines.map(\.count).max() ?? 0)")
    #expect(lines.contains { $0.contains("SSSS") && $0.contains("…") })
  }

  // MARK: show

  @Test func showPrintsTheRecordTheTaskFileAndTheReports() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "Implement feature X", "--priority", "4")
    let text = try repository.taskqOK("show", "--id", "T-1").stdoutText
    #expect(text.hasPrefix("task T-1\n"))
    #expect(text.contains("  status       todo\n"))
    #expect(text.contains("  repo         . (\(repository.path))\n"), "\(text)")
    #expect(text.contains("  priority     4\n"))
    // The attempt as status counts it (from 1); the JSON keeps the retries (from 0).
    #expect(text.contains("  attempt      1 (not run yet)\n"))
    #expect(text.contains("---\nImplement feature X\n"))
    #expect(text.hasSuffix("no error reports\n"))

    let store = try repository.store()
    try store.transition("T-1", to: .planning, command: "claim")
    try store.update { tx in
      var record = try tx.existing("T-1")
      try tx.move(&record, to: .failed, command: "fail")
      try tx.addErrorReport(&record, markdown: "# planning failed\n", summary: "exit status 1")
      tx.put(record)
      tx.operation = Operation(kind: "fail", task: "T-1", from: .planning, to: .failed, worker: tx.worker)
    }
    let json = try repository.taskqOK("show", "--id", "T-1", "--json").jsonObject()
    #expect(Set(json.keys) == ["record", "task_file", "error_reports"])
    let reports = try #require(json["error_reports"] as? [String])
    #expect(reports.count == 1)
    let report = try #require(reports.first)
    #expect(report.hasPrefix("refs/taskq/queue:tasks/\(try sha256sumBucket("T-1"))/T-1/errors/"))
    #expect(try repository.git("show", report) == "# planning failed")
    let record = try #require(json["record"] as? [String: Any])
    #expect(record["error_file"] as? String == report)
    #expect(record["status"] as? String == "failed")
    #expect(record["attempt"] as? Int == 0)
    let failedText = try repository.taskqOK("show", "--id", "T-1").stdoutText
    #expect(failedText.contains("  attempt      1\n"))
    let status = try repository.taskqOK("status", "--id", "T-1").stdoutText
    #expect(status.contains("  attempt 1  "))
    #expect(failedText.contains("error reports (read with 'git show <name>'):\n  \(report)\n"))
  }

  // MARK: log

  @Test func logShowsTheHistoryNewestFirst() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    try repository.taskqOK("add", "--id", "T-2", "--task", "x")
    try repository.taskqOK("cancel", "--id", "T-1")
    try repository.taskqOK("remove", "--id", "T-1")
    let lines = try repository.taskqOK("log").stdoutText.components(separatedBy: "\n").filter { !$0.isEmpty }
    #expect(lines.count == 4)
    let subjects = ["T-1: removed (was cancelled)", "T-1: todo → cancelled", "T-2: added (todo)", "T-1: added (todo)"]
    for (line, subject) in zip(lines, subjects) {
      #expect(line.contains("  \(subject)  ["), "\(line)")
    }
    let hashes = try repository.git("log", "--format=%h", "--abbrev=9", "refs/taskq/queue").components(
      separatedBy: "\n")
    #expect(lines.map { String($0.prefix(9)) } == hashes)

    let onlyT1 = try repository.taskqOK("log", "--id", "T-1").stdoutText.components(separatedBy: "\n").filter {
      !$0.isEmpty
    }
    #expect(onlyT1.count == 3)
    #expect(
      try repository.taskqOK("log", "-n", "1").stdoutText.components(separatedBy: "\n").filter { !$0.isEmpty }.count
        == 1)
    #expect(
      try repository.taskqOK("log", "--max-count", "2").stdoutText.components(separatedBy: "\n").filter { !$0.isEmpty }
        .count == 2)
    // A removed task still has its history.
    #expect(try repository.taskqOK("log", "--id", "T-1", "--json").jsonObjects().count == 3)
  }

  @Test func logJSONEntries() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    try repository.taskqOK("cancel", "--id", "T-1")
    let entries = try repository.taskqOK("log", "--json").jsonObjects()
    #expect(entries.count == 2)
    let cancel = try #require(entries.first)
    #expect(Set(cancel.keys) == ["commit", "time", "task", "op", "from", "to", "worker", "subject"])
    #expect(cancel["commit"] as? String == (try repository.queueTip()))
    #expect(cancel["task"] as? String == "T-1")
    #expect(cancel["op"] as? String == "cancel")
    #expect(cancel["from"] as? String == "todo")
    #expect(cancel["to"] as? String == "cancelled")
    #expect(cancel["subject"] as? String == "T-1: todo → cancelled")
    #expect((cancel["worker"] as? String)?.contains(":") == true)
    #expect(Timestamp.parse(cancel["time"] as? String ?? "") != nil)
    let add = try #require(entries.last)
    #expect(add["from"] is NSNull)
    #expect(try repository.taskqOK("log", "--json", "-n", "1").jsonObjects().count == 1)
    #expect(try repository.taskqOK("log", "--json").stdoutText.hasPrefix("["))
  }

  @Test func logOfAnEmptyQueueIsEmpty() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskqOK("log")
    #expect(result.stdoutText.isEmpty)
    #expect(try repository.taskqOK("log", "--json").jsonObjects().isEmpty)
  }

  // MARK: transitions

  @Test func approveMovesReviewToDoneAndSaysHowToMerge() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    try repository.drive("T-1", to: .review)
    let result = try repository.taskqOK("approve", "--id", "T-1")
    #expect(result.stdoutText.hasPrefix("T-1: review → done\n"))
    #expect(result.stdoutText.contains("git -C \(repository.path) merge task/T-1\n"), "\(result.stdoutText)")
    #expect(try repository.taskqOK("status", "--id", "T-1", "--json").jsonObject()["status"] as? String == "done")
    #expect(try repository.queueTrailers("Taskq-Op").first == "approve")
  }

  @Test func cancelFromEveryStatusItLeaves() throws {
    let repository = try ScratchRepository()
    let store = try repository.store()
    for status in [TaskStatus.todo, .planning, .building, .review, .failed] {
      let id = "T-\(status.rawValue)"
      try repository.addTask(id, store: store)
      try repository.drive(id, to: status, store: store)
      let result = try repository.taskqOK("cancel", "--id", id)
      #expect(result.stdoutText == "\(id): \(status.rawValue) → cancelled\n")
      #expect(try store.snapshot().record(id)?.status == .cancelled)
    }
  }

  @Test func retryMovesFailedToTodoAndCountsTheAttempt() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    try repository.drive("T-1", to: .failed)
    let result = try repository.taskqOK("retry", "--id", "T-1")
    #expect(result.stdoutText.hasPrefix("T-1: failed → todo"))
    let record = try repository.taskqOK("status", "--id", "T-1", "--json").jsonObject()
    #expect(record["status"] as? String == "todo")
    #expect(record["attempt"] as? Int == 1)
  }

  @Test func removeDeletesTheTaskButKeepsItsHistory() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    try repository.taskqOK("add", "--id", "T-2", "--task", "x")
    let result = try repository.taskqOK("remove", "--id", "T-1")
    #expect(result.stdoutText == "T-1: removed (was todo)\n")
    #expect(try repository.taskqOK("status", "--json").jsonObjects().map { $0["id"] as? String } == ["T-2"])
    #expect(try repository.queueRecordIDs() == ["T-2"])
    #expect(try repository.queueTrailers("Taskq-Op") == ["remove", "add", "add"])
    let gone = try repository.taskq("show", "--id", "T-1")
    #expect(gone.status == 1)
  }

  @Test func removeIsRefusedWhileTheTaskRunsOrAnotherWaitsOnIt() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "A", "--task", "x")
    try repository.taskqOK("add", "--id", "B", "--task", "x", "--depends-on", "A")
    try repository.taskqOK("add", "--id", "C", "--task", "x")
    try repository.drive("C", to: .building)
    let tip = try repository.queueTip()
    let waited = try repository.taskq("remove", "--id", "A")
    #expect(waited.status == 1)
    #expect(
      waited.stderrLines == ["error: cannot remove task 'A': task 'B' depends on it (remove or cancel 'B' first)"])
    let running = try repository.taskq("remove", "--id", "C")
    #expect(running.status == 1)
    #expect(running.stderrLines.first?.hasPrefix("error: cannot remove task 'C': it is 'building'") == true)
    #expect(try repository.queueTip() == tip)
  }

  // MARK: config and the root command

  @Test func configPrintsEveryKeyWithItsOrigin() throws {
    let repository = try ScratchRepository()
    try repository.git("config", "taskq.maxParallel", "4")
    let text = try repository.taskqOK("config", environment: ["TASKQ_IMAGE": "localhost/img:1"]).stdoutText
    let lines = text.components(separatedBy: "\n").filter { !$0.isEmpty }
    #expect(lines.count == SettingKey.all.count)
    for key in SettingKey.all {
      #expect(lines.contains { $0.hasPrefix(key.name + " ") }, "\(key.name) missing")
    }
    #expect(lines.contains { $0.hasPrefix("taskq.base ") && $0.hasSuffix("  main  [default]") })
    #expect(lines.contains { $0.hasPrefix("taskq.maxParallel ") && $0.hasSuffix("  4  [git config (local)]") })
    #expect(
      lines.contains { $0.hasPrefix("taskq.image ") && $0.hasSuffix("  localhost/img:1  [environment TASKQ_IMAGE]") })
  }

  @Test(arguments: [["--version"], ["-h"], ["help"], ["add", "-h"], ["status", "--help"], ["help", "log"]])
  func helpAndVersionSucceed(arguments: [String]) throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq(arguments)
    #expect(result.status == 0, "\(arguments): \(result.summary)")
    #expect(!result.stdoutText.isEmpty)
    #expect(try repository.queueTip() == nil)
  }

  @Test func versionBelongsToTheRootAlone() throws {
    let repository = try ScratchRepository()
    #expect(try repository.taskqOK("--version").stdoutText == "0.1.0\n")
    for command in ["add", "status", "run", "approve"] {
      let help = try repository.taskqOK(command, "-h").stdoutText
      #expect(!help.contains("--version"), "\(command)")
      #expect(help.contains("USAGE: git taskq \(command)"), "\(help)")
      #expect(!help.contains("git-taskq \(command)"), "\(help)")
    }
  }

  /// The manual, as `scripts/install.sh` installs it and `git taskq --help` shows it: git's sections in
  /// git's order, every command, every setting, the real exit statuses, and nothing internal.
  @Test func theManualHasGitsSectionsAndNothingInternal() throws {
    let repository = try ScratchRepository()
    let page = try repository.taskqOK("__manual").stdoutText
    let sections = page.components(separatedBy: "\n").filter { $0.hasPrefix(".SH ") }
    #expect(
      sections == [
        ".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION", ".SH COMMANDS", ".SH OPTIONS", ".SH CONFIGURATION",
        ".SH EXIT STATUS", ".SH FILES", ".SH SEE ALSO",
      ])
    #expect(page.contains("\\fBgit taskq\\fR \\fIcommand\\fR"))
    #expect(!page.contains("git\\-taskq add") && !page.contains("__complete") && !page.contains("__git"))
    #expect(!page.contains("__manual"))
    // --version once, under OPTIONS.
    #expect(page.components(separatedBy: "\\-\\-version").count == 2)
    for command in [
      "add", "edit", "import", "status", "show", "log", "approve", "cancel", "retry", "remove", "run",
      "review", "cleanup", "recover", "sync", "fsck", "config",
    ] {
      #expect(page.contains(".SS \"git taskq \(command)\""), "\(command)")
    }
    for key in SettingKey.all { #expect(page.contains("\\fB\(key.name)\\fR"), "\(key.name)") }
    let exit = try #require(
      page.components(separatedBy: ".SH EXIT STATUS\n").last?.components(separatedBy: ".SH ").first)
    for code in ["0", "1", "64", "128", "130"] { #expect(exit.contains(".B \(code)\n"), "\(code)") }
  }

  @Test func theCommitterFallsBackToGitTaskqWithoutAnIdentity() throws {
    let repository = try ScratchRepository()
    try repository.git("config", "--unset", "user.name")
    try repository.git("config", "--unset", "user.email")
    let home = try ScratchDirectory()
    let env = ["HOME": home.path, "XDG_CONFIG_HOME": home.path + "/.config", "GIT_CONFIG_NOSYSTEM": "1"]
    // Skip when the machine's system configuration (which libgit2 reads regardless) names someone.
    let system = try ProcessRunner.run(
      ProcessSpec("git", ["config", "--system", "user.name"], environment: ["GIT_CONFIG_NOSYSTEM": "0"], timeout: 30))
    if system.succeeded {
      print("QueueCommandTests.theCommitterFallsBack…: skipped, /etc/gitconfig sets user.name")
      return
    }
    try repository.taskqOK("add", "--id", "T-1", "--task", "x", environment: env)
    let author = try repository.git("log", "-1", "--format=%an|%ae", "refs/taskq/queue")
    #expect(author.hasPrefix("git-taskq|"), "\(author)")
    #expect(author.contains("@"))
  }
}
