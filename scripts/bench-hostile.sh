#!/usr/bin/env bash
# Hostile sizes and the gc race (docs/reliability.md, "Figures"), with the real binary:
#   1. wall time and peak RSS (/usr/bin/time -v) of status, status --json, show, log and fsck on a queue with a
#      50 MB field, and on one with 20,000 tasks (without and with the snapshot cache);
#   2. two writers adding 60 tasks each while a loop runs `git gc --prune=now`; then at most one
#      `fsck --repair`: acknowledged adds missing afterwards, whether the repair named each, `git fsck`.
#   scripts/bench-hostile.sh          (release build in .build-release, or TASKQ_BINARY=path)
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${TASKQ_BINARY:-}" ]; then
  bin=$TASKQ_BINARY
else
  swift build -c release --package-path "$root" --scratch-path "$root/.build-release" --product git-taskq >/dev/null
  bin="$root/.build-release/release/git-taskq"
fi
scratch=$(mktemp -d "${TMPDIR:-/var/tmp}/taskq-bench-hostile.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
export HOME="$scratch/home" GIT_CONFIG_NOSYSTEM=1 NO_COLOR=1 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
mkdir -p "$HOME"

measure() { # LABEL REPO ARGS...
  local label=$1 repo=$2; shift 2
  local out err; out=$(mktemp); err=$(mktemp)
  (cd "$repo" && /usr/bin/time -v "$bin" "$@" >"$out" 2>"$err")
  local rc=$?
  printf '%-26s exit %d  %8s s  %7s KB RSS  stdout %9s B\n' "$label" "$rc" \
    "$(grep 'Elapsed (wall' "$err" | awk '{print $NF}')" "$(grep 'Maximum resident' "$err" | awk '{print $NF}')" \
    "$(wc -c <"$out")"
  rm -f "$out" "$err"
}

queue() { # NAME TASKS MB
  git init -q -b main "$scratch/$1" && git -C "$scratch/$1" commit -q --allow-empty -m init
  python3 "$root/scripts/bench/hostile-queue.py" "$2" "$scratch/$1" "$3" | git -C "$scratch/$1" fast-import --quiet
  git -C "$scratch/$1" gc -q
}

echo "# a 50 MB last_error (its record is damaged: over the 64 KiB cap)"
queue big 3 50
for args in "status" "status --json" "show --id T-00001" "log" "fsck"; do
  # shellcheck disable=SC2086
  measure "$args" "$scratch/big" $args
done
echo "# 20,000 tasks"
queue q20k 20000 0
rm -f "$scratch/q20k/.git/taskq/cache-v1"
measure "status (no cache)" "$scratch/q20k" status
for args in "status" "status --json" "show --id T-12345" "log" "fsck"; do
  # shellcheck disable=SC2086
  measure "$args" "$scratch/q20k" $args
done

echo "# 2 writers x 60 adds racing 'git gc --prune=now'"
repo="$scratch/race"
git init -q -b main "$repo" && git -C "$repo" commit -q --allow-empty -m init
writer() {
  for i in $(seq 1 60); do
    if (cd "$repo" && "$bin" add --id "W$1-$i" --task "task $1 $i" >/dev/null 2>>"$scratch/err$1"); then
      echo "W$1-$i" >>"$scratch/acked"
    fi
  done
}
(while [ ! -e "$scratch/done1" ] || [ ! -e "$scratch/done2" ]; do git -C "$repo" gc -q --prune=now 2>/dev/null; done) &
gc=$!
(writer 1; touch "$scratch/done1") &
a=$!
(writer 2; touch "$scratch/done2") &
b=$!
wait $a $b; wait $gc
touch "$scratch/acked"
echo "acknowledged adds: $(grep -c . "$scratch/acked")"
if (cd "$repo" && "$bin" status >/dev/null 2>"$scratch/status.err"); then echo "status after the race: ok"; else
  echo "status after the race: $(head -1 "$scratch/status.err")"
  (cd "$repo" && "$bin" fsck --repair >/dev/null 2>"$scratch/repair.err")
  echo "fsck --repair: $(grep -c '^repaired' "$scratch/repair.err") repair(s), $(grep -c '^lost' "$scratch/repair.err") lost operation(s) named"
fi
present=$(git -C "$repo" ls-tree -r --name-only refs/taskq/queue | awk -F/ '$4=="record.json"{print $3}' | sort)
missing=$(comm -23 <(sort "$scratch/acked") <(echo "$present"))
unnamed=0
for id in $missing; do grep -q "^lost: $id: added" "$scratch/repair.err" 2>/dev/null || unnamed=$((unnamed + 1)); done
echo "acknowledged adds missing: $(echo "$missing" | grep -c .), of which not named by the repair: $unnamed"
(cd "$repo" && "$bin" status >/dev/null 2>&1) && echo "status: ok" || echo "status: fails"
git -C "$repo" fsck --no-progress --no-dangling >/dev/null 2>&1 && echo "git fsck: clean" || echo "git fsck: errors"
echo "failed adds: $(cat "$scratch"/err* 2>/dev/null | grep -c '^error')"
cat "$scratch"/err* 2>/dev/null | grep '^error' | cut -c1-120 | sort | uniq -c | sort -rn | head -3
