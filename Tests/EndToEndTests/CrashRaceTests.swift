import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Crash and race: several processes of the real binary add, cancel, retry and claim (`run`) at once while
/// a killer sends SIGKILL at random moments. Afterwards `fsck` finds no damage, every acknowledged operation
/// is in the history, no task was claimed twice without a failure and a retry in between, and the next
/// writer proceeds. About half a minute on 2 cores; `TASKQ_SOAK=1` runs five times as long.
@Suite(.serialized) struct CrashRaceTests {
  /// What the slots did, and whom the killer killed; shared between threads.
  final class Ledger: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var acknowledged: [(operation: String, id: String)] = []
    private(set) var attempted = 0
    private(set) var kills = 0
    private var running: [Int: Int32] = [:]
    private var ids: [String] = []

    func begin(_ slot: Int, pid: Int32) { lock.withLock { running[slot] = pid } }
    func end(_ slot: Int) { lock.withLock { running[slot] = nil } }
    func ack(_ operation: String, _ id: String) {
      lock.withLock {
        acknowledged.append((operation, id))
        if operation == "add" { ids.append(id) }
      }
    }
    func attempt() { lock.withLock { attempted += 1 } }
    func anyID() -> String? { lock.withLock { ids.randomElement() } }

    /// The pid of a random slot's process, if one runs and is still a git-taskq.
    func randomRunningPID() -> Int32? {
      lock.withLock {
        guard let (_, pid) = running.randomElement(), pid > 1,
          let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
          command.contains("git-taskq")
        else { return nil }
        return pid
      }
    }

    /// SIGKILLs the process of a random slot, if one runs and is still ours.
    func killOne() {
      lock.withLock {
        guard let (_, pid) = running.randomElement(), pid > 1 else { return }
        // Only a git-taskq process: the pid file may be older than the process it named.
        guard let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8),
          command.contains("git-taskq")
        else { return }
        if Glibc.kill(pid, SIGKILL) == 0 { kills += 1 }
      }
    }
  }

  /// What a slot needs of the world (a `FakeWorld` stays on the test's thread).
  struct Place: Sendable {
    var path: String
    var state: String
    var environment: [String: String]
  }

  /// Runs `git-taskq ARGS` in the world, telling `ledger` its pid while it runs.
  static func run(_ world: Place, slot: Int, _ arguments: [String], ledger: Ledger) -> ProcessResult? {
    let pidFile = world.state + "/slot-\(slot)-\(UUID().uuidString).pid"
    let spec = ProcessSpec(
      "/bin/sh", ["-c", "echo $$ > \"$0\" && exec \"$@\"", pidFile, Taskq.binary] + arguments,
      environment: world.environment, inheritEnvironment: false, directory: world.path, timeout: 60)
    let watcher = Thread {
      for _ in 0..<200 {
        if let text = try? String(contentsOfFile: pidFile, encoding: .utf8),
          let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        {
          ledger.begin(slot, pid: pid)
          return
        }
        usleep(2_000)
      }
    }
    watcher.start()
    let result = try? ProcessRunner.run(spec)
    ledger.end(slot)
    try? FileManager.default.removeItem(atPath: pidFile)
    return result
  }

  @Test func killedAndRacingWritersNeverCorruptTheQueue() throws {
    let soak = ProcessInfo.processInfo.environment["TASKQ_SOAK"] == "1"
    let seconds: Double = soak ? 150 : 25
    let slots = 4
    let world = try FakeWorld()
    try world.config("taskq.runtime", "local")
    try world.config("taskq.agentProgram", "/bin/true")
    try world.config("taskq.lease", "600")
    let ledger = Ledger()
    let place = Place(path: world.path, state: world.state, environment: world.runEnvironment())
    let start = Date()
    let deadline = start.addingTimeInterval(seconds)
    let stop = DispatchSemaphore(value: 0)

    let killer = Thread {
      while Date() < deadline {
        usleep(UInt32.random(in: 30_000...250_000))
        if Bool.random() { ledger.killOne() }
      }
      stop.signal()
    }
    killer.start()

    let done = DispatchSemaphore(value: 0)
    for slot in 0..<slots {
      let thread = Thread {
        var n = 0
        while Date() < deadline {
          n += 1
          let roll = Int.random(in: 0..<100)
          let (operation, id): (String, String)
          switch roll {
          case 0..<40: (operation, id) = ("add", "C\(slot)-\(n)")
          case 40..<55: (operation, id) = ("cancel", ledger.anyID() ?? "C\(slot)-\(n)")
          case 55..<75: (operation, id) = ("retry", ledger.anyID() ?? "C\(slot)-\(n)")
          default: (operation, id) = ("run", "")
          }
          let arguments: [String]
          switch operation {
          case "add": arguments = ["add", "--id", id, "--task", "Crash-race task \(id)."]
          case "run": arguments = ["run", "--runtime", "local", "--max-parallel", "1"]
          default: arguments = [operation, "--id", id]
          }
          ledger.attempt()
          guard let result = Self.run(place, slot: slot, arguments, ledger: ledger) else { continue }
          if result.status == 0 && operation != "run" { ledger.ack(operation, id) }
        }
        done.signal()
      }
      thread.start()
    }
    for _ in 0..<slots { done.wait() }
    stop.wait()
    let elapsed = Date().timeIntervalSince(start)

    // The next writer proceeds (a lock left by a killed writer is recovered), and a last run recovers the
    // tasks whose worker was killed.
    let next = try world.taskq("add", "--id", "AFTER", "--task", "The next writer.")
    #expect(next.status == 0, "\(next.summary)")
    _ = try world.taskq("run", "--runtime", "local", "--max-parallel", "1")

    var violations: [String] = []
    // fsck: no damage.
    let fsck = try world.taskq("fsck")
    if fsck.status != 0 || fsck.stdoutText.contains("error:") { violations.append("fsck: \(fsck.stdoutText)") }
    let gitFsck = try world.repository.git("fsck", "--no-dangling", "--connectivity-only")
    if !gitFsck.isEmpty { violations.append("git fsck: \(gitFsck)") }

    // Every acknowledged operation is in the history; every added task exactly once.
    let history = try world.history()
    var commits: [String: [TaskQueue.Operation]] = [:]
    for entry in history { commits[entry.operation.task, default: []].append(entry.operation) }
    let records = Dictionary(uniqueKeysWithValues: try world.records().map { ($0.id, $0) })
    for (operation, id) in ledger.acknowledged {
      let ops = commits[id] ?? []
      switch operation {
      case "add":
        if records[id] == nil { violations.append("\(id): acknowledged add is missing") }
        if ops.filter({ $0.kind == "add" }).count != 1 {
          violations.append("\(id): added \(ops.filter { $0.kind == "add" }.count) times")
        }
      default:
        if !ops.contains(where: { $0.kind.rawValue == operation }) {
          violations.append("\(id): acknowledged \(operation) is missing")
        }
      }
    }
    let acknowledgedCounts = Dictionary(grouping: ledger.acknowledged, by: { "\($0.operation) \($0.id)" }).mapValues(
      \.count)
    for (key, count) in acknowledgedCounts where !key.hasPrefix("add ") {
      let parts = key.split(separator: " ").map(String.init)
      let committed = (commits[parts[1]] ?? []).filter { $0.kind.rawValue == parts[0] }.count
      if committed < count { violations.append("\(key): acknowledged \(count), committed \(committed)") }
    }

    // No double claim: each task's transitions form a chain (every `from` is the last `to`), and a claim
    // starts from todo, so a second claim needs a failure (or cancel) and a retry in between.
    var claims = 0
    for (id, ops) in commits {
      var status: TaskStatus?
      for op in ops {
        if op.kind == "claim" { claims += 1 }
        if let from = op.from, let current = status, from != current {
          violations.append("\(id): \(op.kind) from \(from.rawValue) while it was \(current.rawValue)")
        }
        if op.kind == "claim" && status != .todo {
          violations.append("\(id): claimed while \(status?.rawValue ?? "absent")")
        }
        status = op.to
      }
      if let record = records[id], record.status != status {
        violations.append("\(id): record says \(record.status.rawValue), history \(status?.rawValue ?? "none")")
      }
    }

    let figures =
      "crash-race: \(slots) processes at once, \(Int(elapsed)) s, \(ledger.attempted) commands, "
      + "\(ledger.acknowledged.count) operations acknowledged, \(claims) claims, \(ledger.kills) SIGKILLs, "
      + "\(records.count) tasks, \(history.count) commits, \(violations.count) violations"
    print(figures)
    #expect(violations.isEmpty, "\(figures)\n\(violations.prefix(20).joined(separator: "\n"))")
    #expect(ledger.kills > 0)
    #expect(ledger.acknowledged.count > 20)
  }
}
