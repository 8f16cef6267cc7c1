import ArgumentParser
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  /// `git-taskq __manual`: the manual page, git-taskq(1), in roff, as `git help taskq` (and so
  /// `git taskq --help`) shows it. `scripts/install.sh` installs its output.
  ///
  /// Laid out like git's own pages: NAME, SYNOPSIS, DESCRIPTION, COMMANDS (in the order of a task's life),
  /// OPTIONS, CONFIGURATION (every `taskq.*` key), EXIT STATUS, FILES, SEE ALSO. Hidden commands and
  /// options are left out.
  struct Manual: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "__manual",
      abstract: "Print the manual page git-taskq(1) in roff (scripts/install.sh installs it).",
      shouldDisplay: false)

    func run() throws { print(ManualPage.render(), terminator: "") }
  }
}

/// The roff text of git-taskq(1), from the commands' own definitions and ``SettingKey/all``.
enum ManualPage {
  typealias Command = CommandTree.Command
  typealias Argument = CommandTree.Argument

  static let version = GitTaskq.version

  static func render() -> String {
    guard let tool = tool() else { return "" }
    let byName = Dictionary(
      (tool.subcommands ?? []).map { ($0.commandName, $0) }, uniquingKeysWith: { a, _ in a })
    var out = """
      .TH GIT\\-TASKQ 1 "" "git-taskq \(version)" "Git Manual"
      .SH NAME
      git-taskq \\- \(escape(lowercasedFirst(tool.abstract ?? "")))
      .SH SYNOPSIS
      .nf
      \\fBgit taskq\\fR \\fIcommand\\fR [\\fIoptions\\fR]

      """
    for type in UsageErrors.commands {
      let usage = GitTaskq.usageString(for: type).replacing("git-taskq", with: "git taskq")
      out += wrap(usage, width: 72).map(escape).joined(separator: "\n") + "\n"
    }
    out += ".fi\n.SH DESCRIPTION\n"
    out += paragraphs(description)
    out += ".SH COMMANDS\n"
    for type in UsageErrors.commands {
      guard let command = byName[type._commandName] else { continue }
      out += ".SS \"git taskq \(command.commandName)\"\n"
      out += paragraphs((command.abstract ?? "") + "\n\n" + (command.discussion ?? ""))
      let arguments = (command.arguments ?? []).filter { argument in
        argument.shouldDisplay != false
          && !(argument.names ?? []).contains { ["help", "version", "h"].contains($0.name) }
      }
      for argument in arguments {
        out += ".TP\n" + spelling(argument) + "\n" + escape(argument.abstract ?? "") + "\n"
      }
    }
    out += """
      .SH OPTIONS
      .TP
      \\fB\\-h\\fR, \\fB\\-\\-help\\fR
      Show the help of git taskq, or with a command (\\fBgit taskq add \\-h\\fR, \\fBgit taskq help add\\fR) of that command.
      .TP
      \\fB\\-\\-version\\fR
      Print the version of git-taskq.
      .PP
      Git's own options go before \\fBtaskq\\fR: \\fBgit \\-C\\fR \\fIpath\\fR \\fBtaskq\\fR \\fI...\\fR runs in another repository, \
      \\fBgit \\-\\-no\\-pager taskq\\fR never pages, \\fBgit \\-p taskq\\fR always does.
      .SH CONFIGURATION
      Every setting is a git config key under \\fBtaskq.*\\fR, read from the repository, the user and the system \
      configuration; its \\fBTASKQ_*\\fR environment variable overrides it, and a command-line flag overrides both. \
      \\fBgit taskq config\\fR prints each value and where it comes from.

      """
    for key in SettingKey.all {
      let fallback = key.defaultValue.isEmpty ? "empty" : key.defaultValue
      out += ".TP\n\\fB\(key.name)\\fR (\\fB\(key.environmentName)\\fR, default \(escape(fallback)))\n"
      out += escape(upperFirst(key.summary)) + ".\n"
    }
    out += """
      .TP
      \\fBtaskq.trustedPath\\fR (multi\\-valued)
      Directories outside the roots that records of this queue may name as repo or worktree_path on this machine.
      .TP
      \\fBcolor.taskq\\fR, \\fBcolor.ui\\fR
      When \\fBstatus\\fR and the \\fBrun\\fR board colour: always, never, auto (the default: on a terminal). A non\\-empty \\fBNO_COLOR\\fR turns colour off.
      .TP
      \\fBpager.taskq\\fR, \\fBcore.pager\\fR
      The pager of \\fBstatus\\fR, \\fBshow\\fR and \\fBlog\\fR on a terminal, chosen as git chooses it: \\fBGIT_PAGER\\fR, \\fBpager.taskq\\fR (false turns paging off), \\fBcore.pager\\fR, \\fBPAGER\\fR, then less; \\fBLESS=FRX\\fR when \\fBLESS\\fR is unset.
      .SH EXIT STATUS
      .TP
      .B 0
      Success.
      .TP
      .B 1
      The operation was refused or failed, and the queue is unchanged (unknown id, illegal transition, bad task file, a git error).
      .TP
      .B 64
      Bad usage: an unknown command or option, a missing or malformed value, \\fBhelp\\fR of an unknown command.
      .TP
      .B 128
      Not in a git repository.
      .TP
      .B 130
      \\fBrun\\fR or \\fBstatus \\-\\-watch\\fR was interrupted (Ctrl\\-C, SIGTERM).
      .SH FILES
      .TP
      .B refs/taskq/queue
      The queue: each commit a full snapshot (taskq.json, tasks/<bb>/<id>/record.json, task.md, errors/), each transition one commit with Taskq\\-* trailers. \\fBgit log refs/taskq/queue\\fR is its history.
      .TP
      .B $GIT_DIR/taskq/
      This machine's derived state: the snapshot cache (deletable at any time) and the per\\-task server passwords (secrets/).
      .TP
      .B queue/tasks.jsonl
      The Python taskq's queue, read by \\fBgit taskq import\\fR and never changed.
      .SH SEE ALSO
      \\fBgit\\fR(1), \\fBgit\\-worktree\\fR(1), \\fBgit\\-log\\fR(1), \\fBgit\\-config\\fR(1), \\fBgit\\-fetch\\fR(1), \\fBgit\\-push\\fR(1); \
      docs/commands.md, docs/configuration.md, docs/json.md, docs/storage\\-format.md and docs/sharing.md in the source.

      """
    return out
  }

  /// The root's discussion without the parts the manual has sections for.
  static var description: String {
    let text = GitTaskq.configuration.discussion
    let kept = text.components(separatedBy: "\n\n").filter {
      !$0.hasPrefix("Exit status") && !$0.hasPrefix("See 'git taskq help")
    }
    return kept.joined(separator: "\n\n")
  }

  static func tool() -> Command? { CommandTree.root() }

  /// A usage line broken before an option group (`[--id <ID>]`) so that no line passes `width`; the
  /// lines after the first are indented under the command's options, as git's manual pages do.
  static func wrap(_ usage: String, width: Int) -> [String] {
    var groups: [String] = []
    var depth = 0
    var current = ""
    for character in usage {
      if character == " ", depth == 0 {
        groups.append(current)
        current = ""
        continue
      }
      if character == "[" || character == "<" { depth += 1 }
      if character == "]" || character == ">" { depth -= 1 }
      current.append(character)
    }
    groups.append(current)
    // "git taskq add": the first three words stay together.
    let head = groups.prefix(3).joined(separator: " ")
    let indent = String(repeating: " ", count: head.count + 1)
    var lines = [head]
    for group in groups.dropFirst(3) {
      if lines[lines.count - 1].count + 1 + group.count > width {
        lines.append(indent + group)
      } else {
        lines[lines.count - 1] += " " + group
      }
    }
    return lines
  }

  /// `\fB\-\-id\fR \fIID\fR`.
  static func spelling(_ argument: Argument) -> String {
    let names = (argument.names ?? []).map { name in
      "\\fB" + escape(name.kind == "short" ? "-\(name.name)" : "--\(name.name)") + "\\fR"
    }
    var text = names.joined(separator: ", ")
    if argument.kind == "positional" { text = "\\fI" + escape(argument.valueName ?? "") + "\\fR" }
    if argument.kind == "option", let value = argument.valueName { text += " \\fI" + escape(value) + "\\fR" }
    return text
  }

  /// Text as roff paragraphs: blank lines separate paragraphs; a paragraph whose lines are indented
  /// (examples) stays as it is.
  static func paragraphs(_ text: String) -> String {
    var out = ""
    for paragraph in text.components(separatedBy: "\n\n") {
      let lines = paragraph.components(separatedBy: "\n").filter { !$0.trimmingSpaces().isEmpty }
      guard !lines.isEmpty else { continue }
      if lines.count > 1, lines.dropFirst().allSatisfy({ $0.hasPrefix("  ") }) {
        out += ".PP\n" + escape(lines[0]) + "\n.RS 4\n.nf\n"
        out += lines.dropFirst().map { escape(String($0.drop { $0 == " " })) }.joined(separator: "\n") + "\n.fi\n.RE\n"
      } else {
        out += ".PP\n" + escape(lines.joined(separator: " ")) + "\n"
      }
    }
    return out
  }

  /// `text` safe in roff: backslashes and dashes escaped, no line starting with a control character.
  static func escape(_ text: String) -> String {
    var out = text.replacing("\\", with: "\\e").replacing("-", with: "\\-")
    if out.hasPrefix(".") || out.hasPrefix("'") { out = "\\&" + out }
    return out
  }

  static func lowercasedFirst(_ text: String) -> String {
    var text = text
    if text.hasSuffix(".") { text.removeLast() }
    return (text.first?.lowercased() ?? "") + text.dropFirst()
  }

  static func upperFirst(_ text: String) -> String { (text.first?.uppercased() ?? "") + text.dropFirst() }
}
