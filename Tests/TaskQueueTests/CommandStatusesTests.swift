import TaskQueue
import TaskqTestSupport
import Testing

/// Which ids each command takes, read from the state machine (completion offers exactly these).
@Suite struct CommandStatusesTests {
  @Test func theStatusesEachCommandAcceptsFollowTheStateMachine() {
    #expect(TaskStatus.accepted(by: "approve") == [.review])
    #expect(TaskStatus.accepted(by: "review") == [.review])
    #expect(TaskStatus.accepted(by: "retry") == [.failed])
    #expect(TaskStatus.accepted(by: "run") == [.todo])
    #expect(TaskStatus.accepted(by: "edit") == [.todo, .failed])
    #expect(TaskStatus.accepted(by: "cancel") == [.todo, .planning, .building, .review, .failed])
    #expect(TaskStatus.accepted(by: "remove") == [.todo, .review, .failed, .done, .cancelled])
    #expect(TaskStatus.accepted(by: "cleanup") == [.todo, .review, .failed, .done, .cancelled])
    #expect(TaskStatus.accepted(by: "show") == nil)
  }

  /// What completion offers is what the command takes: every accepted status passes, every other fails.
  @Test(arguments: [("approve", TaskStatus.done), ("cancel", .cancelled), ("retry", .todo)])
  func everyAcceptedStatusAndNoOtherMakesTheMove(_ command: String, _ target: TaskStatus) throws {
    let accepted = try #require(TaskStatus.accepted(by: command))
    for status in TaskStatus.allCases {
      let scratch = try ScratchRepository()
      let store = try scratch.store()
      try scratch.addTask("T-001", store: store)
      try scratch.drive("T-001", to: status, store: store)
      let moved = (try? store.transition("T-001", to: target, command: command)) != nil
      #expect(moved == accepted.contains(status), "\(command) of a \(status) task")
    }
  }
}
