import ArgumentParser
import TaskQueue

/// Usage errors the way git reports them: `error: …` in lowercase, suggestions only when they are close,
/// the command's usage line with `git taskq`, and exit status 64 for every one of them.
enum UsageErrors {
  /// The exit status of every usage error (EX_USAGE).
  static let exitCode: Int32 = 64

  /// The commands a user can type, in the order of the manual.
  static let commands: [any ParsableCommand.Type] = [
    GitTaskq.Add.self, GitTaskq.Edit.self, GitTaskq.Import.self, GitTaskq.Status.self, GitTaskq.Show.self,
    GitTaskq.Log.self, GitTaskq.Approve.self, GitTaskq.Cancel.self, GitTaskq.Retry.self, GitTaskq.Remove.self,
    GitTaskq.Run.self, GitTaskq.Review.self, GitTaskq.Cleanup.self, GitTaskq.Recover.self, GitTaskq.Sync.self,
    GitTaskq.Fsck.self, GitTaskq.Config.self,
  ]

  static var commandNames: [String] { commands.map { $0._commandName } }

  /// Names the parser knows that are not in ``commands``: `help` and the hidden helpers of completion.
  static let otherNames = ["help", "__complete", "__git-completion", "__manual"]

  /// The error for a first word that is no command (`git taskq stauts`, `git taskq help nosuch`), or
  /// `nil` when the words can go to the parser.
  static func unknownCommand(in arguments: [String]) -> String? {
    guard let first = arguments.first, !first.hasPrefix("-") else { return nil }
    // A known command, the common case, is answered from the completion table: ``commandNames`` asks
    // argument-parser for each command's name, which reflects on every command type (~6 % of a
    // `status --id`).
    if first != "help", CompletionTable.commandNames.contains(first) { return nil }
    let known = commandNames + otherNames
    if !known.contains(first) { return "error: '\(TerminalText.line(first))' is not a taskq command." + hint(first) }
    if first == "help", arguments.count > 1, !arguments[1].hasPrefix("-"), !commandNames.contains(arguments[1]),
      arguments[1] != "help"
    {
      return "error: no help for '\(TerminalText.line(arguments[1]))': it is not a taskq command." + hint(arguments[1])
    }
    return nil
  }

  /// ` The most similar command is 'status'` (or commands), else a pointer to the list.
  static func hint(_ word: String) -> String {
    let similar = similarWords(to: word, among: commandNames)
    switch similar.count {
    case 0: return " See 'git taskq help'."
    case 1: return " The most similar command is '\(similar[0])'."
    default: return " The most similar commands are \(similar.map { "'\($0)'" }.joined(separator: ", "))."
    }
  }

  /// The words of `candidates` closest to `word`: an edit distance of at most 2 (1 for words of up to 4
  /// letters), or `word` a prefix of them of 3 letters or more; the closest first.
  static func similarWords(to word: String, among candidates: [String]) -> [String] {
    let word = word.lowercased()
    let limit = word.count <= 4 ? 1 : 2
    var scored: [(String, Int)] = []
    for candidate in candidates {
      let distance = editDistance(word, candidate)
      if distance <= limit {
        scored.append((candidate, distance))
      } else if word.count >= 3, candidate.hasPrefix(word) {
        scored.append((candidate, limit))
      }
    }
    guard let best = scored.map(\.1).min() else { return [] }
    return scored.filter { $0.1 == best }.map(\.0)
  }

  /// Damerau–Levenshtein distance (a swap of two neighbours counts once: `stauts` → `status` is 1).
  static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var d = [[Int]](repeating: [Int](repeating: 0, count: b.count + 1), count: a.count + 1)
    for i in 0...a.count { d[i][0] = i }
    for j in 0...b.count { d[0][j] = j }
    for i in 1...a.count {
      for j in 1...b.count {
        let cost = a[i - 1] == b[j - 1] ? 0 : 1
        d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
        if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] { d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1) }
      }
    }
    return d[a.count][b.count]
  }

  /// argument-parser's full message for a usage error, rewritten as git writes one:
  ///
  ///     error: unknown option '--prio'; did you mean '--priority'?
  ///     usage: git taskq add [--id <ID>] …
  ///     See 'git taskq add -h'.
  static func message(for error: any Error, arguments: [String]) -> String {
    let full = GitTaskq.fullMessage(for: error)
    var lines = full.components(separatedBy: "\n")
    var out: [String] = []
    let command = arguments.first.flatMap { commandNames.contains($0) ? $0 : nil }
    if var first = lines.first {
      lines.removeFirst()
      if first.hasPrefix("Error: ") { first.removeFirst("Error: ".count) }
      out.append("error: " + reword(first, command: command))
    }
    for line in lines {
      if line.hasPrefix("Help:") || line.isEmpty { continue }
      if line.hasPrefix("Usage: ") {
        out.append("usage: " + line.dropFirst("Usage: ".count).replacing("git-taskq", with: "git taskq"))
      } else if line.trimmingSpaces().hasPrefix("See '") {
        out.append("See 'git taskq \(command.map { "\($0) " } ?? "")-h'.")
      } else {
        out.append(line)
      }
    }
    return out.joined(separator: "\n")
  }

  /// The first line, lowercased as git writes it, with argument-parser's "Did you mean" kept only when the
  /// suggestion is close (`--prio` gets `--priority`, never `--id`).
  static func reword(_ text: String, command: String?) -> String {
    var text = text
    if let range = text.firstRange(of: ". Did you mean '") {
      text = String(text[..<range.lowerBound])
    }
    if text.hasPrefix("Unknown option '"), let end = text.dropFirst("Unknown option '".count).firstIndex(of: "'") {
      let option = String(text[text.index(text.startIndex, offsetBy: "Unknown option '".count)..<end])
      let options = command.map(Self.options(of:)) ?? []
      let similar = similarWords(to: option, among: options)
      if !similar.isEmpty {
        text += "; did you mean \(similar.map { "'\($0)'" }.joined(separator: " or "))?"
      }
    }
    guard let first = text.first, first.isUppercase, !text.hasPrefix("ID") else { return text }
    return first.lowercased() + text.dropFirst()
  }

  /// The long options of a command, from its help screen.
  static func options(of command: String) -> [String] {
    guard let type = commands.first(where: { $0._commandName == command }) else { return [] }
    let help = GitTaskq.helpMessage(for: type, columns: 1000)
    var found: [String] = []
    for word in help.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\n" || $0 == "[" || $0 == "]" })
    where word.hasPrefix("--") && word.count > 2 {
      let option = String(word.prefix { $0 != "=" && $0 != "<" })
      if !found.contains(option) { found.append(option) }
    }
    return found
  }
}
