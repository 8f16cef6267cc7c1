import Foundation
import Orchestrator
import TaskQueue
import TaskqTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Machines sharing the queue through git's smart HTTP protocol: `git http-backend` behind a small Python
/// server on loopback (``GitHTTPServer``), every clone made through it and pushing to it, each machine's
/// `git-taskq` under a host name of its own when `unshare --uts` is allowed, with the demo agent.
@Suite struct HttpServerTests {
  /// A shared remote served over HTTP, and `count` machines cloned through it, `h1`…`hN`.
  func serve(_ count: Int, pushRefusal: String? = nil, status: Int = 403) throws -> (
    SharedRemote, GitHTTPServer, [Machine]
  ) {
    let shared = try SharedRemote()
    let server = try GitHTTPServer(basePath: shared.scratch.path, pushRefusal: pushRefusal, status: status)
    let machines = try shared.demoMachines(count, prefix: "h", cloneURL: server.url("remote.git"))
    return (shared, server, machines)
  }

  /// The lines of `text` that carry a carriage return (ssh's and curl's line ends must not reach a message).
  func carriageReturns(_ text: String) -> [String] {
    text.split(separator: "\n").map(String.init).filter { $0.contains("\r") }
  }

  /// Two clones on two host names run every task once over HTTP, at the same time; one of them added a
  /// task before its first sync (its queue started from a root of its own). History linear, clones converge.
  @Test func twoClonesRunEveryTaskOnceOverSmartHTTP() throws {
    let (shared, server, machines) = try serve(2)
    defer { withExtendedLifetime(server) {} }
    let (a, b) = (machines[0], machines[1])
    let ids = (1...5).map { "H-\($0)" }
    for id in ids { try a.taskqOK("add", "--id", id, "--task", "Write the notes of \(id)") }
    let created = try a.taskqOK("sync")
    #expect(created.stdoutText == "sync origin: created the remote queue (5 commit(s))\n", "\(created.stdoutText)")
    // B is a fresh clone that adds before its first sync.
    try b.taskqOK("add", "--id", "F-1", "--task", "Write the notes of F-1")
    for machine in machines { machine.environment["DEMO_AGENT_DELAY"] = "0.2" }

    let runs = try machines.map { try $0.start("run", "--remote", "origin", "--max-parallel", "2", timeout: 150) }
    let results = try runs.map { try $0.wait(timeout: 150) }
    for (machine, result) in zip(machines, results) {
      #expect(result.status == 0, "\(machine.name): \(result.summary)")
      #expect(carriageReturns(result.stderrText).isEmpty, "\(machine.name): \(result.stderrText)")
    }
    try RealServerTests().expectEachRanOnce(ids + ["F-1"], shared, machines)
    for machine in machines { try machine.taskqOK("sync") }
    for machine in machines { #expect(try machine.queueTip() == shared.queueTip(), "\(machine.name)") }
    #expect(try shared.records().first { $0.id == "F-1" }?.seq ?? 0 > 5)
  }

  /// A server that answers every push with 403 and a reason: the push is a refusal with git's reason and the
  /// server's on one line, the local queue keeps its operations; once the server is gone, "cannot reach"
  /// with curl's whole reason.
  @Test func aPushRefusedWith403IsARefusalWithTheServersReason() throws {
    let (shared, server, machines) = try serve(1, pushRefusal: "pushes to this repository need write access")
    let a = machines[0]
    try a.taskqOK("add", "--id", "T-1", "--task", "Write the notes of T-1")
    let tip = try a.queueTip()
    let refused = try a.taskq("sync")
    #expect(refused.status == 1, "\(refused.summary)")
    #expect(refused.stdoutText == "")
    #expect(
      refused.stderrLines == [
        "error: remote 'origin' refused refs/taskq/queue: unable to access '\(server.url("remote.git"))/': "
          + "The requested URL returned error: 403 (remote: pushes to this repository need write access) "
          + "(nothing was published; the local queue keeps its operations)"
      ], "\(refused.stderrText)")
    #expect(try a.queueTip() == tip)
    #expect(try a.record("T-1").status == .todo)
    #expect(try shared.queueTip() == nil)

    server.stop()
    let gone = try a.taskq("sync")
    #expect(gone.status == 1, "\(gone.summary)")
    #expect(gone.stderrLines.count == 1, "\(gone.stderrText)")
    #expect(
      gone.stderrText.hasPrefix(
        "error: cannot reach remote 'origin': unable to access '\(server.url("remote.git"))/': Failed to connect to 127.0.0.1 port \(server.port)"
      ), "\(gone.stderrText)")
    #expect(carriageReturns(refused.stderrText + gone.stderrText).isEmpty)
    #expect(try a.queueTip() == tip)
  }

  /// A server that wants credentials for pushes (401) and none are configured: git is told never to prompt,
  /// so the push is a refusal at once, with git's reason, not a hang or "cannot reach".
  @Test func aPushThatNeedsCredentialsIsARefusalWithoutAPrompt() throws {
    let (shared, server, machines) = try serve(1, pushRefusal: "log in to push", status: 401)
    defer { withExtendedLifetime(server) {} }
    let a = machines[0]
    try a.taskqOK("add", "--id", "T-1", "--task", "Write the notes of T-1")
    let tip = try a.queueTip()
    let refused = try a.taskq("sync", timeout: 30)
    #expect(
      refused.stderrLines == [
        "error: remote 'origin' refused refs/taskq/queue: could not read Username for 'http://127.0.0.1:\(server.port)': "
          + "terminal prompts disabled (nothing was published; the local queue keeps its operations)"
      ], "\(refused.stderrText)")
    #expect(refused.status == 1)
    #expect(try a.queueTip() == tip)
    #expect(try shared.queueTip() == nil)
  }

  /// The server takes what `http.server`'s CGI handler could not: a push larger than git's `http.postBuffer`
  /// (1 MiB), which git sends with a chunked transfer encoding.
  @Test func theServerTakesAChunkedPush() throws {
    let (shared, server, machines) = try serve(1)
    defer { withExtendedLifetime(server) {} }
    let a = machines[0]
    let noise = try ProcessRunner.run(ProcessSpec("head", ["-c", "3000000", "/dev/urandom"], timeout: 30))
    try Data(noise.stdout).write(to: URL(fileURLWithPath: a.path + "/noise.bin"))
    try a.git("add", "noise.bin")
    try a.git("commit", "-q", "-m", "three megabytes")
    let trace = a.root + "/curl.trace"
    let pushed = try ProcessRunner.run(
      ProcessSpec(
        "git", ["push", "-q", "origin", "HEAD:big"],
        environment: ["HOME": a.home, "GIT_TRACE_CURL": trace, "GIT_TRACE_CURL_NO_DATA": "1"], directory: a.path,
        timeout: 60))
    #expect(pushed.succeeded, "\(pushed.summary)")
    let headers = try String(contentsOfFile: trace, encoding: .utf8)
    #expect(headers.contains("Transfer-Encoding: chunked"), "the push was not chunked")
    #expect(try Git.run(["rev-parse", "big"], in: shared.bare) == a.git("rev-parse", "HEAD"))
  }

  /// `run --remote --poll` through a server that is killed after the first claim and started again 4 s
  /// later: the run does not end, the work waits in the local queue and is published once the server is
  /// back; every warning is one line, with curl's whole reason.
  @Test func aPollingRunOutlivesTheServerAndPublishesWhenItIsBack() throws {
    let (shared, server, machines) = try serve(1)
    let a = machines[0]
    let ids = ["T-1", "T-2", "T-3"]
    for id in ids { try a.taskqOK("add", "--id", id, "--task", "Write the notes of \(id)") }
    try a.taskqOK("sync")
    a.environment["DEMO_AGENT_DELAY"] = "1"

    let run = try a.start("run", "--remote", "origin", "--max-parallel", "1", "--poll", "1", timeout: 150)
    try waitUntil("the first claim on the server", timeout: 60) {
      try shared.subjects().contains { $0.hasSuffix(": todo → planning") }
    }
    server.stop()
    Thread.sleep(forTimeInterval: 4)
    #expect(!run.isFinished, "the run ended while the server was away")
    try server.start()
    try waitUntil("every task in review on the server", timeout: 120) {
      let records = try shared.records()
      return records.count == 3 && records.allSatisfy { $0.status == .review && $0.worker == nil }
    }
    #expect(!run.isFinished, "a polling run ended")
    run.signal(SIGINT)
    let result = try run.wait(timeout: 30)
    #expect(result.status == 130, "\(result.summary)")
    #expect(carriageReturns(result.stderrText).isEmpty, "\(result.stderrText)")
    let warnings = result.stderrText.split(separator: "\n").filter {
      $0.contains("claims paused") || $0.contains("could not publish to 'origin'")
    }
    #expect(!warnings.isEmpty, "\(result.stderrText)")
    // git's own reason, whole: "unable to access '<url>': Failed to connect …" when the request could not
    // start, "RPC failed; curl 7 Failed to connect …" when the server went away between a push's requests.
    for warning in warnings {
      #expect(
        (warning.contains("unable to access '") || warning.contains("RPC failed; curl "))
          && warning.contains(": "), "\(warning)")
    }
    try RealServerTests().expectEachRanOnce(ids, shared, machines)
  }

  /// The server takes a claim and dies before it answers (a reference-transaction hook kills receive-pack
  /// once the first claim is committed, as a crash would). Over HTTP git then says "RPC failed; …" or, when
  /// curl retried the request on a new connection, "Failed to connect": the claim may have landed, so it is
  /// given back with a `release` commit, never withdrawn as if unpublished, which left the task `planning`
  /// under this worker on the server and run by nobody until its lease expired.
  @Test func aClaimWhoseAnswerIsLostIsGivenBackAndRunOnce() throws {
    let (shared, server, machines) = try serve(1)
    defer { withExtendedLifetime(server) {} }
    let a = machines[0]
    let ids = ["T-1", "T-2", "T-3"]
    for id in ids { try a.taskqOK("add", "--id", id, "--task", "Write the notes of \(id)") }
    try a.taskqOK("sync")
    let marker = shared.scratch.path + "/answer-lost"
    _ = try shared.scratch.write(
      "remote.git/hooks/reference-transaction",
      """
      #!/bin/sh
      [ "$1" = committed ] || exit 0
      input=$(cat)
      case "$input" in *refs/taskq/queue*) ;; *) exit 0 ;; esac
      [ -e '\(marker)' ] && exit 0
      new=$(printf '%s\\n' "$input" | cut -d ' ' -f 2)
      git log -1 --format=%s "$new" | grep -q ': todo ' || exit 0
      touch '\(marker)'
      kill -9 $PPID
      exit 0

      """, executable: true)
    let run = try a.taskq("run", "--remote", "origin", "--max-parallel", "1", timeout: 120)
    #expect(run.status == 0, "\(run.summary)")
    #expect(FileManager.default.fileExists(atPath: marker), "no claim was cut off")
    try RealServerTests().expectEachRanOnce(ids, shared, machines)
    let subjects = try shared.subjects()
    #expect(subjects.contains { $0.contains(": planning → todo") }, "\(subjects)")
  }

  /// Which of git's reasons for a failed push say that nothing reached the server (the claims can simply be
  /// withdrawn) and which leave it open (they are given back with a commit).
  @Test(arguments: [
    ("unable to access 'http://127.0.0.1:9/q.git/': Failed to connect to 127.0.0.1 port 9 after 0 ms", false),
    ("unable to connect to 127.0.0.1: 127.0.0.1[0: 127.0.0.1]: errno=Connection refused", false),
    ("ssh: connect to host far port 22: Connection refused", false),
    ("'/srv/git/app.git' does not appear to be a git repository", false),
    ("RPC failed; curl 7 Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to server", true),
    ("RPC failed; curl 52 Empty reply from server", true),
    ("the remote end hung up unexpectedly", true),
    ("git push timed out", true),
  ])
  func aFailedPushMayHaveLandedUnlessNothingGotThrough(reason: String, mayHaveLanded: Bool) {
    #expect(GitCLITransport.pushMayHaveLanded(reason: reason) == mayHaveLanded, "\(reason)")
  }

  // MARK: Two edge cases of sharing (issue 13)

  /// A `todo` task edited on the remote (another clone's `edit`) while this clone claims it from its stale
  /// local queue, which still holds the old text: the edit lands on the server while the claim's push is
  /// under way (a pre-receive hook pushes it, once), so the claim's push loses the server's compare-and-swap,
  /// the claim replays over the edit, and the agent runs the **new** text, never one the remote no longer
  /// holds.
  @Test(arguments: [[], ["--id", "E-1"]])
  func aClaimFromAStaleQueueRunsTheTextEditedOnTheRemote(selection: [String]) throws {
    let (shared, server, machines) = try serve(2)
    defer { withExtendedLifetime(server) {} }
    let (a, b) = (machines[0], machines[1])
    try a.taskqOK("add", "--id", "E-1", "--task", "Old text of E-1")
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    let editor = try shared.scratch.write(
      "edit-text", "#!/bin/sh\nsed -i 's/Old text of E-1/New text of E-1/' \"$1\"\n", executable: true)
    let edited = try a.taskq(["edit", "--id", "E-1"], environment: ["GIT_EDITOR": editor])
    #expect(edited.status == 0, "\(edited.summary)")
    // The first push that reaches the server (B's claim) lets A's edit in first.
    let marker = shared.scratch.path + "/edit-pushed"
    _ = try shared.scratch.write(
      "remote.git/hooks/pre-receive",
      """
      #!/bin/sh
      cat >/dev/null
      [ -e '\(marker)' ] && exit 0
      touch '\(marker)'
      env -i PATH="$PATH" HOME='\(a.home)' git -C '\(a.path)' push -q '\(shared.bare)' \(Layout.refName) >/dev/null 2>&1
      exit 0

      """, executable: true)

    let run = try b.taskq(["run", "--remote", "origin"] + selection, timeout: 90)
    #expect(run.status == 0, "\(run.summary)")
    let notes = try b.git("show", "task/E-1:notes/E-1.md")
    #expect(notes.contains("New text of E-1") && !notes.contains("Old text"), "the agent ran: \(notes)")
    #expect(FileManager.default.fileExists(atPath: marker), "no push reached the server")
    let subjects = try shared.subjects()
    let edit = try #require(subjects.firstIndex { $0.hasPrefix("E-1: ") && $0.contains("edit") }, "\(subjects)")
    let claim = try #require(subjects.firstIndex(of: "E-1: todo → planning"), "\(subjects)")
    #expect(edit < claim, "\(subjects)")
    #expect(try shared.records().first { $0.id == "E-1" }?.status == .review)
    #expect(try shared.mergeCommits().isEmpty)
    #expect(try shared.forcedUpdates() == [])
  }

  /// The remote's queue replaced by another project's (an unrelated history with other tasks, force-pushed
  /// over the one this clone shared): replaying this clone's whole history onto it would mix two projects on
  /// the server. `sync` and `run --remote` refuse with one line that says so and how to join it anyway;
  /// nothing changes here or there. Done deliberately (the tracking ref deleted, as the line says), the
  /// sync replays and says that the histories share nothing; both projects' tasks are then on the server,
  /// none lost.
  @Test func aRemoteQueueReplacedByAnotherProjectsIsNotMixedIn() throws {
    let (shared, server, machines) = try serve(2)
    defer { withExtendedLifetime(server) {} }
    let (a, b) = (machines[0], machines[1])
    try a.taskqOK("add", "--id", "T-1", "--task", "Write the notes of T-1")
    try a.taskqOK("sync")
    try b.taskqOK("sync")
    let other = try ScratchRepository()
    let added = try other.taskq("add", "--id", "X-1", "--task", "Another project's task")
    #expect(added.status == 0, "\(added.summary)")
    try Git.run(["push", "-q", "--force", shared.bare, "\(Layout.refName):\(Layout.refName)"], in: other.path)
    let foreign = try shared.queueTip()
    try a.taskqOK("add", "--id", "T-2", "--task", "Write the notes of T-2")
    let (tipA, trackedA, tipB) = (try a.queueTip(), try a.trackingTip(), try b.queueTip())

    let refused = try a.taskq("sync")
    #expect(refused.status == 1, "\(refused.summary)")
    #expect(refused.stdoutText == "")
    #expect(refused.stderrLines.count == 1, "\(refused.stderrText)")
    let line = refused.stderrText
    #expect(line.hasPrefix("error: the queue on remote 'origin' "), "\(line)")
    #expect(line.contains("shares no history with the one this clone synced with before"), "\(line)")
    #expect(line.contains("git update-ref -d refs/taskq/remotes/origin/queue && git taskq sync origin"), "\(line)")
    let run = try b.taskq("run", "--remote", "origin", timeout: 60)
    #expect(run.status == 1 && run.stderrText.contains("shares no history with the one"), "\(run.summary)")
    #expect(try shared.queueTip() == foreign)
    #expect(try a.queueTip() == tipA && a.trackingTip() == trackedA)
    #expect(try b.queueTip() == tipB && b.records().allSatisfy { $0.status == .todo })

    try a.git("update-ref", "-d", QueueSync.trackingRef(for: "origin"))
    let joined = try a.taskq("sync")
    #expect(joined.status == 0, "\(joined.summary)")
    #expect(
      joined.stdoutText.contains("the remote's queue shares no history with the local one"), "\(joined.stdoutText)")
    #expect(Set(try shared.records().map(\.id)) == ["X-1", "T-1", "T-2"])
    #expect(try shared.forcedUpdates().count == 1, "only the other project's push was forced")
  }

  /// A clone that added before its first sync (its queue has a root of its own): the sync replays its
  /// operations onto the remote's queue as before, and now says that the two shared no history.
  @Test func aFirstSyncOntoAQueueOfNoCommonHistorySaysSo() throws {
    let (shared, server, machines) = try serve(2)
    defer { withExtendedLifetime(server) {} }
    let (a, b) = (machines[0], machines[1])
    try a.taskqOK("add", "--id", "T-1", "--task", "Write the notes of T-1")
    try a.taskqOK("sync")
    try b.taskqOK("add", "--id", "B-1", "--task", "Write the notes of B-1")
    let before = try #require(try b.queueTip())
    let result = try b.taskqOK("sync")
    #expect(
      result.stdoutText.split(separator: "\n").map(String.init) == [
        "sync origin: received 1 commit(s), replayed 1 local operation(s), pushed",
        "  the remote's queue shares no history with the local one (a queue started here before its first sync): "
          + "every local operation was replayed onto it; the local queue before: \(before.prefix(12)) "
          + "(git reflog refs/taskq/queue)",
      ], "\(result.stdoutText)")
    #expect(Set(try shared.records().map(\.id)) == ["T-1", "B-1"])
    #expect(try b.queueTip() == shared.queueTip())
  }
}
