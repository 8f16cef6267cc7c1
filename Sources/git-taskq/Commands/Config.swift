import ArgumentParser
import TaskQueue

extension GitTaskq {
  struct Config: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print the effective configuration and where each value comes from.",
      discussion: """
        Every setting is a git config key under taskq.* (repository, user or system scope), overridden by \
        its TASKQ_* environment variable, overridden by command-line flags.

        Examples:
          git taskq config
          git config taskq.maxParallel 4
          TASKQ_RUNTIME=local git taskq run
        """)

    func run(_ context: CommandContext) async throws {
      let width = SettingKey.all.map(\.name.count).max() ?? 20
      for key in SettingKey.all {
        let name = key.name.padded(to: width)
        let value = context.settings.string(key)
        print("\(name)  \(value.isEmpty ? "(unset)" : value)  [\(context.settings.origin(key))]")
      }
    }
  }
}
