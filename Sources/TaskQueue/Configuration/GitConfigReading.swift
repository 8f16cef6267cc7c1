import Git

/// Reads git configuration values: what ``Settings`` keeps of the configuration it was resolved from, so
/// that the executable reads `core.editor` or `core.pager` without holding libgit2 types itself.
public protocol GitConfigReading {
  /// The value of `key` (e.g. `core.pager`), or `nil` when it is not set.
  func string(_ key: String) throws -> String?
}

extension Configuration: GitConfigReading {}
