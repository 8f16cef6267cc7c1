import ArgumentParser
import Orchestrator

#if canImport(Glibc)
import Glibc
#endif

@main
struct Entrypoint {
  static func main() async {
    // The guard every agent runs under (see AgentGuard): no parsing, no libgit2.
    if CommandLine.arguments.count > 1 && CommandLine.arguments[1] == AgentGuard.command {
      exit(AgentGuard.main(Array(CommandLine.arguments.dropFirst(2))))
    }
    await GitTaskq.main(Self.expandBareOptions(Array(CommandLine.arguments.dropFirst())))
  }

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
