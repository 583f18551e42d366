#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): install what is missing,
# build into build/, run ctest. Exits non-zero if anything fails. The last
# line is always "N passed, N failed" (totals over every ctest run below).
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

passed=0
failed=0
failures=()

summary() {
  if [ ${#failures[@]} -ne 0 ]; then
    echo "test.sh: FAILED: ${failures[*]}"
  fi
  echo "$passed passed, $failed failed"
}

# A step that is not a ctest run (install, build): a failure counts as one failed test.
step() {
  local name=$1; shift
  echo "=== test.sh: $name: $*"
  if ! "$@"; then
    echo "=== test.sh: $name FAILED"
    failures+=("$name")
    failed=$((failed + 1))
    return 1
  fi
}

# Run ctest in a build dir and add its counts to the totals.
# ctest ends with "NN% tests passed, F tests failed out of T".
run_ctest() {
  local name=$1 build_dir=$2; shift 2
  local log="$build_dir/ctest-$name.log"
  echo "=== test.sh: $name: ctest --test-dir $build_dir --output-on-failure -j2 $*"
  ctest --test-dir "$build_dir" --output-on-failure -j2 "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  local line total f
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "=== test.sh: $name: no ctest summary (no tests found?), counted as one failure"
    failures+=("$name")
    failed=$((failed + 1))
    return 1
  fi
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  total=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + total - f))
  failed=$((failed + f))
  if [ "$rc" -ne 0 ] || [ "$f" -ne 0 ]; then
    failures+=("$name")
    return 1
  fi
}

if step install-deps bash scripts/install-deps.sh && step build bash scripts/build.sh "$root/build"; then
  run_ctest ctest build
fi

# The same suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc), build-asan/. The
# integration tests run against the ASan daemon; any report fails the test (tests/CMakeLists.txt
# sets ASAN_OPTIONS/UBSAN_OPTIONS, harness.py checks the daemon's log on stop()).
if step build-asan bash scripts/build.sh "$root/build-asan" -DPOPBRIDGE_SANITIZE=ON; then
  run_ctest asan build-asan
fi

# libFuzzer targets (clang, ASan+UBSan), build-fuzz/: replay tests/fuzz/regressions and the
# seeds, then run each target for POPBRIDGE_FUZZ_SECONDS (default 20) from the checked-in
# seeds. Longer runs: tests/fuzz/run_long.sh.
if step build-fuzz env PB_BUILD_TARGET=fuzz_all bash scripts/build.sh "$root/build-fuzz" \
    -DCMAKE_CXX_COMPILER=clang++ -DPOPBRIDGE_FUZZ=ON -DPOPBRIDGE_TESTS=OFF \
    -DPB_FUZZ_SECONDS="${POPBRIDGE_FUZZ_SECONDS:-20}"; then
  run_ctest fuzz build-fuzz
fi
# --- HOOK (later session): container test --------------------------------------------
# TODO(container): build docker/Dockerfile and run the integration suite against the image.
# ---------------------------------------------------------------------------------------

summary
[ "$failed" -eq 0 ] && [ ${#failures[@]} -eq 0 ]
