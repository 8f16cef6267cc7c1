import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The queue of the Python `taskq`, as it left it on disk: `queue/tasks.jsonl` (one JSON record per line,
/// with the fields `id, repo, base, task_file, status, branch, worktree_path, container, port, session_id,
/// attempt, error_file, created_at, updated_at`), `queue/tasks/<id>.md` and `queue/errors/<id>-<ts>.md`.
///
/// Reading never fails on one bad line or file: each is reported in ``problems`` and left out.
public struct PythonQueue: Sendable {
  /// A task ready to import: its record as the Python tool kept it, its task file and its error reports.
  public struct Task: Sendable, Equatable {
    /// The record's values; `seq`, `task_file` and `error_file` are set when it is imported.
    public var record: TaskRecord
    public var file: TaskFile
    /// `(name, text)` of each error report, oldest first; `name` is `<ts>.md`.
    public var errorReports: [(name: String, text: String)]
    /// The report `error_file` named, when it is among ``errorReports``.
    public var errorFileName: String?
    /// The 1-based line of `tasks.jsonl`.
    public var line: Int

    public static func == (a: Task, b: Task) -> Bool {
      a.record == b.record && a.file == b.file && a.errorFileName == b.errorFileName && a.line == b.line
        && a.errorReports.map(\.name) == b.errorReports.map(\.name)
        && a.errorReports.map(\.text) == b.errorReports.map(\.text)
    }
  }

  /// The `queue` directory read.
  public var directory: String
  public var tasks: [Task] = []
  /// Lines and files left out, one sentence each: `line 4: not a JSON object`.
  public var problems: [String] = []

  /// Reads the Python tool's queue under `root`: `root/queue/tasks.jsonl`, or `root/tasks.jsonl` when `root`
  /// is the `queue` directory itself.
  ///
  /// - Throws: ``QueueError/missingOption(_:)`` when there is no `tasks.jsonl` to read.
  public static func read(from root: String) throws -> PythonQueue {
    let root = Paths.expand(root)
    let files = FileManager.default
    let directory = files.fileExists(atPath: root + "/queue/tasks.jsonl") ? root + "/queue" : root
    let jsonl = directory + "/tasks.jsonl"
    guard let data = files.contents(atPath: jsonl) else {
      throw QueueError.missingOption(
        "no Python taskq queue in '\(root)': '\(root)/queue/tasks.jsonl' does not exist (pass --from DIR, the directory that holds queue/)"
      )
    }
    var queue = PythonQueue(directory: directory)
    var seen: [String: Int] = [:]
    var parsed: [(line: Int, fields: Fields)] = []
    for (index, line) in String(decoding: data, as: UTF8.self).components(separatedBy: "\n").enumerated() {
      let number = index + 1
      let text = line.trimmingWhitespace()
      if text.isEmpty { continue }
      do {
        let fields = try Fields.parse(text)
        if let first = seen[fields.id] {
          queue.problems.append("line \(number): task '\(fields.id)' appears again (line \(first) is the one imported)")
          continue
        }
        seen[fields.id] = number
        parsed.append((number, fields))
      } catch let problem as LineProblem {
        queue.problems.append("line \(number): \(problem.text)")
      }
    }
    let reports = Self.errorReports(in: directory + "/errors", ids: parsed.map(\.fields.id), problems: &queue.problems)
    for (line, fields) in parsed {
      do {
        let file = try Self.taskFile(
          for: fields, root: PathName.deletingLastComponent(directory), directory: directory)
        var record = fields.record
        let own = reports[fields.id] ?? []
        let named = fields.errorFile.map { PathName.lastComponent($0) }
        var errorFileName = own.first { "\(fields.id)-\($0.name)" == named }?.name
        if errorFileName == nil, fields.errorFile != nil || record.status == .failed { errorFileName = own.last?.name }
        if let errorFileName, let text = own.first(where: { $0.name == errorFileName })?.text {
          record.lastError = Self.summary(ofReport: text).map {
            QueueTransaction.capped($0, RecordRules.maximumLastErrorLength - 8)
          }
        }
        queue.tasks.append(
          Task(record: record, file: file, errorReports: own, errorFileName: errorFileName, line: line))
      } catch let problem as LineProblem {
        queue.problems.append("line \(line): task '\(fields.id)': \(problem.text)")
      }
    }
    return queue
  }

  /// The task file of a record: its `task_file` (absolute, or relative to the directory holding `queue/`
  /// or to `queue/`), else `queue/tasks/<id>.md`.
  static func taskFile(for fields: Fields, root: String, directory: String) throws -> TaskFile {
    var candidates: [String] = []
    if let path = fields.taskFile, !path.isEmpty {
      if path.hasPrefix("/") {
        candidates.append(path)
      } else {
        candidates += [root + "/" + path, directory + "/" + path]
      }
    }
    candidates.append(directory + "/tasks/\(fields.id).md")
    guard let path = candidates.first(where: { FileManager.default.fileExists(atPath: $0) }) else {
      throw LineProblem("no task file (looked for \(candidates.map { "'\($0)'" }.joined(separator: ", ")))")
    }
    do {
      return try TaskFile.read(path: path).file
    } catch let error as QueueError {
      throw LineProblem(error.description)
    }
  }

  /// The reports under `errors/`, by task: `<id>-<ts>.md` belongs to the longest id in `ids` it starts with
  /// (so `T-10-….md` is T-10's, not T-1's).
  static func errorReports(in directory: String, ids: [String], problems: inout [String])
    -> [String: [(name: String, text: String)]]
  {
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [:] }
    let byLength = ids.sorted { $0.count > $1.count }
    var result: [String: [(name: String, text: String)]] = [:]
    for name in names.sorted() where name.hasSuffix(".md") {
      guard let id = byLength.first(where: { name.hasPrefix($0 + "-") && name.count > $0.count + 4 }) else {
        problems.append("errors/\(name): no task in tasks.jsonl has this report")
        continue
      }
      guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
        problems.append("errors/\(name): cannot be read")
        continue
      }
      let report = String(name.dropFirst(id.count + 1))
      result[id, default: []].append((report, String(decoding: data, as: UTF8.self)))
    }
    return result
  }

  /// The line `status` shows for a failure: the first line under an "Error" heading, else the first line
  /// that starts with "error:", else the first line that is not a heading.
  public static func summary(ofReport text: String) -> String? {
    let lines = text.components(separatedBy: "\n").map { $0.trimmingSpaces() }
    if let failure = failureDetails(lines) { return failure }
    func clean(_ line: String) -> String {
      var out = line
      for prefix in ["- ", "* ", "> "] where out.hasPrefix(prefix) { out.removeFirst(prefix.count) }
      out = out.replacing("**", with: "").replacing("`", with: "")
      out = out.trimmingSpaces()
      return out.count > 200 ? String(out.prefix(197)) + "..." : out
    }
    if let heading = lines.firstIndex(where: {
      $0.hasPrefix("#") && $0.lowercased().contains("error") && !$0.hasPrefix("# ")
    }) {
      if let line = lines[(heading + 1)...].first(where: { !$0.isEmpty && !$0.hasPrefix("```") && !$0.hasPrefix("~~~") }
      ),
        !line.hasPrefix("#")
      {
        return clean(line)
      }
    }
    if let line = lines.first(where: { clean($0).lowercased().hasPrefix("error:") }) {
      return clean(String(clean(line).dropFirst("error:".count)))
    }
    return lines.first { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix("|") }.map(clean)
  }

  /// The line of a report the Python tool wrote (`# Task Failure Report`, with `**Stage**:`,
  /// `**Command**:` and `**Exit Code**:` under "Failure Details", then the streams in fenced blocks):
  /// `building: execute-plan exited with code 3: tests failed: 3 of 12`, the last part being the last
  /// line of its standard error.
  static func failureDetails(_ lines: [String]) -> String? {
    guard lines.first == "# Task Failure Report" else { return nil }
    func field(_ name: String) -> String? {
      lines.first { $0.hasPrefix("**\(name)**:") }.map {
        String($0.dropFirst(name.count + 5)).replacing("`", with: "")
          .trimmingSpaces()
      }
    }
    guard let stage = field("Stage"), !stage.isEmpty else { return nil }
    var summary = stage
    if let command = field("Command"), !command.isEmpty { summary += ": \(command)" }
    if let code = field("Exit Code"), !code.isEmpty { summary += " exited with code \(code)" }
    if let heading = lines.firstIndex(of: "### Standard Error"),
      let fence = lines[(heading + 1)...].firstIndex(where: { !$0.isEmpty }), lines[fence].hasPrefix("```")
    {
      let block = lines[(fence + 1)...].prefix { !$0.hasPrefix("```") }
      if var last = block.last(where: { !$0.isEmpty }) {
        if last.lowercased().hasPrefix("error:") {
          last = String(last.dropFirst(6)).trimmingSpaces()
        }
        summary += ": \(last)"
      }
    }
    return summary.count > 200 ? String(summary.prefix(197)) + "..." : summary
  }

  /// One line of `tasks.jsonl`, checked.
  struct Fields {
    var id: String
    var taskFile: String?
    var errorFile: String?
    var record: TaskRecord

    static func parse(_ text: String) throws -> Fields {
      guard let value = try? JSONDecoder().decode(JSONValue.self, from: Data(text.utf8)),
        case .object(let object) = value
      else {
        throw LineProblem("not a JSON object")
      }
      let line = Line(object: object)
      guard let id = try line.string("id", required: true) else { throw LineProblem("'id' is missing") }
      if let problem = TaskID.problem(with: id) {
        throw LineProblem("invalid task id '\(QueueError.printable(id))': \(problem)")
      }
      do {
        return try fields(id: id, line)
      } catch let problem as LineProblem {
        throw LineProblem("task '\(id)': \(problem.text)")
      }
    }

    /// A record's JSON object, read field by field.
    struct Line {
      let object: [String: JSONValue]

      /// A string field; the Python tool writes `""` for a field it has not set, which reads as absent.
      func string(_ key: String, required: Bool = false) throws -> String? {
        switch object[key] {
        case nil, .null?:
          if required { throw LineProblem("'\(key)' is missing") }
          return nil
        case .string(let value)?:
          if value.isEmpty {
            if required { throw LineProblem("'\(key)' is empty") }
            return nil
          }
          return value
        default:
          throw LineProblem("'\(key)' is not a string")
        }
      }

      func integer(_ key: String) throws -> Int? {
        switch object[key] {
        case nil, .null?: return nil
        case .integer(let value)?: return value
        case .string(let text)? where Int(text) != nil: return Int(text)
        default: throw LineProblem("'\(key)' is not an integer")
        }
      }
    }

    /// A time as the Python tool wrote it, in the form records keep: `created_at` has a UTC offset
    /// (`datetime.now(timezone.utc)`), `updated_at` has none (`datetime.utcnow()`, so UTC): it gets
    /// `+00:00`, with every digit kept.
    static func timestamp(_ key: String, _ text: String) throws -> String {
      guard Timestamp.parse(text) != nil else {
        throw LineProblem("'\(key)' is not an ISO-8601 time: '\(QueueError.printable(text))'")
      }
      let tail = text.utf8.dropFirst(19)
      let hasOffset = tail.contains(UInt8(ascii: "+")) || tail.contains(UInt8(ascii: "-")) || text.hasSuffix("Z")
      return hasOffset ? text : text + "+00:00"
    }

    /// The fields after the id.
    private static func fields(id: String, _ line: Line) throws -> Fields {
      let statusText = try line.string("status", required: true) ?? ""
      guard let status = TaskStatus(rawValue: statusText) else {
        throw LineProblem(
          "unknown status '\(QueueError.printable(statusText))' (expected \(TaskStatus.displayOrder.map(\.rawValue).joined(separator: ", ")))"
        )
      }
      let repo = try line.string("repo", required: true) ?? ""
      let base = try line.string("base", required: true) ?? ""
      let created = try timestamp("created_at", line.string("created_at", required: true) ?? "")
      let updated = try line.string("updated_at").map { try timestamp("updated_at", $0) } ?? created
      let branch = try line.string("branch") ?? "task/\(id)"
      guard Repository.isValidBranchName(branch) else {
        throw LineProblem("invalid branch '\(QueueError.printable(branch))'")
      }
      let attempt = try line.integer("attempt") ?? 0
      guard attempt >= 0 else { throw LineProblem("'attempt' is \(attempt); it must be 0 or more") }
      // The Python tool writes `"port": 0` for a task that never had a container.
      var port = try line.integer("port")
      if port == 0 { port = nil }
      if let port, !(1...65535).contains(port) {
        throw LineProblem("'port' is \(port); it must be between 1 and 65535 (or 0 for none)")
      }
      var record = TaskRecord(
        id: id, repo: repo, base: base, branch: branch, taskFile: "", status: status,
        worktreePath: try line.string("worktree_path"), attempt: attempt, createdAt: created, seq: 0)
      record.updatedAt = updated
      // The Python tool kept no time of the last transition; its last update is the best guess.
      record.statusChangedAt = updated
      record.container = try line.string("container")
      record.port = port
      record.sessionID = try line.string("session_id")
      return Fields(
        id: id, taskFile: try line.string("task_file"), errorFile: try line.string("error_file"), record: record)
    }
  }

  /// Any JSON value; numbers are integers when they are whole (a Python `int`), so `0` is never a boolean.
  enum JSONValue: Decodable {
    case null
    case bool(Bool)
    case integer(Int)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
      let container = try decoder.singleValueContainer()
      if container.decodeNil() {
        self = .null
      } else if let value = try? container.decode(Int.self) {
        self = .integer(value)
      } else if let value = try? container.decode(Bool.self) {
        self = .bool(value)
      } else if let value = try? container.decode(Double.self) {
        self = .number(value)
      } else if let value = try? container.decode(String.self) {
        self = .string(value)
      } else if let value = try? container.decode([JSONValue].self) {
        self = .array(value)
      } else {
        self = .object(try container.decode([String: JSONValue].self))
      }
    }
  }

  struct LineProblem: Error {
    var text: String
    init(_ text: String) { self.text = text }
  }
}

/// What an import did (or, for a dry run, would do).
public struct ImportReport: Sendable, Equatable {
  /// The records as stored, in `seq` order.
  public var imported: [TaskRecord] = []
  /// Tasks left out because the queue has them already.
  public var alreadyPresent: [String] = []
  /// Error reports copied into the queue.
  public var errorReports = 0
  /// Things the user should know about imported tasks (a running task, a repository not on this machine).
  public var notes: [String] = []
}

/// The worker name given to tasks that were running in the Python tool: their lease is expired at once, so
/// `recover` (or the next `run`) fails them as "worker lost" and `retry` brings them back.
public let importedWorker = "python-taskq (imported)"

extension QueueStore {
  /// Imports the Python tool's tasks in one commit (operation `import`).
  ///
  /// Keeps their ids, statuses, timestamps, attempts, runtime fields and error reports (stored under
  /// `tasks/<bb>/<id>/errors/`, with `error_file` pointing there). Tasks whose id the queue has already are
  /// left out, so importing again changes nothing. A task that was `planning` or `building` keeps its
  /// status with an expired lease.
  ///
  /// - Parameters:
  ///   - queue: what ``PythonQueue/read(from:)`` found.
  ///   - dryRun: compute the report against the current queue without writing.
  /// - Returns: what was imported and what was left out.
  /// - Throws: ``QueueError`` or ``GitError`` when the queue cannot be read or written; nothing is written
  ///   then.
  @discardableResult
  public func importTasks(_ queue: PythonQueue, dryRun: Bool = false) throws -> ImportReport {
    if dryRun {
      let snapshot = try snapshot()
      var meta = snapshot.meta
      return try Self.plan(
        queue, existing: { try snapshot.record($0) != nil || snapshot.hasTaskDirectory($0) }, meta: &meta,
        now: Timestamp.nowSeconds()
      ).report
    }
    return try update { tx in
      var meta = tx.meta
      let (report, files) = try Self.plan(
        queue, existing: { try tx.record($0) != nil || tx.base.hasTaskDirectory($0) }, meta: &meta, now: tx.now)
      guard let first = report.imported.first else { return report }
      tx.meta = meta
      for record in report.imported {
        // Not `put`: that would stamp `updated_at`, which must stay the Python tool's.
        tx.records[record.id] = record
      }
      for (id, name, text) in files { tx.putFile(id, name, text) }
      var operation = Operation(
        kind: .import, task: first.id, from: nil, to: first.status, worker: tx.worker,
        detail: "imported \(report.imported.count) task(s) from the Python taskq")
      operation.otherTasks = report.imported.map(\.id).filter { $0 != first.id }
      tx.operation = operation
      return report
    }
  }

  /// The records and files an import makes on top of a queue where `existing` tells which ids are taken.
  static func plan(
    _ queue: PythonQueue, existing: (String) throws -> Bool, meta: inout QueueMeta, now: Int
  ) throws -> (report: ImportReport, files: [(String, String, String)]) {
    var report = ImportReport()
    var files: [(String, String, String)] = []
    var missingRepositories: [(repo: String, ids: [String])] = []
    for task in queue.tasks {
      var record = task.record
      if try existing(record.id) {
        report.alreadyPresent.append(record.id)
        continue
      }
      record.seq = meta.nextSeq
      meta.nextSeq += 1
      record.taskFile = Layout.revisionPath(Layout.taskFilePath(record.id))
      record.errorFile = task.errorFileName.map { Layout.revisionPath(Layout.errorsDirectory(record.id) + "/" + $0) }
      if record.status.isActive {
        record.worker = importedWorker
        record.leaseExpiresAt = Timestamp.iso(now - 1)
        report.notes.append(
          "\(record.id): was \(record.status.rawValue) in the Python taskq; its worker is gone, so 'git taskq recover' moves it to failed ('git taskq retry' then runs it again)"
        )
      }
      if !FileManager.default.fileExists(atPath: record.repo) {
        if !missingRepositories.contains(where: { $0.repo == record.repo }) {
          missingRepositories.append((record.repo, []))
        }
        if let index = missingRepositories.firstIndex(where: { $0.repo == record.repo }) {
          missingRepositories[index].ids.append(record.id)
        }
      }
      files.append((record.id, "task.md", TaskFile.canonical(for: record, body: task.file.body)))
      for (name, text) in task.errorReports {
        files.append((record.id, "errors/" + name, text))
        report.errorReports += 1
      }
      report.imported.append(record)
    }
    for (repo, ids) in missingRepositories {
      report.notes.append(
        "the repository '\(repo)' of \(ids.joined(separator: ", ")) does not exist on this machine (clone it there, or give the tasks another repo with 'git taskq edit')"
      )
    }
    return (report, files)
  }
}
