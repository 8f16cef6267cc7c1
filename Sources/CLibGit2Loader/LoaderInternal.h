// Shared by Loader.c and the generated Trampolines.c; not part of the module's interface.
#ifndef TASKQ_LIBGIT2_LOADER_INTERNAL_H
#define TASKQ_LIBGIT2_LOADER_INTERNAL_H

#include <dlfcn.h>
#include <stdatomic.h>

/// Set (release) once every trampoline's target is resolved.
extern atomic_int taskq_libgit2_ready;

/// Loads libgit2 and resolves every trampoline, once; on failure prints one line and exits with status 1.
void taskq_libgit2_load_or_exit(void);

/// Resolves every trampoline's target in `handle`; returns the name of a missing function, or NULL.
const char *taskq_libgit2_resolve(void *handle);

/// What every trampoline does first: one atomic load once libgit2 is loaded.
static inline void taskq_libgit2_require(void) {
  if (__builtin_expect(!atomic_load_explicit(&taskq_libgit2_ready, memory_order_acquire), 0)) {
    taskq_libgit2_load_or_exit();
  }
}

#endif
