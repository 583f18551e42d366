#!/usr/bin/env python3
"""curl as an IMAP client: lists mailboxes and fetches a message by UID
(imap://user:pass@127.0.0.1:port/INBOX;UID=1), byte-identical to what Dovecot served.

Needs POPBRIDGE_BIN, curl and dovecot.
"""

import subprocess
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


class CurlTest(unittest.TestCase):
    def test_list_and_fetch(self):
        curl = harness.which("curl")
        dovecot = harness.Dovecot().start()
        self.addCleanup(dovecot.stop)
        msg = harness.generate_messages(1, seed=7)[0]
        dovecot.add_message(msg)
        pb = harness.Popbridge(upstream=dovecot)
        self.addCleanup(pb.cleanup)
        pb.start()
        pb.wait_for(lambda: pb.message_count() >= 1, 30, "the message in INBOX")
        c = pb.imap()
        try:
            typ, _ = c.create("Projects/2026")
            self.assertEqual(typ, "OK")
        finally:
            harness.imap_logout(c)

        base = f"imap://{pb.user}:{pb.password}@127.0.0.1:{pb.imap_port}"
        r = subprocess.run([curl, "-sS", "--max-time", "20", base + "/"], capture_output=True,
                           timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        listing = r.stdout.decode()
        for name in ("INBOX", "Sent", "Trash", "Projects/2026"):
            self.assertRegex(listing, rf'\* LIST \([^)]*\) "/" "?{name}"?\r?\n',
                             f"{name} missing from:\n{listing}")
        self.assertRegex(listing, r'\* LIST \([^)]*\\HasChildren[^)]*\) "/" "?Projects"?')

        r = subprocess.run([curl, "-sS", "--max-time", "20", base + "/INBOX;UID=1"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(harness.sha256(r.stdout), harness.sha256(msg),
                         f"fetched {len(r.stdout)} bytes, upstream has {len(msg)}")
        self.assertEqual(pb.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
