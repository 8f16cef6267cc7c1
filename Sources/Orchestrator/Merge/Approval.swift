import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// `git taskq approve`: a task in review becomes done; with `merge`, its branch is merged into its base
/// too, in an order that never leaves a merge behind an approve that does not stand.
///
/// - Without a remote, in a queue that was never synced: merge first (refused: nothing changes), then
///   approve, as one machine sees it.
/// - With a remote (`taskq.remote` or `--remote`): sync, check the merge (``BranchMerger/plan()``), approve,
///   publish with a sync, and merge only once the remote took the approve. An approve the remote drops (the
///   task was cancelled there) or cannot take (unreachable, refused) merges nothing.
/// - Offline in a shared queue (synced before, no remote given): `merge` is refused, naming the command
///   with the remote. Approving here and merging at once would leave the merge behind when a later sync
///   drops the approve; approving here and merging later would leave a half-done step to remember.
///
/// A task already `done` with `merge` is merged without a second approve: the command is the same after a
/// publish that failed.
public struct Approval {
  public let store: QueueStore
  /// The repository that holds the queue (its main working tree): resolves a record's `repo` of `.`.
  public let queueRepository: String
  public let reposRoot: String
  /// The remote the approve is published to before merging, or `nil`.
  public let remote: String?

  public init(store: QueueStore, queueRepository: String, reposRoot: String, remote: String?) {
    self.store = store
    self.queueRepository = queueRepository
    self.reposRoot = reposRoot
    self.remote = remote
  }

  /// Approves task `id`, and merges its branch when `merge`.
  ///
  /// - Parameters:
  ///   - id: The task, in review (or done, with `merge`).
  ///   - merge: Merge the task's branch into its base too.
  ///   - force: Approve even though the task's worktree holds uncommitted work.
  /// - Returns: The lines to print.
  /// - Throws: ``MergeRefusal`` (one line: what happened, that nothing was merged, the next command),
  ///   ``QueueError`` for an unknown task or one not in review, a missing remote.
  public func approve(_ id: String, merge: Bool, force: Bool) throws -> [String] {
    try TaskID.validate(id)
    if merge, remote == nil, let shared = sharedRemote() {
      throw MergeRefusal(
        "the queue is shared through '\(shared)', where this approve could still be dropped after the merge (the task cancelled there); nothing was changed: run git taskq approve --id \(id) --merge --remote \(shared)"
      )
    }
    let sync = remote.map { _ in
      QueueSync(store: store, transport: GitCLITransport(gitDirectory: store.repository.gitDirectory))
    }
    if merge, let sync, let remote {
      let report: SyncReport
      do {
        report = try sync.sync(remote: remote)
      } catch let error as TransportError {
        throw MergeRefusal(
          "\(Self.line(error)); nothing was approved or merged: run the same command once '\(remote)' answers")
      }
      // An approve of an earlier try, published only now, may have been dropped.
      if let drop = Self.droppedApprove(of: id, in: report) { throw MergeRefusal("\(drop); nothing was merged") }
    }
    guard let current = try store.snapshot().record(id) else { throw QueueError.notFound(id) }
    var merger = BranchMerger(
      taskID: current.id,
      repositoryPath: RepositoryReference(stored: current.repo).resolve(
        queueRepository: queueRepository, reposRoot: reposRoot) ?? current.repo,
      branch: current.branch, base: current.base)
    // Work the agent left uncommitted is not on the branch: approving would drop it silently.
    if !force, current.status == .review, let refusal = BranchMerger.uncommittedWorkRefusal(current) {
      throw MergeRefusal(refusal)
    }
    guard merge else {
      let record = try store.approve(id)
      return ["\(record.id): review → done"] + merger.instructions()
    }
    if current.status == .done {
      // Approved before (here, and published when there is a remote: the sync above took it or dropped it).
      merger.isApproved = true
      return ["\(id): already done; \(try merger.merge().summary(branch: current.branch, base: current.base))"]
    }
    // Checked before merging, so that a task that cannot be approved is not merged; checked again by the
    // approval's compare-and-swap.
    guard current.status == .review else {
      throw QueueError.illegalTransition(id: id, command: "approve", status: current.status, needs: [.review])
    }
    guard let remote, let sync else { return try mergeThenApprove(current, merger) }

    // Every check of the merge first, so that a merge that cannot happen does not publish an approve.
    _ = try merger.plan()
    try store.transition(id, to: .done, command: "approve", detail: "merge into \(current.base) follows")
    let report: SyncReport
    do {
      report = try sync.sync(remote: remote)
    } catch {
      let reason = (error as? TransportError).map(Self.line) ?? "\(error)"
      throw MergeRefusal(
        "\(id) is approved here, but the approve is not published (\(reason)); nothing was merged: once '\(remote)' answers, run git taskq approve --id \(id) --merge --remote \(remote)"
      )
    }
    if let drop = Self.droppedApprove(of: id, in: report) { throw MergeRefusal("\(drop); nothing was merged") }
    guard let published = try store.snapshot().record(id), published.status == .done else {
      throw MergeRefusal("\(id): '\(remote)' does not have the task done after the sync (nothing was merged)")
    }
    merger.isApproved = true
    let outcome: BranchMerger.Outcome
    do {
      outcome = try merger.merge()
    } catch let refusal as MergeRefusal {
      throw MergeRefusal("\(id) is done and published to '\(remote)', but not merged: \(refusal.description)")
    }
    return [
      "\(id): review → done (published to '\(remote)'); \(outcome.summary(branch: current.branch, base: current.base))"
    ]
  }

  /// One machine: merge, then approve with what the merge did in the commit's subject.
  private func mergeThenApprove(_ current: TaskRecord, _ merger: BranchMerger) throws -> [String] {
    let outcome = try merger.merge()
    let summary = outcome.summary(branch: current.branch, base: current.base)
    let record: TaskRecord
    do {
      record = try store.transition(
        current.id, to: .done, command: "approve", detail: outcome.detail(base: current.base))
    } catch {
      throw MergeRefusal("\(summary), but the task was not approved: \(error)")
    }
    return ["\(record.id): review → done; \(summary)"]
  }

  static func droppedApprove(of id: String, in report: SyncReport) -> DroppedOperation? {
    report.dropped.first { $0.operation.task == id && $0.operation.kind == "approve" }
  }

  /// The remote this queue was synced with (`origin` first), whose tracking ref exists; `nil`: never synced.
  func sharedRemote() -> String? {
    let prefix = "refs/taskq/remotes/"
    let names = ((try? store.repository.referenceNames(matching: prefix + "*")) ?? [])
      .filter { $0.hasSuffix("/queue") }
      .map { String($0.dropFirst(prefix.count).dropLast("/queue".count)) }
    return names.contains("origin") ? "origin" : names.sorted().first
  }

  /// A transport error without its note on the local queue (the caller says what happened to it).
  static func line(_ error: TransportError) -> String {
    error.refused
      ? "remote '\(error.remote)' refused \(Layout.refName): \(error.reason)"
      : "cannot reach remote '\(error.remote)': \(error.reason)"
  }
}
