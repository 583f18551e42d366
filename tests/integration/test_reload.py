#!/usr/bin/env python3
"""Account reload (SIGHUP and accounts_dir changes) while an IMAP client stays connected.

alice (Dovecot upstream) keeps one IMAP session open the whole time. Account bob is then
added, changed (new password), broken (YAML error: the previous config keeps working, the
error is in the log with file:line, in /status and in /metrics), fixed, and removed.
After every step alice's session still answers NOOP and FETCH on the same connection.
A second case checks that editing a file in accounts_dir reloads without any signal.

Needs POPBRIDGE_BIN (ctest sets it; default build/proxy/popbridge).
"""

import http.client as httpclient
import imaplib
import os
import re
import signal
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def enable_admin(pb) -> int:
    port = harness.free_port()
    pb.config.write_text(pb.config.read_text() + f"admin: {{listen: \"127.0.0.1:{port}\"}}\n")
    return port


def get(port: int, path: str) -> str:
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def bob_file(password: str) -> str:
    return ("user: bob\n"
            f"password_hash: {harness.yaml_str(harness.crypt_sha512(password))}\n"
            "upstreams: []\n")


def can_login(pb, user: str, password: str) -> bool:
    c = imaplib.IMAP4("127.0.0.1", pb.imap_port, timeout=15)
    try:
        c.login(user, password)
        return True
    except imaplib.IMAP4.error:
        return False
    finally:
        harness.imap_logout(c)


class ReloadTest(unittest.TestCase):
    def setUp(self):
        self.dovecot = harness.Dovecot().start()
        self.addCleanup(self.dovecot.stop)
        self.dovecot.add_messages(harness.generate_messages(3, seed=5))
        self.pb = harness.Popbridge(upstream=self.dovecot, poll_every="10m")
        self.addCleanup(self.pb.cleanup)
        self.admin = enable_admin(self.pb)
        self.pb.start()
        self.pb.wait_for(lambda: self.pb.message_count() >= 3, 60, "3 messages for alice")
        self.alice = self.pb.imap()
        self.addCleanup(harness.imap_logout, self.alice)
        typ, _ = self.alice.select("INBOX")
        self.assertEqual(typ, "OK")

    def alice_still_works(self, step: str):
        typ, data = self.alice.noop()
        self.assertEqual(typ, "OK", f"{step}: alice's NOOP failed: {data}")
        typ, data = self.alice.fetch("1:*", "(UID RFC822.SIZE)")
        self.assertEqual(typ, "OK", f"{step}: alice's FETCH failed: {data}")
        self.assertEqual(len([d for d in data if d]), 3, f"{step}: alice sees {data}")

    def hup(self, what: str):
        """SIGHUP, then wait until the daemon logged one more reload."""
        before = self.pb.log_since(self.pb.log_offset).count("SIGHUP: reloading")
        os.kill(self.pb.proc.pid, signal.SIGHUP)
        self.pb.wait_for(lambda: self.pb.log_since(self.pb.log_offset).count(
            "SIGHUP: reloading") > before, 10, f"SIGHUP reload ({what})")

    def test_add_change_break_fix_remove(self):
        bob = self.pb.accounts_dir / "bob.yaml"

        # Add.
        bob.write_text(bob_file("bob-one"))
        self.hup("add bob")
        self.pb.wait_for(lambda: can_login(self.pb, "bob", "bob-one"), 10, "bob logs in")
        self.alice_still_works("after adding bob")

        # Change.
        bob.write_text(bob_file("bob-two"))
        self.hup("change bob's password")
        self.pb.wait_for(lambda: can_login(self.pb, "bob", "bob-two"), 10, "bob's new password")
        self.assertFalse(can_login(self.pb, "bob", "bob-one"), "old password still accepted")
        self.alice_still_works("after changing bob")

        # Break: the previous (working) configuration stays; the error is reported.
        offset = self.pb.log_file.stat().st_size
        bob.write_text("user: bob\npassword_hash: [unclosed\nupstreams: []\n")
        self.hup("break bob")
        log = self.pb.wait_for(lambda: (lambda t: t if "bob.yaml:" in t else None)(
            self.pb.log_since(offset)), 10, "an error naming bob.yaml:LINE in the log")
        self.assertRegex(log, r"bob\.yaml:\d+")
        self.assertIn("keeps its previous configuration", log)
        self.assertTrue(can_login(self.pb, "bob", "bob-two"), "broken file disabled bob")
        status = get(self.admin, "/status")
        self.assertIn("bob.yaml", status)
        self.assertIn("previous configuration kept", status)
        metrics = get(self.admin, "/metrics")
        self.assertIn('popbridge_account_config_stale{user="bob"} 1', metrics)
        self.assertRegex(metrics, r'popbridge_config_file_disabled\{file="[^"]*bob\.yaml"\} 1')
        r = self.pb.run_cli("--config", str(self.pb.config), "status")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("bob.yaml", r.stdout)
        self.alice_still_works("after breaking bob")

        # Fix.
        bob.write_text(bob_file("bob-three"))
        self.hup("fix bob")
        self.pb.wait_for(lambda: can_login(self.pb, "bob", "bob-three"), 10, "bob fixed")
        metrics = get(self.admin, "/metrics")
        self.assertIn('popbridge_account_config_stale{user="bob"} 0', metrics)
        self.assertIn("popbridge_config_errors 0", metrics)
        self.alice_still_works("after fixing bob")

        # Remove.
        bob.unlink()
        self.hup("remove bob")
        self.pb.wait_for(lambda: not can_login(self.pb, "bob", "bob-three"), 10, "bob removed")
        self.assertNotIn('user="bob"', get(self.admin, "/metrics"))
        self.alice_still_works("after removing bob")

        # Changing alice's own file (poll_every) keeps her connected session working too.
        text = self.pb.account_file.read_text()
        self.pb.account_file.write_text(re.sub(r"poll_every: \S+", "poll_every: 9m", text))
        self.hup("change alice")
        self.pb.wait_for(lambda: "account alice reloaded" in self.pb.log_since(self.pb.log_offset),
                         10, "alice reloaded")
        self.alice_still_works("after changing alice")
        self.assertEqual(self.pb.stop(), 0)

    def test_directory_change_reloads_without_signal(self):
        (self.pb.accounts_dir / "carol.yaml").write_text(
            bob_file("carol-pw").replace("user: bob", "user: carol"))
        self.pb.wait_for(lambda: can_login(self.pb, "carol", "carol-pw"), 15,
                         "carol usable after her file appeared (no SIGHUP)")
        self.assertIn("accounts_dir changed", self.pb.log_since(self.pb.log_offset))
        self.assertNotIn("SIGHUP", self.pb.log_since(self.pb.log_offset))
        self.alice_still_works("after carol appeared")


if __name__ == "__main__":
    unittest.main(verbosity=2)
