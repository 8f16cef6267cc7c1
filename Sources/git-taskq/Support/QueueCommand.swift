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

  /// The bytes ``printJSON(_:)`` writes.
  static func cleanJSON(_ bytes: [UInt8]) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    let hex = Array("0123456789abcdef".utf8)
    func escape(_ value: Int) {
      out.append(contentsOf: [0x5C, 0x75])
      for shift in [12, 8, 4, 0] { out.append(hex[(value >> shift) & 0xF]) }
    }
    // Runs of bytes that stay as they are are copied whole (`status --json` at 10,000 tasks is 6.5 MB).
    bytes.withUnsafeBufferPointer { bytes in
      var index = 0
      var run = 0
      let count = bytes.count
      func flush(upTo end: Int) {
        if end > run { out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[run..<end])) }
      }
      while index < count {
        let byte = bytes[index]
        guard byte == 0x5B || byte == 0xC2 || byte == 0xE2 || byte == 0x7F else {
          index += 1
          continue
        }
        if byte == 0x5B, index + 2 < count, bytes[index + 1] == 10, bytes[index + 2] == 10 {
          // `[`, newline, newline, spaces, `]`: an empty array.
          var end = index + 3
          while end < count, bytes[end] == 0x20 { end += 1 }
          if end < count, bytes[end] == 0x5D {
            flush(upTo: index)
            out.append(contentsOf: [0x5B, 0x5D])
            index = end + 1
            run = index
            continue
          }
        } else if byte == 0xC2, index + 1 < count, (0x80...0x9F).contains(bytes[index + 1]) {
          flush(upTo: index)
          escape(Int(bytes[index + 1]))
          index += 2
          run = index
          continue
        } else if byte == 0xE2, index + 2 < count, bytes[index + 1] == 0x80,
          bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9
        {
          flush(upTo: index)
          escape(bytes[index + 2] == 0xA8 ? 0x2028 : 0x2029)
          index += 3
          run = index
          continue
        } else if byte == 0x7F {
          flush(upTo: index)
          escape(0x7F)
          index += 1
          run = index
          continue
        }
        index += 1
      }
      flush(upTo: count)
    }
    return out
  }

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
