import ArgumentParser
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  /// `git-taskq __complete -- WORDS…`: the completions of the last word, for the shell functions.
  ///
  /// Hidden: shells call it, people do not. It never fails: outside a repository, or on anything
  /// unexpected, it prints nothing, so a TAB never shows an error.
  struct Complete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "__complete",
      abstract: "Print the completions of the last word of a 'git taskq' command line (for shell completion).",
      discussion: """
        The words are those after 'taskq' (or 'git-taskq'), the last one being the word to complete \
        (empty for a new word). One completion per line, each ending in a space when it is a whole \
        word; or one of the markers __files__, __directories__, __remotes__, asking the shell to \
        complete those itself.

        Examples:
          git-taskq __complete -- st
          git-taskq __complete -- approve --id ''
          git-taskq __git-completion bash
        """,
      shouldDisplay: false)

    @Argument(parsing: .captureForPassthrough, help: "The words after 'taskq', the last one being completed.")
    var words: [String] = []

    func run() async throws {
      var words = words
      if words.first == "--" { words.removeFirst() }
      Self.printCompletions(of: words)
    }

    /// Prints the completions of the last of `words` (the words after `taskq`). ``Entrypoint`` calls it
    /// before argument-parser sets up its commands: the shell functions always pass `--`, and nothing of
    /// argument-parser is needed to answer them.
    static func printCompletions(of words: [String]) {
      let candidates = Completer(tool: Completer.toolInfo(), records: { _ in Completer.taskStates() }).complete(words)
      if !candidates.isEmpty { print(candidates.joined(separator: "\n")) }
    }

    /// `git-taskq __complete --table`: ``CompletionTable``'s text generated from argument-parser's
    /// description of the commands; `--check-table`: what differs from the table completion uses, with
    /// status 1 when anything does. Answered by ``Entrypoint``.
    static func table(check: Bool) -> Int32 {
      guard let root = CommandTree.root() else {
        print("error: argument-parser's description of the commands cannot be read")
        return 1
      }
      let generated = CompletionTable.render(root)
      guard check else {
        print(generated)
        return 0
      }
      var differences = CompletionTable.differences(from: generated)
      // The names given in CommandNames.swift are those argument-parser would derive from the types.
      for type in UsageErrors.commands where type._commandName != String(describing: type).lowercased() {
        differences.append("! \(type) is named '\(type._commandName)' (CommandNames.swift)")
      }
      guard differences.isEmpty else {
        print("error: CompletionTable.text is not in step with the commands; replace it with the output of")
        print("'git-taskq __complete --table' (Sources/git-taskq/Support/CompletionTable.swift). Differences:")
        for line in differences { print(line) }
        return 1
      }
      return 0
    }
  }

  /// `git-taskq __git-completion bash`: the `_git_taskq` function that git's own bash completion calls for
  /// `git taskq <TAB>`.
  struct GitCompletion: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "__git-completion",
      abstract: "Print the function that completes 'git taskq' in git's bash completion.",
      discussion: """
        Install it where bash-completion finds the completions of git-taskq (git's completion loads \
        that file when it meets 'git taskq'), together with argument-parser's script for git-taskq \
        itself; scripts/install.sh does:

          { git-taskq --generate-completion-script bash; git-taskq __git-completion bash; } \\
            > ~/.local/share/bash-completion/completions/git-taskq

        Examples:
          git-taskq __git-completion bash
        """,
      shouldDisplay: false)

    @Argument(
      help: ArgumentHelp("The shell (only bash: zsh and fish call git-taskq's own completion).", valueName: "shell"))
    var shell: String

    func validate() throws {
      guard shell == "bash" else {
        throw ValidationError("only 'bash' is supported (zsh and fish use --generate-completion-script)")
      }
    }

    func run() throws { print(Self.bash, terminator: "") }

    static let bash = #"""
      # git taskq: completion through git's own bash completion.
      #
      # git's completion calls _git_taskq for 'git taskq <TAB>' (and loads this file, named git-taskq, through
      # bash-completion's loader the first time). The words after 'taskq' go to 'git taskq __complete', which
      # knows every subcommand, flag and task id; it runs through git, so 'git -C DIR taskq …' completes the
      # ids of DIR's queue.
      _git_taskq ()
      {
      	local start=${__git_cmd_idx:-0} i
      	if [ "${words[start]}" != taskq ]; then
      		for ((i = 1; i < cword; i++)); do
      			if [ "${words[i]}" = taskq ]; then start=$i; break; fi
      		done
      	fi
      	local out
      	out="$(__git taskq __complete -- "${words[@]:start+1:cword-start-1}" "$cur")"
      	case "$out" in
      	__files__)
      		if declare -F _filedir >/dev/null; then _filedir; else COMPREPLY=($(compgen -f -- "${cur#*=}")); fi
      		return ;;
      	__directories__)
      		if declare -F _filedir >/dev/null; then _filedir -d; else COMPREPLY=($(compgen -d -- "${cur#*=}")); fi
      		return ;;
      	__remotes__)
      		__gitcomp_nl "$(__git_remotes)" "" "${cur#*=}"
      		return ;;
      	esac
      	if [ -z "$out" ]; then
      		# Nothing is valid here (no failed task for 'retry --id'): offer nothing, not git's fallback
      		# to file names.
      		compopt +o bashdefault +o default 2>/dev/null
      		COMPREPLY=()
      		return
      	fi
      	local IFS=$'\n'
      	COMPREPLY=($out)
      }

      """#
  }
}

/// The ids `--id` takes, for argument-parser's own scripts (zsh, fish and bash for `git-taskq`), which call
/// `git-taskq ---completion …` with the words of the command line: the same ids, by state, as
/// `git taskq <TAB>` offers through ``Completer``.
enum TaskIDCompletion {
  @Sendable static func complete(_ words: [String], _ index: Int, _ prefix: String) -> [String] {
    let command =
      words.first { TaskStatus.accepted(by: $0) != nil || ["status", "log", "show"].contains($0) } ?? ""
    let wanted = TaskStatus.accepted(by: command)
    return Completer.taskStates().filter { wanted?.contains($0.status) ?? true }.map(\.id).filter {
      $0.hasPrefix(prefix)
    }
  }
}

/// Completes a `git taskq` command line from the commands' own definitions (``CompletionTable``, checked
/// against argument-parser's description of them), so completion never lags behind a new flag.
struct Completer {
  typealias Command = CommandTree.Command
  typealias Argument = CommandTree.Argument

  let tool: Command?
  /// Every task's id and status (read only when ids are completed).
  let records: (String) -> [FastRead.TaskState]

  init(tool: Command?, records: @escaping (String) -> [FastRead.TaskState]) {
    self.tool = tool
    self.records = records
  }

  /// Every task's id and status in the queue around the current directory: from the snapshot cache
  /// without libgit2 when the queue's ref names the cache's commit (``FastRead``), else through libgit2;
  /// none when there is no readable queue (nothing is printed in the middle of a command line).
  static func taskStates() -> [FastRead.TaskState] {
    if let states = FastRead.taskStates() { return states }
    return (QueueWorkspace.bestEffortRecords() ?? []).map { FastRead.TaskState(id: $0.id, status: $0.status) }
  }

  /// The commands as ``CompletionTable`` describes them (argument-parser's description, generated once).
  static func toolInfo() -> Command? { CompletionTable.root() }

  /// Values of options whose type does not list them.
  static let knownValues: [String: [String]] = ["--runtime": ["docker", "local"]]
  static let fileOptions: Set<String> = ["--task-file"]
  static let directoryOptions: Set<String> = ["--from", "--worktree-path", "--repo"]
  static let remoteOptions: Set<String> = ["--remote"]

  /// The completions of the last of `words` (the words after `taskq`).
  func complete(_ words: [String]) -> [String] {
    guard let tool else { return [] }
    let current = words.last ?? ""
    let before = Array(words.dropLast())
    let visible = (tool.subcommands ?? []).filter { $0.shouldDisplay != false }
    guard
      let index = before.firstIndex(where: { word in visible.contains { $0.commandName == word } || word == "help" })
    else {
      if current.hasPrefix("-") { return Self.matching(["--help", "--version"], current) }
      return Self.matching(visible.map(\.commandName) + ["help"], current)
    }
    let name = before[index]
    if name == "help" { return Self.matching(visible.map(\.commandName).filter { $0 != "help" }, current) }
    guard let command = visible.first(where: { $0.commandName == name }) else { return [] }
    // --help is offered once, below; --version belongs to the root.
    let arguments = (command.arguments ?? []).filter { argument in
      argument.shouldDisplay != false && !argument.spellings.contains { ["--help", "-h", "--version"].contains($0) }
    }
    let rest = before[(index + 1)...]

    // The value of `--option=VALUE`.
    if current.hasPrefix("--"), let equals = current.firstIndex(of: "=") {
      let option = String(current[..<equals])
      guard let argument = arguments.first(where: { $0.kind == "option" && $0.spellings.contains(option) }) else {
        return []
      }
      return values(
        of: argument, spelled: option, command: name, prefix: String(current[current.index(after: equals)...]))
    }
    // The value of an option given as the previous word.
    if let previous = rest.last, previous.hasPrefix("-"), !previous.contains("="),
      let argument = arguments.first(where: { $0.kind == "option" && $0.spellings.contains(previous) })
    {
      return values(of: argument, spelled: previous, command: name, prefix: current)
    }
    if current.hasPrefix("-") {
      let used = Set(rest.map { $0.split(separator: "=", maxSplits: 1).first.map(String.init) ?? $0 })
      var flags: [String] = []
      for argument in arguments where argument.kind != "positional" {
        let spellings = argument.spellings
        if argument.isRepeating != true && spellings.contains(where: used.contains) { continue }
        // Long names only, unless a short one is being typed.
        flags += spellings.filter { $0.hasPrefix("--") || (current.count <= 2 && !current.hasPrefix("--")) }
      }
      flags.append("--help")
      return Self.matching(flags, current)
    }
    // Positional arguments: the remote of `sync`.
    if arguments.contains(where: { $0.kind == "positional" && $0.valueName == "remote" }) { return ["__remotes__"] }
    return []
  }

  /// The values `argument` (spelled `option`) takes that start with `prefix`.
  func values(of argument: Argument, spelled option: String, command: String, prefix: String) -> [String] {
    let long = argument.spellings.first { $0.hasPrefix("--") } ?? option
    if let all = argument.allValues, !all.isEmpty { return Self.matching(all, prefix) }
    if let known = Self.knownValues[long] { return Self.matching(known, prefix) }
    if Self.fileOptions.contains(long) { return ["__files__"] }
    if Self.directoryOptions.contains(long) { return ["__directories__"] }
    if Self.remoteOptions.contains(long) { return ["__remotes__"] }
    switch long {
    case "--id" where command != "add":
      let wanted = TaskStatus.accepted(by: command)
      let ids = records(command).filter { wanted?.contains($0.status) ?? true }.map(\.id)
      return Self.matching(ids, prefix)
    case "--depends-on":
      // A comma-separated list: complete its last element, keeping the ones before.
      let done = prefix.split(separator: ",", omittingEmptySubsequences: false).dropLast().map(String.init)
      let last = prefix.split(separator: ",", omittingEmptySubsequences: false).last.map(String.init) ?? ""
      let head = done.isEmpty ? "" : done.joined(separator: ",") + ","
      let ids = records(command).map(\.id).filter { !done.contains($0) }
      return Self.matching(ids, last).map { head + $0 }
    default:
      return []
    }
  }

  /// The words of `candidates` that start with `prefix`, each with the space that ends a whole word.
  static func matching(_ candidates: [String], _ prefix: String) -> [String] {
    var seen: Set<String> = []
    return candidates.filter { $0.hasPrefix(prefix) && seen.insert($0).inserted }.map { $0 + " " }
  }
}
