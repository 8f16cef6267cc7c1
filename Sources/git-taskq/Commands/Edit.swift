import ArgumentParser
import Git
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

extension GitTaskq {
  struct Edit: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Edit the task file of a todo or failed task.",
      discussion: """
        Opens the task's file (YAML frontmatter and markdown body, as 'git taskq show' prints it) in \
        your editor, chosen as git chooses it: $GIT_EDITOR, core.editor, $VISUAL, $EDITOR, else vi. \
        When the editor exits, the file is checked as 'add' checks a task file (the frontmatter keys \
        and values, the repository, the base, the branch name, the dependencies, a non-empty body; \
        the id cannot change), and the new version is recorded as one commit on refs/taskq/queue \
        (operation 'edit'; the status does not change). A change of repo, base, branch, \
        worktree_path, priority or depends_on in the frontmatter changes the record too.

        Saving the file unchanged changes nothing. If the file is refused, nothing is recorded and \
        your version is kept (in .git/taskq/edit/<id>.md): the next 'git taskq edit --id ID' opens \
        it again, as long as the task was not changed meanwhile.

        Only todo and failed tasks can be edited: a running task's agent already read its file, and a \
        reviewed or finished one is history. Retry a failed task after editing it.

        Examples:
          git taskq edit --id T-001
          GIT_EDITOR=nano git taskq edit --id T-001
          git taskq edit --id T-002 && git taskq retry --id T-002
        """)

    @OptionGroup var task: TaskIDOption

    func run(_ context: CommandContext) async throws {
      try TaskID.validate(task.id)
      let snapshot = try context.store.snapshot()
      guard let record = try snapshot.record(task.id) else { throw QueueError.notFound(task.id) }
      try TaskEdit.checkEditable(record)
      let original = try snapshot.taskFile(task.id) ?? ""
      let draft = TaskDraft(repository: context.repository, name: task.id)
      if draft.resume(basedOn: original) {
        Console.error("resuming your unfinished edit of '\(task.id)' from '\(draft.path)' (delete it to start over)")
      } else {
        try draft.start(text: original, basedOn: original)
      }
      let editor = try Editor.resolve(configuration: try? context.repository.configuration())
      try Editor.launch(editor, on: draft.path, keeping: draft)
      let edited = try draft.read()
      if edited == original {
        draft.discard()
        print("\(task.id): no changes")
        return
      }
      do {
        let (updated, changed) = try TaskEdit(store: context.store, settings: context.settings).apply(
          id: task.id, original: original, editedPath: draft.path)
        draft.discard()
        print(
          changed.isEmpty
            ? "\(updated.id): no changes"
            : "\(updated.id): edited (\(updated.status.rawValue)): \(changed.joined(separator: ", "))")
      } catch {
        throw DraftKept(error: error, path: draft.path, retry: "git taskq edit --id \(task.id)")
      }
    }
  }
}

/// Records a new version of a task's file: the `edit` operation.
///
/// The checks are `add`'s, through ``AddRequest``; the id cannot change, and dependencies must exist and
/// must not make a cycle. Only the frontmatter keys the user changed change the record, so a failed task
/// keeps the worktree its run recorded.
struct TaskEdit {
  let store: QueueStore
  let settings: Settings

  static let editable: [TaskStatus] = [.todo, .failed]

  static func checkEditable(_ record: TaskRecord) throws {
    guard editable.contains(record.status) else {
      throw QueueError.illegalTransition(id: record.id, command: "edit", status: record.status, needs: editable)
    }
  }

  /// Checks the file at `editedPath` and records it.
  ///
  /// - Returns: the stored record and what changed (`body`, `priority`, …); nothing is recorded when
  ///   nothing changed.
  func apply(id: String, original: String, editedPath: String) throws -> (TaskRecord, [String]) {
    let (edited, _) = try TaskFile.read(path: editedPath)
    if let newID = edited.id, newID != id {
      throw QueueError.taskFile(
        path: editedPath,
        problem: "the id cannot change (it is '\(id)'; add a new task for '\(QueueError.printable(newID))')")
    }
    let before = try? TaskFile.parse(Array(original.utf8), path: "original")
    var request = AddRequest()
    request.id = id
    request.taskFile = editedPath
    let resolved = try request.resolve(settings: settings, current: store.repository)
    var changed: [String] = []
    let record = try store.update { tx -> TaskRecord in
      var record = try tx.existing(id)
      try Self.checkEditable(record)
      guard let current = try tx.base.taskFile(id), current == original else {
        throw QueueError.conflictingOptions(
          "task '\(id)' was changed by someone else while you edited it (see 'git taskq log --id \(id)')")
      }
      changed = []
      func update<T: Equatable>(_ key: String, _ old: T?, _ new: T?, _ apply: () -> Void) {
        if old != new {
          apply()
          changed.append(key)
        }
      }
      update("repo", before?.repo, edited.repo) { record.repo = resolved.repo }
      update("base", before?.base, edited.base) { record.base = resolved.base }
      update("branch", before?.branch, edited.branch) { record.branch = resolved.branch }
      update("worktree_path", before?.worktreePath, edited.worktreePath) { record.worktreePath = resolved.worktreePath }
      update("priority", before?.priority ?? 0, edited.priority ?? 0) { record.priority = resolved.priority }
      update("depends_on", before?.dependsOn ?? [], edited.dependsOn ?? []) { record.dependsOn = resolved.dependsOn }
      if before?.body != edited.body { changed.append("body") }
      // Only comments or formatting changed: nothing to record.
      guard !changed.isEmpty else { return record }
      try Self.checkDependencies(of: record, in: tx)
      tx.put(record)
      tx.putFile(id, "task.md", TaskFile.canonical(for: record, body: edited.body))
      tx.operation = Operation(
        kind: "edit", task: id, from: record.status, to: record.status, worker: tx.worker,
        detail: "edited: " + changed.joined(separator: ", "))
      return record
    }
    return (record, changed)
  }

  /// Every dependency exists, is not the task itself, and does not lead back to it.
  static func checkDependencies(of record: TaskRecord, in tx: QueueTransaction) throws {
    var byID: [String: TaskRecord] = [:]
    for other in try tx.allRecords() { byID[other.id] = other }
    byID[record.id] = record
    for dependency in record.dependsOn {
      try TaskID.validate(dependency)
      if dependency == record.id { throw QueueError.dependency("task '\(record.id)' cannot depend on itself") }
      if byID[dependency] == nil {
        throw QueueError.dependency(
          "task '\(record.id)' depends on '\(dependency)', which is not in the queue (add it first)")
      }
    }
    // Depth-first from each dependency: reaching the task again is a cycle.
    var seen: Set<String> = []
    func path(from id: String) -> [String]? {
      if id == record.id { return [id] }
      guard seen.insert(id).inserted else { return nil }
      for next in byID[id]?.dependsOn ?? [] {
        if let rest = path(from: next) { return [id] + rest }
      }
      return nil
    }
    for dependency in record.dependsOn {
      if let cycle = path(from: dependency) {
        throw QueueError.dependency(
          "depending on '\(dependency)' would make a cycle: \(([record.id] + cycle).joined(separator: " -> "))")
      }
    }
  }
}

/// A file the user edits, kept under the git directory (`.git/taskq/edit/<name>.md`, as git keeps
/// `COMMIT_EDITMSG`) until what it says is recorded, so a refused edit is not lost.
struct TaskDraft {
  let path: String
  /// The text the draft started from, to tell whether a kept draft still applies.
  private let basePath: String

  init(repository: Repository, name: String) {
    let directory = repository.gitDirectory + "taskq/edit"
    path = directory + "/" + name + ".md"
    basePath = directory + "/." + name + ".base"
  }

  /// Writes a new draft.
  func start(text: String, basedOn base: String) throws {
    let directory = PathName.deletingLastComponent(path)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    try Data(base.utf8).write(to: URL(fileURLWithPath: basePath), options: .atomic)
  }

  /// Whether a kept draft exists that started from `base`, so that it is opened again.
  ///
  /// A draft whose task changed since it was made is stale: it is replaced.
  func resume(basedOn base: String) -> Bool {
    guard FileManager.default.fileExists(atPath: path),
      let kept = FileManager.default.contents(atPath: basePath), kept == Data(base.utf8)
    else { return false }
    return true
  }

  func read() throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw QueueError.taskFile(path: path, problem: "no such file (did the editor delete it?)")
    }
    return String(decoding: data, as: UTF8.self)
  }

  func discard() {
    unlink(path)
    unlink(basePath)
  }
}

/// `add` on a terminal without `--task` or `--task-file`: the user writes the task in their editor, in a
/// template that shows the values the flags gave.
enum AddDraft {
  /// Opens the editor on the template and returns the draft, or `nil` when `add` was given a task (or does
  /// not run on a terminal, where an editor cannot work).
  static func compose(
    _ command: GitTaskq.Add, _ context: CommandContext, isTerminal: Bool = Output.isTerminal(0) && Output.isTerminal(1)
  ) throws -> TaskDraft? {
    guard command.task == nil, command.taskFile == nil, isTerminal else { return nil }
    let template = Self.template(command, context)
    let draft = TaskDraft(repository: context.repository, name: "new-task")
    if draft.resume(basedOn: template) {
      Console.error("resuming your unfinished task from '\(draft.path)' (delete it to start over)")
    } else {
      try draft.start(text: template, basedOn: template)
    }
    try Editor.launch(
      try Editor.resolve(configuration: try? context.repository.configuration()), on: draft.path, keeping: draft)
    let text = try draft.read()
    if text == template {
      draft.discard()
      throw QueueError.missingOption("nothing added: the task was left empty (write it below the closing '---')")
    }
    if command.id == nil {
      let file: TaskFile
      do {
        file = try TaskFile.parse(Array(text.utf8), path: draft.path)
      } catch {
        throw DraftKept(error: error, path: draft.path, retry: "git taskq add")
      }
      if (file.id ?? "").isEmpty {
        throw DraftKept(
          error: QueueError.missingOption("no task id: fill in 'id:' in the frontmatter, or pass --id"),
          path: draft.path, retry: "git taskq add")
      }
    }
    return draft
  }

  static func template(_ command: GitTaskq.Add, _ context: CommandContext) -> String {
    var lines = [
      "---",
      "# The new task: write what the agent should do below the closing '---'.",
      "# Keys: id, repo, base, branch, worktree_path, priority, depends_on ('git taskq add -h').",
      "id: \(command.id ?? "")",
      "repo: \(command.repo ?? context.repository.mainWorkingDirectory)",
      "base: \(command.base ?? context.settings.string(.base))",
    ]
    lines.append(command.branch.map { "branch: \($0)" } ?? "# branch: task/<id>")
    if let path = command.worktreePath { lines.append("worktree_path: \(path)") }
    lines.append(command.priority.map { "priority: \($0)" } ?? "# priority: 0")
    lines.append(
      command.dependsOn.map { "depends_on: [\(TaskFile.splitList($0).joined(separator: ", "))]" }
        ?? "# depends_on: [T-001, T-002]")
    lines += ["---", "", ""]
    return lines.joined(separator: "\n")
  }
}

/// An error after the user edited a draft: the error, and where their text is kept.
struct DraftKept: Error, LocalizedError, CustomStringConvertible {
  var error: any Error
  var path: String
  var retry: String

  var description: String {
    let text: String
    switch error {
    case let error as QueueError: text = error.description
    case let error as GitError: text = "git: \(error.description)"
    default: text = (error as? any LocalizedError)?.errorDescription ?? "\(error)"
    }
    return "\(text)\nhint: nothing was recorded; your text is kept in '\(path)' and '\(retry)' opens it again"
  }

  var errorDescription: String? { description }
}

/// The user's editor, found and started as git does it.
enum Editor {
  /// git's order: `GIT_EDITOR`, `core.editor`, `VISUAL` (unless the terminal is dumb), `EDITOR`, then `vi`
  /// (unless the terminal is dumb).
  static func resolve(
    configuration: Configuration?, environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> String {
    let dumb = (environment["TERM"] ?? "dumb") == "dumb"
    let candidates: [String?] = [
      environment["GIT_EDITOR"],
      (try? configuration?.string("core.editor")) ?? nil,
      dumb ? nil : environment["VISUAL"],
      environment["EDITOR"],
    ]
    if let editor = candidates.compactMap({ $0 }).first(where: { !$0.trimmingSpaces().isEmpty }) {
      return editor
    }
    if dumb {
      throw QueueError.missingOption(
        "the terminal is dumb, but no editor is set (set GIT_EDITOR, core.editor, VISUAL or EDITOR)")
    }
    return "vi"
  }

  /// Runs `editor` on `path` with this process's terminal, and waits for it.
  ///
  /// Editors are configured as shell text (`code --wait`, `'/opt/My Editor/bin/edit' -f`), so the editor
  /// runs as `sh -c '<editor> "$@"' <editor> <path>`: the shell reads the editor's words, and the path
  /// reaches it only as `$1`, never as text the shell parses. `:` (git's "no editor") does nothing.
  /// Ctrl-C and Ctrl-\ are left to the editor while it runs, as git does.
  static func launch(_ editor: String, on path: String, keeping draft: TaskDraft? = nil) throws {
    if editor == ":" { return }
    // posix_spawn and waitpid, not Foundation's Process: the editor shares our terminal (no pipes), and
    // waiting must not depend on a run loop in an async context.
    let script: String = editor + " \"$@\""
    let words: [String] = ["sh", "-c", script, editor, path]
    let argv: [UnsafeMutablePointer<CChar>?] = words.map { strdup($0) }
    defer { for word in argv { free(word) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, "/bin/sh", nil, nil, argv + [nil], environ)
    guard rc == 0 else {
      throw QueueError.missingOption("cannot start the editor '\(editor)': \(String(cString: strerror(rc)))")
    }
    let oldInterrupt = signal(SIGINT, SIG_IGN)
    let oldQuit = signal(SIGQUIT, SIG_IGN)
    var status: Int32 = 0
    var waited: pid_t
    repeat { waited = waitpid(pid, &status, 0) } while waited < 0 && errno == EINTR
    signal(SIGINT, oldInterrupt)
    signal(SIGQUIT, oldQuit)
    let exited = status & 0x7f == 0
    let code = exited ? (status >> 8) & 0xff : status & 0x7f
    guard waited == pid, exited, code == 0 else {
      let how = exited ? "exited with status \(code)" : "was killed by signal \(code)"
      let kept = draft.map { "; nothing was recorded, and your text is kept in '\($0.path)'" } ?? ""
      throw QueueError.missingOption("there was a problem with the editor '\(editor)': it \(how)\(kept)")
    }
  }
}
