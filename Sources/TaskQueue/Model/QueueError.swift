#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything a queue operation refuses, each with the context to say what is wrong and how to fix it.
///
/// Messages are lowercase fragments that the command line prints after `error: `.
public enum QueueError: Error, Equatable, LocalizedError, CustomStringConvertible {
  case notFound(String)
  case duplicate(String)
  case invalidID(String, reason: String)
  case illegalTransition(id: String, command: String, status: TaskStatus, needs: [TaskStatus])
  case newerFormat(found: Int, supported: Int)
  case corrupt(String)
  case contention(attempts: Int)
  case taskFile(path: String, problem: String)
  case conflictingOptions(String)
  case missingOption(String)
  case repositoryNotFound(String, hint: String)
  case baseNotFound(base: String, repo: String)
  case dependency(String)
  case invalidValue(key: String, value: String, expected: String)
  case notARepository(String)
  /// `sync` with a remote this repository does not configure.
  case noSuchRemote(String)
  /// A remote refuses every push because a lock file stays there (left by a git process that died).
  case staleRemoteLock(remote: String, lockFile: String)
  /// The reflog of the queue ref cannot be written; `reason` is libgit2's.
  case reflogNotWritable(path: String, reason: String)
  /// The writer lock of this machine's git-taskq processes cannot be used.
  case writerLockUnusable(path: String, problem: WriterLockProblem)
  /// The ref's tip cannot be read, and neither its reflog nor a tracking ref holds an intact commit.
  case noIntactCommit(tip: String)
  /// The editor of `add --edit` or `edit` could not start, or did not end well.
  case editor(String, failure: EditorFailure)
  /// A worker's task moved under it (cancelled, or recovered by another process).
  case lostClaim(id: String, status: TaskStatus)
  /// The ref's lock file stays although it is not stale yet (or cannot be removed).
  case locked(path: String, age: Int)
  /// A write that would leave a record readers skip (a field out of range, a file over its cap).
  case invalidRecord(id: String, problem: String)
  /// Task `id`'s directory is in the queue but breaks the record rules (a damaged or foreign record).
  case damaged(id: String, problem: String)
  /// A path built from queue data that would leave its root.
  case unsafePath(root: String, component: String, reason: String)
  /// The ref points at a commit (or tree) that is not in the object database.
  case unreadableTip(commit: String, detail: String)
  /// A remote's `refs/taskq/queue` holds something that is no queue (a blob, a commit of the code).
  case remoteNotAQueue(remote: String, problem: String)
  /// A remote's queue shares no commit with the one this clone fetched from it before (`now`, `before`:
  /// abbreviated ids): it was replaced, e.g. by another project's queue.
  case remoteQueueReplaced(remote: String, now: String, before: String)
  /// Another git-taskq process of this machine held the writer lock for `seconds` (stopped or stuck).
  case writerBusy(holder: String, seconds: Int)
  /// A state that should be impossible: a bug of ours, with a hint to report it.
  case internalError(InternalError)

  /// The message, always one line: values a user typed (a path, a base, a repository name) or a remote wrote
  /// may hold newlines and control characters, which are shown escaped.
  public var description: String { Self.oneLine(message) }

  private var message: String {
    switch self {
    case .notFound(let id):
      return "task '\(id)' not found (see 'git taskq status')"
    case .duplicate(let id):
      return "task '\(id)' already exists (choose another --id, or 'git taskq remove --id \(id)' first)"
    case .invalidID(let id, let reason):
      return
        "invalid task id '\(Self.printable(id))': \(reason) (allowed: [A-Za-z0-9][A-Za-z0-9._-]*, at most \(TaskID.maximumLength) characters)"
    case .illegalTransition(let id, let command, let status, let needs):
      let list = needs.map { "'\($0.rawValue)'" }.joined(separator: " or ")
      return "cannot \(command) task '\(id)': it is '\(status.rawValue)' (\(command) needs \(list))"
    case .newerFormat(let found, let supported):
      return "the queue uses storage format \(found), this git-taskq reads up to \(supported) (upgrade git-taskq)"
    case .corrupt(let what):
      return "the queue is damaged: \(what) (run 'git fsck' and see 'git log refs/taskq/queue')"
    case .contention(let attempts):
      return "could not update refs/taskq/queue after \(attempts) attempts: other writers kept winning (try again)"
    case .taskFile(let path, let problem):
      return "task file '\(path)': \(problem)"
    case .conflictingOptions(let text), .missingOption(let text), .dependency(let text):
      return text
    case .noSuchRemote(let remote):
      return "no such remote '\(remote)' (see 'git remote -v'; add one with 'git remote add \(remote) URL')"
    case .staleRemoteLock(let remote, let lock):
      return
        "the remote '\(remote)' refuses every push: its lock file '\(Self.printable(lock))' stays (left by a git process that died there?); if no push to '\(remote)' is running, remove that file on the remote (e.g. 'rm \(lock)' on its host), then sync again"
    case .reflogNotWritable(let path, let reason):
      return
        "cannot write the reflog of \(Layout.refName) ('\(path)'): \(reason.isEmpty ? "libgit2 refused" : reason) (it must be a writable file)"
    case .writerLockUnusable(let path, .cannotOpen(let reason)):
      return "cannot open the queue's writer lock '\(path)': \(reason) (it must be a regular file: remove it)"
    case .writerLockUnusable(let path, .notWritable(let reason)):
      return
        "cannot open the queue's writer lock '\(path)': \(reason) (changing the queue needs write access to the repository's git directory)"
    case .writerLockUnusable(let path, .notARegularFile):
      return "the queue's writer lock '\(path)' is not a regular file (remove it)"
    case .writerLockUnusable(let path, .cannotLock(let reason)):
      return "cannot lock '\(path)': \(reason)"
    case .noIntactCommit(let tip):
      return
        "refs/taskq/queue points at \(tip), which cannot be read, and neither its reflog nor a remote-tracking ref holds an intact queue commit (fetch one with 'git taskq sync')"
    case .editor(let editor, .cannotStart(let reason)):
      return "cannot start the editor '\(editor)': \(reason)"
    case .editor(let editor, .failed(let ending, let keptDraft)):
      let kept = keptDraft.map { "; nothing was recorded, and your text is kept in '\($0)'" } ?? ""
      return "there was a problem with the editor '\(editor)': it \(ending)\(kept)"
    case .repositoryNotFound(let repo, let hint):
      return "repository '\(repo)' not found: \(hint)"
    case .baseNotFound(let base, let repo):
      return "base branch '\(base)' does not exist in '\(repo)' (pass --base, or create it)"
    case .invalidValue(let key, let value, let expected):
      return "invalid value '\(Self.printable(value))' for \(key): expected \(expected)"
    case .locked(let path, let age):
      return
        "refs/taskq/queue is locked by '\(path)' (\(age)s old) and no git-taskq is writing: another git process holds it (gc, update-ref) or crashed; if no git process is running, remove it: rm -rf '\(path)'"
    case .invalidRecord(let id, let problem):
      return "refusing to write task '\(Self.printable(id))': \(problem) (nothing was written)"
    case .damaged(let id, let problem):
      let shown = Self.printable(id)
      return
        "task '\(shown)' is damaged: \(problem) (see 'git taskq fsck'; 'git taskq remove --id \(shown)' removes it)"
    case .unsafePath(let root, let component, let reason):
      return "refusing the path component '\(Self.printable(component))' below '\(Self.printable(root))': \(reason)"
    case .unreadableTip(let commit, let detail):
      return
        "refs/taskq/queue points at \(commit), which cannot be read (\(detail)): run 'git taskq fsck --repair' to move it back to the newest intact commit"
    case .remoteNotAQueue(let remote, let problem):
      return
        "'\(remote)'s refs/taskq/queue is not a git-taskq queue (\(problem)): nothing was changed (see 'git ls-remote \(remote) refs/taskq/queue'; whoever pushed it there can push the queue back)"
    case .remoteQueueReplaced(let remote, let now, let before):
      return
        "the queue on remote '\(remote)' (\(now)) shares no history with the one this clone synced with before (\(before)): it was replaced, perhaps by another project's queue, and this clone's operations would mix into it; nothing was changed here or there (see 'git ls-remote \(remote) refs/taskq/queue'; to replay this queue's operations onto it anyway: git update-ref -d \(QueueSync.trackingRef(for: remote)) && git taskq sync \(remote))"
    case .writerBusy(let holder, let seconds):
      let pid = holder.split(separator: " ").first.map(String.init) ?? "PID"
      return
        "another git-taskq (pid \(holder)) has been writing refs/taskq/queue for \(seconds)s without finishing: if it is stopped, resume it ('kill -CONT \(pid)'); nothing was written, try again"
    case .internalError(let error):
      return "internal error: \(error.what) (please report this bug)"
    case .lostClaim(let id, let status):
      return "task '\(id)' is no longer held by this worker: it is '\(status.rawValue)'"
    case .notARepository(let path):
      return "not a git repository (or any of the parent directories): \(path)"
    }
  }

  public var errorDescription: String? { description }

  /// Why the writer lock file cannot be used.
  public enum WriterLockProblem: Equatable, Sendable {
    /// `open` failed (`reason`: the system's words, or "it is a symbolic link").
    case cannotOpen(reason: String)
    /// `open` was refused for want of write access (a read-only file system, another user's repository).
    case notWritable(reason: String)
    case notARegularFile
    /// `flock` failed for another reason than another holder.
    case cannotLock(reason: String)
  }

  /// How the editor failed.
  public enum EditorFailure: Equatable, Sendable {
    /// It could not be started (`reason`: the system's words).
    case cannotStart(reason: String)
    /// It ended badly (`ending`: "exited with status 1", "was killed by signal 9"); `keptDraft` is the
    /// file that keeps what the user wrote.
    case failed(ending: String, keptDraft: String?)
  }

  /// `text` with control characters and newlines escaped, so one error stays one line (see
  /// ``TerminalText/line(_:)``).
  static func oneLine(_ text: String) -> String { TerminalText.line(text) }

  /// ``oneLine(_:)``, shortened to 80 characters (for ids and values quoted inside a longer message).
  public static func printable(_ text: String) -> String {
    let out = oneLine(text)
    return out.count > 80 ? String(out.prefix(77)) + "..." : out
  }
}
