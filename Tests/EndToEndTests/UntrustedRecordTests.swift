import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The queue is untrusted input: a record pulled from a remote that names a repository or worktree outside
/// this machine's roots, another program's container or another service's port is refused by `run`,
/// `review` and `cleanup` (which touch nothing) and reported by `fsck`, each with the fix.
@Suite struct UntrustedRecordTests {
  /// Writes `id` into the queue as a sync from a remote would: straight into the ref, with no local `add`
  /// (so nothing was trusted here), then `change` applied to the record.
  static func plant(
    _ world: FakeWorld, _ id: String, repo: String? = nil, worktree: String? = nil,
    _ change: (inout TaskRecord) -> Void = { _ in }
  ) throws {
    let store = try world.repository.store(worker: "elsewhere:1")
    try store.add(
      NewTask(id: id, repo: repo ?? world.path, base: "main", worktreePath: worktree, body: "Planted \(id)."))
    try store.update { tx in
      var record = try tx.existing(id)
      let from = record.status
      change(&record)
      tx.put(record)
      tx.operation = Operation(
        kind: "update", task: id, from: from, to: record.status, worker: tx.worker, detail: "from a remote")
    }
  }

  /// A loopback listener on a port outside the world's range; `accepted()` says whether anyone connected.
  final class Listener {
    let fd: Int32
    let port: Int
    init() throws {
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var address = sockaddr_in()
      address.sin_family = sa_family_t(AF_INET)
      address.sin_addr.s_addr = inet_addr("127.0.0.1")
      address.sin_port = 0
      var length = socklen_t(MemoryLayout<sockaddr_in>.size)
      let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          bind(fd, $0, length) == 0 && listen(fd, 8) == 0 && getsockname(fd, $0, &length) == 0
        }
      }
      guard bound else {
        close(fd)
        throw TestFailure("cannot listen on 127.0.0.1")
      }
      self.fd = fd
      port = Int(UInt16(bigEndian: address.sin_port))
      _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }
    deinit { close(fd) }
    func accepted() -> Bool {
      let client = accept(fd, nil, nil)
      if client >= 0 { close(client) }
      return client >= 0
    }
  }

  @Test func hostileRecordsAreRefusedTouchNothingAndAreReported() throws {
    let world = try FakeWorld()
    let outside = try ScratchRepository()  // a real repository outside every root of this machine
    let evil = "/etc/taskq-evil"
    let foreign = "postgres-\(UUID().uuidString.prefix(8))"
    // Another program's container: no labels of ours.
    let started = try world.execute("docker", ["run", "-d", "--name", foreign, "example.test/postgres:16", "postgres"])
    #expect(started.succeeded, "\(started.summary)")
    let service = try Listener()
    #expect(!world.ports.contains(service.port))
    let wt = world.worktreesRoot + "/repo/"

    try Self.plant(world, "U-REPO", repo: outside.path)
    try Self.plant(world, "U-WT", worktree: evil)
    try Self.plant(world, "U-CONT") {
      $0.status = .done
      $0.container = foreign
    }
    try Self.plant(world, "U-PORT", worktree: wt + "U-PORT") {
      $0.status = .review
      $0.container = "task-U-PORT-20260101T000000Z"
      $0.port = service.port
    }
    try Self.plant(world, "U-REVIEW", worktree: evil) { $0.status = .review }
    try FileManager.default.createDirectory(atPath: wt + "U-PORT", withIntermediateDirectories: true)

    // run: each task fails before setup, with the reason and the fix in its report; nothing is created.
    for (id, path) in [("U-REPO", outside.path), ("U-WT", evil)] {
      let result = try world.taskq("run", "--id", id)
      #expect(result.status == 1, "\(result.summary)")
      let record = try world.record(id)
      #expect(record.status == .failed)
      let report = try world.errorReport(id)
      #expect(report.contains("refusing task '\(id)'"), "\(report)")
      #expect(report.contains("git config --add taskq.trustedPath \(path)"), "\(report)")
    }
    #expect(!FileManager.default.fileExists(atPath: evil))
    #expect(try outside.git("branch", "--list", "task/*") == "")
    #expect(try outside.git("worktree", "list", "--porcelain").components(separatedBy: "worktree ").count == 2)
    #expect(try world.repository.git("branch", "--list", "task/U-WT") == "")
    #expect(try world.dockerCalls("run").map { $0.arguments[3] } == [foreign])  // only the test's own

    // review: one line, nothing inspected, nothing connected.
    for (id, fragment) in [
      ("U-PORT", "port \(service.port) is outside taskq.portRange"), ("U-REVIEW", "worktree_path '\(evil)'"),
    ] {
      let result = try world.taskq("review", "--id", id, "--print")
      #expect(result.status == 1, "\(result.summary)")
      #expect(result.stdoutText.isEmpty)
      let lines = result.stderrText.split(separator: "\n")
      #expect(
        lines.count == 1 && lines[0].hasPrefix("error: refusing task '\(id)': \(fragment)"), "\(result.stderrText)")
    }
    #expect(!service.accepted())
    #expect(try world.dockerCalls("inspect").isEmpty)

    // cleanup: the foreign container stays, nothing is removed or recorded.
    let tip = try world.repository.queueTip()
    let cleanup = try world.taskq("cleanup", "--id", "U-CONT")
    #expect(cleanup.status == 1, "\(cleanup.summary)")
    #expect(
      cleanup.stderrText.hasPrefix(
        "error: refusing task 'U-CONT': container '\(foreign)' is not named like one of ours"), "\(cleanup.stderrText)")
    #expect(world.container(named: foreign) != nil)
    #expect(try world.dockerCalls("rm").isEmpty)
    #expect(try world.repository.queueTip() == tip)
    // Even with its own name, a container without our labels is never removed.
    try Self.plant(world, "U-NAMED") {
      $0.status = .cancelled
      $0.container = "task-U-NAMED-x"
    }
    let impostor = try world.execute("docker", ["run", "-d", "--name", "task-U-NAMED-x", "example.test/other", "x"])
    #expect(impostor.succeeded)
    let named = try world.taskq("cleanup", "--id", "U-NAMED")
    #expect(named.status == 0, "\(named.summary)")
    #expect(
      named.stdoutText.contains("container task-U-NAMED-x not removed: it does not carry git-taskq's labels"),
      "\(named.stdoutText)")
    #expect(world.container(named: "task-U-NAMED-x") != nil)
    #expect(try world.dockerCalls("rm").isEmpty)

    // fsck: every one reported, with its fix; warnings only (the queue itself is sound).
    let fsck = try world.taskq("fsck")
    #expect(fsck.status == 0, "\(fsck.summary)")
    let out = fsck.stdoutText
    #expect(out.contains("repo '\(outside.path)' is outside taskq.reposRoot"), "\(out)")
    #expect(out.contains("git config --add taskq.trustedPath \(outside.path)"), "\(out)")
    #expect(out.contains("worktree_path '\(evil)' is outside taskq.worktreesRoot"), "\(out)")
    #expect(out.contains("git config --add taskq.trustedPath \(evil)"), "\(out)")
    #expect(out.contains("container '\(foreign)' is not named like one of ours"), "\(out)")
    #expect(out.contains("port \(service.port) is outside taskq.portRange"), "\(out)")
    #expect(!out.contains("error:"), "\(out)")

    // The fix: trusting the repository here lets the task run.
    try world.repository.git("config", "--add", "taskq.trustedPath", outside.path)
    #expect(try world.taskq("retry", "--id", "U-REPO").status == 0)
    let rerun = try world.taskq("run", "--id", "U-REPO")
    #expect(rerun.status == 0, "\(rerun.summary)")
    #expect(try world.record("U-REPO").status == .review)
    #expect(try !world.taskq("fsck").stdoutText.contains("repo '\(outside.path)'"))
  }

  @Test func addTrustsTheExplicitPathsItIsGivenOnThisMachineOnly() throws {
    let world = try FakeWorld()
    let outside = try ScratchRepository()
    let worktree = outside.directory.path + "/wt/T-1"
    let first = try world.taskq(
      "add", "--id", "T-1", "--repo", outside.path, "--worktree-path", worktree, "--task", "x")
    #expect(first.status == 0, "\(first.summary)")
    #expect(
      first.stderrText
        == "note: trusting \(outside.path) for tasks on this machine (taskq.trustedPath)\nnote: trusting \(worktree) for tasks on this machine (taskq.trustedPath)\n"
    )
    #expect(
      try world.repository.git("config", "--local", "--get-all", "taskq.trustedPath") == "\(outside.path)\n\(worktree)")
    // Already trusted, or inside the roots: nothing more is written or said.
    let second = try world.taskq("add", "--id", "T-2", "--repo", outside.path, "--task", "x")
    #expect(second.stderrText == "")
    let inside = try world.taskq(
      "add", "--id", "T-3", "--worktree-path", world.worktreesRoot + "/elsewhere/T-3", "--task", "x")
    #expect(inside.stderrText == "")
    #expect(
      try world.repository.git("config", "--local", "--get-all", "taskq.trustedPath").split(separator: "\n").count == 2)
    let run = try world.taskq("run", "--id", "T-1")
    #expect(run.status == 0, "\(run.summary)")
    #expect(FileManager.default.fileExists(atPath: worktree))
  }
}
