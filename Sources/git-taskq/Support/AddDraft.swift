import Orchestrator
import TaskQueue

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
    let draft = TaskDraft(gitDirectory: context.gitDirectory, name: "new-task")
    if try draft.open(text: template) {
      Console.error("resuming your unfinished task from '\(draft.path)' (delete it to start over)")
    }
    try Editor.launch(try Editor.resolve(settings: context.settings), on: draft.path, keptDraft: draft.path)
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
      "repo: \(command.repo ?? context.queueRepository)",
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
