import Foundation
import TaskQueue
import TaskqTestSupport
import Testing

@testable import Orchestrator

/// How many tasks a claim round of `run --remote` takes ahead (issue 13, point 4), on a real queue in a
/// scratch repository: the workers seen elsewhere (``TaskRunner/claimAhead(store:slots:)``) and the desk's
/// limit, which follows how long the run's tasks take (``ClaimDesk``).
@Suite struct ClaimAheadCountTests {
  /// Another machine's tasks claimed ahead and not started are no workers: a machine holding four tasks of
  /// which it runs one counts once, so the rule does not stop claiming ahead because others claimed ahead
  /// too. Once it has started all four (a step after each claim), it counts four times.
  @Test func tasksClaimedAheadElsewhereAreNoWorkers() throws {
    let bench = try PipelineBench()
    for i in 1...30 { try bench.add(String(format: "T-%02d", i)) }
    let other = try bench.store(worker: "other:9")
    var held: [String] = []
    for _ in 0..<4 { held.append(try #require(try other.claimNext(leaseSeconds: 600)).id) }
    // The first of them started: a step after its claim.
    _ = try other.renewLease(held[0], seconds: 600)
    let mine = try bench.store(worker: "mine:1")

    let (ahead, seen) = try TaskRunner.claimAhead(store: mine, slots: 1)
    // 26 claimable; seen: this worker and the one task the other machine runs.
    #expect(seen == 2)
    #expect(ahead == 26 - 2 * 2)

    for id in held.dropFirst() { _ = try other.renewLease(id, seconds: 600) }
    let (aheadAfter, seenAfter) = try TaskRunner.claimAhead(store: mine, slots: 1)
    #expect(seenAfter == 5)
    #expect(aheadAfter == 26 - 2 * 5)
  }

  /// Claims with only claims of their worker after them (one round's, whose tasks may be starting right
  /// now, their first steps not fetched yet) count as workers; once that worker has recorded a step of one
  /// of them, the others are taken as claimed ahead.
  @Test func claimsWithNothingElseAfterThemCount() throws {
    let bench = try PipelineBench()
    for i in 1...20 { try bench.add(String(format: "T-%02d", i)) }
    let other = try bench.store(worker: "other:9")
    var claimed: [String] = []
    for _ in 0..<3 { claimed.append(try #require(try other.claimNext(leaseSeconds: 600)).id) }
    let mine = try bench.store(worker: "mine:1")
    let (ahead, seen) = try TaskRunner.claimAhead(store: mine, slots: 1)
    #expect(seen == 4)
    #expect(ahead == 17 - 2 * 4)

    _ = try other.renewLease(claimed[0], seconds: 600)
    let (aheadAfter, seenAfter) = try TaskRunner.claimAhead(store: mine, slots: 1)
    #expect(seenAfter == 2)
    #expect(aheadAfter == 17 - 2 * 2)
  }

  /// A later round's claims with nothing after them count at most as many as the fewest claims a round of
  /// that worker made: a machine of one worker whose first round claimed one task and whose second claimed
  /// five (one and four ahead) counts as its started task plus one, not six.
  @Test func aLaterRoundCountsAtMostAsManyAsTheSmallestRound() throws {
    let bench = try PipelineBench()
    for i in 1...20 { try bench.add(String(format: "T-%02d", i)) }
    let other = try bench.store(worker: "other:9")
    let first = try #require(try other.claimNext(leaseSeconds: 600))
    _ = try other.renewLease(first.id, seconds: 600)
    for _ in 0..<5 { _ = try #require(try other.claimNext(leaseSeconds: 600)) }
    let (ahead, seen) = try TaskRunner.claimAhead(store: try bench.store(worker: "mine:1"), slots: 1)
    #expect(seen == 3)
    #expect(ahead == 14 - 2 * 3)
  }

  /// Quick tasks (no reserve): a round may take the tasks the reserve would have left to others.
  @Test func withoutAReserveARoundMayTakeWhatIsLeft() throws {
    let bench = try PipelineBench()
    for i in 1...20 { try bench.add(String(format: "T-%02d", i)) }
    let other = try bench.store(worker: "other:9")
    let started = try #require(try other.claimNext(leaseSeconds: 600))
    _ = try other.renewLease(started.id, seconds: 600)
    let mine = try bench.store(worker: "mine:1")

    // 19 claimable, 2 workers seen.
    #expect(try TaskRunner.claimAhead(store: mine, slots: 1) == (19 - 2 * 2, 2))
    #expect(try TaskRunner.claimAhead(store: mine, slots: 1, reserve: 0) == (19, 2))
    // A shallow queue: 3 claimable. With the reserve nothing ahead.
    for _ in 0..<16 { _ = try #require(try other.claimNext(leaseSeconds: 600)) }
    #expect(try TaskRunner.claimAhead(store: mine, slots: 1).ahead == 0)
    #expect(try TaskRunner.claimAhead(store: mine, slots: 1, reserve: 0).ahead == 3)
  }

  /// The desk claims ``ClaimDesk/aheadLimit`` ahead while tasks take seconds, and more, up to
  /// ``ClaimDesk/quickAheadLimit``, when they finish quickly; never in the first round.
  @Test func theDeskClaimsFurtherAheadWhenTasksAreQuick() throws {
    let bench = try PipelineBench()
    var records: [TaskRecord] = []
    for i in 1...20 { records.append(try bench.add(String(format: "T-%02d", i))) }
    let clock = DeskClock()
    let desk = ClaimDesk(slots: 1, aheadLimit: 2, quickAheadLimit: 6, now: { clock.date })
    var asked: [Int] = []
    var next = 0
    func take(lasting seconds: Double) throws {
      let record = try #require(
        try desk.next { free, ahead in
          asked.append(ahead)
          defer { next += free }
          return Array(records[next..<(next + free)])
        })
      clock.date += seconds
      desk.done(record.id)
    }
    try take(lasting: 3)  // the first round: nothing ahead
    try take(lasting: 3)  // 3 s per task: the base limit
    #expect(asked == [0, 2])
    // Quick tasks: the average falls below 2 s / 6 and the desk asks for up to 6.
    for _ in 0..<12 { try take(lasting: 0.01) }
    #expect(asked.last == 6, "\(asked)")
    #expect(asked.allSatisfy { $0 <= 6 })
  }
}

extension ClaimAheadCountTests {
  /// Quick tasks only once ``ClaimDesk/quickEvidence`` have finished; then the desk holds more, and when
  /// a task turns out slow (it has run longer than the held tasks may add up to), what it holds beyond
  /// ``ClaimDesk/aheadLimit`` comes off the desk (``ClaimDesk/excess()``), the last claimed first.
  @Test func aSlowTaskAfterQuickOnesReleasesWhatTheDeskHeldForThem() throws {
    let bench = try PipelineBench()
    var records: [TaskRecord] = []
    for i in 1...40 { records.append(try bench.add(String(format: "T-%02d", i))) }
    let clock = DeskClock()
    let desk = ClaimDesk(slots: 1, aheadLimit: 2, quickAheadLimit: 6, now: { clock.date })
    var asked: [Int] = []
    var next = 0
    func take() throws -> TaskRecord {
      try #require(
        try desk.next { free, ahead in
          asked.append(ahead)
          defer { next += free + ahead }
          return Array(records[next..<(next + free + ahead)])
        })
    }
    // Quick tasks, one after another: after the first the desk holds more ahead (the quick limit), after
    // ``ClaimDesk/quickEvidence`` it takes the run for a quick one (no reserve).
    var finished = 0
    var slow: TaskRecord?
    while finished < 20 {
      #expect(desk.tasksAreQuick == (finished >= ClaimDesk.quickEvidence))
      let record = try take()
      if finished >= ClaimDesk.quickEvidence && desk.held().count >= 3 {
        slow = record
        break
      }
      clock.date += 0.01
      desk.done(record.id)
      finished += 1
    }
    // The first round asked nothing ahead, the second (after one quick task) the quick limit.
    #expect(Array(asked.prefix(2)) == [0, 6], "\(asked)")
    let running = try #require(slow, "\(asked)")
    #expect(desk.excess().isEmpty)
    let held = desk.held().map(\.id)
    #expect(held.count >= 3)
    // The task taken has run 5 s: the desk may hold the base limit only.
    clock.date += 5
    #expect(!desk.tasksAreQuick)
    let excess = desk.excess().map(\.id)
    #expect(excess == Array(held.dropFirst(2)))
    #expect(desk.held().map(\.id) == Array(held.prefix(2)))
    desk.done(running.id)
  }
}

/// The desk's time in ``ClaimAheadCountTests``, moved by the test (one thread).
private final class DeskClock {
  var date = Date(timeIntervalSince1970: 1_000_000)
}
