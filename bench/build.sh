#!/usr/bin/env bash
# Build a Release popbridge for the benchmarks.
#   bench/build.sh            build the committed HEAD (exported with git archive, so
#                             other people's uncommitted edits in the work tree do not
#                             leak into the numbers)
#   bench/build.sh REV        build that commit
#   bench/build.sh --worktree build the work tree as it is
# Prints the path of the binary on the last line. Build dir: build-bench/ (git-ignored
# build-* dirs); override with POPBRIDGE_BENCH_BUILD.
set -euo pipefail
src_root=$(cd "$(dirname "$0")/.." && pwd)
build=${POPBRIDGE_BENCH_BUILD:-$src_root/build-bench}
rev=${1:-HEAD}
mkdir -p "$build"
if [[ $rev == --worktree ]]; then
    src=$src_root
else
    src=$build/src
    commit=$(git -C "$src_root" rev-parse "$rev^{commit}")
    if [[ ! -f $src/.bench-commit || $(cat "$src/.bench-commit") != "$commit" ]]; then
        rm -rf "$src"
        mkdir -p "$src"
        git -C "$src_root" archive "$commit" | tar -x -C "$src"
        echo "$commit" >"$src/.bench-commit"
    fi
fi
cmake -S "$src" -B "$build/obj" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPOPBRIDGE_TESTS=OFF >/dev/null
nice ninja -C "$build/obj" -j"${POPBRIDGE_BENCH_JOBS:-2}" popbridge >&2
echo "$build/obj/proxy/popbridge"
