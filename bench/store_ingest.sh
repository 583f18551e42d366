#!/usr/bin/env bash
# Store ingest benchmark (not a test): builds bench/store_bench standalone in Release
# and runs it on a scratch directory (default: a temp dir under the build dir, i.e. on
# the same disk as the checkout; pass another directory to measure another disk).
# Usage: bench/store_ingest.sh [SCRATCH_DIR] [MESSAGES]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${BENCH_BUILD_DIR:-$here/../build-bench}"
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$build" -j2 store_bench >/dev/null
scratch="${1:-$build/scratch}"
mkdir -p "$scratch"
"$build/store_bench" "$scratch" "${2:-2000}"
