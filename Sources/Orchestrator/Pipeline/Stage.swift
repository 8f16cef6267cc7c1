/// A stage of one task's run, as the failure report and the `Taskq-Op` of its failure name it.
public enum Stage: String, Sendable, CaseIterable {
  /// The worktree and branch (and the trust checks before them).
  case setup
  /// The task's container and its server's health.
  case container
  /// The agent's plan command.
  case planning
  /// The agent's build command.
  case building
}

extension StageFailure {
  /// A failure of `stage`.
  init(
    _ stage: Stage, summary: String, spec: ProcessSpec? = nil, result: ProcessResult? = nil, detail: String? = nil
  ) {
    self.init(stage: stage.rawValue, summary: summary, spec: spec, result: result, detail: detail)
  }
}
