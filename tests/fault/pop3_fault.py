"""Helpers for the POP3 fault tests (tests/integration/test_pop3_fault_*.py).

Every case ends with check_no_loss_no_dup(): every message that was ever
upstream is still upstream or stored locally (nothing lost), no body is stored
twice, nothing is stored that was never upstream, and no secret is in the log.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from pop3_server import FakePop3, TestPki  # noqa: E402,F401

# Short network timeout and backoff so failure-then-retry cases take seconds.
os.environ.setdefault("POPBRIDGE_POP3_BACKOFF_MS", "300")
os.environ.setdefault("POPBRIDGE_POP3_TIMEOUT_MS", "2000")

UPSTREAM = "fake"
OUTCOME_RX = re.compile(r"poll account=alice/" + UPSTREAM + r" new=(\d+).*outcome=(\w+)")


def message(i: int, size: int = 600, date: str = "Mon, 06 Jan 2025 10:00:00 +0000",
            tag: str = "m") -> bytes:
    """A distinct RFC 5322 message (CRLF), with a dot-stuffing line."""
    head = (f"From: sender{i}@example.net\r\nTo: alice@example.org\r\n"
            f"Subject: {tag} message {i}\r\nDate: {date}\r\n"
            f"Message-ID: <{tag}-{i}@fault.example>\r\n\r\n")
    body = f"Body of {tag} {i}.\r\n.leading dot line\r\n"
    while len(head) + len(body) < size:
        body += f"line {len(body)} of {tag} {i} lorem ipsum dolor sit amet\r\n"
    return (head + body).encode()


def messages(n: int, tag: str = "m", **kw) -> list[bytes]:
    return [message(i, tag=tag, **kw) for i in range(1, n + 1)]


def write_account(pb: harness.Popbridge, srv: FakePop3, **fields: str) -> None:
    """Rewrite the account file with our own upstream fields (keys as in docs/configuration.md).
    Defaults: plaintext USER/PASS, keep_on_server true, poll_every 10s."""
    f = {"name": UPSTREAM, "host": "127.0.0.1", "port": str(srv.port), "tls": "none",
         "allow_plaintext": "true", "username": srv.user, "auth": "pass",
         "password": harness.yaml_str(srv.password), "poll_every": "10s",
         "keep_on_server": "true", "folder": "INBOX"}
    for k, v in fields.items():
        if v is None:
            f.pop(k, None)
        else:
            f[k] = v
    lines = [f"user: {pb.user}", f"password_hash: {harness.yaml_str(harness.crypt_sha512(pb.password))}",
             "upstreams:"]
    for i, (k, v) in enumerate(f.items()):
        lines.append(("  - " if i == 0 else "    ") + f"{k}: {v}")
    pb.account_file.write_text("\n".join(lines) + "\n")


def popbridge(srv: FakePop3, **fields: str) -> harness.Popbridge:
    pb = harness.Popbridge(upstream=None)
    pb.upstream_name = UPSTREAM
    write_account(pb, srv, **fields)
    harness.with_admin(pb)  # poll_next() asks for polls instead of waiting for poll_every
    return pb


def outcomes(pb: harness.Popbridge) -> list[tuple[int, str]]:
    return [(int(n), o) for n, o in OUTCOME_RX.findall(pb.log_since(pb.log_offset))]


def wait_outcomes(pb: harness.Popbridge, n: int, timeout: float = 25.0) -> list[tuple[int, str]]:
    pb.wait_for(lambda: len(outcomes(pb)) >= n, timeout, f"{n} finished poll(s)")
    return outcomes(pb)


def wait_ok(pb: harness.Popbridge, timeout: float = 25.0) -> list[tuple[int, str]]:
    pb.wait_for(lambda: any(o == "ok" for _n, o in outcomes(pb)), timeout, "a successful poll")
    return outcomes(pb)


def poll_next(pb: harness.Popbridge, timeout: float = 25.0) -> tuple[int, str]:
    """Asks for a poll now (admin /poll-now) and returns its (new, outcome). Call it only
    when no poll is running or pending (after a wait_* that saw the previous one finish)."""
    before = len(outcomes(pb))
    harness.poll_now(pb)
    return wait_outcomes(pb, before + 1, timeout)[before]


def local_bodies(pb: harness.Popbridge) -> list[bytes]:
    return list(pb.fetch_all()[1].values())


def check_no_loss_no_dup(tc: unittest.TestCase, pb: harness.Popbridge, originals: list[bytes],
                         srv: FakePop3, secrets: tuple[str, ...] = ()) -> list[bytes]:
    local = local_bodies(pb)
    hashes = [harness.sha256(b) for b in local]
    tc.assertEqual(len(hashes), len(set(hashes)), "a message is stored twice")
    orig = {harness.sha256(b) for b in originals}
    tc.assertTrue(set(hashes) <= orig, "stored a message that was never upstream (corrupted?)")
    upstream = {harness.sha256(b) for b in srv.live_bodies()}
    lost = orig - set(hashes) - upstream
    tc.assertFalse(lost, f"{len(lost)} message(s) gone upstream but not stored locally")
    text = pb.log_since(0)
    for s in (srv.password, *secrets):
        tc.assertNotIn(s, text, "a secret appears in the log")
    return local


_PKI: Optional[TestPki] = None


class FaultCase(unittest.TestCase):
    """Base: self.srv (started FakePop3 from make_server) and self.pb cleaned up."""

    def make_server(self, msgs: list[bytes], **kw) -> FakePop3:
        srv = FakePop3(messages=msgs, **kw).start()
        self.addCleanup(srv.stop)
        return srv

    def make_pb(self, srv: FakePop3, **fields: str) -> harness.Popbridge:
        pb = popbridge(srv, **fields)
        self.addCleanup(pb.cleanup)
        return pb

    def pki(self) -> TestPki:
        """One throw-away PKI per test process (read-only for the cases; removed at exit)."""
        global _PKI
        if _PKI is None:
            d = Path(tempfile.mkdtemp(prefix="pbpki-"))
            atexit.register(lambda: shutil.rmtree(d, ignore_errors=True))
            _PKI = TestPki(d)
        return _PKI

    def tmpdir(self) -> Path:
        d = Path(tempfile.mkdtemp(prefix="pbfault-"))
        self.addCleanup(lambda: shutil.rmtree(d, ignore_errors=True))
        return d

    def log(self, pb: harness.Popbridge) -> str:
        return pb.log_since(pb.log_offset)


def sighup(pb: harness.Popbridge) -> None:
    import signal
    pb.proc.send_signal(signal.SIGHUP)


def main() -> None:
    harness.popbridge_binary()
    unittest.main(verbosity=2)


__all__ = ["FakePop3", "TestPki", "FaultCase", "message", "messages", "write_account",
           "popbridge", "outcomes", "wait_outcomes", "wait_ok", "poll_next", "local_bodies",
           "check_no_loss_no_dup", "sighup", "main", "harness", "Optional"]
