import ArgumentParser

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The commands as argument-parser describes them (its `--experimental-dump-help` JSON, read in-process):
/// the one source of the manual page and of completion, so both follow the commands' definitions.
enum CommandTree {
  struct Command: Decodable {
    var commandName: String
    var abstract: String?
    var discussion: String?
    var shouldDisplay: Bool?
    var arguments: [Argument]?
    var subcommands: [Command]?
  }

  struct Argument: Decodable {
    struct Name: Decodable {
      var kind: String
      var name: String
    }
    var kind: String
    var names: [Name]?
    var valueName: String?
    var abstract: String?
    var shouldDisplay: Bool?
    var isRepeating: Bool?
    var allValues: [String]?

    /// `--id`, `-n`.
    var spellings: [String] {
      (names ?? []).map { $0.kind == "short" ? "-\($0.name)" : "--\($0.name)" }
    }
  }

  private struct Tool: Decodable { var command: Command }

  /// The root command with every subcommand, or `nil` if argument-parser's description cannot be read.
  static func root() -> Command? {
    let json: String
    do {
      _ = try GitTaskq.parseAsRoot(["--experimental-dump-help"])
      return nil
    } catch {
      json = GitTaskq.fullMessage(for: error)
    }
    // A description that does not decode leaves the manual and completion without commands, not broken.
    return (try? JSONDecoder().decode(Tool.self, from: Data(json.utf8)))?.command
  }
}
