import CLibGit2

/// A read-only snapshot of git configuration. Owns its `git_config` pointer.
public final class Configuration {
  let pointer: OpaquePointer

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
