#!/usr/bin/env python3
"""Issue 7 "Must show": each hostile case, the limit, the observed response, time and memory.

Starts the release daemon (an account without upstreams, IMAP on loopback), fills INBOX with
a few hundred ordinary messages by APPEND, keeps one well-behaved "observer" session that
loops NOOP + FETCH 1 (FLAGS) and records each probe's latency, then sends every hostile IMAP
case of issue 7 item 3 and every hostile message of item 4 over real sockets, one after the
other. For each case it prints the limit that applies, the first response line (truncated),
the wall time until the answer (or until the server closed), the daemon's VmRSS before/after
and VmHWM after (from /proc/<pid>/status; VmHWM is the peak since start, so it only grows,
and the cases run from small to large), and the slowest observer probe that overlapped the
case (did other sessions keep working?).

Hostile messages are APPENDed (time = APPEND round trip, which includes the store's fsync),
then FETCH BODYSTRUCTURE, ENVELOPE and BODY[] are timed on them.

This measures, it does not pass/fail (the pass/fail tests are tests/integration/
test_hostile_network.py, tests/unit/hostile/, the fuzz targets). Figures are noisy on a
shared machine; compare rows of one run.

Usage: POPBRIDGE_BIN=build/proxy/popbridge python3 bench/hostile_table.py [--messages 300]
                                                                   [--skip-big]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent / "lib"))
import benchlib as bl  # noqa: E402
from rawimap import RawImap  # noqa: E402

USER, PASSWORD = "bench", "bench-imap"
MAX_LINE_POST = 64 * 1024
MAX_LINE_PRE = 8 * 1024
SEARCH_DEPTH = 32


class Conn:
    """A raw socket that collects lines; never raises on a server close."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()  # bytearray: appends and front deletes are amortized O(1)
        self.closed = False
        self.greeting = self.line()

    def send(self, data: bytes) -> bool:
        try:
            self.sock.sendall(data)
            return True
        except OSError:
            self.closed = True
            return False

    def _fill(self) -> bool:
        try:
            d = self.sock.recv(1 << 18)
        except (OSError, socket.timeout):
            d = b""
        if not d:
            self.closed = True
            return False
        self.buf += d
        return True

    def line(self) -> Optional[bytes]:
        start = 0
        while True:
            i = self.buf.find(b"\n", start)
            if i >= 0:
                line = bytes(self.buf[:i])
                del self.buf[:i + 1]
                return line.rstrip(b"\r")
            start = len(self.buf)
            if self.closed or not self._fill():
                rest = bytes(self.buf)
                self.buf.clear()
                return rest or None

    def literal(self, n: int) -> bytes:
        while len(self.buf) < n and self._fill():
            pass
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def until(self, stop: Callable[[bytes], bool]) -> list[bytes]:
        """Lines up to and including the first for which stop() is true, or until close."""
        out = []
        while True:
            ln = self.line()
            if ln is None:
                return out
            out.append(ln)
            if stop(ln):
                return out
            # Skip literal data announced at the end of a line.
            if ln.endswith(b"}") and b"{" in ln:
                try:
                    n = int(ln[ln.rindex(b"{") + 1:-1].rstrip(b"+"))
                except ValueError:
                    n = 0
                self.literal(n)

    def tagged(self, tag: bytes) -> list[bytes]:
        return self.until(lambda ln: ln.startswith(tag + b" ") or ln.startswith(b"* BYE"))

    def login(self) -> None:
        self.send(f'L LOGIN "{USER}" "{PASSWORD}"\r\n'.encode())
        assert self.tagged(b"L")[-1].startswith(b"L OK"), "login failed"

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class Observer(threading.Thread):
    """Another session that keeps working: NOOP + FETCH 1 (FLAGS) in a loop."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.imap = RawImap("127.0.0.1", port, timeout=300)
        self.imap.login(USER, PASSWORD)
        self.imap.command("SELECT INBOX")
        self.probes: list[tuple[float, float]] = []
        self.errors: list[str] = []
        self.stop_ev = threading.Event()

    def run(self) -> None:
        while not self.stop_ev.is_set():
            t0 = time.monotonic()
            try:
                self.imap.command("NOOP")
                self.imap.command("FETCH 1 (FLAGS)")
            except Exception as exc:  # noqa: BLE001
                self.errors.append(str(exc))
                return
            self.probes.append((t0, time.monotonic()))
            self.stop_ev.wait(0.05)  # pacing only: a probe every ~50 ms

    def worst(self, a: float, b: float) -> tuple[float, int]:
        """Slowest probe overlapping [a, b] and how many overlapped, plus the first probe
        that started after b (so a case shorter than one probe still gets one). A probe
        still running at b (the loop is blocked) is waited for."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not self.errors:
            if self.probes and self.probes[-1][0] > b:
                break
            time.sleep(0.01)
        over = [e - s for s, e in self.probes if e >= a and s <= b]
        after = [e - s for s, e in self.probes if s > b][:1]
        both = over + after
        return (max(both) if both else float("nan")), len(both)


def pid_mem(pid: int) -> tuple[int, int]:
    return bl.proc_status(pid, "VmRSS"), bl.proc_status(pid, "VmHWM")


# --------------------------------------------------------------------------
# Hostile IMAP input (issue 7 item 3)
# --------------------------------------------------------------------------

def send_and_read(port: int, payload: bytes, tag: bytes, login: bool = False, select: bool = False,
                  after: bytes = b"") -> tuple[list[bytes], float, bool]:
    """New connection (logged in / INBOX selected if asked), send payload, read to `tag`'s
    reply, BYE or close. Then `after` (e.g. a NOOP, to show the session still works) and its
    reply. Returns (lines, seconds for the payload, still usable)."""
    c = Conn(port)
    if login:
        c.login()
    if select:
        c.send(b"S SELECT INBOX\r\n")
        c.tagged(b"S")
    t0 = time.monotonic()
    c.send(payload)
    lines = c.tagged(tag)
    dt = time.monotonic() - t0
    usable = False
    if after and not c.closed:
        c.send(after)
        tail = c.tagged(after.split(b" ", 1)[0])
        usable = bool(tail) and tail[-1].split(b" ")[1:2] == [b"OK"]
    c.close()
    return lines, dt, usable


def first_line(lines: list[bytes], skip_untagged_ok: bool = True) -> str:
    for ln in lines:
        if skip_untagged_ok and (ln.startswith(b"* OK") or ln.startswith(b"* CAPABILITY")):
            continue
        text = ln.decode("latin-1")
        return text if len(text) <= 72 else text[:69] + "..."
    return "(connection closed, no reply)"


def imap_cases() -> list[tuple[str, str, Callable[[int], tuple[list[bytes], float, str]]]]:
    z = b"z NOOP\r\n"

    def simple(payload: bytes, tag: bytes = b"a", login: bool = False, select: bool = False,
               after: bytes = z):
        def run(port: int):
            lines, dt, usable = send_and_read(port, payload, tag, login, select, after)
            return lines, dt, "session usable after" if usable else "session closed"
        return run

    def auth_plain(response: bytes):
        def run(port: int):
            c = Conn(port)
            t0 = time.monotonic()
            c.send(b"a AUTHENTICATE PLAIN\r\n")
            cont = c.line() or b""
            lines = [cont]
            if cont.startswith(b"+"):
                c.send(response + b"\r\n")
                lines = c.tagged(b"a")
            dt = time.monotonic() - t0
            ok = c.send(z) and bool(c.tagged(b"z"))
            c.close()
            return lines, dt, "session usable after" if ok else "session closed"
        return run

    def login_as(user: bytes):
        # The user name as a literal so CR/LF can be in it; alice's-style right password.
        payload = b"a LOGIN {%d+}\r\n" % len(user) + user + b" " + PASSWORD.encode() + b"\r\n"
        return simple(payload)

    def many_ranges(n: int) -> bytes:
        return b",".join(b"%d" % (2 * i + 1) for i in range(n))

    deep_or = b"OR " * 10_000 + b"1 " * 10_000 + b"1"
    ok_or = b"OR " * SEARCH_DEPTH + b"TEXT zzz " * SEARCH_DEPTH + b"TEXT zzz"
    deep_or_limit = b"OR " * (SEARCH_DEPTH + 1) + b"1 " * (SEARCH_DEPTH + 1) + b"1"
    wide_text = b"TEXT zzz-not-there " * 3000
    # De Morgan: NOT (NOT a NOT b ...) is an OR of every key, so no short cut: every TEXT
    # key scans every message.
    wide_or = b"NOT (" + b"NOT TEXT zzz-not-there " * 2500 + b")"
    return [
        ("NUL in quoted string (pre-login)", "NUL refused in quoted",
         simple(b'a LOGIN "al\x00ice" "x"\r\n')),
        ("NUL in literal (post-login SELECT)", "NUL refused in mailbox name",
         simple(b"a SELECT {6+}\r\nIN\x00BOX\r\n", login=True)),
        ("literal announcing 4 GB (post-login APPEND)", "max_message_size 50 MB, before alloc",
         simple(b"a APPEND INBOX {4294967296}\r\n", login=True)),
        ("literal overflowing 64 bits", "digits checked before alloc",
         simple(b"a APPEND INBOX {99999999999999999999999}\r\n", login=True)),
        ("LITERAL+ over the limit, pre-login", "8 KiB pre-login literal; bytes skipped",
         simple(b"a LOGIN {9000+}\r\n" + (b"b LOGOUT\r\n" * 900)[:9000] + b"\r\n")),
        ("100,000 '(' before login", f"nesting 1, line {MAX_LINE_PRE // 1024} KiB pre-login",
         simple(b"a ID " + b"(" * 100_000 + b"\r\n")),
        ("100,000 '(' after login", "nesting 64, line 64 KiB",
         simple(b"a FETCH 1 " + b"(" * 100_000 + b"\r\n", login=True, select=True)),
        ("1 MiB line without CRLF", "line 64 KiB after login",
         simple(b"a NOOP " + b"x" * (1 << 20), login=True, after=b"\r\nz NOOP\r\n")),
        ("UID FETCH 100,000-range set", "line 64 KiB (set > 64 KiB)",
         simple(b"a UID FETCH " + many_ranges(100_000) + b" FLAGS\r\n", login=True,
                select=True)),
        ("UID FETCH 10,000-range set", "fits the 64 KiB line",
         simple(b"a UID FETCH " + many_ranges(10_000) + b" FLAGS\r\n", login=True,
                select=True)),
        ("FETCH 1:4294967295", "seq > EXISTS is an error (RFC 9051)",
         simple(b"a FETCH 1:4294967295 (FLAGS)\r\n", login=True, select=True)),
        ("UID FETCH 1:4294967295", "clamped to the mailbox",
         simple(b"a UID FETCH 1:4294967295 (FLAGS)\r\n", login=True, select=True)),
        ("SEARCH 10,000 nested OR", f"search depth {SEARCH_DEPTH}",
         simple(b"a SEARCH " + deep_or + b"\r\n", login=True, select=True)),
        (f"SEARCH {SEARCH_DEPTH + 1} nested OR", f"search depth {SEARCH_DEPTH}",
         simple(b"a SEARCH " + deep_or_limit + b"\r\n", login=True, select=True)),
        (f"SEARCH {SEARCH_DEPTH} nested OR of TEXT (deepest accepted)", "accepted; all msgs read",
         simple(b"a SEARCH " + ok_or + b"\r\n", login=True, select=True)),
        ("SEARCH 3,000 x TEXT (wide AND)", "1,000 keys / 64 content keys",
         simple(b"a SEARCH " + wide_text + b"\r\n", login=True, select=True)),
        ("SEARCH NOT (2,500 x NOT TEXT) (= wide OR)", "1,000 keys / 64 content keys",
         simple(b"a SEARCH " + wide_or + b"\r\n", login=True, select=True)),
        ("SEARCH NOT (64 x NOT TEXT) (at the limit)", "64 content keys",
         simple(b"a SEARCH NOT (" + b"NOT TEXT zzz-not-there " * 64 + b")\r\n", login=True,
                select=True)),
        ("SEARCH NOT (65 x NOT TEXT)", "64 content keys",
         simple(b"a SEARCH NOT (" + b"NOT TEXT zzz-not-there " * 65 + b")\r\n", login=True,
                select=True)),
        ("LIST 2,000 x '*%'", "matcher without backtracking blow-up",
         simple(b'a LIST "" "' + b"*%" * 2000 + b'x"\r\n', login=True)),
        ("LIST 60,000 '*'", "line 64 KiB",
         simple(b'a LIST "" "' + b"*" * 60_000 + b'"\r\n', login=True)),
        ("broken modified UTF-7 (SELECT)", "name refused",
         simple(b'a SELECT "&AGE-&Jjo!&-&ZZZ"\r\n', login=True)),
        ("broken modified UTF-7 (CREATE)", "name refused",
         simple(b'a CREATE "x&AAA-y&"\r\n', login=True)),
        ("AUTHENTICATE PLAIN bad base64", "refused, counts as failure",
         auth_plain(b"!!!not*base64===")),
        ("AUTHENTICATE PLAIN extra NULs", "refused",
         auth_plain(base64.b64encode(b"\x00bench\x00" + PASSWORD.encode() + b"\x00extra\x00"))),
        ("AUTHENTICATE PLAIN 1 MiB response", "pre-login line 8 KiB",
         auth_plain(base64.b64encode(b"\x00bench\x00" + b"p" * 786_432))),
        ("LOGIN user with CR/LF", "no such user; login delay",
         login_as(b"ben\r\nch")),
        ("LOGIN user '%'", "no such user", login_as(b"%")),
        ("LOGIN user '../bench'", "no such user", login_as(b"../bench")),
        ("LOGIN user 'a/../bench'", "no such user", login_as(b"a/../bench")),
    ]


# --------------------------------------------------------------------------
# Hostile messages (issue 7 item 4)
# --------------------------------------------------------------------------

def hostile_messages(skip_big: bool) -> list[tuple[str, str, bytes]]:
    hdr = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: hostile\r\n" \
          b"Date: Mon, 06 Jan 2025 10:00:00 +0000\r\nMessage-ID: <h@example.org>\r\n"
    out = []
    # 10,000-deep MIME nesting: multipart inside multipart.
    deep = [hdr + b"MIME-Version: 1.0\r\n"]
    n = 10_000
    for i in range(n):
        deep.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
    deep.append(b"Content-Type: text/plain\r\n\r\ndeepest\r\n")
    for i in reversed(range(n)):
        deep.append(b"--b%d--\r\n" % i)
    out.append(("MIME nested 10,000 deep", "depth limit: deeper parts are leaves", b"".join(deep)))
    # 10,000 parts.
    parts = [hdr + b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="p"\r\n\r\n']
    for i in range(10_000):
        parts.append(b"--p\r\nContent-Type: text/plain\r\n\r\npart %d\r\n" % i)
    parts.append(b"--p--\r\n")
    out.append(("10,000 parts", "part limit: rest is one leaf", b"".join(parts)))
    # 20 MB header.
    big_hdr = hdr + b"".join(b"X-Filler-%07d: %s\r\n" % (i, b"y" * 60) for i in range(270_000))
    out.append(("20 MB header", "header scan bounded", big_hdr + b"\r\nbody\r\n"))
    # 100,000 addresses.
    addrs = b",\r\n ".join(b"user%d@example.org" % i for i in range(100_000))
    out.append(("100,000 addresses in To", "ENVELOPE address cap",
                hdr.replace(b"To: b@example.org", b"To: " + addrs) + b"\r\nbody\r\n"))
    # 10,000 RFC 2231 parameters (continuations of one parameter, and many names).
    params = b"".join(b";\r\n title*%d*=us-ascii''part%d" % (i, i) for i in range(5_000))
    params += b"".join(b";\r\n p%d=v" % i for i in range(5_000))
    out.append(("10,000 RFC 2231 parameters", "parameter cap",
                hdr + b"MIME-Version: 1.0\r\nContent-Type: text/plain" + params +
                b"\r\n\r\nbody\r\n"))
    out.append(("NUL in header names", "kept as bytes; BODY[] exact",
                hdr + b"X-N\x00ul: v\r\nSub\x00ject: nul\r\n\r\nbody\r\n"))
    out.append(("invalid addresses", "group/route syntax tolerated",
                b"From: <<<@@@>>>, \"unterminated, :;@, =?x?q?bad?= <a@>\r\n"
                b"To: undisclosed:;, @route,@r2:x@y, (comment only)\r\n"
                b"Cc: a@b@c, \x7f\x01@\xff\r\nSubject: bad addrs\r\n\r\nbody\r\n"))
    if not skip_big:
        size = 49_000_000
        line = b"A" * 76 + b"\r\n"
        body = line * (size // len(line))
        out.append(("50 MB message (49 MB base64-ish body)", "max_message_size 50 MB",
                    hdr + b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Transfer-Encoding: base64\r\n\r\n" + body))
    return out


def run_message_case(port: int, data: bytes) -> tuple[str, float, dict[str, tuple[float, str]]]:
    c = Conn(port, timeout=300)
    c.login()
    t0 = time.monotonic()
    c.send(b"A APPEND INBOX {%d+}\r\n" % len(data) + data + b"\r\n")
    lines = c.tagged(b"A")
    t_append = time.monotonic() - t0
    res = first_line(lines)
    uid = None
    for ln in lines:
        if b"APPENDUID" in ln:
            uid = int(ln.split(b"APPENDUID ")[1].split(b" ")[1].rstrip(b"]"))
    fetches: dict[str, tuple[float, str]] = {}
    if uid is not None:
        c.send(b"S SELECT INBOX\r\n")
        c.tagged(b"S")
        for name, item in (("BODYSTRUCTURE", b"BODYSTRUCTURE"), ("ENVELOPE", b"ENVELOPE"),
                           ("BODY[]", b"BODY.PEEK[]")):
            t1 = time.monotonic()
            c.send(b"F UID FETCH %d (%s)\r\n" % (uid, item))
            # Count the bytes of the answer (literal included).
            got = 0
            status = b""
            while True:
                ln = c.line()
                if ln is None:
                    status = b"closed"
                    break
                got += len(ln) + 2
                if ln.startswith(b"F "):
                    status = ln[:40]
                    break
                if ln.endswith(b"}") and b"{" in ln:
                    n = int(ln[ln.rindex(b"{") + 1:-1])
                    got += len(c.literal(n))
            fetches[name] = (time.monotonic() - t1, f"{status.decode('latin-1')} {got} B")
        exact = None
        # BODY[] byte-exact check (reads it once more).
        c.send(b"G UID FETCH %d (BODY.PEEK[])\r\n" % uid)
        ln = c.line() or b""
        if ln.endswith(b"}"):
            n = int(ln[ln.rindex(b"{") + 1:-1])
            exact = c.literal(n) == data
        c.tagged(b"G")
        fetches["exact"] = (0.0, "BODY[] byte-exact" if exact else "BODY[] DIFFERS")
        c.send(b"E UID STORE %d +FLAGS.SILENT (\\Deleted)\r\nX EXPUNGE\r\n" % uid)
        c.tagged(b"X")
    c.close()
    return res, t_append, fetches


# --------------------------------------------------------------------------
# Hostile upstream (issue 7 item 5), against tests/fault/pop3_server.py
# --------------------------------------------------------------------------

def upstream_rows() -> list[list[str]]:
    import re
    import tempfile
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fault"))
    import pop3_fault as pf  # sets POPBRIDGE_POP3_TIMEOUT_MS=2000 (tests' short timeout)

    pki = pf.TestPki(Path(tempfile.mkdtemp(prefix="pbhostile-pki-")))
    msgs = pf.messages(2, tag="hostile")
    nul_ts = b"<1.2\x00x@fake.example>".decode("utf-8", "surrogateescape")

    def greeting(srv):
        srv.timestamp = "<" + "x" * 100_000 + "@fake.example>"

    def capa(srv):
        srv.capa = ["X" * 100_000]

    def uidl_line(srv):
        srv.long_line = 1_000_000

    def stall(srv):
        srv.stall_on = "RETR"

    def apop(srv):
        srv.timestamp = nul_ts

    def odd_uidls(srv):
        for u in ("a" * 200, "../../../../etc/passwd", "x/y", "nul\x00z", ".."):
            srv.add(pf.message(len(srv.mailbox) + 1), uidl=u)

    def stls_removed(srv):
        srv.stls = False

    def inject(srv):
        srv.stls = True
        srv.stls_inject = b"+OK injected\r\nSASL PLAIN\r\n.\r\n-ERR injected\r\n"

    tls = dict(tls="starttls", allow_plaintext=None, ca_file=str(pki.ca_file))
    cases = [
        ("greeting line of 100 KB", "line 8 KiB", greeting, {}, {}),
        ("CAPA line of 100 KB", "line 8 KiB", capa, {}, {}),
        ("UIDL line of 1 MB", "line 8 KiB", uidl_line, {}, {}),
        ("slowloris: RETR never answered", "read timeout (2 s in tests, 60 s default)",
         stall, {}, {}),
        ("APOP timestamp with NUL", "plausible msg-id only", apop, {"auth": "apop"}, {}),
        ("UIDLs of 200 bytes, '../..', '/', NUL, '..'", "never a file name", odd_uidls, {}, {}),
        ("STLS removed from CAPA (downgrade)", "tls: starttls requires STLS", stls_removed,
         tls, {"tls_context": pki.server_context()}),
        ("STARTTLS response injection", "buffer dropped at STLS", inject, tls,
         {"tls_context": pki.server_context()}),
    ]
    line_rx = re.compile(r"poll account=\S+ new=(\d+) [^\n]*?duration=(\d+)ms outcome=(\w+)"
                         r"(?: error=\"([^\n]*)\")?")
    rows = []
    for name, limit, setup, fields, srv_kw in cases:
        srv = pf.FakePop3(messages=msgs, **srv_kw).start()
        try:
            setup(srv)
            pb = pf.popbridge(srv, **fields)
            try:
                pb.start()
                pf.wait_outcomes(pb, 1, timeout=60)
                log = pb.log_since(pb.log_offset)
                m = line_rx.search(log)
                rss, hwm = pid_mem(pb.proc.pid)
                creds = [c for _s, c in srv.commands
                         if c.split(" ", 1)[0].upper() in ("USER", "PASS", "APOP", "AUTH")]
                names = [p.name for p in pb.data_dir.rglob("*")]
                bad_names = [n for n in names if "passwd" in n or n == ".." or "\x00" in n]
                err = (m.group(4) or "") if m else "?"
                err = err if len(err) <= 120 else err[:117] + "..."
                rows.append([name, limit, f"{m.group(3)} new={m.group(1)}" if m else "?",
                             "`" + err.replace("|", "\\|") + "`" if err else "",
                             m.group(2) if m else "?",
                             "none" if not creds else ", ".join(c.split(" ")[0] for c in creds),
                             "none" if not bad_names else ", ".join(bad_names),
                             f"{rss / 1048576:.1f} / {hwm / 1048576:.1f}"])
                bl.log(f"upstream {name}: {rows[-1][2]} {rows[-1][3]}")
            finally:
                pb.cleanup()
        finally:
            srv.stop()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=300, help="ordinary messages in INBOX")
    ap.add_argument("--skip-big", action="store_true", help="leave out the 50 MB message")
    ap.add_argument("--skip-upstream", action="store_true", help="leave out the POP3 cases")
    args = ap.parse_args()

    pb = bl.PopbridgeRun(None, user=USER, password=PASSWORD, log_level="warn")
    pb.start()
    try:
        pb.wait_imap()
        pid = pb.pid
        seed = Conn(pb.imap_port, timeout=300)
        seed.login()
        rng = bl.random.Random(7)
        t0 = time.monotonic()
        for i in range(args.messages):
            m = bl.make_message(i, rng, "text", 4000)
            seed.send(b"P APPEND INBOX {%d+}\r\n" % len(m) + m + b"\r\n")
            assert seed.tagged(b"P")[-1].startswith(b"P OK")
        seed.close()
        bl.log(f"{args.messages} messages appended in {time.monotonic() - t0:.1f} s")
        obs = Observer(pb.imap_port)
        obs.start()
        time.sleep(0.5)  # let the observer take a few baseline probes
        base = sorted(e - s for s, e in obs.probes)
        baseline = base[len(base) // 2] if base else float("nan")

        rows = []
        for name, limit, fn in imap_cases():
            rss0, _ = pid_mem(pid)
            a = time.monotonic()
            lines, dt, after = fn(pb.imap_port)
            b = time.monotonic()
            rss1, hwm1 = pid_mem(pid)
            worst, n = obs.worst(a, b)
            rows.append([name, limit, "`" + first_line(lines).replace("|", "\\|") + "`",
                         f"{dt * 1000:.1f}", after,
                         f"{rss0 / 1048576:.1f} → {rss1 / 1048576:.1f}", f"{hwm1 / 1048576:.1f}",
                         f"{worst * 1000:.1f} ({n})"])
            bl.log(f"{name}: {rows[-1][2]} {rows[-1][3]} ms")
            pb.alive()
        t1 = bl.markdown_table(
            ["hostile IMAP input", "limit", "first response line", "time ms", "after",
             "RSS MiB before → after", "HWM MiB", "observer worst ms (probes)"], rows)

        mrows = []
        for name, limit, data in hostile_messages(args.skip_big):
            rss0, _ = pid_mem(pid)
            a = time.monotonic()
            res, t_app, fetches = run_message_case(pb.imap_port, data)
            b = time.monotonic()
            rss1, hwm1 = pid_mem(pid)
            worst, n = obs.worst(a, b)

            def f(k: str) -> str:
                if k not in fetches:
                    return "n/a"
                return f"{fetches[k][0] * 1000:.0f} ({fetches[k][1]})"
            mrows.append([name, f"{len(data) / 1e6:.2f} MB", limit,
                          "`" + res.replace("|", "\\|") + "`", f"{t_app * 1000:.0f}",
                          f("BODYSTRUCTURE"), f("ENVELOPE"), f("BODY[]"),
                          fetches.get("exact", (0, "n/a"))[1],
                          f"{rss0 / 1048576:.1f} → {rss1 / 1048576:.1f}", f"{hwm1 / 1048576:.1f}",
                          f"{worst * 1000:.1f} ({n})"])
            bl.log(f"{name}: {res} append {t_app * 1000:.0f} ms")
            pb.alive()
        t2 = bl.markdown_table(
            ["hostile message", "size", "limit", "APPEND reply", "APPEND ms",
             "BODYSTRUCTURE ms (reply)", "ENVELOPE ms (reply)", "BODY[] ms (reply)", "BODY[]",
             "RSS MiB before → after", "HWM MiB", "observer worst ms (probes)"], mrows)
        obs.stop_ev.set()
        obs.join(timeout=30)
        t3 = ""
        if not args.skip_upstream:
            t3 = bl.markdown_table(
                ["hostile upstream (fault server)", "limit", "outcome", "error logged",
                 "poll ms", "credentials sent", "file named from UIDL",
                 "daemon RSS / HWM MiB"], upstream_rows())
        facts = (f"{args.messages} x 4 KB messages in INBOX; observer probe (NOOP + FETCH 1) "
                 f"median {baseline * 1000:.1f} ms before the cases; observer errors: "
                 f"{obs.errors or 'none'}; daemon alive at the end: "
                 f"{pb.proc is not None and pb.proc.poll() is None}")
        text = "\n\n".join(x for x in [facts, t1, t2, t3] if x)
        bl.save("hostile_table", text, {"imap": rows, "messages": mrows, "facts": facts,
                                        "upstream": t3})
    finally:
        pb.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
