import Foundation
import Git
import TaskQueue

#if canImport(Glibc)
import Glibc
#endif

/// A throw-away repository for one measurement: `git init -b main`, one commit, then a queue filled in
/// process through the Git API (seconds, where 10,000 `git taskq add` calls would take minutes).
final class BenchRepository {
  /// The temporary directory holding the repository (removed on release).
  let root: String
  /// The working directory of the repository.
  let path: String
  private(set) var taskCount = 0
  private(set) var taskIDs: [String] = []

  /// How the imported tasks are spread over the statuses.
  enum Mix {
    /// Every task `todo` (a fresh backlog, for claims).
    case allTodo
    /// A queue that has been in use: 70% done, 10% cancelled, 12% todo, 5% review, 3% failed, with the
    /// fields those states fill in (worktree, container, port, session, error file).
    case lived
    /// Every task `done` with its container recorded under the name `run` gives it (for `cleanup`).
    case doneWithContainers
  }

  /// Where temporary repositories are made (`--dir`; default `/var/tmp`).
  ///
  /// Not `/tmp`: on a shared machine, test suites create and delete thousands of scratch repositories
  /// there, and on a journal-less ext4 every file creation near recently deleted inodes gets slower (the
  /// allocator skips them), which multiplies the cost of writing loose objects (docs/performance.md). A
  /// user's repository lives in a quiet directory like `/var/tmp`.
  nonisolated(unsafe) static var parentDirectory = "/var/tmp"

  init(label: String) throws {
    var template = Array("\(Self.parentDirectory)/taskq-bench-\(label).XXXXXX".utf8CString)
    guard let made = mkdtemp(&template) else { throw Spawn.Failure(description: "mkdtemp failed") }
    root = String(cString: made)
    Self.made.append(root)
    path = root + "/repo"
    mkdir(path, 0o755)
    try Spawn.git("init", "-q", "-b", "main", in: path)
    try Spawn.git("config", "user.name", "Bench User", in: path)
    try Spawn.git("config", "user.email", "bench@example.com", in: path)
    // Keep git from packing behind our back in the middle of a measurement; we pack explicitly.
    try Spawn.git("config", "gc.auto", "0", in: path)
    try writeFile(path + "/README.md", Array("# bench\n".utf8))
    try Spawn.git("add", "README.md", in: path)
    try Spawn.git("commit", "-q", "-m", "initial commit", in: path)
  }

  /// Every repository made so far, removed together by ``removeAll()`` when the run is over.
  ///
  /// Not one by one as each measurement ends: on a journal-less ext4, files created near recently deleted
  /// inodes are slower to create for minutes, so deleting a finished measurement's repository would slow
  /// the writes of the next one.
  nonisolated(unsafe) private static var made: [String] = []

  /// Removes every repository of this run (unless `TASKQ_BENCH_KEEP` is set, to look at them).
  static func removeAll() {
    guard ProcessInfo.processInfo.environment["TASKQ_BENCH_KEEP"] == nil else {
      for root in made { print("kept \(root)") }
      return
    }
    for root in made { try? FileManager.default.removeItem(atPath: root) }
    made = []
  }

  /// One imported task: its record and the files of its directory.
  private struct ImportedTask {
    var record: TaskRecord
    var files: [(path: String, bytes: [UInt8])]
  }

  /// Makes the next `count` tasks `B-00001…`, exactly as `add` stores them (same record encoding, canonical
  /// task file, `seq` from `next_seq`), then moved to the states of `mix`.
  private func makeTasks(_ count: Int, mix: Mix, meta: inout QueueMeta, now: Int) throws -> [ImportedTask] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    var tasks: [ImportedTask] = []
    for index in taskCount..<(taskCount + count) {
      let id = String(format: "B-%05d", index + 1)
      var record = TaskRecord(
        id: id, repo: path, base: "main", branch: "task/\(id)",
        taskFile: Layout.revisionPath(Layout.taskFilePath(id)), createdAt: Timestamp.iso(now - 86_400 + index),
        seq: meta.nextSeq, priority: index % 17 == 0 ? 5 : 0)
      meta.nextSeq += 1
      switch mix {
      case .allTodo: break
      case .lived: Self.age(&record, index: index, now: now, root: root)
      case .doneWithContainers:
        record.status = .done
        record.attempt = 0
        record.container = "task-\(id)-" + (Timestamp.parse(record.createdAt).map(Timestamp.compact) ?? "0")
      }
      var json = try encoder.encode(record)
      json.append(UInt8(ascii: "\n"))
      let body = "Benchmark task \(index + 1).\n\nMake the thing do what the issue says, with tests."
      var files: [(String, [UInt8])] = [
        (Layout.recordPath(id), Array(json)),
        (Layout.taskFilePath(id), Array(TaskFile.canonical(for: record, body: body).utf8)),
      ]
      if record.status == .failed, let errorFile = record.errorFile, let colon = errorFile.firstIndex(of: ":") {
        files.append(
          (String(errorFile[errorFile.index(after: colon)...]), Array("# \(id) failed\n\nexit status 1\n".utf8)))
      }
      tasks.append(ImportedTask(record: record, files: files))
      taskIDs.append(id)
    }
    taskCount += count
    return tasks
  }

  private static func metaBytes(_ meta: QueueMeta) throws -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    return Array(try encoder.encode(meta)) + [UInt8(ascii: "\n")]
  }

  /// Adds `count` tasks in commits of `batch` through `git fast-import`, which writes a pack directly.
  ///
  /// Not through libgit2 on purpose: libgit2 writes every object as a loose file, and the `git gc` that
  /// packs them then deletes tens of thousands of files, which on this machine's journal-less ext4 slows
  /// every file creation for minutes after (the allocator skips recently deleted inodes), distorting the
  /// measurements that follow. ``populateInProcess(_:mix:batch:)`` is the libgit2 path.
  func populate(_ count: Int, mix: Mix, batch: Int = 500) throws {
    let repository = try Repository.open(at: path)
    let store = QueueStore(repository: repository, worker: "bench:import")
    var meta = try store.snapshot().meta
    var parent = try store.tip()
    let now = Timestamp.nowSeconds()
    var stream: [UInt8] = []
    func line(_ text: String) { stream.append(contentsOf: Array((text + "\n").utf8)) }
    func data(_ bytes: [UInt8]) {
      line("data \(bytes.count)")
      stream.append(contentsOf: bytes)
      line("")
    }
    var done = 0
    while done < count {
      let size = Swift.min(batch, count - done)
      let tasks = try makeTasks(size, mix: mix, meta: &meta, now: now)
      let operation = Operation(
        kind: "import", task: tasks.first?.record.id ?? "", from: nil, to: .todo, worker: "bench:import",
        detail: "\(size) tasks")
      line("commit \(Layout.refName)")
      line("committer Bench User <bench@example.com> \(now) +0000")
      data(Array(operation.message.utf8))
      if let tip = parent {
        line("from \(tip.hex)")
        parent = nil
      }
      for task in tasks {
        for file in task.files {
          line("M 100644 inline \(file.path)")
          data(file.bytes)
        }
      }
      line("M 100644 inline \(Layout.metaPath)")
      data(try Self.metaBytes(meta))
      line("")
      done += size
    }
    line("done")
    try Spawn.run(Spawn.gitPath, ["fast-import", "--quiet", "--done"], in: path, input: stream)
  }

  /// Adds `count` tasks in commits of `batch` through the Git module (libgit2) in this process: every
  /// object is written loose, as the store itself writes them.
  func populateInProcess(_ count: Int, mix: Mix, batch: Int = 500) throws {
    let repository = try Repository.open(at: path)
    let store = QueueStore(repository: repository, worker: "bench:import")
    let signature = Signature(name: "Bench User", email: "bench@example.com")
    let now = Timestamp.nowSeconds()
    var meta = try store.snapshot().meta
    var done = 0
    while done < count {
      let size = Swift.min(batch, count - done)
      let tip = try store.tip()
      let baseTree = try tip.map { try repository.tree(try repository.commit($0).treeID) } ?? repository.emptyTree()
      let tasks = try makeTasks(size, mix: mix, meta: &meta, now: now)
      var updates: [TreeUpdate] = []
      for task in tasks {
        for file in task.files { updates.append(.write(file.path, blob: try repository.writeBlob(file.bytes))) }
      }
      updates.append(.write(Layout.metaPath, blob: try repository.writeBlob(try Self.metaBytes(meta))))
      let tree = try repository.createTree(from: baseTree, applying: updates)
      let operation = Operation(
        kind: "import", task: tasks.first?.record.id ?? "", from: nil, to: .todo, worker: "bench:import",
        detail: "\(size) tasks")
      let commit = try repository.createCommit(
        tree: tree, parents: tip.map { [$0] } ?? [], message: operation.message, signature: signature)
      try repository.updateReference(Layout.refName, to: commit, expected: tip, message: "taskq: bench import")
      done += size
    }
  }

  /// Gives task number `index` the state and fields of a queue that has been used for a while.
  private static func age(_ record: inout TaskRecord, index: Int, now: Int, root: String) {
    let id = record.id
    switch index % 100 {
    case 0..<70: record.status = .done
    case 70..<80: record.status = .cancelled
    case 80..<92: return
    case 92..<97:
      record.status = .review
      record.worktreePath = "\(root)/worktrees/repo/\(id)"
      record.container = "task-\(id)-20261125T101500Z"
      record.port = 4100 + index % 900
      record.sessionID = "ses_\(String(index, radix: 16))abcdef"
    default:
      record.status = .failed
      record.attempt = 1
      let path = "\(Layout.errorsDirectory(id))/20261125T101500Z.md"
      record.errorFile = Layout.revisionPath(path)
      record.lastError = "opencode run --command execute-plan: exit status 1"
      record.worktreePath = "\(root)/worktrees/repo/\(id)"
    }
    record.branch = "task/\(id)"
    record.updatedAt = Timestamp.iso(now - 3600 + index % 3600)
    record.statusChangedAt = record.updatedAt
  }

  /// Packs objects and references as `git gc` (auto or manual) leaves a user's repository.
  func pack() throws {
    try Spawn.git("gc", "-q", in: path)
    try Spawn.git("pack-refs", "--all", in: path)
  }

  /// Loose objects in the object database (what libgit2 writes and never packs).
  func looseObjectCount() -> Int {
    let objects = path + "/.git/objects"
    var count = 0
    for byte in 0..<256 {
      let directory = objects + "/" + String(format: "%02x", byte)
      guard let dir = opendir(directory) else { continue }
      while let entry = readdir(dir) {
        if entry.pointee.d_name.0 != UInt8(ascii: ".") { count += 1 }
      }
      closedir(dir)
    }
    return count
  }

  /// Removes the derived snapshot cache, so the next reader does a full read.
  func dropCache() {
    unlink(path + "/.git/taskq/cache-v1")
  }
}
