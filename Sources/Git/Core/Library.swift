import CLibGit2

/// Process-wide libgit2 initialisation.
///
/// `git_libgit2_init()` costs a few milliseconds (it loads TLS certificates), so it runs lazily, the first
/// time a repository is opened, and only once per process.
enum Library {
  private static let initialised: Bool = {
    git_libgit2_init()
    return true
  }()

  static func ensureInitialised() {
    _ = initialised
  }
}
