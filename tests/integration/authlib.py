"""Helpers for the login tests (test_brute_force.py, test_fail2ban.py): a raw IMAP client
that times one LOGIN from a chosen loopback source address, and a daemon with short login
delays and a second account.
"""

import base64
import socket
import time
from pathlib import Path
from typing import Optional

import harness


class RawImap:
    """One IMAP connection from `source` (any 127.x.y.z works on Linux loopback)."""

    def __init__(self, port: int, source: str = "127.0.0.1", timeout: float = 30.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                             source_address=(source, 0))
        self.buf = b""
        self.n = 0
        greeting = self.line()
        if not greeting.startswith(b"* OK"):
            raise AssertionError(f"no greeting: {greeting!r}")

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send_login(self, user: str, password: str) -> bytes:
        self.n += 1
        tag = b"a%d" % self.n
        self.sock.sendall(tag + b" LOGIN " + quote(user) + b" " + quote(password) + b"\r\n")
        return tag

    def reply(self, tag: bytes) -> bytes:
        """The tagged reply to `tag`, without the tag."""
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                return line[len(tag) + 1:]

    def login(self, user: str, password: str) -> tuple[bytes, float]:
        """(tagged reply without the tag, seconds from sending LOGIN to the reply)."""
        tag = self.send_login(user, password)
        t0 = time.monotonic()
        text = self.reply(tag)
        return text, time.monotonic() - t0

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def quote(s: str) -> bytes:
    return b'"' + s.encode().replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def attempt(port: int, user: str, password: str, source: str) -> tuple[bytes, float]:
    """One LOGIN on a fresh connection (a connection allows 3 failures, then BYE)."""
    c = RawImap(port, source)
    try:
        return c.login(user, password)
    finally:
        c.close()


def attempt_plain(port: int, user: bytes, password: bytes, source: str) -> tuple[bytes, float]:
    """One AUTHENTICATE PLAIN (SASL-IR) on a fresh connection: any bytes in the name."""
    c = RawImap(port, source)
    try:
        blob = base64.b64encode(b"\0" + user + b"\0" + password)
        c.sock.sendall(b"p1 AUTHENTICATE PLAIN " + blob + b"\r\n")
        t0 = time.monotonic()
        text = c.reply(b"p1")
        return text, time.monotonic() - t0
    finally:
        c.close()


def make_daemon(login_delay: str = "100ms", login_delay_max: str = "800ms",
                log_format: str = "text", log_level: str = "info") -> harness.Popbridge:
    """A stopped Popbridge with short login delays and accounts alice and bob."""
    pb = harness.Popbridge(log_level=log_level)
    text = pb.config.read_text()
    listen = next(l for l in text.splitlines() if l.startswith("  listen:"))
    text = text.replace(listen, listen + f"\n  login_delay: {login_delay}\n"
                        f"  login_delay_max: {login_delay_max}")
    text = text.replace("format: text", f"format: {log_format}")
    pb.config.write_text(text)
    (pb.accounts_dir / "bob.yaml").write_text(
        "user: bob\n"
        f"password_hash: {harness.yaml_str(harness.crypt_sha512('bob-secret'))}\n"
        "upstreams: []\n")
    return pb


def wait_log(pb: harness.Popbridge, needle: str, count: int = 1, timeout: float = 10.0) -> str:
    return pb.wait_for(lambda: pb.log_since(pb.log_offset) if
                       pb.log_since(pb.log_offset).count(needle) >= count else None,
                       timeout, f"{count} log line(s) with {needle!r}")
