import Git
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
/// - Offline in a shared queue (no remote given, but the queue was synced or came from elsewhere: see
///   ``sharedRemote()``): `merge` is refused, naming the command with the remote. Approving here and
///   merging at once would leave the merge behind when a later sync drops the approve; approving here and
///   merging later would leave a half-done step to remember.
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
  ///   - note: Receives the lines of each sync that dropped or superseded an operation (its summary and one
  ///     line per operation, as `git taskq sync` prints them), as they happen, before an error is thrown.
  /// - Returns: The lines to print.
  /// - Throws: ``MergeRefusal`` (one line: what happened, that nothing was merged, the next command),
  ///   ``QueueError`` for an unknown task or one not in review, a missing remote.
  public func approve(_ id: String, merge: Bool, force: Bool, note: (String) -> Void = { _ in }) throws -> [String] {
    try TaskID.validate(id)
    if merge, remote == nil, let shared = sharedRemote() {
      let name = shared.remote ?? "<remote>"
      let why = shared.remote.map { "the queue is shared through '\($0)'" } ?? "the queue is shared"
      throw MergeRefusal(
        "\(why), where this approve could still be dropped after the merge (the task cancelled there); nothing was changed: run git taskq approve --id \(id) --merge --remote \(name)"
      )
    }
    let sync = remote.map { _ in QueueSync.forRemote(store: store, gitDirectory: store.repository.gitDirectory) }
    if merge, let sync, let remote {
      let report: SyncReport
      do {
        report = try sync.sync(remote: remote)
      } catch let error as TransportError {
        throw MergeRefusal(
          "\(Self.line(error)); nothing was approved or merged: run the same command once '\(remote)' answers")
      }
      Self.noted(report).forEach(note)
      // An approve of an earlier try, published only now, may have been dropped.
      if let drop = Self.droppedApprove(of: id, in: report) { throw MergeRefusal("\(drop); nothing was merged") }
    }
    let current = try store.snapshot().existing(id)
    var merger = BranchMerger(
      taskID: current.id,
      repositoryPath: RepositoryReference(stored: current.repo).resolve(
        queueRepository: queueRepository, reposRoot: reposRoot) ?? current.repo,
      branch: current.branch, base: current.base)
    // Work the agent left uncommitted is not on the branch: approving would drop it silently.
    if !force, current.status == .review, let refusal = BranchMerger.uncommittedWorkRefusal(current) {
      throw MergeRefusal(refusal)
    }
    let elsewhere = ranElsewhere(current, repositoryPath: merger.repositoryPath)
    guard merge else {
      let record = try store.approve(id)
      guard let elsewhere else { return ["\(record.id): review → done"] + merger.instructions() }
      return [
        "\(record.id): review → done",
        "\(elsewhere): merge it there, or fetch it here first (\(fetchCommand(current, merger.repositoryPath)))",
      ]
    }
    if let elsewhere {
      throw MergeRefusal(
        "\(elsewhere): approve and merge it there, or fetch the branch that machine pushed first (\(fetchCommand(current, merger.repositoryPath))); nothing was \(current.status == .done ? "merged" : "changed")"
      )
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
      let transport = error as? TransportError
      let reason = transport.map(Self.line) ?? "\(error)"
      // Only a refusal says that the remote does not hold the approve; a push whose answer was lost (the
      // connection cut after the remote took it) may have landed.
      let published = transport?.refused == true ? "is not published" : "may not be published"
      throw MergeRefusal(
        "\(id) is approved here, but the approve \(published) (\(reason)); nothing was merged: once '\(remote)' answers, run git taskq approve --id \(id) --merge --remote \(remote)"
      )
    }
    Self.noted(report).forEach(note)
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

  /// A sync's lines (``SyncReport/lines``) when it dropped or superseded an operation, else none.
  static func noted(_ report: SyncReport) -> [String] {
    report.notices.isEmpty ? [] : report.lines
  }

  /// Where the task ran and that its branch is not here, when its branch is not in this clone's
  /// repository and the attempt ran in a worktree that is not one of that repository's (another machine or
  /// clone); `nil` when the branch is here, or when nothing says where it ran. One line, escaped: the
  /// worktree path and the worker come from the queue.
  func ranElsewhere(_ record: TaskRecord, repositoryPath: String) -> String? {
    guard let ranAt = record.worktreePath, let repository = try? Repository.open(at: repositoryPath) else {
      return nil
    }
    do {
      if try repository.referenceTarget("refs/heads/" + record.branch) != nil { return nil }
    } catch {
      return nil
    }
    let ownWorktrees = (try? BranchMerger.checkouts(of: repository).map(\.path)) ?? []
    if ownWorktrees.contains(where: { Self.samePath($0, ranAt) }) { return nil }
    let worker = record.worker.map { " by worker \($0)" } ?? ""
    return TerminalText.line(
      "\(record.id) ran at '\(ranAt)'\(worker), on another machine or clone, and its branch '\(record.branch)' is not in '\(repositoryPath)'"
    )
  }

  /// The fetch that brings the task's branch into `repositoryPath` from the remote the other machine
  /// pushed it to.
  func fetchCommand(_ record: TaskRecord, _ repositoryPath: String) -> String {
    TerminalText.line("git -C \(shellQuote(repositoryPath)) fetch <remote> \(record.branch):\(record.branch)")
  }

  static func samePath(_ a: String, _ b: String) -> Bool {
    func clean(_ path: String) -> String {
      URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
    return clean(a) == clean(b)
  }

  /// Whether the queue is shared, and through which remote when that is known; `nil`: nothing says it is.
  ///
  /// A queue is shared when any of these holds (all read locally: offline stays offline):
  /// - a tracking ref `refs/taskq/remotes/<remote>/queue` exists (a `git taskq sync` ran; `origin` first);
  /// - the queue ref's reflog holds a sync (`taskq: sync …`) or an update that no git-taskq write made (a
  ///   `git fetch` or `git update-ref` by hand), or it has no reflog at all although the ref exists (every
  ///   git-taskq write logs; a queue taken with `git fetch origin refs/taskq/queue:refs/taskq/queue` into a
  ///   new ref has none).
  /// The remote is then the tracking ref's, else the one a sync entry names, else `origin` when the
  /// repository has it.
  func sharedRemote() -> SharedQueue? {
    let repository = store.repository
    let prefix = "refs/taskq/remotes/"
    let names = ((try? repository.referenceNames(matching: prefix + "*")) ?? [])
      .filter { $0.hasSuffix("/queue") }
      .map { String($0.dropFirst(prefix.count).dropLast("/queue".count)) }
    if let tracked = names.contains("origin") ? "origin" : names.sorted().first { return SharedQueue(remote: tracked) }
    guard (try? repository.referenceTarget(Layout.refName)) != nil else { return nil }
    let entries = (try? repository.reflog(of: Layout.refName)) ?? []
    let foreign = entries.filter { !$0.message.hasPrefix("taskq: ") || $0.message.hasPrefix("taskq: sync ") }
    guard entries.isEmpty || !foreign.isEmpty else { return nil }
    let synced = foreign.lazy.map(\.message).filter { $0.hasPrefix("taskq: sync ") && $0 != "taskq: sync fast-forward" }
      .map { String($0.dropFirst("taskq: sync ".count)) }.first
    let origin = (try? repository.configuration().string("remote.origin.url")) != nil ? "origin" : nil
    return SharedQueue(remote: synced ?? origin)
  }

  /// A queue found shared by ``sharedRemote()``; `remote`: the remote it is shared through, when known.
  struct SharedQueue {
    var remote: String?
  }

  /// A transport error without its note on the local queue (the caller says what happened to it).
  static func line(_ error: TransportError) -> String {
    error.refused
      ? "remote '\(error.remote)' refused \(Layout.refName): \(error.reason)"
      : "cannot reach remote '\(error.remote)': \(error.reason)"
  }
}
