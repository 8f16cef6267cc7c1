import Foundation
import Git

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
    var records: [TaskRecord] = []
    if let tasks = try tree.subtree(atPath: Layout.tasksDirectory) {
      for bucket in tasks.entries {
        guard bucket.kind == .tree, bucket.name.count == 2, bucket.name.allSatisfy(\.isHexDigit) else {
          findings.append(Finding(.error, "unexpected entry 'tasks/\(bucket.name)' (buckets are two hex digits)"))
          continue
        }
        for task in try store.repository.tree(bucket.id).entries {
          let path = "tasks/\(bucket.name)/\(task.name)"
          if let problem = TaskID.problem(with: task.name) {
            findings.append(Finding(.error, "'\(path)' is not a valid task id: \(problem)"))
            continue
          }
          if Layout.bucket(of: task.name) != bucket.name {
            findings.append(
              Finding(
                .error, task: task.name, "stored in bucket '\(bucket.name)', expected '\(Layout.bucket(of: task.name))'"
              ))
          }
          guard task.kind == .tree else {
            findings.append(Finding(.error, task: task.name, "'\(path)' is not a directory"))
            continue
          }
          let taskTree = try store.repository.tree(task.id)
          guard let recordEntry = taskTree.entry(named: "record.json") else {
            findings.append(Finding(.error, task: task.name, "'\(path)/record.json' is missing"))
            continue
          }
          let record: TaskRecord
          do {
            record = try QueueSnapshot.decodeRecord(try store.repository.blob(recordEntry.id), path: path)
          } catch {
            findings.append(
              Finding(
                .error, task: task.name,
                "'\(path)/record.json' cannot be read (not JSON, or a field or status is invalid)"))
            continue
          }
          if record.id != task.name {
            findings.append(Finding(.error, task: task.name, "record.json names the task '\(record.id)'"))
          }
          if taskTree.entry(named: "task.md") == nil {
            findings.append(Finding(.error, task: task.name, "'\(path)/task.md' is missing"))
          }
          if let errorFile = record.errorFile {
            let prefix = Layout.refName + ":"
            let target =
              errorFile.hasPrefix(prefix) ? try tree.entry(atPath: String(errorFile.dropFirst(prefix.count))) : nil
            if target == nil {
              findings.append(Finding(.error, task: record.id, "error_file '\(errorFile)' does not exist in the queue"))
            }
          }
          records.append(record)
        }
      }
    }
    findings += checkRelations(records, meta: snapshot.meta)
    findings += try checkHistory(records, tip: tip)
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
  func checkHistory(_ records: [TaskRecord], tip: ObjectID) throws -> [Finding] {
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
      if latest[operation.task] == nil && !addedInBulk.contains(operation.task) { latest[operation.task] = operation }
      for other in operation.otherTasks where latest[other] == nil { addedInBulk.insert(other) }
    }
    let byID = Dictionary(records.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
    for (id, operation) in latest.sorted(by: { $0.key < $1.key }) {
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
