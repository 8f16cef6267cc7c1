import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The markdown failure report committed under a task's `errors/`.
public struct ErrorReport {
  public var record: TaskRecord
  public var stage: String
  public var summary: String
  public var worker: String
  public var failure: StageFailure?
  public var containerLog: String?
  public var note: String?

  public init(
    record: TaskRecord, stage: String, summary: String, worker: String, failure: StageFailure? = nil,
    containerLog: String? = nil, note: String? = nil
  ) {
    self.record = record
    self.stage = stage
    self.summary = summary
    self.worker = worker
    self.failure = failure
    self.containerLog = containerLog
    self.note = note
  }

  /// Lines kept of each output.
  public static let tailLines = 40

  public var markdown: String {
    var out = "# \(record.id) failed: \(summary)\n\n"
    out += "| | |\n|---|---|\n"
    out += "| stage | \(stage) |\n| attempt | \(record.attempt + 1) |\n| worker | \(worker) |\n"
    out += "| time | \(Timestamp.now()) |\n"
    if let spec = failure?.spec {
      out +=
        "| command | `\(Self.redact(spec.commandLine).replacing("|", with: "\\|").replacing("\n", with: " "))` |\n"
    }
    if let result = failure?.result {
      out += "| ending | \(result.endingDescription) |\n"
      out += "| duration | \(oneDecimal(result.duration)) s |\n"
    }
    out += "\n"
    if let note { out += "\(note)\n\n" }
    if let detail = failure?.detail { out += "\(Self.redact(detail))\n\n" }
    if let result = failure?.result {
      out += Self.section("stdout (last \(Self.tailLines) lines)", result.stdoutText)
      out += Self.section("stderr (last \(Self.tailLines) lines)", result.stderrText)
    }
    if let containerLog { out += Self.section("container log (last \(Self.tailLines) lines)", containerLog) }
    out += "## Context\n\n"
    out += "- repository: `\(record.repo)`, base `\(record.base)`, branch `\(record.branch)`\n"
    if let worktree = record.worktreePath { out += "- worktree: `\(worktree)`\n" }
    if let container = record.container { out += "- container: `\(container)`\n" }
    if let port = record.port { out += "- port: 127.0.0.1:\(port)\n" }
    if let session = record.sessionID { out += "- session: `\(session)`\n" }
    out += "\n## What next\n\n"
    out += "- inspect: `git taskq show --id \(record.id)`"
    if let worktree = record.worktreePath { out += ", `git -C \(worktree) status`" }
    if let container = record.container { out += ", `docker logs \(container)`" }
    out += "\n- retry: `git taskq retry --id \(record.id) && git taskq run --id \(record.id)`\n"
    out += "- give up and clean up: `git taskq cancel --id \(record.id) && git taskq cleanup --id \(record.id)`\n"
    return out
  }

  static func section(_ title: String, _ text: String) -> String {
    let trimmed = text.trimmingWhitespace()
    guard !trimmed.isEmpty else { return "## \(title)\n\n(empty)\n\n" }
    let lines = trimmed.split(separator: "\n", omittingEmptySubsequences: false).suffix(tailLines)
    let body = redact(lines.joined(separator: "\n")).replacing("~~~~", with: "~ ~ ~ ~")
    return "## \(title)\n\n~~~~\n\(body)\n~~~~\n\n"
  }

  /// Replaces the values of environment variables whose names look secret (`*TOKEN*`, `*KEY*`, `*SECRET*`,
  /// `*PASSWORD*`) with `[redacted]`, so reports pushed with the queue do not carry them.
  public static func redact(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment)
    -> String
  {
    var out = text
    let secrets = environment.filter { key, value in
      let name = key.uppercased()
      return value.count >= 6
        && ["TOKEN", "KEY", "SECRET", "PASSWORD"].contains { name.contains($0) }
    }.map(\.value).sorted { $0.count > $1.count }
    for value in secrets { out = out.replacing(value, with: "[redacted]") }
    return out
  }
}
