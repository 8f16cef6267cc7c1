import ArgumentParser

@main
struct Entrypoint {
  static func main() async {
    await GitTaskq.main(Self.expandBarePoll(Array(CommandLine.arguments.dropFirst())))
  }

  /// `--poll` takes an optional value (the seed's `--poll [SECONDS]`), which argument-parser cannot express:
  /// a bare `--poll` gets the marker value that `run` reads as "the configured interval".
  static func expandBarePoll(_ arguments: [String]) -> [String] {
    var out: [String] = []
    var index = 0
    while index < arguments.count {
      let argument = arguments[index]
      out.append(argument)
      if argument == "--" {
        out.append(contentsOf: arguments[(index + 1)...])
        break
      }
      if argument == "--poll" {
        let next = index + 1 < arguments.count ? arguments[index + 1] : nil
        if next.flatMap(Double.init) == nil { out.append(GitTaskq.Run.bareFlagValue) }
      }
      index += 1
    }
    return out
  }
}
