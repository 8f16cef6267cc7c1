import Git

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One configuration setting: a `taskq.*` git config key, its `TASKQ_*` environment variable and default.
public struct SettingKey: Sendable, Hashable {
  /// The git config key, e.g. `taskq.reposRoot`.
  public var name: String
  public var defaultValue: String
  public var summary: String

  /// `taskq.maxParallel` → `--max-parallel`: the command-line option that sets it, for errors.
  public var optionName: String {
    var out = "--"
    for ch in name.dropFirst("taskq.".count) {
      if ch.isUppercase { out += "-" }
      out += ch.lowercased()
    }
    return out
  }

  /// `taskq.reposRoot` → `TASKQ_REPOS_ROOT`.
  public var environmentName: String {
    var out = "TASKQ_"
    for ch in name.dropFirst("taskq.".count) {
      if ch.isUppercase { out += "_" }
      out += ch.uppercased()
    }
    return out
  }
}

extension SettingKey {
  public static let reposRoot = SettingKey(
    name: "taskq.reposRoot", defaultValue: "~/documents/repos",
    summary: "where short repository names given to --repo are looked up")
  public static let worktreesRoot = SettingKey(
    name: "taskq.worktreesRoot", defaultValue: "~/documents/repos/worktrees",
    summary: "where task worktrees are created, as <root>/<repo name>/<id>")
  public static let base = SettingKey(
    name: "taskq.base", defaultValue: "main", summary: "the base branch of new tasks")
  public static let runtime = SettingKey(
    name: "taskq.runtime", defaultValue: "docker",
    summary: "'docker' (a container per task) or 'local' (the agent runs in the worktree)")
  public static let containerProgram = SettingKey(
    name: "taskq.containerProgram", defaultValue: "docker", summary: "the container CLI: docker or podman")
  public static let image = SettingKey(
    name: "taskq.image", defaultValue: "ghcr.io/anomalyco/opencode:latest",
    summary: "the image that runs each task's OpenCode server")
  public static let containerPort = SettingKey(
    name: "taskq.containerPort", defaultValue: "4096", summary: "the OpenCode server's port inside the container")
  public static let portRange = SettingKey(
    name: "taskq.portRange", defaultValue: "4100-4999", summary: "host ports handed to task containers")
  public static let agentProgram = SettingKey(
    name: "taskq.agentProgram", defaultValue: "opencode", summary: "the agent CLI (accepts 'run --command …')")
  public static let planCommand = SettingKey(
    name: "taskq.planCommand", defaultValue: "make-plan", summary: "the OpenCode command of the planning stage")
  public static let buildCommand = SettingKey(
    name: "taskq.buildCommand", defaultValue: "execute-plan", summary: "the OpenCode command of the building stage")
  public static let agent = SettingKey(
    name: "taskq.agent", defaultValue: "", summary: "the OpenCode agent (--agent), empty for its default")
  public static let model = SettingKey(
    name: "taskq.model", defaultValue: "", summary: "the model (--model provider/model), empty for the default")
  public static let variant = SettingKey(
    name: "taskq.variant", defaultValue: "", summary: "the model variant (--variant), empty for the default")
  public static let planTimeout = SettingKey(
    name: "taskq.planTimeout", defaultValue: "3600", summary: "seconds the planning stage may take")
  public static let buildTimeout = SettingKey(
    name: "taskq.buildTimeout", defaultValue: "7200", summary: "seconds the building stage may take")
  public static let setupTimeout = SettingKey(
    name: "taskq.setupTimeout", defaultValue: "120",
    summary: "seconds a container command (run, exec, rm) may take")
  public static let healthTimeout = SettingKey(
    name: "taskq.healthTimeout", defaultValue: "60", summary: "seconds to wait for the OpenCode server to answer")
  public static let reviewProgram = SettingKey(
    name: "taskq.reviewProgram", defaultValue: "openchamber", summary: "the review UI started by 'review'")
  public static let maxParallel = SettingKey(
    name: "taskq.maxParallel", defaultValue: "3", summary: "workers of 'run' (--max-parallel)")
  public static let poll = SettingKey(
    name: "taskq.poll", defaultValue: "5", summary: "seconds between passes of 'run --poll'")
  public static let remote = SettingKey(
    name: "taskq.remote", defaultValue: "", summary: "the remote that shares the queue ('sync', 'run --remote')")
  public static let serverPassword = SettingKey(
    name: "taskq.serverPassword", defaultValue: "true",
    summary: "protect each task's OpenCode server with a per-task password kept on this machine")
  public static let lease = SettingKey(
    name: "taskq.lease", defaultValue: "600",
    summary: "seconds a worker's claim lasts unless renewed; an expired one is stale ('recover')")

  public static let all: [SettingKey] = [
    reposRoot, worktreesRoot, base, runtime, containerProgram, image, containerPort, portRange, agentProgram,
    planCommand, buildCommand, agent, model, variant, planTimeout, buildTimeout, setupTimeout, healthTimeout,
    reviewProgram, maxParallel, poll, remote, lease, serverPassword,
  ]
}

/// The effective configuration: flags over `TASKQ_*` environment variables over git config over defaults.
public struct Settings {
  public enum Origin: Equatable, Sendable, CustomStringConvertible {
    case flag
    case environment(String)
    case gitConfig(String)
    case defaultValue
    public var description: String {
      switch self {
      case .flag: "command line"
      case .environment(let name): "environment \(name)"
      case .gitConfig(let level): "git config (\(level))"
      case .defaultValue: "default"
      }
    }
  }

  private var values: [String: (value: String, origin: Origin)] = [:]

  /// `taskq.trustedPath`, every value from every git config level, expanded: directories outside the roots
  /// that this machine lets queue records name as `repo` or `worktree_path`. Multi-valued, so it is read
  /// here and not through ``SettingKey`` (a queue pulled from a remote is untrusted input; trust is local).
  public private(set) var trustedPaths: [String] = []

  /// The git configuration the settings were read from, for the few git keys the commands read
  /// themselves (`core.editor`, `core.pager`, `color.ui`).
  public let gitConfig: (any GitConfigReading)?

  /// Resolves every key from `configuration`, `environment` and `overrides` (keyed by git config name).
  ///
  /// - Throws: the configuration's error when a value cannot be read: a broken configuration is reported,
  ///   never silently replaced by the defaults.
  public init(
    configuration: Configuration?, environment: [String: String] = ProcessInfo.processInfo.environment,
    overrides: [SettingKey: String] = [:]
  ) throws {
    gitConfig = configuration
    for key in SettingKey.all {
      if let value = overrides[key] {
        values[key.name] = (value, .flag)
      } else if let value = environment[key.environmentName] {
        values[key.name] = (value, .environment(key.environmentName))
      } else if let value = try configuration?.string(key.name) {
        let level = try configuration?.origin(of: key.name)
        values[key.name] = (value, .gitConfig(level ?? "config"))
      } else {
        values[key.name] = (key.defaultValue, .defaultValue)
      }
    }
    let trusted = try configuration?.strings("taskq.trustedPath") ?? []
    trustedPaths = trusted.filter { !$0.isEmpty }.map(Paths.expand)
  }

  /// The git configuration value `key` (`core.editor`), or `nil` when it is not set.
  public func gitValue(_ key: String) throws -> String? { try gitConfig?.string(key) }

  public func string(_ key: SettingKey) -> String { values[key.name]?.value ?? key.defaultValue }

  public func origin(_ key: SettingKey) -> Origin { values[key.name]?.origin ?? .defaultValue }

  /// The value with `~` expanded, as an absolute path.
  public func path(_ key: SettingKey) -> String { Paths.expand(string(key)) }

  /// A positive integer setting, or ``QueueError/invalidValue(key:value:expected:)``.
  public func positiveInt(_ key: SettingKey) throws -> Int {
    let text = string(key)
    guard let value = Int(text.trimmingSpaces()), value > 0 else {
      throw QueueError.invalidValue(key: describe(key), value: text, expected: "a positive integer")
    }
    return value
  }

  /// A `low-high` port range.
  public func portRange(_ key: SettingKey) throws -> ClosedRange<Int> {
    let text = string(key)
    let parts = text.split(separator: "-").compactMap { Int($0.trimmingSpaces()) }
    guard parts.count == 2, parts[0] >= 1024, parts[1] <= 65535, parts[0] <= parts[1] else {
      throw QueueError.invalidValue(
        key: describe(key), value: text, expected: "a range such as 4100-4999 within 1024-65535")
    }
    return parts[0]...parts[1]
  }

  /// `taskq.maxParallel (from environment TASKQ_MAX_PARALLEL)`, for errors.
  public func describe(_ key: SettingKey) -> String {
    switch origin(key) {
    case .flag: key.optionName
    case .environment(let name): name
    default: key.name
    }
  }
}

/// Path helpers.
public enum Paths {
  /// `path` without trailing `/` (but `/` stays `/`).
  public static func trimmingTrailingSlashes(_ path: String) -> String {
    var p = Substring(path)
    while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
    return String(p)
  }

  /// Expands a leading `~` and makes `path` absolute against the current directory; removes a trailing `/`.
  public static func expand(_ path: String) -> String {
    var p = path
    if p == "~" || p.hasPrefix("~/") {
      let home = ProcessInfo.processInfo.environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
      p = home + p.dropFirst()
    }
    if !p.hasPrefix("/") { p = FileManager.default.currentDirectoryPath + "/" + p }
    return URL(fileURLWithPath: p).standardizedFileURL.path
  }
}
