#!/usr/bin/env python3
"""Checks the test fixtures themselves, without popbridge: the message generator
keeps its promises, and the Dovecot fixture serves exactly what was seeded
(UIDL + RETR over plain, STLS and implicit TLS), and reports upstream state."""

import poplib
import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


class GeneratorTest(unittest.TestCase):
    def test_messages_keep_their_promises(self):
        msgs = harness.generate_messages(50, seed=42)
        self.assertEqual(len(msgs), 50)
        self.assertEqual(msgs, harness.generate_messages(50, seed=42), "not deterministic")
        self.assertNotEqual(msgs, harness.generate_messages(50, seed=43), "seed ignored")
        self.assertEqual(len({harness.sha256(m) for m in msgs}), 50, "duplicate messages")
        ids = [re.search(rb"^Message-ID: (<[^>]+>)\r$", m, re.M).group(1) for m in msgs]
        self.assertEqual(len(set(ids)), 50, "duplicate Message-IDs")
        for i, m in enumerate(msgs):
            self.assertNotIn(b"\n", m.replace(b"\r\n", b""), f"message {i}: bare LF")
            self.assertNotIn(b"\r", m.replace(b"\r\n", b""), f"message {i}: bare CR")
            self.assertTrue(m.endswith(b"\r\n"), f"message {i}: no final CRLF")
            self.assertIn(b"\r\n\r\n", m, f"message {i}: no header/body separator")
            self.assertTrue(max(len(l) for l in m.split(b"\r\n")) <= 998, f"message {i}: line > 998")
        sizes = [len(m) for m in msgs]
        self.assertTrue(any(s > 1_000_000 for s in sizes), "no message over 1 MB")
        self.assertTrue(any(2_000 <= s <= 12_000 for s in sizes), "no small text message")
        self.assertTrue(any(b"multipart/mixed" in m and b"base64" in m for m in msgs), "no attachment")
        self.assertTrue(any(b"multipart/alternative" in m for m in msgs), "no HTML alternative")
        self.assertTrue(any(b"In-Reply-To:" in m for m in msgs), "no reply")
        self.assertTrue(any(re.search(rb"^Subject: =\?UTF-8\?[BQ]\?", m, re.M) for m in msgs),
                        "no encoded-word subject")
        dotted = [m for m in msgs if re.search(rb"\r\n\.", m)]
        self.assertTrue(dotted, "no line starting with '.' (dot-stuffing)")
        self.assertTrue(any(b"\r\n.\r\n" in m for m in dotted), "no lone '.' line")

    def test_sample_eml_files_are_crlf(self):
        samples = sorted((harness.SOURCE_DIR / "tests" / "data").glob("*.eml"))
        self.assertTrue(samples, "tests/data/*.eml missing")
        for path in samples:
            data = path.read_bytes()
            self.assertNotIn(b"\n", data.replace(b"\r\n", b""), f"{path.name}: bare LF")
            self.assertTrue(data.endswith(b"\r\n"), f"{path.name}: no final CRLF")


class DovecotFixtureTest(unittest.TestCase):
    def check_roundtrip(self, dovecot, client, seeded):
        got = dovecot.pop3_fetch_all(client)
        self.assertEqual(len(got), len(seeded), "UIDL count differs from seeded count")
        self.assertEqual(len(set(got)), len(got), "duplicate UIDLs")
        for uidl in got:
            self.assertRegex(uidl, r"^[0-9A-Fa-f]{16}$", "pop3_uidl_format %08Xu%08Xv not applied")
        self.assertEqual(sorted(map(harness.sha256, got.values())),
                         sorted(map(harness.sha256, seeded)), "RETR bytes differ from seeded bytes")

    def test_plain_pop3_uidl_retr_byte_exact_and_upstream_state(self):
        seeded = harness.generate_messages(12, seed=7)
        with harness.Dovecot() as d:
            d.add_messages(seeded)
            self.assertEqual(d.upstream_hashes(), sorted(map(harness.sha256, seeded)))
            client = d.pop3()
            try:
                self.check_roundtrip(d, client, seeded)
            finally:
                client.quit()
            # Upstream read-back sees deletions: DELE 1 + QUIT removes one message.
            client = d.pop3()
            _resp, lines, _ = client.retr(1)
            gone = b"\r\n".join(lines) + b"\r\n"
            client.dele(1)
            client.quit()
            left = d.upstream_hashes()
            self.assertEqual(len(left), 11)
            self.assertNotIn(harness.sha256(gone), left)
            # Messages added while running are served too.
            extra = harness.generate_messages(2, seed=8)
            d.add_messages(extra)
            self.assertEqual(len(d.pop3_fetch_all()), 13)
            d.stop()
            self.assertIsNone(d.dir)

    def test_stls_and_implicit_tls(self):
        seeded = harness.generate_messages(4, seed=9)
        with harness.Dovecot(tls=True) as d:
            d.add_messages(seeded)
            client = d.pop3(stls=True)
            try:
                self.check_roundtrip(d, client, seeded)
            finally:
                client.quit()
            client = poplib.POP3_SSL(d.host, d.tls_port, context=d.ssl_context(), timeout=10)
            client.user(d.user)
            client.pass_(d.password)
            try:
                self.check_roundtrip(d, client, seeded)
            finally:
                client.quit()
            # The certificate also verifies for "localhost".
            client = poplib.POP3_SSL("localhost", d.tls_port, context=d.ssl_context(), timeout=10)
            client.quit()

    def test_wrong_password_is_refused(self):
        with harness.Dovecot() as d:
            client = poplib.POP3(d.host, d.port, timeout=10)
            client.user(d.user)
            with self.assertRaises(poplib.error_proto):
                client.pass_("wrong")
            client.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
