#!/usr/bin/env bash
# Usage: tests/fuzz/run_long.sh [MINUTES] [BUILD_DIR] [TARGET...]
# Runs every fuzz target (or the named ones) for MINUTES each (default 10), one after the
# other, from the checked-in seeds plus a working corpus in BUILD_DIR/tests/fuzz/work/<target>
# (default BUILD_DIR: <repo>/build-fuzz, configured and built first if needed). Prints one line
# per target: total execs, execs/s, corpus size, peak RSS, and whether it found anything.
# Exits non-zero if any target found a crash, leak, timeout or OOM (reproducer path printed;
# copy it into tests/fuzz/regressions/<target>/ and report it).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
minutes=${1:-10}
build=${2:-$root/build-fuzz}
shift $(($# > 2 ? 2 : $#))

if [ ! -f "$build/tests/fuzz/targets.txt" ]; then
  PB_BUILD_TARGET=fuzz_all bash "$root/scripts/build.sh" "$build" -DCMAKE_CXX_COMPILER=clang++ \
    -DPOPBRIDGE_FUZZ=ON -DPOPBRIDGE_TESTS=OFF || exit 1
elif [ $# -gt 0 ]; then
  cmake --build "$build" -j2 --target "$@" || exit 1 # only the named targets
else
  cmake --build "$build" -j2 --target fuzz_all || exit 1
fi
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(grep -v '^$' "$build/tests/fuzz/targets.txt"); fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
seconds=$((minutes * 60))
status=0
summary=()
for t in "${targets[@]}"; do
  echo "=== run_long: $t for ${minutes} min"
  work="$build/tests/fuzz/work/$t"
  mkdir -p "$work"
  if "$here/smoke.sh" "$build/tests/fuzz/$t" "$seconds" "$work" "$here/corpus/$t" \
      "$here/regressions/$t" >"$work.long.txt" 2>&1; then
    result=ok
  else
    result=FOUND
    status=1
  fi
  log="$work/log.txt"
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | awk '{print $2}')
  rss=$(grep -E '^stat::peak_rss_mb' "$log" | awk '{print $2}')
  corpus=$(find "$work/corpus" -type f | wc -l)
  line=$(printf '%-22s %6s min  %12s execs  %8s execs/s  corpus %6s  peak RSS %5s MB  %s' \
    "$t" "$minutes" "${execs:-?}" "${rate:-?}" "$corpus" "${rss:-?}" "$result")
  echo "$line"
  [ "$result" = ok ] || cat "$work.long.txt"
  summary+=("$line")
done
echo "=== run_long summary"
printf '%s\n' "${summary[@]}"
exit $status
