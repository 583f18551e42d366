#!/usr/bin/env bash
# Usage: scripts/build.sh [build-dir] [extra cmake args...]
# Configures with CMake + Ninja (RelWithDebInfo unless the extra args say
# otherwise) and builds with -j2. build-dir defaults to <repo>/build; a
# relative build-dir is taken relative to the current directory. PB_BUILD_TARGET=<target>
# builds only that target (e.g. fuzz_all in a fuzz build dir).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${1:-$root/build}
[ $# -gt 0 ] && shift
case "$build_dir" in /*) ;; *) build_dir="$PWD/$build_dir" ;; esac

if [ -f "$build_dir/CMakeCache.txt" ] && ! grep -q '^CMAKE_GENERATOR:INTERNAL=Ninja$' "$build_dir/CMakeCache.txt"; then
  echo "build.sh: $build_dir was configured with another generator; remove it or pick another build dir" >&2
  exit 1
fi

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
if [ -n "${PB_BUILD_TARGET:-}" ]; then
  cmake --build "$build_dir" -j2 --target "$PB_BUILD_TARGET"
else
  cmake --build "$build_dir" -j2
fi
