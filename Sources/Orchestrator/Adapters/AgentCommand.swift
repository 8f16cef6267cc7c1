#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The argv of one `opencode run --command …` stage.
///
/// The task body is one argv element after `--`, so a body that starts with `-` reaches the agent as the
/// prompt, never as an option.
public struct AgentCommand: Sendable, Equatable {
  public var program: String
  public var command: String
  public var agent: String
  public var model: String
  public var variant: String
  /// `http://127.0.0.1:<port>` of the task's OpenCode server, so sessions live there (and review sees them).
  public var attach: String?
  public var session: String?
  public var title: String

  public func arguments(prompt: String) -> [String] {
    var args = ["run", "--command", command, "--format", "json", "--title", title]
    if let attach { args += ["--attach", attach] }
    if let session { args += ["--session", session] }
    if !agent.isEmpty { args += ["--agent", agent] }
    if !model.isEmpty { args += ["--model", model] }
    if !variant.isEmpty { args += ["--variant", variant] }
    args += ["--", prompt]
    return [program] + args
  }

  /// The first `"sessionID":"…"` in `opencode run --format json` output.
  public static func sessionID(in output: String) -> String? {
    guard let match = output.firstMatch(of: #/"sessionID"\s*:\s*"([A-Za-z0-9_\-]{1,128})"/#) else { return nil }
    return String(match.1)
  }
}
