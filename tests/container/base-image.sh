#!/usr/bin/env bash
# Makes sure the podman storage (tests/container/podman-env.sh) holds
# docker.io/library/debian:bookworm, built here with debootstrap --variant=minbase from
# this machine's Debian mirror. The rootfs tarball is cached in $PB_CACHE, so only the
# first run on a machine pays for debootstrap (a few minutes); later runs take seconds.
# Safe to run concurrently (flock). Needs root, podman and debootstrap.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=podman-env.sh
source "$here/podman-env.sh"

tag=docker.io/library/debian:bookworm
tarball="$PB_CACHE/debian-bookworm-minbase.tar"

exec 9>"$PB_CACHE/base-image.lock"
flock 9

if [ ! -s "$tarball" ]; then
    mirror=$(pb_debian_mirror)
    echo "base-image: debootstrap --variant=minbase bookworm from $mirror (first run only)"
    root=$(mktemp -d "$PB_CACHE/rootfs.XXXXXX")
    trap 'rm -rf "$root"' EXIT
    debootstrap --variant=minbase bookworm "$root" "$mirror" > "$PB_CACHE/debootstrap.log" 2>&1 || {
        tail -n 30 "$PB_CACHE/debootstrap.log" >&2
        echo "base-image: debootstrap failed (log: $PB_CACHE/debootstrap.log)" >&2
        exit 1
    }
    # Keep the image small and neutral: no downloaded packages, no package lists.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar --numeric-owner -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$root"
    trap - EXIT
fi

if ! podman image exists "$tag"; then
    echo "base-image: podman import $tarball as $tag"
    podman import --change 'CMD ["/bin/bash"]' "$tarball" "$tag" >/dev/null
fi
echo "base-image: $tag ready (storage driver $PB_PODMAN_DRIVER)"
