#!/usr/bin/env bash
# The benchmark of git-taskq (issue 3, item 7), in one command:
#
#   scripts/bench.sh [--static-stdlib] [taskq-bench options: --quick, --runs N, --only LIST, --out DIR]
#
# Builds release binaries under .build-bench (never the default .build), then runs taskq-bench, which makes
# its own temporary repositories, prints a table and writes bench-results/results.md. See
# docs/performance.md for what is measured and the figures.
#   --static-stdlib  link the Swift runtime and Foundation statically (swift build --static-swift-stdlib),
#                    to measure what that does to process start
set -euo pipefail
cd "$(dirname "$0")/.."

scratch="${TASKQ_BENCH_SCRATCH:-.build-bench}"
build_args=(-c release --scratch-path "$scratch")
variant="dynamic Swift runtime (as scripts/install.sh builds it)"
if [[ "${1:-}" == "--static-stdlib" ]]; then
  build_args+=(--static-swift-stdlib)
  variant="static Swift runtime (--static-swift-stdlib)"
  shift
fi

swift build "${build_args[@]}" --product git-taskq >&2
swift build "${build_args[@]}" --product taskq-bench >&2
bin_dir="$(swift build "${build_args[@]}" --show-bin-path)"

cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)"
memory="$(free -h | awk '/^Mem:/ {print $2}')"
swift_version="$(swift --version 2>&1 | grep -o 'Swift version [^ ]*' | head -1)"
libgit2_version="$(pkg-config --modversion libgit2 2>/dev/null || echo unknown)"
machine="Machine: ${cpu:-unknown CPU}, $(nproc) cores, ${memory} RAM; ${swift_version}; libgit2 ${libgit2_version}; \
$(git --version); git-taskq built with ${variant}."

exec "$bin_dir/taskq-bench" --machine "$machine" "$@"
