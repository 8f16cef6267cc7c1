import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A machine (``FakeWorld``) that shares its queue through a bare remote, and an attacker with push access
/// who writes queue commits with git plumbing (hash-object, ls-tree, mktree, commit-tree) that no
/// git-taskq would write.
final class CraftedRemote {
  let world: FakeWorld
  let bare: String
  let attacker: String

  init() throws {
    world = try FakeWorld()
    let root = world.repository.directory.path
    bare = root + "/remote.git"
    attacker = root + "/attacker"
    try Git.run(["init", "-q", "--bare", bare], in: root)
    try world.repository.git("remote", "add", "origin", bare)
    try Git.run(["init", "-q", attacker], in: root)
    try Git.run(["config", "user.name", "Mallory"], in: attacker)
    try Git.run(["config", "user.email", "mallory@example.com"], in: attacker)
  }

  /// `git taskq sync` on the machine; expects success.
  func sync() throws {
    let result = try world.taskq("sync")
    #expect(result.status == 0, "\(result.summary)")
  }

  /// Runs git in the attacker's repository with `input` on stdin.
  @discardableResult
  func git(_ arguments: [String], input: [UInt8]? = nil) throws -> String {
    let result = try ProcessRunner.run(
      ProcessSpec("git", arguments, directory: attacker, input: input, timeout: 60, outputLimit: 1 << 20))
    guard result.succeeded else { throw TestFailure("git \(arguments.joined(separator: " ")): \(result.summary)") }
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  func blob(_ bytes: [UInt8]) throws -> String { try git(["hash-object", "-w", "--stdin"], input: bytes) }
  func blob(_ text: String) throws -> String { try blob(Array(text.utf8)) }

  /// A tree of `entries` (`mode`, `name`, object id), names taken as they are (`..` included).
  func tree(_ entries: [(String, String, String)]) throws -> String {
    let lines = entries.map { mode, name, id in
      "\(mode) \(mode == "040000" ? "tree" : mode == "160000" ? "commit" : "blob") \(id)\t\(name)\n"
    }
    return try git(["mktree", "--missing"], input: Array(lines.joined().utf8))
  }

  /// `root` with the entry at `components` replaced by (`mode`, `id`); `nil` root means an empty tree.
  func put(_ root: String?, _ components: [String], mode: String, id: String) throws -> String {
    var entries: [(String, String, String)] = []
    if let root {
      for line in try git(["ls-tree", root]).split(separator: "\n") {
        let parts = line.split(separator: "\t", maxSplits: 1)
        let head = parts[0].split(separator: " ")
        entries.append((String(head[0]), String(parts[1]), String(head[2])))
      }
    }
    let name = components[0]
    let existing = entries.first { $0.1 == name }
    entries.removeAll { $0.1 == name }
    if components.count == 1 {
      entries.append((mode, name, id))
    } else {
      let child = existing.flatMap { $0.0 == "040000" ? $0.2 : nil }
      entries.append(("040000", name, try put(child, Array(components.dropFirst()), mode: mode, id: id)))
    }
    return try tree(entries)
  }

  /// The remote's queue tip, fetched into the attacker's repository.
  func remoteTip() throws -> String {
    try git(["fetch", "-q", bare, "+refs/taskq/queue:refs/taskq/queue"])
    return try git(["rev-parse", "refs/taskq/queue"])
  }

  /// A commit on top of the remote's queue with `change` applied to its tree, pushed with a plain push.
  @discardableResult
  func craft(message: String = "crafted", _ change: (String) throws -> String) throws -> String {
    let tip = try remoteTip()
    let tree = try change(try git(["rev-parse", "\(tip)^{tree}"]))
    let commit = try git(["commit-tree", tree, "-p", tip, "-F", "-"], input: Array(message.utf8))
    try git(["push", "-q", bare, "\(commit):refs/taskq/queue"])
    return commit
  }

  /// The record of a task as the machine wrote it, as a JSON object to edit.
  func record(_ id: String) throws -> [String: Any] {
    let text = try world.repository.queueFile(Layout.recordPath(id))
    guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
      throw TestFailure("record of \(id) is not an object")
    }
    return object
  }

  func json(_ object: [String: Any]) throws -> [UInt8] {
    Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
  }

  /// A file outside every root that nothing may touch: next to the repository, where
  /// `.git/taskq/secrets/../../../../<name>` leads.
  func sentinel() throws -> String {
    let path = world.repository.directory.path + "/precious-\(UUID().uuidString.prefix(8)).txt"
    try "precious\n".write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }
}

/// Hostile queue commits pulled from a remote (issue 11): every record is checked when read, damage is
/// skipped and named once, good tasks keep flowing, nothing outside the roots is touched, and one command
/// removes the damage everywhere.
@Suite struct CraftedRemoteTests {
  /// The machine's two good tasks: T-ok in review (with a worktree path and a session) and T-good todo.
  static func setUp(_ remote: CraftedRemote) throws {
    let world = remote.world
    try world.repository.addTask("T-ok")
    try world.repository.addTask("T-good")
    try world.repository.drive("T-ok", to: .review)
    let store = try world.repository.store()
    try store.update { tx in
      var record = try tx.existing("T-ok")
      record.worktreePath = world.worktree("T-ok")
      record.sessionID = "ses_ok"
      tx.put(record)
      tx.operation = Operation(kind: "update", task: "T-ok", from: .review, to: .review, worker: tx.worker)
    }
    try FileManager.default.createDirectory(atPath: world.worktree("T-ok"), withIntermediateDirectories: true)
    try remote.sync()
  }

  /// Every command that must keep working with damage in the queue, and the good tasks still flowing.
  static func expectGoodTasksFlow(_ remote: CraftedRemote, damaged: Int = 1) throws {
    let world = remote.world
    let status = try world.taskq("status")
    #expect(status.status == 0, "\(status.summary)")
    #expect(status.stdoutText.contains("T-ok") && status.stdoutText.contains("T-good"), "\(status.stdoutText)")
    #expect(status.stderrLines == [DamageNotice.message(damaged)], "\(status.stderrText)")
    let json = try world.taskq("status", "--json")
    #expect(json.status == 0, "\(json.summary)")
    #expect(try json.jsonObjects().compactMap { $0["id"] as? String }.sorted() == ["T-good", "T-ok"])
    let show = try world.taskq("show", "--id", "T-ok")
    #expect(show.status == 0, "\(show.summary)")
    let log = try world.taskq("log")
    #expect(log.status == 0, "\(log.summary)")
    let cleanup = try world.taskq("cleanup")
    #expect(cleanup.status == 0, "\(cleanup.summary)")
    #expect(try world.record("T-ok").worktreePath == world.worktree("T-ok"))
    #expect(try world.record("T-ok").sessionID == "ses_ok")
    let fsck = try world.taskq("fsck")
    #expect(fsck.status == 1, "\(fsck.summary)")
  }

  @Test func anIDThatClimbsOutOfTheSecretsDirectoryDeletesNothing() throws {
    let remote = try CraftedRemote()
    try Self.setUp(remote)
    let world = remote.world
    let precious = try remote.sentinel()
    defer { unlink(precious) }
    // The secrets directory exists on every machine that ran a container task.
    let secrets = world.path + "/.git/taskq/secrets"
    try FileManager.default.createDirectory(atPath: secrets, withIntermediateDirectories: true)
    let climb = "../../../../" + (precious as NSString).lastPathComponent
    #expect(FileManager.default.fileExists(atPath: secrets + "/" + climb))
    var record = try remote.record("T-ok")
    record["id"] = climb
    record["status"] = "cancelled"
    record["worktree_path"] = NSNull()
    record["container"] = NSNull()
    try remote.craft { root in
      try remote.put(
        root, ["tasks", "00", "precious"], mode: "040000",
        id: try remote.tree([
          ("100644", "record.json", try remote.blob(try remote.json(record)))
        ]))
    }
    try remote.sync()
    try Self.expectGoodTasksFlow(remote)
    #expect(FileManager.default.fileExists(atPath: precious))
    #expect(try world.dockerCalls("rm").isEmpty)

    // fsck names it with the fix; the fix removes it in one commit that sync carries to the remote.
    let fsck = try world.taskq("fsck")
    #expect(fsck.stdoutText.contains("error: precious: 'tasks/00/precious': its id is invalid"), "\(fsck.stdoutText)")
    #expect(fsck.stdoutText.contains("(fix: git taskq remove --id 'precious'"), "\(fsck.stdoutText)")
    let removed = try world.taskq("remove", "--id", "precious")
    #expect(removed.status == 0, "\(removed.summary)")
    try remote.sync()
    let paths = try remote.git(["ls-tree", "-r", "--name-only", try remote.remoteTip()])
    #expect(!paths.contains("precious"))
    #expect(try world.taskq("fsck").status == 0)
    #expect(try world.taskq("status").stderrText.isEmpty)
    #expect(FileManager.default.fileExists(atPath: precious))
  }

  @Test func aDirectoryHoldingAnotherTasksRecordDoesNotRewriteIt() throws {
    let remote = try CraftedRemote()
    try Self.setUp(remote)
    let world = remote.world
    var record = try remote.record("T-ok")
    record["status"] = "cancelled"
    let bucket = Layout.bucket(of: "T-ok")
    try remote.craft { root in
      try remote.put(
        root, ["tasks", bucket, "EVIL"], mode: "040000",
        id: try remote.tree([
          ("100644", "record.json", try remote.blob(try remote.json(record)))
        ]))
    }
    try remote.sync()
    try Self.expectGoodTasksFlow(remote)
    #expect(try world.record("T-ok").status == .review)
    let review = try world.taskq("review", "--id", "T-ok", "--print")
    #expect(!review.stderrText.contains("no worktree"), "\(review.summary)")
    let fsck = try world.taskq("fsck")
    #expect(fsck.stdoutText.contains("record.json names the task 'T-ok'"), "\(fsck.stdoutText)")
    // The remote's damage goes away for everyone through the repair commit.
    let repair = try world.taskq("fsck", "--repair")
    #expect(repair.stderrText.contains("repaired: removed 'tasks/\(bucket)/EVIL'"), "\(repair.summary)")
    // Meanwhile the remote moved (a second damaged directory): sync replays the repair on top of it.
    try remote.craft { root in
      try remote.put(
        root, ["tasks", "00", "junk"], mode: "040000",
        id: try remote.tree([("100644", "record.json", try remote.blob("{}"))]))
    }
    let sync = try world.taskq("sync")
    #expect(sync.status == 0, "\(sync.summary)")
    #expect(sync.stdoutText.contains("replayed 1 local operation(s)"), "\(sync.stdoutText)")
    #expect(!(try remote.git(["ls-tree", "-r", "--name-only", try remote.remoteTip()])).contains("EVIL"))
  }

  /// One malformed record of each kind: none stops any command; `remove --id <directory>` removes it.
  @Test(arguments: [
    "priority 1.5", "status 5", "attempt as a string", "record.json a symlink", "record.json a gitlink",
    "record.json a directory", "a directory named ..", "task.md a symlink", "the wrong bucket", "deep JSON",
    "a 50 MB last_error", "a 70 KB record.json", "a container name with a slash", "an error report a symlink",
  ])
  func aMalformedRecordIsSkippedNamedAndRemovable(kind: String) throws {
    let remote = try CraftedRemote()
    try Self.setUp(remote)
    let world = remote.world
    let precious = try remote.sentinel()
    defer { unlink(precious) }
    var record = try remote.record("T-good")
    record["id"] = "T-bad"
    record["task_file"] = Layout.revisionPath(Layout.taskFilePath("T-bad"))
    record["branch"] = "task/T-bad"
    record["status"] = "cancelled"
    var name = "T-bad"
    var bucket = Layout.bucket(of: "T-bad")
    var entries: [(String, String, String)] = [("100644", "task.md", try remote.blob("---\nid: T-bad\n---\nBad.\n"))]
    var recordEntry: (String, String)? = ("100644", try remote.blob(try remote.json(record)))
    func with(_ key: String, _ value: Any) throws -> String {
      var copy = record
      copy[key] = value
      return try remote.blob(try remote.json(copy))
    }
    switch kind {
    case "priority 1.5": recordEntry = ("100644", try with("priority", 1.5))
    case "status 5": recordEntry = ("100644", try with("status", 5))
    case "attempt as a string": recordEntry = ("100644", try with("attempt", "1"))
    case "record.json a symlink": recordEntry = ("120000", try remote.blob("../../../../etc/passwd"))
    case "record.json a gitlink": recordEntry = ("160000", try remote.remoteTip())
    case "record.json a directory": recordEntry = ("040000", try remote.tree(entries))
    case "a directory named ..": name = ".."
    case "task.md a symlink": entries = [("120000", "task.md", try remote.blob("/etc/passwd"))]
    case "the wrong bucket": bucket = bucket == "00" ? "01" : "00"
    case "deep JSON":
      recordEntry = (
        "100644", try remote.blob(String(repeating: "[", count: 20000) + String(repeating: "]", count: 20000))
      )
    case "a 50 MB last_error":
      recordEntry = ("100644", try with("last_error", String(repeating: "x", count: 50 << 20)))
    case "a 70 KB record.json":
      recordEntry = ("100644", try with("last_error", String(repeating: "y", count: 70 << 10)))
    case "a container name with a slash": recordEntry = ("100644", try with("container", "../../x"))
    case "an error report a symlink":
      entries.append(
        ("040000", "errors", try remote.tree([("120000", "20260101T000000Z.md", try remote.blob("/etc/passwd"))])))
    default: Issue.record("unknown case \(kind)")
    }
    if let recordEntry { entries.append((recordEntry.0, "record.json", recordEntry.1)) }
    try remote.craft { root in
      try remote.put(root, ["tasks", bucket, name], mode: "040000", id: try remote.tree(entries))
    }
    try remote.sync()

    try Self.expectGoodTasksFlow(remote)
    let fsck = try world.taskq("fsck")
    let line = fsck.stdoutText.split(separator: "\n").first { $0.contains("'tasks/\(bucket)/\(name)'") }
    #expect(line != nil, "\(fsck.stdoutText)")
    #expect(line.map { $0.count < 400 } ?? false)
    #expect(line?.contains("git taskq remove --id '\(name)'") ?? false, "\(fsck.stdoutText)")
    // Everything else still works: a cancel, a run of the good task, a remove of another task.
    #expect(try world.taskq("cancel", "--id", "T-ok").status == 0)
    try world.repository.addTask("T-new")
    let run = try world.taskq("run", "--id", "T-good")
    #expect(run.status == 0, "\(run.summary)")
    #expect(try world.record("T-good").status == .review)
    #expect(try world.taskq("remove", "--id", "T-new").status == 0)
    // The fix, carried by sync.
    let removed = try world.taskq("remove", "--id", name)
    #expect(removed.status == 0, "\(removed.summary)")
    #expect(try world.taskq("status").stderrText.isEmpty)
    try remote.sync()
    let remaining = try remote.git(["ls-tree", "-r", "--name-only", try remote.remoteTip()])
    #expect(!remaining.contains("tasks/\(bucket)/\(name)/"), "\(remaining)")
    #expect(FileManager.default.fileExists(atPath: precious))
    #expect(!FileManager.default.fileExists(atPath: world.path + "/.git/taskq/secrets/T-bad"))
  }

  @Test func aNewerFormatIsRefusedInOneLineAndAForgedTrailerIsCut() throws {
    let remote = try CraftedRemote()
    try Self.setUp(remote)
    let world = remote.world
    // A commit whose trailer is 5 MB long.
    let forged =
      "T-good: todo → todo\n\nTaskq-Op: update\nTaskq-Task: T-good\nTaskq-Worker: "
      + String(repeating: "w", count: 5 << 20)
    try remote.craft(message: forged) { root in
      try remote.put(
        root, ["tasks", Layout.bucket(of: "T-good"), "T-good", "note.txt"], mode: "100644", id: try remote.blob("x"))
    }
    try remote.sync()
    let fsck = try world.taskq("fsck")
    #expect(fsck.stdoutText.count < 10_000, "fsck printed \(fsck.stdoutText.count) bytes")
    let log = try world.taskq("log")
    #expect(log.status == 0)
    #expect(log.stdoutText.count < 10_000, "log printed \(log.stdoutText.count) bytes")

    try remote.craft { root in
      try remote.put(root, ["taskq.json"], mode: "100644", id: try remote.blob("{\"format\": 99, \"next_seq\": 3}\n"))
    }
    let sync = try world.taskq("sync")
    #expect(sync.status == 1)
    #expect(sync.stderrLines.count == 1 && sync.stderrText.contains("storage format 99"), "\(sync.summary)")
    #expect(try world.taskq("status").status == 0)  // the local queue is untouched
  }

  @Test func anUnreadableTipIsNamedEverywhereAndRepairedFromTheReflog() throws {
    let remote = try CraftedRemote()
    let world = remote.world
    try world.repository.git("config", "core.logAllRefUpdates", "always")
    try world.repository.addTask("T-1")
    try world.repository.addTask("T-2")
    let intact = try #require(try world.repository.queueTip())
    try world.repository.addTask("T-3")
    let tip = try #require(try world.repository.queueTip())
    // What `git gc --prune=now` racing a writer leaves: the ref on a commit whose object is gone.
    let object = world.path + "/.git/objects/\(tip.prefix(2))/\(tip.dropFirst(2))"
    #expect(unlink(object) == 0)
    for command in [["status"], ["show", "--id", "T-1"], ["add", "--id", "T-4", "--task", "x"], ["fsck"]] {
      let result = try world.taskq(command)
      #expect(result.status == 1, "\(command): \(result.summary)")
      let text = result.stderrText + result.stdoutText
      #expect(text.contains("git taskq fsck --repair"), "\(command): \(result.summary)")
      #expect(!text.contains("git_commit_lookup"), "\(command): \(result.summary)")
    }
    let repair = try world.taskq("fsck", "--repair")
    #expect(
      repair.stderrText.contains("moved from unreadable \(tip.prefix(12)) to \(intact.prefix(12)) (from reflog)"),
      "\(repair.summary)")
    #expect(repair.stderrText.contains("lost: T-3: added (todo)"), "\(repair.summary)")
    #expect(try world.repository.queueTip() == intact)
    #expect(try world.taskq("status").status == 0)
    #expect(try world.taskq("add", "--id", "T-3", "--task", "again").status == 0)
    #expect(try world.repository.git("fsck", "--no-progress", "--no-dangling").isEmpty)

    // The commit is there but a tree of it is gone (its bucket): named the same way, repaired the same way.
    let before = try #require(try world.repository.queueTip())
    try world.repository.addTask("T-5")
    let bucket = try world.repository.git("rev-parse", "refs/taskq/queue:tasks/\(Layout.bucket(of: "T-5"))")
    #expect(unlink(world.path + "/.git/objects/\(bucket.prefix(2))/\(bucket.dropFirst(2))") == 0)
    let status = try world.taskq("status")
    #expect(status.status == 1)
    #expect(status.stderrText.contains("an object of its tree is missing"), "\(status.summary)")
    #expect(status.stderrText.contains("git taskq fsck --repair"), "\(status.summary)")
    let again = try world.taskq("fsck", "--repair")
    #expect(again.stderrText.contains("lost: T-5: added (todo)"), "\(again.summary)")
    #expect(try world.repository.queueTip() == before)
    #expect(try world.repository.git("fsck", "--no-progress", "--no-dangling").isEmpty)
  }

  @Test func withoutAReflogTheRepairUsesTheRemoteTrackingRef() throws {
    let remote = try CraftedRemote()
    try Self.setUp(remote)
    let world = remote.world
    let tracking = try world.repository.git("rev-parse", "refs/taskq/remotes/origin/queue")
    try world.repository.addTask("T-3")
    let tip = try #require(try world.repository.queueTip())
    #expect(unlink(world.path + "/.git/objects/\(tip.prefix(2))/\(tip.dropFirst(2))") == 0)
    unlink(world.path + "/.git/logs/refs/taskq/queue")
    let repair = try world.taskq("fsck", "--repair")
    #expect(
      repair.stderrText.contains("to \(tracking.prefix(12)) (from refs/taskq/remotes/origin/queue)"),
      "\(repair.summary)")
    #expect(repair.stderrText.contains("lost: every operation after \(tracking.prefix(12))"), "\(repair.summary)")
    #expect(try world.repository.queueTip() == tracking)
    #expect(try world.taskq("status").status == 0)
  }

  @Test func aStaleLockOnTheRemoteIsNamedWithItsFix() throws {
    let remote = try CraftedRemote()
    try Self.setUp(remote)
    let world = remote.world
    let lock = remote.bare + "/refs/taskq/queue.lock"
    FileManager.default.createFile(atPath: lock, contents: Data())
    try world.repository.addTask("T-3")
    let started = monotonicSeconds()
    let sync = try world.taskq("sync")
    #expect(sync.status == 1)
    #expect(sync.stderrText.contains("lock file '\(lock)'"), "\(sync.summary)")
    #expect(sync.stderrText.contains("remove that file"), "\(sync.summary)")
    #expect(monotonicSeconds() - started < 8)
    unlink(lock)
    try remote.sync()
  }
}
