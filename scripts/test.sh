#!/usr/bin/env bash
# The test command: installs what the tests need, starts a real container engine (rootful Podman behind the
# docker CLI) for the real-engine suite, lints the formatting, builds and runs every test.
#   scripts/test.sh [swift test arguments…]     e.g. scripts/test.sh --filter QueueStoreTests
# TASKQ_NO_ENGINE=1 skips the engine (that suite is then skipped, with its reason printed). With CI=true an
# engine that cannot start fails the run instead (TASKQ_REQUIRE_ENGINE=1 makes the suite fail, not skip).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/bootstrap.sh
# The terminal tests (status --watch, the editor) drive a real terminal through tmux.
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends tmux >/dev/null 2>&1 \
    || echo "test: tmux could not be installed; the terminal tests will be skipped" >&2
fi

engine_started=""
if [ -z "${TASKQ_NO_ENGINE:-}" ] && [ "$(id -u)" -eq 0 ]; then
  if scripts/engine/podman-engine.sh start; then
    engine_started=1
  elif [ "${CI:-}" = true ]; then
    # In CI the real-engine suite is part of the contract: an engine that cannot start fails the run.
    echo "test: no real container engine could be started (CI=true): failing instead of skipping the suite" >&2
    exit 1
  else
    echo "test: no real container engine could be started; the real-engine suite will be skipped" >&2
  fi
fi
# In CI the suite must not skip itself quietly either (see RealEngineTests).
if [ "${CI:-}" = true ] && [ -z "${TASKQ_NO_ENGINE:-}" ]; then export TASKQ_REQUIRE_ENGINE=1; fi
cleanup() { if [ -n "$engine_started" ]; then scripts/engine/podman-engine.sh stop || true; fi; }
trap cleanup EXIT

if swift format --version >/dev/null 2>&1; then
  echo "==> swift format lint --strict"
  git ls-files -z '*.swift' | xargs -0 swift format lint --strict
fi
if command -v python3 >/dev/null 2>&1; then
  echo "==> scripts/libgit2-trampolines.py --check"
  scripts/libgit2-trampolines.py --check
fi
echo "==> swift build --build-tests"
swift build --build-tests
echo "==> swift test"
swift test --skip-build "$@"

# The libgit2 boundary again, against a release build: only there does Swift end object lifetimes at their
# last use, and MALLOC_PERTURB_ overwrites freed memory, so a pointer handed to libgit2 from a dead owner
# corrupts what is written at once (AddressSanitizer cannot see reads inside libgit2).
if [ $# -eq 0 ]; then
  echo "==> swift build -c release --product git-taskq"
  swift build -c release --product git-taskq
  echo "==> swift test --filter LibGit2BoundaryTests (release binary, MALLOC_PERTURB_=165)"
  TASKQ_BINARY="$root/.build/release/git-taskq" MALLOC_PERTURB_=165 \
    swift test --skip-build --filter LibGit2BoundaryTests

  # AddressSanitizer over the suites that drive libgit2 in process (the Git wrapper and the queue store):
  # it catches our own out-of-bounds and use-after-free in Swift and C; not a read inside libgit2, which is
  # what the release run above is for. Leak reports are off: they come from XCTest and libpcre2.
  echo "==> swift test --sanitize=address --filter 'GitTests|TaskQueueTests'"
  swift build --build-tests --sanitize=address --scratch-path .build-asan
  ASAN_OPTIONS=detect_leaks=0 swift test --skip-build --sanitize=address --scratch-path .build-asan \
    --filter 'GitTests|TaskQueueTests'
fi
