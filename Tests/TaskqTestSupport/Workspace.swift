import TaskQueue

extension ScratchRepository {
  /// What a command in this repository opens: its repository, a store as `worker`, and the settings from
  /// its configuration with `overrides` as flags (no `TASKQ_*` variables).
  public func workspace(overrides: [SettingKey: String] = [:], worker: String = "test-worker") throws
    -> QueueWorkspace
  {
    let repository = try open()
    return QueueWorkspace(
      repository: repository, store: QueueStore(repository: repository, worker: worker),
      settings: try Settings(configuration: try repository.configuration(), environment: [:], overrides: overrides))
  }
}
