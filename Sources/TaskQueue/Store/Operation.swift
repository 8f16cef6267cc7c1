#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `Taskq-Op` of a queue commit: what kind of operation it records.
///
/// An open set, like ``GitError/Code``: the constants below are the kinds this version writes and the ones
/// whose replay `sync` treats specially; a commit from another version may carry any other kind, which is
/// kept as read. A string literal is a kind too, so `Operation(kind: "update", …)` reads as the trailer.
public struct OperationKind: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral,
  CustomStringConvertible
{
  public var rawValue: String
  public init(rawValue: String) { self.rawValue = rawValue }
  public init(stringLiteral value: String) { self.rawValue = value }
  public var description: String { rawValue }

  /// A task added (`add`), or several at once (`import`).
  public static let add: OperationKind = "add"
  public static let `import`: OperationKind = "import"
  /// A worker took the task (`todo → planning`), or gave back a claim it could not publish.
  public static let claim: OperationKind = "claim"
  public static let release: OperationKind = "release"
  /// A worker's steps on a task it holds.
  public static let setup: OperationKind = "setup"
  public static let port: OperationKind = "port"
  public static let build: OperationKind = "build"
  public static let review: OperationKind = "review"
  public static let renew: OperationKind = "renew"
  /// A stage failed, or the run was interrupted.
  public static let fail: OperationKind = "fail"
  public static let interrupt: OperationKind = "interrupt"
  /// A task whose worker is gone, failed as "worker lost" by another process.
  public static let recover: OperationKind = "recover"
  /// The commands on one task.
  public static let approve: OperationKind = "approve"
  public static let cancel: OperationKind = "cancel"
  public static let retry: OperationKind = "retry"
  public static let remove: OperationKind = "remove"
  public static let edit: OperationKind = "edit"
  public static let cleanup: OperationKind = "cleanup"
  /// The removal of damaged task directories (`fsck --repair`).
  public static let repair: OperationKind = "repair"
}

/// What one queue commit did: the subject line and the `Taskq-*` trailers a program can replay.
public struct Operation: Equatable, Sendable {
  /// `add`, `claim`, `setup`, `review`, `fail`, `approve`, `cancel`, `retry`, `remove`, `cleanup`, …
  public var kind: OperationKind
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
    kind: OperationKind, task: String, from: TaskStatus?, to: TaskStatus?, worker: String, detail: String? = nil
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
    case (_, let to?): return "\(task): \(detail ?? kind.rawValue) (\(to.rawValue))"
    case (nil, nil): return "\(task): \(detail ?? kind.rawValue)"
    }
  }

  /// The full commit message.
  public var message: String {
    var lines = [Self.oneLine(subject), "", "Taskq-Op: \(kind.rawValue)", "Taskq-Task: \(task)"]
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
      kind: OperationKind(rawValue: kind), task: task, from: fields["Taskq-From"].flatMap(TaskStatus.init(rawValue:)),
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
