#!/usr/bin/env python3
"""Rows 4 and 5: many idle IMAP connections, and push latency while they are held.

Row 4: N (default 10,000) concurrent connections, each LOGIN + SELECT INBOX + IDLE (when
the server offers IDLE; otherwise they stay logged in and SELECTed, and the table says
so), plaintext and TLS (implicit, ECDSA P-256 certificate, TLS 1.3), popbridge vs Dovecot.
Server memory before and after: popbridge VmRSS; Dovecot the sum of RSS and of PSS over the
master and every descendant (Dovecot is one process per role: login, imap, imap-hibernate,
auth, anvil, ...; PSS splits shared pages fairly). Dovecot is configured as its docs advise
for many connections (imap-login high-performance mode, 50 clients per imap process; IDLE
hibernation with --dovecot-hibernate) and measured once its memory is stable.

Row 5: with the N connections held, 100 more clients IDLE on INBOX; a separate connection
APPENDs a message K times; for each client the time from sending APPEND (and from the
APPEND's tagged OK) to the client reading `* n EXISTS`. p50 / p99 over all samples.
Needs IDLE and APPEND; the row says when the server lacks them.

Usage: bench/connections.py [--conns 10000] [--servers popbridge,dovecot] [--tls both|plain|tls]
                            [--push 100] [--appends 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402


class Failed(Exception):
    pass


class Conn:
    """One asyncio IMAP connection that logs in, selects INBOX and (optionally) IDLEs."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.r, self.w = reader, writer
        self.n = 0
        self.idling = False

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None) -> "Conn":
        r, w = await asyncio.open_connection("127.0.0.1", port, ssl=tls,
                                             server_hostname="127.0.0.1" if tls else None,
                                             limit=1 << 16)
        c = cls(r, w)
        greeting = await c.r.readline()
        if not greeting.startswith(b"* OK"):
            raise Failed(f"greeting {greeting[:100]!r}")
        return c

    async def command(self, text: str, literal: bytes | None = None) -> list[bytes]:
        self.n += 1
        tag = f"c{self.n}".encode()
        if literal is None:
            self.w.write(tag + b" " + text.encode() + b"\r\n")
        else:
            self.w.write(tag + b" " + text.encode() + f" {{{len(literal)}}}\r\n".encode())
            await self.w.drain()
            cont = await self.r.readline()
            if not cont.startswith(b"+"):
                raise Failed(f"{text}: {cont[:200]!r}")
            self.w.write(literal + b"\r\n")
        await self.w.drain()
        lines = []
        while True:
            line = await self.r.readline()
            if not line:
                raise Failed(f"{text.split()[0]}: connection closed")
            if line.startswith(tag + b" "):
                if not line[len(tag) + 1:].upper().startswith(b"OK"):
                    raise Failed(f"{text.split()[0]}: {line[:200]!r}")
                return lines
            lines.append(line)

    async def idle(self) -> None:
        self.n += 1
        self.idle_tag = f"c{self.n}".encode()
        self.w.write(self.idle_tag + b" IDLE\r\n")
        await self.w.drain()
        while True:
            line = await self.r.readline()
            if line.startswith(b"+"):
                self.idling = True
                return
            if line.startswith(self.idle_tag + b" ") or not line:
                raise Failed(f"IDLE: {line[:200]!r}")

    async def wait_exists(self, above: int) -> int:
        while True:
            line = await self.r.readline()
            if not line:
                raise Failed("closed while idling")
            parts = line.split()
            if len(parts) >= 3 and parts[0] == b"*" and parts[2].upper() == b"EXISTS":
                n = int(parts[1])
                if n > above:
                    return n

    def close(self) -> None:
        try:
            self.w.close()
        except Exception:  # noqa: BLE001
            pass


async def open_many(n: int, port: int, tls, user: str, password: str, idle: bool,
                    parallel: int = 64) -> list[Conn]:
    conns: list[Conn] = []
    sem = asyncio.Semaphore(parallel)
    errors: list[str] = []

    async def one() -> None:
        async with sem:
            for attempt in range(3):
                try:
                    c = await Conn.open(port, tls)
                    await c.command(f'LOGIN "{user}" "{password}"')
                    await c.command("SELECT INBOX")
                    if idle:
                        await c.idle()
                    conns.append(c)
                    return
                except (Failed, OSError, asyncio.IncompleteReadError) as exc:
                    if attempt == 2:
                        errors.append(str(exc))
                    await asyncio.sleep(0.05)

    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(n)))
    bl.log(f"  {len(conns)}/{n} connections up in {time.monotonic() - t0:.1f} s"
           + (f"; {len(errors)} failed, e.g. {errors[0]}" if errors else ""))
    if errors:
        for c in conns:
            c.close()
        raise Failed(f"{len(errors)} of {n} connections failed, e.g. {errors[0]}")
    return conns


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * (len(xs) - 1))))
    return xs[k]


async def push_latency(port: int, tls, user: str, password: str, clients: int,
                       appends: int) -> dict:
    watchers = await open_many(clients, port, tls, user, password, idle=True)
    app = await Conn.open(port, tls)
    await app.command(f'LOGIN "{user}" "{password}"')
    sel = await app.command("SELECT INBOX")
    exists = next(int(l.split()[1]) for l in sel if l.split()[2:3] == [b"EXISTS"])
    msg = bl.make_message(999_999, __import__("random").Random(5), "text", 3000)
    from_send, from_ok = [], []
    try:
        for k in range(appends):
            t_send = time.perf_counter()
            waits = [asyncio.ensure_future(w.wait_exists(exists)) for w in watchers]
            stamps: list[float] = []

            async def stamp(fut):
                await fut
                stamps.append(time.perf_counter())
            stampers = [asyncio.ensure_future(stamp(f)) for f in waits]
            await asyncio.wait_for(app.command("APPEND INBOX", literal=msg), 30)
            t_ok = time.perf_counter()
            await asyncio.wait_for(asyncio.gather(*stampers), 30)
            exists += 1
            from_send += [t - t_send for t in stamps]
            from_ok += [t - t_ok for t in stamps]
    finally:
        for w in watchers:
            w.close()
        app.close()
        for f in locals().get("stampers", []):
            f.cancel()
    return {"samples": len(from_send), "p50_send": percentile(from_send, 50),
            "p99_send": percentile(from_send, 99), "p50_ok": percentile(from_ok, 50),
            "p99_ok": percentile(from_ok, 99), "max_send": max(from_send)}


async def caps(port: int, tls) -> set[str]:
    c = await Conn.open(port, tls)
    try:
        lines = await c.command("CAPABILITY")
        return {w.upper() for l in lines for w in l.decode(errors="replace").split()[2:]}
    finally:
        c.close()


def settle(measure, timeout: float = 60.0, quiet: float = 3.0) -> tuple[int, int]:
    """Sample measure() until it changed by < 1% over `quiet` seconds (or timeout)."""
    deadline = time.monotonic() + timeout
    last = measure()
    last_t = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        cur = measure()
        if abs(cur[0] - last[0]) > 0.01 * max(1, last[0]):
            last, last_t = cur, time.monotonic()
        elif time.monotonic() - last_t >= quiet:
            return cur
    return measure()


async def scenario(name: str, port: int, tls, user: str, password: str, memory, n: int,
                   push: int, appends: int) -> dict:
    cap = await caps(port, tls)
    idle = "IDLE" in cap
    out = {"server": name, "tls": tls is not None, "idle": idle, "n": n}
    before = settle(memory, timeout=10, quiet=1)
    t0 = time.monotonic()
    try:
        conns = await open_many(n, port, tls, user, password, idle)
    except Failed as exc:
        out["error"] = str(exc)[:200]
        return out
    out["setup_s"] = time.monotonic() - t0
    after = await asyncio.get_running_loop().run_in_executor(None, lambda: settle(memory))
    out.update({"rss_before": before[0], "rss_after": after[0], "pss_before": before[1],
                "pss_after": after[1]})
    bl.log(f"  {name} tls={tls is not None}: RSS {before[0] / 1048576:.1f} -> "
           f"{after[0] / 1048576:.1f} MiB, PSS {before[1] / 1048576:.1f} -> {after[1] / 1048576:.1f} MiB")
    if push:
        if not idle:
            out["push_error"] = "no IDLE"
        else:
            try:
                out["push"] = await push_latency(port, tls, user, password, push, appends)
                bl.log(f"  push: {out['push']}")
            except (Failed, OSError, asyncio.TimeoutError) as exc:
                out["push_error"] = (" ".join(str(exc).split()) or type(exc).__name__)[:160]
    for c in conns:
        c.close()
    await asyncio.sleep(0.5)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--servers", default="popbridge,dovecot")
    ap.add_argument("--tls", default="both", choices=["both", "plain", "tls"])
    ap.add_argument("--push", type=int, default=100, help="IDLE clients for row 5 (0: skip)")
    ap.add_argument("--appends", type=int, default=20)
    ap.add_argument("--dovecot-hibernate", action="store_true",
                    help="let Dovecot hibernate IDLE sessions (in a trial its IDLE clients then "
                         "missed the EXISTS of an APPEND for 30 s, so it is off by default)")
    args = ap.parse_args()
    limit = bl.raise_nofile()
    need = args.conns + args.push + 200
    if limit < need:
        bl.log(f"RLIMIT_NOFILE is {limit}, fewer than the {need} descriptors needed")
        return 1
    modes = {"both": [False, True], "plain": [False], "tls": [True]}[args.tls]
    wanted = args.servers.split(",")

    src = bl.corpus(args.messages)
    up = bl.Upstream(tls=True, imap_client_limit=50,
                     hibernate=args.dovecot_hibernate).start(seed_from=src)
    up.warm()
    results = []
    pb = ing = None
    try:
        if "popbridge" in wanted:
            ing = bl.PopbridgeRun(up, poll_every="1h")
            ing.start()
            ing.wait_polls(1, 900)
            ing.stop()
        for tls in modes:
            for name in wanted:
                if name == "popbridge":
                    # A fresh process per scenario: memory freed by the previous scenario's
                    # connections would otherwise hide this one's growth.
                    pb = bl.PopbridgeRun(None, data_dir=ing.data_dir, tls=True)
                    pb.start()
                    pb.wait_imap()
                    port = pb.imaps_port if tls else pb.imap_port
                    ctx = ssl.create_default_context(cafile=str(pb.ca_file)) if tls else None
                    user, pw = pb.user, pb.password
                    memory = lambda: (bl.proc_status(pb.pid, "VmRSS"), bl.proc_pss(pb.pid))  # noqa: E731
                else:
                    port = up.imaps_port if tls else up.imap_port
                    ctx = ssl.create_default_context(cafile=str(up.ca_file)) if tls else None
                    user, pw = up.user, up.password
                    memory = lambda: bl.tree_memory(up.pids())  # noqa: E731
                bl.log(f"{name} tls={tls}: {args.conns} connections")
                res = asyncio.run(scenario(name, port, ctx, user, pw, memory, args.conns,
                                           args.push, args.appends))
                if name == "popbridge":
                    res["rss_after_close"] = memory()[0]
                    pb.cleanup()
                    pb = None
                results.append(res)
    finally:
        if pb:
            pb.cleanup()
        if ing:
            ing.cleanup()
        up.stop()

    rows, prow = [], []
    for r in results:
        label = f"{r['server']} {'TLS' if r['tls'] else 'plain'}"
        state = "IDLE" if r["idle"] else "SELECTed (no IDLE yet)"
        if "error" in r:
            rows.append([label, state, "n/a", "n/a", "n/a", "n/a", "fails: " + r["error"].replace("|", "/")])
            continue
        d_rss = (r["rss_after"] - r["rss_before"]) / r["n"]
        d_pss = (r["pss_after"] - r["pss_before"]) / r["n"]
        note = f"set-up {r['setup_s']:.1f} s"
        if "rss_after_close" in r:
            note += f"; RSS after all closed {r['rss_after_close'] / 1048576:.0f} MiB"
        rows.append([label, state, bl.fmt(r["rss_after"], "MiB"), bl.fmt(r["pss_after"], "MiB"),
                     bl.fmt(d_rss, "KiB"), bl.fmt(d_pss, "KiB"), note])
        if "push" in r:
            p = r["push"]
            prow.append([label, str(p["samples"]), f"{p['p50_send'] * 1000:.1f}",
                         f"{p['p99_send'] * 1000:.1f}", f"{p['p50_ok'] * 1000:.1f}",
                         f"{p['p99_ok'] * 1000:.1f}", f"{p['max_send'] * 1000:.1f}"])
        elif "push_error" in r:
            prow.append([label, "n/a", "n/a", "n/a", "n/a", "n/a", r["push_error"].replace("|", "/")])
    text = (f"### Connections: {args.conns} concurrent logged-in connections on INBOX "
            f"({args.messages} messages)\n\n" +
            bl.markdown_table(["server", "state", "RSS after MiB", "PSS after MiB",
                               "RSS per conn KiB", "PSS per conn KiB", "note"], rows))
    if prow:
        text += (f"\n\n### Push latency: APPEND on one connection -> `* n EXISTS` at each of "
                 f"{args.push} IDLE clients, {args.appends} appends, {args.conns} other "
                 "connections held\n\n" +
                 bl.markdown_table(["server", "samples", "p50 ms from APPEND sent",
                                    "p99 ms from APPEND sent", "p50 ms from APPEND OK",
                                    "p99 ms from APPEND OK", "max ms / note"], prow))
    bl.save("connections", text, {"results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
