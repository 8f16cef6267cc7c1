import TaskQueue

extension QueueSync {
  /// The sync of `store` with its remotes through the git CLI, the one way every command and worker
  /// builds it (fetch and push run against `gitDirectory`, so the user's protocols, credential helpers
  /// and ssh configuration apply).
  public static func forRemote(store: QueueStore, gitDirectory: String) -> QueueSync {
    forRemote(store: store, transport: GitCLITransport(gitDirectory: gitDirectory))
  }

  /// The sync of `store` through `transport` (a run's, which keeps ssh connections open), with the
  /// liveness check of this machine's workers that a replay asks before it drops a dead worker's steps.
  public static func forRemote(store: QueueStore, transport: any QueueTransport) -> QueueSync {
    let sync = QueueSync(store: store, transport: transport)
    sync.isWorkerAlive = isRunningHere
    return sync
  }

  /// Whether the worker `name` still runs, for a replay of this clone's unpublished steps.
  ///
  /// Those steps were made on this clone, so their worker was a process of this machine: it runs when its
  /// pid runs with the recorded start time (``WorkerProcess/isAlive``). A name that does not parse (another
  /// tool or version) or that names another host (a clone copied from another machine, or a host renamed
  /// since) cannot be checked here: it counts as alive, so its steps supersede the recovery as they did
  /// before liveness was checked, rather than be dropped on a guess.
  static func isRunningHere(_ name: String) -> Bool {
    guard let process = WorkerProcess(name), process.isOnThisHost else { return true }
    return process.isAlive
  }
}
