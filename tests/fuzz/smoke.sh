#!/usr/bin/env bash
# Usage: smoke.sh FUZZ_BINARY SECONDS WORK_DIR SEED_DIR...
# Runs one libFuzzer target for SECONDS from the checked-in seeds (read-only) plus a working
# corpus in WORK_DIR/corpus (kept between runs). Fails on any crash, leak, timeout, OOM or
# invariant violation; the reproducer is left in WORK_DIR/ and its path printed. To keep it as
# a regression: copy it into tests/fuzz/regressions/<target>/ and report the bug.
# The seed is fixed (FUZZ_SEED, default 1) so a CI run explores the same path every time;
# exploration is the job of run_long.sh.
set -uo pipefail
bin=$1 seconds=$2 work=$3; shift 3
name=$(basename "$bin")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$work/corpus"
seeds=()
for d in "$@"; do [ -d "$d" ] && seeds+=("$d"); done
dict=()
case "$name" in
  fuzz_search) dict=(-dict="$here/dict/search.dict") ;;
  fuzz_imap_*) dict=(-dict="$here/dict/imap.dict") ;;
  fuzz_pop3_*) dict=(-dict="$here/dict/pop3.dict") ;;
  fuzz_config) dict=(-dict="$here/dict/yaml.dict") ;;
  fuzz_mime) [ -f "$here/dict/mime.dict" ] && dict=(-dict="$here/dict/mime.dict") ;;
esac
"$bin" -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
  -print_final_stats=1 -artifact_prefix="$work/" "${dict[@]}" "$work/corpus" "${seeds[@]}" \
  >"$work/log.txt" 2>&1
rc=$?
grep -E '^#[0-9]+ +DONE|^stat::number_of_executed_units|^stat::average_exec_per_sec|^stat::peak_rss_mb' "$work/log.txt"
if [ $rc -ne 0 ]; then
  tail -n 60 "$work/log.txt"
  echo "smoke: $name FAILED (exit $rc); reproducer(s):" >&2
  ls -1 "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null >&2
  exit 1
fi
echo "smoke: $name ran ${seconds}s without a finding"
