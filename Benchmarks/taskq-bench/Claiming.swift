import TaskQueue

/// THE HOOK for the concurrency measurement: how a process claims work.
///
/// Until `git-taskq` has a command that claims, the per-process measurement times `git-taskq cancel --id`
/// (one transition per process, the same compare-and-swap path a claim takes). To switch to claims, set
/// ``commandName`` and ``command(for:)`` to the claiming command. The long-lived worker processes call
/// ``claimOne(_:)``, which is `QueueStore.claimNext()`, as `git taskq run` workers do.
enum Claiming {
  /// The subcommand each spawned process runs once.
  static let commandName = "cancel"

  /// The arguments for the process that handles task `id`.
  static func command(for id: String) -> [String] { [commandName, "--id", id] }

  /// What ``claimOne(_:)`` uses, for the results.
  static let implementation = "QueueStore.claimNext()"

  /// Claims the next runnable task for `store`'s worker.
  ///
  /// - Returns: the claimed id, or `nil` when nothing is left.
  @discardableResult
  static func claimOne(_ store: QueueStore) throws -> String? {
    try store.claimNext()?.id
  }
}
