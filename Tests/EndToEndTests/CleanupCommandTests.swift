import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

/// `git taskq cleanup`: removes our containers (by exact name and label) and clean worktrees (libgit2),
/// keeps branches and every worktree with work in it, clears the runtime fields, and is idempotent.
@Suite struct CleanupCommandTests {
  /// A world whose tasks `ids` ran to review through the fake engine.
  static func world(running ids: [String]) throws -> FakeWorld {
    let world = try FakeWorld()
    for id in ids { try world.repository.addTask(id) }
    let result = try world.taskq("run", "--max-parallel", "3")
    guard result.succeeded else { throw TestFailure("run failed: \(result.summary)") }
    return world
  }

  @Test func removesContainerAndCleanWorktreeKeepsBranchAndIsIdempotent() throws {
    let world = try Self.world(running: ["T-001"])
    try world.taskq("approve", "--id", "T-001")
    let before = try world.record("T-001")
    let container = try #require(before.container)
    let port = try #require(before.port)
    let worktree = world.worktree("T-001")
    let branchTip = try world.repository.git("rev-parse", "task/T-001")
    #expect(FileManager.default.fileExists(atPath: world.secretPath("T-001")))

    let result = try world.taskq("cleanup")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText.contains("T-001: removed container \(container)"), "\(result.stdoutText)")
    #expect(result.stdoutText.contains("T-001: removed worktree \(worktree) (branch task/T-001 kept)"))
    #expect(result.stdoutText.contains("cleaned 1 task(s)"))
    // The container: looked up by its exact names (one `inspect` of every candidate, with its labels: the
    // name and the one before the queue tag), checked for our labels, removed by its exact name.
    #expect(
      try world.dockerCalls("inspect").map(\.arguments).contains([
        "inspect", "--type", "container", "-f", "{{.Name}}{{\"\\t\"}}{{json .Config.Labels}}",
        String(container.dropLast(9)), container,
      ]))
    #expect(try world.dockerCalls("rm").map(\.arguments) == [["rm", "-f", container]])
    #expect(world.container(named: container) == nil)
    #expect(Loopback.httpStatus(port: port, path: "/global/health", timeout: 1) == nil)
    #expect(!FileManager.default.fileExists(atPath: world.secretPath("T-001")))
    // The worktree: gone from disk and from git's list; the branch and its commit stay.
    #expect(!FileManager.default.fileExists(atPath: worktree))
    #expect(try !world.gitWorktrees().contains(worktree))
    #expect(try world.repository.git("rev-parse", "task/T-001") == branchTip)
    // The record: runtime fields cleared, the rest kept.
    let after = try world.record("T-001")
    #expect(after.status == .done)
    #expect(after.container == nil)
    #expect(after.port == nil)
    #expect(after.sessionID == nil)
    #expect(after.worktreePath == nil)
    #expect(try world.history(task: "T-001").last?.operation.kind == "cleanup")

    // Again: nothing to do, nothing written, nothing removed.
    let tip = try world.repository.queueTip()
    let again = try world.taskq("cleanup")
    #expect(again.status == 0, "\(again.summary)")
    #expect(again.stdoutText == "nothing to clean up\n", "\(again.stdoutText)")
    #expect(try world.repository.queueTip() == tip)
    #expect(try world.dockerCalls("rm").count == 1)
  }

  @Test func keepsWorktreesWithWorkInThemUnlessForced() throws {
    let world = try Self.world(running: ["T-001", "T-002"])
    for id in ["T-001", "T-002"] { try world.taskq("approve", "--id", id) }
    // T-001: an untracked file; T-002: a modified tracked file.
    try "draft\n".write(toFile: world.worktree("T-001") + "/notes.txt", atomically: true, encoding: .utf8)
    try "changed\n".write(
      toFile: world.worktree("T-002") + "/fake-agent/T-002.txt", atomically: true, encoding: .utf8)

    let result = try world.taskq("cleanup")
    #expect(result.status == 0, "\(result.summary)")
    for id in ["T-001", "T-002"] {
      let worktree = world.worktree(id)
      #expect(
        result.stdoutText.contains("\(id): kept worktree \(worktree): 1 uncommitted change(s)"),
        "\(result.stdoutText)")
      #expect(FileManager.default.fileExists(atPath: worktree))
      #expect(try world.gitWorktrees().contains(worktree))
      let record = try world.record(id)
      #expect(record.worktreePath == worktree)
      #expect(record.container == nil)
      #expect(record.port == nil)
    }
    #expect(result.stdoutText.contains("kept 2 worktree(s) with work in them"))
    #expect(try world.containers().isEmpty)
    #expect(try world.repository.git("-C", world.worktree("T-001"), "status", "--porcelain") == "?? notes.txt")

    let forced = try world.taskq("cleanup", "--id", "T-001", "--force")
    #expect(forced.status == 0, "\(forced.summary)")
    #expect(forced.stdoutText.contains("T-001: removed worktree"), "\(forced.stdoutText)")
    #expect(!FileManager.default.fileExists(atPath: world.worktree("T-001")))
    #expect(try world.record("T-001").worktreePath == nil)
    #expect(FileManager.default.fileExists(atPath: world.worktree("T-002")))
  }

  @Test func keepWorktreeRemovesOnlyTheContainer() throws {
    let world = try Self.world(running: ["T-001"])
    try world.taskq("approve", "--id", "T-001")
    let result = try world.taskq("cleanup", "--keep-worktree")
    #expect(result.status == 0, "\(result.summary)")
    #expect(try world.containers().isEmpty)
    let worktree = world.worktree("T-001")
    #expect(FileManager.default.fileExists(atPath: worktree))
    #expect(try world.gitWorktrees().contains(worktree))
    let record = try world.record("T-001")
    #expect(record.worktreePath == worktree)
    #expect(record.container == nil)
    #expect(record.port == nil)
    #expect(record.sessionID == nil)
    #expect(!result.stdoutText.contains("kept 1 worktree"), "\(result.stdoutText)")
  }

  @Test func doneOnlyAndCancelledOnlySelectTasks() throws {
    let world = try Self.world(running: ["T-001", "T-002", "T-003"])
    try world.taskq("approve", "--id", "T-001")
    try world.taskq("cancel", "--id", "T-002")
    let containers = try ["T-001", "T-002", "T-003"].map { try #require(try world.record($0).container) }

    let done = try world.taskq("cleanup", "--done-only")
    #expect(done.status == 0, "\(done.summary)")
    #expect(world.container(named: containers[0]) == nil)
    #expect(world.container(named: containers[1])?.isRunning == true)
    #expect(try world.record("T-002").container != nil)

    let cancelled = try world.taskq("cleanup", "--cancelled-only")
    #expect(cancelled.status == 0, "\(cancelled.summary)")
    #expect(world.container(named: containers[1]) == nil)
    #expect(try world.record("T-002").worktreePath == nil)
    // A task in review is never a default target.
    #expect(world.container(named: containers[2])?.isRunning == true)
    #expect(try world.record("T-003").worktreePath == world.worktree("T-003"))

    let both = try world.taskq("cleanup", "--done-only", "--cancelled-only")
    #expect(both.status != 0)
    #expect(both.stderrText.contains("exclude each other"), "\(both.stderrText)")
  }

  /// Several tasks: their containers are looked up with one `inspect` and removed side by side, each once;
  /// the messages still come task by task, in queue order.
  @Test func removesTheContainersOfSeveralTasksEachOnceAndReportsInOrder() throws {
    let ids = ["T-1", "T-2", "T-3", "T-4"]
    let world = try Self.world(running: ids)
    var containers: [String] = []
    for id in ids {
      try world.taskq("approve", "--id", id)
      containers.append(try #require(try world.record(id).container))
    }
    let result = try world.taskq("cleanup", "--keep-worktree")
    #expect(result.status == 0, "\(result.summary)")
    let removed = result.stdoutText.split(separator: "\n").map(String.init).filter {
      $0.contains(": removed container ")
    }
    #expect(removed == zip(ids, containers).map { "\($0): removed container \($1)" }, "\(result.stdoutText)")
    let removals = try world.dockerCalls("rm").map(\.arguments)
    #expect(removals.sorted { $0.last ?? "" < $1.last ?? "" } == containers.sorted().map { ["rm", "-f", $0] })
    let lookups = try world.dockerCalls("inspect").filter {
      $0.arguments.contains { $0.hasSuffix("{{json .Config.Labels}}") }
    }
    #expect(lookups.count == 1)
    let looked: Set<String> = Set(lookups.first?.arguments ?? [])
    #expect(looked.isSuperset(of: containers))
    for (id, container) in zip(ids, containers) {
      #expect(world.container(named: container) == nil)
      #expect(try world.record(id).container == nil)
    }
  }

  @Test func matchesContainersByExactLabelNeverBySubstring() throws {
    let world = try Self.world(running: ["T-1", "T-10"])
    try world.taskq("approve", "--id", "T-1")
    // Containers that look like T-1's but are not ours: another task's label, or no managed label.
    for arguments in [
      ["run", "-d", "--name", "task-T-1-impostor", "--label", "git-taskq.task=T-1", "busybox", "sleep"],
      [
        "run", "-d", "--name", "task-T-1-other", "--label", "git-taskq.managed=true", "--label",
        "git-taskq.task=T-11", "busybox", "sleep",
      ],
    ] {
      let started = try world.execute("docker", arguments)
      #expect(started.succeeded, "\(started.summary)")
    }
    let t10 = try #require(try world.record("T-10").container)
    let result = try world.taskq("cleanup", "--id", "T-1")
    #expect(result.status == 0, "\(result.summary)")
    #expect(try world.dockerCalls("rm").count == 1)
    #expect(world.container(named: "task-T-1-impostor") != nil)
    #expect(world.container(named: "task-T-1-other") != nil)
    #expect(world.container(named: t10)?.isRunning == true)
    #expect(try world.record("T-10").container == t10)
  }

  /// A container named as before the queue tag (`task-<id>-<created>`, what earlier versions started) with
  /// our labels for the task of this queue is still this queue's: cleanup removes it with the new one.
  @Test func aContainerNamedAsBeforeTheQueueTagIsStillCleanedUp() throws {
    let world = try Self.world(running: ["T-1"])
    try world.taskq("approve", "--id", "T-1")
    let record = try world.record("T-1")
    let current = try world.containerName(record)
    #expect(record.container == current)
    let legacy = String(current.dropLast(9))  // without "-<8 hex digits>"
    let started = try world.execute(
      "docker",
      [
        "run", "-d", "--name", legacy, "--label", "git-taskq.managed=true", "--label", "git-taskq.task=T-1",
        "--label", "git-taskq.queue=\(try world.queueIdentity())", "busybox", "sleep",
      ])
    #expect(started.succeeded, "\(started.summary)")
    let result = try world.taskq("cleanup", "--id", "T-1")
    #expect(result.status == 0, "\(result.summary)")
    #expect(world.container(named: legacy) == nil, "\(result.stdoutText)")
    #expect(world.container(named: current) == nil)
  }

  /// `cleanup --id` never drops work silently: a task in review, or one whose worktree holds uncommitted
  /// work, is refused (naming the files) unless --force.
  @Test func cleanupByIDOfATaskInReviewOrWithWorkIsRefusedWithoutForce() throws {
    let world = try Self.world(running: ["T-001", "T-002"])
    let tip = try world.repository.queueTip()
    let review = try world.taskq("cleanup", "--id", "T-001")
    #expect(review.status == 1)
    #expect(review.stderrText.hasPrefix("error: task 'T-001' is in review"), "\(review.stderrText)")
    #expect(review.stderrLines.count == 1)
    #expect(try world.repository.queueTip() == tip)
    #expect(try world.dockerCalls("rm").isEmpty)

    try world.taskq("cancel", "--id", "T-002")
    try "draft\n".write(toFile: world.worktree("T-002") + "/notes.txt", atomically: true, encoding: .utf8)
    let dirty = try world.taskq("cleanup", "--id", "T-002")
    #expect(dirty.status == 1)
    #expect(dirty.stderrText.contains("has uncommitted work ('notes.txt')"), "\(dirty.stderrText)")
    #expect(FileManager.default.fileExists(atPath: world.worktree("T-002") + "/notes.txt"))
    let forced = try world.taskq("cleanup", "--id", "T-002", "--force")
    #expect(forced.status == 0, "\(forced.summary)")
    #expect(!FileManager.default.fileExists(atPath: world.worktree("T-002")))
  }

  /// `remove` stops what the task left running and says so; `cleanup` removes this queue's containers of
  /// tasks no longer in the queue, and nothing else.
  @Test func removeCleansUpAndCleanupRemovesContainersOfRemovedTasks() throws {
    let world = try Self.world(running: ["T-001", "T-002"])
    let first = try #require(try world.record("T-001").container)
    let remove = try world.taskq("remove", "--id", "T-001")
    #expect(remove.status == 0, "\(remove.summary)")
    #expect(remove.stdoutText.contains("T-001: removed container \(first)"), "\(remove.stdoutText)")
    #expect(remove.stdoutText.contains("T-001: removed worktree"), "\(remove.stdoutText)")
    #expect(world.container(named: first) == nil)

    // T-002's container outlives its record (removed by an older version, say): cleanup finds it by the
    // queue label. A container of another queue with the same task id stays.
    let second = try #require(try world.record("T-002").container)
    let other = try world.execute(
      "docker",
      [
        "run", "-d", "--name", "task-T-002-20200101T000000Z", "--label", "git-taskq.managed=true", "--label",
        "git-taskq.task=T-002", "--label", "git-taskq.queue=/elsewhere/.git", "busybox", "sleep",
      ])
    #expect(other.succeeded, "\(other.summary)")
    let store = try world.repository.store()
    _ = try store.remove("T-002")
    let cleanup = try world.taskq("cleanup")
    #expect(cleanup.status == 0, "\(cleanup.summary)")
    #expect(
      cleanup.stdoutText.contains("removed container \(second) of task 'T-002', which is no longer in the queue"),
      "\(cleanup.stdoutText)")
    #expect(world.container(named: second) == nil)
    #expect(world.container(named: "task-T-002-20200101T000000Z") != nil)
  }

  @Test func cleanupOfARunningTaskIsRefused() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    try world.repository.drive("T-001", to: .building, store: world.repository.store(worker: "elsewhere:1"))
    let tip = try world.repository.queueTip()
    let result = try world.taskq("cleanup", "--id", "T-001")
    #expect(result.status != 0)
    #expect(result.stderrLines.count == 1, "\(result.stderrText)")
    #expect(result.stderrText.contains("building"))
    #expect(try world.repository.queueTip() == tip)
    #expect(try world.calls().isEmpty)
  }

  @Test func cleanupByIDCleansAFailedTask() throws {
    let world = try FakeWorld()
    try world.repository.addTask("T-001")
    let run = try world.taskq("run", environment: ["FAKE_OPENCODE_FAIL": "make-plan"])
    #expect(run.status == 1)
    // A failed task is not a default target: its report and worktree are there to be inspected.
    let container = try #require(try world.record("T-001").container)
    let untouched = try world.taskq("cleanup")
    #expect(untouched.stdoutText == "nothing to clean up\n", "\(untouched.stdoutText)")
    #expect(world.container(named: container) != nil)

    let result = try world.taskq("cleanup", "--id", "T-001")
    #expect(result.status == 0, "\(result.summary)")
    #expect(world.container(named: container) == nil)
    #expect(!FileManager.default.fileExists(atPath: world.worktree("T-001")))
    let record = try world.record("T-001")
    #expect(record.status == .failed)
    #expect(record.errorFile != nil)
    #expect(try world.errorReport("T-001").contains("make-plan failed"))
  }
}
