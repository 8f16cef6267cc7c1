import Git
import Synchronization
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#endif

/// The worker pool of `run`: up to `maxParallel` threads, each claiming tasks through the queue's
/// compare-and-swap and driving them to review, until nothing is claimable (or forever with `--poll`).
// `@unchecked`: `publisher` and `transport` are set by `run()` before any worker thread starts and cleared
// after they all ended; the worker threads only read them.
public final class TaskRunner: @unchecked Sendable {
  let gitDirectory: String
  let settings: RunSettings
  let options: RunOptions
  let events: RunEvents
  let worker: String
  /// The container engine, agent, health probe, clock and interrupt every pipeline of this pool uses.
  let environment: RunEnvironment

  /// A pool over the queue in `gitDirectory` (the queue repository's git directory; each worker thread
  /// opens its own handle on it), with `settings` and `options`, reporting to `events` as `worker`.
  public init(
    gitDirectory: String, settings: RunSettings, options: RunOptions, events: RunEvents,
    worker: String = WorkerProcess.current, environment: RunEnvironment? = nil
  ) {
    self.gitDirectory = gitDirectory
    self.settings = settings
    self.options = options
    self.events = events
    self.worker = worker
    let claimsAhead = options.remote != nil && options.onlyID == nil
    self.desk = ClaimDesk(
      slots: options.maxParallel, aheadLimit: claimsAhead ? Self.aheadPerSlot * max(1, options.maxParallel) : 0,
      quickAheadLimit: claimsAhead ? Self.quickAheadPerSlot * max(1, options.maxParallel) : 0)
    self.environment = environment ?? .live(settings: settings)
  }

  /// Marks `planning`/`building` tasks whose worker is gone as `failed` ("worker lost"), so they are not
  /// stuck forever, and stops what such a worker of this host left running (its agents, its container).
  /// Returns their ids.
  ///
  /// A worker of this host is known dead at once: its recorded pid and process start time no longer match
  /// a live process (see ``WorkerProcess``). Other workers are lost when their lease expired.
  @discardableResult
  public func recoverLostWorkers() throws -> [String] {
    let store = try openStore()
    var recovered: [String] = []
    for record in try store.recoverStale(report: { record in
      ErrorReport(
        record: record, stage: record.status.rawValue, summary: "worker lost", worker: worker,
        note:
          "The lease of worker \(record.worker ?? "?") expired at \(record.leaseExpiresAt ?? "?") while the task was \(record.status.rawValue): the worker stopped renewing it (killed, crashed, or cut off). `retry` brings the task back."
      ).markdown
    }) {
      recovered.append(record.id)
      events.event(record.id, "lease expired: worker lost", to: .failed)
      if let owner = record.worker.flatMap(WorkerProcess.init), owner.isOnThisHost, !owner.isAlive {
        stopLeftovers(of: record, store: store)
      }
    }
    // A dead process of this host: only without a remote, where a worker name (host:pid) is unique. Across
    // machines two hosts may share a name; there the lease decides.
    for record in try store.snapshot().records() where record.status.isActive && options.remote == nil {
      guard let owner = record.worker, let process = WorkerProcess(owner), process.isOnThisHost, !process.isAlive
      else { continue }
      let report = ErrorReport(
        record: record, stage: record.status.rawValue, summary: "worker lost", worker: worker,
        note:
          "Worker \(owner) no longer exists on this host (it was killed or crashed) while the task was \(record.status.rawValue). `retry` brings the task back."
      )
      do {
        try store.fail(
          record.id, kind: .recover, summary: "worker lost (\(owner))", report: report.markdown, requireWorker: owner)
        recovered.append(record.id)
        events.event(record.id, "worker \(owner) lost", from: record.status, to: .failed)
        stopLeftovers(of: record, store: store)
      } catch QueueError.lostClaim {
        continue
      }
    }
    try repairHalfMadeWorktrees(store: store)
    return recovered
  }

  /// Stops the agents a lost worker of this host left in the task's worktree and removes the task's
  /// container (only this queue's container of this task), so nothing of the attempt keeps running.
  func stopLeftovers(of record: TaskRecord, store: QueueStore) {
    if let worktree = record.worktreePath {
      let pids = AgentProcesses.stop(taskID: record.id, worktree: worktree)
      if !pids.isEmpty {
        events.event(record.id, "stopped the agent left running (pid \(pids.map(String.init).joined(separator: " ")))")
      }
    }
    guard record.container != nil, ProcessRunner.resolve(settings.containerProgram) != nil else { return }
    let current = (try? store.snapshot().record(record.id)) ?? nil
    let result = Cleaner(settings: settings, queueDirectory: store.repository.commonDirectory)
      .removeContainer(current ?? record)
    for name in result.removedContainers { events.event(record.id, "removed container \(name)") }
    if !result.removedContainers.isEmpty {
      do {
        _ = try store.recordCleanup(record.id, result: result.keepingWorktree())
      } catch {
        events.note("warning: \(record.id): the removal of its container could not be recorded: \(error)")
      }
    }
  }

  /// Removes worktree registrations that a worker killed inside libgit2's worktree creation left half-written
  /// (for tasks no live worker holds): nothing ran in them, and `git fsck` would report them.
  func repairHalfMadeWorktrees(store: QueueStore) throws {
    let records = try store.snapshot().records()
    let cleaner = Cleaner(settings: settings, queueDirectory: store.repository.commonDirectory)
    for line in cleaner.repairHalfMadeWorktrees(records, queueRepository: store.repository.mainWorkingDirectory) {
      events.note(line)
    }
  }

  /// Runs the pool; returns each processed task's outcome, in the order they finished.
  public func run() throws -> [(String, Outcome)] {
    // With a remote: one publisher and one claim desk for all the workers of this process, and ssh
    // connections kept open between their fetches and pushes.
    let transport = GitCLITransport(gitDirectory: gitDirectory, reusesConnections: true)
    if let remote = options.remote {
      publisher = RemotePublisher(
        gitDirectory: gitDirectory, worker: worker, remote: remote, events: events, transport: transport,
        pollInterval: remotePollInterval)
      publisher?.start()
    }
    defer {
      publisher?.stop()
      publisher = nil
      if options.remote != nil { transport.closeConnections() }
    }
    self.transport = transport
    // Tasks claimed ahead wait on the desk: their leases are renewed and a remote `cancel` takes them off
    // while they wait; whatever is left when the run ends is given back (before the publisher's last push,
    // which carries the releases).
    let keeper = options.remote != nil && desk.aheadLimit > 0 ? try HeldClaimsKeeper.start(runner: self) : nil
    defer {
      keeper?.stop()
      giveBackHeld()
    }
    var first: TaskRecord?
    if let id = options.onlyID {
      // Claimed here so that a task that is not runnable is a clear error before anything starts.
      // With a remote, the claim counts only once it is pushed, as for every worker.
      let store = try openStore()
      let sync = options.remote.map { _ in QueueSync.forRemote(store: store, transport: transport) }
      first = try claim(store: store, sync: sync, only: id)
    }
    let count = options.onlyID != nil ? 1 : max(1, options.maxParallel)
    var threads: [PosixThread] = []
    let errors = ErrorBox()
    for index in 0..<count {
      let initial = index == 0 ? first : nil
      let thread = try PosixThread(stackSize: 4 << 20) { [self] in
        do {
          try workerLoop(initial: initial)
        } catch {
          errors.set(error)
        }
      }
      threads.append(thread)
    }
    for thread in threads { thread.join() }
    if let error = errors.value { throw error }
    return events.stop()
  }

  /// With a remote: the process's publisher, claim desk and transport (set by ``run()``).
  private var publisher: RemotePublisher?
  private let desk: ClaimDesk
  private var transport: GitCLITransport?
  /// Seconds between the publisher's fetches while tasks run (how soon a remote `cancel` arrives).
  var remotePollInterval: Double = 2

  private func workerLoop(initial: TaskRecord?) throws {
    let store = try openStore()
    let sync = options.remote.map { _ in
      QueueSync.forRemote(store: store, transport: transport ?? GitCLITransport(gitDirectory: gitDirectory))
    }
    let pipeline = TaskPipeline(
      store: store, settings: settings, options: options, events: events, sync: sync, environment: environment)
    pipeline.publisher = publisher
    func process(_ record: TaskRecord) {
      publisher?.taskRunning(true)
      defer { publisher?.taskRunning(false) }
      events.finished(record.id, pipeline.process(record))
    }
    if let initial {
      process(initial)
      return
    }
    while !environment.isInterrupted() {
      let next =
        sync == nil
        ? try claim(store: store, sync: nil)
        : try desk.next { free, ahead in try claimRound(store: store, sync: sync, count: free, ahead: ahead) }
      if let claimed = next {
        guard sync != nil else {
          process(claimed)
          continue
        }
        defer { desk.done(claimed.id) }
        // A task claimed ahead may have been cancelled (or recovered) elsewhere while it waited; a local
        // queue that cannot be read now is the pipeline's to report, at its first step.
        let current: TaskRecord?
        do { current = try heldTaskToStart(claimed, store: store) } catch { current = claimed }
        if let current { process(current) }
        continue
      }
      guard let poll = options.poll else { return }
      let until = environment.clock.now() + poll
      while environment.clock.now() < until && !environment.isInterrupted() { environment.clock.sleep(seconds: 0.1) }
    }
  }

  /// Claims the next task (see ``claimRound(store:sync:count:only:)``).
  func claim(store: QueueStore, sync: QueueSync?, only id: String? = nil) throws -> TaskRecord? {
    try claimRound(store: store, sync: sync, count: 1, only: id).first
  }

  /// How many of the first claimable tasks (of the highest priority) a claim through a remote picks from
  /// at random, so that machines do not all go for the same task: twice the claims that all the workers
  /// seen would make in such a round (`count` per worker, `seen` workers), at least 8.
  static func claimSpread(count: Int, seen: Int = 1) -> Int { max(8, 2 * count * max(1, seen)) }

  /// How many tasks a claim round may claim beyond its free workers, per worker of this process: one landed
  /// push then carries up to `1 + aheadPerSlot` claims per worker (see ``claimAhead(store:slots:)``).
  static let aheadPerSlot = 2

  /// As ``aheadPerSlot``, when this run's tasks finish in well under a second (see ``ClaimDesk``): a landed
  /// push then carries up to `1 + quickAheadPerSlot` claims per worker.
  static let quickAheadPerSlot = 24

  /// How many tasks a round may claim ahead (beyond its free workers) on the local queue, taken after the
  /// round's claims for its free workers: as many as leave at least `reserve` (two by default) claimable
  /// tasks for each worker seen: this process's `slots`; for each other worker holding active tasks, one per task it
  /// has started (a worker name is a whole process, which may run several), at least one; and each other
  /// worker that claimed a task in the queue's last ``recentCommits`` commits and holds none now (an idle
  /// machine that polls leaves no other trace). A task another worker claimed ahead and has not started is
  /// no worker (counting it as one made the machines that claimed ahead stop each other from claiming ahead
  /// again): its newest step among those commits is its claim, and that worker recorded a step of another
  /// task after it (a worker publishes its whole history each time, so a task it had started would show a
  /// step by then). Claims with only claims after them (one round's, a machine of several workers starting
  /// them right now, their first steps not fetched yet) count.
  ///
  /// So a queue that is deep compared with the workers sharing it lets each landing carry several claims,
  /// and a shallow one is not held here while a worker seen elsewhere could run it: every worker seen still
  /// finds two claimable tasks after this round. A machine that has never claimed cannot be seen; the
  /// factor of two is its margin, and a run's first round never claims ahead (see ``ClaimDesk``).
  ///
  /// Also returns the workers seen (at least those that decided the count: the walk through the recent
  /// commits stops once the queue is too shallow to claim ahead anyway).
  ///
  /// `reserve` is how many claimable tasks each worker seen must still find (2 by default). The desk asks
  /// for none while this run's tasks are quick (see ``ClaimDesk/tasksAreQuick``): what it may hold then
  /// adds up to seconds of work, less than the landings it would take to leave those tasks to others. (A
  /// fair share, the claimable tasks divided by the machines seen, was tried: smaller landings cost more
  /// than the claims that collide, docs/performance.md.)
  static func claimAhead(store: QueueStore, slots: Int, reserve: Int = 2) throws -> (ahead: Int, seen: Int) {
    guard let tip = try store.tip() else { return (0, max(1, slots)) }
    let listing = try store.snapshot().listing()
    var statusByID: [String: TaskStatus] = [:]
    statusByID.reserveCapacity(listing.count)
    for i in 0..<listing.count where statusByID[listing.id(i)] == nil { statusByID[listing.id(i)] = listing.status(i) }
    var claimable = 0
    // Another machine's busy workers count one per active task it started (a worker name is a whole
    // process, which may run several), at least one; an idle one, seen by its recent claims only, once.
    var ownerOf: [String: String] = [:]
    var active: [String: Int] = [:]
    for i in 0..<listing.count {
      let status = listing.status(i)
      if status == .todo, listing.dependsOn(i).allSatisfy({ statusByID[$0] == .done }) {
        claimable += 1
      } else if status.isActive, let owner = try listing.record(i).worker, owner != store.worker {
        ownerOf[listing.id(i)] = owner
        active[owner, default: 0] += 1
      }
    }
    // Active tasks whose newest step in the recent commits is their claim: claimed ahead (their worker
    // recorded a step of another task since), or not known (only claims since, e.g. its last round's).
    var notStarted: [String: Int] = [:]
    var unknown: [String: Int] = [:]
    var looked = Set<String>()
    var wroteSince = Set<String>()
    // The fewest claims one round of each worker made (a run of its claims, adjacent in the history, that
    // the walk saw whole): at most as many as it had free workers, plus those it claimed ahead.
    var fewestPerRound: [String: Int] = [:]
    var run: (worker: String, length: Int)?
    var idleElsewhere = Set<String>()
    let busyElsewhere = {
      active.reduce(0) { total, entry in
        let (owner, count) = entry
        let open = unknown[owner, default: 0]
        let started = count - notStarted[owner, default: 0] - open
        return total + max(1, started + min(open, fewestPerRound[owner] ?? open))
      }
    }
    let seen = { max(1, slots) + busyElsewhere() + idleElsewhere.count }
    // What the walk can lower the count to: one worker per other machine holding tasks.
    guard claimable > reserve * (max(1, slots) + active.count) else { return (0, seen()) }
    var read = 0
    try store.repository.walk(from: tip, firstParent: true) { commit in
      read += 1
      guard let operation = Operation.parse(message: commit.message) else { return read < recentCommits }
      if operation.kind == .claim, operation.worker != store.worker, active[operation.worker] == nil {
        idleElsewhere.insert(operation.worker)
      }
      if let owner = ownerOf[operation.task], looked.insert(operation.task).inserted, operation.kind == .claim,
        operation.worker == owner
      {
        if wroteSince.contains(owner) {
          notStarted[owner, default: 0] += 1
        } else {
          unknown[owner, default: 0] += 1
        }
      }
      if operation.kind != .claim { wroteSince.insert(operation.worker) }
      if operation.kind == .claim, run?.worker == operation.worker {
        run?.length += 1
      } else {
        if let ended = run, active[ended.worker] != nil {
          fewestPerRound[ended.worker] = min(fewestPerRound[ended.worker] ?? ended.length, ended.length)
        }
        run = operation.kind == .claim ? (operation.worker, 1) : nil
      }
      return read < recentCommits && claimable > reserve * (max(1, slots) + active.count + idleElsewhere.count)
    }
    let workers = seen()
    return (max(0, claimable - reserve * workers), workers)
  }

  /// How far back ``claimAhead(store:slots:)`` looks for other machines' claims.
  static let recentCommits = 200

  /// The record of a task the desk handed out, if it is still this worker's claim to start (`planning`
  /// under this worker in the local queue); else reports it as not started and returns `nil`.
  ///
  /// Priority is never crossed: a task claimed ahead is given back, not started, when the queue now holds a
  /// claimable task of a higher priority (added, or re-prioritised, while it waited); the next claim round
  /// takes that one.
  private func heldTaskToStart(_ claimed: TaskRecord, store: QueueStore) throws -> TaskRecord? {
    let snapshot = try store.snapshot()
    guard let current = try snapshot.record(claimed.id) else { return nil }
    guard current.status == .planning, current.worker == store.worker else {
      reportNotStarted(current)
      return nil
    }
    guard try Self.hasClaimable(above: current.priority, in: snapshot) else { return current }
    do {
      _ = try store.releaseClaim(current.id, detail: "claimed ahead, not started: a task of higher priority came")
      events.event(current.id, "given back: a task of higher priority came", from: .planning, to: .todo)
      publisher?.request()
      return nil
    } catch QueueError.lostClaim {
      return nil
    }
  }

  /// Whether `snapshot` holds a claimable task (todo, its dependencies done) of a priority above `priority`.
  static func hasClaimable(above priority: Int, in snapshot: QueueSnapshot) throws -> Bool {
    let listing = try snapshot.listing()
    var candidates: [Int] = []
    for i in 0..<listing.count where listing.status(i) == .todo && listing.priority(i) > priority {
      candidates.append(i)
    }
    guard !candidates.isEmpty else { return false }
    var statusByID: [String: TaskStatus] = [:]
    for i in 0..<listing.count { statusByID[listing.id(i)] = listing.status(i) }
    return candidates.contains { listing.dependsOn($0).allSatisfy { statusByID[$0] == .done } }
  }

  /// A task claimed ahead that was moved elsewhere (cancelled, recovered) before a worker took it: never
  /// started, reported as such.
  func reportNotStarted(_ record: TaskRecord) {
    events.event(record.id, "not started: the task is now '\(record.status.rawValue)' (it waited, claimed ahead)")
    events.finished(record.id, record.status == .cancelled ? .cancelled : .lost(record.status.rawValue))
  }

  /// Renews the leases of the tasks waiting on the desk when a third of a lease is left, and takes off the
  /// desk those that were moved elsewhere meanwhile (a `cancel` fetched by the publisher's poll). Called
  /// every half second by the run's ``HeldClaimsKeeper``.
  func maintainHeld(store: QueueStore) throws {
    // Held for quick tasks, while a task now turns out slow: given back for other machines to run.
    let excess = desk.excess()
    if !excess.isEmpty {
      giveBack(excess, store: store, detail: "claimed ahead, not started: a task of this run turned out slow")
    }
    let held = desk.held()
    guard !held.isEmpty else { return }
    let snapshot = try store.snapshot()
    let now = environment.clock.nowSeconds()
    var renewed = false
    for record in held {
      guard let current = try snapshot.record(record.id) else { continue }
      guard current.status == .planning, current.worker == store.worker else {
        if desk.remove(record.id) { reportNotStarted(current) }
        continue
      }
      let expiry = current.leaseExpiresAt.flatMap(Timestamp.parse) ?? now
      guard expiry - now <= max(1, options.leaseSeconds / 3) else { continue }
      do {
        desk.replace(try store.renewLease(record.id, seconds: options.leaseSeconds))
        renewed = true
      } catch QueueError.lostClaim {
        if desk.remove(record.id) { reportNotStarted((try? store.snapshot().record(record.id)) ?? current) }
      }
    }
    // Pushed at once, as a running task's renewal is (see RemotePublisher.flush).
    if renewed { publisher?.flush(isUrgent: true) }
  }

  /// Gives back the tasks still waiting on the desk (`planning → todo`, "claimed ahead, not started"): the
  /// run ends, interrupted or not. Published by the publisher's last push or `run`'s closing sync.
  func giveBackHeld() {
    let held = desk.drain()
    guard !held.isEmpty, let store = try? openStore() else { return }
    giveBack(held, store: store, detail: "claimed ahead, not started")
  }

  /// Gives back `held` (taken off the desk), each with `detail`, and asks the publisher to push.
  private func giveBack(_ held: [TaskRecord], store: QueueStore, detail: String) {
    for record in held {
      do {
        _ = try store.releaseClaim(record.id, detail: detail)
        events.event(record.id, "given back: \(detail)", from: .planning, to: .todo)
      } catch QueueError.lostClaim {
        continue
      } catch {
        events.note(
          "warning: \(record.id): the claim made ahead could not be given back: \(error) (run 'git taskq recover')")
      }
    }
    publisher?.request()
  }

  /// ``giveBackHeld()``, pushed at once when it gave any back (the run was interrupted).
  func giveBackHeldNow() {
    guard !desk.held().isEmpty else { return }
    giveBackHeld()
    publisher?.flush(isUrgent: true)
  }

  /// Claims up to `count` tasks and returns those this worker won. With a remote, a claim counts only once
  /// its push succeeded, and the round costs one push for all its claims (and for whatever else the local
  /// queue holds unpublished: the previous task's last steps): the tasks are claimed on the local queue
  /// (one commit each, picked at random among the first claimable, see ``claimSpread(count:seen:)``) and pushed
  /// together, optimistically, without a fetch first. When the push is refused (the remote moved), the sync
  /// fetches and replays: claims of tasks another machine took first are dropped, the others pushed.
  ///
  /// The local queue is fetched first (without a push: ``QueueSync/refresh(remote:)``) when it shows
  /// nothing to claim, after a round lost every claim, and while the remote is busy: when the last round
  /// found that it had moved since this machine's previous contact (other machines push all the time), an
  /// optimistic push would most likely be refused and cost a refused push more than a fetch does; a fresh
  /// look also keeps the claims off tasks already taken. A claim that cannot be published is given back.
  ///
  /// A remote that cannot be reached pauses claiming, never the run: tasks in flight go on (their
  /// transitions are recorded locally and published when the remote is back), and the claim is tried again
  /// after a growing pause (1 s doubling to 30 s). With `--poll` that goes on until the remote returns or
  /// the run is interrupted; a single pass stops claiming after ``outagePatience`` seconds of outage.
  ///
  /// `ahead` more are claimed in the same round when the queue is deep (see ``claimAhead(store:slots:)``).
  func claimRound(
    store: QueueStore, sync: QueueSync?, count: Int, ahead: Int = 0, only id: String? = nil
  ) throws -> [TaskRecord] {
    guard let sync, let remote = options.remote else {
      return try store.claimNext(only: id, leaseSeconds: options.leaseSeconds).map { [$0] } ?? []
    }
    var outage = Outage(patience: options.poll == nil ? outagePatience : nil)
    var races = 0
    // `--id` fetches first, so that a task already taken elsewhere is a clear error at once.
    var isFresh = false
    var mustFetch = id != nil || remoteIsBusy.load(ordering: .relaxed)
    // Whether the remote moved since this machine's last contact, as this round finds out.
    var moved = false
    while races < 20 && !Interrupts.isRequested {
      // The other processes seen claiming pace this one's attempts after a refused push.
      sync.contenders = max(1, workersSeen.load(ordering: .relaxed) - desk.slots + 1)
      if mustFetch {
        do {
          let report = try sync.refresh(remote: remote)
          moved = moved || report.received > 0
          for drop in report.dropped { events.note("warning: \(drop)") }
        } catch QueueError.contention {
          races += 1
          usleep(UInt32.random(in: 100_000...500_000))
          continue
        } catch let error as TransportError where !error.refused {
          guard try pause(for: error, outage: &outage, remote: remote) else { return [] }
          continue
        }
        outage.end()
        publisher?.contacted()
        isFresh = true
        mustFetch = false
      }
      var claimed: [TaskRecord] = []
      let before = try store.tip()
      do {
        // Spread over what every worker seen (by the last round that looked) would claim in such a round.
        var spread = id == nil ? Self.claimSpread(count: count + ahead, seen: workersSeen.load(ordering: .relaxed)) : 1
        while claimed.count < (id == nil ? count : 1),
          let record = try store.claimNext(only: id, leaseSeconds: options.leaseSeconds, spread: spread)
        {
          claimed.append(record)
        }
        if id == nil, ahead > 0, claimed.count == count {
          let (allowed, seen) = try Self.claimAhead(
            store: store, slots: desk.slots, reserve: desk.tasksAreQuick ? 0 : 2)
          workersSeen.store(seen, ordering: .relaxed)
          spread = Self.claimSpread(count: count + ahead, seen: seen)
          var extra = min(ahead, allowed)
          while extra > 0, let record = try store.claimNext(leaseSeconds: options.leaseSeconds, spread: spread) {
            claimed.append(record)
            extra -= 1
          }
        }
      } catch {
        releaseUnpublishedClaims(claimed, store: store)
        throw error
      }
      if claimed.isEmpty {
        // Nothing claimable here: only a fresh look at the remote can say there is nothing at all.
        if isFresh {
          publishLastSteps(sync: sync, remote: remote)
          return []
        }
        mustFetch = true
        continue
      }
      let report: SyncReport
      let mark = publisher?.requestMark()
      do {
        report = try sync.publish(remote: remote)
      } catch QueueError.contention {
        // Too many writers at once: give the claims back and try again a little later.
        giveBack(claimed, since: before, pushMayHaveLanded: false, store: store, sync: sync, remote: remote)
        races += 1
        mustFetch = true
        usleep(UInt32.random(in: 100_000...500_000))
        continue
      } catch let error as TransportError where !error.refused {
        // Not published, so not ours: give them back (a push that did land is undone by the next sync).
        giveBack(
          claimed, since: before, pushMayHaveLanded: GitCLITransport.pushMayHaveLanded(reason: error.reason),
          store: store, sync: sync, remote: remote)
        guard try pause(for: error, outage: &outage, remote: remote) else { return [] }
        mustFetch = true
        continue
      } catch {
        releaseUnpublishedClaims(claimed, store: store)
        throw error
      }
      outage.end()
      if let mark { publisher?.published(through: mark) }
      moved = moved || report.received > 0
      remoteIsBusy.store(moved, ordering: .relaxed)
      let ids = Set(claimed.map(\.id))
      for drop in report.dropped where !(ids.contains(drop.operation.task) && drop.operation.worker == store.worker) {
        events.note("warning: \(drop)")
      }
      let snapshot = try store.snapshot()
      var won: [TaskRecord] = []
      for record in claimed {
        if let now = try snapshot.record(record.id), now.status == .planning, now.worker == store.worker {
          won.append(now)
        } else if id == nil {
          events.note("\(record.id): claimed by another worker first; trying the next task")
        }
      }
      if !won.isEmpty { return won }
      if let id {
        throw QueueError.lostClaim(id: id, status: try snapshot.record(id)?.status ?? .todo)
      }
      // Every claim lost: the sync that found out fetched, so the local queue is fresh now. Back off a
      // little (randomised, growing with the losses in a row): the machine that keeps winning is pushing
      // now, and this one's next push would most likely be refused again and only burn CPU.
      races += 1
      isFresh = report.action == .replayed || report.action == .fastForwardedLocal
      mustFetch = !isFresh
      usleep(UInt32.random(in: 10_000...UInt32(min(400_000, 50_000 * races))))
    }
    return []
  }

  /// Pushes what this machine recorded and has not published, right after a claim round's fresh fetch found
  /// nothing to claim: the remote is where that fetch left it, so the push most likely lands at once, where
  /// the publisher's push (or the run's closing one) would come later and, when every machine runs out of
  /// tasks at the same moment, race the others' last pushes. Nothing new: no network. A failure is left to
  /// the publisher (asked again) and the run's closing publish.
  private func publishLastSteps(sync: QueueSync, remote: String) {
    let mark = publisher?.requestMark()
    do {
      let report = try sync.publish(remote: remote)
      if let mark { publisher?.published(through: mark) }
      for drop in report.dropped { events.note("warning: \(drop)") }
    } catch {
      publisher?.request()
    }
  }

  /// Whether the last claim round found the remote moved since this machine's contact before: the next round
  /// then fetches before it claims (see ``claimRound(store:sync:count:only:)``).
  private let remoteIsBusy = Atomic<Bool>(false)

  /// The workers sharing the remote that the last round claiming ahead saw (see
  /// ``claimAhead(store:slots:)``), this process's included: they size the claims' spread.
  private let workersSeen = Atomic<Int>(1)

  /// Seconds of outage after which a single pass (no `--poll`) stops claiming.
  var outagePatience: Double = 120

  /// An outage of the remote as one worker sees it: when it began and the next pause.
  struct Outage {
    let patience: Double?
    var began: Date?
    var nextPause: Double = 1

    init(patience: Double?) { self.patience = patience }

    /// The pause before the next try, or `nil` when the outage has lasted longer than the patience.
    mutating func next() -> Double? {
      let now = Date()
      let start = began ?? now
      began = start
      if let patience, now.timeIntervalSince(start) >= patience { return nil }
      defer { nextPause = min(nextPause * 2, 30) }
      return nextPause
    }

    mutating func end() {
      began = nil
      nextPause = 1
    }
  }

  /// Waits out one step of an outage (interruptibly); `false` when claiming should stop.
  private func pause(for error: TransportError, outage: inout Outage, remote: String) throws -> Bool {
    guard let seconds = outage.next() else {
      events.note(
        "warning: '\(remote)' has been unreachable for \(Int(outagePatience)) s: no more claims in this run (\(error.reason))"
      )
      return false
    }
    events.note(
      "warning: cannot reach '\(remote)' to claim (\(error.reason)); claims paused, next try in \(Int(seconds)) s")
    let until = Date().addingTimeInterval(seconds)
    while Date() < until && !Interrupts.isRequested { usleep(100_000) }
    return !Interrupts.isRequested
  }

  /// Gives back claims that were not published: withdrawn without a trace when nothing else was written
  /// since and the push surely did not land (refused, or the remote not reached), else each released with
  /// a commit of its own (`planning → todo`), which undoes a push that did land once it is published.
  private func giveBack(
    _ claimed: [TaskRecord], since before: ObjectID?, pushMayHaveLanded: Bool, store: QueueStore, sync: QueueSync,
    remote: String
  ) {
    if !pushMayHaveLanded,
      (try? store.withdrawClaims(
        Set(claimed.map(\.id)), since: before, remoteTip: try sync.trackingTip(remote: remote))) == true
    {
      return
    }
    releaseUnpublishedClaims(claimed, store: store)
  }

  /// Gives back claims that were not published; a failure is reported, not dropped silently.
  private func releaseUnpublishedClaims(_ records: [TaskRecord], store: QueueStore) {
    for record in records {
      // A claim the replay already dropped (another worker holds the task now) has nothing to give back.
      if let current = try? store.snapshot().record(record.id),
        current.status != .planning || current.worker != store.worker
      {
        continue
      }
      do {
        _ = try store.releaseClaim(record.id)
      } catch {
        events.note(
          "warning: \(record.id): the unpublished claim could not be given back: \(error) (run 'git taskq recover')")
      }
    }
  }

  func openStore() throws -> QueueStore {
    let store = QueueStore(repository: try Repository.open(at: gitDirectory), worker: worker)
    store.warn = { [events] in events.note($0) }
    store.clock = environment.clock
    return store
  }

}

/// The first error any worker thread hit.
final class ErrorBox: Sendable {
  private let stored = Mutex<(any Error)?>(nil)
  func set(_ error: any Error) { stored.withLock { if $0 == nil { $0 = error } } }
  var value: (any Error)? { stored.withLock { $0 } }
}

/// The thread that looks after the tasks a `run --remote` claimed ahead while they wait on the desk (see
/// ``TaskRunner/maintainHeld(store:)``), with its own store, every half second until ``stop()``.
// `@unchecked`: `thread` is set once by `start(runner:)` before the keeper is returned, and only read after.
final class HeldClaimsKeeper: @unchecked Sendable {
  private let stopping = Atomic<Bool>(false)
  private var thread: PosixThread?

  /// Starts the keeper of `runner`'s desk.
  static func start(runner: TaskRunner) throws -> HeldClaimsKeeper {
    let keeper = HeldClaimsKeeper()
    keeper.thread = try PosixThread(stackSize: 1 << 20) { [keeper] in
      guard let store = try? runner.openStore() else { return }
      var warned = false
      while !keeper.isStopping {
        // Interrupted: the held tasks go back at once, not after the running agents have stopped (a
        // second Ctrl-C in that time exits at once, and would leave them claimed until their lease ends).
        if runner.environment.isInterrupted() { runner.giveBackHeldNow() }
        do {
          try runner.maintainHeld(store: store)
        } catch {
          if !warned { runner.events.note("warning: the tasks claimed ahead could not be looked after: \(error)") }
          warned = true
        }
        for _ in 0..<5 where !keeper.isStopping { usleep(100_000) }
      }
    }
    return keeper
  }

  private var isStopping: Bool { stopping.load(ordering: .relaxed) }

  /// Stops the thread and waits for it.
  func stop() {
    stopping.store(true, ordering: .relaxed)
    thread?.join()
  }
}
