import TaskQueue
import TaskqTestSupport
import Testing

/// The errors that carry structure say exactly what the single strings said before (the command line and
/// scripts read these lines), and an impossible state is an internal error that knows where it was found.
@Suite struct QueueErrorTests {
  @Test(arguments: [
    (
      QueueError.noSuchRemote("origin"),
      "no such remote 'origin' (see 'git remote -v'; add one with 'git remote add origin URL')"
    ),
    (
      QueueError.staleRemoteLock(remote: "origin", lockFile: "/srv/q.git/refs/taskq/queue.lock"),
      "the remote 'origin' refuses every push: its lock file '/srv/q.git/refs/taskq/queue.lock' stays (left by a git process that died there?); if no push to 'origin' is running, remove that file on the remote (e.g. 'rm /srv/q.git/refs/taskq/queue.lock' on its host), then sync again"
    ),
    (
      QueueError.reflogNotWritable(path: "/r/.git/logs/refs/taskq/queue", reason: ""),
      "cannot write the reflog of refs/taskq/queue ('/r/.git/logs/refs/taskq/queue'): libgit2 refused (it must be a writable file)"
    ),
    (
      QueueError.reflogNotWritable(path: "/r/log", reason: "failed to open"),
      "cannot write the reflog of refs/taskq/queue ('/r/log'): failed to open (it must be a writable file)"
    ),
    (
      QueueError.writerLockUnusable(
        path: "/r/.git/taskq/writer.lock", problem: .cannotOpen(reason: "it is a symbolic link")),
      "cannot open the queue's writer lock '/r/.git/taskq/writer.lock': it is a symbolic link (it must be a regular file: remove it)"
    ),
    (
      QueueError.writerLockUnusable(path: "/r/w.lock", problem: .notWritable(reason: "Read-only file system")),
      "cannot open the queue's writer lock '/r/w.lock': Read-only file system (changing the queue needs write access to the repository's git directory)"
    ),
    (
      QueueError.writerLockUnusable(path: "/r/w.lock", problem: .notARegularFile),
      "the queue's writer lock '/r/w.lock' is not a regular file (remove it)"
    ),
    (
      QueueError.writerLockUnusable(path: "/r/w.lock", problem: .cannotLock(reason: "Bad file descriptor")),
      "cannot lock '/r/w.lock': Bad file descriptor"
    ),
    (
      QueueError.noIntactCommit(tip: "0123456789ab"),
      "refs/taskq/queue points at 0123456789ab, which cannot be read, and neither its reflog nor a remote-tracking ref holds an intact queue commit (fetch one with 'git taskq sync')"
    ),
    (
      QueueError.editor("vim -f", failure: .cannotStart(reason: "No such file or directory")),
      "cannot start the editor 'vim -f': No such file or directory"
    ),
    (
      QueueError.editor("vim", failure: .failed(ending: "exited with status 1", keptDraft: "/r/.git/TASK_EDITMSG")),
      "there was a problem with the editor 'vim': it exited with status 1; nothing was recorded, and your text is kept in '/r/.git/TASK_EDITMSG'"
    ),
    (
      QueueError.editor("vim", failure: .failed(ending: "was killed by signal 9", keptDraft: nil)),
      "there was a problem with the editor 'vim': it was killed by signal 9"
    ),
  ])
  func messagesStayAsTheyWere(_ error: QueueError, _ message: String) {
    #expect(error.description == message)
  }

  @Test func aValueFromElsewhereStaysOnOneLine() {
    let error = QueueError.staleRemoteLock(remote: "origin", lockFile: "/q\n.lock")
    #expect(!error.description.contains("\n"))
  }

  @Test func anUpdateWithoutAnOperationIsAnInternalErrorThatSaysWhere() throws {
    let scratch = try ScratchRepository()
    try scratch.addTask("T-1")
    let store = try scratch.store()
    let tip = try store.tip()
    #expect {
      try store.update { tx in
        var record = try tx.existing("T-1")
        record.priority = 5
        tx.put(record)
      }
    } throws: { error in
      guard case QueueError.internalError(let bug) = error else { return false }
      return bug.what == "a queue update without an operation" && bug.file.hasSuffix("QueueStore.swift")
        && "\(error)" == "internal error: a queue update without an operation (please report this bug)"
    }
    #expect(try store.tip() == tip)
  }
}
