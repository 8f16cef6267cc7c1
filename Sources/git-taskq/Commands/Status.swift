import ArgumentParser
import Foundation
import Orchestrator
import TaskQueue

extension GitTaskq {
  struct Status: QueueCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show the queue, grouped by status.",
      discussion: """
        Tasks are grouped in lifecycle order with counts. --json prints the records (an array; with --id \
        the single record), with the field names of the original taskq.

        Examples:
          git taskq status
          git taskq status --id T-001
          git taskq status --json | jq '.[] | select(.status=="review")'
        """)

    @Option(help: ArgumentHelp("Show only this task.", valueName: "ID"))
    var id: String?

    @Flag(help: "Print JSON.")
    var json = false

    func run(_ context: CommandContext) async throws {
      let snapshot = try context.store.snapshot()
      if let id {
        try TaskID.validate(id)
        guard let record = try snapshot.record(id) else { throw QueueError.notFound(id) }
        print(json ? try Console.json(record) : StatusView.render([record], now: Timestamp.nowSeconds()))
        return
      }
      let records = try snapshot.records()
      if !json, let line = Self.remoteLine(context) { print(line) }
      if json {
        print(try Console.json(records))
      } else if records.isEmpty {
        print("no tasks (add one with 'git taskq add')")
      } else {
        print(StatusView.render(records, now: Timestamp.nowSeconds()))
      }
    }

    /// `queue: 2 ahead, 1 behind origin (as of the last fetch; run 'git taskq sync')`, when a remote's queue
    /// was fetched before and differs.
    static func remoteLine(_ context: CommandContext) -> String? {
      let remote = GitTaskq.Sync.defaultRemote(context.settings)
      let sync = QueueSync(store: context.store, transport: GitCLITransport(gitDirectory: context.repository.gitDirectory))
      guard let divergence = try? sync.divergence(remote: remote) else { return nil }
      let (ahead, behind) = divergence
      guard ahead > 0 || behind > 0 else { return nil }
      var parts: [String] = []
      if ahead > 0 { parts.append("\(ahead) ahead of") }
      if behind > 0 { parts.append("\(behind) behind") }
      return "queue: \(parts.joined(separator: " and ")) \(remote) (as of the last fetch; run 'git taskq sync')"
    }
  }
}

/// The text of `status`: one group per status in lifecycle order, one line per task.
enum StatusView {
  static func render(_ records: [TaskRecord], now: Int) -> String {
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    let idWidth = min(24, records.map(\.id.count).max() ?? 4)
    var lines: [String] = []
    for status in TaskStatus.displayOrder {
      let group = records.filter { $0.status == status }
      guard !group.isEmpty else { continue }
      lines.append("\(status.rawValue) (\(group.count))")
      for record in sortedForDisplay(group) {
        lines.append("  " + line(record, idWidth: idWidth, now: now, byID: byID))
      }
    }
    return lines.joined(separator: "\n")
  }

  static func sortedForDisplay(_ group: [TaskRecord]) -> [TaskRecord] {
    group.sorted { ($0.priority, -$0.seq) > ($1.priority, -$1.seq) }
  }

  static func line(_ r: TaskRecord, idWidth: Int, now: Int, byID: [String: TaskRecord]) -> String {
    var parts: [String] = [r.id.padding(toLength: max(idWidth, r.id.count), withPad: " ", startingAt: 0)]
    let since = Timestamp.parse(r.statusChangedAt ?? r.updatedAt) ?? now
    parts.append(Timestamp.age(now - since).padding(toLength: 4, withPad: " ", startingAt: 0))
    parts.append((r.repo as NSString).lastPathComponent + "@" + r.base)
    if r.branch != "task/\(r.id)" || r.status != .todo { parts.append(r.branch) }
    if r.attempt > 0 { parts.append("attempt \(r.attempt + 1)") }
    if r.priority != 0 { parts.append("priority \(r.priority)") }
    if let port = r.port { parts.append("port \(port)") }
    if let worker = r.worker, r.status.isActive { parts.append("worker \(worker)") }
    if r.isStale(now: now) { parts.append("STALE: lease expired (git taskq recover)") }
    if r.status == .todo {
      let waiting = r.dependsOn.filter { byID[$0]?.status != .done }
      if !waiting.isEmpty {
        let blocked = waiting.filter { byID[$0].map { $0.status == .cancelled } ?? true }
        parts.append(
          blocked.isEmpty
            ? "waiting on \(waiting.joined(separator: ","))"
            : "blocked by \(blocked.joined(separator: ",")) (cancelled or removed)")
      }
    }
    if r.status == .failed, let error = r.lastError { parts.append("error: \(error)") }
    return parts.joined(separator: "  ")
  }
}
