#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What one queue commit did: the subject line and the `Taskq-*` trailers a program can replay.
public struct Operation: Equatable, Sendable {
  /// `add`, `claim`, `stage`, `review`, `fail`, `approve`, `cancel`, `retry`, `remove`, `update`, `cleanup`, …
  public var kind: String
  public var task: String
  public var from: TaskStatus?
  public var to: TaskStatus?
  public var worker: String
  /// A short phrase for the subject when the status does not change (e.g. `worktree ready`).
  public var detail: String?
  /// Further tasks the commit adds as a whole (`import`): one more `Taskq-Task` trailer each. Their
  /// statuses are in their records, not in `Taskq-To`.
  public var otherTasks: [String] = []

  public init(
    kind: String, task: String, from: TaskStatus?, to: TaskStatus?, worker: String, detail: String? = nil
  ) {
    self.kind = kind
    self.task = task
    self.from = from
    self.to = to
    self.worker = worker
    self.detail = detail
  }

  /// `T-001: todo → planning`, `T-001: added (todo)`, `T-001: removed (was done)`.
  public var subject: String {
    let tail = detail.map { " (\($0))" } ?? ""
    switch (from, to) {
    case (nil, let to?): return "\(task): added (\(to.rawValue))\(tail)"
    case (let from?, nil): return "\(task): removed (was \(from.rawValue))\(tail)"
    case (let from?, let to?) where from != to: return "\(task): \(from.rawValue) → \(to.rawValue)\(tail)"
    case (_, let to?): return "\(task): \(detail ?? kind) (\(to.rawValue))"
    case (nil, nil): return "\(task): \(detail ?? kind)"
    }
  }

  /// The full commit message.
  public var message: String {
    var lines = [Self.oneLine(subject), "", "Taskq-Op: \(kind)", "Taskq-Task: \(task)"]
    lines += otherTasks.map { "Taskq-Task: \($0)" }
    if let from { lines.append("Taskq-From: \(from.rawValue)") }
    if let to { lines.append("Taskq-To: \(to.rawValue)") }
    lines.append("Taskq-Worker: \(Self.oneLine(worker))")
    return lines.joined(separator: "\n") + "\n"
  }

  /// Reads an operation back from a commit message; `nil` when it has no `Taskq-Op`/`Taskq-Task` trailers.
  public static func parse(message: String) -> Operation? {
    var fields: [String: String] = [:]
    var tasks: [String] = []
    for line in message.split(separator: "\n") where line.hasPrefix("Taskq-") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      let key = String(line[..<colon])
      // A forged trailer can be megabytes long: keep a bounded prefix.
      let value = String(
        line[line.index(after: colon)...].trimmingCharacters(in: " ").prefix(RecordRules.maximumTrailerLength))
      if key == "Taskq-Task" { tasks.append(value) }
      if fields[key] == nil { fields[key] = value }
    }
    guard let kind = fields["Taskq-Op"], let task = tasks.first else { return nil }
    var operation = Operation(
      kind: kind, task: task, from: fields["Taskq-From"].flatMap(TaskStatus.init(rawValue:)),
      to: fields["Taskq-To"].flatMap(TaskStatus.init(rawValue:)), worker: fields["Taskq-Worker"] ?? "")
    operation.otherTasks = Array(tasks.dropFirst())
    return operation
  }

  private static func oneLine(_ text: String) -> String {
    String(text.map { $0.isNewline ? " " : $0 })
  }
}

extension Substring {
  fileprivate func trimmingCharacters(in set: Character) -> String {
    var s = self[...]
    while s.first == set { s = s.dropFirst() }
    while s.last == set { s = s.dropLast() }
    return String(s)
  }
}
