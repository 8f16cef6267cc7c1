import Git
import TaskqTestSupport
import Testing

@testable import TaskQueue

/// The pause before a sync tries again after a refused push (someone else landed first): short when this
/// writer is alone, longer when more writers share the remote, so that they do not all fetch and push
/// again at once (issue 13, point 4).
@Suite struct SyncRetryPauseTests {
  @Test func thePauseAfterARefusedPushGrowsWithTheWritersSharingTheRemote() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let sync = QueueSync(
      store: try bench.storeA(), transport: BareRemoteTransport(bare: bench.bare, machine: bench.a))
    sync.lastAttemptSeconds = 0.2
    // Alone: 40 ms per attempt so far, at most 0.4 s.
    #expect(sync.retryPause(attempt: 1) == 0.04)
    #expect(sync.retryPause(attempt: 20) == 0.4)
    // Eight writers: half an attempt's time for each of the seven others.
    sync.contenders = 8
    #expect(abs(sync.retryPause(attempt: 1) - 0.7) < 1e-9)
    // Many: at most 1 s.
    sync.contenders = 40
    #expect(sync.retryPause(attempt: 1) == 1)
  }

  /// A writer that cannot count its peers (a publisher, a first claim: `contenders` stays 1) learns them from
  /// the remote: the other workers whose commits its last fetch brought.
  @Test func theWritersALookAtTheRemoteFoundLandingCountAsContenders() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1", "T-2", "T-3", "T-4")
    let sync = QueueSync(
      store: try bench.storeA(), transport: BareRemoteTransport(bare: bench.bare, machine: bench.a))
    _ = try sync.sync(remote: "origin")
    sync.lastAttemptSeconds = 0.2
    #expect(sync.writersSeenLanding == 0)
    #expect(sync.retryPause(attempt: 1) == 0.04)
    // Three workers of machine B land a claim each, and one of them a second.
    for (worker, id) in [("host-b:2", "T-1"), ("host-b:3", "T-2"), ("host-b:4", "T-3"), ("host-b:2", "T-4")] {
      let store = try bench.storeB(worker: worker)
      #expect(try store.claimNext(only: id) != nil)
      try bench.sync(store)
    }
    _ = try sync.sync(remote: "origin")
    sync.lastAttemptSeconds = 0.2
    #expect(sync.writersSeenLanding == 3)
    #expect(abs(sync.retryPause(attempt: 1) - 0.3) < 1e-9)
    // A look that finds nothing new forgets them.
    _ = try sync.sync(remote: "origin")
    #expect(sync.writersSeenLanding == 0)
  }
}
