import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// Breaks of this afternoon's object write path (trees edited as raw bytes in Swift, `TreeEditor`; loose
/// objects written as stored zlib, `LooseObjectWriter`) found by attacking it: each test fails until the
/// break is fixed.
///
/// Before, `git_tree_create_updated` rebuilt every tree it touched through a treebuilder, which sorts the
/// entries, writes each name once and writes modes canonically: a damaged tree pulled from a remote was
/// repaired by the first local write into it. The Swift editor copies the untouched entries as they are and
/// merges its new ones into them on the assumption that they are sorted and unique.
@Suite struct RedTeamObjectWritesTests {
  /// The entries of tree `tree` (`<rev>:<path>` or an id) in the attacker's repository, as
  /// (`mode`, `name`, `id`), in the tree's own order.
  static func entries(_ remote: CraftedRemote, _ tree: String) throws -> [(String, String, String)] {
    try remote.git(["ls-tree", tree]).split(separator: "\n").map { line in
      let parts = line.split(separator: "\t", maxSplits: 1)
      let head = parts[0].split(separator: " ")
      return (String(head[0]), String(parts[1]), String(head[2]))
    }
  }

  /// A tree written byte for byte as `entries` say (no sorting, duplicates kept, modes as given), with
  /// `git hash-object --literally`, the way a buggy or hostile writer elsewhere can.
  static func rawTree(_ remote: CraftedRemote, _ entries: [(String, String, String)]) throws -> String {
    var bytes: [UInt8] = []
    for (mode, name, id) in entries {
      bytes += Array("\(mode) \(name)".utf8)
      bytes.append(0)
      var hex = Array(id.utf8)[...]
      while hex.count >= 2 {
        guard let byte = UInt8(String(decoding: hex.prefix(2), as: UTF8.self), radix: 16) else {
          throw TestFailure("'\(id)' is not a hex object id")
        }
        bytes.append(byte)
        hex = hex.dropFirst(2)
      }
    }
    return try remote.git(["hash-object", "-t", "tree", "--literally", "-w", "--stdin"], input: bytes)
  }

  /// The root `root` with its `tasks` tree replaced by `tasks`.
  static func replacingTasks(_ remote: CraftedRemote, _ root: String, with tasks: String) throws -> String {
    var entries = try entries(remote, root).filter { $0.1 != "tasks" }
    entries.append(("040000", "tasks", tasks))
    return try remote.tree(entries)
  }

  /// The tree git would write for the same entries (sorted, modes canonical), from `git ls-tree` of `tree`
  /// in the machine's repository.
  static func canonical(_ remote: CraftedRemote, _ tree: String) throws -> String {
    let listing = try remote.world.repository.git("ls-tree", tree)
    return try remote.git(["mktree", "--missing"], input: Array((listing + "\n").utf8))
  }

  /// A remote queue whose `tasks` tree lists its buckets in reverse order (git sorts them; a tree written
  /// with `hash-object --literally` need not be). A local `git taskq add` into a new bucket then WRITES a
  /// `tasks` tree that is still unsorted, with the new buckets merged in at the wrong place: `git fsck`
  /// reports `treeNotSorted` on the tree of our own commit, and `git taskq fsck` keeps saying
  /// `'tasks/<bb>/T-n/task.md' is missing` for tasks that are there (libgit2's lookup by name is a binary
  /// search). Before, the treebuilder behind `git_tree_create_updated` wrote the tree sorted and the first
  /// local write repaired the queue.
  ///
  /// By hand: reverse `refs/taskq/queue:tasks` with `git hash-object -t tree --literally -w`, commit it on
  /// the queue (`git commit-tree` + `git update-ref`), `git taskq add --id T-5 --task five`, then
  /// `git ls-tree refs/taskq/queue:tasks` (7d/96 listed before e5 cd ad 4e) and `git fsck` (treeNotSorted).
  @Test
  func aLocalAddIntoAnUnsortedRemoteTreeWritesASortedTree() throws {
    let remote = try CraftedRemote()
    let world = remote.world
    for id in ["T-1", "T-2", "T-3", "T-4"] { try world.repository.addTask(id) }
    try remote.sync()
    try remote.craft(message: "unsorted buckets") { root in
      let buckets = try Self.entries(remote, "\(root):tasks").map { ("40000", $0.1, $0.2) }
      return try Self.replacingTasks(remote, root, with: try Self.rawTree(remote, buckets.reversed()))
    }
    try remote.sync()

    let added = try world.taskq("add", "--id", "T-5", "--task", "five")
    #expect(added.status == 0, "\(added.summary)")
    let tasks = try world.repository.git("rev-parse", "refs/taskq/queue:tasks")
    let listing = try world.repository.git("ls-tree", tasks)
    #expect(try Self.canonical(remote, tasks) == tasks, "our commit's tasks tree is not in git's order: \(listing)")
    let fsck = try world.taskq("fsck")
    #expect(!fsck.stdoutText.contains("is missing"), "\(fsck.stdoutText)")
  }

  /// A remote queue whose `tasks` tree names T-3's bucket twice (the second copy holds a T-3 with another
  /// task file): `status` lists T-3 twice. `git taskq cancel --id T-3` then edits only the first `<bb>`
  /// entry and copies the second one as it is: the tree we write still has the bucket twice (`git fsck`:
  /// `duplicateEntries`), and `status` now shows T-3 both cancelled and todo, so the cancelled task can
  /// still be claimed and run. Before, the treebuilder kept one entry per name.
  ///
  /// By hand: in a queue with T-1..T-4, write `tasks` with `hash-object -t tree --literally` listing
  /// `40000 ad <T-3's bucket>` and `40000 ad <a bucket with another T-3>`, commit it on the queue,
  /// `git taskq cancel --id T-3`, then `git taskq status` (T-3 under todo and cancelled) and `git fsck`.
  @Test
  func aCancelOnABucketNamedTwiceLeavesOneTask() throws {
    let remote = try CraftedRemote()
    let world = remote.world
    for id in ["T-1", "T-2", "T-3", "T-4"] { try world.repository.addTask(id) }
    try remote.sync()
    let bucket = Layout.bucket(of: "T-3")
    try remote.craft(message: "a bucket twice") { root in
      let other = try remote.tree([
        ("100644", "record.json", try remote.git(["rev-parse", "\(root):tasks/\(bucket)/T-3/record.json"])),
        ("100644", "task.md", try remote.blob("another copy of T-3\n")),
      ])
      let copy = try remote.tree([("040000", "T-3", other)])
      var buckets = try Self.entries(remote, "\(root):tasks").map { ("40000", $0.1, $0.2) }
      guard let index = buckets.firstIndex(where: { $0.1 == bucket }) else {
        throw TestFailure("T-3's bucket \(bucket) is not in the queue")
      }
      buckets.insert(("40000", bucket, copy), at: index + 1)
      return try Self.replacingTasks(remote, root, with: try Self.rawTree(remote, buckets))
    }
    try remote.sync()

    let cancelled = try world.taskq("cancel", "--id", "T-3")
    #expect(cancelled.status == 0, "\(cancelled.summary)")
    let names = try world.repository.git("ls-tree", "--name-only", "refs/taskq/queue:tasks").split(separator: "\n")
    #expect(Set(names).count == names.count, "our commit's tasks tree names a bucket twice: \(names)")
    let statuses = try world.records().filter { $0.id == "T-3" }.map(\.status)
    #expect(statuses == [.cancelled], "T-3 is in the queue as \(statuses)")
  }
  /// A remote queue whose `tasks` tree is sorted and unique but writes its bucket modes zero-padded
  /// (`040000`, as some tools and `git hash-object --literally` can; git writes `40000`). Every local write
  /// then copies those entries byte for byte into the trees it writes: `git fsck --strict` reports
  /// `zeroPaddedFilemode: contains zero-padded file modes` on the `tasks` tree of each of our own commits,
  /// forever (a remote or mirror with `fsck.zeroPaddedFilemode=error` / `receive.fsck.*` strictness refuses
  /// the push). Before, the treebuilder wrote every entry's mode as `40000`.
  ///
  /// By hand: rewrite `refs/taskq/queue:tasks` with `hash-object -t tree --literally` using mode `040000`
  /// for each bucket, commit it on the queue, `git taskq add --id T-5 --task five`, then
  /// `git fsck --strict` (zeroPaddedFilemode in the tree at `refs/taskq/queue:tasks`).
  @Test
  func aLocalAddIntoAZeroPaddedRemoteTreeWritesCanonicalModes() throws {
    let remote = try CraftedRemote()
    let world = remote.world
    for id in ["T-1", "T-2", "T-3", "T-4"] { try world.repository.addTask(id) }
    try remote.sync()
    try remote.craft(message: "zero-padded modes") { root in
      let buckets = try Self.entries(remote, "\(root):tasks").map { ("040000", $0.1, $0.2) }
      return try Self.replacingTasks(remote, root, with: try Self.rawTree(remote, buckets))
    }
    try remote.sync()

    let added = try world.taskq("add", "--id", "T-5", "--task", "five")
    #expect(added.status == 0, "\(added.summary)")
    let tasks = try world.repository.git("rev-parse", "refs/taskq/queue:tasks")
    let canonical = try Self.canonical(remote, tasks)
    #expect(canonical == tasks, "our commit's tasks tree \(tasks) is not written as git writes it (\(canonical))")
  }

  /// `user.name` with a newline in it (`git config user.name $'Line\nBreak'`): git itself drops the newline
  /// (`git var GIT_AUTHOR_IDENT` says `LineBreak <…>`), but the commit bytes are built with the name as it
  /// is (the Swift composer hands such a name to `git_commit_create_buffer`, which writes it too). The
  /// `add` succeeds and prints `added`, and the commit it wrote has an author line split in two: `git fsck`
  /// says `missingEmail: invalid author/committer line - missing email`, and every later command (status,
  /// add, fsck, and every clone the queue is synced to) fails with
  /// `error: git: failed to parse signature - malformed e-mail (git_commit_lookup)` until
  /// `git taskq fsck --repair` moves the ref back and reports the acknowledged add as lost.
  ///
  /// By hand: `git config user.name $'Line\nBreak'; git taskq add --id T-1 --task one; git taskq status`.
  @Test
  func aUserNameWithANewlineLeavesTheQueueReadable() throws {
    let repo = try ScratchRepository()
    try repo.git("config", "user.name", "Line\nBreak")
    let added = try repo.taskq("add", "--id", "T-1", "--task", "one")
    let status = try repo.taskq("status")
    #expect(status.status == 0, "after \(added.summary): \(status.summary)")
    let fsck = try ProcessRunner.run(ProcessSpec("git", ["fsck", "--strict"], directory: repo.path, timeout: 60))
    #expect(!fsck.stderrText.contains("error in commit"), "\(fsck.summary)")
    if added.status == 0 {
      let author = try repo.git("log", "-1", "--format=%an <%ae>", "refs/taskq/queue")
      let git = try repo.git("var", "GIT_AUTHOR_IDENT")
      #expect(git.hasPrefix(author + " "), "the queue's author is '\(author)', git's '\(git)'")
    }
  }
  /// `user.name`/`user.email` with `<` or `>` in them (`Ann <x> B`, `<a@b>`): git drops the brackets and
  /// commits as `Ann x B <e@x.org>` / `… <a@b>` (`git var GIT_AUTHOR_IDENT`), but the queue's commits are
  /// authored `git-taskq <user@host>`: `git_signature_default` refuses the configured identity and
  /// `QueueStore.init` silently falls back, so `git log refs/taskq/queue` does not show who made the change.
  ///
  /// By hand: `git config user.name 'Ann <x> B'; git taskq add --id T-1 --task one;
  /// git log -1 --format='%an <%ae>' refs/taskq/queue` (git-taskq <root@host>) vs `git var GIT_AUTHOR_IDENT`.
  @Test(arguments: [("Ann <x> B", "ann@example.com"), ("Ann", "<ann@example.com>")])
  func anIdentityWithAngleBracketsIsTheOneGitWouldUse(name: String, email: String) throws {
    let repo = try ScratchRepository()
    try repo.git("config", "user.name", name)
    try repo.git("config", "user.email", email)
    let added = try repo.taskq("add", "--id", "T-1", "--task", "one")
    #expect(added.status == 0, "\(added.summary)")
    let author = try repo.git("log", "-1", "--format=%an <%ae>", "refs/taskq/queue")
    let git = try repo.git("var", "GIT_AUTHOR_IDENT")
    #expect(git.hasPrefix(author + " "), "the queue's author is '\(author)', git's '\(git)'")
  }

  /// A tree at the tip that does not parse (written elsewhere with `hash-object --literally`, fetched or
  /// pushed here) stopped every command with libgit2's raw `failed to parse tree: can't parse OID
  /// (git_tree_lookup)`. Now reads and writes stop with one line naming the repair and change nothing, and
  /// `fsck --repair` moves the ref back.
  @Test func aMalformedTreeAtTheTipNamesTheRepair() throws {
    let repo = try ScratchRepository()
    try repo.taskqOK("add", "--id", "T-1", "--task", "one")
    let good = try repo.git("rev-parse", "refs/taskq/queue")
    func binary(_ hex: String) -> [UInt8] {
      stride(from: 0, to: 40, by: 2).map { offset in
        let start = hex.index(hex.startIndex, offsetBy: offset)
        return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16) ?? 0
      }
    }
    func object(_ bytes: [UInt8]) throws -> String {
      let file = repo.directory.path + "/object-\(bytes.count)"
      try Data(bytes).write(to: URL(fileURLWithPath: file))
      return try repo.git("hash-object", "-t", "tree", "--literally", "-w", file)
    }
    let truncated = try object(Array("40000 ab\u{0}abc".utf8))
    let meta = try repo.git("rev-parse", "refs/taskq/queue:taskq.json")
    let root = try object(
      Array("100644 taskq.json\u{0}".utf8) + binary(meta) + Array("40000 tasks\u{0}".utf8) + binary(truncated))
    let bad = try repo.git("commit-tree", root, "-p", good, "-m", "crafted")
    try repo.git("update-ref", "refs/taskq/queue", bad, good)
    for arguments in [["status"], ["add", "--id", "T-2", "--task", "two"], ["cancel", "--id", "T-1"]] {
      let result = try repo.taskq(arguments)
      #expect(result.status != 0, "\(arguments)")
      let lines = result.stderrText.split(separator: "\n").filter { !$0.hasPrefix("warning:") }
      #expect(lines.count == 1, "\(arguments): \(result.stderrText)")
      #expect(result.stderrText.contains("fsck --repair"), "\(arguments): \(result.stderrText)")
      #expect(!result.stderrText.contains("git_tree_lookup"), "\(arguments): \(result.stderrText)")
      #expect(try repo.queueTip() == bad)
    }
    try repo.taskqOK("fsck", "--repair")
    #expect(try repo.queueTip() == good)
    #expect(try repo.taskqOK("status").stdoutText.contains("T-1"))
  }
}
