#!/usr/bin/env bash
# Usage: replay.sh FUZZ_BINARY DIR...
# Runs every file under the given directories through the fuzz target once (libFuzzer's
# "run these inputs" mode). Fails if any input crashes, leaks or trips an invariant.
# Missing directories are skipped; no input at all is a pass (nothing to replay).
set -uo pipefail
bin=$1; shift
files=()
for d in "$@"; do
  [ -d "$d" ] || continue
  while IFS= read -r -d '' f; do files+=("$f"); done < <(find "$d" -type f ! -name 'README*' -print0 | sort -z)
done
echo "replay: ${#files[@]} inputs through $(basename "$bin")"
[ ${#files[@]} -eq 0 ] && exit 0
# Batches keep the command line short; -runs=1 runs each named file once.
status=0
for ((i = 0; i < ${#files[@]}; i += 200)); do
  "$bin" -runs=1 -timeout=10 -rss_limit_mb=2048 "${files[@]:i:200}" >/dev/null 2>"${TMPDIR:-/tmp}/replay.$$.err"
  rc=$?
  if [ $rc -ne 0 ]; then
    cat "${TMPDIR:-/tmp}/replay.$$.err" >&2
    echo "replay: FAILED (exit $rc) in batch starting at ${files[i]}" >&2
    status=1
  fi
done
rm -f "${TMPDIR:-/tmp}/replay.$$.err"
[ $status -eq 0 ] && echo "replay: all inputs passed"
exit $status
