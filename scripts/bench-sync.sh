#!/usr/bin/env bash
# What sharing the queue through a git remote costs (docs/performance.md, "Sharing"), with the real binary:
#   1. `sync` with nothing to do (median of 20), next to the `git fetch` it starts with (file:// remote);
#   2. `sync` that replays 100 local operations (50 adds, 50 cancels) on top of a remote that moved
#      (10 operations from another clone), median of 3 (file:// remote);
#   3. tasks claimed and run to review per second by `run --remote` with 1, 2, 4 and 8 workers, each on a
#      clone of its own (a machine), through a real server on loopback: a `git daemon --enable=receive-pack`
#      (git://) and an sshd with key authentication (ssh://, from Debian's openssh-server, installed here if
#      missing; a scratch configuration, nothing of the system's is used). The agent does nothing
#      (/bin/true), so the figure is ours alone. Every task must be claimed exactly once in the remote's
#      history, on one line (no merge); also counted: claims that lost a race, and the pushes the server
#      took (from its reflog: commits per push);
#   4. how long a `cancel` made on another clone takes to stop a running agent (git://, median of 3);
#   5. the same tasks on one clone without a remote, for comparison.
#   scripts/bench-sync.sh [TASKS]      (TASKS for 3., default 100; release build in .build-release,
#                                       or TASKQ_BINARY=path to use a built binary; BENCH_SSH=0 skips ssh;
#                                       BENCH_WORKERS="1 4" measures only those worker counts;
#                                       BENCH_TRACE=1 runs 3. under `strace -f -e trace=execve` and prints
#                                       the programs each run started, per task: slower, for profiles only)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-100}
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

# A server on loopback for 3. and 4.: git daemon, and sshd reached through an `ssh` on PATH that reads a
# scratch client configuration (key, port, known host key): git-taskq sees a user who chose no ssh command,
# so it shares one connection per machine (ControlMaster) as it would for anyone.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 1 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $1), 0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
servers=()
stop_servers() { for p in "${servers[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'stop_servers; rm -rf "$scratch"' EXIT
gitport=$(free_port)
mkdir -p "$scratch/served"
git daemon --reuseaddr --export-all --enable=receive-pack --listen=127.0.0.1 --port="$gitport" \
  --base-path="$scratch/served" "$scratch/served" 2>"$scratch/daemon.err" &
servers+=($!)
wait_port "$gitport" || fail "git daemon did not listen on $gitport: $(cat "$scratch/daemon.err")"
transports=(git)
if [ "${BENCH_SSH:-1}" != 0 ]; then
  if [ ! -x /usr/sbin/sshd ]; then
    echo "bench-sync: installing openssh-server for the ssh figures" >&2
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssh-server >/dev/null ||
      fail "cannot install openssh-server (BENCH_SSH=0 skips the ssh figures)"
  fi
  s="$scratch/ssh"
  mkdir -p "$s" "$scratch/bin"
  chmod 700 "$s"
  [ -d /run/sshd ] || { mkdir -p /run/sshd 2>/dev/null || sudo mkdir -p /run/sshd; }
  ssh-keygen -q -t ed25519 -N '' -f "$s/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$s/id"
  cp "$s/id.pub" "$s/authorized_keys"
  sshport=$(free_port)
  cat >"$s/sshd_config" <<CONF
Port $sshport
ListenAddress 127.0.0.1
HostKey $s/host_key
AuthorizedKeysFile $s/authorized_keys
PidFile $s/sshd.pid
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
MaxSessions 64
MaxStartups 64:30:128
CONF
  /usr/sbin/sshd -D -e -f "$s/sshd_config" 2>"$s/sshd.log" &
  servers+=($!)
  wait_port "$sshport" || fail "sshd did not listen on $sshport: $(tail -3 "$s/sshd.log")"
  echo "[127.0.0.1]:$sshport $(cut -d' ' -f1-2 "$s/host_key.pub")" >"$s/known_hosts"
  cat >"$s/config" <<CONF
Host bench
  HostName 127.0.0.1
  Port $sshport
  User $(id -un)
  IdentityFile $s/id
  IdentitiesOnly yes
  UserKnownHostsFile $s/known_hosts
  StrictHostKeyChecking yes
CONF
  printf '#!/bin/sh\nexec /usr/bin/ssh -F %s "$@"\n' "$s/config" >"$scratch/bin/ssh"
  chmod +x "$scratch/bin/ssh"
  export PATH="$scratch/bin:$PATH"
  ssh -o BatchMode=yes bench true || fail "ssh to the scratch sshd failed: $(tail -3 "$s/sshd.log")"
  transports+=(ssh)
fi

# served NAME: a world whose remote is served by the daemon and sshd, and CLONES clones c1…cN of it.
served() {
  local name=$1 clones=$2 transport=$3 url
  local dir="$scratch/served/$name"
  mkdir -p "$dir"
  git init -q --bare "$dir/remote.git"
  git -C "$dir/remote.git" config core.logAllRefUpdates always
  git init -q "$dir/target"
  git -C "$dir/target" commit -q --allow-empty -m init
  git -C "$dir/target" push -q "$dir/remote.git" main
  case $transport in
    git) url="git://127.0.0.1:$gitport/$name/remote.git" ;;
    ssh) url="bench:$dir/remote.git" ;;
  esac
  for c in $(seq 1 "$clones"); do
    git clone -q "$dir/remote.git" "$dir/c$c" 2>/dev/null
    git -C "$dir/c$c" remote set-url origin "$url"
    git -C "$dir/c$c" config --add taskq.trustedPath "$dir"
    git -C "$dir/c$c" config taskq.runtime local
    git -C "$dir/c$c" config taskq.agentProgram /bin/true
    git -C "$dir/c$c" config taskq.worktreesRoot "$dir/worktrees-$c"
  done
}

# 3. Claims through the remote, each worker on a clone of its own.
# execs.py N: the programs an strace log (stdin) shows started, per task (git subcommands by name).
cat >"$scratch/execs.py" <<'PY'
import collections, re, sys
n = int(sys.argv[1])
count = collections.Counter()
for line in sys.stdin:
    m = re.search(r'execve\("([^"]*)", \[(.*?)\]', line)
    if not m or " = -1 " in line:
        continue
    program = m.group(1).rsplit("/", 1)[-1]
    args = [a for a in re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))[1:] if not a.startswith("--git-dir=")]
    if program == "git" and args:
        program += " " + args[0]
    count[program] += 1
for program, c in count.most_common():
    print("  %6.2f per task  %s" % (c / n, program))
PY
TIMEFORMAT='%R %U %S'
declare -A rate
for transport in "${transports[@]}"; do
  for workers in ${BENCH_WORKERS:-1 2 4 8}; do
    name="claims-$transport-$workers"
    w="$scratch/served/$name"
    served "$name" "$workers" "$transport"
    for i in $(seq -w 1 "$n"); do add "$w/c1" "T-$i" "$w/target" --worktree-path "$w/worktrees/T-$i"; done
    taskq "$w/c1" sync >/dev/null
    for c in $(seq 2 "$workers"); do taskq "$w/c$c" sync >/dev/null; done
    before=$(git -C "$w/remote.git" reflog refs/taskq/queue 2>/dev/null | wc -l)
    { time {
      pids=()
      for c in $(seq 1 "$workers"); do
        if [ "${BENCH_TRACE:-0}" = 1 ]; then
          (cd "$w/c$c" && strace -f -qq -e trace=execve -o "$w/c$c.trace" "$bin" run --remote origin --max-parallel 1) \
            >"$w/c$c.out" 2>"$w/c$c.err" &
        else
          taskq "$w/c$c" run --remote origin --max-parallel 1 >"$w/c$c.out" 2>"$w/c$c.err" &
        fi
        pids+=($!)
      done
      for c in $(seq 1 "$workers"); do
        wait "${pids[$((c - 1))]}" || fail "$transport, $workers workers: run on c$c failed: $(tail -3 "$w/c$c.err")"
      done
    } ; } 2>"$w/time"
    read -r real user sys <"$w/time"
    log=$(git -C "$w/remote.git" log --format=%s refs/taskq/queue)
    claims=$(grep -c ': todo → planning$' <<<"$log" || true)
    distinct=$(grep ': todo → planning$' <<<"$log" | sort -u | wc -l)
    # A claim whose push answer was lost is given back (`planning → todo`, "claim not published") and
    # claimed again: each task is claimed once more than it was given back, and reaches review once.
    releases=$(grep -c ': planning → todo' <<<"$log" || true)
    reviews=$(grep -c '→ review' <<<"$log" || true)
    merges=$(git -C "$w/remote.git" rev-list --min-parents=2 refs/taskq/queue | wc -l)
    [ $((claims - releases)) = "$n" ] && [ "$distinct" = "$n" ] && [ "$reviews" = "$n" ] && [ "$merges" = 0 ] ||
      fail "$transport, $workers workers: $claims claims, $releases given back ($distinct tasks), $reviews reviews, $merges merges for $n tasks"
    lost=$(cat "$w"/c*.err | grep -c 'claimed by another worker first' || true)
    commits=$(git -C "$w/remote.git" rev-list --count refs/taskq/queue)
    pushes=$(($(git -C "$w/remote.git" reflog refs/taskq/queue | wc -l) - before))
    added=$(git -C "$w/remote.git" rev-list --count "refs/taskq/queue@{$pushes}..refs/taskq/queue")
    rate[$transport-$workers]=$(awk -v n="$n" -v r="$real" 'BEGIN { printf "%.2f", n / r }')
    awk -v t="$transport" -v w="$workers" -v n="$n" -v r="$real" -v u="$user" -v s="$sys" -v l="$lost" \
      -v p="$pushes" -v c="$added" 'BEGIN {
      printf "run --remote over %s, %d worker(s) on %d clone(s), %d tasks, no-op agent: %.2f s, %.2f tasks/s (CPU %.1f s user+sys, %.0f ms per task), each claimed once, linear; %d claims lost a race; %d pushes (%.2f per task), %.1f commits per push\n",
        t, w, w, n, r, n / r, u + s, (u + s) * 1000 / n, l, p, p / n, c / p }'
    if [ "${BENCH_TRACE:-0}" = 1 ]; then
      # Programs started (execve that succeeded), per task: git subcommands by name, others by path.
      cat "$w"/c*.trace | python3 "$scratch/execs.py" "$n"
    fi
  done
done
if [ -n "${rate[ssh-4]:-}" ] && [ -n "${rate[git-4]:-}" ]; then
  awk -v g="${rate[git-4]}" -v s="${rate[ssh-4]}" 'BEGIN { printf "ssh against git:// with 4 workers: %.2f of the rate\n", s / g }'
fi

# 4. A cancel made on another clone reaches a running agent (git://).
latencies=()
for r in 1 2 3; do
  name="cancel-$r"
  w="$scratch/served/$name"
  served "$name" 2 git
  printf '#!/bin/sh\necho $$ > "%s/agent.pid"\nexec sleep 120\n' "$w" >"$w/sleeper"
  chmod +x "$w/sleeper"
  git -C "$w/c1" config taskq.agentProgram "$w/sleeper"
  add "$w/c1" T-1 "$w/target" --worktree-path "$w/worktrees/T-1"
  taskq "$w/c1" sync >/dev/null
  taskq "$w/c1" run --remote origin --id T-1 >"$w/c1.out" 2>"$w/c1.err" &
  runner=$!
  for _ in $(seq 1 300); do [ -s "$w/agent.pid" ] && break; sleep 0.1; done
  [ -s "$w/agent.pid" ] || fail "the agent did not start: $(tail -3 "$w/c1.err")"
  agent=$(cat "$w/agent.pid")
  taskq "$w/c2" sync >/dev/null
  taskq "$w/c2" cancel --id T-1 >/dev/null
  taskq "$w/c2" sync >/dev/null
  t0=$(now)
  for _ in $(seq 1 600); do kill -0 "$agent" 2>/dev/null || break; sleep 0.05; done
  t1=$(now)
  kill -0 "$agent" 2>/dev/null && { kill "$agent" "$runner" 2>/dev/null; fail "the cancel did not stop the agent within 30 s"; }
  wait "$runner" || true
  latencies+=("$(elapsed_ms "$t0" "$t1")")
done
printf 'a cancel pushed from another clone stopped the running agent after %s ms median of 3 (%s)\n' \
  "$(printf '%s\n' "${latencies[@]}" | median)" "${latencies[*]}"

# 5. The same without a remote: one clone, 4 workers.
w="$scratch/local"
world "$w"
for i in $(seq -w 1 "$n"); do add "$w/a" "T-$i" "$w/target" --worktree-path "$w/worktrees/T-$i"; done
git -C "$w/a" config taskq.runtime local
git -C "$w/a" config taskq.agentProgram /bin/true
t0=$(now); taskq "$w/a" run --max-parallel 4 >"$w/local.out" 2>&1 || fail "run without a remote failed: $(tail -3 "$w/local.out")"; t1=$(now)
awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN {
  printf "for comparison, run without a remote, 4 workers, %d tasks, no-op agent: %.2f s, %.1f tasks per second\n", n, b - a, n / (b - a) }'
echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"
