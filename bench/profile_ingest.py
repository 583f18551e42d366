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
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402


def summarize(text: str, main_tid: int | None) -> str:
    """Per-thread perf trace blocks folded into three groups: the event loop (main thread),
    libuv pool threads that ran group commits (they rename), and the short-lived helper
    threads a SyncJob starts for its parallel fdatasyncs. Totals per syscall in each."""
    blocks = re.split(r"\n (\S+) \((\d+)\), (\d+) events", text)
    threads = []
    for i in range(1, len(blocks) - 3, 4):
        tid, body = int(blocks[i + 1]), blocks[i + 3]
        rows = {}
        for m in re.finditer(r"^\s+(\w+)\s+(\d+)\s+\d+\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+([\d.]+)",
                             body, re.M):
            rows[m.group(1)] = (int(m.group(2)), float(m.group(3)), float(m.group(4)))
        threads.append((tid, rows))
    if not threads:
        return "(no per-thread blocks found)\n"
    if main_tid is None:
        main_tid = min(t for t, _ in threads)
    groups: dict[str, list] = {"loop (main thread)": [], "pool threads with group commits": [],
                               "SyncJob helper threads": [],
                               "other threads (helpers that found no file left, idle pool)": []}
    for tid, rows in threads:
        if tid == main_tid:
            groups["loop (main thread)"].append(rows)
        elif "rename" in rows or "pwrite64" in rows:
            groups["pool threads with group commits"].append(rows)
        elif "fdatasync" in rows or "fsync" in rows:
            groups["SyncJob helper threads"].append(rows)
        else:
            groups["other threads (helpers that found no file left, idle pool)"].append(rows)
    lines = ["| threads | count | syscall: calls, total ms, max ms (top 6 by time) |", "|---|---|---|"]
    for name, members in groups.items():
        if not members:
            continue
        agg: dict[str, list] = {}
        for rows in members:
            for k, (c, t, mx) in rows.items():
                a = agg.setdefault(k, [0, 0.0, 0.0])
                a[0] += c
                a[1] += t
                a[2] = max(a[2], mx)
        top = sorted(agg.items(), key=lambda kv: -kv[1][1])[:6]
        cells = "; ".join(f"{k} {c} / {t:.0f} / {mx:.1f}" for k, (c, t, mx) in top)
        lines.append(f"| {name} | {len(members)} | {cells} |")
    return "\n".join(lines) + "\n"


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
    text = out.read_text(errors="replace") if out.exists() else "(perf trace produced nothing)"
    head = (f"poll: {p}\nprocess CPU at the poll line: {cpu:.2f} s\n\n"
            f"Summary (epoll_wait is idle time; futex in helpers is waiting to be joined):\n\n"
            f"{summarize(text, child[0] if child else None)}\n"
            f"perf trace -s summary (per thread; msec totals):\n")
    out.write_text(head + text)
    print(head)
    return 0


if __name__ == "__main__":
    sys.exit(main())
