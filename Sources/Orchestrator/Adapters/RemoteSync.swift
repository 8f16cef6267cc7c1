import TaskQueue

extension QueueSync {
  /// The sync of `store` with its remotes through the git CLI, the one way every command and worker
  /// builds it (fetch and push run against `gitDirectory`, so the user's protocols, credential helpers
  /// and ssh configuration apply).
  public static func forRemote(store: QueueStore, gitDirectory: String) -> QueueSync {
    QueueSync(store: store, transport: GitCLITransport(gitDirectory: gitDirectory))
  }
}
