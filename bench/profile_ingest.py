#!/usr/bin/env python3
"""Where popbridge's ingest time goes: one ingest of the benchmark corpus with
`perf trace -s` attached (per-thread syscall counts and total time in each syscall), and
optionally `perf record -g` for the CPU profile. Prints the poll's duration next to the time
the threads spent in fdatasync/fsync/write/etc., so that off-CPU waiting is visible.

Usage: bench/profile_ingest.py [--messages 2000] [--record]
Output: build-bench/results/profile_ingest.txt (and perf.data there with --record).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--record", action="store_true", help="also perf record -g (CPU profile)")
    args = ap.parse_args()
    src = bl.corpus(args.messages)
    up = bl.Upstream().start(seed_from=src)
    up.warm()
    bl.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = bl.RESULTS_DIR / "profile_ingest.txt"
    pb = bl.PopbridgeRun(up, poll_every="1h")
    try:
        # perf trace runs popbridge itself, so that thread-pool threads are traced too.
        pb.start(wrap=["perf", "trace", "-s", "-o", str(out), "--"])
        tools = []
        if args.record:
            tools.append(subprocess.Popen(["perf", "record", "-g", "-p",
                                           str(bl.descendants(pb.pid)[0]), "-o",
                                           str(bl.RESULTS_DIR / "perf.data")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        p = pb.wait_polls(1, 900, interval=0.01)[0]
        child = bl.descendants(pb.pid)
        cpu = bl.proc_cpu_precise(child[0]) if child else float("nan")
        for t in tools:
            t.send_signal(signal.SIGINT)
        for t in tools:
            t.wait(60)
        # SIGINT makes perf trace stop popbridge and write its summary.
        pb.proc.send_signal(signal.SIGINT)
        pb.proc.wait(60)
    finally:
        pb.cleanup()
        up.stop()
    head = (f"poll: {p}\nprocess CPU at the poll line: {cpu:.2f} s\n"
            f"perf trace -s summary (per thread; msec totals):\n")
    text = out.read_text(errors="replace") if out.exists() else "(perf trace produced nothing)"
    out.write_text(head + text)
    print(head + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
