import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What every queue command needs, opened once: the repository, the store and the settings.
typealias CommandContext = QueueWorkspace

/// A subcommand that works on the queue. Its `run()` opens the repository and the configuration, calls
/// `run(_:)`, and turns every error into one `error: …` line and an exit status, so no command repeats it.
protocol QueueCommand: AsyncParsableCommand {
  /// Settings given as flags; they win over the environment and git config.
  var settingOverrides: [SettingKey: String] { get }
  func run(_ context: CommandContext) async throws
}

extension QueueCommand {
  var settingOverrides: [SettingKey: String] { [:] }

  mutating func run() async throws {
    let context: CommandContext
    do {
      context = try QueueWorkspace.open(overrides: settingOverrides, warn: { Console.error($0) })
    } catch is QueueWorkspace.NotARepository {
      Console.error("fatal: not a git repository (or any of the parent directories): .git")
      throw ExitCode(128)
    } catch {
      throw Console.fail(error)
    }
    do {
      try await run(context)
    } catch let exit as ExitCode {
      throw exit
    } catch {
      throw Console.fail(error)
    }
  }
}

/// Output helpers: results on stdout, progress and errors on stderr.
///
/// Text that holds queue data goes out through ``out(_:)`` and ``error(_:)``, which make every control
/// character visible (``TerminalText``): records come from other machines, and an ESC or BEL in a
/// `last_error` must not reach the terminal. JSON goes out through `print` unchanged.
enum Console {
  /// One or more lines on standard error, control characters (other than the line breaks) made visible.
  static func error(_ line: String) {
    Output.write(TerminalText.block(line) + "\n", to: 2)
  }

  /// Text on standard output, control characters (other than line breaks and tabs) made visible.
  static func out(_ text: String) {
    print(TerminalText.block(text))
  }

  /// Prints `error: <message>` as one line and returns the exit code to throw.
  ///
  /// One line whatever the message holds: it may quote queue data from another machine (a remote worker's
  /// name in a drop reason), whose line breaks must not add lines of their choosing to the error
  /// (``TerminalText/line(_:)`` shows them as `\u{a}`).
  static func fail(_ error: any Error) -> ExitCode {
    switch error {
    case QueueError.invalidValue(let key, _, _) where SettingKey.all.contains(where: { $0.optionName == key }):
      // A setting given as a flag with a value it cannot take (`--runtime kubernetes`) is a usage error,
      // like `--color=sometimes` (status 64).
      errorLine("error: \(error)")
      return ExitCode(UsageErrors.exitCode)
    case let kept as DraftKept:
      // Two lines, each escaped on its own: the error, then where the user's text is kept.
      errorLine("error: \(kept.line)")
      errorLine(kept.hint)
    default:
      errorLine("error: \(ErrorText.line(error))")
    }
    return ExitCode(1)
  }

  /// `line` on standard error as exactly one line (trailing line breaks dropped), every control character
  /// made visible.
  static func errorLine(_ line: String) {
    var line = Substring(line)
    while let last = line.last, last.isNewline { line.removeLast() }
    Output.write(TerminalText.line(String(line)) + "\n", to: 2)
  }

  /// JSON on standard output, in one pass over its bytes. JSON escapes C0 controls (`\u001b`) but allows
  /// C1 controls and the line separators raw; those are escaped too (`\u009b`), which keeps the exact value
  /// (they occur only inside strings, since everything else in JSON is ASCII). Empty arrays print as `[]`
  /// (Foundation's pretty printer writes `[\n\n  ]`; a raw newline cannot occur inside a JSON string, so
  /// the pattern only ever matches an empty array).
  static func printJSON(_ text: String) {
    Output.write(String(decoding: cleanJSON(Array(text.utf8)), as: UTF8.self) + "\n", to: 1)
  }

  /// The bytes ``printJSON(_:)`` writes (``RecordJSON/clean(_:)``).
  static func cleanJSON(_ bytes: [UInt8]) -> [UInt8] { RecordJSON.clean(bytes) }

  /// JSON for people and programs: pretty, keys in a stable order.
  static func json<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }
}

/// `--id ID`, shared by the commands that act on one task.
struct TaskIDOption: ParsableArguments {
  @Option(
    name: .customLong("id"), help: ArgumentHelp("The task id.", valueName: "ID"),
    completion: .custom(TaskIDCompletion.complete))
  var id: String
}
