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
final class ClaimDesk: @unchecked Sendable {
  /// Workers of the pool: a round claims for every one that is not running a task.
  let slots: Int
  private let condition = Condition()
  /// Workers running a task (given one by ``next(_:)``, not yet ``done()``).
  private var busy = 0
  /// Claimed and published, not yet taken by a worker.
  private var ready: [TaskRecord] = []
  private var claiming = false
  /// Rounds finished so far, and whether the last one found nothing to claim.
  private var rounds = 0
  private var lastRoundEmpty = false

  init(slots: Int) { self.slots = max(1, slots) }

  /// The worker given a task by ``next(_:)`` has finished it.
  func done() { condition.withLock { busy -= 1 } }

  /// A task for the calling worker, or `nil` when a round that finished after this call began found
  /// nothing to claim (or the run was interrupted).
  ///
  /// `round` claims up to the given number of tasks and returns those this process won (their claims
  /// pushed); it runs on the calling thread, one round at a time, and what it throws is thrown here.
  func next(_ round: (Int) throws -> [TaskRecord]) throws -> TaskRecord? {
    condition.lock()
    defer { condition.unlock() }
    let start = rounds
    while true {
      if !ready.isEmpty {
        busy += 1
        return ready.removeFirst()
      }
      if Interrupts.isRequested { return nil }
      if rounds > start && lastRoundEmpty { return nil }
      if claiming {
        _ = condition.wait(until: Date().addingTimeInterval(0.2))
        continue
      }
      claiming = true
      // Every free worker, including those still finishing their task's last steps: they come next.
      let want = max(1, slots - busy - ready.count)
      condition.unlock()
      var won: [TaskRecord] = []
      var failure: (any Error)?
      do { won = try round(want) } catch { failure = error }
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
}
