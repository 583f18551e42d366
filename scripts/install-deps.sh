#!/usr/bin/env bash
# Installs what popbridge needs to build and test, on Debian 12, with apt-get.
# Idempotent: does nothing (and needs no root) when everything is installed.
# Never leaves a system-wide Dovecot running after installing it.
set -euo pipefail

PACKAGES=(
  g++ cmake ninja-build pkg-config git
  libuv1-dev libssl-dev libyaml-cpp-dev libspdlog-dev catch2 libexpected-dev libcrypt-dev zlib1g-dev
  python3 dovecot-pop3d dovecot-imapd isync curl openssl ca-certificates
  clang
  # The container test (tests/integration/test_container.py): rootful podman with runc,
  # and debootstrap for the debian:bookworm base image (no registry is reachable here).
  podman runc debootstrap uidmap fuse-overlayfs slirp4netns
)

installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

echo "install-deps: missing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: run as root (or install the packages above yourself)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive

# Keep package scripts from starting services (Dovecot) while we install. Only
# add a policy-rc.d if there is none, and remove only the one we added.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\n# temporary, added by popbridge scripts/install-deps.sh\nexit 101\n' > "$policy"
  chmod 755 "$policy"
  added_policy=1
fi
cleanup() {
  if [ "$added_policy" = 1 ]; then rm -f "$policy"; fi
}
trap cleanup EXIT

# A third-party source that fails must not stop us: apt-get update still
# refreshes Debian's own lists, and the install below is what must succeed.
if ! apt-get update; then
  echo "install-deps: warning: apt-get update reported errors (a third-party source?); continuing" >&2
fi
apt-get install -y --no-install-recommends \
  -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  "${missing[@]}"

# If installing Dovecot started the system service anyway, stop it: the tests
# run their own Dovecot instances on free loopback ports.
new_dovecot=0
for pkg in "${missing[@]}"; do
  case "$pkg" in dovecot-*) new_dovecot=1 ;; esac
done
if [ "$new_dovecot" = 1 ]; then
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl stop dovecot.service dovecot.socket 2>/dev/null || true
    systemctl disable dovecot.service dovecot.socket 2>/dev/null || true
  fi
  pidfile=/run/dovecot/master.pid
  if [ -r "$pidfile" ]; then
    pid=$(cat "$pidfile")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
        && tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q dovecot; then
      echo "install-deps: stopping the system Dovecot (pid $pid) started by the package install"
      kill -TERM "$pid" || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
fi

still=()
for pkg in "${PACKAGES[@]}"; do
  installed "$pkg" || still+=("$pkg")
done
if [ ${#still[@]} -ne 0 ]; then
  echo "install-deps: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "install-deps: installed ${missing[*]}"
