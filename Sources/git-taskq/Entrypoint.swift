import ArgumentParser
import Orchestrator

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

@main
struct Entrypoint {
  static func main() async {
    // The guard every agent runs under (see AgentGuard): no parsing, no libgit2.
    if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == AgentGuard.command {
      terminate(AgentGuard.main(Array(CommandLine.arguments.dropFirst(2))))
    }
    let given = Array(CommandLine.arguments.dropFirst())
    if given == ["--version"] {
      print(GitTaskq.version)
      return
    }
    // Shell completion, on every TAB: answered from the commands' table, without argument-parser.
    if given.first == "__complete", given.count > 1 {
      switch given[1] {
      case "--":
        GitTaskq.Complete.printCompletions(of: Array(given.dropFirst(2)))
        return
      case "--table" where given.count == 2, "--check-table" where given.count == 2:
        terminate(GitTaskq.Complete.table(check: given[1] == "--check-table"))
      default:
        break
      }
    }
    if let problem = UsageErrors.unknownCommand(in: given) {
      Console.error(problem)
      terminate(UsageErrors.exitCode)
    }
    let arguments = Self.expandBareOptions(given)
    do {
      var command = try GitTaskq.parseAsRoot(arguments)
      if var asyncCommand = command as? any AsyncParsableCommand {
        try await asyncCommand.run()
      } else {
        try command.run()
      }
    } catch {
      Self.exit(error, arguments: given)
    }
  }

  /// Exits for `error`: help and `ExitCode` as argument-parser does; every other error of parsing or
  /// validation as a usage error, git's way (``UsageErrors``), with status 64.
  static func exit(_ error: any Error, arguments: [String]) -> Never {
    let code = GitTaskq.exitCode(for: error)
    let generated = arguments.contains { $0.hasPrefix("--experimental") || $0.hasPrefix("--generate-completion") }
    if code == .success, !(error is ExitCode), !generated {
      // Help: the usage lines say `git taskq add`, as the rest of the help and the manual do.
      let text = GitTaskq.fullMessage(for: error).replacing("git-taskq ", with: "git taskq ")
      print(text)
      terminate(0)
    }
    if error is ExitCode || code == .success || code.rawValue != UsageErrors.exitCode {
      GitTaskq.exit(withError: error)
    }
    Console.error(UsageErrors.message(for: error, arguments: arguments))
    terminate(UsageErrors.exitCode)
  }

  /// The options whose value is a number that may be negative: a value such as `-3` would otherwise read
  /// as an option (`Missing value for '--priority'`) instead of reaching its validation.
  static let numericOptions: Set<String> = ["--priority", "--max-parallel", "--max-count", "--poll", "--watch"]

  /// Gives the options whose value is optional the value they stand for.
  ///
  /// argument-parser cannot express an optional value: a bare `--poll` (the seed's
  /// `--poll [SECONDS]`) or `--watch` gets the marker value that its command reads as "the configured
  /// interval", and a bare `--color` becomes `--color always`, as in git. A value that follows is kept
  /// (`--poll 10`, `--watch 0.5`, `--color never`).
  static func expandBareOptions(_ arguments: [String]) -> [String] {
    var out: [String] = []
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      out.append(argument)
      if argument == "--" {
        out.append(contentsOf: arguments[(index + 1)...])
        break
      }
      let next = index + 1 < arguments.count ? arguments[index + 1] : nil
      if let next, next.hasPrefix("-"), Double(next) != nil, Self.numericOptions.contains(argument) || argument == "-n"
      {
        out[out.count - 1] = (argument == "-n" ? "--max-count" : argument) + "=" + next
        index += 2
        continue
      }
      switch argument {
      case "--poll":
        if next.flatMap(Double.init) == nil { out.append(GitTaskq.Run.bareFlagValue) }
      case "--watch":
        if next.flatMap(Double.init) == nil { out.append(GitTaskq.Status.bareWatchValue) }
      case "--color":
        if next.flatMap(ColorWhen.init(rawValue:)) == nil { out.append(ColorChoice.bareFlagValue) }
      case "--task", "--id":
        // Values that may look like the options above stay values: `add --task --watch`.
        if let next {
          out.append(next)
          index += 1
        }
      default:
        break
      }
      index += 1
    }
    return out
  }
}

/// Ends the process with `status` (libc's `exit`, which `Entrypoint.exit(_:arguments:)` hides by name).
private func terminate(_ status: Int32) -> Never { exit(status) }
