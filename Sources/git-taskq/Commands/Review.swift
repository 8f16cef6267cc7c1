import ArgumentParser
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Review: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Open a task in review in OpenChamber.",
      discussion: """
        Checks that the task is in review, that its container runs and its OpenCode server answers, then \
        starts 'openchamber' (taskq.reviewProgram) in the task's worktree with \
        OPENCODE_HOST=http://127.0.0.1:<port> and OPENCODE_SKIP_START=true. --print prints the URL and \
        the command instead.

        Examples:
          git taskq review --id T-001
          git taskq review --id T-001 --print
        """)

    @OptionGroup var task: TaskIDOption

    @Flag(help: "Print the server URL and the review command instead of starting it.")
    var print = false

    func run(_ context: CommandContext) async throws {
      let launch = try ReviewLaunch.prepare(id: task.id, in: context)
      if print {
        for line in launch.printedLines { Console.out(line) }
        return
      }
      try launch.replaceProcess()
    }
  }
}
