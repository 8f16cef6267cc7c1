import ArgumentParser
import Orchestrator
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

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
      try TaskID.validate(task.id)
      let settings = try RunSettings(context.settings)
      guard let record = try context.store.snapshot().record(task.id) else { throw QueueError.notFound(task.id) }
      guard record.status == .review else {
        throw QueueError.illegalTransition(id: record.id, command: "review", status: record.status, needs: [.review])
      }
      // The record may come from a remote: check it before looking at any path, container or port it names.
      let policy = RecordPolicy(settings: settings, queueRepository: context.repository.mainWorkingDirectory)
      if let refusal = policy.refusal(record, for: .review) { throw ReviewError(refusal) }
      guard let worktree = record.worktreePath, FileManager.default.fileExists(atPath: worktree) else {
        throw ReviewError("task '\(record.id)' has no worktree on this machine (it was cleaned up, or ran elsewhere)")
      }
      guard let port = record.port, let container = record.container else {
        throw ReviewError(
          "task '\(record.id)' ran on the local runtime: there is no server to attach; inspect it with 'git -C \(worktree) log -p \(record.base)..'"
        )
      }
      let engine = ContainerEngine(program: settings.containerProgram, timeout: settings.setupTimeout)
      guard ProcessRunner.resolve(settings.containerProgram) != nil else {
        throw ReviewError("'\(settings.containerProgram)' is not on PATH (install it, or set taskq.containerProgram)")
      }
      guard engine.isRunning(container) == true else {
        throw ReviewError(
          "container '\(container)' of task '\(record.id)' is not running (start it with '\(settings.containerProgram) start \(container)', or retry the task)"
        )
      }
      let password = ServerSecrets(commonDirectory: context.repository.commonDirectory).existing(for: record.id)
      guard
        Loopback.httpStatus(
          port: port, path: "/global/health", timeout: 3, authorization: password.map(ServerSecrets.authorization))
          == 200
      else {
        throw ReviewError(
          "the OpenCode server of task '\(record.id)' does not answer on 127.0.0.1:\(port) (see '\(settings.containerProgram) logs \(container)')"
        )
      }
      let url = "http://127.0.0.1:\(port)"
      var environment = ["OPENCODE_HOST": url, "OPENCODE_SKIP_START": "true"]
      let secretFile = try ServerSecrets(commonDirectory: context.repository.commonDirectory).path(for: record.id)
      if let password { environment["OPENCODE_SERVER_PASSWORD"] = password }
      if print {
        Console.out("url: \(url)")
        let passwordPart = password == nil ? "" : "OPENCODE_SERVER_PASSWORD=$(cat \(shellQuote(secretFile))) "
        Console.out(
          "command: cd \(shellQuote(worktree)) && \(passwordPart)OPENCODE_HOST=\(url) OPENCODE_SKIP_START=true \(settings.reviewProgram)"
        )
        if password != nil { Console.out("user: opencode  password: in \(secretFile) (this machine only)") }
        return
      }
      guard let program = ProcessRunner.resolve(settings.reviewProgram) else {
        throw ReviewError(
          "'\(settings.reviewProgram)' is not on PATH (install OpenChamber, or use 'git taskq review --id \(record.id) --print')"
        )
      }
      // The review UI is interactive: replace this process with it, keeping the terminal.
      guard chdir(worktree) == 0 else { throw ReviewError("cannot enter the worktree '\(worktree)'") }
      for (key, value) in environment { setenv(key, value, 1) }
      let argv: [UnsafeMutablePointer<CChar>?] = [strdup(program), nil]
      execv(program, argv)
      throw ReviewError("cannot start '\(program)': \(String(cString: strerror(errno)))")
    }
  }
}

/// A one-line refusal of `review`.
struct ReviewError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}
