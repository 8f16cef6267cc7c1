import ArgumentParser
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Add: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Add a task to the queue.",
      discussion: """
        The task is described inline (--task) or by a markdown file with YAML frontmatter (--task-file; \
        '-' reads standard input). Frontmatter keys: id, repo, base, branch, worktree_path, priority, \
        depends_on. Flags override the frontmatter. The id defaults to the file name's stem, the \
        repository to the current one, the base to taskq.base (main). The original file is left \
        unchanged; the canonical file, with every resolved value, is stored in the queue.

        --repo takes a path, or a short name looked up under taskq.reposRoot (~/documents/repos).

        A repo or worktree path outside taskq.reposRoot and taskq.worktreesRoot is added to \
        taskq.trustedPath in this repository's own config (and said so on stderr): records are \
        trusted per machine, so 'run', 'review' and 'cleanup' act on such a path only where it is trusted.

        On a terminal, without --task and --task-file, add opens your editor (as 'git taskq edit' \
        does: $GIT_EDITOR, core.editor, $VISUAL, $EDITOR, vi) on a template that shows the values \
        of the flags given; write the task below the closing '---' and fill in 'id:'. A template left \
        unchanged adds nothing.

        Examples:
          git taskq add --id T-001 --task "Implement cleanup feature"
          git taskq add --id T-002 --repo sisifo --task "Fix bug Y" --priority 5
          git taskq add --task-file queue/tasks/T-003.md
          git taskq add --task-file task.md --repo sisifo --branch feature/my-branch
          cat task.md | git taskq add --task-file - --id T-004 --depends-on T-001,T-002
          git taskq add --priority 3
        """)

    @Option(
      help: ArgumentHelp("Task id (required with --task; else frontmatter 'id' or the file name).", valueName: "ID"))
    var id: String?

    @Option(help: ArgumentHelp("Target repository: a path or a short name under taskq.reposRoot.", valueName: "REPO"))
    var repo: String?

    @Option(
      help: ArgumentHelp("Base branch (default: frontmatter 'base', else taskq.base = main).", valueName: "BRANCH"))
    var base: String?

    @Option(help: ArgumentHelp("Branch to create (default: task/<id>).", valueName: "NAME"))
    var branch: String?

    @Option(help: ArgumentHelp("Worktree location (default: <worktrees root>/<repo>/<id>).", valueName: "PATH"))
    var worktreePath: String?

    // `.unconditional`: a description may begin with '-' and must still be taken as the description.
    @Option(parsing: .unconditional, help: ArgumentHelp("Inline task description.", valueName: "DESCRIPTION"))
    var task: String?

    @Option(help: ArgumentHelp("Task markdown file with YAML frontmatter ('-' for standard input).", valueName: "PATH"))
    var taskFile: String?

    @Option(help: ArgumentHelp("Higher runs first (default 0).", valueName: "N"))
    var priority: Int?

    @Option(help: ArgumentHelp("Tasks that must be done before this one runs.", valueName: "ID[,ID...]"))
    var dependsOn: String?

    /// The flags, as the library takes them.
    var request: AddRequest {
      var request = AddRequest()
      request.id = id
      request.repo = repo
      request.base = base
      request.branch = branch
      request.worktreePath = worktreePath
      request.task = task
      request.taskFile = taskFile
      request.priority = priority
      request.dependsOn = dependsOn.map(TaskFile.splitList)
      return request
    }

    func run(_ context: CommandContext) async throws {
      var request = self.request
      // Neither --task nor --task-file, on a terminal: the task is written in the editor (see Edit.swift).
      let draft = try AddDraft.compose(self, context)
      if let draft { request.taskFile = draft.path }
      let record: TaskRecord
      do {
        record = try context.store.add(try request.resolve(settings: context.settings, current: context.repository))
      } catch  where draft != nil {
        throw DraftKept(error: error, path: draft?.path ?? "", retry: "git taskq add")
      }
      draft?.discard()
      for line in LocalTrust.trustAdded(record, in: context) { Console.error(line) }
      // The repository as it is here (the record keeps the machine-independent form, e.g. '.').
      let repo =
        RepositoryReference(stored: record.repo).resolve(
          queueRepository: context.queueRepository, reposRoot: context.settings.path(.reposRoot))
        ?? record.repo
      print("\(record.id): added (todo) repo=\(repo) base=\(record.base) branch=\(record.branch)")
      if let hint = ShareHint.once(repository: context.repository, remote: Sync.defaultRemote(context.settings)) {
        Console.error(hint)
      }
    }
  }
}
