/// What completion needs to know of the commands, declared once, so that a TAB never builds argument-parser's
/// description of every command (its `--experimental-dump-help` JSON, built and decoded again: about a
/// quarter of a completion's time).
///
/// ``text`` is generated from that description (`git-taskq __complete --table`), and
/// `git-taskq __complete --check-table` (run by `CompletionTableTests`) fails when it is no longer the same:
/// an option added to a command without regenerating the table fails the tests, not completion.
///
/// One line per command (`command NAME [hidden]`), then one line per argument of that command:
/// `KIND SPELLINGS [hidden] [repeating] [values=A|B] [value=NAME]`, with `SPELLINGS` the argument's names
/// joined by commas (`_` for none) and `value=` only for positional arguments (the only ones whose value
/// name completion reads). Only what ``Completer`` reads is described.
enum CompletionTable {
  /// The commands, as `git-taskq __complete --table` prints them.
  static let text = """
    root git-taskq
    command __complete hidden
      positional _ repeating value=words
      flag -h,--help
    command __git-completion hidden
      positional _ value=shell
      flag -h,--help
    command __manual hidden
      flag -h,--help
    command add
      option --id
      option --repo
      option --base
      option --branch
      option --worktree-path
      option --task
      option --task-file
      option --priority
      option --depends-on
      flag -h,--help
    command edit
      option --id
      flag -h,--help
    command import
      option --from
      flag --dry-run
      flag -h,--help
    command status
      option --id
      flag --json
      flag --all
      option --color values=auto|always|never
      flag --no-color
      option --watch
      flag -h,--help
    command show
      option --id
      flag --json
      flag -h,--help
    command log
      option --id
      option -n,--max-count
      flag --json
      flag -h,--help
    command approve
      option --id
      flag --merge
      flag --force
      option --remote
      flag -h,--help
    command cancel
      option --id
      flag -h,--help
    command retry
      option --id
      flag -h,--help
    command remove
      option --id
      flag -h,--help
    command run
      option --id
      option --max-parallel
      option --poll
      flag --cleanup-on-fail
      flag --dirty-run
      option --runtime
      flag --json
      option --remote
      flag -h,--help
    command review
      option --id
      flag --print
      flag -h,--help
    command cleanup
      option --id
      flag --done-only
      flag --cancelled-only
      flag --keep-worktree
      flag --force
      flag -h,--help
    command recover
      option --remote
      flag -h,--help
    command sync
      positional _ value=remote
      flag -h,--help
    command fsck
      flag --json
      flag --repair
      flag -h,--help
    command config
      flag -h,--help
    command help
      positional _ repeating value=subcommands
      flag -h,--help,--help hidden
    """

  /// The name of every command of ``text`` (hidden ones and `help` included), for the check of the first
  /// word at start-up: a literal, as splitting ``text`` costs more than the look-up it serves.
  /// ``differences(from:)`` checks it against the commands.
  static let commandNames = [
    "__complete", "__git-completion", "__manual", "add", "edit", "import", "status", "show", "log", "approve",
    "cancel", "retry", "remove", "run", "review", "cleanup", "recover", "sync", "fsck", "config", "help",
  ]

  /// The commands described by ``text``.
  static func root() -> CommandTree.Command? { parse(text) }

  /// `root`'s subcommands and their arguments, in the format of ``text``.
  static func render(_ root: CommandTree.Command) -> String {
    var lines = ["root \(root.commandName)"]
    for command in root.subcommands ?? [] {
      lines.append("command \(command.commandName)" + (command.shouldDisplay == false ? " hidden" : ""))
      for argument in command.arguments ?? [] {
        var line =
          "  \(argument.kind) " + (argument.spellings.isEmpty ? "_" : argument.spellings.joined(separator: ","))
        if argument.shouldDisplay == false { line += " hidden" }
        if argument.isRepeating == true { line += " repeating" }
        if let values = argument.allValues, !values.isEmpty { line += " values=" + values.joined(separator: "|") }
        if argument.kind == "positional", let name = argument.valueName { line += " value=" + name }
        lines.append(line)
      }
    }
    return lines.joined(separator: "\n")
  }

  /// The commands described by `text` (in the format ``render(_:)`` writes), or `nil` when it has no root.
  static func parse(_ text: String) -> CommandTree.Command? {
    var root: CommandTree.Command?
    var commands: [CommandTree.Command] = []
    for line in text.split(separator: "\n") {
      let words = line.split(separator: " ").map(String.init)
      guard let kind = words.first else { continue }
      switch kind {
      case "root":
        root = CommandTree.Command(commandName: words.count > 1 ? words[1] : "")
      case "command":
        guard words.count > 1 else { continue }
        commands.append(
          CommandTree.Command(commandName: words[1], shouldDisplay: words.contains("hidden") ? false : nil))
      default:
        guard words.count > 1, !commands.isEmpty else { continue }
        var argument = CommandTree.Argument(kind: kind)
        if words[1] != "_" {
          argument.names = words[1].split(separator: ",").map { spelling in
            spelling.hasPrefix("--")
              ? CommandTree.Argument.Name(kind: "long", name: String(spelling.dropFirst(2)))
              : CommandTree.Argument.Name(kind: "short", name: String(spelling.dropFirst()))
          }
        }
        for word in words.dropFirst(2) {
          if word == "hidden" { argument.shouldDisplay = false }
          if word == "repeating" { argument.isRepeating = true }
          if word.hasPrefix("values=") {
            argument.allValues = word.dropFirst("values=".count).split(separator: "|").map(String.init)
          }
          if word.hasPrefix("value=") { argument.valueName = String(word.dropFirst("value=".count)) }
        }
        commands[commands.count - 1].arguments = (commands[commands.count - 1].arguments ?? []) + [argument]
      }
    }
    root?.subcommands = commands
    return root
  }

  /// Differences between ``text`` and the table generated from argument-parser's description of the
  /// commands, one line each; empty when they are in step.
  static func differences(from generated: String) -> [String] {
    let embedded = text.split(separator: "\n").map(String.init)
    let wanted = generated.split(separator: "\n").map(String.init)
    var out: [String] = []
    for line in wanted.difference(from: embedded) {
      switch line {
      case .insert(_, let element, _): out.append("+ \(element)")
      case .remove(_, let element, _): out.append("- \(element)")
      }
    }
    let names = wanted.compactMap { line in line.hasPrefix("command ") ? line.split(separator: " ")[1] : nil }
    if names.map(String.init) != commandNames {
      out.append("! CompletionTable.commandNames is not \(names.map(String.init))")
    }
    // The table must also read back as what it says (a value with a space or a '|' would not).
    if let parsed = parse(generated), render(parsed) != generated {
      out.append("! the table does not read back as written (a name or value with a space, ',' or '|')")
    }
    return out
  }
}
