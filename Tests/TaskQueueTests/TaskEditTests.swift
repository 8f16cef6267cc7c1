import Foundation
import TaskQueue
import TaskqTestSupport
import Testing

/// The `edit` operation in-process: what it records, and what it refuses with the words `add` uses.
@Suite struct TaskEditTests {
  /// Writes `text` as the edited draft and returns its path.
  func draft(_ scratch: ScratchRepository, _ text: String) throws -> String {
    try scratch.directory.write("draft.md", text)
  }

  /// `text` with `line` added at the end of its frontmatter.
  func adding(_ line: String, to text: String) throws -> String {
    let close = try #require(text.range(of: "\n---\n"))
    return text[..<close.lowerBound] + "\n" + line + text[close.lowerBound...]
  }

  @Test func changedKeysAreRecordedAsOneEditCommit() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    let edit = TaskEdit(store: store, settings: try Settings(configuration: nil, environment: [:]))
    let original = try edit.start("T-001")
    let edited = try adding("priority: 7", to: original) + "More detail.\n"
    let outcome = try edit.apply(id: "T-001", original: original, editedPath: try draft(scratch, edited))
    #expect(outcome.changed == ["priority", "body"])
    #expect(outcome.record.priority == 7)
    #expect(try scratch.queueTrailers("Taskq-Op").first == "edit")
  }

  @Test func aDependencyCycleIsRefusedAndNothingIsRecorded() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    try scratch.addTask("T-002", dependsOn: ["T-001"], store: store)
    let tip = try scratch.queueTip()
    let edit = TaskEdit(store: store, settings: try Settings(configuration: nil, environment: [:]))
    let original = try edit.start("T-001")
    let edited = try adding("depends_on: [T-002]", to: original)
    #expect(
      throws: QueueError.dependency("depending on 'T-002' would make a cycle: T-001 -> T-002 -> T-001")
    ) {
      try edit.apply(id: "T-001", original: original, editedPath: try draft(scratch, edited))
    }
    #expect(try scratch.queueTip() == tip)
  }

  @Test func aMissingDependencyIsRefusedWithAddsWords() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    #expect(
      throws: QueueError.dependency("task 'T-002' depends on 'T-404', which is not in the queue (add it first)")
    ) {
      try scratch.addTask("T-002", dependsOn: ["T-404"], store: store)
    }
    let edit = TaskEdit(store: store, settings: try Settings(configuration: nil, environment: [:]))
    let original = try edit.start("T-001")
    let edited = try adding("depends_on: [T-404]", to: original)
    #expect(
      throws: QueueError.dependency("task 'T-001' depends on 'T-404', which is not in the queue (add it first)")
    ) {
      try edit.apply(id: "T-001", original: original, editedPath: try draft(scratch, edited))
    }
  }

  @Test(arguments: [TaskStatus.planning, .review, .done])
  func onlyTodoAndFailedTasksCanBeEdited(_ status: TaskStatus) throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    try scratch.drive("T-001", to: status, store: store)
    let edit = TaskEdit(store: store, settings: try Settings(configuration: nil, environment: [:]))
    #expect(
      throws: QueueError.illegalTransition(id: "T-001", command: "edit", status: status, needs: [.todo, .failed])
    ) {
      try edit.start("T-001")
    }
  }

  @Test func anEditOfAFileSomeoneElseChangedIsRefused() throws {
    let scratch = try ScratchRepository()
    let store = try scratch.store()
    try scratch.addTask("T-001", store: store)
    let edit = TaskEdit(store: store, settings: try Settings(configuration: nil, environment: [:]))
    let original = try edit.start("T-001")
    // Someone else edits first.
    _ = try edit.apply(id: "T-001", original: original, editedPath: try draft(scratch, original + "Theirs.\n"))
    #expect(throws: QueueError.self) {
      try edit.apply(id: "T-001", original: original, editedPath: try draft(scratch, original + "Mine.\n"))
    }
  }

  @Test func aKeptDraftIsResumedOnlyWhileItsTaskIsUnchanged() throws {
    let scratch = try ScratchRepository()
    let gitDirectory = try scratch.open().gitDirectory
    let draft = TaskDraft(gitDirectory: gitDirectory, name: "T-001")
    #expect(try draft.open(text: "v1") == false)
    #expect(try draft.read() == "v1")
    try "my words".write(toFile: draft.path, atomically: true, encoding: .utf8)
    #expect(try draft.open(text: "v1") == true)
    #expect(try draft.read() == "my words")
    // The task changed meanwhile: the draft starts over from the new text.
    #expect(try draft.open(text: "v2") == false)
    #expect(try draft.read() == "v2")
    draft.discard()
    #expect(throws: QueueError.self) { try draft.read() }
  }
}
