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
public final class TaskRunner: Sendable {
  let gitDirectory: String
  let settings: RunSettings
  let options: RunOptions
  let events: RunEvents
  let worker: String
  /// The container engine, agent, health probe, clock and interrupt every pipeline of this pool uses.
  let environment: RunEnvironment

  /// A pool over the queue in `gitDirectory` (the queue repository's git directory; each worker thread
  /// opens its own handle on it), with `settings` and `options`, reporting to `events` as `worker`.
  ///
  /// - Parameters:
  ///   - gitDirectory: the queue repository's git directory.
  ///   - settings: images, programs, timeouts, roots.
  ///   - options: the options of this `run`.
  ///   - events: where progress goes.
  ///   - worker: this process's worker name in records and trailers.
  ///   - environment: the seams to the outside world; `nil` for the real ones
  ///     (``RunEnvironment/live(settings:)``). Tests pass fakes.
  public init(
    gitDirectory: String, settings: RunSettings, options: RunOptions, events: RunEvents,
    worker: String = WorkerProcess.current, environment: RunEnvironment? = nil
  ) {
    self.gitDirectory = gitDirectory
    self.settings = settings
    self.options = options
    self.events = events
    self.worker = worker
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
    // The record as recovered names the same container; the fresh one is only preferred.
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
    var first: TaskRecord?
    if let id = options.onlyID {
      // Claimed here so that a task that is not runnable is a clear error before anything starts.
      // With a remote, the claim counts only once it is pushed, as for every worker.
      let store = try openStore()
      let sync = options.remote.map { _ in QueueSync.forRemote(store: store, gitDirectory: gitDirectory) }
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

  private func workerLoop(initial: TaskRecord?) throws {
    let store = try openStore()
    let sync = options.remote.map { _ in QueueSync.forRemote(store: store, gitDirectory: gitDirectory) }
    let pipeline = TaskPipeline(
      store: store, settings: settings, options: options, events: events, sync: sync, environment: environment)
    if let initial {
      events.finished(initial.id, pipeline.process(initial))
      return
    }
    while !environment.isInterrupted() {
      if let claimed = try claim(store: store, sync: sync) {
        events.finished(claimed.id, pipeline.process(claimed))
        continue
      }
      guard let poll = options.poll else { return }
      let until = environment.clock.now() + poll
      while environment.clock.now() < until && !environment.isInterrupted() { environment.clock.sleep(seconds: 0.1) }
    }
  }

  /// Claims the next task. With a remote, the claim counts only once its push succeeded: the queue is
  /// synced first (to see the others' claims), then the claim is pushed; a claim the remote refused (someone
  /// else won) is dropped by the sync and this worker moves on; one that cannot be published is given back.
  ///
  /// A remote that cannot be reached pauses claiming, never the run: tasks in flight go on (their
  /// transitions are recorded locally and published when the remote is back), and the claim is tried again
  /// after a growing pause (1 s doubling to 30 s). With `--poll` that goes on until the remote returns or
  /// the run is interrupted; a single pass stops claiming after ``outagePatience`` seconds of outage.
  func claim(store: QueueStore, sync: QueueSync?, only id: String? = nil) throws -> TaskRecord? {
    guard let sync, let remote = options.remote else {
      return try store.claimNext(only: id, leaseSeconds: options.leaseSeconds)
    }
    var outage = Outage(patience: options.poll == nil ? outagePatience : nil)
    var races = 0
    while races < 20 && !Interrupts.isRequested {
      do {
        _ = try sync.sync(remote: remote)
      } catch QueueError.contention {
        races += 1
        usleep(UInt32.random(in: 100_000...500_000))
        continue
      } catch let error as TransportError where !error.refused {
        guard try pause(for: error, outage: &outage, remote: remote) else { return nil }
        continue
      }
      outage.end()
      guard let claimed = try store.claimNext(only: id, leaseSeconds: options.leaseSeconds) else { return nil }
      do {
        _ = try sync.sync(remote: remote)
      } catch QueueError.contention {
        // Too many writers at once: give the claim back and try again a little later.
        releaseUnpublishedClaim(claimed.id, store: store)
        races += 1
        usleep(UInt32.random(in: 100_000...500_000))
        continue
      } catch let error as TransportError where !error.refused {
        // Not published, so not ours: give it back (a push that did land is undone by the next sync).
        releaseUnpublishedClaim(claimed.id, store: store)
        guard try pause(for: error, outage: &outage, remote: remote) else { return nil }
        continue
      } catch {
        releaseUnpublishedClaim(claimed.id, store: store)
        throw error
      }
      if let now = try store.snapshot().record(claimed.id), now.status == .planning, now.worker == store.worker {
        return now
      }
      if let id {
        throw QueueError.lostClaim(id: id, status: try store.snapshot().record(id)?.status ?? .todo)
      }
      races += 1
      events.note("\(claimed.id): claimed by another worker first; trying the next task")
    }
    return nil
  }

  /// Seconds of outage after which a single pass (no `--poll`) stops claiming.
  let outagePatience: Double = 120

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

  /// Gives back a claim that was not published; a failure is reported, not dropped silently.
  private func releaseUnpublishedClaim(_ id: String, store: QueueStore) {
    do {
      _ = try store.releaseClaim(id)
    } catch {
      events.note("warning: \(id): the unpublished claim could not be given back: \(error) (run 'git taskq recover')")
    }
  }

  private func openStore() throws -> QueueStore {
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
