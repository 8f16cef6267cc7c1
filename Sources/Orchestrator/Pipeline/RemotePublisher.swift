import Git
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The one publisher of a `run --remote` process: workers record their transitions locally and call
/// ``request()``; this thread pushes whatever has accumulated, so one push carries the transitions of
/// several tasks, and the workers never wait for the network.
///
/// - A push is optimistic (``QueueSync/publish(remote:)``): no fetch first; only a refused push fetches,
///   replays and pushes again.
/// - Nothing waits for it but a lease renewal (``flush(timeout:isUrgent:)``): the steps before an agent are
///   requested like every other transition, so a task whose agents take no time costs about one push, the
///   next claim round's, which carries whatever the local queue holds (a push finds nothing new then, and
///   touches no network: see ``QueueSync/publish(remote:)``).
/// - While tasks run it also fetches every ``pollInterval`` seconds (a successful push counts, this
///   publisher's or a claim round's, see ``contacted()``: the remote was then where this machine left it), so
///   a `cancel` made on another machine reaches the local queue, where the worker looks every second and
///   stops its agent.
/// - A remote that cannot be reached is a warning (once per outage), and the publisher tries again after a
///   growing pause (1 s doubling to 30 s); the transitions wait in the local queue meanwhile.
///
/// Owns its own ``QueueStore`` (and repository handle) on its own thread.
final class RemotePublisher: @unchecked Sendable {
  let gitDirectory: String
  let worker: String
  let remote: String
  let events: RunEvents
  let transport: GitCLITransport
  /// Seconds between fetches while tasks run: a remote `cancel` reaches a running worker within about this
  /// plus the worker's one-second look at the local queue.
  let pollInterval: Double
  /// Seconds a request waits for more before it is pushed: the steps of a task that takes no time (and of
  /// tasks running side by side) then go in one push, usually the next claim round's (a task of no-op
  /// agents takes 0.1–0.5 s on a loaded machine), and other machines' pushes find gaps between ours. Nothing
  /// waits for these pushes (a lease renewal's is urgent), so a second costs no task any time.
  let coalescing: Double

  private let condition = Condition()
  private var pending = false
  /// When the oldest request not yet pushed was made.
  private var pendingSince = Date()
  /// Requests made, and the last request a finished push (successful or not) covered.
  private var requests = 0
  private var tried = 0
  /// Whether the last push or fetch failed (the remote is away).
  private var isFailing = false
  /// The last time another part of this process (a claim round) pushed or fetched successfully.
  private var contactedElsewhere = Date.distantPast
  private var stopping = false
  private var running = 0
  private var finished = false

  init(
    gitDirectory: String, worker: String, remote: String, events: RunEvents, transport: GitCLITransport,
    pollInterval: Double = 2, coalescing: Double = 1
  ) {
    self.coalescing = coalescing
    self.gitDirectory = gitDirectory
    self.worker = worker
    self.remote = remote
    self.events = events
    self.transport = transport
    self.pollInterval = pollInterval
  }

  /// Starts the publishing thread.
  func start() {
    do {
      try PosixThread(stackSize: 4 << 20) { [self] in loop() }.detach()
    } catch {
      // No thread: nothing is published in the background; each flush waits out its timeout, and `run`'s
      // closing sync publishes what is left.
      events.note("warning: cannot start the publisher for '\(remote)': \(error)")
      condition.withLock {
        finished = true
        condition.broadcast()
      }
    }
  }

  /// Asks for the local queue to be pushed soon; returns at once.
  func request() {
    condition.withLock {
      if !pending { pendingSince = Date() }
      pending = true
      requests += 1
      condition.signal()
    }
  }

  /// Asks for the local queue to be pushed and waits until a push that covers it was tried (at most
  /// `timeout` seconds; the push waits for others like any request, so that a process never pushes more
  /// often than every ``coalescing`` seconds: a machine pushing back to back would starve the others, whose
  /// refused pushes need a fetch and a replay before they can try again). `isUrgent` pushes at once.
  ///
  /// For lease renewals only (rare: one per third of a lease): a renewal that stays local while its worker
  /// dies could later be published by another sync of this clone and revive a dead worker's claim over its
  /// recovery. Every other step is only requested (``request()``).
  func flush(timeout: Double = 10, isUrgent: Bool = false) {
    condition.withLock {
      if !pending || isUrgent { pendingSince = isUrgent ? .distantPast : Date() }
      pending = true
      requests += 1
      let target = requests
      condition.signal()
      // During an outage the renewal waits in the local queue like every other transition.
      if isFailing { return }
      let deadline = Date().addingTimeInterval(timeout)
      while tried < target && !finished && Date() < deadline { _ = condition.wait(until: deadline) }
    }
  }

  /// A claim round of this process pushed or fetched successfully: the remote was where this machine left
  /// it, so the next poll can wait (as after this publisher's own push).
  func contacted() {
    condition.withLock { contactedElsewhere = Date() }
  }

  /// The requests made so far: read by a claim round before its push reads the local tip, so that
  /// ``published(through:)`` can tell which requests that push covered.
  func requestMark() -> Int {
    condition.withLock { requests }
  }

  /// A claim round of this process pushed the local queue successfully, as it stood after the requests up
  /// to `mark` (each request is made after its commit): those need no push of their own (a push would find
  /// nothing new), so the publisher forgets them unless more came since, and a ``flush(timeout:isUrgent:)``
  /// waiting for them returns. Counts as a contact (see ``contacted()``).
  func published(through mark: Int) {
    condition.withLock {
      contactedElsewhere = Date()
      tried = max(tried, mark)
      if requests == mark { pending = false }
      condition.broadcast()
    }
  }

  /// A task started (`true`) or ended (`false`) on this process: while any runs, the remote is polled.
  func taskRunning(_ isRunning: Bool) {
    condition.withLock {
      running += isRunning ? 1 : -1
      condition.signal()
    }
  }

  /// Stops the thread after it has pushed what was requested (one try; `run`'s closing sync publishes
  /// anything left).
  func stop() {
    condition.withLock {
      stopping = true
      condition.signal()
      while !finished { condition.wait() }
    }
  }

  private func loop() {
    let store: QueueStore
    do {
      store = QueueStore(repository: try Repository.open(at: gitDirectory), worker: worker)
    } catch {
      events.note("warning: cannot open the queue to publish to '\(remote)': \(error)")
      condition.withLock {
        finished = true
        condition.broadcast()
      }
      return
    }
    store.warn = { [events] in events.note($0) }
    let sync = QueueSync.forRemote(store: store, transport: transport)
    var lastContact = Date()
    var retryAt: Date?
    var failures = 0
    while true {
      var push = false
      var poll = false
      var last = false
      var covering = 0
      condition.withLock {
        while true {
          let now = Date()
          let backingOff = retryAt.map { now < $0 } ?? false
          if failures == 0 { lastContact = max(lastContact, contactedElsewhere) }
          if stopping {
            last = true
            push = pending && failures == 0
            break
          }
          // A request waits up to `coalescing` seconds for others, so that one push carries them all.
          let due = pendingSince.addingTimeInterval(coalescing)
          if pending && !backingOff && now >= due {
            push = true
            break
          }
          if running > 0 && !backingOff && now.timeIntervalSince(lastContact) >= pollInterval {
            poll = true
            break
          }
          var wake = now.addingTimeInterval(running > 0 ? pollInterval : 3600)
          if running > 0 { wake = min(wake, lastContact.addingTimeInterval(pollInterval)) }
          if let retryAt, backingOff { wake = min(wake, retryAt) }
          if pending && !backingOff { wake = min(wake, due) }
          _ = condition.wait(until: max(wake, now.addingTimeInterval(0.01)))
        }
        if push {
          pending = false
        }
        covering = requests
      }
      if push || poll {
        do {
          let report = try push ? sync.publish(remote: remote) : sync.sync(remote: remote)
          for drop in report.dropped { events.note("warning: \(drop)") }
          for id in report.superseded {
            events.note("\(id): the remote's recovery (worker lost) superseded: this worker was alive and went on")
          }
          lastContact = Date()
          if failures > 0 {
            events.note("'\(remote)' is reachable again: the transitions made meanwhile are published")
          }
          failures = 0
          retryAt = nil
        } catch {
          failures += 1
          if failures == 1 { events.note("warning: could not publish to '\(remote)': \(error) (trying again)") }
          retryAt = Date().addingTimeInterval(Double(min(30, 1 << min(failures - 1, 5))))
          if push { condition.withLock { pending = true } }
        }
        condition.withLock {
          isFailing = failures > 0
          if push { tried = max(tried, covering) }
          condition.broadcast()
        }
      }
      if last { break }
    }
    condition.withLock {
      finished = true
      condition.broadcast()
    }
  }
}
