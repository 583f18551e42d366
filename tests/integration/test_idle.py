#!/usr/bin/env python3
"""IMAP IDLE push (RFC 2177) with python imaplib against the real daemon.

1. A message that arrives upstream (Dovecot POP3) reaches an idling client as "* n EXISTS"
   without the client asking: within 1 s of popbridge committing it (the poll that fetches
   it is started by the client's SELECT/IDLE, or by the 10 s poll timer at the latest).
2. A message APPENDed by a second session reaches the idling client within 1 s.
3. A flag change and an expunge by the second session arrive as FETCH and EXPUNGE.

Needs POPBRIDGE_BIN and dovecot.
"""

import imaplib
import re
import socket
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


class Idler:
    """Raw IDLE over imaplib's socket (imaplib has no IDLE before Python 3.14)."""

    def __init__(self, client: imaplib.IMAP4):
        self.client = client
        self.buf = b""

    def start(self) -> None:
        self.client.send(b"I1 IDLE\r\n")
        line = self.read_line(5)
        if not line.startswith(b"+"):
            raise AssertionError(f"IDLE not accepted: {line!r}")

    def read_line(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        sock = self.client.socket()
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line within {timeout} s (have {self.buf!r})")
            sock.settimeout(left)
            try:
                chunk = sock.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                raise AssertionError("connection closed during IDLE")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def wait_for(self, rx: bytes, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line matching {rx!r} within {timeout} s; got {seen}")
            try:
                line = self.read_line(left)
            except TimeoutError:
                raise TimeoutError(f"no line matching {rx!r} within {timeout} s; got {seen}")
            seen.append(line)
            if re.search(rx, line):
                return line

    def done(self) -> None:
        self.client.send(b"DONE\r\n")
        self.wait_for(rb"^I1 OK", 5)


class IdleTest(unittest.TestCase):
    def setUp(self):
        self.dovecot = harness.Dovecot().start()
        self.addCleanup(self.dovecot.stop)
        self.dovecot.add_message(b"Subject: first\r\nFrom: a@example.org\r\n\r\nfirst\r\n")
        self.pb = harness.Popbridge(upstream=self.dovecot, poll_every="10s")
        self.addCleanup(self.pb.cleanup)
        self.pb.start()
        self.pb.wait_for(lambda: self.pb.message_count() >= 1, 30, "the first message")

    def test_new_upstream_message_and_other_session_changes_are_pushed(self):
        idle_client = self.pb.imap()
        self.addCleanup(harness.imap_logout, idle_client)
        typ, data = idle_client.select("INBOX")
        self.assertEqual((typ, data[0]), ("OK", b"1"))
        idler = Idler(idle_client)
        idler.start()

        # 1. Upstream delivery -> EXISTS. The commit time is taken from popbridge's own
        # poll line; the EXISTS must follow it within 1 s.
        offset = len(self.pb.log_since(0).encode())
        self.dovecot.add_message(b"Subject: second\r\nFrom: b@example.org\r\n\r\nsecond\r\n")
        committed_at = exists_at = None
        deadline = time.monotonic() + 30
        while exists_at is None or committed_at is None:
            self.assertLess(time.monotonic(), deadline,
                            f"within 30 s: poll line seen={committed_at is not None}, "
                            f"EXISTS seen={exists_at is not None}")
            if committed_at is None and 1 in self.pb.poll_counts(since=offset):
                committed_at = time.monotonic()
            if exists_at is None:
                try:
                    line = idler.read_line(0.05)
                except TimeoutError:
                    continue
                if line == b"* 2 EXISTS":
                    exists_at = time.monotonic()
        # The poll line is logged after the commit; EXISTS must not lag it by 1 s or more.
        self.assertLess(exists_at - committed_at, 1.0)

        # 2. APPEND from another session -> EXISTS within 1 s.
        other = self.pb.imap()
        self.addCleanup(harness.imap_logout, other)
        t0 = time.monotonic()
        typ, _ = other.append("INBOX", None, None,
                              b"Subject: third\r\nFrom: c@example.org\r\n\r\nthird\r\n")
        self.assertEqual(typ, "OK")
        idler.wait_for(rb"^\* 3 EXISTS$", 1.0)
        self.assertLess(time.monotonic() - t0, 1.5)

        # 3. Flags and expunge from the other session.
        other.select("INBOX")
        typ, _ = other.store("1", "+FLAGS", "(\\Flagged \\Deleted)")
        self.assertEqual(typ, "OK")
        fetch = idler.wait_for(rb"^\* 1 FETCH ", 1.0)
        self.assertIn(b"\\Flagged", fetch)
        other.expunge()
        idler.wait_for(rb"^\* 1 EXPUNGE$", 1.0)
        idler.done()
        typ, data = idle_client.fetch("1:*", "(UID)")
        self.assertEqual(len([d for d in data if d]), 2, data)


if __name__ == "__main__":
    unittest.main(verbosity=2)
