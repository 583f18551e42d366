#!/usr/bin/env python3
"""Row 6: start-up to the first successful SELECT with 100,000 messages stored.

The store is made once by letting popbridge ingest 100,000 small (~1 KB) messages from a
Dovecot POP3 upstream, and cached in build-bench/cache/store-<n>/ (delete it to rebuild).
Each run works on a copy of that data dir (message files hard-linked, every other file,
i.e. the index journals, copied), so runs do not change the cache.

Measured per run: from exec() of popbridge (no upstream configured, so nothing polls) to the
tagged OK of `SELECT INBOX` on a fresh connection (connect retried every 2 ms; LOGIN
included), checking that SELECT reports every message; then popbridge's RSS. The same for
Dovecot over the same Maildir (its index already built by the POP3 session that fed
popbridge): from exec() of dovecot to the SELECT's OK.

Usage: bench/open_time.py [--messages 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402
from rawimap import ImapError, RawImap  # noqa: E402


def build_store(n: int, up: bl.Upstream) -> Path:
    cache = bl.CACHE_DIR / f"store-tiny-{n}"
    if (cache / "DONE").exists():
        return cache / "data"
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    bl.log(f"building the {n}-message store (once; cached in {cache}) ...")
    # popbridge d219e2b fails a poll of a 100k mailbox with EMFILE after ~2,000 messages (one
    # open file per message waiting for its group commit, no cap): restart it until all
    # are in, each start polls at once. Each poll keeps what it committed.
    total, t0, p = 0, time.monotonic(), {}
    for attempt in range(400):
        pb = bl.PopbridgeRun(up, poll_every="1h", data_dir=cache / "data")
        pb.start()
        p = pb.wait_polls(1, 3600, interval=0.2)[0]
        pb.stop()
        shutil.rmtree(pb.dir, ignore_errors=True)
        total += p["new"]
        if attempt % 10 == 0 or total >= n:
            bl.log(f"  poll {attempt + 1}: {p['outcome']}, {total} of {n} stored")
        if total >= n or (p["outcome"] == "ok" and p["new"] == 0):
            break
    bl.log(f"popbridge ingested {total} messages in {time.monotonic() - t0:.0f} s")
    if total != n:
        raise RuntimeError(f"ingested {total} of {n}")
    (cache / "DONE").write_text(str(p))
    shutil.rmtree(pb.dir, ignore_errors=True)
    return cache / "data"


def copy_store(src: Path, dst: Path) -> None:
    """Hard-link message files (under cur/ new/ tmp/), copy everything else."""
    for root, dirs, files in os.walk(src):
        rel = Path(root).relative_to(src)
        (dst / rel).mkdir(parents=True, exist_ok=True)
        in_maildir = rel.name in ("cur", "new", "tmp")
        for f in files:
            s, d = Path(root) / f, dst / rel / f
            if in_maildir:
                os.link(s, d)
            else:
                shutil.copy2(s, d)


def first_select(port: int, user: str, password: str, alive, timeout: float = 120) -> tuple[float, int]:
    deadline = time.monotonic() + timeout
    while True:
        alive()
        try:
            c = RawImap("127.0.0.1", port, timeout=timeout)
            break
        except (ConnectionRefusedError, ImapError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.002)
    try:
        c.login(user, password)
        _t, untagged, _dt = c.command("SELECT INBOX", keep=True)
        t = time.monotonic()
        exists = next(int(u.split()[1]) for u in untagged if u.split()[2:3] == [b"EXISTS"])
        return t, exists
    finally:
        c.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    src = bl.corpus(args.messages, 8, profile="tiny")
    up = bl.Upstream().start(seed_from=src)
    t0 = time.monotonic()
    up.warm()
    bl.log(f"Dovecot indexed {args.messages} messages in {time.monotonic() - t0:.1f} s")
    data = build_store(args.messages, up)
    # Dovecot: IMAP only from now on; measure its own start to first SELECT.
    up.proc.terminate()
    up.proc.wait(30)
    dv_conf = up.conf
    pb_runs, dv_runs = [], []
    for r in range(args.runs):
        work = Path(tempfile.mkdtemp(prefix="pbbench-open-", dir=os.environ.get("PB_BENCH_TMP")))
        try:
            copy_store(data, work / "data")
            os.sync()
            pb = bl.PopbridgeRun(None, data_dir=work / "data")
            pb.start()
            t_sel, exists = first_select(pb.imap_port, pb.user, pb.password, pb.alive)
            rss = bl.proc_status(pb.pid, "VmRSS")
            cpu = bl.proc_cpu_precise(pb.pid)
            pb_runs.append({"s": t_sel - pb.started_at, "exists": exists, "rss": rss, "cpu": cpu})
            bl.log(f"popbridge run {r + 1}: {t_sel - pb.started_at:.3f} s, EXISTS {exists}, "
                   f"RSS {rss / 1048576:.1f} MiB")
            pb.cleanup()
        finally:
            shutil.rmtree(work, ignore_errors=True)
        # Dovecot
        t_start = time.monotonic()
        proc = subprocess.Popen(["dovecot", "-F", "-c", str(dv_conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=bl.harness._die_with_parent)
        try:
            def alive():
                if proc.poll() is not None:
                    raise RuntimeError(f"dovecot exited {proc.returncode}")
            t_sel, exists = first_select(up.imap_port, up.user, up.password, alive)
            rss, pss = bl.tree_memory([proc.pid] + bl.descendants(proc.pid))
            dv_runs.append({"s": t_sel - t_start, "exists": exists, "rss": rss, "pss": pss})
            bl.log(f"dovecot run {r + 1}: {t_sel - t_start:.3f} s, EXISTS {exists}")
        finally:
            bl.harness._terminate(proc, "dovecot")
    up.proc = None
    up.stop()

    rows = []
    for name, runs in (("popbridge", pb_runs), ("dovecot", dv_runs)):
        if not runs:
            continue
        ok = all(x["exists"] == args.messages for x in runs)
        rows.append([name, bl.fmt(bl.median([x["s"] for x in runs])),
                     bl.fmt(bl.median([x["rss"] for x in runs]), "MiB"),
                     "yes" if ok else f"NO ({runs[-1]['exists']})",
                     " ".join(f"{x['s']:.3f}" for x in runs)])
    text = (f"### Open time: exec to first successful SELECT INBOX, {args.messages} messages "
            f"stored (median of {args.runs})\n\n" +
            bl.markdown_table(["server", "seconds", "RSS after SELECT MiB (Dovecot: all processes)",
                               "EXISTS right", "all runs (s)"], rows))
    bl.save("open_time", text, {"popbridge": pb_runs, "dovecot": dv_runs})
    return 0


if __name__ == "__main__":
    sys.exit(main())
