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
      DamageNotice.install { Console.error($0) }
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
enum Console {
  static func error(_ line: String) {
    FileHandle.standardError.write(Data((line + "\n").utf8))
  }

  /// Prints `error: <message>` and returns the exit code to throw.
  static func fail(_ error: any Error) -> ExitCode {
    switch error {
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

  /// JSON for people and programs: pretty, keys in a stable order.
  static func json<T: Encodable>(_ value: T) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return String(decoding: try encoder.encode(value), as: UTF8.self)
  }
}

/// `--id ID`, shared by the commands that act on one task.
struct TaskIDOption: ParsableArguments {
  @Option(name: .customLong("id"), help: ArgumentHelp("The task id.", valueName: "ID"))
  var id: String
}
