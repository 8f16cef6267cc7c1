import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One `git taskq cleanup`: which tasks it may touch, then their containers (side by side), worktrees and
/// records, then the orphan containers and half-made worktree registrations of this queue.
public struct CleanupRun {
  /// What the user asked for.
  public struct Request: Sendable {
    public var id: String?
    public var doneOnly = false
    public var cancelledOnly = false
    public var keepWorktree = false
    public var force = false

    public init(
      id: String? = nil, doneOnly: Bool = false, cancelledOnly: Bool = false, keepWorktree: Bool = false,
      force: Bool = false
    ) {
      self.id = id
      self.doneOnly = doneOnly
      self.cancelledOnly = cancelledOnly
      self.keepWorktree = keepWorktree
      self.force = force
    }
  }

  /// A one-line refusal of `cleanup --id` (nothing was changed).
  public struct Refusal: Error, CustomStringConvertible, LocalizedError {
    public var description: String
    init(_ description: String) { self.description = description }
    public var errorDescription: String? { description }
  }

  let workspace: QueueWorkspace
  let request: Request

  public init(workspace: QueueWorkspace, request: Request) {
    self.workspace = workspace
    self.request = request
  }

  /// Cleans up, printing each result line through `out` (`T-1: removed container …`, then the summary)
  /// and each task this machine does not trust through `refused` as it goes.
  ///
  /// - Returns: how many tasks were refused (their records name paths this machine does not trust).
  /// - Throws: ``Refusal``, `QueueError` for an `--id` that cannot be cleaned up (nothing was changed).
  public func run(out: (String) -> Void, refused: (String) -> Void) throws -> Int {
    let settings = try RunSettings(workspace.settings)
    let targets = try self.targets()
    let cleaner = Cleaner(settings: settings, queueDirectory: workspace.commonDirectory)
    let policy = RecordPolicy(settings: settings, queueRepository: workspace.queueRepository)
    // The record may come from a remote: touch nothing it names unless this machine trusts it.
    var trusted: [TaskRecord] = []
    var refusals = 0
    for record in targets {
      if let refusal = policy.refusal(record, for: .cleanup) {
        refused(refusal)
        refusals += 1
      } else {
        trusted.append(record)
      }
    }
    // Containers first, side by side (stopping and removing one takes the engine ~0.3 s); then each
    // task's worktree and record, in order.
    var kept = 0
    var cleaned = 0
    let secrets = ServerSecrets(commonDirectory: workspace.commonDirectory)
    let containers = cleaner.removeContainers(of: trusted)
    for (record, removal) in zip(trusted, containers) {
      let result = cleaner.clean(
        record, keepWorktree: request.keepWorktree, force: request.force, secrets: secrets,
        containersRemoved: removal)
      for line in result.messages { out("\(record.id): \(line)") }
      if result.worktreeKept && !request.keepWorktree { kept += 1 }
      _ = try workspace.store.recordCleanup(record.id, result: result)
      if !result.removedContainers.isEmpty || result.worktreeRemoved { cleaned += 1 }
    }
    var extra = 0
    let all = try workspace.store.snapshot().records()
    if request.id == nil {
      for line in cleaner.removeOrphanContainers(keeping: Set(all.map(\.id))) {
        out(line)
        extra += 1
      }
    }
    let scope = request.id.map { id in all.filter { $0.id == id } } ?? all
    for line in cleaner.repairHalfMadeWorktrees(scope, queueRepository: workspace.queueRepository) {
      out(line)
      extra += 1
    }
    var summary = cleaned > 0 ? "cleaned \(cleaned) task(s)" : "nothing to clean up"
    if extra > 0 { summary += ", \(extra) other repair(s)" }
    if kept > 0 { summary += ", kept \(kept) worktree(s) with work in them" }
    out(summary)
    return refusals
  }

  /// The tasks to clean: the one `--id` names (checked: not running, of the status asked for, not in
  /// review and without uncommitted work unless forced), or every done and/or cancelled task.
  func targets() throws -> [TaskRecord] {
    let snapshot = try workspace.store.snapshot()
    guard let id = request.id else {
      let wanted: Set<TaskStatus> =
        request.doneOnly ? [.done] : request.cancelledOnly ? [.cancelled] : [.done, .cancelled]
      return try snapshot.records().filter { wanted.contains($0.status) }
    }
    try TaskID.validate(id)
    let record = try snapshot.existing(id)
    if record.status.isActive {
      throw QueueError.illegalTransition(
        id: id, command: "clean up", status: record.status, needs: TaskStatus.displayOrder.filter { !$0.isActive })
    }
    if request.doneOnly && record.status != .done || request.cancelledOnly && record.status != .cancelled {
      throw QueueError.illegalTransition(
        id: id, command: "clean up", status: record.status, needs: request.doneOnly ? [.done] : [.cancelled])
    }
    guard !request.force else { return [record] }
    if record.status == .review {
      throw Refusal(
        "task '\(id)' is in review: cleaning it up would stop its server and remove its worktree before anyone approved it; approve or cancel it first, or pass --force"
      )
    }
    if !request.keepWorktree, let path = record.worktreePath, let changes = Cleaner.uncommittedChanges(at: path),
      !changes.isEmpty
    {
      let shown = quotedList(changes, limit: 5)
      throw Refusal(
        "the worktree of task '\(id)' has uncommitted work (\(shown)); commit it, or pass --force to delete it, or --keep-worktree"
      )
    }
    return [record]
  }
}
