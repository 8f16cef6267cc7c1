import Git

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one-time hint that a queue is not shared yet.
///
/// `git clone` does not fetch `refs/taskq/queue`, so in a fresh clone `add` starts a queue of its own and
/// `status` shows only local tasks, while the remote may hold the team's. When the repository has the
/// remote that `sync` would use and its queue was never fetched, `add` and `status` say once (per
/// repository) that `git taskq sync` shares it.
public enum ShareHint {
  /// The hint to print, or `nil`: there is no such remote, its queue was fetched before, or the hint was
  /// already given here. Giving it records that in `<git common dir>/taskq/hinted-sync`.
  public static func once(repository: Repository, remote: String) -> String? {
    // Given (or a sync ran) once: one stat, so that `status` and `add` pay nothing more from then on.
    guard access(markerPath(repository), F_OK) != 0, QueueSync.isValidRemoteName(remote),
      // No remote of that name: nothing to share with, nothing to say.
      let url = try? repository.configuration().string("remote.\(remote).url"), !url.isEmpty,
      // A missing tracking ref is the case to hint at; an error reading it is not worth a hint.
      (try? repository.referenceTarget(QueueSync.trackingRef(for: remote))) == .some(nil)
    else { return nil }
    // The first process to create the marker gives the hint; every later one stays silent.
    guard markKnown(repository: repository) else { return nil }
    return
      "hint: the queue is not shared with '\(remote)' yet: 'git taskq sync' fetches its queue and publishes this one"
  }

  /// Records that the user knows about `sync` (it was hinted, or a sync ran); `true` when this call made
  /// the record.
  @discardableResult
  public static func markKnown(repository: Repository) -> Bool {
    mkdir(repository.commonDirectory + "taskq", 0o755)
    let fd = open(markerPath(repository), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0o644)
    guard fd >= 0 else { return false }
    close(fd)
    return true
  }

  private static func markerPath(_ repository: Repository) -> String {
    repository.commonDirectory + "taskq/hinted-sync"
  }
}
