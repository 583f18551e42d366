#!/usr/bin/env python3
"""User isolation (issue 7, item 6): alice tries to reach bob's mail through every
mailbox-name trick, STATUS, LIST patterns and UIDs; bob's keywords never show up in
alice's PERMANENTFLAGS; IDLE notifications reach only the right user; nothing is created
on disk outside alice's own directory.
"""

import imaplib
import os
import select
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

MARKER = b"BOB-PRIVATE-7f3a9c"
BOB_KEYWORD = "BobSecretKeyword"

# Mailbox names alice sends, raw (already IMAP-quoted where needed).
TRICKS = [
    '"../bob"', '"../bob/INBOX"', '"../../users/bob"', '"../../users/bob/INBOX"',
    '"/etc/passwd"', '"/"', '".."', '"."', '"INBOX/../../bob"', '"INBOX/../bob/INBOX"',
    '"~bob"', '"~bob/INBOX"', '"#shared/bob"', '"#user/bob/INBOX"', '"bob"', '"bob/INBOX"',
    '"users/bob"', '"&AC8-bob"', '"&AC8ALgAu-bob"', '"..&AC8-bob"', '"&-bob"', '"&Jjo-"',
    '"&"', '"&AC8"', '"INBOX/"', '"/INBOX"', '"%"', '"*"', '"\\\\bob"', '"a' + "b" * 300 + '"',
]


def command(client: imaplib.IMAP4, line: str) -> bytes:
    """Sends one raw tagged command and returns everything up to its tagged reply."""
    tag = client._new_tag().decode()
    client.send(f"{tag} {line}\r\n".encode())
    out = b""
    while True:
        chunk = client.readline()
        if not chunk:
            raise AssertionError(f"connection closed during {line!r}")
        out += chunk
        if chunk.startswith(tag.encode() + b" "):
            return out


class IsolationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pb = harness.Popbridge(upstream=None, user="alice", password="alice-pw")
        bob = cls.pb.accounts_dir / "bob.yaml"
        bob.write_text(f"user: bob\npassword_hash: {harness.yaml_str(harness.crypt_sha512('bob-pw'))}\n"
                       "upstreams: []\n")
        os.chmod(bob, 0o600)
        os.chmod(cls.pb.account_file, 0o600)
        cls.pb.start()
        bob_client = cls.login("bob", "bob-pw")
        msg = (b"From: bob@example.org\r\nSubject: private\r\n\r\n" + MARKER + b"\r\n")
        typ, _ = bob_client.append("INBOX", f"(\\Seen {BOB_KEYWORD})", None, msg)
        assert typ == "OK"
        typ, _ = bob_client.create("BobFolder")
        assert typ == "OK"
        bob_client.append("BobFolder", None, None, msg)
        bob_client.logout()
        cls.bob_dir = cls.pb.data_dir / "users" / "bob"

    @classmethod
    def tearDownClass(cls):
        cls.pb.stop()
        cls.pb.cleanup()

    @classmethod
    def login(cls, user: str, password: str) -> imaplib.IMAP4:
        c = imaplib.IMAP4("127.0.0.1", cls.pb.imap_port, timeout=15)
        c.login(user, password)
        return c

    def tree(self, root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*"))

    def test_mailbox_name_tricks_never_reach_bob(self):
        users = self.pb.data_dir / "users"
        before_users = sorted(p.name for p in users.iterdir())
        before_bob = self.tree(self.bob_dir)
        alice = None
        try:
            for name in TRICKS:
                # A fresh session per name: refused names count as bad commands, and the
                # server rightly hangs up after 20 of them.
                if alice is not None:
                    alice.logout()
                alice = self.login("alice", "alice-pw")
                for verb in ("SELECT", "EXAMINE", "STATUS {} (MESSAGES UIDNEXT)",
                             "LIST \"\" {}", "LIST {} \"*\"", "CREATE {}", "SUBSCRIBE {}",
                             "DELETE {}", "RENAME {} \"x\"", "APPEND {} {{3+}}\r\nabc"):
                    line = verb.format(name) if "{}" in verb else f"{verb} {name}"
                    reply = command(alice, line)
                    self.assertNotIn(MARKER, reply, line)
                    self.assertNotIn(b"BobFolder", reply, line)
                    self.assertNotIn(BOB_KEYWORD.encode(), reply, line)
                    if verb in ("SELECT", "EXAMINE") and b" OK " in reply.splitlines()[-1]:
                        # Whatever got selected is alice's own: fetch everything in it.
                        body = command(alice, "UID FETCH 1:* (BODY.PEEK[] FLAGS)")
                        self.assertNotIn(MARKER, body, line)
                        command(alice, "UNSELECT")
            # LIST with every pattern shows only alice's folders.
            for pattern in ('"*"', '"%"', '"%/%"', '"*/*"', '"../*"', '"/*"'):
                reply = command(alice, f'LIST "" {pattern}')
                self.assertNotIn(b"BobFolder", reply, pattern)
        finally:
            if alice is not None:
                alice.logout()
        self.assertEqual(self.tree(self.bob_dir), before_bob, "bob's files changed")
        after_users = sorted(p.name for p in users.iterdir())
        self.assertEqual(after_users, before_users, "a user directory appeared or vanished")
        for p in self.pb.data_dir.rglob("*"):
            self.assertTrue(p.resolve().is_relative_to(self.pb.data_dir.resolve()), p)

    def test_control_bob_sees_his_own_mail(self):
        # The checks above look for MARKER and BOB_KEYWORD in replies: prove that the same
        # commands do show them to their owner.
        bob = self.login("bob", "bob-pw")
        try:
            self.assertIn(BOB_KEYWORD.encode(), command(bob, "SELECT INBOX"))
            self.assertIn(MARKER, command(bob, "UID FETCH 1:* (BODY.PEEK[] FLAGS)"))
            self.assertIn(b"BobFolder", command(bob, 'LIST "" "*"'))
        finally:
            bob.logout()

    def test_uids_and_keywords_stay_per_user(self):
        alice = self.login("alice", "alice-pw")
        try:
            reply = command(alice, "SELECT INBOX")
            self.assertNotIn(BOB_KEYWORD.encode(), reply, "bob's keyword in alice's FLAGS")
            # Bob's message has UID 1 in his INBOX; alice's INBOX is empty: nothing to see.
            for seq in ("UID FETCH 1:* (BODY.PEEK[])", "UID FETCH 1 (BODY.PEEK[])",
                        "UID FETCH 4294967295 (FLAGS)", "UID SEARCH ALL", "SEARCH TEXT private",
                        "UID COPY 1 INBOX", "UID MOVE 1 INBOX", "UID STORE 1 +FLAGS (\\Deleted)"):
                out = command(alice, seq)
                self.assertNotIn(MARKER, out, seq)
                self.assertNotIn(b"private", out.split(b"\r\n", 1)[-1] if seq.startswith("SEARCH") else out, seq)
        finally:
            alice.logout()

    def test_idle_notifications_reach_only_their_user(self):
        alice = self.login("alice", "alice-pw")
        bob = self.login("bob", "bob-pw")
        try:
            command(alice, "SELECT INBOX")
            tag = alice._new_tag().decode()
            alice.send(f"{tag} IDLE\r\n".encode())
            self.assertTrue(alice.readline().startswith(b"+"))
            # Bob's new message must not wake alice. Proving that something does not happen
            # needs a window: 1.5 s, far above the push latency (< 1 ms after the commit).
            bob.append("INBOX", None, None, b"Subject: for bob\r\n\r\n" + MARKER + b"\r\n")
            readable, _, _ = select.select([alice.sock], [], [], 1.5)
            self.assertEqual(readable, [], "alice's IDLE woke up for bob's message")
            # Her own new message does wake her (the control that proves IDLE works here).
            other = self.login("alice", "alice-pw")
            other.append("INBOX", None, None, b"Subject: for alice\r\n\r\nhello\r\n")
            other.logout()
            readable, _, _ = select.select([alice.sock], [], [], 5)
            self.assertEqual(readable, [alice.sock], "no EXISTS for alice's own message")
            self.assertRegex(alice.readline(), rb"^\* \d+ EXISTS")
            alice.send(b"DONE\r\n")
            while not alice.readline().startswith(tag.encode()):
                pass
        finally:
            bob.logout()
            alice.logout()


if __name__ == "__main__":
    unittest.main(verbosity=2)
