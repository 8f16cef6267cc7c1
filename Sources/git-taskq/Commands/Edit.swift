import ArgumentParser
import Orchestrator
import TaskQueue

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
      let edit = TaskEdit(store: context.store, settings: context.settings)
      let original = try edit.start(task.id)
      let draft = TaskDraft(gitDirectory: context.gitDirectory, name: task.id)
      if try draft.open(text: original) {
        Console.error("resuming your unfinished edit of '\(task.id)' from '\(draft.path)' (delete it to start over)")
      }
      try Editor.launch(try Editor.resolve(settings: context.settings), on: draft.path, keptDraft: draft.path)
      if try draft.read() == original {
        draft.discard()
        print("\(task.id): no changes")
        return
      }
      do {
        let outcome = try edit.apply(id: task.id, original: original, editedPath: draft.path)
        draft.discard()
        let record = outcome.record
        print(
          outcome.changed.isEmpty
            ? "\(record.id): no changes"
            : "\(record.id): edited (\(record.status.rawValue)): \(outcome.changed.joined(separator: ", "))")
      } catch {
        throw DraftKept(error: error, path: draft.path, retry: "git taskq edit --id \(task.id)")
      }
    }
  }
}
