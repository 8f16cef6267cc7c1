import Git
import Synchronization
import TaskQueue

@testable import Orchestrator

/// A clock that only moves when told, or when someone sleeps on it (a wait of 60 s takes no time).
final class FakeClock: WallClock {
  private let seconds: Mutex<Double>

  init(at start: Double = SystemClock().now()) { seconds = Mutex(start) }

  func now() -> Double { seconds.withLock { $0 } }
  func sleep(seconds delta: Double) { advance(delta) }
  func advance(_ delta: Double) { seconds.withLock { $0 += delta } }
}

/// The interrupt flag of a run (Ctrl-C, SIGTERM), raised by a test.
final class FakeInterrupt: Sendable {
  private let raised = Atomic<Bool>(false)
  func raise() { raised.store(true, ordering: .relaxed) }
  var isRaised: Bool { raised.load(ordering: .relaxed) }
}

/// A container engine that keeps its containers in memory and records what it was asked.
final class FakeContainers: ContainerRuntime {
  struct State {
    var started: [ContainerRequest] = []
    /// Containers and whether they run.
    var running: [String: Bool] = [:]
    var stopped: [String] = []
    var removed: [String] = []
  }
  let state = Mutex(State())
  /// What `start` does: nil starts the container; an error is thrown instead.
  let startFailure: (any Error & Sendable)?
  /// Whether a started container stays running (false: it exits at once, as a broken image does).
  let staysUp: Bool

  init(startFailure: (any Error & Sendable)? = nil, staysUp: Bool = true) {
    self.startFailure = startFailure
    self.staysUp = staysUp
  }

  var started: [ContainerRequest] { state.withLock { $0.started } }
  var stopped: [String] { state.withLock { $0.stopped } }

  func start(_ request: ContainerRequest, shouldStop: (() -> Bool)?) throws -> ProcessResult {
    if let startFailure { throw startFailure }
    state.withLock {
      $0.started.append(request)
      $0.running[request.name] = staysUp
    }
    return .fake(stdout: "0123456789ab\n")
  }

  func execSpec(container: String, directory: String, _ argv: [String], timeout: Double) -> ProcessSpec {
    ProcessSpec("taskq-fake-docker", ["exec", "-w", directory, container] + argv, timeout: timeout)
  }

  func isRunning(_ name: String) -> Bool? { state.withLock { $0.running[name] } }

  func isOurs(_ name: String, of record: TaskRecord, queue: String) -> Bool {
    name.hasPrefix("task-\(record.id)-")
  }

  func stop(_ name: String, grace: Int) throws -> ProcessResult {
    state.withLock {
      $0.stopped.append(name)
      if $0.running[name] != nil { $0.running[name] = false }
    }
    return .fake()
  }

  func remove(_ name: String) throws -> ProcessResult {
    state.withLock {
      $0.removed.append(name)
      $0.running[name] = nil
    }
    return .fake()
  }

  func logTail(_ name: String, lines: Int) -> String? { "log of \(name)" }
}

/// A server health that answers `status` after `failures` unanswered probes (nil: never answers).
final class FakeHealth: HealthProbe {
  let status: Int?
  private let probes = Atomic<Int>(0)
  let failures: Int

  init(status: Int? = 200, after failures: Int = 0) {
    self.status = status
    self.failures = failures
  }

  var count: Int { probes.load(ordering: .relaxed) }

  func httpStatus(port: Int, path: String, timeout: Double, authorization: String?) -> Int? {
    let n = probes.add(1, ordering: .relaxed).newValue
    return n > failures ? status : nil
  }
}

/// One agent stage as the fake agent sees it: which command, for which task, in which session.
struct AgentCall: Sendable {
  var spec: ProcessSpec
  /// `make-plan` or `execute-plan` (the `--command` of the call).
  var command: String
  var task: String
  var session: String?
}

/// An agent that plays each stage with a closure: it gets the call and the pipeline's `shouldStop`, and
/// returns how the stage ended.
final class FakeAgent: AgentRunner {
  typealias Stage = @Sendable (AgentCall, () -> Bool) throws -> ProcessResult
  let calls = Mutex<[AgentCall]>([])
  let play: Stage

  init(_ play: @escaping Stage) { self.play = play }

  /// An agent whose plan prints a session id and whose every stage succeeds.
  static func succeeding(session: String = "ses_fake1") -> FakeAgent {
    FakeAgent { call, _ in
      .fake(stdout: call.command == "make-plan" ? #"{"type":"step","sessionID":"\#(session)"}"# : "done")
    }
  }

  var recorded: [AgentCall] { calls.withLock { $0 } }

  func run(_ spec: ProcessSpec, shouldStop: @escaping () -> Bool) throws -> ProcessResult {
    let arguments = spec.arguments
    let command = arguments.firstIndex(of: "--command").map { arguments[$0 + 1] } ?? ""
    let session = arguments.firstIndex(of: "--session").map { arguments[$0 + 1] }
    let call = AgentCall(
      spec: spec, command: command, task: spec.environment["TASKQ_TASK_ID"] ?? "", session: session)
    calls.withLock { $0.append(call) }
    return try play(call, shouldStop)
  }

  /// Polls `shouldStop` as a long agent would (the clock moving one second per poll) until it says stop;
  /// a stage that is never stopped ends as a failure after `limit` polls.
  static func runUntilStopped(_ shouldStop: () -> Bool, clock: FakeClock, limit: Int = 50) -> ProcessResult {
    for _ in 0..<limit {
      if shouldStop() { return ProcessResult(ending: .stopped, stdout: [], stderr: [], duration: 0) }
      clock.advance(1.5)
    }
    return .fake(status: 99, stderr: "the fake agent was never stopped")
  }
}

extension ProcessResult {
  static func fake(status: Int32 = 0, stdout: String = "", stderr: String = "") -> ProcessResult {
    ProcessResult(ending: .exited(status), stdout: Array(stdout.utf8), stderr: Array(stderr.utf8), duration: 0.01)
  }
}
