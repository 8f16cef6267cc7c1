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
}
