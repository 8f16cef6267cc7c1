import Foundation
import TaskQueue
import TaskqTestSupport
import Testing

/// The state machine, driven through the store for every pair of statuses.
@Suite struct StateMachineTests {
  /// The seed's table plus `planning|building → cancelled`, written out independently of the code under test.
  static let legal: Set<String> = [
    "todo>planning", "todo>cancelled",
    "planning>building", "planning>failed", "planning>cancelled",
    "building>review", "building>failed", "building>cancelled",
    "review>done", "review>cancelled",
    "failed>todo", "failed>cancelled",
  ]

  static let pairs: [(TaskStatus, TaskStatus)] = TaskStatus.allCases.flatMap { from in
    TaskStatus.allCases.map { (from, $0) }
  }

  @Test func theSuccessorTableIsTheSeeds() {
    for (from, to) in Self.pairs {
      #expect(from.canMove(to: to) == Self.legal.contains("\(from.rawValue)>\(to.rawValue)"), "\(from) → \(to)")
      #expect(from.successors.contains(to) == from.canMove(to: to))
    }
    #expect(TaskStatus.allCases.filter(\.isTerminal) == [.done, .cancelled])
    #expect(TaskStatus.allCases.filter(\.isActive) == [.planning, .building])
  }

  @Test(arguments: pairs)
  func transitionThroughTheStore(from: TaskStatus, to: TaskStatus) throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-1", store: store)
    try scratch.drive("T-1", to: from, store: store)
    #expect(try store.snapshot().record("T-1")?.status == from)
    let tip = try scratch.queueTip()
    let legal = Self.legal.contains("\(from.rawValue)>\(to.rawValue)")
    if legal {
      let record = try store.transition("T-1", to: to, command: "probe")
      #expect(record.status == to)
      #expect(try store.snapshot().record("T-1")?.status == to)
      #expect(try scratch.queueTip() != tip)
      #expect(try scratch.queueTrailers("Taskq-From").first == from.rawValue)
      #expect(try scratch.queueTrailers("Taskq-To").first == to.rawValue)
    } else {
      let needs = TaskStatus.displayOrder.filter { Self.legal.contains("\($0.rawValue)>\(to.rawValue)") }
      #expect(throws: QueueError.illegalTransition(id: "T-1", command: "probe", status: from, needs: needs)) {
        try store.transition("T-1", to: to, command: "probe")
      }
      #expect(try scratch.queueTip() == tip)
      #expect(try store.snapshot().record("T-1")?.status == from)
    }
  }

  @Test func theIllegalTransitionMessageSaysTheStatusAndWhatTheCommandNeeds() {
    let message = QueueError.illegalTransition(id: "T-1", command: "approve", status: .todo, needs: [.review])
      .description
    #expect(message == "cannot approve task 'T-1': it is 'todo' (approve needs 'review')")
    let two = QueueError.illegalTransition(id: "T-1", command: "retry", status: .done, needs: [.failed, .review])
      .description
    #expect(two.contains("it is 'done'"))
    #expect(two.contains("'failed' or 'review'"))
  }
}
