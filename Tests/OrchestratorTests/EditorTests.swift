import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// The editor of `edit` and `add`: chosen as git chooses it, run on the terminal through one spawn helper.
@Suite struct EditorTests {
  @Test func gitsOrderChoosesTheEditor() throws {
    let scratch = try ScratchRepository()
    try scratch.git("config", "core.editor", "from-config")
    let settings = try scratch.workspace().settings
    let terminal = ["TERM": "xterm", "VISUAL": "visual", "EDITOR": "editor"]
    let withGitEditor = terminal.merging(["GIT_EDITOR": "git-editor"]) { $1 }
    #expect(try Editor.resolve(settings: settings, environment: withGitEditor) == "git-editor")
    #expect(try Editor.resolve(settings: settings, environment: terminal) == "from-config")
    let plain = try ScratchRepository().workspace().settings
    #expect(try Editor.resolve(settings: plain, environment: terminal) == "visual")
    let dumb = ["TERM": "dumb", "VISUAL": "visual", "EDITOR": "ed"]
    #expect(try Editor.resolve(settings: plain, environment: dumb) == "ed")
    #expect(try Editor.resolve(settings: plain, environment: ["TERM": "xterm"]) == "vi")
    #expect(throws: QueueError.self) { try Editor.resolve(settings: plain, environment: ["TERM": "dumb"]) }
  }

  @Test func theEditorGetsThePathAsAnArgumentNeverAsShellText() throws {
    let scratch = try ScratchDirectory()
    let file = try scratch.write("a file; with $(shell) text.md", "before\n")
    // An editor configured as shell text with its own arguments.
    try Editor.launch("sed -i s/before/after/", on: file)
    #expect(try String(contentsOfFile: file, encoding: .utf8) == "after\n")
  }

  @Test func aFailingEditorIsAnErrorThatSaysWhereTheTextIsKept() throws {
    let scratch = try ScratchDirectory()
    let file = try scratch.write("draft.md", "text\n")
    #expect(
      throws: QueueError.editor("exit 3", failure: .failed(ending: "exited with status 3", keptDraft: file))
    ) {
      try Editor.launch("exit 3", on: file, keptDraft: file)
    }
    #expect(
      QueueError.editor("exit 3", failure: .failed(ending: "exited with status 3", keptDraft: file)).description
        == "there was a problem with the editor 'exit 3': it exited with status 3; nothing was recorded, and your text is kept in '\(file)'"
    )
    // git's "no editor": nothing runs, nothing fails.
    try Editor.launch(":", on: file)
  }

  @Test func shellQuoteQuotesOnlyWhatNeedsIt() {
    #expect(shellQuote("/plain/path-1.2") == "/plain/path-1.2")
    #expect(shellQuote("my tree") == "'my tree'")
    #expect(shellQuote("it's") == "'it'\\''s'")
    #expect(shellQuote("") == "''")
    #expect(ProcessSpec("git", ["-C", "my tree", "log"], timeout: 1).commandLine == "git -C 'my tree' log")
  }
}
