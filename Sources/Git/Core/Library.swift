import CLibGit2
import CLibGit2Loader

/// Process-wide libgit2 loading and initialisation.
///
/// git-taskq does not link libgit2: `CLibGit2Loader` loads it (`dlopen` of `libgit2.so.<SOVERSION>`) the
/// first time any libgit2 function is called, and `git_libgit2_init()` (a few milliseconds: it parses the
/// system's CA certificates) runs the first time a repository is opened, once per process. A command that
/// never opens a repository pays for neither.
public enum Library {
  private static let initialised: Bool = {
    git_libgit2_init()
    // Reading an object does not hash it again to compare with its name (git does not either): that cost
    // a SHA-1 (collision-detecting, slow) over every tree and record read. A damaged object file still
    // fails zlib's own checksum, and objects from other machines arrive through `git fetch`, which checks
    // every one (index-pack) before they land here.
    _ = taskq_libgit2_set_flag(Int32(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION.rawValue), 0)
    return true
  }()

  static func ensureInitialised() {
    _ = initialised
  }

  /// Whether libgit2 has been loaded into this process (tests use it to show that a path never loads it).
  public static var isLoaded: Bool { taskq_libgit2_is_loaded() != 0 }
}
