#!/usr/bin/env bash
# What sharing the queue through a git remote costs (docs/performance.md, "Sharing"), with the real binary
# and a local bare remote reached through a file:// URL (git's smart transport, as over ssh, minus the
# network):
#   1. `sync` with nothing to do (median of 20), next to the `git fetch` it starts with;
#   2. `sync` that replays 100 local operations (50 adds, 50 cancels) on top of a remote that moved
#      (10 operations from another clone), median of 3;
#   3. tasks claimed (and run to review) per second by `run --remote` workers on two clones, 2 and 4 workers
#      in all, with an agent that does nothing (/bin/true), so the figure is ours alone; every task must be
#      claimed exactly once in the remote's history. The same tasks on one clone without a remote, for
#      comparison.
#   scripts/bench-sync.sh [TASKS]      (TASKS for 3., default 40; release build in .build-release,
#                                       or TASKQ_BINARY=path to use a built binary)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-40}
if [ -n "${TASKQ_BINARY:-}" ]; then
  bin=$TASKQ_BINARY
else
  "$root/scripts/bootstrap.sh"
  swift build -c release --package-path "$root" --scratch-path "$root/.build-release" --product git-taskq >/dev/null
  bin="$root/.build-release/release/git-taskq"
fi
# /var/tmp, not /tmp: on this kind of machine, file creation in /tmp is slowed down by test suites deleting
# files nearby (docs/performance.md, "The file system matters"), and every queue write creates files.
scratch=$(mktemp -d "${TMPDIR:-/var/tmp}/taskq-bench-sync.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
# A scratch HOME: no user configuration (credential helpers, hooks, aliases) takes part.
export HOME="$scratch/home" GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1
unset TASKQ_REMOTE TASKQ_LEASE GIT_DIR GIT_WORK_TREE
mkdir -p "$HOME"
git config --global user.name bench && git config --global user.email bench@example.com
git config --global init.defaultBranch main

now() { date +%s.%N; }
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
elapsed_ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f\n", (b - a) * 1000 }'; }
fail() { echo "bench-sync: $*" >&2; exit 1; }

# world DIR: a bare remote, a target repository the tasks name, and two clones a/ and b/ of the remote.
world() {
  local dir=$1
  mkdir -p "$dir"
  git init -q --bare "$dir/remote.git"
  git init -q "$dir/target"
  git -C "$dir/target" commit -q --allow-empty -m init
  git -C "$dir/target" push -q "$dir/remote.git" main
  for c in a b; do
    git clone -q "file://$dir/remote.git" "$dir/$c" 2>/dev/null
    # Records from the remote are untrusted input: each machine acts only on paths it trusts.
    git -C "$dir/$c" config --add taskq.trustedPath "$dir"
  done
}
taskq() { local dir=$1; shift; (cd "$dir" && "$bin" "$@"); }
add() {
  local out
  out=$(taskq "$1" add --id "$2" --repo "$3" --task "benchmark task $2" "${@:4}" 2>&1) || fail "add $2: $out"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(git --version), load average $(cut -d" " -f1-3 /proc/loadavg)"

# 1. Nothing to do.
w="$scratch/idle"
world "$w"
for i in $(seq 1 20); do add "$w/a" "T-$i" "$w/target"; done
taskq "$w/a" sync >/dev/null
fetches=() syncs=()
for _ in $(seq 1 20); do
  t0=$(now); git -C "$w/a" fetch -q --no-tags origin "+refs/taskq/queue:refs/taskq/remotes/origin/queue"; t1=$(now)
  fetches+=("$(elapsed_ms "$t0" "$t1")")
  t0=$(now); out=$(taskq "$w/a" sync); t1=$(now)
  [ "$out" = "sync origin: up to date" ] || fail "expected 'up to date', got: $out"
  syncs+=("$(elapsed_ms "$t0" "$t1")")
done
printf 'sync, nothing to do (20 tasks): %s ms median of 20 (the git fetch alone: %s ms)\n' \
  "$(printf '%s\n' "${syncs[@]}" | median)" "$(printf '%s\n' "${fetches[@]}" | median)"

# 2. 100 local operations to replay on top of a remote that moved.
replays=()
for r in 1 2 3; do
  w="$scratch/replay-$r"
  world "$w"
  for i in $(seq 1 50); do add "$w/a" "T-$i" "$w/target"; done
  taskq "$w/a" sync >/dev/null
  taskq "$w/b" sync >/dev/null
  for i in $(seq 1 50); do add "$w/a" "A-$i" "$w/target"; taskq "$w/a" cancel --id "T-$i" >/dev/null; done
  for i in $(seq 1 10); do add "$w/b" "B-$i" "$w/target"; done
  taskq "$w/b" sync >/dev/null
  t0=$(now); out=$(taskq "$w/a" sync); t1=$(now)
  [ "$out" = "sync origin: received 10 commit(s), replayed 100 local operation(s), pushed" ] || fail "unexpected: $out"
  replays+=("$(elapsed_ms "$t0" "$t1")")
done
med=$(printf '%s\n' "${replays[@]}" | median)
awk -v m="$med" 'BEGIN { printf "sync replaying 100 local operations over 10 remote ones (50 tasks): %.0f ms median of 3 (%.2f ms per operation)\n", m, m / 100 }'

# 3. Claims through the remote, workers on two clones.
for workers in 2 4; do
  w="$scratch/claims-$workers"
  world "$w"
  for i in $(seq -w 1 "$n"); do add "$w/a" "T-$i" "$w/target" --worktree-path "$w/worktrees/T-$i"; done
  taskq "$w/a" sync >/dev/null
  taskq "$w/b" sync >/dev/null
  for c in a b; do
    git -C "$w/$c" config taskq.runtime local
    git -C "$w/$c" config taskq.agentProgram /bin/true
    git -C "$w/$c" config taskq.worktreesRoot "$w/worktrees-$c"
  done
  per=$((workers / 2))
  t0=$(now)
  taskq "$w/a" run --remote origin --max-parallel "$per" >"$w/a.out" 2>"$w/a.err" &
  pa=$!
  taskq "$w/b" run --remote origin --max-parallel "$per" >"$w/b.out" 2>"$w/b.err" &
  pb=$!
  wait "$pa" || fail "run on a failed: $(tail -3 "$w/a.err")"
  wait "$pb" || fail "run on b failed: $(tail -3 "$w/b.err")"
  t1=$(now)
  taskq "$w/a" sync >/dev/null
  claims=$(git -C "$w/remote.git" log --format=%s refs/taskq/queue | grep -c ': todo → planning$' || true)
  distinct=$(git -C "$w/remote.git" log --format=%s refs/taskq/queue | grep ': todo → planning$' | sort -u | wc -l)
  reviews=$(git -C "$w/remote.git" log --format=%s refs/taskq/queue | grep -c '→ review' || true)
  lost=$(cat "$w/a.err" "$w/b.err" | grep -c 'claimed by another worker first' || true)
  [ "$claims" = "$n" ] && [ "$distinct" = "$n" ] && [ "$reviews" = "$n" ] ||
    fail "$workers workers: $claims claims ($distinct tasks), $reviews reviews for $n tasks"
  awk -v a="$t0" -v b="$t1" -v n="$n" -v w="$workers" -v l="$lost" 'BEGIN {
    printf "run --remote, %d workers on 2 clones, %d tasks, no-op agent: %.2f s, %.1f tasks claimed and run per second, each once; %d claims lost a race and moved on\n", w, n, b - a, n / (b - a), l }'
done

# The same without a remote: one clone, 4 workers.
w="$scratch/local"
world "$w"
for i in $(seq -w 1 "$n"); do add "$w/a" "T-$i" "$w/target" --worktree-path "$w/worktrees/T-$i"; done
git -C "$w/a" config taskq.runtime local
git -C "$w/a" config taskq.agentProgram /bin/true
t0=$(now); taskq "$w/a" run --max-parallel 4 >"$w/local.out" 2>&1 || fail "run without a remote failed: $(tail -3 "$w/local.out")"; t1=$(now)
awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {
  printf "for comparison, run without a remote, 4 workers, %d tasks, no-op agent: %.2f s, %.1f tasks per second\n", n, b - a, n / (b - a) }'
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"
