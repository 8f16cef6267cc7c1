import CLibGit2

/// A read-only snapshot of git configuration. Owns its `git_config` pointer.
public final class Configuration {
  private let pointer: OpaquePointer

  init(pointer: OpaquePointer) { self.pointer = pointer }

  deinit { git_config_free(pointer) }

  /// The value of `key` (e.g. `taskq.image`), or `nil` when it is not set.
  public func string(_ key: String) throws -> String? {
    var buffer = git_buf()
    let rc = git_config_get_string_buf(&buffer, pointer, key)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try GitError.check(rc, "git_config_get_string_buf")
    defer { git_buf_dispose(&buffer) }
    guard let ptr = buffer.ptr else { return "" }
    return String(cString: ptr)
  }

  /// Every value of the multi-valued `key` (e.g. `taskq.trustedPath`), from every level, in the order git
  /// reads them; empty when it is not set.
  public func strings(_ key: String) throws -> [String] {
    final class Values { var list: [String] = [] }
    let values = Values()
    let rc = withExtendedLifetime(values) {
      git_config_get_multivar_foreach(
        pointer, key, nil,
        { entry, payload in
          guard let entry, let payload, let value = entry.pointee.value else { return 0 }
          Unmanaged<Values>.fromOpaque(payload).takeUnretainedValue().list.append(String(cString: value))
          return 0
        }, Unmanaged.passUnretained(values).toOpaque())
    }
    if rc == GIT_ENOTFOUND.rawValue { return [] }
    try GitError.check(rc, "git_config_get_multivar_foreach")
    return values.list
  }

  /// The configuration level that supplies `key` (`local`, `global`, `system`, …), or `nil` when unset.
  public func origin(of key: String) throws -> String? {
    var entry: UnsafeMutablePointer<git_config_entry>?
    let rc = git_config_get_entry(&entry, pointer, key)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try GitError.check(rc, "git_config_get_entry")
    defer { git_config_entry_free(entry) }
    switch entry?.pointee.level {
    case GIT_CONFIG_LEVEL_SYSTEM: return "system"
    case GIT_CONFIG_LEVEL_XDG, GIT_CONFIG_LEVEL_GLOBAL: return "global"
    case GIT_CONFIG_LEVEL_LOCAL: return "local"
    case GIT_CONFIG_LEVEL_APP: return "app"
    default: return "config"
    }
  }
}

extension Repository {
  /// Adds `value` to the multi-valued `key` in this repository's own configuration (`.git/config`, the
  /// local level), keeping the values already there (as `git config --add`).
  ///
  /// - Throws: ``GitError`` when the configuration cannot be opened or written, or (`.invalid`) when
  ///   `value` holds a character libgit2 would write unescaped: a `"` or `\\` leaves a file git refuses to
  ///   read ("bad config line"), and a control character (a tab) is read back as another value. Nothing is
  ///   written then; `git config --add` escapes them.
  public func addLocalConfigValue(_ key: String, _ value: String) throws {
    if let bad = value.unicodeScalars.first(where: { $0 == "\"" || $0 == "\\" || $0.value < 0x20 || $0.value == 0x7f })
    {
      throw GitError(
        code: .invalid,
        message: "the value holds \(bad.escaped(asASCII: true)), which libgit2 cannot write to a config file",
        function: "addLocalConfigValue")
    }
    var all: OpaquePointer?
    try GitError.check(git_repository_config(&all, pointer), "git_repository_config")
    defer { git_config_free(all) }
    var local: OpaquePointer?
    try GitError.check(git_config_open_level(&local, all, GIT_CONFIG_LEVEL_LOCAL), "git_config_open_level")
    defer { git_config_free(local) }
    // "^$" matches no existing value, so libgit2 appends a new one.
    try GitError.check(git_config_set_multivar(local, key, "^$", value), "git_config_set_multivar")
  }
}
