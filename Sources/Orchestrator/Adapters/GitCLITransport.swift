import Foundation
import Git
import TaskQueue

/// Moves the queue ref with the git CLI (`git fetch`, `git push`), so users' protocols, credential helpers
/// and ssh configuration work as for any git command. Everything else about the queue is libgit2.
public struct GitCLITransport: QueueTransport {
  /// The queue repository's git directory.
  public var gitDirectory: String
  public var timeout: Double

  public init(gitDirectory: String, timeout: Double = 120) {
    self.gitDirectory = gitDirectory
    self.timeout = timeout
  }

  func git(_ arguments: [String]) throws -> ProcessResult {
    // Never wait for a password prompt nobody will answer.
    try ProcessRunner.run(
      ProcessSpec(
        "git", ["--git-dir=\(gitDirectory)"] + arguments,
        environment: ["GIT_TERMINAL_PROMPT": "0", "GIT_SSH_COMMAND": ProcessInfo.processInfo.environment["GIT_SSH_COMMAND"] ?? "ssh -o BatchMode=yes"],
        timeout: timeout))
  }

  public func remoteExists(_ remote: String) throws -> Bool {
    try git(["remote", "get-url", "--", remote]).succeeded
  }

  public func fetch(remote: String, into trackingRef: String) throws -> FetchResult {
    var result = try git(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, "+\(Layout.refName):\(trackingRef)"])
    // Another process fetching into the same tracking ref at this instant: try again shortly.
    var tries = 1
    while !result.succeeded && result.stderrText.contains("cannot lock ref") && tries < 10 {
      usleep(UInt32.random(in: 10_000...60_000))
      result = try git(["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, "+\(Layout.refName):\(trackingRef)"])
      tries += 1
    }
    if result.succeeded { return .fetched }
    let message = result.stderrText
    if message.contains("couldn't find remote ref") { return .noQueue }
    throw TransportError(remote: remote, reason: Self.firstLine(message, or: result.endingDescription))
  }

  public func push(remote: String, commit: ObjectID) throws -> PushResult {
    let result = try git(["push", "--porcelain", remote, "\(commit.hex):\(Layout.refName)"])
    // Porcelain: "<flag>\t<from>:<to>\t<summary>"; '!' rejected, '=' up to date, ' ', '*', '+' updated.
    for line in result.stdoutText.split(separator: "\n") where line.contains(":\(Layout.refName)\t") {
      switch line.first {
      case "!": return .rejected(String(line.split(separator: "\t").last ?? ""))
      case "=": return .upToDate
      default: return .pushed
      }
    }
    if result.succeeded { return .pushed }
    throw TransportError(remote: remote, reason: Self.firstLine(result.stderrText, or: result.endingDescription))
  }

  static func firstLine(_ text: String, or fallback: String) -> String {
    let line = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
      .first { !$0.isEmpty && !$0.hasPrefix("hint:") }
    return line.map { $0.hasPrefix("fatal: ") ? String($0.dropFirst(7)) : $0 } ?? fallback
  }
}
