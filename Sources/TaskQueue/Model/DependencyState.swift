/// Where one dependency of a task stands, decided in one place for every view (`status`, `status --id`,
/// the run board's summary) and for claims.
public enum DependencyState: Equatable, Sendable {
  /// `done`: the dependency no longer holds the task back.
  case done
  /// Still on its way (`todo`, `planning`, `building`, `review`, or `failed`, which `retry` can bring
  /// back): the task waits.
  case waiting(TaskStatus)
  /// `cancelled`: it will never be done, so the task is blocked until its `depends_on` changes.
  case cancelled
  /// Not in the queue (removed, or never added): blocked as well.
  case missing

  /// The state of the dependency `id`, looked up with `record` (over the whole queue, never only the
  /// tasks shown).
  public static func of(_ id: String, record: (String) -> TaskRecord?) -> DependencyState {
    guard let dependency = record(id) else { return .missing }
    switch dependency.status {
    case .done: return .done
    case .cancelled: return .cancelled
    default: return .waiting(dependency.status)
    }
  }

  /// Whether the task can never run while this dependency stays as it is.
  public var isBlocking: Bool { self == .cancelled || self == .missing }

  /// A word for the state: `review`, `cancelled`, `removed`, `done`.
  public var word: String {
    switch self {
    case .done: "done"
    case .waiting(let status): status.rawValue
    case .cancelled: "cancelled"
    case .missing: "removed"
    }
  }
}

/// What holds a `todo` task back, from its dependencies' states.
public struct DependencySummary: Equatable, Sendable {
  /// Dependencies not yet done but on their way, with their status.
  public var waiting: [(id: String, status: TaskStatus)]
  /// Dependencies that will never be done: cancelled or not in the queue.
  public var blocking: [(id: String, state: DependencyState)]

  public static func == (a: DependencySummary, b: DependencySummary) -> Bool {
    a.waiting.map(\.id) == b.waiting.map(\.id) && a.waiting.map(\.status) == b.waiting.map(\.status)
      && a.blocking.map(\.id) == b.blocking.map(\.id) && a.blocking.map(\.state) == b.blocking.map(\.state)
  }

  /// The summary of `task`'s dependencies (empty unless some are not done).
  public init(of task: TaskRecord, record: (String) -> TaskRecord?) {
    waiting = []
    blocking = []
    for id in task.dependsOn {
      switch DependencyState.of(id, record: record) {
      case .done: break
      case .waiting(let status): waiting.append((id, status))
      case let state: blocking.append((id, state))
      }
    }
  }

  /// Whether every dependency is done.
  public var isClear: Bool { waiting.isEmpty && blocking.isEmpty }

  /// `blocked by T-3 (cancelled), T-9 (removed)` when something blocks, else
  /// `waiting on T-1 (review), T-2 (todo)`; `nil` when every dependency is done.
  public var text: String? {
    if !blocking.isEmpty {
      return "blocked by " + blocking.map { "\($0.id) (\($0.state.word))" }.joined(separator: ", ")
    }
    if !waiting.isEmpty {
      return "waiting on " + waiting.map { "\($0.id) (\($0.status.rawValue))" }.joined(separator: ", ")
    }
    return nil
  }
}
