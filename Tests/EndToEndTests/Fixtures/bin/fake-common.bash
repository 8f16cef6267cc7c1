# Shared by the fake `docker`, `opencode` and `openchamber` of the end-to-end tests (sourced, not run).
#
# Every call is appended to $FAKE_LOG as one record: fields each followed by \x1f, the record ended by
# \x1e and a newline, so argv elements may hold newlines and still parse unambiguously:
#   program \x1f pid \x1f cwd \x1f N \x1f KEY=VALUE (N times) \x1f argv[1] \x1f argv[2] … \x1e \n
# Only the environment variables that matter to git-taskq's contract are recorded (when set).

fake_recorded_env=(OPENCODE_HOST OPENCODE_SKIP_START OPENCODE_SERVER_PASSWORD TASKQ_TASK_ID TASKQ_STAGE FAKE_CONTAINER)

fake_log() {
  local program=$1
  shift
  [ -n "${FAKE_LOG:-}" ] || return 0
  local env=() name
  for name in "${fake_recorded_env[@]}"; do
    if [ -n "${!name+x}" ]; then env+=("$name=${!name}"); fi
  done
  local record
  printf -v record '%s\x1f' "$program" "$$" "$PWD" "${#env[@]}" "${env[@]}" "$@"
  record+=$'\x1e\n'
  # One locked append per call: fakes run concurrently (parallel workers).
  if command -v flock >/dev/null 2>&1; then
    { flock 9; printf '%s' "$record" >>"$FAKE_LOG"; } 9>>"$FAKE_LOG.lock"
  else
    printf '%s' "$record" >>"$FAKE_LOG"
  fi
}

# fake_matches SPEC COMMAND ID: SPEC is a comma-separated list of COMMAND or COMMAND:ID.
fake_matches() {
  local spec=$1 command=$2 id=$3 item
  local IFS=,
  for item in $spec; do
    if [ "$item" = "$command" ] || [ "$item" = "$command:$id" ]; then return 0; fi
  done
  return 1
}

# fake_alive PID: the process exists and is not a zombie.
fake_alive() {
  local pid=$1 stat
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/stat" ]; then
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ] || return 1
  fi
  return 0
}

# fake_write FILE TEXT: writes atomically (tests poll these files).
fake_write() {
  printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}
