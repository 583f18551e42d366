#!/usr/bin/env python3
"""Rows 1 and 2: POP3 ingest into durable local storage, and the steady-state poll.

One private Dovecot POP3 upstream on 127.0.0.1 holds the deterministic corpus (default
2,000 messages, keep on server). Each contender starts from an empty destination and
state, pulls everything, and is measured:

  popbridge            the daemon (Release); wall = `duration=` of its poll line (connect to
                       QUIT, every message committed: file, directory and journal fsynced);
                       CPU and peak RSS of the process from /proc when that line appears
  fetchmail+lda        fetchmail (uidl, keep) handing each message to dovecot-lda (Maildir)
  getmail6             getmail SimplePOP3Retriever -> Maildir destination
  mpop                 mpop (keep on) -> maildir delivery
  pipeline-fsync       bench/pop3_pipeline.cpp: pipelined RETR, write + fsync + rename each
  pipeline-nofsync     the same without fsync
  server-only          the same, bytes discarded (what the upstream alone costs)
  popbridge-base       only with POPBRIDGE_BASE_BIN=<binary>: another popbridge build (e.g.
                       the commit before a change) run side by side with popbridge

Others: wall, CPU (user+sys incl. children) and peak RSS from /usr/bin/time.

Steady state (row 2): right after its ingest run, each stateful contender polls again with
nothing new, several times. popbridge: poll_every 10s, and the CPU of one poll is the
difference of /proc/<pid>/stat utime+stime between two consecutive poll lines (the daemon is
idle in between, so the difference is the poll plus a 10 s idle timer). The number of POP3
commands each contender sends per steady poll is counted by a relay between it and Dovecot
(one extra poll, outside the timed ones).

Usage: bench/ingest.py [--messages 2000] [--runs 3] [--steady 3] [--only a,b] [--strace]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402

LDA = "/usr/lib/dovecot/dovecot-lda"


class Work:
    """A contender's scratch dir: destination Maildir + its state files."""

    def __init__(self, name: str):
        self.dir = Path(tempfile.mkdtemp(prefix=f"pbbench-{name}-", dir=os.environ.get("PB_BENCH_TMP")))
        self.dest = self.dir / "Maildir"

    def cleanup(self) -> None:
        if os.environ.get("POPBRIDGE_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


def delivered(d: Path) -> int:
    return sum(len(os.listdir(d / s)) for s in ("new", "cur") if (d / s).is_dir())


# ------------------------------------------------------------------ contenders

class Contender:
    name = "?"
    stateful = True  # supports a steady-state poll

    def __init__(self, up: bl.Upstream, port: int | None = None):
        self.up = up
        self.port = port or up.port

    def prepare(self) -> None:
        self.work = Work(self.name)

    def ingest(self) -> dict:
        raise NotImplementedError

    def steady(self, port: int | None = None) -> dict:
        raise NotImplementedError

    def cmd(self, port: int | None = None) -> list[str]:
        raise NotImplementedError

    def finish(self) -> None:
        self.work.cleanup()


class External(Contender):
    """A command line tool, timed with /usr/bin/time. As root, it runs as nobody (owning its
    scratch dir): dovecot-lda and getmail refuse to deliver as root."""

    def full_cmd(self, port: int | None = None) -> list[str]:
        cmd = self.cmd(port)
        if os.geteuid() != 0:
            return cmd
        w = self.work.dir
        for root, dirs, files in os.walk(w):
            for x in dirs + files:
                os.chown(os.path.join(root, x), 65534, 65534)
        os.chown(w, 65534, 65534)
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] + cmd

    def ingest(self) -> dict:
        r = bl.timed(self.full_cmd(), env=self.env(), cwd=self.work.dir)
        r["messages"] = delivered(self.work.dest)
        return r

    def steady(self, port: int | None = None) -> dict:
        r = bl.timed(self.full_cmd(port), env=self.env(), cwd=self.work.dir)
        r["messages"] = delivered(self.work.dest)
        return r

    def env(self) -> dict:
        e = dict(os.environ)
        e["HOME"] = str(self.work.dir)
        return e

    def fsyncs(self) -> dict:
        """Re-run ingest from scratch under strace -c (not timed)."""
        self.finish()
        self.prepare()
        return bl.syscall_counts(self.full_cmd(), env=self.env(), cwd=self.work.dir)


class Fetchmail(External):
    name = "fetchmail+lda"

    def prepare(self) -> None:
        super().prepare()
        w = self.work
        (w.dest / "cur").mkdir(parents=True)
        (w.dest / "new").mkdir()
        (w.dest / "tmp").mkdir()
        (w.dir / "lda.conf").write_text(
            f"mail_location = maildir:{w.dest}\nfirst_valid_uid = 0\n"
            f"log_path = {w.dir}/lda.log\ninfo_log_path = {w.dir}/lda.log\n"
            f"protocols =\nbase_dir = {w.dir}/run\nstate_dir = {w.dir}/state\n")

    def cmd(self, port: int | None = None) -> list[str]:
        w = self.work
        rc = w.dir / f"fetchmailrc-{port or self.port}"
        rc.write_text(
            "set no syslog\n"
            f"set logfile {w.dir}/fetchmail.log\n"
            f"poll 127.0.0.1 service {port or self.port} protocol pop3 uidl auth password\n"
            f"  user \"{self.up.user}\" there with password \"{self.up.password}\" is nobody here\n"
            "  keep sslproto '' no mimedecode\n"
            f"  mda \"{LDA} -c {w.dir}/lda.conf -f %F\"\n")
        os.chmod(rc, 0o600)
        return ["fetchmail", "-f", str(rc), "--idfile", str(w.dir / "fetchids"), "--nodetach",
                "--pidfile", str(w.dir / "fetchmail.pid")]

    def env(self) -> dict:
        e = super().env()
        e["FETCHMAILHOME"] = str(self.work.dir)
        return e

    def ingest(self) -> dict:
        r = super().ingest()
        # fetchmail exits 1 when there was no mail; 0 when it fetched some.
        return r

    def steady(self, port: int | None = None) -> dict:
        r = bl.timed(self.full_cmd(port), env=self.env(), cwd=self.work.dir, check=False)
        if r["rc"] not in (0, 1):
            raise RuntimeError(f"fetchmail exited {r['rc']}: {r['err'][-2000:]}")
        r["messages"] = delivered(self.work.dest)
        return r


class Getmail(External):
    name = "getmail6"

    def prepare(self) -> None:
        super().prepare()
        w = self.work
        for s in ("cur", "new", "tmp"):
            (w.dest / s).mkdir(parents=True)
        (w.dir / "getmail").mkdir()

    def cmd(self, port: int | None = None) -> list[str]:
        w = self.work
        rc = w.dir / "getmail" / f"getmailrc-{port or self.port}"
        rc.write_text(
            "[retriever]\ntype = SimplePOP3Retriever\nserver = 127.0.0.1\n"
            f"port = {port or self.port}\nusername = {self.up.user}\npassword = {self.up.password}\n"
            f"[destination]\ntype = Maildir\npath = {w.dest}/\n"
            "[options]\ndelete = false\nread_all = false\nverbose = 0\n"
            "message_log_syslog = false\n")
        # getmail keys its "oldmail" state file by server and port: the relay port gets its
        # own file, so copy the state across for the counted poll.
        if port and port != self.port:
            for f in (w.dir / "getmail").glob(f"oldmail-127.0.0.1-{self.port}-*"):
                shutil.copyfile(f, str(f).replace(f"-{self.port}-", f"-{port}-"))
        return ["getmail", f"--getmaildir={w.dir}/getmail", f"--rcfile={rc.name}"]


class Mpop(External):
    name = "mpop"

    def prepare(self) -> None:
        super().prepare()
        for s in ("cur", "new", "tmp"):
            (self.work.dest / s).mkdir(parents=True)

    def cmd(self, port: int | None = None) -> list[str]:
        w = self.work
        rc = w.dir / "mpoprc"
        rc.write_text(
            "defaults\naccount bench\nhost 127.0.0.1\n"
            f"port {port or self.port}\ntls off\nauth user\nuser {self.up.user}\n"
            f"password {self.up.password}\nkeep on\ndelivery maildir {w.dest}\n"
            f"uidls_file {w.dir}/uidls\n")
        os.chmod(rc, 0o600)
        return ["mpop", "-C", str(rc), "bench"]


class Pipeline(External):
    stateful = False

    def __init__(self, up: bl.Upstream, mode: str, binary: Path):
        super().__init__(up)
        self.mode, self.binary = mode, binary
        self.name = {"fsync": "pipeline-fsync", "nofsync": "pipeline-nofsync",
                     "discard": "server-only"}[mode]

    def cmd(self, port: int | None = None) -> list[str]:
        return [str(self.binary), "127.0.0.1", str(port or self.port), self.up.user,
                self.up.password, str(self.work.dest), self.mode]

    def ingest(self) -> dict:
        r = bl.timed(self.full_cmd(), cwd=self.work.dir)
        r["messages"] = int(r["out"].split("messages=")[1].split()[0])
        return r


class Popbridge(Contender):
    name = "popbridge"

    def prepare(self) -> None:
        self.pb = bl.PopbridgeRun(self.up, poll_every=self.poll_every)

    poll_every = "10s"

    def ingest(self) -> dict:
        pb = self.pb.start()
        polls = pb.wait_polls(1, 900, interval=0.01)
        cpu = bl.proc_cpu_precise(pb.pid)
        hwm = bl.proc_status(pb.pid, "VmHWM")
        p = polls[0]
        if p["outcome"] != "ok":
            raise RuntimeError(f"popbridge poll failed: {p}\n{bl.harness.tail(pb.log_file)}")
        self.steady_base = (1, cpu)
        self.total = p["new"]
        return {"wall": p["duration_ms"] / 1000, "wall_from_exec": time.monotonic() - pb.started_at,
                "cpu": cpu, "rss_max": hwm, "messages": p["new"], "bytes": p["bytes"]}

    def steady(self, port: int | None = None) -> dict:
        """The next poll (poll_every 10s), CPU = difference of /proc CPU between poll lines."""
        n, cpu0 = self.steady_base
        polls = self.pb.wait_polls(n + 1, 60, interval=0.005)
        cpu1 = bl.proc_cpu_precise(self.pb.pid)
        self.steady_base = (n + 1, cpu1)
        p = polls[n]
        self.total += p["new"]
        return {"wall": p["duration_ms"] / 1000, "cpu": cpu1 - cpu0,
                "rss_max": bl.proc_status(self.pb.pid, "VmHWM"), "messages": self.total,
                "outcome": p["outcome"]}

    def fsyncs(self) -> dict:
        self.finish()
        self.prepare()
        pb = self.pb.start()  # the first poll starts 100-1500 ms later: strace is attached by then
        return bl.syscall_counts([], pid=pb.pid,
                                 until=lambda: bool(pb.polls()))

    def finish(self) -> None:
        self.pb.cleanup()


class PopbridgeBase(Popbridge):
    """Another popbridge binary (POPBRIDGE_BASE_BIN, e.g. the previous commit built with
    `POPBRIDGE_BENCH_BUILD=build-bench-base bench/build.sh REV`), measured side by side."""
    name = "popbridge-base"

    def prepare(self) -> None:
        super().prepare()
        self.pb.binary = Path(os.environ["POPBRIDGE_BASE_BIN"])


# ------------------------------------------------------------------ command-counting relay

class Relay:
    """A TCP relay 127.0.0.1:port -> upstream that counts the lines the client sends."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.lines: list[bytes] = []
        self.connections = 0
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            u = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(c, u, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(u, c, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if count:
                    buf += data
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self.lines.append(line.split(b" ")[0].upper())
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop = True
        self.sock.close()


# ------------------------------------------------------------------ main

def build_pipeline() -> Path:
    out = bl.BUILD_DIR / "pop3_pipeline"
    src = bl.BENCH_DIR / "pop3_pipeline.cpp"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        bl.BUILD_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(["g++", "-O2", "-std=c++20", "-Wall", "-Wextra", "-o", str(out), str(src)],
                       check=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steady", type=int, default=3, help="steady-state polls per run (0: none)")
    ap.add_argument("--only", default="", help="comma-separated contender names")
    ap.add_argument("--strace", action="store_true", help="also count fsync calls (one extra run each)")
    args = ap.parse_args()

    pipeline_bin = build_pipeline()
    src = bl.corpus(args.messages, args.seed)
    info = bl.corpus_info(src)
    up = bl.Upstream().start(seed_from=src)
    up.warm()
    contenders: list[Contender] = [Popbridge(up)]
    if os.environ.get("POPBRIDGE_BASE_BIN"):
        contenders.append(PopbridgeBase(up))
    contenders += [Fetchmail(up), Getmail(up), Mpop(up),
                                   Pipeline(up, "fsync", pipeline_bin),
                                   Pipeline(up, "nofsync", pipeline_bin),
                                   Pipeline(up, "discard", pipeline_bin)]
    if args.only:
        keep = set(args.only.split(","))
        contenders = [c for c in contenders if c.name in keep]
    ingest: dict[str, list[dict]] = {c.name: [] for c in contenders}
    steady: dict[str, list[dict]] = {c.name: [] for c in contenders if c.stateful}
    commands: dict[str, list[str]] = {}
    fsyncs: dict[str, dict] = {}
    failures: dict[str, list[str]] = {c.name: [] for c in contenders}
    for r in range(args.runs):
        for c in contenders:  # round robin, so that machine noise spreads over all of them
            c.prepare()
            try:
                res = c.ingest()
                bl.log(f"run {r + 1}/{args.runs} {c.name}: {res['wall']:.2f} s wall, "
                       f"{res['cpu']:.2f} s CPU, {res['messages']} messages")
                if res["messages"] != info["messages"]:
                    raise RuntimeError(f"{c.name} stored {res['messages']} of {info['messages']}")
                ingest[c.name].append(res)
                if c.stateful and args.steady:
                    for k in range(args.steady):
                        s = c.steady()
                        bl.log(f"  steady {k + 1}: {s['wall'] * 1000:.0f} ms wall, "
                               f"{s['cpu'] * 1000:.0f} ms CPU")
                        if s["messages"] != info["messages"]:
                            raise RuntimeError(f"{c.name}: steady poll changed the count")
                        steady[c.name].append(s)
                    if r == 0 and not isinstance(c, Popbridge):
                        relay = Relay(up.port)
                        try:
                            c.steady(relay.port)
                            commands[c.name] = [l.decode(errors="replace") for l in relay.lines]
                        finally:
                            relay.close()
            except RuntimeError as exc:
                # A contender failing (e.g. getmail6's lost SIGCHLD wake-up: "waiting child
                # pid N timed out") is reported, and the others still run.
                why = " ".join(str(exc).split())[-200:]
                failures[c.name].append(why)
                bl.log(f"run {r + 1}/{args.runs} {c.name} FAILED: {why}")
            finally:
                c.finish()
    if "popbridge" in steady and args.steady:
        # popbridge's command count: one poll through the relay (poll_every 10s).
        relay = Relay(up.port)
        c = Popbridge(up)
        c.prepare()
        acct = c.pb.dir / "accounts.d" / f"{c.pb.user}.yaml"
        acct.write_text(acct.read_text().replace(f"port: {up.port}", f"port: {relay.port}"))
        try:
            c.ingest()
            n0 = len(relay.lines)
            c.steady()
            commands["popbridge"] = [l.decode(errors="replace") for l in relay.lines[n0:]]
        finally:
            c.finish()
            relay.close()
    up.stop()
    if args.strace:
        # fsync counts per message, from strace -f -c on a 100-message mailbox of the same mix
        # (strace slows fork-per-message tools down a lot, so not on the full corpus).
        small = bl.corpus(100, args.seed)
        sup = bl.Upstream().start(seed_from=small)
        sup.warm()
        for c in contenders:
            c.up, c.port = sup, sup.port
            c.prepare()
            try:
                fsyncs[c.name] = c.fsyncs()
                bl.log(f"{c.name}: {fsyncs[c.name]}")
            finally:
                c.finish()
        sup.stop()

    mb = info["bytes"] / 1e6
    base = bl.median([x["wall"] for x in ingest.get("popbridge", [])])
    rows = []
    for name, runs in ingest.items():
        if failures.get(name):
            text_fail = f"{len(failures[name])} failed run(s): {failures[name][0]}"
        if not runs:
            rows.append([name] + ["n/a"] * 7 + [text_fail if failures.get(name) else "no run"])
            continue
        wall = bl.median([x["wall"] for x in runs])
        sync = fsyncs.get(name, {})
        nsync = sum(sync.values()) / 100 if name in fsyncs else None
        rows.append([name, bl.fmt(wall), bl.fmt(info["messages"] / wall), bl.fmt(mb / wall),
                     bl.fmt(bl.median([x["cpu"] for x in runs])),
                     bl.fmt(bl.median([x["rss_max"] for x in runs]), "MiB"),
                     "-" if nsync is None else f"{nsync:.2f}",
                     bl.fmt(wall / base) if base == base else "n/a",
                     " ".join(f"{x['wall']:.2f}" for x in runs) +
                     (f"; {len(failures[name])} run(s) failed: {failures[name][0]}"
                      if failures.get(name) else "")])
    text = (f"### Ingest: {info['messages']} messages, {mb:.1f} MB, POP3 from Dovecot on loopback, "
            f"keep on server (medians of {args.runs} runs)\n\n" +
            bl.markdown_table(["contender", "wall s", "msg/s", "MB/s", "CPU s", "peak RSS MiB",
                               "fsync calls/msg", "wall vs popbridge", "all runs (s)"], rows))
    if "popbridge" in ingest and ingest["popbridge"]:
        fe = bl.median([x["wall_from_exec"] for x in ingest["popbridge"]])
        text += (f"\n\npopbridge wall is the poll's own `duration=` (connect to QUIT, all commits "
                 f"durable); from exec to the poll line it was {fe:.2f} s (the first poll waits a "
                 f"random 0.1-1.5 s after start).")
    srows = []
    for name, runs in steady.items():
        if not runs:
            continue
        cmds = commands.get(name)
        srows.append([name, bl.fmt(bl.median([x["wall"] for x in runs]) * 1000),
                      bl.fmt(bl.median([x["cpu"] for x in runs]) * 1000),
                      str(len(cmds)) if cmds is not None else "n/a",
                      " ".join(cmds) if cmds is not None else "",
                      " ".join(f"{x['cpu'] * 1000:.0f}" for x in runs)])
    if srows:
        text += ("\n\n### Steady-state poll: same mailbox, nothing new "
                 f"(medians of {sum(len(v) for v in steady.values()) // max(1, len(steady))} polls)\n\n" +
                 bl.markdown_table(["contender", "wall ms", "CPU ms", "POP3 commands",
                                    "commands sent", "CPU ms, all polls"], srows))
    bl.save("ingest", text, {"corpus": info, "ingest": ingest, "steady": steady,
                             "commands": commands, "fsyncs": fsyncs, "failures": failures})
    return 0


if __name__ == "__main__":
    sys.exit(main())
