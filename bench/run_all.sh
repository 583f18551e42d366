#!/usr/bin/env bash
# Run every benchmark and collect the tables in build-bench/results/latest.md.
#   bash bench/run_all.sh             all rows, default sizes (about 30-40 minutes)
#   QUICK=1 bash bench/run_all.sh     small sizes, one run each (a smoke test, minutes)
#   REV=<commit> bash bench/run_all.sh   benchmark that commit (default HEAD)
# Needs root for apt (bench/install-peers.sh) and for 10,000+ descriptors; everything runs
# on 127.0.0.1 in temp dirs and is stopped at the end. Not part of the test suite.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bash "$here/install-peers.sh"
export POPBRIDGE_BIN
POPBRIDGE_BIN=$(bash "$here/build.sh" "${REV:-HEAD}" | tail -1)
results=${POPBRIDGE_BENCH_BUILD:-$here/../build-bench}/results
mkdir -p "$results"
ulimit -n 200000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

failed=0
run() { "$@" || { echo "run_all.sh: FAILED: $*" >&2; failed=1; }; }

if [[ ${QUICK:-0} == 1 ]]; then
    run python3 "$here/ingest.py" --messages 200 --runs 1 --steady 2
    run python3 "$here/imap_serving.py" --messages 200 --runs 2
    run python3 "$here/connections.py" --conns 500 --push 20 --appends 5
    run python3 "$here/open_time.py" --messages 5000 --runs 2
else
    run python3 "$here/ingest.py" --messages 2000 --runs 3 --steady 3 --strace
    run python3 "$here/imap_serving.py" --messages 2000 --runs 5
    run python3 "$here/connections.py" --conns 10000 --push 100 --appends 20
    run python3 "$here/open_time.py" --messages 100000 --runs 5
fi

python3 -c "
import sys, json
sys.path.insert(0, '$here/lib')
import benchlib as bl
f = bl.machine_facts()
lines = ['## Machine', '', *(f'- {k}: {v}' for k, v in f.items()), '']
for name in ('ingest', 'imap_serving', 'connections', 'open_time'):
    p = bl.RESULTS_DIR / (name + '.md')
    if p.exists():
        lines += [p.read_text(), '']
(bl.RESULTS_DIR / 'latest.md').write_text('\n'.join(lines))
print('\n'.join(lines))
"
exit $failed
