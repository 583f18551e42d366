#!/usr/bin/env python3
"""Secrets never leak: canary passwords at log level trace.

The upstream POP3 password is a canary read from a password_file (mode 0600); the IMAP
password is another canary. The daemon runs at log level trace (every protocol line),
polls Dovecot successfully with the canary, serves an IMAP login with the other canary and
refuses a third (wrong) canary. Then neither canary, nor its base64 form (SASL PLAIN),
may appear in: the daemon log, /metrics, /status (HTML and text), the CLI's status output,
/proc/PID/environ and /proc/PID/cmdline.

Needs POPBRIDGE_BIN (ctest sets it; default build/proxy/popbridge).
"""

import base64
import http.client as httpclient
import imaplib
import os
import secrets
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def get(port: int, path: str) -> bytes:
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def forms(secret: str) -> list[bytes]:
    """The secret and encodings a careless log line could carry."""
    raw = secret.encode()
    return [raw, base64.b64encode(b"\0alice\0" + raw), base64.b64encode(raw),
            raw.hex().encode()]


class SecretsTest(unittest.TestCase):
    def test_canaries_never_appear(self):
        pop_canary = "PopCanary" + secrets.token_hex(8)
        imap_canary = "ImapCanary" + secrets.token_hex(8)
        wrong_canary = "WrongCanary" + secrets.token_hex(8)

        dovecot = harness.Dovecot(password=pop_canary).start()
        self.addCleanup(dovecot.stop)
        dovecot.add_messages(harness.generate_messages(2, seed=9))

        pb = harness.Popbridge(upstream=dovecot, password=imap_canary, poll_every="10m",
                               log_level="trace")
        self.addCleanup(pb.cleanup)
        secret_file = pb.dir / "alice-pop.secret"
        secret_file.write_text(pop_canary + "\n")
        os.chmod(secret_file, 0o600)
        text = pb.account_file.read_text()
        self.assertIn(harness.yaml_str(pop_canary), text)
        pb.account_file.write_text(text.replace(
            f"password: {harness.yaml_str(pop_canary)}",
            f"password_file: {harness.yaml_str(str(secret_file))}"))
        self.assertNotIn(pop_canary, pb.account_file.read_text())
        admin = harness.free_port()
        pb.config.write_text(pb.config.read_text() + f"admin: {{listen: \"127.0.0.1:{admin}\"}}\n")

        pb.start()
        # The canary must really have been used: the poll succeeded with it.
        pb.wait_for(lambda: pb.message_count() >= 2, 60, "2 messages (upstream login worked)")
        client = pb.imap()
        harness.imap_logout(client)
        bad = imaplib.IMAP4("127.0.0.1", pb.imap_port, timeout=15)
        try:
            with self.assertRaises(imaplib.IMAP4.error):
                bad.login("alice", wrong_canary)
        finally:
            harness.imap_logout(bad)
        pid = pb.proc.pid

        places = {
            "log": None,
            "/metrics": get(admin, "/metrics"),
            "/status": get(admin, "/status"),
            "/status?format=text": get(admin, "/status?format=text"),
            "/proc/PID/environ": Path(f"/proc/{pid}/environ").read_bytes(),
            "/proc/PID/cmdline": Path(f"/proc/{pid}/cmdline").read_bytes(),
        }
        r = pb.run_cli("--config", str(pb.config), "status")
        places["popbridge status"] = (r.stdout + r.stderr).encode()
        self.assertEqual(pb.stop(), 0)
        places["log"] = pb.log_file.read_bytes()

        # The log is really at trace level: protocol lines are there.
        self.assertRegex(places["log"].decode("utf-8", "replace"), r"(?m)^\S+ trace ",
                         "no trace-level lines in the log: the test would prove nothing")
        for where, data in places.items():
            for canary in (pop_canary, imap_canary, wrong_canary):
                for form in forms(canary):
                    self.assertNotIn(form, data, f"{canary[:10]}... ({form[:12]!r}...) "
                                                 f"appears in {where}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
