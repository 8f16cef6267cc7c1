import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Everything `run`, `review` and `cleanup` need from the configuration, validated once.
public struct RunSettings: Sendable {
  public enum RuntimeKind: String, Sendable { case docker, local }

  public var runtime: RuntimeKind
  public var containerProgram: String
  public var image: String
  public var containerPort: Int
  public var portRange: ClosedRange<Int>
  public var agentProgram: String
  public var planCommand: String
  public var buildCommand: String
  public var agent: String
  public var model: String
  public var variant: String
  public var planTimeout: Double
  public var buildTimeout: Double
  public var setupTimeout: Double
  public var healthTimeout: Double
  public var reviewProgram: String
  public var worktreesRoot: String
  public var reposRoot: String
  /// `taskq.trustedPath`: further directories whose records this machine acts on (see ``RecordPolicy``).
  public var trustedPaths: [String]
  /// Protect each task's server with `OPENCODE_SERVER_PASSWORD` (kept in ``ServerSecrets``).
  public var serverPassword: Bool

  /// Reads and checks every value; a bad one is a one-line error naming the key and where it came from.
  public init(_ settings: Settings) throws {
    let runtimeName = settings.string(.runtime)
    guard let runtime = RuntimeKind(rawValue: runtimeName) else {
      throw QueueError.invalidValue(
        key: settings.describe(.runtime), value: runtimeName, expected: "'docker' or 'local'")
    }
    self.runtime = runtime
    containerProgram = try Self.program(settings, .containerProgram)
    image = settings.string(.image)
    if image.isEmpty || image.hasPrefix("-") {
      throw QueueError.invalidValue(key: settings.describe(.image), value: image, expected: "an image name")
    }
    containerPort = try settings.positiveInt(.containerPort)
    guard containerPort <= 65535 else {
      throw QueueError.invalidValue(
        key: settings.describe(.containerPort), value: String(containerPort), expected: "a port number")
    }
    portRange = try settings.portRange(.portRange)
    agentProgram = try Self.program(settings, .agentProgram)
    planCommand = try Self.word(settings, .planCommand)
    buildCommand = try Self.word(settings, .buildCommand)
    agent = settings.string(.agent)
    model = settings.string(.model)
    variant = settings.string(.variant)
    for key in [SettingKey.agent, .model, .variant] where settings.string(key).hasPrefix("-") {
      throw QueueError.invalidValue(
        key: settings.describe(key), value: settings.string(key), expected: "a name, not an option")
    }
    planTimeout = Double(try settings.positiveInt(.planTimeout))
    buildTimeout = Double(try settings.positiveInt(.buildTimeout))
    setupTimeout = Double(try settings.positiveInt(.setupTimeout))
    healthTimeout = Double(try settings.positiveInt(.healthTimeout))
    reviewProgram = try Self.program(settings, .reviewProgram)
    worktreesRoot = settings.path(.worktreesRoot)
    reposRoot = settings.path(.reposRoot)
    trustedPaths = settings.trustedPaths
    switch settings.string(.serverPassword).lowercased() {
    case "true", "yes", "on", "1": serverPassword = true
    case "false", "no", "off", "0": serverPassword = false
    default:
      throw QueueError.invalidValue(
        key: settings.describe(.serverPassword), value: settings.string(.serverPassword), expected: "true or false")
    }
  }

  private static func program(_ settings: Settings, _ key: SettingKey) throws -> String {
    let value = settings.string(key)
    guard !value.isEmpty, !value.hasPrefix("-"), !value.contains(" ") || value.hasPrefix("/") else {
      throw QueueError.invalidValue(key: settings.describe(key), value: value, expected: "a program name or path")
    }
    return value.hasPrefix("~") || value.hasPrefix("./") ? Paths.expand(value) : value
  }

  private static func word(_ settings: Settings, _ key: SettingKey) throws -> String {
    let value = settings.string(key)
    guard !value.isEmpty, !value.hasPrefix("-"), !value.contains(where: \.isWhitespace) else {
      throw QueueError.invalidValue(key: settings.describe(key), value: value, expected: "a command name")
    }
    return value
  }
}
