#!/usr/bin/env bash
# The main job, end to end, on the built-in local defaults: a scratch repository, several tasks, `run` with
# parallel workers (local runtime + the demo agent, no container engine needed), status, the diff of a task
# branch, approve, cleanup and the queue's history.
#   scripts/demo.sh            (builds git-taskq first; KEEP=1 keeps the scratch directory)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/bootstrap.sh"
echo "==> building git-taskq"
swift build --package-path "$root" --product git-taskq >/dev/null
bin=$(swift build --package-path "$root" --show-bin-path)
export PATH="$bin:$PATH"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/taskq-demo.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$scratch"' EXIT; fi
repo="$scratch/sisifo"
mkdir -p "$repo"
cd "$repo"
git init -q -b main
git config user.name "Demo Operator"
git config user.email "operator@example.com"
printf '# sisifo\n' >README.md
git add README.md
git commit -q -m "initial commit"

# Local defaults: no container engine, the shipped demo agent, worktrees inside the scratch directory.
git config taskq.runtime local
git config taskq.agentProgram "$root/scripts/demo-agent"
git config taskq.worktreesRoot "$scratch/worktrees"
export DEMO_AGENT_DELAY=${DEMO_AGENT_DELAY:-1}

run() { printf '\n$ %s\n' "$*"; "$@"; }
run git taskq add --id T-001 --task "Write the release notes for version 1.0"
run git taskq add --id T-002 --task "Document the configuration keys" --priority 5
run git taskq add --id T-003 --task "Describe the storage format"
cat >"$scratch/T-004.md" <<'TASK'
---
id: T-004
base: main
depends_on: T-001
---
Summarise the release notes in one paragraph.
TASK
run git taskq add --task-file "$scratch/T-004.md"
run git taskq status
run git taskq run --max-parallel 3
run git taskq status
run git log --oneline main..task/T-001
run git diff --stat main task/T-001
run git taskq approve --id T-001
run git taskq run --id T-004
run git taskq approve --id T-004
run git taskq cancel --id T-003
run git taskq cleanup
run git taskq status
run git taskq log -n 12
printf '\nThe queue is the ref refs/taskq/queue: try  git -C %s log --stat refs/taskq/queue\n' "$repo"
