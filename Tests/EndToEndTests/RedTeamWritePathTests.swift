import Foundation
import Git
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Breaks of this afternoon's write path (the writer lock held for a whole update, records and `taskq.json`
/// written and read by hand) found by attacking it: each test fails until the break is fixed.
@Suite struct RedTeamWritePathTests {
  /// A store that a helper thread uses (the test joins the thread before it looks again).
  final class Shared<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
  }

  /// The writer lock is now held from an update's read to its swap, but the holder writes its name into
  /// `queue.writer` only at the swap (`markWriting`). A writer paused (SIGSTOP, a slow disk, a debugger) in
  /// its read or its closure holds the lock while the file still names the *previous* holder, often a
  /// process that has exited: the one-line `writerBusy` error then tells the user to
  /// `kill -CONT <that old pid>` (which may by now be an unrelated process) and never names the process that
  /// actually holds the lock. Symptom: the waiter's error names the `add` that wrote before, not this
  /// process.
  @Test
  func aWriterPausedBeforeItsSwapIsTheOneNamed() throws {
    let repo = try ScratchRepository()
    // The last holder: a `git taskq add` process, which has exited since.
    try repo.taskqOK("add", "--id", "T-1", "--task", "One.")
    let before = try String(contentsOfFile: repo.path + "/.git/taskq/queue.writer", encoding: .utf8)
    let previousPID = String(before.prefix { $0 != " " })
    #expect(!previousPID.isEmpty && previousPID != "\(getpid())")

    // This process holds the lock inside an update's closure (where a SIGSTOP or a slow read pauses a
    // writer), before any swap.
    let holderStore = Shared(try repo.store(worker: "holder"))
    let entered = DispatchSemaphore(value: 0)
    let release = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    let holder = Thread {
      _ = try? holderStore.value.update { _ -> Void in
        entered.signal()
        release.wait()
      }
      finished.signal()
    }
    holder.start()
    entered.wait()
    defer {
      release.signal()
      finished.wait()
    }

    let waiter = try repo.store(worker: "waiter")
    waiter.lockWait = 0.5
    let error = try #require(throws: QueueError.self) { try repo.addTask("T-2", store: waiter) }
    guard case .writerBusy(let name, _) = error else {
      Issue.record("expected .writerBusy, got \(error)")
      return
    }
    #expect(
      name.hasPrefix("\(getpid()) "),
      "the lock is held by pid \(getpid()), but the error names '\(name)': \(error.description)")
    #expect(!error.description.contains("kill -CONT \(previousPID)"), "\(error.description)")
  }

  /// Replaces the blob at `path` in `refs/taskq/queue` of the repository at `directory` (a clone or a bare
  /// remote) with `bytes`, in a new commit on top, with git plumbing only: what a hostile machine pushes.
  static func craft(_ path: String, _ bytes: String, in directory: String) throws {
    let file = directory + "/crafted-blob"
    try bytes.write(toFile: file, atomically: true, encoding: .utf8)
    defer { unlink(file) }
    let blob = try Git.run(["hash-object", "-w", file], in: directory)
    let index = ["GIT_INDEX_FILE": directory + "/crafted-index"]
    defer { unlink(directory + "/crafted-index") }
    try Git.run(["read-tree", "refs/taskq/queue"], in: directory, environment: index)
    try Git.run(["update-index", "--add", "--cacheinfo", "100644,\(blob),\(path)"], in: directory, environment: index)
    let tree = try Git.run(["write-tree"], in: directory, environment: index)
    let parent = try Git.run(["rev-parse", "refs/taskq/queue"], in: directory)
    let commit = try Git.run(
      [
        "-c", "user.name=Mallory", "-c", "user.email=m@example.com", "commit-tree", tree, "-p", parent, "-m",
        "taskq: crafted",
      ], in: directory)
    try Git.run(["update-ref", "refs/taskq/queue", commit], in: directory)
  }

  /// `taskq.json` comes from other machines, and its `next_seq` is read as any `Int` (the hand-written
  /// parser takes 18 digits, `JSONDecoder` the rest up to `Int.max`), then `add` does `nextSeq += 1`
  /// (Sources/TaskQueue/Operations/QueueCommands.swift:56) unchecked. Symptom: with `next_seq`
  /// 9223372036854775807, `git taskq add` dies of SIGILL ("Swift runtime failure: arithmetic overflow",
  /// exit 132, a backtrace on stderr) instead of one line saying the queue is damaged. (The overflow predates
  /// this afternoon; the new parser's range check was the place to catch it.)
  @Test
  func aHugeNextSeqIsAOneLineErrorNotACrash() throws {
    let repo = try ScratchRepository()
    try repo.taskqOK("add", "--id", "T-1", "--task", "One.")
    let tip = try repo.queueTip()
    try Self.craft("taskq.json", "{\n  \"format\" : 1,\n  \"next_seq\" : \(Int.max)\n}\n", in: repo.path)
    let crafted = try repo.queueTip()
    #expect(crafted != tip)
    let result = try repo.taskq("add", "--id", "T-2", "--task", "Two.")
    #expect(
      result.status == 0 || result.status == 1,
      "add on a crafted next_seq ended \(result.endingDescription): \(result.stderrText.prefix(200))")
    #expect(!result.stderrText.contains("Backtracing"), "\(result.stderrText.prefix(300))")
    #expect(
      result.stderrText.split(separator: "\n").count <= 1, "not one line: \(result.stderrText.prefix(300))")
  }

  /// The same overflow reached from a remote: a hostile machine pushes a queue whose `taskq.json` says
  /// `next_seq` 9223372036854775807; a clone that added a task of its own replays it onto that queue
  /// (Sources/TaskQueue/Sync/QueueSync.swift:662, `meta.nextSeq += 1`). Symptom: `git taskq sync` dies of
  /// SIGILL (arithmetic overflow, exit 132) on every clone with local adds, and so does every `run --remote`
  /// claim round's refresh: one crafted push stops every machine sharing the remote.
  @Test
  func aRemotesHugeNextSeqDoesNotCrashSync() throws {
    let shared = try SharedRemote()
    let alice = try shared.machine("alice")
    let bob = try shared.machine("bob")
    try alice.taskqOK("add", "--id", "A-1", "--repo", shared.target, "--task", "From Alice.")
    try alice.taskqOK("sync")
    try bob.taskqOK("sync")
    try bob.taskqOK("add", "--id", "B-1", "--repo", shared.target, "--task", "From Bob.")
    // Mallory pushes a crafted taskq.json (here written straight into the bare remote).
    try Self.craft("taskq.json", "{\n  \"format\" : 1,\n  \"next_seq\" : \(Int.max)\n}\n", in: shared.bare)
    let result = try bob.taskq("sync")
    #expect(
      result.status == 0 || result.status == 1,
      "sync onto a crafted next_seq ended \(result.summary.prefix(300))")
    #expect(!result.stderrText.contains("Backtracing"), "\(result.stderrText.prefix(300))")
  }

  /// The writer lock is now held for a whole update, however long it is, while every other writer of the
  /// machine waits a fixed 10 s (`QueueStore.lockWait`) and then gives up. `import` plans and writes all its
  /// tasks inside one update (Sources/TaskQueue/Operations/Import.swift:382): at 40,000 tasks that holds the
  /// lock for well over 10 s on this machine (20,000: about 11 s of a 17 s import, debug build, 2 loaded
  /// cores). Symptom: an `add` made meanwhile fails with "another git-taskq (pid N) has been writing
  /// refs/taskq/queue for 10s without finishing: if it is stopped, resume it" although nothing is stopped;
  /// a `run` in progress is hit the same way, and its tasks go `planning → failed` with that message (seen
  /// by hand with a writer stopped for 16 s: two running tasks failed and their work was thrown away).
  /// Before, only the compare-and-swap was locked and the others went on.
  @Test
  func aLongImportDoesNotFailOtherWriters() throws {
    let repo = try ScratchRepository()
    try repo.taskqOK("add", "--id", "Z-0", "--task", "Before.")
    var lines = ""
    for index in 0..<40_000 {
      let id = String(format: "T-%05d", index)
      try repo.directory.write("python/queue/tasks/\(id).md", "Task \(index)\n")
      lines +=
        "{\"id\": \"\(id)\", \"repo\": \"/r\", \"base\": \"main\", \"status\": \"todo\", \"port\": 0, \"created_at\": \"2026-11-29T12:51:10+00:00\"}\n"
    }
    try repo.directory.write("python/queue/tasks.jsonl", lines)
    let imported = Shared<ProcessResult?>(nil)
    let done = DispatchSemaphore(value: 0)
    let root = repo.directory.path + "/python"
    let directory = repo.path
    let importer = Thread {
      imported.value = try? Taskq.run(["import", "--from", root], in: directory, timeout: 600)
      done.signal()
    }
    importer.start()
    var failures: [String] = []
    var adds = 0
    while done.wait(timeout: .now()) == .timedOut {
      adds += 1
      let result = try repo.taskq("add", "--id", "Z-\(adds)", "--task", "Meanwhile.")
      if result.status != 0 { failures.append(result.stderrText) }
    }
    #expect(imported.value?.status == 0, "\(imported.value?.summary ?? "import did not run")")
    #expect(failures.isEmpty, "\(failures.count) of \(adds) adds failed during the import: \(failures.first ?? "")")
  }
}
