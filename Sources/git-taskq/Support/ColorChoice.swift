import ArgumentParser
import TaskQueue

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// git's `--color=<when>`.
enum ColorWhen: String, ExpressibleByArgument, CaseIterable {
  case auto, always, never
}

/// Whether to colour, decided the way git decides it.
enum ColorChoice {
  /// The value `Entrypoint` gives a bare `--color` (git: a bare `--color` means always).
  static let bareFlagValue = ColorWhen.always.rawValue

  /// Whether `status` colours its output.
  ///
  /// The first that applies wins: the flag; a non-empty `NO_COLOR` (never); `color.taskq`, then `color.ui`
  /// (from `git -c` first, then the repository's configuration); `auto`. `auto` colours when standard
  /// output is a terminal (or git's pager, `GIT_PAGER_IN_USE`) and `TERM` is not `dumb`.
  static func resolve(
    flag: ColorWhen?, configuration: (any GitConfigReading)?, isTerminal: Bool,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> Bool {
    let when =
      flag
      ?? ((environment["NO_COLOR"].map { !$0.isEmpty } ?? false) ? .never : nil)
      ?? configured(configuration, environment: environment)
      ?? .auto
    switch when {
    case .always: return true
    case .never: return false
    case .auto:
      let pager = environment["GIT_PAGER_IN_USE"].flatMap(parseBool) ?? false
      return (isTerminal || pager) && environment["TERM"] != "dumb"
    }
  }

  /// The colour setting of git's configuration: `color.taskq`, else `color.ui`.
  ///
  /// Each is read from `git -c` (GIT_CONFIG_PARAMETERS) before the configuration files, as git reads them.
  /// Unknown values are skipped.
  static func configured(_ configuration: (any GitConfigReading)?, environment: [String: String]) -> ColorWhen? {
    let parameters = environment["GIT_CONFIG_PARAMETERS"].map(parseConfigParameters) ?? []
    for key in ["color.taskq", "color.ui"] {
      if let given = parameters.last(where: { $0.key.lowercased() == key }) {
        if let when = colorBool(given.value) { return when }
      }
      if let value = (try? configuration?.string(key)) ?? nil, let when = colorBool(value) { return when }
    }
    return nil
  }

  /// git's `git_config_colorbool`: always, never, auto, or a boolean (true means auto); a key without a
  /// value is true.
  static func colorBool(_ value: String?) -> ColorWhen? {
    guard let value else { return .auto }
    switch value.lowercased() {
    case "always": return .always
    case "never": return .never
    case "auto": return .auto
    default: return parseBool(value).map { $0 ? .auto : .never }
    }
  }

  static func parseBool(_ value: String) -> Bool? {
    switch value.lowercased() {
    case "true", "yes", "on", "1", "": return true
    case "false", "no", "off", "0": return false
    default: return nil
    }
  }

  /// Parses `GIT_CONFIG_PARAMETERS`, which `git -c key=value` exports to the commands it runs: shell-quoted
  /// items separated by spaces, `'key'='value'` (git 2.31 and later), `'key=value'` (before) or `'key'`
  /// (no value).
  static func parseConfigParameters(_ text: String) -> [(key: String, value: String?)] {
    var items: [(key: String, value: String?)] = []
    var key = ""
    var value: String?
    var inItem = false
    var characters = Array(text)[...]
    func finish() {
      guard inItem else { return }
      if value == nil, let equals = key.firstIndex(of: "=") {
        // The old form quotes `key=value` as one word.
        value = String(key[key.index(after: equals)...])
        key = String(key[..<equals])
      }
      items.append((key, value))
      key = ""
      value = nil
      inItem = false
    }
    func append(_ character: Character) {
      inItem = true
      if value != nil { value?.append(character) } else { key.append(character) }
    }
    while let character = characters.popFirst() {
      switch character {
      case "'":
        inItem = true
        while let quoted = characters.popFirst(), quoted != "'" { append(quoted) }
      case "\\":
        if let escaped = characters.popFirst() { append(escaped) }
      case "=" where value == nil && inItem:
        value = ""
      case " ", "\t", "\n":
        finish()
      default:
        append(character)
      }
    }
    finish()
    return items
  }
}
