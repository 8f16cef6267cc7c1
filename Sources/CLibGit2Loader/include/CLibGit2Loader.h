// git-taskq loads libgit2 at run time (dlopen by its SONAME) instead of linking it, so that a command
// that never opens a repository (--version, help, completion, a status answered from the snapshot cache)
// does not pay for loading libgit2 and its dependency tree. See Sources/Git/README.md.
#ifndef TASKQ_CLIBGIT2_LOADER_H
#define TASKQ_CLIBGIT2_LOADER_H

/// Loads libgit2 if it is not loaded yet. Returns NULL on success, else one line saying what failed and
/// how to fix it (the same line a libgit2 call prints before exiting when the library cannot be loaded).
/// Thread-safe.
const char *taskq_libgit2_load(void);

/// Whether libgit2 has been loaded into this process (by `taskq_libgit2_load` or any libgit2 call).
int taskq_libgit2_is_loaded(void);

/// Sets one of libgit2's boolean process-wide options (`git_libgit2_opts(option, enabled)`, e.g.
/// GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION), loading libgit2 first. Returns libgit2's result, or -1 when
/// libgit2 cannot be loaded.
int taskq_libgit2_set_flag(int option, int enabled);

#endif
