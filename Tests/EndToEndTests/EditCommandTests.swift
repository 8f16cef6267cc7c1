import Foundation
import Git
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `git taskq edit --id ID` with the editor replaced by small scripts that rewrite the file, and `add` on a
/// terminal, which opens the editor on a template.
@Suite struct EditCommandTests {
  /// A scratch repository with `T-1` (todo, body "Do the thing.") and a directory for editor scripts.
  static func repository() throws -> ScratchRepository {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    return repository
  }

  /// Writes an editor script and returns the editor setting that runs it (it gets the file as `$1`).
  ///
  /// Run as `sh SCRIPT`, not executed: a file this multi-threaded test process just wrote may still be open
  /// in a child another test forks at that moment, and executing it would then fail with ETXTBSY.
  static func editor(_ repository: ScratchRepository, named name: String = "editor", _ body: String) throws -> String {
    "sh " + (try repository.directory.write("bin/\(name)", "set -e\n\(body)\n"))
  }

  /// The environment of a run whose editor is exactly `editor`.
  static func using(_ editor: String, _ extra: [String: String] = [:]) -> [String: String] {
    ["GIT_EDITOR": "", "VISUAL": "", "EDITOR": editor, "TERM": "xterm"].merging(extra) { _, new in new }
  }

  @Test func recordsTheEditedFileAsAnEditTransition() throws {
    let repository = try Self.repository()
    let editor = try Self.editor(
      repository,
      """
      sed -i 's/^Do the thing\\.$/Do the thing well./' "$1"
      sed -i 's/^branch: task\\/T-1$/branch: task\\/T-1\\npriority: 7/' "$1"
      """)
    let before = try repository.store().snapshot().record("T-1")
    let result = try repository.taskqOK("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.stdoutText == "T-1: edited (todo): priority, body\n")
    let record = try #require(try repository.store().snapshot().record("T-1"))
    #expect(record.status == .todo)
    #expect(record.priority == 7)
    #expect(record.seq == before?.seq)
    #expect(record.createdAt == before?.createdAt)
    let file = try repository.queueFile("tasks/\(try sha256sumBucket("T-1"))/T-1/task.md")
    #expect(file.hasSuffix("---\nDo the thing well."))
    #expect(file.contains("priority: 7"))
    #expect(try repository.queueTrailers("Taskq-Op").first == "edit")
    #expect(try repository.queueTrailers("Taskq-From").first == "todo")
    #expect(try repository.queueTrailers("Taskq-To").first == "todo")
    #expect(try repository.git("log", "-1", "--format=%s", "refs/taskq/queue") == "T-1: edited: priority, body (todo)")
    // The draft is gone once recorded.
    #expect(!FileManager.default.fileExists(atPath: repository.path + "/.git/taskq/edit/T-1.md"))
    let fsck = try repository.runTaskq(["fsck"])
    #expect(fsck.status == 0, "\(fsck.summary)")
  }

  @Test func savingUnchangedRecordsNothing() throws {
    let repository = try Self.repository()
    let tip = try repository.queueTip()
    let result = try repository.taskqOK("edit", "--id", "T-1", environment: Self.using("true"))
    #expect(result.stdoutText == "T-1: no changes\n")
    #expect(try repository.queueTip() == tip)
    // A comment added to the frontmatter is not a change either.
    let comment = try Self.editor(repository, "sed -i 's/^base: main$/base: main # the default/' \"$1\"")
    #expect(
      try repository.taskqOK("edit", "--id", "T-1", environment: Self.using(comment)).stdoutText == "T-1: no changes\n")
    #expect(try repository.queueTip() == tip)
  }

  @Test func theFileReachesTheEditorAsAnArgumentNeverAsShellText() throws {
    // A repository whose path would run a command if it were pasted into a shell command line.
    let scratch = try ScratchDirectory()
    let path = scratch.path + "/it's a $(touch PWNED) `touch PWNED2` dir"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try Git.run(["init", "-q", "-b", "main"], in: path)
    try Git.run(
      ["-c", "user.name=T", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "init"], in: path)
    let store = QueueStore(repository: try Repository.open(at: path), worker: "test")
    try store.add(NewTask(id: "T-1", repo: path, base: "main", body: "Do the thing."))
    // The editor is shell text with a quoted program path containing a space, and an argument.
    let script = try scratch.write(
      "my editor/edit",
      "[ \"$1\" = --flag ] || exit 3\nprintf '%s' \"$2\" > \"$(dirname \"$0\")/seen\"\necho 'Extra line.' >> \"$2\"\n")
    let result = try Taskq.run(
      ["edit", "--id", "T-1"], in: path, environment: Self.using("sh '\(script)' --flag"))
    #expect(result.status == 0, "\(result.summary)")
    let seen = try String(contentsOfFile: scratch.path + "/my editor/seen", encoding: .utf8)
    #expect(seen == path + "/.git/taskq/edit/T-1.md")
    #expect(!FileManager.default.fileExists(atPath: path + "/PWNED"))
    #expect(!FileManager.default.fileExists(atPath: scratch.path + "/PWNED"))
    #expect(!FileManager.default.fileExists(atPath: path + "/PWNED2"))
    #expect(try store.snapshot().taskFile("T-1")?.hasSuffix("---\nDo the thing.\nExtra line.\n") == true)
  }

  @Test func editorIsChosenInGitsOrder() throws {
    let repository = try Self.repository()
    let log = repository.directory.path + "/chosen"
    var editors: [String: String] = [:]
    for name in ["git-editor", "core-editor", "visual", "editor"] {
      editors[name] = try Self.editor(repository, named: name, "echo \(name) >> '\(log)'")
    }
    func chosen(_ environment: [String: String], core: Bool) throws -> String {
      unlink(log)
      if core {
        try repository.git("config", "core.editor", try #require(editors["core-editor"]))
      } else {
        _ = try? repository.git("config", "--unset", "core.editor")
      }
      let result = try repository.taskqOK("edit", "--id", "T-1", environment: environment)
      #expect(result.stdoutText == "T-1: no changes\n")
      return try String(contentsOfFile: log, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    let all = [
      "GIT_EDITOR": editors["git-editor"] ?? "", "VISUAL": editors["visual"] ?? "", "EDITOR": editors["editor"] ?? "",
      "TERM": "xterm",
    ]
    #expect(try chosen(all, core: true) == "git-editor")
    #expect(try chosen(all.merging(["GIT_EDITOR": ""]) { _, n in n }, core: true) == "core-editor")
    #expect(try chosen(all.merging(["GIT_EDITOR": ""]) { _, n in n }, core: false) == "visual")
    // VISUAL is for capable terminals only.
    #expect(try chosen(all.merging(["GIT_EDITOR": "", "TERM": "dumb"]) { _, n in n }, core: false) == "editor")
    #expect(try chosen(all.merging(["GIT_EDITOR": "", "VISUAL": ""]) { _, n in n }, core: false) == "editor")
  }

  @Test func aDumbTerminalWithoutAnEditorIsRefused() throws {
    let repository = try Self.repository()
    let result = try repository.taskq(
      "edit", "--id", "T-1", environment: ["GIT_EDITOR": "", "VISUAL": "", "EDITOR": "", "TERM": "dumb"])
    #expect(result.status == 1)
    #expect(
      result.stderrText
        == "error: the terminal is dumb, but no editor is set (set GIT_EDITOR, core.editor, VISUAL or EDITOR)\n")
  }

  @Test func theIDCannotChangeAndTheRefusedEditIsKeptAndReopened() throws {
    let repository = try Self.repository()
    let tip = try repository.queueTip()
    let rename = try Self.editor(repository, "sed -i 's/^id: T-1$/id: T-2/; s/^Do the thing\\.$/Kept text./' \"$1\"")
    let result = try repository.taskq("edit", "--id", "T-1", environment: Self.using(rename))
    #expect(result.status == 1)
    let draft = repository.path + "/.git/taskq/edit/T-1.md"
    #expect(
      result.stderrLines == [
        "error: task file '\(draft)': the id cannot change (it is 'T-1'; add a new task for 'T-2')",
        "hint: nothing was recorded; your text is kept in '\(draft)' and 'git taskq edit --id T-1' opens it again",
      ])
    #expect(try repository.queueTip() == tip)
    // The next edit opens the kept text, which this editor fixes.
    let fix = try Self.editor(
      repository, named: "fix", "grep -q '^Kept text.$' \"$1\" && sed -i 's/^id: T-2$/id: T-1/' \"$1\"")
    let again = try repository.taskqOK("edit", "--id", "T-1", environment: Self.using(fix))
    #expect(again.stderrText.hasPrefix("resuming your unfinished edit of 'T-1' from '\(draft)'"))
    #expect(again.stdoutText == "T-1: edited (todo): body\n")
    #expect(try repository.store().snapshot().taskFile("T-1")?.hasSuffix("Kept text.\n") == true)
    #expect(!FileManager.default.fileExists(atPath: draft))
  }

  @Test(arguments: [
    ("s/^Do the thing\\.$//", "the task body is empty"),
    ("s/^base: main$/base: no-such-branch/", "base branch 'no-such-branch' does not exist"),
    ("s/^base: main$/base: main\\ncolour: blue/", "unknown frontmatter key 'colour'"),
    ("s/^base: main$/base: main\\ndepends_on: [T-404]/", "depends on 'T-404', which is not in the queue"),
    ("s/^base: main$/base: main\\ndepends_on: [T-1]/", "task 'T-1' cannot depend on itself"),
    ("s/^branch: task\\/T-1$/branch: bad..branch/", "expected a valid git branch name"),
    ("2s/.*/id: [T-1/", "malformed YAML frontmatter"),
  ])
  func refusesWhatAddRefuses(sed: String, message: String) throws {
    let repository = try Self.repository()
    let tip = try repository.queueTip()
    let editor = try Self.editor(repository, "sed -i '\(sed)' \"$1\"")
    let result = try repository.taskq("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.status == 1, "\(result.summary)")
    #expect(result.stderrText.contains(message), "\(result.stderrText)")
    #expect(try repository.queueTip() == tip)
  }

  @Test func aDependencyCycleIsRefused() throws {
    let repository = try Self.repository()
    try repository.addTask("T-2", dependsOn: ["T-1"])
    let editor = try Self.editor(repository, "sed -i 's/^base: main$/base: main\\ndepends_on: [T-2]/' \"$1\"")
    let result = try repository.taskq("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.status == 1)
    #expect(result.stderrLines.first == "error: depending on 'T-2' would make a cycle: T-1 -> T-2 -> T-1")
  }

  @Test(arguments: [TaskStatus.planning, .building, .review, .done, .cancelled])
  func onlyTodoAndFailedTasksCanBeEdited(status: TaskStatus) throws {
    let repository = try Self.repository()
    try repository.drive("T-1", to: status)
    let marker = repository.directory.path + "/editor-ran"
    let editor = try Self.editor(repository, "touch '\(marker)'")
    let result = try repository.taskq("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.status == 1)
    #expect(
      result.stderrText
        == "error: cannot edit task 'T-1': it is '\(status.rawValue)' (edit needs 'todo' or 'failed')\n")
    #expect(!FileManager.default.fileExists(atPath: marker))
  }

  @Test func aFailedTaskKeepsItsRunsRecordAndCanBeRetried() throws {
    let repository = try Self.repository()
    let store = try repository.store()
    try repository.drive("T-1", to: .planning, store: store)
    try store.fail("T-1", summary: "make-plan: exit status 1", report: "# failed\n") { record in
      record.worktreePath = "/somewhere/wt/T-1"
    }
    let editor = try Self.editor(repository, "sed -i 's/^Do the thing\\.$/Do the thing, differently./' \"$1\"")
    let result = try repository.taskqOK("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.stdoutText == "T-1: edited (failed): body\n")
    let record = try #require(try store.snapshot().record("T-1"))
    #expect(record.status == .failed)
    #expect(record.worktreePath == "/somewhere/wt/T-1")
    #expect(record.errorFile != nil)
    #expect(try repository.taskqOK("retry", "--id", "T-1").status == 0)
  }

  @Test func aTaskCancelledWhileEditingIsNotRecorded() throws {
    let repository = try Self.repository()
    let editor = try Self.editor(
      repository, "'\(Taskq.binary)' cancel --id T-1 >/dev/null\nsed -i 's/^Do the thing\\.$/Too late./' \"$1\"")
    let result = try repository.taskq("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.status == 1)
    #expect(
      result.stderrLines.first == "error: cannot edit task 'T-1': it is 'cancelled' (edit needs 'todo' or 'failed')")
    #expect(try repository.store().snapshot().taskFile("T-1")?.contains("Too late.") == false)
  }

  @Test func aFailingEditorRecordsNothing() throws {
    let repository = try Self.repository()
    let tip = try repository.queueTip()
    let editor = try Self.editor(repository, "echo changed >> \"$1\"\nexit 4")
    let result = try repository.taskq("edit", "--id", "T-1", environment: Self.using(editor))
    #expect(result.status == 1)
    #expect(
      result.stderrText.hasPrefix("error: there was a problem with the editor '\(editor)': it exited with status 4"))
    #expect(try repository.queueTip() == tip)
  }

  @Test func unknownTaskIsNotFound() throws {
    let repository = try Self.repository()
    let result = try repository.taskq("edit", "--id", "T-9", environment: Self.using("true"))
    #expect(result.status == 1)
    #expect(result.stderrText == "error: task 'T-9' not found (see 'git taskq status')\n")
  }

  // MARK: add without a task, on a terminal

  @Test(.enabled(if: TmuxTerminal.program != nil, "tmux is not installed: the terminal test is skipped"))
  func addOnATerminalOpensTheEditorOnATemplate() throws {
    let repository = try ScratchRepository()
    let template = repository.directory.path + "/template-seen"
    let editor = try Self.editor(
      repository,
      """
      cp "$1" '\(template)'
      sed -i 's/^id: $/id: T-ED/' "$1"
      printf 'Written in the editor.\\n' >> "$1"
      """)
    var environment = StatusWatchTests.environment(home: repository.directory.path)
    environment["EDITOR"] = editor
    let terminal = try TmuxTerminal(
      [Taskq.binary, "add", "--priority", "3"], in: repository.path, environment: environment)
    let (status, screen) = try terminal.waitForExit()
    #expect(status == 0, "\(screen)")
    #expect(screen.contains("T-ED: added (todo) repo=\(repository.path) base=main branch=task/T-ED"), "\(screen)")
    let seen = try String(contentsOfFile: template, encoding: .utf8)
    #expect(seen.hasPrefix("---\n# The new task"))
    #expect(seen.contains("\nid: \nrepo: \(repository.path)\nbase: main\n"))
    #expect(seen.contains("\npriority: 3\n"))
    let record = try #require(try repository.store().snapshot().record("T-ED"))
    #expect(record.priority == 3)
    #expect(try repository.store().snapshot().taskFile("T-ED")?.hasSuffix("---\nWritten in the editor.\n") == true)
    #expect(!FileManager.default.fileExists(atPath: repository.path + "/.git/taskq/edit/new-task.md"))
  }

  @Test(.enabled(if: TmuxTerminal.program != nil, "tmux is not installed: the terminal test is skipped"))
  func addOnATerminalWithAnUntouchedTemplateAddsNothing() throws {
    let repository = try ScratchRepository()
    var environment = StatusWatchTests.environment(home: repository.directory.path)
    environment["EDITOR"] = "true"
    let terminal = try TmuxTerminal([Taskq.binary, "add"], in: repository.path, environment: environment)
    let (status, screen) = try terminal.waitForExit()
    #expect(status == 1, "\(screen)")
    #expect(screen.contains("error: nothing added: the task was left empty (write it below the closing '---')"))
    #expect(try repository.queueTip() == nil)
  }

  @Test func addWithoutATaskOutsideATerminalStillSaysWhatToPass() throws {
    let repository = try ScratchRepository()
    let result = try repository.taskq("add", environment: Self.using("true"))
    #expect(result.status == 1)
    #expect(
      result.stderrText == "error: nothing to add: pass --task TEXT, or --task-file PATH ('-' reads standard input)\n")
  }
}
