import Git
import Synchronization
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Moves the queue ref with the git CLI (`git fetch`, `git push`), so users' protocols, credential helpers
/// and ssh configuration work as for any git command. Everything else about the queue is libgit2.
public struct GitCLITransport: QueueTransport {
  /// The queue repository's git directory.
  public var gitDirectory: String
  public var timeout: Double
  /// Whether the user chose the ssh command (`GIT_SSH_COMMAND`, `GIT_SSH` or `core.sshCommand`), looked up
  /// at the first fetch or push (so that `status`, which only reads, spawns nothing).
  private let userChoseSSH = Memo()
  /// Fetches made through this transport (and its copies), for ``maintenanceInterval``.
  private let fetches = Counter()

  /// git runs `git maintenance run --auto` after every fetch (one more process, which packs the loose
  /// objects once there are thousands): here only the first fetch of a transport and then every this many
  /// do, since `run --remote` fetches several times a second under contention and the objects of a few
  /// fetches never reach git's threshold. A one-off `sync` (one fetch) keeps git's behaviour.
  static let maintenanceInterval = 50

  /// Whether ssh connections are kept open between fetches and pushes (see ``sshCommand``).
  public var reusesConnections: Bool

  /// With `reusesConnections`, one ssh connection per host stays open between git commands (for
  /// `run --remote`, which fetches and pushes all the time); ``closeConnections()`` closes them.
  public init(gitDirectory: String, timeout: Double = 120, reusesConnections: Bool = false) {
    self.gitDirectory = gitDirectory
    self.timeout = timeout
    self.reusesConnections = reusesConnections
  }

  func git(_ arguments: [String]) throws -> ProcessResult {
    // Never wait for a password prompt nobody will answer: git's own (GIT_TERMINAL_PROMPT), and ssh's, which
    // asks on the terminal directly: batch mode, but only when the user chose no ssh command, since the
    // variable would override theirs (core.sshCommand too), which must work as for any git command.
    var environment = ["GIT_TERMINAL_PROMPT": "0"]
    if !userChoseSSH.value({ chosenSSHCommand() }) { environment["GIT_SSH_COMMAND"] = sshCommand }
    return try ProcessRunner.run(
      ProcessSpec("git", ["--git-dir=\(gitDirectory)"] + arguments, environment: environment, timeout: timeout))
  }

  /// The ssh command for git when the user chose none: batch mode, and with ``reusesConnections`` ssh's
  /// connection sharing (`ControlMaster=auto`, `ControlPersist=30`), so that a fetch or push reuses the
  /// connection of the one before instead of opening its own (~0.5 s each over a real network). The control
  /// sockets are in a private directory (``controlDirectory``), one per host, user and port (`%C`).
  var sshCommand: String {
    guard let directory = controlDirectory else { return "ssh -o BatchMode=yes" }
    return
      "ssh -o BatchMode=yes -o ControlMaster=auto -o ControlPersist=30 -o ControlPath=\(directory)/%C"
  }

  /// Where the ssh control sockets go: `<git dir>/taskq/ssh`, or, when that path is too long for a socket
  /// (ssh needs the path plus 57 characters within the 107 of a socket address), a directory of this user
  /// in `/tmp` named after the git directory. Made on first use, mode 0700; `nil` (no connection sharing)
  /// when it cannot be made private, or its path has characters a shell or ssh would read.
  var controlDirectory: String? {
    guard reusesConnections else { return nil }
    var base = gitDirectory
    while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
    let candidates = [base + "/taskq/ssh", fallbackControlDirectory]
    for directory in candidates where directory.utf8.count + 58 <= 107 {
      guard directory.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "/._-".contains($0)) }) else {
        continue
      }
      if Self.makePrivateDirectory(directory) { return directory }
    }
    return nil
  }

  /// The control directory in `/tmp` for a git directory whose own path is too long.
  private var fallbackControlDirectory: String {
    var base = gitDirectory
    while base.count > 1 && base.hasSuffix("/") { base.removeLast() }
    return "/tmp/taskq-ssh-\(getuid())-\(Self.shortHash(base))"
  }

  /// Closes the shared ssh connections this transport opened (each master exits; its socket goes).
  public func closeConnections() {
    guard let directory = controlDirectory else { return }
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for name in names where !name.contains(".") {
      let spec = ProcessSpec(
        "ssh", ["-o", "BatchMode=yes", "-o", "ControlPath=\(directory)/\(name)", "-O", "exit", "taskq-control"],
        timeout: 5)
      _ = try? ProcessRunner.run(spec)
    }
    // The directory in /tmp goes when empty (the one in the git directory stays for the next run).
    if directory == fallbackControlDirectory { rmdir(directory) }
  }

  /// Creates `path` (and its parents) with mode 0700, or checks that an existing one is a directory of this
  /// user that nobody else can enter.
  static func makePrivateDirectory(_ path: String) -> Bool {
    try? FileManager.default.createDirectory(
      atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    var info = stat()
    guard lstat(path, &info) == 0 else { return false }
    return (info.st_mode & S_IFMT) == S_IFDIR && info.st_uid == getuid() && (info.st_mode & 0o077) == 0
  }

  /// 16 hex digits of FNV-1a over `text`: a short, stable name.
  static func shortHash(_ text: String) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
      hash ^= UInt64(byte)
      hash = hash &* 0x100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
  }

  private func chosenSSHCommand() -> Bool {
    let environment = ProcessInfo.processInfo.environment
    if environment["GIT_SSH_COMMAND"] != nil || environment["GIT_SSH"] != nil { return true }
    let spec = ProcessSpec("git", ["--git-dir=\(gitDirectory)", "config", "--get", "core.sshCommand"], timeout: 30)
    return (try? ProcessRunner.run(spec))?.succeeded ?? false
  }

  public func remoteExists(_ remote: String) throws -> Bool {
    try git(["remote", "get-url", "--", remote]).succeeded
  }

  public func fetch(remote: String, into trackingRef: String) throws -> FetchResult {
    // `--no-auto-gc` (git 2.23+; `--no-auto-maintenance` since 2.29 means the same).
    let maintenance = fetches.next() % Self.maintenanceInterval == 0 ? [] : ["--no-auto-gc"]
    let arguments =
      ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head"] + maintenance
      + [remote, "+\(Layout.refName):\(trackingRef)"]
    var result = try git(arguments)
    // Another process fetching into the same tracking ref at this instant: try again shortly.
    var tries = 1
    while !result.succeeded && result.stderrText.contains("cannot lock ref") && tries < 10 {
      usleep(UInt32.random(in: 10_000...60_000))
      result = try git(arguments)
      tries += 1
    }
    if result.succeeded { return .fetched }
    let message = result.stderrText
    if message.contains("couldn't find remote ref") { return .noQueue }
    throw TransportError(remote: remote, reason: Self.reason(message, or: result.endingDescription))
  }

  public func push(remote: String, commit: ObjectID) throws -> PushResult {
    let result = try git(["push", "--porcelain", remote, "\(commit.hex):\(Layout.refName)"])
    // Porcelain: "<flag>\t<from>:<to>\t<summary>"; '!' rejected, '=' up to date, ' ', '*', '+' updated.
    for line in result.stdoutText.split(separator: "\n") where line.contains(":\(Layout.refName)\t") {
      let summary = String(line.split(separator: "\t").last ?? "")
      switch line.first {
      case "!" where summary.hasPrefix("[rejected]") || Self.racedOnTheServer(summary):
        // Not a fast-forward of the remote's queue, or it moved while the push was under way: someone else
        // wrote first.
        return .rejected(summary + QueueSync.lockNote(result.stderrText))
      case "!":
        // "[remote rejected] (pre-receive hook declined)", "[remote failure]": the remote will not take
        // the queue, and syncing again would not change that.
        var reason = summary.replacing("[remote rejected] ", with: "")
        reason = reason.hasPrefix("(") && reason.hasSuffix(")") ? String(reason.dropFirst().dropLast()) : reason
        let said = result.stderrText.split(separator: "\n").filter { $0.hasPrefix("remote: ") }
          .map { $0.dropFirst(8).trimmingSpaces() }.filter { !$0.isEmpty }
        if let first = said.first { reason += " (remote: \(first))" }
        throw TransportError(remote: remote, reason: reason, refused: true)
      case "=": return .upToDate
      default: return .pushed
      }
    }
    if result.succeeded { return .pushed }
    // No status for the ref: the server would not even take the push (a read-only daemon, HTTP 403, an ssh
    // key without write access) or could not be reached.
    let reason = Self.reason(result.stderrText, or: result.endingDescription)
    throw TransportError(remote: remote, reason: reason, refused: Self.isRefusal(result.stderrText))
  }

  /// Whether git's message says the server answered but will not take a push (as opposed to not answering).
  static func isRefusal(_ message: String) -> Bool {
    let text = message.lowercased()
    return [
      "access denied", "not exported", "service not enabled", "returned error: 401", "returned error: 403",
      "permission denied", "not permitted", "not allowed", "read-only", "read only", "remote: forbidden",
      // An HTTP server that wants credentials for the push (401) when none are configured, or other ones.
      "terminal prompts disabled", "authentication failed",
    ].contains { text.contains($0) }
  }

  /// Whether a failed push may still have reached the server, from git's reason (`TransportError.reason`):
  /// `false` only when git says it never got through to the server (nothing was sent). A lost answer does
  /// not say so reliably: over HTTP the push's POST dies with the server, curl retries it on a new
  /// connection and reports "RPC failed; curl 7 Failed to connect", although the server took the push.
  public static func pushMayHaveLanded(reason: String) -> Bool {
    let neverSent = [
      "unable to access '",  // HTTP: the first request (GET info/refs) failed
      "unable to connect to ",  // git://
      "ssh: connect to host ", "ssh: Could not resolve", "Could not resolve host", "does not appear to be a git",
    ]
    return !neverSent.contains { reason.contains($0) }
  }

  /// Whether a `[remote rejected]` summary means the ref moved under the push (receive-pack's compare-and-swap
  /// lost: "failed to update ref" with "cannot lock ref …: is at X but expected Y"), not a refusal.
  static func racedOnTheServer(_ summary: String) -> Bool {
    ["failed to update ref", "failed to lock", "cannot lock ref", "non-fast-forward", "fetch first"]
      .contains { summary.contains($0) }
  }

  /// git's reason (``firstLine(_:or:)``) followed by the server's own first line, which git prints before
  /// its reason as `remote: …` (an HTTP server's text body of a 401/403/404, a hook's message):
  /// "unable to access '…': The requested URL returned error: 403 (remote: pushes need write access)".
  static func reason(_ text: String, or fallback: String) -> String {
    let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" }).map { $0.trimmingSpaces() }
    let said = lines.filter { $0.hasPrefix("remote:") }.map { $0.dropFirst(7).trimmingSpaces() }.first { !$0.isEmpty }
    let own = lines.filter { !$0.hasPrefix("remote:") }.joined(separator: "\n")
    let reason = firstLine(own, or: said.map { "remote: \($0)" } ?? fallback)
    guard let said, !reason.hasSuffix(said) else { return reason }
    let joined = "\(reason) (remote: \(said))"
    return joined.count > 300 ? String(joined.prefix(299)) + "…" : joined
  }

  /// git's reason on one line: its first message and the lines that continue it (git writes
  /// "unable to connect to host:" and the cause on the next line), without hints, `fatal: ` prefixes or
  /// carriage returns (ssh ends its lines with CR LF), at most 300 characters.
  static func firstLine(_ text: String, or fallback: String) -> String {
    let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\r\n" })
      .map { $0.trimmingSpaces() }
      .filter { !$0.isEmpty && !$0.hasPrefix("hint:") }
      .map { line -> String in
        for prefix in ["fatal: ", "error: "] where line.hasPrefix(prefix) {
          return String(line.dropFirst(prefix.count))
        }
        return line
      }
    guard var reason = lines.first else { return fallback }
    for line in lines.dropFirst() where reason.hasSuffix(":") { reason += " " + line }
    return reason.count > 300 ? String(reason.prefix(299)) + "…" : reason
  }
}

/// A count shared by the copies of a transport.
private final class Counter: Sendable {
  private let stored = Mutex(0)

  /// The count before this call (0 first).
  func next() -> Int {
    stored.withLock { value in
      defer { value += 1 }
      return value
    }
  }
}

/// A value computed once, on first use.
private final class Memo: Sendable {
  private let stored = Mutex<Bool?>(nil)

  func value(_ compute: () -> Bool) -> Bool {
    stored.withLock { stored in
      if let stored { return stored }
      let value = compute()
      stored = value
      return value
    }
  }
}
