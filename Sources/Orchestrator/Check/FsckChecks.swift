import TaskQueue

/// `fsck`: the queue's own checks (``QueueChecker``) and the machine's around it (``MachineChecker``).
public enum FsckChecks {
  /// Every finding, and how many tasks the queue holds.
  ///
  /// Settings the machine checks cannot use (a malformed `taskq.portRange`, say) do not hide the queue's
  /// findings: they become a finding of their own, saying the machine checks were skipped and why.
  public static func check(_ workspace: QueueWorkspace) throws -> (findings: [Finding], taskCount: Int) {
    var findings = try QueueChecker(store: workspace.store).check()
    // An unreadable snapshot is already a finding of QueueChecker's (with its fix): the machine checks
    // then look at no records rather than repeat it.
    let records = (try? workspace.store.snapshot().records()) ?? []
    do {
      let settings = try RunSettings(workspace.settings)
      findings += MachineChecker(store: workspace.store, settings: settings).check(records: records)
    } catch {
      findings.append(
        Finding(
          .warning, "the checks of this machine were skipped: \(ErrorText.line(error))",
          fix: "correct the setting, then run 'git taskq fsck' again"))
    }
    return (findings, records.count)
  }
}
