import ArgumentParser
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension GitTaskq {
  struct Log: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the history of the queue's transitions, newest first.",
      discussion: """
        Read from the commits of refs/taskq/queue and their Taskq-* trailers (the same history that \
        'git log refs/taskq/queue' shows). One line per operation: the abbreviated commit, the time \
        (UTC), the subject (such as 'T-001: planning → building (plan made)') and the worker that made \
        it. A removed task's history stays. --json prints an array of {commit, time, task, op, from, \
        to, worker, subject} (see docs/json.md).

        Examples:
          git taskq log
          git taskq log --id T-001
          git taskq log --json -n 20
        """)

    @Option(
      help: ArgumentHelp("Only this task's history.", valueName: "ID"), completion: .custom(TaskIDCompletion.complete))
    var id: String?

    @Option(
      name: [.customShort("n"), .customLong("max-count")], help: ArgumentHelp("Show at most N entries.", valueName: "N")
    )
    var maxCount: Int?

    @Flag(help: "Print JSON (see docs/json.md).")
    var json = false

    struct Entry: Encodable {
      var commit: String
      var time: String
      var task: String
      var op: String
      var from: String?
      var to: String?
      var worker: String
      var subject: String
      func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(commit, forKey: .commit)
        try c.encode(time, forKey: .time)
        try c.encode(task, forKey: .task)
        try c.encode(op, forKey: .op)
        try c.encode(from, forKey: .from)
        try c.encode(to, forKey: .to)
        try c.encode(worker, forKey: .worker)
        try c.encode(subject, forKey: .subject)
      }
      enum CodingKeys: String, CodingKey { case commit, time, task, op, from, to, worker, subject }
    }

    func validate() throws {
      if let maxCount, maxCount < 1 { throw ValidationError("-n must be a positive number") }
    }

    func run(_ context: CommandContext) async throws {
      if let id { try TaskID.validate(id) }
      let history = try context.store.history(task: id, limit: maxCount)
      if let id, history.isEmpty { _ = try context.store.snapshot().existing(id) }
      if json {
        let entries = history.map { h in
          Entry(
            commit: h.commit.hex, time: Timestamp.iso(h.time), task: h.operation.task, op: h.operation.kind.rawValue,
            from: h.operation.from?.rawValue, to: h.operation.to?.rawValue, worker: h.operation.worker,
            subject: h.subject)
        }
        Console.printJSON(try Console.json(entries))
        return
      }
      guard !history.isEmpty else { return }
      var lines: [String] = []
      for h in history {
        let time = Timestamp.iso(h.time).prefix(19).replacing("T", with: " ")
        let subject = TerminalText.line(h.subject)
        lines.append("\(h.commit.hex.prefix(9))  \(time)  \(subject)  [\(TerminalText.line(h.operation.worker))]")
      }
      Pager.print(lines.joined(separator: "\n"), configuration: context.settings.gitConfig)
    }
  }
}
