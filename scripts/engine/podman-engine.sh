#!/usr/bin/env bash
# A real container engine for the tests: rootful Podman serving the Docker API on /var/run/docker.sock, so
# the stock `docker` CLI (and git-taskq's docker adapter) drive real containers. See DESIGN.md §9.
#   scripts/engine/podman-engine.sh start    install (if needed), configure, build the stand-in image, serve
#   scripts/engine/podman-engine.sh stop     stop the API service this script started (and nothing else: the
#                                            containers on the engine belong to whoever made them)
#   scripts/engine/podman-engine.sh status   exit 0 when the engine answers
# The image: localhost/taskq-standin:latest, static busybox, git (the host's, with its libraries) and
# opencode-standin as its entrypoint.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=localhost/taskq-standin:latest
broken=localhost/taskq-standin-broken:latest
socket=/var/run/docker.sock
state=/run/taskq-podman
mkdir -p "$state"

log() { echo "podman-engine: $*" >&2; }

install_packages() {
  local missing=()
  for p in podman runc netavark aardvark-dns iptables catatonit busybox-static; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure() {
  # crun refuses this machine's hybrid cgroup layout; the default ulimits exceed the hard limits here.
  local nofile nproc
  nofile=$(ulimit -Hn); [ "$nofile" = unlimited ] && nofile=1048576
  nproc=$(ulimit -Hu); [ "$nproc" = unlimited ] && nproc=32768
  [ "$nproc" -gt 32768 ] && nproc=32768
  mkdir -p /etc/containers
  cat >/etc/containers/containers.conf <<CONF
[containers]
default_ulimits = ["nofile=${nofile}:${nofile}", "nproc=${nproc}:${nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}

fingerprint() { cat "$here/opencode-standin" "$0" | sha256sum | cut -c1-16; }

# Copies a dynamically linked program and the libraries it loads into the image, at the same paths.
copy_program() { # copy_program ROOTFS PATH
  local rootfs=$1 program=$2 lib
  mkdir -p "$rootfs$(dirname "$program")"
  cp -L "$program" "$rootfs$program"
  for lib in $(ldd "$program" | grep -o '/[^ ]*'); do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
}

build_image() {
  if podman image exists "$image" && podman image exists "$broken" && [ "$(podman image inspect -f '{{index .Labels "taskq.standin"}}' "$image" 2>/dev/null)" = "$(fingerprint)" ]; then
    return 0
  fi
  local rootfs
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/srv"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  # git at /usr/bin/git (busybox has none), so that the stand-in agent commits as a real one does.
  copy_program "$rootfs" "$(command -v git)"
  [ -e "$rootfs/bin/git" ] || ln -s "$(command -v git)" "$rootfs/bin/git"
  cp "$here/opencode-standin" "$rootfs/bin/opencode"
  chmod 755 "$rootfs/bin/opencode"
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/bin' --change 'ENTRYPOINT ["/bin/opencode"]' \
    --change "LABEL taskq.standin=$(fingerprint)" \
    - "$image" >/dev/null 2>&1
  # A second image whose server dies at once, for the failure path.
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/bin' --change 'ENTRYPOINT ["/bin/sh", "-c", "echo standin: crashing on purpose >&2; exit 3", "--"]' \
    - "$broken" >/dev/null 2>&1
  rm -rf "$rootfs"
  log "built $image"
}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start() {
  install_packages
  configure
  build_image
  if answers; then log "already serving on $socket"; return 0; fi
  rm -f "$socket"
  setsid podman system service --time=0 "unix://$socket" >"$state/service.log" 2>&1 </dev/null &
  echo $! >"$state/service.pid"
  for _ in $(seq 1 100); do
    answers && { log "serving the Docker API on $socket (pid $(cat "$state/service.pid"))"; return 0; }
    sleep 0.1
  done
  log "the service did not answer; its log:"; cat "$state/service.log" >&2
  return 1
}

stop() {
  # Only the service this script started (its pid, checked to still be that service); containers on the
  # engine are left to whoever made them (the real-engine tests remove their own).
  if [ -f "$state/service.pid" ]; then
    local pid
    pid=$(cat "$state/service.pid")
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "podman system service"; then
      kill "$pid" 2>/dev/null || true
      log "stopped the API service (pid $pid)"
    fi
    rm -f "$state/service.pid"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
