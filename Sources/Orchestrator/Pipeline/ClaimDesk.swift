import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Where the workers of one `run --remote` process wait for a task: one of them claims for every free
/// worker (one round: several claims, one push), and hands the others what it won.
///
/// Without it, each worker claimed on its own, one sync after another, and the workers of one machine
/// queued for the process's single sync; with it, `N` free workers cost one round trip, not `N`.
///
/// **Claims ahead.** When the queue is deep, a round may claim up to ``aheadLimit`` tasks more than there
/// are free workers (see ``TaskRunner/claimAhead(store:slots:)`` for when): one landed push then carries
/// several claims, which is what bounds the rate of several machines sharing one remote. Those tasks are
/// *held*: claimed and published, waiting here for the next free worker. While they wait, their leases are
/// renewed and a `cancel` from elsewhere takes them off the desk (``held()``, ``replace(_:)``,
/// ``remove(_:)``, driven by the run's keeper); a run that ends or is interrupted gives them back
/// (``drain()``).
///
/// How many may be held depends on how long this run's tasks take: ``aheadLimit`` while they take seconds
/// or more (or none has finished yet), up to ``quickAheadLimit`` when they finish in a fraction of a second,
/// so that what is held is about ``heldSeconds`` of work (see ``aheadAllowed``).
final class ClaimDesk: @unchecked Sendable {
  /// Workers of the pool: a round claims for every one that is not running a task.
  let slots: Int
  /// The most tasks a round may claim beyond the free workers, whatever the tasks' duration (0: never).
  let aheadLimit: Int
  /// The most tasks a round may claim beyond the free workers when the tasks are quick.
  let quickAheadLimit: Int
  /// Seconds of work (at the pace this run's tasks have gone so far) that the held tasks may add up to.
  static let heldSeconds = 2.0
  /// When the task each busy worker was handed began, by task id.
  private var startedAt: [String: Date] = [:]
  /// A moving average of how long this run's tasks took, in seconds (`nil` before the first finished).
  private var averageDuration: Double?
  /// Tasks of this run finished so far.
  private var finished = 0
  /// How many tasks must have finished before the desk takes this run's tasks for quick ones, leaving no
  /// reserve for other machines (``tasksAreQuick``): one quick task (an agent that failed at once) says
  /// little about the next. Holding more ahead needs one (the reserve still applies then).
  static let quickEvidence = 3
  private let condition = Condition()
  /// Workers running a task (given one by ``next(_:)``, not yet ``done()``).
  private var busy = 0
  /// Claimed and published, not yet taken by a worker.
  private var ready: [TaskRecord] = []
  private var claiming = false
  /// Rounds finished so far, and whether the last one found nothing to claim.
  private var rounds = 0
  private var lastRoundEmpty = false

  /// The time (tests give their own).
  private let now: () -> Date

  init(slots: Int, aheadLimit: Int = 0, quickAheadLimit: Int? = nil, now: @escaping () -> Date = { Date() }) {
    self.now = now
    self.slots = max(1, slots)
    self.aheadLimit = max(0, aheadLimit)
    self.quickAheadLimit = self.aheadLimit == 0 ? 0 : max(self.aheadLimit, quickAheadLimit ?? 0)
  }

  /// The worker given task `id` by ``next(_:)`` has finished it.
  func done(_ id: String) {
    condition.withLock {
      busy -= 1
      guard let start = startedAt.removeValue(forKey: id) else { return }
      let seconds = max(0, now().timeIntervalSince(start))
      averageDuration = averageDuration.map { 0.7 * $0 + 0.3 * seconds } ?? seconds
      finished += 1
    }
  }

  /// The most tasks a round may claim beyond the free workers now: ``aheadLimit``, or more when this run's
  /// tasks are quick, as many as the pool runs in ``heldSeconds`` (at most ``quickAheadLimit``).
  /// Called with the lock held.
  ///
  /// A task running now counts with the time it has run so far, when that is longer than the average: a
  /// run of quick tasks followed by a slow one stops claiming far ahead while the slow one still runs.
  private var aheadAllowed: Int {
    guard quickAheadLimit > aheadLimit, var average = averageDuration else { return aheadLimit }
    let date = now()
    for start in startedAt.values { average = max(average, date.timeIntervalSince(start)) }
    let pace = Double(slots) * Self.heldSeconds / max(average, 0.01)
    return min(quickAheadLimit, max(aheadLimit, Int(pace)))
  }

  /// Takes off the desk the waiting tasks beyond ``aheadLimit`` once a running task has taken longer than
  /// ``heldSeconds`` (this run's tasks are not quick after all), the last claimed first, for the caller to
  /// give back: tasks claimed ahead for quick work do not wait behind a slow one while other machines could
  /// run them.
  func excess() -> [TaskRecord] {
    condition.withLock {
      let date = now()
      let slow = startedAt.values.contains { date.timeIntervalSince($0) > Self.heldSeconds }
      guard ready.count > aheadLimit, slow else { return [] }
      let keep = aheadLimit
      defer { ready.removeLast(ready.count - keep) }
      return Array(ready[keep...])
    }
  }

  /// Whether this run's tasks are known to finish so quickly (``quickEvidence`` of them have) that the desk
  /// may hold more than ``aheadLimit``: the tasks it holds then add up to at most ``heldSeconds`` of work, and
  /// a round need not leave tasks for the workers seen elsewhere (see ``TaskRunner/claimAhead``).
  var tasksAreQuick: Bool { condition.withLock { finished >= Self.quickEvidence && aheadAllowed > aheadLimit } }

  /// A task for the calling worker, or `nil` when a round that finished after this call began found
  /// nothing to claim (or the run was interrupted: held tasks then stay on the desk, for ``drain()``).
  ///
  /// `round` claims for the given number of free workers, and at most the second number more ahead, and
  /// returns those this process won (their claims pushed); it runs on the calling thread, one round at a
  /// time, and what it throws is thrown here.
  func next(_ round: (_ free: Int, _ ahead: Int) throws -> [TaskRecord]) throws -> TaskRecord? {
    condition.lock()
    defer { condition.unlock() }
    let start = rounds
    while true {
      if Interrupts.isRequested { return nil }
      if !ready.isEmpty {
        busy += 1
        let record = ready.removeFirst()
        startedAt[record.id] = now()
        return record
      }
      if rounds > start && lastRoundEmpty { return nil }
      if claiming {
        _ = condition.wait(until: Date().addingTimeInterval(0.2))
        continue
      }
      claiming = true
      // Every free worker, including those still finishing their task's last steps: they come next.
      let want = max(1, slots - busy - ready.count)
      // Not in the first round: it has not seen yet who else claims (see TaskRunner.claimAhead).
      let ahead = rounds == 0 ? 0 : max(0, aheadAllowed - ready.count)
      condition.unlock()
      var won: [TaskRecord] = []
      var failure: (any Error)?
      do { won = try round(want, ahead) } catch { failure = error }
      condition.lock()
      claiming = false
      rounds += 1
      lastRoundEmpty = won.isEmpty && failure == nil
      ready += won
      condition.broadcast()
      if let failure {
        // The tasks this round did win stay for the other workers.
        throw failure
      }
    }
  }

  /// The tasks waiting for a worker now.
  func held() -> [TaskRecord] { condition.withLock { ready } }

  /// Replaces a waiting task's record (its lease renewed); `false` when a worker took it meanwhile.
  @discardableResult
  func replace(_ record: TaskRecord) -> Bool {
    condition.withLock {
      guard let index = ready.firstIndex(where: { $0.id == record.id }) else { return false }
      ready[index] = record
      return true
    }
  }

  /// Takes a waiting task off the desk (cancelled or taken elsewhere); `false` when a worker took it
  /// meanwhile.
  func remove(_ id: String) -> Bool {
    condition.withLock {
      guard let index = ready.firstIndex(where: { $0.id == id }) else { return false }
      ready.remove(at: index)
      return true
    }
  }

  /// Takes every waiting task off the desk, to be given back: the run ends.
  func drain() -> [TaskRecord] {
    condition.withLock {
      defer { ready = [] }
      return ready
    }
  }
}
