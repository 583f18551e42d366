#!/usr/bin/env python3
"""Row 3: IMAP serving, popbridge vs Dovecot imapd over the same messages.

Both servers hold the same corpus (default 2,000 messages): Dovecot reads the Maildir it
was seeded with, popbridge serves the store it built by ingesting that mailbox over POP3
(done once per invocation, then popbridge restarts without an upstream so that no poll
runs during the measurements). Tasks, each timed from the client:

  mbsync     full pull of INBOX with mbsync (isync) into an empty Maildir (FSync on)
  mbsync-nofsync  the same with mbsync's FSync off (the servers' own cost shows)
  envelope   FETCH 1:* (ENVELOPE FLAGS), one command, to the tagged OK
  search     SEARCH TEXT "<word in 1 of 50 messages>" and SEARCH TEXT "<word in none>"

The first run of each task warms caches (Dovecot builds its index cache on first use) and
is reported separately; the table shows the median of the following runs. Server CPU per
task: popbridge from /proc/<pid>/task/*/schedstat, Dovecot as the master's own + reaped
children's CPU plus its live children's. Both must return the same SEARCH hit counts and
the same number of FETCH responses, or the row says so.

Usage: bench/imap_serving.py [--messages 2000] [--runs 5]
                             [--only mbsync,mbsync-nofsync,envelope,search]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402
from rawimap import ImapError, RawImap  # noqa: E402


def dovecot_cpu(master: int) -> float:
    """Dovecot's CPU so far: the master, its reaped children and its live descendants."""
    total = 0.0
    with open(f"/proc/{master}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    total += sum(int(x) for x in fields[11:15]) / bl.CLK_TCK
    for pid in bl.descendants(master):
        try:
            total += bl.proc_cpu(pid)
        except OSError:
            pass
    return total


class Server:
    def __init__(self, name: str, port: int, user: str, password: str, cpu):
        self.name, self.port, self.user, self.password, self.cpu = name, port, user, password, cpu

    def client(self) -> RawImap:
        c = RawImap("127.0.0.1", self.port)
        c.login(self.user, self.password)
        return c


def task_mbsync(s: Server, work: Path, fsync: bool = True) -> dict:
    d = Path(tempfile.mkdtemp(prefix="mbsync-", dir=work))
    (d / "local").mkdir()
    rc = d / "mbsyncrc"
    rc.write_text(
        ("" if fsync else "FSync no\n\n") +
        f"IMAPAccount remote\nHost 127.0.0.1\nPort {s.port}\nUser {s.user}\nPass {s.password}\n"
        "SSLType None\nAuthMechs LOGIN\nPipelineDepth 50\n\n"
        "IMAPStore remote-store\nAccount remote\n\n"
        f"MaildirStore local\nPath {d}/local/\nInbox {d}/local/INBOX\n\n"
        "Channel c\nFar :remote-store:\nNear :local:\nPatterns INBOX\nSync Pull\n"
        "Create Near\nSyncState *\n")
    cpu0 = s.cpu()
    r = bl.timed(["mbsync", "-c", str(rc), "-q", "c"], cwd=d, check=False)
    cpu1 = s.cpu()
    got = sum(len(os.listdir(d / "local" / "INBOX" / x)) for x in ("cur", "new")
              if (d / "local" / "INBOX" / x).is_dir())
    shutil.rmtree(d, ignore_errors=True)
    if r["rc"] != 0:
        raise ImapError(f"mbsync exited {r['rc']}: {(r['err'] or r['out'])[-500:]}")
    return {"wall": r["wall"], "server_cpu": cpu1 - cpu0, "client_cpu": r["cpu"], "count": got}


def task_envelope(s: Server, work: Path) -> dict:
    c = s.client()
    try:
        c.command("EXAMINE INBOX")
        cpu0 = s.cpu()
        _tagged, _u, dt = c.command("FETCH 1:* (ENVELOPE FLAGS)")
        cpu1 = s.cpu()
        return {"wall": dt, "server_cpu": cpu1 - cpu0, "count": c.untagged_count}
    finally:
        c.close()


def task_search(word: str):
    def run(s: Server, work: Path) -> dict:
        c = s.client()
        try:
            c.command("EXAMINE INBOX")
            cpu0 = s.cpu()
            _tagged, untagged, dt = c.command(f'SEARCH TEXT "{word}"', keep=True)
            cpu1 = s.cpu()
            hits = 0
            for u in untagged:
                if u.upper().startswith(b"* SEARCH"):
                    hits += len(u.split()) - 2
            return {"wall": dt, "server_cpu": cpu1 - cpu0, "count": hits}
        finally:
            c.close()
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="mbsync,mbsync-nofsync,envelope,search")
    args = ap.parse_args()
    wanted = set(args.only.split(","))

    src = bl.corpus(args.messages, args.seed)
    info = bl.corpus_info(src)
    up = bl.Upstream().start(seed_from=src)
    up.warm()
    work = Path(tempfile.mkdtemp(prefix="pbbench-imap-", dir=os.environ.get("PB_BENCH_TMP")))
    # popbridge ingests once, then serves without an upstream.
    ing = bl.PopbridgeRun(up, poll_every="1h")
    ing.start()
    polls = ing.wait_polls(1, 900)
    if polls[0]["new"] != info["messages"]:
        raise RuntimeError(f"popbridge ingested {polls[0]['new']} of {info['messages']}")
    ing.stop()
    pb = bl.PopbridgeRun(None, data_dir=ing.data_dir, password="bench-imap")
    pb.start()
    pb.wait_imap()

    servers = [Server("popbridge", pb.imap_port, pb.user, pb.password,
                      lambda: bl.proc_cpu_precise(pb.pid)),
               Server("dovecot", up.imap_port, up.user, up.password,
                      lambda: dovecot_cpu(up.proc.pid))]
    tasks = []
    if "mbsync" in wanted:
        tasks.append(("mbsync full pull", task_mbsync))
    if "mbsync-nofsync" in wanted:
        # mbsync's own fsync per message dominates the row above; without it the pull
        # shows the servers' own per-message cost.
        tasks.append(("mbsync full pull, FSync no",
                      lambda s, work: task_mbsync(s, work, fsync=False)))
    if "envelope" in wanted:
        tasks.append(("FETCH 1:* (ENVELOPE FLAGS)", task_envelope))
    if "search" in wanted:
        tasks.append((f'SEARCH TEXT "{bl.RARE_WORD}"', task_search(bl.RARE_WORD)))
        tasks.append((f'SEARCH TEXT "{bl.ABSENT_WORD}" (no hit)', task_search(bl.ABSENT_WORD)))

    results: dict[str, dict[str, list[dict]]] = {}
    errors: dict[str, dict[str, str]] = {}
    for tname, fn in tasks:
        results[tname] = {s.name: [] for s in servers}
        errors[tname] = {}
        for r in range(args.runs + 1):  # run 0 warms
            for s in servers:
                if s.name in errors[tname]:
                    continue
                try:
                    res = fn(s, work)
                    res["warm"] = r == 0
                    results[tname][s.name].append(res)
                    bl.log(f"{tname} {s.name} run {r}: {res['wall']:.3f} s, "
                           f"server CPU {res['server_cpu']:.3f} s, count {res['count']}")
                except (ImapError, OSError) as exc:
                    errors[tname][s.name] = " ".join(str(exc).split())[-160:]
                    bl.log(f"{tname} {s.name}: not supported / failed: {exc}")
    pb.cleanup()
    ing.cleanup()
    up.stop()
    shutil.rmtree(work, ignore_errors=True)

    rows = []
    for tname, per in results.items():
        counts = {}
        for sname, runs in per.items():
            timed = [x for x in runs if not x["warm"]]
            if sname in errors[tname] or not timed:
                rows.append([tname, sname, "n/a", "n/a", "n/a", "n/a", "",
                             "fails: " + " ".join(errors[tname].get(sname, "no run").split()).replace("|", "/")])
                continue
            counts[sname] = timed[-1]["count"]
            wall = bl.median([x["wall"] for x in timed])
            dw = bl.median([x["wall"] for x in per.get("dovecot", []) if not x["warm"]])
            rows.append([tname, sname, bl.fmt(wall), bl.fmt(runs[0]["wall"]),
                         bl.fmt(bl.median([x["server_cpu"] for x in timed])),
                         str(counts[sname]), bl.fmt(wall / dw) if dw == dw else "n/a",
                         " ".join(f"{x['wall']:.3f}" for x in timed)])
        if len(set(counts.values())) > 1:
            rows.append([tname, "MISMATCH", "", "", "", str(counts), "", "results differ"])
    text = (f"### IMAP serving: {info['messages']} messages ({info['bytes'] / 1e6:.0f} MB), "
            f"popbridge vs Dovecot {bl.machine_pkg('dovecot-core')} (median of {args.runs} runs "
            "after one warm-up run)\n\n" +
            bl.markdown_table(["task", "server", "wall s", "first run s", "server CPU s",
                               "messages / hits", "vs Dovecot", "all runs (s)"], rows))
    bl.save("imap_serving", text, {"results": results, "errors": errors, "corpus": info})
    return 0


if __name__ == "__main__":
    sys.exit(main())
