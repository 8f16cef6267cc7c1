import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a record from the queue may make `run`, `review` and `cleanup` do on this machine.
///
/// The queue can be pushed by anyone with access to the remote, so a record is untrusted input. Trust is
/// local to each machine: a task's `repo` is trusted when it is the queue's own repository, or under
/// `taskq.reposRoot`, or under a `taskq.trustedPath`; its `worktree_path` when it is under
/// `taskq.worktreesRoot` or a `taskq.trustedPath`. A `container` must be named `task-<id>-…` and a `port`
/// lie in `taskq.portRange`. `fsck` reports every problem; the commands refuse a record that has one
/// relevant to what they would do (``refusal(_:for:)``).
public struct RecordPolicy: Sendable {
  /// One reason not to act on a record, and what the user can do about it.
  public struct Problem: Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var fix: String
    public var description: String { "\(message) (\(fix))" }
  }

  /// What a command is about to do with a record: each looks at the fields it would act on.
  public enum Action: Sendable {
    /// Create a worktree in `repo` at `worktree_path`.
    case run
    /// Connect to `port`, inspect `container`, open `worktree_path`.
    case review
    /// Remove `container` and the worktree at `worktree_path` from `repo`.
    case cleanup
  }

  let reposRoot: String
  let worktreesRoot: String
  let trustedPaths: [String]
  let portRange: ClosedRange<Int>?
  let queueRepository: String

  public init(settings: RunSettings, queueRepository: String) {
    self.init(
      reposRoot: settings.reposRoot, worktreesRoot: settings.worktreesRoot, trustedPaths: settings.trustedPaths,
      portRange: settings.portRange, queueRepository: queueRepository)
  }

  /// The policy of explicit roots; `portRange` is `nil` when ports are not checked (as by `add`, which
  /// records none).
  public init(
    reposRoot: String, worktreesRoot: String, trustedPaths: [String], portRange: ClosedRange<Int>?,
    queueRepository: String
  ) {
    self.reposRoot = Self.normalize(reposRoot)
    self.worktreesRoot = Self.normalize(worktreesRoot)
    self.trustedPaths = trustedPaths.map(Self.normalize)
    self.portRange = portRange
    self.queueRepository = Self.normalize(queueRepository)
  }

  /// The directory of `record`'s repository on this machine (see ``RepositoryReference``), or `nil` when its
  /// `repo` is not a valid short name.
  public func repositoryPath(_ record: TaskRecord) -> String? {
    RepositoryReference(stored: record.repo).resolve(queueRepository: queueRepository, reposRoot: reposRoot)
  }

  /// The directory of `record`'s repository on this machine when this machine may act on it, else `nil`.
  public func trustedRepositoryPath(_ record: TaskRecord) -> String? {
    guard let path = repositoryPath(record), isTrustedRepository(path) else { return nil }
    return path
  }

  /// Whether `path` may be a task's `repo` on this machine.
  public func isTrustedRepository(_ path: String) -> Bool {
    guard Self.isPlainAbsolute(path) else { return false }
    let path = Self.normalize(path)
    return path == queueRepository || Self.isInside(path, reposRoot)
      || trustedPaths.contains { Self.isInside(path, $0) }
  }

  /// Whether `path` may be a task's `worktree_path` on this machine.
  public func isTrustedWorktree(_ path: String) -> Bool {
    guard Self.isPlainAbsolute(path) else { return false }
    let path = Self.normalize(path)
    return (path != worktreesRoot && Self.isInside(path, worktreesRoot))
      || trustedPaths.contains { Self.isInside(path, $0) }
  }

  /// Every problem of `record`, for `fsck`.
  public func problems(_ record: TaskRecord) -> [Problem] {
    problems(record, for: [.run, .review, .cleanup])
  }

  /// The one-line refusal of `record` for `action`, naming the fix; `nil` when the record may be acted on.
  public func refusal(_ record: TaskRecord, for action: Action) -> String? {
    guard let problem = problems(record, for: [action]).first else { return nil }
    return "refusing task '\(record.id)': \(problem.message) (\(problem.fix))"
  }

  func problems(_ record: TaskRecord, for actions: Set<Action>) -> [Problem] {
    var problems: [Problem] = []
    let check = "check the task with 'git taskq show --id \(record.id)'"
    // The queue's own repository and names under taskq.reposRoot mean this machine's clones: trusted.
    if case .named(let name) = RepositoryReference(stored: record.repo), !RepositoryReference.isValidName(name) {
      problems.append(
        Problem(
          message: "repo '\(record.repo)' is neither '.', a repository name nor an absolute path",
          fix: "\(check), then cancel it"))
    } else if case .path = RepositoryReference(stored: record.repo), !Self.isPlainAbsolute(record.repo) {
      problems.append(
        Problem(message: "repo '\(record.repo)' is not a plain absolute path", fix: "\(check), then cancel it"))
    } else if case .path = RepositoryReference(stored: record.repo), !isTrustedRepository(record.repo) {
      problems.append(
        Problem(
          message:
            "repo '\(record.repo)' is outside taskq.reposRoot (\(reposRoot)), this repository and every taskq.trustedPath",
          fix: "\(check), then trust it: git config --add taskq.trustedPath \(Self.normalize(record.repo))"))
    }
    // `run` derives the worktree path on this machine (or uses the one pinned in the task file, which it
    // checks itself): a path recorded by an earlier attempt elsewhere is not acted on then.
    if let worktree = record.worktreePath, !actions.isDisjoint(with: [.review, .cleanup]) {
      if !Self.isPlainAbsolute(worktree) {
        problems.append(
          Problem(message: "worktree_path '\(worktree)' is not a plain absolute path", fix: "\(check), then cancel it"))
      } else if !isTrustedWorktree(worktree) {
        problems.append(
          Problem(
            message:
              "worktree_path '\(worktree)' is outside taskq.worktreesRoot (\(worktreesRoot)) and every taskq.trustedPath",
            fix: "\(check), then trust it: git config --add taskq.trustedPath \(Self.normalize(worktree))"))
      }
    }
    if !actions.isDisjoint(with: [.review, .cleanup]), let container = record.container,
      !container.hasPrefix("task-\(record.id)-")
    {
      problems.append(
        Problem(
          message: "container '\(container)' is not named like one of ours (task-\(record.id)-…)",
          fix: "\(check); git-taskq never touches a container without its labels"))
    }
    if actions.contains(.review), let port = record.port, let portRange, !portRange.contains(port) {
      problems.append(
        Problem(
          message: "port \(port) is outside taskq.portRange (\(portRange.lowerBound)-\(portRange.upperBound))",
          fix: "\(check); git-taskq never connects to it (retry the task to run it here)"))
    }
    return problems
  }

  /// An absolute path without `.`/`..` components or control characters.
  static func isPlainAbsolute(_ path: String) -> Bool {
    path.hasPrefix("/") && !path.split(separator: "/").contains { $0 == ".." || $0 == "." }
      && !path.unicodeScalars.contains { $0.properties.generalCategory == .control }
  }

  static func isInside(_ path: String, _ root: String) -> Bool {
    root == "/" ? true : path == root || path.hasPrefix(root + "/")
  }

  static func normalize(_ path: String) -> String {
    var p = Paths.trimmingTrailingSlashes(path)
    while p.contains("//") { p = p.replacing("//", with: "/") }
    return p
  }
}
