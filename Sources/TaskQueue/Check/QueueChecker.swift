import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One problem `fsck` found: what is wrong, and the command that fixes it.
public struct Finding: Sendable, Equatable, Encodable, CustomStringConvertible {
  public enum Severity: String, Sendable, Encodable {
    /// The queue is damaged.
    case error
    /// Something around the queue needs attention.
    case warning
  }
  public var severity: Severity
  public var task: String?
  public var message: String
  public var fix: String?

  public init(_ severity: Severity, task: String? = nil, _ message: String, fix: String? = nil) {
    self.severity = severity
    self.task = task
    self.message = message
    self.fix = fix
  }

  public var description: String {
    let subject = task.map { "\($0): " } ?? ""
    return "\(severity.rawValue): \(subject)\(message)" + (fix.map { " (fix: \($0))" } ?? "")
  }
}

/// Checks the whole queue at the ref's tip: format, every record, bucket paths, task files, error report
/// targets, unique ids and sequence numbers, dependencies, and that the history's trailers agree with the
/// records.
public struct QueueChecker {
  let store: QueueStore

  public init(store: QueueStore) { self.store = store }

  public func check() throws -> [Finding] {
    var findings: [Finding] = []
    guard let tip = try store.tip() else { return [] }
    let snapshot: QueueSnapshot
    do {
      snapshot = try store.snapshot(at: tip)
    } catch let error as QueueError {
      if case .unreadableTip = error {
        return [Finding(.error, error.description, fix: "git taskq fsck --repair")]
      }
      return [
        Finding(
          .error, error.description,
          fix:
            "inspect 'git log refs/taskq/queue'; reset the ref to a good commit with 'git update-ref refs/taskq/queue <commit>'"
        )
      ]
    }
    guard let tree = snapshot.tree else { return findings }
    for entry in tree.entries where entry.name != Layout.metaPath && entry.name != Layout.tasksDirectory {
      findings.append(Finding(.warning, "unexpected entry '\(entry.name)' at the top of the queue tree"))
    }
    let records: [TaskRecord]
    let damaged: [DamagedRecord]
    do {
      (records, damaged) = try snapshot.readable { try snapshot.scan() }
    } catch let error as QueueError {
      return [Finding(.error, error.description, fix: "git taskq fsck --repair")]
    }
    let validIDs = Set(records.map(\.id))
    let names = Dictionary(damaged.map { ($0.name, 1) }, uniquingKeysWith: +)
    for damage in damaged {
      findings.append(
        Finding(
          .error, task: damage.name.isEmpty ? nil : damage.name, damage.description,
          fix: Self.fix(for: damage, names: names, validIDs: validIDs)))
    }
    for record in records {
      if let errorFile = record.errorFile {
        let prefix = Layout.refName + ":"
        let target =
          errorFile.hasPrefix(prefix) ? try tree.entry(atPath: String(errorFile.dropFirst(prefix.count))) : nil
        if target == nil {
          findings.append(Finding(.error, task: record.id, "error_file '\(errorFile)' does not exist in the queue"))
        }
      }
      if try snapshot.taskFile(record.id) == nil {
        findings.append(Finding(.error, task: record.id, "'\(Layout.taskFilePath(record.id))' is missing"))
      }
    }
    findings += checkRelations(records, meta: snapshot.meta)
    findings += try checkHistory(records, tip: tip, damaged: Set(damaged.map(\.name)))
    let now = Timestamp.nowSeconds()
    for record in records where record.isStale(now: now) {
      findings.append(
        Finding(
          .warning, task: record.id,
          "its lease expired at \(record.leaseExpiresAt ?? "?") while \(record.status.rawValue) (worker \(record.worker ?? "?") lost?)",
          fix: "git taskq recover"))
    }
    return findings
  }

  /// The command that removes `damage`: `remove --id <name>` when the name picks it alone, else `fsck --repair`.
  static func fix(for damage: DamagedRecord, names: [String: Int], validIDs: Set<String>) -> String {
    let name = damage.name
    let unique = !name.isEmpty && names[name] == 1 && !validIDs.contains(name)
    let printable = QueueError.printable(name)
    if unique && printable == name && !name.hasPrefix("-") {
      return "git taskq remove --id '\(name)' (or git taskq fsck --repair)"
    }
    return "git taskq fsck --repair"
  }

  func checkRelations(_ records: [TaskRecord], meta: QueueMeta) -> [Finding] {
    var findings: [Finding] = []
    var bySeq: [Int: String] = [:]
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    for record in records.sorted(by: { $0.seq < $1.seq }) {
      if let other = bySeq[record.seq] {
        findings.append(Finding(.error, task: record.id, "seq \(record.seq) is also used by '\(other)'"))
      }
      bySeq[record.seq] = record.id
      if record.seq >= meta.nextSeq {
        findings.append(
          Finding(.error, task: record.id, "seq \(record.seq) is not below taskq.json's next_seq \(meta.nextSeq)"))
      }
      for dependency in record.dependsOn where byID[dependency] == nil {
        findings.append(
          Finding(
            .warning, task: record.id, "depends on '\(dependency)', which is not in the queue",
            fix: "git taskq cancel --id \(record.id), or add '\(dependency)'"))
      }
    }
    // Dependency cycles (only possible through hand edits or merges of other tools).
    var state: [String: Int] = [:]
    func visit(_ id: String, _ path: [String]) -> [String]? {
      if state[id] == 1 { return path + [id] }
      if state[id] == 2 { return nil }
      state[id] = 1
      for next in byID[id]?.dependsOn ?? [] where byID[next] != nil {
        if let cycle = visit(next, path + [id]) { return cycle }
      }
      state[id] = 2
      return nil
    }
    for id in byID.keys.sorted() where state[id] == nil {
      if let cycle = visit(id, []) {
        findings.append(Finding(.error, task: id, "dependency cycle: \(cycle.joined(separator: " -> "))"))
      }
    }
    return findings
  }

  /// The newest operation of each task in the history must agree with its record.
  func checkHistory(_ records: [TaskRecord], tip: ObjectID, damaged: Set<String> = []) throws -> [Finding] {
    var findings: [Finding] = []
    var latest: [String: Operation] = [:]
    /// Tasks whose newest mention is a bulk commit (`import`): their statuses are in their records only.
    var addedInBulk: Set<String> = []
    for commit in try store.repository.history(from: tip) {
      guard let operation = Operation.parse(message: commit.message) else {
        findings.append(
          Finding(.warning, "commit \(commit.id.hex.prefix(12)) has no Taskq trailers (written by another tool?)"))
        continue
      }
      if operation.kind == .repair {
        // A removal of damaged directories: one at its task's own place removed that task.
        for path in [operation.task] + operation.otherTasks {
          let parts = path.split(separator: "/").map(String.init)
          guard parts.count == 3, Layout.bucket(of: parts[2]) == parts[1], latest[parts[2]] == nil else { continue }
          latest[parts[2]] = Operation(kind: .repair, task: parts[2], from: nil, to: nil, worker: operation.worker)
        }
        continue
      }
      if latest[operation.task] == nil && !addedInBulk.contains(operation.task) { latest[operation.task] = operation }
      for other in operation.otherTasks where latest[other] == nil { addedInBulk.insert(other) }
    }
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    // A damaged directory is named once above; its history says nothing more.
    for (id, operation) in latest.sorted(by: { $0.key < $1.key }) where !damaged.contains(id) {
      switch (operation.to, byID[id]) {
      case (nil, let record?):
        findings.append(
          Finding(
            .error, task: id,
            "the history's last operation removed it, but its record (\(record.status.rawValue)) is still there"))
      case (let to?, nil):
        findings.append(
          Finding(.error, task: id, "the history's last operation left it '\(to.rawValue)', but it has no record"))
      case (let to?, let record?) where to != record.status:
        findings.append(
          Finding(.error, task: id, "the history says '\(to.rawValue)', the record says '\(record.status.rawValue)'"))
      default:
        break
      }
    }
    for record in records where latest[record.id] == nil && !addedInBulk.contains(record.id) {
      findings.append(Finding(.error, task: record.id, "no commit of the history mentions it"))
    }
    return findings
  }
}
