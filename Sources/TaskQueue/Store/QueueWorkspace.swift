import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What every command on the queue opens once: the repository around the current directory, its store,
/// and the settings resolved from its configuration.
///
/// Not `Sendable` (it holds a ``Repository``): one per process or thread.
public struct QueueWorkspace {
  /// No repository around the current directory (git's own wording is printed for it).
  public struct NotARepository: Error {}

  public let repository: Repository
  public let store: QueueStore
  public let settings: Settings

  /// A workspace over an opened repository (tests, tools that open it themselves).
  public init(repository: Repository, store: QueueStore, settings: Settings) {
    self.repository = repository
    self.store = store
    self.settings = settings
  }

  /// Discovers the repository as git does (`GIT_DIR`, `git -C`, a subdirectory) and resolves the settings.
  ///
  /// - Parameters:
  ///   - overrides: settings given as flags.
  ///   - warn: where the store's warnings go (a stale lock, a damaged record).
  /// - Returns: the workspace of the repository around the current directory.
  /// - Throws: ``NotARepository``; the configuration's error when it cannot be read (a broken
  ///   `.git/config` is reported, never silently replaced by the defaults).
  public static func open(
    overrides: [SettingKey: String] = [:], warn: @escaping @Sendable (String) -> Void
  ) throws -> QueueWorkspace {
    let repository: Repository
    do {
      repository = try Repository.discover()
    } catch let error as GitError where error.code == .notFound {
      throw NotARepository()
    }
    let store = QueueStore(repository: repository)
    store.warn = warn
    DamageNotice.install(warn)
    let settings = try Settings(configuration: try repository.configuration(), overrides: overrides)
    return QueueWorkspace(repository: repository, store: store, settings: settings)
  }

  /// The records of the queue around the current directory, or `nil` when there is no readable queue:
  /// for shell completion and the run board's count, which offer what they can and must never print an
  /// error in the middle of a command line or a board.
  public static func bestEffortRecords() -> [TaskRecord]? {
    // Not a repository, or a queue it cannot read: nothing to offer, and nothing to say mid-line.
    guard let repository = try? Repository.discover() else { return nil }
    return try? QueueStore(repository: repository).snapshot().records()
  }

  /// The working directory of the repository that holds the queue (its main worktree).
  public var queueRepository: String { repository.mainWorkingDirectory }

  /// This worktree's git directory (`.git`, or `.git/worktrees/<name>` in a linked worktree).
  public var gitDirectory: String { repository.gitDirectory }

  /// The git directory shared by every worktree (where machine-local files such as secrets live).
  public var commonDirectory: String { repository.commonDirectory }
}
