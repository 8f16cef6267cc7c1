#!/usr/bin/env bash
# Installs what git-taskq needs to build on a fresh Debian machine: libgit2 (with pkg-config) and git.
# Idempotent and quiet when everything is there. Needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
pkg-config --exists libgit2 2>/dev/null || need+=(libgit2-dev pkg-config)
command -v git >/dev/null 2>&1 || need+=(git)
command -v python3 >/dev/null 2>&1 || need+=(python3)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=sudo; else
    echo "bootstrap: please install: ${need[*]} (apt-get install -y ${need[*]})" >&2
    exit 1
  fi
fi
echo "bootstrap: installing ${need[*]}" >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
