import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Many processes of the real binary writing at once, and writers killed with SIGKILL: every acknowledged
/// operation is in the queue exactly once, every task is in a legal state, and `git fsck` is clean.
@Suite(.serialized) struct ConcurrencyTests {
  /// What one command did.
  struct Outcome: Sendable {
    var worker: Int
    var operation: String
    var id: String
    var status: Int32
    var stderr: String
  }

  /// Outcomes collected from several threads.
  final class Ledger: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [Outcome] = []
    func record(_ outcome: Outcome) {
      lock.lock()
      outcomes.append(outcome)
      lock.unlock()
    }
    var all: [Outcome] {
      lock.lock()
      defer { lock.unlock() }
      return outcomes
    }
  }

  /// Runs `body(worker)` on `count` threads at once (threads, not a dispatch pool, so that `count` processes
  /// really run together on two cores) and waits for them all.
  static func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchSemaphore(value: 0)
    for worker in 0..<count {
      let thread = Thread {
        body(worker)
        done.signal()
      }
      thread.start()
    }
    for _ in 0..<count { done.wait() }
  }

  /// The `Taskq-Op` trailers per task, from git's own parse of the history (oldest first).
  static func operationsByTask(_ repository: ScratchRepository) throws -> [String: [String]] {
    let out = try repository.git(
      "log", "--reverse",
      "--format=%(trailers:key=Taskq-Task,valueonly,separator=)|%(trailers:key=Taskq-Op,valueonly,separator=)",
      "refs/taskq/queue")
    var result: [String: [String]] = [:]
    for line in out.components(separatedBy: "\n") where !line.isEmpty {
      let parts = line.components(separatedBy: "|")
      result[parts[0], default: []].append(parts.count > 1 ? parts[1] : "")
    }
    return result
  }

  @Test func concurrentWritersLoseNothingAndDoubleNothing() throws {
    let repository = try ScratchRepository()
    let workers = 4
    let ownTasks = 30  // per worker: add each; cancel every third, remove every third
    let contested = 16  // S-k: added up front, every worker tries to cancel each
    let duplicates = 8  // D-k: every worker tries to add each
    let store = try repository.store(worker: "setup")
    for k in 0..<contested { try repository.addTask("S-\(k)", store: store) }
    let path = repository.path
    let ledger = Ledger()
    let start = monotonicSeconds()

    Self.onThreads(workers) { worker in
      func run(_ operation: String, _ id: String, _ arguments: [String]) {
        let outcome: Outcome
        do {
          let result = try Taskq.run(arguments, in: path, timeout: 120)
          outcome = Outcome(
            worker: worker, operation: operation, id: id, status: result.status, stderr: result.stderrText)
        } catch {
          outcome = Outcome(worker: worker, operation: operation, id: id, status: -2, stderr: "\(error)")
        }
        ledger.record(outcome)
      }
      var rng = SystemRandomNumberGenerator()
      var shared = (0..<contested).map { ("cancel", "S-\($0)") } + (0..<duplicates).map { ("add", "D-\($0)") }
      shared.shuffle(using: &rng)
      for i in 0..<ownTasks {
        let id = "W\(worker)-\(i)"
        run("add", id, ["add", "--id", id, "--task", "Task \(i) of worker \(worker)."])
        if i % 3 == 1 { run("cancel", id, ["cancel", "--id", id]) }
        if i % 3 == 2 { run("remove", id, ["remove", "--id", id]) }
        // Interleave the contested operations with the worker's own.
        if i % 2 == 0, let (operation, id) = shared.popLast() {
          run(operation, id, operation == "add" ? ["add", "--id", id, "--task", "dup"] : ["cancel", "--id", id])
        }
      }
      while let (operation, id) = shared.popLast() {
        run(operation, id, operation == "add" ? ["add", "--id", id, "--task", "dup"] : ["cancel", "--id", id])
      }
    }
    let duration = monotonicSeconds() - start
    let outcomes = ledger.all
    let acknowledged = outcomes.filter { $0.status == 0 }

    // Own tasks: every command succeeded (nobody else touches them).
    let own = outcomes.filter { $0.id.hasPrefix("W") }
    for failure in own where failure.status != 0 {
      Issue.record(
        "\(failure.operation) \(failure.id) by worker \(failure.worker) failed: \(failure.status) \(failure.stderr)")
    }
    // Contested cancels: exactly one wins; the others are told the task is cancelled.
    for k in 0..<contested {
      let attempts = outcomes.filter { $0.id == "S-\(k)" }
      #expect(attempts.count == workers)
      #expect(attempts.filter { $0.status == 0 }.count == 1, "S-\(k): \(attempts.map(\.status))")
      for loser in attempts where loser.status != 0 {
        #expect(loser.status == 1)
        #expect(loser.stderr.hasPrefix("error: cannot cancel task 'S-\(k)': it is 'cancelled'"), "\(loser.stderr)")
      }
    }
    // Contested adds: exactly one wins; the others are told it exists.
    for k in 0..<duplicates {
      let attempts = outcomes.filter { $0.id == "D-\(k)" }
      #expect(attempts.filter { $0.status == 0 }.count == 1, "D-\(k): \(attempts.map(\.status))")
      for loser in attempts where loser.status != 0 {
        #expect(
          loser.stderr
            == "error: task 'D-\(k)' already exists (choose another --id, or 'git taskq remove --id D-\(k)' first)\n")
      }
    }

    // The final queue holds exactly what was acknowledged.
    var expected: [String: String] = [:]
    for k in 0..<contested { expected["S-\(k)"] = "cancelled" }
    for k in 0..<duplicates { expected["D-\(k)"] = "todo" }
    for outcome in acknowledged where outcome.id.hasPrefix("W") {
      switch outcome.operation {
      case "add": expected[outcome.id] = "todo"
      case "cancel": expected[outcome.id] = "cancelled"
      default: expected[outcome.id] = nil
      }
    }
    let records = try repository.taskqOK("status", "--json").jsonObjects()
    let statuses = Dictionary(records.map { ($0["id"] as? String ?? "?", $0["status"] as? String ?? "?") }) { a, _ in a
    }
    #expect(records.count == statuses.count, "an id appears twice in status --json")
    #expect(statuses == expected)
    let legal = Set(TaskStatus.allCases.map(\.rawValue))
    #expect(records.allSatisfy { legal.contains($0["status"] as? String ?? "") })
    let seqs = records.compactMap { $0["seq"] as? Int }
    #expect(Set(seqs).count == records.count, "a sequence number was handed out twice")
    let recordIDs = try repository.queueRecordIDs()
    #expect(recordIDs.count == Set(recordIDs).count, "duplicate record.json in the tree")
    #expect(Set(recordIDs) == Set(expected.keys))

    // History: one commit per acknowledged write, one add per task, linear.
    let operations = try Self.operationsByTask(repository)
    let addCount = acknowledged.filter { $0.operation == "add" }.count + contested
    #expect(operations.values.flatMap { $0 }.filter { $0 == "add" }.count == addCount)
    for (id, ops) in operations {
      #expect(ops.filter { $0 == "add" }.count == 1, "\(id): \(ops)")
    }
    for outcome in acknowledged where outcome.operation != "add" {
      #expect(
        operations[outcome.id]?.filter { $0 == outcome.operation }.count == 1,
        "\(outcome.id): \(operations[outcome.id] ?? [])")
    }
    let commits = Int(try repository.git("rev-list", "--count", "refs/taskq/queue")) ?? -1
    #expect(commits == acknowledged.count + contested)
    #expect(try repository.git("rev-list", "--count", "--merges", "refs/taskq/queue") == "0")
    let fsck = try repository.fsck()
    #expect(fsck.status == 0 && fsck.output.isEmpty, "\(fsck.output)")

    print(
      "ConcurrencyTests: \(workers) processes at once, \(outcomes.count) operations, \(acknowledged.count) acknowledged, "
        + "\(commits) commits, \(String(format: "%.1f", duration)) s (\(String(format: "%.0f", Double(outcomes.count) / duration)) ops/s)"
    )
  }

  /// `remove A` racing `add B --depends-on A`: each validates against the tip it commits on, so exactly one
  /// wins, and no task is left depending on a removed one.
  @Test func aRemoveRacingADependentAddLetsExactlyOneWin() throws {
    let repository = try ScratchRepository()
    let rounds = 12
    let store = try repository.store(worker: "setup")
    for round in 0..<rounds { try repository.addTask("A-\(round)", store: store) }
    let path = repository.path
    let ledger = Ledger()
    for round in 0..<rounds {
      Self.onThreads(2) { side in
        // The remove is quicker (no repository to resolve): a random head start for the add varies the winner.
        if side == 0 { usleep(UInt32.random(in: 0...25_000)) }
        let (operation, arguments) =
          side == 0
          ? ("remove", ["remove", "--id", "A-\(round)"])
          : ("add", ["add", "--id", "B-\(round)", "--task", "x", "--depends-on", "A-\(round)"])
        let result = try? Taskq.run(arguments, in: path, timeout: 60)
        ledger.record(
          Outcome(
            worker: side, operation: operation, id: "\(round)", status: result?.status ?? -2,
            stderr: result?.stderrText ?? "could not run"))
      }
    }
    var removeWins = 0
    for round in 0..<rounds {
      let pair = ledger.all.filter { $0.id == "\(round)" }
      #expect(
        pair.filter { $0.status == 0 }.count == 1,
        "round \(round): \(pair.map { "\($0.operation) \($0.status) \($0.stderr)" })")
      if pair.contains(where: { $0.operation == "remove" && $0.status == 0 }) { removeWins += 1 }
      for loser in pair where loser.status != 0 {
        let expected =
          loser.operation == "remove"
          ? "error: cannot remove task 'A-\(round)': task 'B-\(round)' depends on it"
          : "error: task 'B-\(round)' depends on 'A-\(round)', which is not in the queue"
        #expect(loser.stderr.hasPrefix(expected), "\(loser.stderr)")
      }
    }
    let records = try repository.taskqOK("status", "--json").jsonObjects()
    let ids = Set(records.compactMap { $0["id"] as? String })
    for record in records {
      for dependency in record["depends_on"] as? [String] ?? [] {
        #expect(ids.contains(dependency), "\(record["id"] ?? "?") depends on removed \(dependency)")
      }
    }
    print(
      "ConcurrencyTests (remove vs dependent add): \(rounds) races, remove won \(removeWins), add won \(rounds - removeWins)"
    )
  }

  /// A writer loop killed with SIGKILL at random moments, several rounds: the queue stays readable, every
  /// acknowledged write is there, and the next writer proceeds (recovering a lock the victim left behind).
  @Test func writersKilledWithSIGKILLLeaveAReadableQueue() throws {
    let repository = try ScratchRepository()
    let work = repository.directory.path
    let script = """
      i=0
      while :; do
        if "$TASKQ_BINARY" add --id "K$ROUND-$i" --task "kill test"; then echo "K$ROUND-$i" >> "$ACKED"; fi
        if [ $((i % 2)) -eq 1 ]; then
          "$TASKQ_BINARY" cancel --id "K$ROUND-$i" && echo "cancel K$ROUND-$i" >> "$ACKED"
        fi
        i=$((i + 1))
      done
      """
    let rounds = 6
    var kills = 0
    var locksLeft = 0
    var acked: [String] = []
    let start = monotonicSeconds()
    for round in 0..<rounds {
      let ackedFile = "\(work)/acked-\(round)"
      let writer = try ProcessGroup(
        "sh", ["-c", "cd \"$REPO\" && " + script],
        environment: [
          "TASKQ_BINARY": Taskq.binary, "ROUND": "\(round)", "ACKED": ackedFile, "REPO": repository.path,
          "GIT_CONFIG_NOSYSTEM": "1",
        ])
      usleep(UInt32.random(in: 150_000...700_000))
      writer.signalGroup(SIGKILL)
      writer.wait()
      kills += 1
      acked += ((try? String(contentsOfFile: ackedFile, encoding: .utf8)) ?? "").components(separatedBy: "\n")
        .filter { !$0.isEmpty }

      // Readable right away.
      let status = try repository.taskq("status", "--json")
      #expect(status.status == 0, "round \(round): \(status.summary)")
      _ = try status.jsonObjects()

      // A lock the victim left: make it old enough to count as abandoned, and expect the warning.
      let lockLeft = FileManager.default.fileExists(atPath: repository.queueLockPath)
      if lockLeft {
        locksLeft += 1
        try backdate(repository.queueLockPath, "1 minute ago")
      }
      let next = try repository.taskq("add", "--id", "NEXT-\(round)", "--task", "after the kill")
      #expect(next.status == 0, "round \(round): \(next.summary)")
      #expect(
        next.stderrText.contains("warning: removed a stale lock") == lockLeft, "round \(round): \(next.stderrText)")
      #expect(!FileManager.default.fileExists(atPath: repository.queueLockPath))
    }

    let records = try repository.taskqOK("status", "--json").jsonObjects()
    let statuses = Dictionary(records.map { ($0["id"] as? String ?? "?", $0["status"] as? String ?? "?") }) { a, _ in a
    }
    #expect(statuses.count == records.count)
    for line in acked {
      if line.hasPrefix("cancel ") {
        let id = String(line.dropFirst("cancel ".count))
        #expect(statuses[id] == "cancelled", "acknowledged cancel of \(id) lost")
      } else {
        #expect(statuses[line] != nil, "acknowledged add of \(line) lost")
      }
    }
    let legal = Set(TaskStatus.allCases.map(\.rawValue))
    #expect(records.allSatisfy { legal.contains($0["status"] as? String ?? "") })
    let recordIDs = try repository.queueRecordIDs()
    #expect(recordIDs.count == Set(recordIDs).count)
    for (id, ops) in try Self.operationsByTask(repository) {
      #expect(ops.filter { $0 == "add" }.count == 1, "\(id): \(ops)")
    }
    let fsck = try repository.fsck()
    #expect(fsck.status == 0, "\(fsck.output)")
    #expect(!fsck.output.contains("error"), "\(fsck.output)")
    print(
      "ConcurrencyTests (SIGKILL): \(rounds) rounds, \(kills) kills, \(acked.count) acknowledged operations, "
        + "\(records.count) tasks, \(locksLeft) stale locks recovered, \(String(format: "%.1f", monotonicSeconds() - start)) s"
    )
  }

  /// The lock a writer killed between taking it and renaming it leaves behind (its writer lock still says
  /// `writing`): the next command removes it with one warning line and succeeds.
  @Test func aLockLeftByAKilledWriterIsRecoveredByTheNextCommand() throws {
    let repository = try ScratchRepository()
    try repository.taskqOK("add", "--id", "T-1", "--task", "x")
    let tip = try #require(try repository.queueTip())
    try "424242 killed-host writing\n".write(
      toFile: repository.path + "/.git/taskq/queue.writer", atomically: false, encoding: .utf8)
    #expect(FileManager.default.createFile(atPath: repository.queueLockPath, contents: Data((tip + "\n").utf8)))
    try backdate(repository.queueLockPath, "1 minute ago")
    let result = try repository.taskq("cancel", "--id", "T-1")
    #expect(result.status == 0, "\(result.summary)")
    #expect(result.stdoutText == "T-1: todo → cancelled\n")
    #expect(result.stderrLines.count == 1)
    #expect(result.stderrLines.first?.hasPrefix("warning: removed a stale lock '") == true, "\(result.stderrText)")
    #expect(result.stderrLines.first?.contains("refs/taskq/queue.lock") == true)
    #expect(!FileManager.default.fileExists(atPath: repository.queueLockPath))
    // Readers never needed the lock.
    #expect(try repository.taskqOK("status", "--json").jsonObjects().first?["status"] as? String == "cancelled")
  }
}
