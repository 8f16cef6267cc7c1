import Git
import TaskQueue
import TaskqTestSupport
import Testing

/// `QueueSync.refresh`: a fetch that brings the local queue on top of the remote's (replaying the local
/// operations) and pushes nothing, for a claim round that then pushes everything at once.
@Suite struct SyncRefreshTests {
  /// The remote's tip, as a third party reads it.
  func remoteTip(_ bench: ReplayBench) throws -> String {
    try bench.a.git("rev-parse", Layout.refName, in: bench.bare)
  }

  @Test func refreshReplaysTheLocalOperationsOnTheRemoteTipAndPushesNothing() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1", "T-2")
    let a = try bench.storeA()
    let b = try bench.storeB()
    try b.cancel("T-2")
    try bench.sync(b)
    let remoteBefore = try remoteTip(bench)
    try a.cancel("T-1")

    let transport = BareRemoteTransport(bare: bench.bare, machine: bench.a)
    let sync = QueueSync(store: a, transport: transport)
    let report = try sync.refresh(remote: "origin")
    #expect(report.received == 1, "\(report)")
    #expect(transport.pushes == 0)
    #expect(try remoteTip(bench) == remoteBefore)
    // The local queue holds both cancels, its own on top of the remote's tip.
    #expect(try a.snapshot().record("T-1")?.status == .cancelled)
    #expect(try a.snapshot().record("T-2")?.status == .cancelled)
    let local = try #require(try a.tip())
    #expect(try sync.trackingTip(remote: "origin")?.hex == remoteBefore)
    #expect(try a.repository.isAncestor(try #require(try sync.trackingTip(remote: "origin")), of: local))

    // The next publish pushes at once, without another fetch.
    let published = try sync.publish(remote: "origin")
    #expect(published.action == .pushed, "\(published)")
    #expect(transport.pushes == 1)
    #expect(try remoteTip(bench) == local.hex)
  }

  @Test func refreshWithOnlyLocalCommitsLeavesTheRemoteAlone() throws {
    let bench = try ReplayBench()
    try bench.shared("T-1")
    let a = try bench.storeA()
    let remoteBefore = try remoteTip(bench)
    try a.cancel("T-1")
    let transport = BareRemoteTransport(bare: bench.bare, machine: bench.a)
    let report = try QueueSync(store: a, transport: transport).refresh(remote: "origin")
    #expect(report.received == 0)
    #expect(transport.pushes == 0)
    #expect(try remoteTip(bench) == remoteBefore)
    #expect(try a.snapshot().record("T-1")?.status == .cancelled)
  }
}
