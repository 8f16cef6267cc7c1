import TaskqTestSupport
import Testing

/// Completion answers from a table of the commands (`CompletionTable`) instead of argument-parser's
/// description of them: the table must stay what that description says.
@Suite struct CompletionTableTests {
  /// Fails when an option or command was added, renamed or removed without regenerating the table
  /// (`git-taskq __complete --table`).
  @Test func theTableIsInStepWithTheCommands() throws {
    let scratch = try ScratchDirectory()
    let check = try Taskq.run(["__complete", "--check-table"], in: scratch.path)
    #expect(check.status == 0, "\(check.stdoutText)")
    #expect(check.stdoutText.isEmpty)
    // The generated table describes the commands (the check above compared something).
    let table = try Taskq.run(["__complete", "--table"], in: scratch.path)
    #expect(table.status == 0)
    for line in ["command add", "  option --id", "command status", "  positional _ value=remote"] {
      #expect(table.stdoutText.contains(line + "\n") || table.stdoutText.contains(line + " "), "\(line)")
    }
  }
}
