#!/usr/bin/env bash
# What git-taskq adds per task when running: claim, branch + worktree (libgit2), the stage transitions,
# and cleanup, with an agent that does nothing (/bin/true) on the local runtime, so the figure is ours
# alone. Then 100 tasks with --max-parallel 4 and the demo agent: all must reach review, none run twice.
#   scripts/bench-run.sh [N]        (release build in .build-release; N tasks, default 100)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
"$root/scripts/bootstrap.sh"
swift build -c release --package-path "$root" --scratch-path "$root/.build-release" --product git-taskq >/dev/null
bin="$root/.build-release/release/git-taskq"
scratch=$(mktemp -d "${TMPDIR:-/tmp}/taskq-bench-run.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
now() { date +%s.%N; }

setup() {
  local repo=$1
  mkdir -p "$repo" && cd "$repo"
  git init -q -b main && git -c user.name=b -c user.email=b@b commit -q --allow-empty -m init
  git config taskq.runtime local
  git config taskq.worktreesRoot "$scratch/worktrees-$(basename "$repo")"
  for i in $(seq 1 "$n"); do "$bin" add --id "B-$i" --task "benchmark task $i" >/dev/null; done
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(swift --version 2>&1 | head -1)"

setup "$scratch/noop"
git config taskq.agentProgram /bin/true
t0=$(now); "$bin" run --max-parallel 1 >/dev/null; t1=$(now)
for i in $(seq 1 "$n"); do "$bin" approve --id "B-$i" >/dev/null; done
t2=$(now); "$bin" cleanup >/dev/null; t3=$(now)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v d="$t3" -v n="$n" 'BEGIN {
  printf "run, no-op agent, 1 worker: %.1f ms per task (claim, worktree, 4 transitions, 2 agent spawns)\n", (b-a)*1000/n
  printf "cleanup: %.1f ms per task (worktree removal through libgit2 + 1 transition)\n", (d-c)*1000/n
  printf "overhead per task (run + cleanup): %.1f ms\n", ((b-a)+(d-c))*1000/n }'

setup "$scratch/parallel"
git config taskq.agentProgram "$root/scripts/demo-agent"
t0=$(now); "$bin" run --max-parallel 4 >/dev/null || true; t1=$(now)
reviews=$("$bin" status --json | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["status"]=="review"))')
claims=$(git log --format=%s refs/taskq/queue | grep -c "todo → planning" || true)
awk -v a="$t0" -v b="$t1" -v n="$n" -v r="$reviews" -v c="$claims" 'BEGIN {
  printf "%d tasks, demo agent, --max-parallel 4: %.2f s in all, %d in review, %d claims (%s)\n", n, b-a, r, c, (r==n && c==n) ? "none run twice" : "MISMATCH" }'
