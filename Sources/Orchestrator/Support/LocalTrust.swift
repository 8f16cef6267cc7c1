import TaskQueue

/// Trust given on this machine to the paths a user names in `add`.
///
/// A record names its repository and worktree; `run`, `review` and `cleanup` act only on paths this
/// machine trusts (``RecordPolicy``). A path outside the configured roots that the user typed here is
/// trusted here (`taskq.trustedPath` in the repository's own config); records from a remote that name
/// other paths stay refused.
public enum LocalTrust {
  /// The explicit paths of `record` (a `repo` given as a path, a `worktree_path`) that `policy` does not
  /// trust yet.
  public static func untrustedPaths(of record: TaskRecord, policy: RecordPolicy) -> [String] {
    var paths: [String] = []
    if case .path(let path) = RepositoryReference(stored: record.repo), !policy.isTrustedRepository(path) {
      paths.append(path)
    }
    if let worktree = record.worktreePath, !policy.isTrustedWorktree(worktree) { paths.append(worktree) }
    return paths
  }

  /// Trusts the untrusted paths of `record`, a task just added in `workspace`.
  ///
  /// - Returns: one line for standard error per path: a note when it is trusted now, a warning with the
  ///   command to run when it could not be written.
  public static func trustAdded(_ record: TaskRecord, in workspace: QueueWorkspace) -> [String] {
    let settings = workspace.settings
    let policy = RecordPolicy(
      reposRoot: settings.path(.reposRoot), worktreesRoot: settings.path(.worktreesRoot),
      trustedPaths: settings.trustedPaths, portRange: nil, queueRepository: workspace.queueRepository)
    return untrustedPaths(of: record, policy: policy).map { path in
      do {
        try workspace.repository.addLocalConfigValue("taskq.trustedPath", path)
        return "note: trusting \(path) for tasks on this machine (taskq.trustedPath)"
      } catch {
        return
          "warning: could not trust \(path) (\(error)); run: git config --add taskq.trustedPath \(shellQuote(path))"
      }
    }
  }
}
