import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What `add` was given, before resolution: flags override the task file's frontmatter, which overrides
/// the configured defaults.
public struct AddRequest: Sendable {
  public var id: String?
  public var repo: String?
  public var base: String?
  public var branch: String?
  public var worktreePath: String?
  public var priority: Int?
  public var dependsOn: [String]?
  /// `--task TEXT`.
  public var task: String?
  /// `--task-file PATH` (`-`: standard input).
  public var taskFile: String?

  public init() {}

  /// Reads the task file (if any), applies the precedence rules and validates everything: the id, the
  /// repository (a path, a short name under `taskq.reposRoot`, or the current repository), the base branch
  /// and the branch name.
  public func resolve(settings: Settings, current: Repository) throws -> NewTask {
    if task != nil && taskFile != nil {
      throw QueueError.conflictingOptions("--task and --task-file cannot be used together (choose one)")
    }
    var file: TaskFile
    var stem: String?
    if let taskFile {
      (file, stem) = try TaskFile.read(path: taskFile)
    } else if let task {
      let body = task.trimmingWhitespace()
      guard !body.isEmpty else { throw QueueError.missingOption("the task text is empty (give --task a description)") }
      guard id != nil else { throw QueueError.missingOption("--id is required with --task") }
      file = TaskFile(body: body)
    } else {
      throw QueueError.missingOption(
        "nothing to add: pass --task TEXT, or --task-file PATH ('-' reads standard input)")
    }
    guard let resolvedID = id ?? file.id ?? stem else {
      throw QueueError.missingOption("no task id: pass --id, or put 'id:' in the frontmatter")
    }
    try TaskID.validate(resolvedID)

    let repository: Repository
    let repoPath: String
    // Stored so that every machine finds its own clone (see RepositoryReference): the queue's repository
    // as ".", a short name as given, any other path as the absolute path it is here.
    let storedRepo: String
    if let name = repo ?? file.repo {
      (repository, repoPath) = try Self.openRepository(name, settings: settings)
      if Paths.trimmingTrailingSlashes(repoPath) == Paths.trimmingTrailingSlashes(current.mainWorkingDirectory) {
        storedRepo = RepositoryReference.queueValue
      } else if !Self.isPath(name) {
        storedRepo = name
      } else {
        storedRepo = repoPath
      }
    } else {
      repository = current
      repoPath = current.mainWorkingDirectory
      storedRepo = RepositoryReference.queueValue
    }
    let resolvedBase = base ?? file.base ?? settings.string(.base)
    // `resolveCommit` answers `nil` for a name that is unknown, ambiguous or malformed; any other error
    // (an unreadable object, an I/O failure) is not "base not found" and propagates as it is.
    guard !resolvedBase.hasPrefix("-"), try repository.resolveCommit(resolvedBase) != nil else {
      throw QueueError.baseNotFound(base: resolvedBase, repo: repoPath)
    }
    let resolvedBranch = branch ?? file.branch ?? "task/\(resolvedID)"
    guard Repository.isValidBranchName(resolvedBranch) else {
      throw QueueError.invalidValue(key: "--branch", value: resolvedBranch, expected: "a valid git branch name")
    }
    var seen: Set<String> = []
    let dependencies = (dependsOn ?? file.dependsOn ?? []).filter { seen.insert($0).inserted }
    let worktree = worktreePath ?? file.worktreePath
    // An empty path would expand to the current directory: the repository itself.
    if let worktree, worktree.trimmingSpaces().isEmpty {
      throw QueueError.invalidValue(
        key: "--worktree-path", value: worktree, expected: "a directory path (omit it for the default)")
    }
    return NewTask(
      id: resolvedID, repo: storedRepo, base: resolvedBase, branch: resolvedBranch,
      worktreePath: worktree.map(Paths.expand), priority: priority ?? file.priority ?? 0,
      dependsOn: dependencies, body: file.body)
  }

  /// Whether `--repo` names a path (it contains `/` or starts with `.` or `~`) rather than a short name.
  static func isPath(_ name: String) -> Bool {
    name.contains("/") || name.hasPrefix(".") || name.hasPrefix("~")
  }

  /// Opens `--repo`'s repository: a path when it contains `/` or starts with `.` or `~`, else a short name
  /// under `taskq.reposRoot`. Returns it with its absolute top-level path.
  public static func openRepository(_ name: String, settings: Settings) throws -> (Repository, String) {
    let isPath = Self.isPath(name)
    let path = isPath ? Paths.expand(name) : settings.path(.reposRoot) + "/" + name
    guard !name.isEmpty, FileManager.default.fileExists(atPath: path) else {
      let hint =
        isPath
        ? "no such directory '\(path)'"
        : "no directory '\(path)' (pass a path, or set taskq.reposRoot to the folder that holds it)"
      throw QueueError.repositoryNotFound(name, hint: hint)
    }
    do {
      let repository = try Repository.open(at: path)
      return (repository, repository.mainWorkingDirectory)
    } catch {
      throw QueueError.repositoryNotFound(name, hint: "'\(path)' is not a git repository")
    }
  }
}
