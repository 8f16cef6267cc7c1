#!/usr/bin/env bash
# A real container engine for the tests: rootful Podman serving the Docker API on /var/run/docker.sock, so
# the stock `docker` CLI (and git-taskq's docker adapter) drive real containers. See DESIGN.md §9.
#   scripts/engine/podman-engine.sh start    install (if needed), configure, build the stand-in image, serve
#   scripts/engine/podman-engine.sh stop     stop the API service
#   scripts/engine/podman-engine.sh status   exit 0 when the engine answers
# The image: localhost/taskq-standin:latest, static busybox plus opencode-standin as its entrypoint.
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

build_image() {
  if podman image exists "$image" && podman image exists "$broken" && [ "$(podman image inspect -f '{{index .Labels "taskq.standin"}}' "$image" 2>/dev/null)" = "$(sha256sum "$here/opencode-standin" | cut -c1-16)" ]; then
    return 0
  fi
  local rootfs
  rootfs=$(mktemp -d)
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/srv"
  cp /bin/busybox "$rootfs/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$rootfs/bin/$applet" ] || ln -s busybox "$rootfs/bin/$applet"
  done
  cp "$here/opencode-standin" "$rootfs/bin/opencode"
  chmod 755 "$rootfs/bin/opencode"
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/bin' --change 'ENTRYPOINT ["/bin/opencode"]' \
    --change "LABEL taskq.standin=$(sha256sum "$here/opencode-standin" | cut -c1-16)" \
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
  if [ -f "$state/service.pid" ]; then
    kill "$(cat "$state/service.pid")" 2>/dev/null || true
    rm -f "$state/service.pid"
  fi
  podman rm -a -f -t 0 >/dev/null 2>&1 || true
  log "stopped"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) answers ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
