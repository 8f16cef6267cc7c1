import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// Shell completion: `git taskq <TAB>` in bash through git's own completion (`_git_taskq`, installed with
/// argument-parser's script for git-taskq), and the `__complete` command behind it.
@Suite struct CompletionTests {
  static let gitCompletion: String? = [
    "/usr/share/bash-completion/completions/git", "/usr/local/share/bash-completion/completions/git",
    "/etc/bash_completion.d/git",
  ].first { FileManager.default.fileExists(atPath: $0) }

  /// A repository with T-1 todo, T-2 in review, T-3 failed, T-4 done, and a remote `origin`.
  static func repository() throws -> ScratchRepository {
    let repository = try ScratchRepository()
    let store = try repository.store()
    for id in ["T-1", "T-2", "T-3", "T-4"] { try repository.addTask(id, store: store) }
    try repository.drive("T-2", to: .review, store: store)
    try repository.drive("T-3", to: .failed, store: store)
    try repository.drive("T-4", to: .done, store: store)
    try repository.git("remote", "add", "origin", repository.directory.path + "/origin.git")
    return repository
  }

  /// The completion file scripts/install.sh installs: argument-parser's script, then `_git_taskq`.
  static func completionFile(in directory: ScratchDirectory) throws -> String {
    let generated = try Taskq.run(["--generate-completion-script", "bash"], in: directory.path)
    let function = try Taskq.run(["__git-completion", "bash"], in: directory.path)
    guard generated.succeeded, function.succeeded else {
      throw TestFailure("cannot generate the completion: \(generated.summary) \(function.summary)")
    }
    return try directory.write("git-taskq.bash", generated.stdoutText + function.stdoutText)
  }

  /// Completes each command line (its words, as bash splits them: `--id=T` is `--id`, `=`, `T`) in a bash
  /// with git's completion and ours loaded, in `directory`; returns each COMPREPLY.
  static func complete(_ lines: [[String]], in directory: String, scratch: ScratchDirectory) throws -> [[String]] {
    let file = try completionFile(in: scratch)
    var script = """
      source '\(try #require(gitCompletion))'
      source '\(file)'
      t() {
        COMP_WORDS=("$@"); COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}; COMPREPLY=()
        __git_wrap__git_main
        if [ ${#COMPREPLY[@]} -gt 0 ]; then printf '%s\\037' "${COMPREPLY[@]}"; fi; printf '\\036'
      }

      """
    for words in lines {
      script +=
        "t " + words.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ") + "\n"
    }
    let system = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    let result = try ProcessRunner.run(
      ProcessSpec(
        "bash", ["--norc", "--noprofile", "-c", script],
        environment: [
          "PATH": "\(Taskq.binaryDirectory):\(system)", "HOME": scratch.path, "GIT_CONFIG_NOSYSTEM": "1",
          "TERM": "dumb",
        ], inheritEnvironment: false, directory: directory, timeout: 60))
    guard result.succeeded else { throw TestFailure("bash failed: \(result.summary)") }
    #expect(result.stderrText.isEmpty, "\(result.stderrText)")
    return result.stdoutText.components(separatedBy: "\u{1E}").dropLast().map { reply in
      reply.components(separatedBy: "\u{1F}").dropLast()
    }
  }

  @Test(.enabled(if: gitCompletion != nil, "git's bash completion is not installed (no completions/git): skipped"))
  func gitTaskqTabCompletesSubcommandsFlagsAndTaskIDs() throws {
    let repository = try Self.repository()
    let replies = try Self.complete(
      [
        ["git", "taskq", "st"],
        ["git", "taskq", ""],
        ["git", "taskq", "approve", "--"],
        ["git", "taskq", "approve", "--id", ""],
        ["git", "taskq", "retry", "--id", ""],
        ["git", "taskq", "edit", "--id", "T-"],
        ["git", "taskq", "status", "--id", "=", "T-"],
        ["git", "taskq", "status", "--color", ""],
        ["git", "taskq", "status", "--id", "T-1", "--"],
        ["git", "taskq", "add", "--depends-on", "T-1,"],
        ["git", "taskq", "sync", ""],
        ["git", "taskq", "help", "ap"],
        ["git", "taskq", "log", "-"],
      ], in: repository.path, scratch: repository.directory)
    #expect(replies[0] == ["status "])
    let subcommands = [
      "add", "edit", "import", "status", "show", "log", "approve", "cancel", "retry", "remove", "run", "review",
      "cleanup", "recover", "sync", "fsck", "config", "help",
    ]
    #expect(replies[1] == subcommands.map { $0 + " " })
    #expect(replies[2] == ["--id ", "--merge ", "--force ", "--remote ", "--help "])
    // Only the ids the command accepts: approve wants review, retry wants failed, edit todo or failed.
    #expect(replies[3] == ["T-2 "])
    #expect(replies[4] == ["T-3 "])
    #expect(replies[5] == ["T-1 ", "T-3 "])
    #expect(replies[6] == ["T-1 ", "T-2 ", "T-3 ", "T-4 "])
    #expect(replies[7] == ["auto ", "always ", "never "])
    // Flags already given are not offered again.
    #expect(replies[8] == ["--json ", "--all ", "--color ", "--no-color ", "--watch ", "--help "])
    #expect(replies[9] == ["T-1,T-2 ", "T-1,T-3 ", "T-1,T-4 "])
    #expect(replies[10] == ["origin "])
    #expect(replies[11] == ["approve "])
    #expect(replies[12] == ["--id ", "-n ", "--max-count ", "--json ", "--help "])
  }

  @Test(.enabled(if: gitCompletion != nil, "git's bash completion is not installed (no completions/git): skipped"))
  func gitDashCCompletesTheIDsOfThatRepository() throws {
    let repository = try Self.repository()
    let elsewhere = try ScratchDirectory()
    let replies = try Self.complete(
      [
        ["git", "-C", repository.path, "taskq", "cancel", "--id", ""],
        ["git", "taskq", "status", "--id", ""],
      ], in: elsewhere.path, scratch: elsewhere)
    #expect(replies[0] == ["T-1 ", "T-2 ", "T-3 "])
    // Outside a repository there is nothing to offer, and nothing is printed.
    #expect(replies[1] == [])
  }

  @Test func completeCommandAnswersWithoutARepository() throws {
    let elsewhere = try ScratchDirectory()
    let result = try Taskq.run(["__complete", "--", "approve", "--id", ""], in: elsewhere.path)
    #expect(result.status == 0)
    #expect(result.stdoutText.isEmpty)
    #expect(result.stderrText.isEmpty)
    let files = try Taskq.run(["__complete", "--", "add", "--task-file", ""], in: elsewhere.path)
    #expect(files.stdoutText == "__files__\n")
    let hidden = try Taskq.run(["--help"], in: elsewhere.path)
    #expect(!hidden.stdoutText.contains("__complete"))
  }

  /// The command descriptions completion reads are also the help: every command has a one-line summary,
  /// a discussion and examples, in the style of git's own.
  @Test func everyCommandHasASummaryADiscussionAndExamples() throws {
    let scratch = try ScratchDirectory()
    let dump = try Taskq.run(["--experimental-dump-help"], in: scratch.path)
    let tool = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout)) as? [String: Any])
    let root = try #require(tool["command"] as? [String: Any])
    let commands = try #require(root["subcommands"] as? [[String: Any]]).filter {
      ($0["shouldDisplay"] as? Bool) != false && ($0["commandName"] as? String) != "help"
    }
    #expect(commands.count == 17)
    for command in [root] + commands {
      let name = command["commandName"] as? String ?? "?"
      let abstract = command["abstract"] as? String ?? ""
      let discussion = command["discussion"] as? String ?? ""
      #expect(!abstract.isEmpty && !abstract.contains("\n") && abstract.count <= 90, "\(name): \(abstract)")
      #expect(abstract.first?.isUppercase == true && abstract.hasSuffix("."), "\(name): \(abstract)")
      let parts = discussion.components(separatedBy: "Examples:\n")
      #expect(parts.count == 2, "\(name) has no 'Examples:'")
      #expect(
        parts.first?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty == false, "\(name) has no discussion")
      let examples = (parts.last ?? "").components(separatedBy: "\n\n").first?.split(separator: "\n") ?? []
      #expect(!examples.isEmpty && examples.allSatisfy { $0.hasPrefix("  ") }, "\(name): \(examples)")
      #expect(examples.contains { $0.contains("git taskq") }, "\(name): \(examples)")
      let help = try Taskq.run(name == "git-taskq" ? ["--help"] : [name, "--help"], in: scratch.path)
      #expect(help.status == 0 && help.stdoutText.hasPrefix("OVERVIEW: "), "\(name): \(help.summary)")
    }
  }

  @Test(arguments: ["bash", "zsh", "fish"])
  func argumentParserScriptsListTheSubcommands(shell: String) throws {
    let scratch = try ScratchDirectory()
    let result = try Taskq.run(["--generate-completion-script", shell], in: scratch.path)
    #expect(result.status == 0)
    for name in ["approve", "edit", "import", "status"] { #expect(result.stdoutText.contains(name)) }
    #expect(!result.stdoutText.contains("__complete"))
  }

  /// zsh and fish (argument-parser's scripts) complete task ids by state too, through `---completion`.
  @Test(arguments: ["zsh", "fish", "bash"])
  func argumentParserScriptsCompleteTaskIDs(shell: String) throws {
    let scratch = try ScratchDirectory()
    let script = try Taskq.run(["--generate-completion-script", shell], in: scratch.path).stdoutText
    for command in ["approve", "retry", "edit", "status", "show", "log", "cancel", "remove", "review"] {
      #expect(script.contains("---completion \(command) -- --id"), "\(shell): \(command)")
    }
  }

  /// What those scripts get back: the ids the command accepts, nothing where none is valid.
  @Test func theCallbackOffersIDsByState() throws {
    let repository = try Self.repository()
    func ids(_ command: String) throws -> [String] {
      let result = try repository.taskq([
        "---completion", command, "--", "--id", "3", "0", "git-taskq", command, "--id", "",
      ])
      #expect(result.status == 0)
      return result.stdoutText.split(separator: "\n").map(String.init)
    }
    #expect(try ids("approve") == ["T-2"])
    #expect(try ids("retry") == ["T-3"])
    #expect(try ids("edit") == ["T-1", "T-3"])
    #expect(try ids("status") == ["T-1", "T-2", "T-3", "T-4"])
    let empty = try ScratchRepository()
    try empty.addTask("T-9")
    #expect(
      try empty.taskq(["---completion", "retry", "--", "--id", "3", "0", "git-taskq", "retry", "--id", ""]).stdoutText
        .trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
  }

  /// `git taskq retry --id <TAB>` with no failed task: nothing, not git's fallback to file names.
  @Test(.enabled(if: gitCompletion != nil && TmuxPane.isAvailable, "needs git's bash completion and tmux"))
  func nothingWhereNothingIsValid() throws {
    let repository = try ScratchRepository()
    try repository.addTask("T-1")
    try repository.directory.write("repo/README-file.md", "x")
    let file = try Self.completionFile(in: repository.directory)
    let rc = try repository.directory.write(
      "bashrc", "PS1='$ '\nsource '\(try #require(Self.gitCompletion))'\nsource '\(file)'\n")
    let pane = try TmuxPane(
      columns: 100, rows: 20, directory: repository.path, command: "bash --noprofile --rcfile '\(rc)' -i",
      environment: ["HOME": repository.directory.path, "TERM": "xterm"])
    defer { pane.close() }
    try pane.wait { $0.contains { $0.hasPrefix("$") } }
    try pane.send("git taskq retry --id ", "Tab", "Tab")
    Thread.sleep(forTimeInterval: 1)
    try pane.send("x", "Enter", "echo MARK", "Enter")
    let lines = try pane.wait { $0.contains("MARK") }
    #expect(!lines.contains { $0.contains("README-file.md") }, "\(lines)")
    #expect(lines.contains { $0.hasPrefix("$ git taskq retry --id x") }, "\(lines)")
  }
}
