/// Where a task is in its lifecycle.
///
/// ```
/// todo → planning → building → review → done
///   ↘ cancelled ↙      ↘ failed → todo (retry)
/// ```
public enum TaskStatus: String, Codable, CaseIterable, Sendable, Comparable {
  case todo, planning, building, review, failed, done, cancelled

  /// The lifecycle order used to group `status` output.
  public static let displayOrder: [TaskStatus] = [.todo, .planning, .building, .review, .failed, .done, .cancelled]

  /// States a worker is driving right now.
  public var isActive: Bool { self == .planning || self == .building }

  /// States nothing leaves.
  public var isTerminal: Bool { self == .done || self == .cancelled }

  /// The seed's transition table, plus `planning|building → cancelled`: a running task can be cancelled
  /// (its worker notices and stops the agent).
  public var successors: Set<TaskStatus> {
    switch self {
    case .todo: [.planning, .cancelled]
    case .planning: [.building, .failed, .cancelled]
    case .building: [.review, .failed, .cancelled]
    case .review: [.done, .cancelled]
    case .failed: [.todo, .cancelled]
    case .done, .cancelled: []
    }
  }

  public func canMove(to next: TaskStatus) -> Bool { successors.contains(next) }

  public static func < (lhs: TaskStatus, rhs: TaskStatus) -> Bool {
    (displayOrder.firstIndex(of: lhs) ?? 0) < (displayOrder.firstIndex(of: rhs) ?? 0)
  }
}
