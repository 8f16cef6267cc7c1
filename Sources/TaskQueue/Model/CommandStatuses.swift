extension TaskStatus {
  /// The statuses a task must have for `command` (`approve`, `retry`, `edit`, …) to accept its id, read
  /// from the state machine; `nil` for a command that takes a task in any status (`show`, `log`).
  ///
  /// Completion offers exactly these ids, so it cannot drift from what the commands accept.
  public static func accepted(by command: String) -> Set<TaskStatus>? {
    switch command {
    case "approve": predecessors(of: .done)
    case "retry": predecessors(of: .todo)
    case "cancel": predecessors(of: .cancelled)
    case "run": predecessors(of: .planning)
    case "review": [.review]
    case "edit": Set(TaskEdit.editable)
    // Not while a worker drives it: `remove` and `cleanup` refuse an active task.
    case "remove", "cleanup": Set(allCases.filter { !$0.isActive })
    default: nil
    }
  }

  /// The statuses with a transition to `status`.
  public static func predecessors(of status: TaskStatus) -> Set<TaskStatus> {
    Set(allCases.filter { $0.canMove(to: status) })
  }
}
