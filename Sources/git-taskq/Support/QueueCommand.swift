import ArgumentParser
import Foundation
import Git
import TaskQueue

/// What every queue command needs, opened once: the repository, the store and the settings.
struct CommandContext {
  let repository: Repository
  let store: QueueStore
  let settings: Settings
}

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
      let repository = try Repository.discover()
      let store = QueueStore(repository: repository)
      store.warn = { Console.error($0) }
      let settings = Settings(configuration: try? repository.configuration(), overrides: settingOverrides)
      context = CommandContext(repository: repository, store: store, settings: settings)
    } catch let error as GitError where error.code == .notFound {
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
    FileHandle.standardError.write(Data((TerminalText.block(line) + "\n").utf8))
  }

  /// Text on standard output, control characters (other than line breaks and tabs) made visible.
  static func out(_ text: String) {
    print(TerminalText.block(text))
  }

  /// Prints `error: <message>` and returns the exit code to throw.
  static func fail(_ error: any Error) -> ExitCode {
    switch error {
    case QueueError.invalidValue(let key, _, _) where SettingKey.all.contains(where: { $0.optionName == key }):
      // A setting given as a flag with a value it cannot take (`--runtime kubernetes`) is a usage error,
      // like `--color=sometimes` (status 64).
      Self.error("error: \(error)")
      return ExitCode(UsageErrors.exitCode)
    case let error as QueueError:
      Self.error("error: \(error.description)")
    case let error as GitError:
      Self.error("error: git: \(error.description) (\(error.function))")
    default:
      let text = (error as? any LocalizedError)?.errorDescription ?? "\(error)"
      Self.error("error: \(text)")
    }
    return ExitCode(1)
  }

  /// JSON on standard output. JSON escapes C0 controls (`\u001b`) but allows C1 controls and the line
  /// separators raw; those are escaped too (`\u009b`), which keeps the exact value (they occur only inside
  /// strings, since everything else in JSON is ASCII).
  ///
  /// Empty arrays print as `[]` (Foundation's pretty printer writes `[\n\n  ]`; a raw newline cannot occur
  /// inside a JSON string, so the pattern only ever matches an empty array).
  static func printJSON(_ text: String) {
    let text = compactingEmptyArrays(text)
    guard
      text.unicodeScalars.contains(where: { (0x7F...0x9F).contains($0.value) || $0 == "\u{2028}" || $0 == "\u{2029}" })
    else {
      print(text)
      return
    }
    var out = String.UnicodeScalarView()
    for scalar in text.unicodeScalars {
      if (0x7F...0x9F).contains(scalar.value) || scalar == "\u{2028}" || scalar == "\u{2029}" {
        let hex = String(scalar.value, radix: 16)
        out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
      } else {
        out.append(scalar)
      }
    }
    print(String(out))
  }

  /// `json` with every `[\n\n   ]` written `[]`, in one pass over its bytes (status --json of 10,000
  /// records has 10,000 of them).
  static func compactingEmptyArrays(_ json: String) -> String {
    let bytes = Array(json.utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var index = 0
    while index < bytes.count {
      let byte = bytes[index]
      if byte == UInt8(ascii: "["), index + 2 < bytes.count, bytes[index + 1] == 10, bytes[index + 2] == 10 {
        var end = index + 3
        while end < bytes.count, bytes[end] == UInt8(ascii: " ") { end += 1 }
        if end < bytes.count, bytes[end] == UInt8(ascii: "]") {
          out.append(contentsOf: [UInt8(ascii: "["), UInt8(ascii: "]")])
          index = end + 1
          continue
        }
      }
      out.append(byte)
      index += 1
    }
    return String(decoding: out, as: UTF8.self)
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
