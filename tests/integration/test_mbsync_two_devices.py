#!/usr/bin/env python3
"""Two mbsync "devices" (laptop and phone) share one popbridge account.

Dovecot POP3 upstream with 5 messages -> popbridge -> mbsync laptop and mbsync phone, each
syncing every folder into its own local Maildir (Create/Expunge/Remove Both). Then:
  1. both devices see the 5 messages;
  2. a flag set on the laptop (Flagged, Seen) reaches the phone;
  3. the laptop moves a message into a new folder "Projects": the phone gets the folder
     with that message, and the INBOX copy is gone there;
  4. a deletion on the phone (trashed + expunged) disappears on the laptop.
Each step checks the popbridge side over imaplib as well.

Needs POPBRIDGE_BIN, mbsync (isync) and dovecot.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

N = 5


def maildir_messages(folder: Path) -> dict[str, str]:
    """{Message-ID-ish key: maildir flags} of cur/ + new/ in one local Maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        d = folder / sub
        if not d.is_dir():
            continue
        for f in d.iterdir():
            key = None
            with open(f, "rb") as fh:
                for line in fh:
                    if line in (b"\r\n", b"\n"):
                        break
                    if line.lower().startswith(b"subject:"):
                        key = line.split(b":", 1)[1].strip().decode("utf-8", "replace")
                        break
            flags = f.name.split(":2,", 1)[1] if ":2," in f.name else ""
            out[key or f.name] = flags
    return out


def find_message(folder: Path, subject: str) -> Path:
    for sub in ("cur", "new"):
        for f in (folder / sub).iterdir():
            if re.search(rb"^Subject: " + re.escape(subject.encode()) + rb"\r?$", f.read_bytes(),
                         re.M):
                return f
    raise AssertionError(f"no message '{subject}' in {folder}")


def set_maildir_flags(path: Path, flags: str) -> Path:
    """Rename into cur/ with the given Maildir flags (what a mail client does)."""
    base = path.name.split(":2,", 1)[0]
    new = path.parent.parent / "cur" / f"{base}:2,{flags}"
    path.rename(new)
    return new


class Device:
    def __init__(self, name: str, pb: harness.Popbridge, root: Path):
        self.name = name
        self.dir = root / name
        self.mail = self.dir / "Mail"
        self.mail.mkdir(parents=True)
        self.conf = self.dir / "mbsyncrc"
        pwfile = self.dir / "pw"
        pwfile.write_text(pb.password)
        self.conf.write_text(f"""\
IMAPAccount pb
Host 127.0.0.1
Port {pb.imap_port}
User {pb.user}
PassCmd "cat {pwfile}"
SSLType None
AuthMechs LOGIN

IMAPStore remote
Account pb

MaildirStore local
Path {self.mail}/
Inbox {self.mail}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns *
Create Both
Remove Both
Expunge Both
SyncState *
""")

    def sync(self) -> str:
        r = subprocess.run([harness.which("mbsync"), "-c", str(self.conf), "-a"],
                           capture_output=True, text=True, timeout=60)
        out = r.stdout + r.stderr
        if r.returncode != 0:
            raise AssertionError(f"mbsync ({self.name}) exited {r.returncode}:\n{out}")
        return out

    def folder(self, name: str) -> Path:
        return self.mail / name

    def messages(self, name: str = "INBOX") -> dict[str, str]:
        return maildir_messages(self.folder(name))


class MbsyncTwoDevicesTest(unittest.TestCase):
    def setUp(self):
        harness.which("mbsync")
        dovecot = harness.Dovecot().start()
        self.addCleanup(dovecot.stop)
        msgs = []
        for i in range(N):
            msgs.append((f"From: sender{i}@example.org\r\nTo: alice@example.net\r\n"
                         f"Subject: message {i}\r\nMessage-ID: <m{i}@example.org>\r\n"
                         f"Date: Thu, 5 Mar 2026 10:0{i}:00 +0000\r\n\r\nBody of message {i}.\r\n")
                        .encode())
        dovecot.add_messages(msgs)
        self.pb = harness.Popbridge(upstream=dovecot, poll_every="10s")
        self.addCleanup(self.pb.cleanup)
        self.pb.start()
        self.pb.wait_for(lambda: self.pb.message_count() >= N, 60, f"{N} messages in INBOX")
        self.root = Path(tempfile.mkdtemp(prefix="pbmbsync-"))
        self.addCleanup(shutil.rmtree, self.root, True)
        self.laptop = Device("laptop", self.pb, self.root)
        self.phone = Device("phone", self.pb, self.root)

    def server_flags(self, mailbox: str = "INBOX") -> dict[str, str]:
        c = self.pb.imap()
        try:
            typ, _ = c.select(f'"{mailbox}"', readonly=True)
            self.assertEqual(typ, "OK", f"EXAMINE {mailbox}")
            typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            out = {}
            for item in data:
                if isinstance(item, tuple):
                    subj = item[1].decode().split(":", 1)[1].strip()
                    out[subj] = item[0].decode()
            return out
        finally:
            harness.imap_logout(c)

    def test_flags_moves_and_deletions_reach_the_other_device(self):
        self.laptop.sync()
        self.phone.sync()
        for dev in (self.laptop, self.phone):
            self.assertEqual(len(dev.messages()), N, f"{dev.name} INBOX after first sync: "
                             f"{dev.messages()}")

        # 2. Laptop flags "message 1" (F) and reads it (S).
        set_maildir_flags(find_message(self.laptop.folder("INBOX"), "message 1"), "FS")
        self.laptop.sync()
        self.assertIn("\\Flagged", self.server_flags()["message 1"])
        self.phone.sync()
        self.assertEqual(self.phone.messages()["message 1"], "FS",
                         f"phone flags: {self.phone.messages()}")

        # 3. Laptop moves "message 2" into a new folder Projects.
        proj = self.laptop.folder("Projects")
        for sub in ("cur", "new", "tmp"):
            (proj / sub).mkdir(parents=True)
        src = find_message(self.laptop.folder("INBOX"), "message 2")
        # A move in a Maildir client: the message appears in Projects (without the UID
        # mbsync put in the file name) and leaves INBOX.
        data = src.read_bytes()
        src.unlink()
        (proj / "cur" / "1700000000.laptop.move:2,S").write_bytes(data)
        self.laptop.sync()
        self.assertIn("message 2", self.server_flags("Projects"))
        self.assertNotIn("message 2", self.server_flags("INBOX"))
        self.phone.sync()
        self.assertIn("message 2", self.phone.messages("Projects"),
                      f"phone Projects: {self.phone.messages('Projects')}")
        self.assertNotIn("message 2", self.phone.messages("INBOX"))

        # 4. Phone deletes "message 3" (Trashed flag; Expunge Both removes it).
        set_maildir_flags(find_message(self.phone.folder("INBOX"), "message 3"), "ST")
        self.phone.sync()
        self.assertNotIn("message 3", self.server_flags("INBOX"))
        self.laptop.sync()
        self.assertNotIn("message 3", self.laptop.messages("INBOX"),
                         f"laptop INBOX: {self.laptop.messages()}")
        self.assertEqual(set(self.laptop.messages("INBOX")), set(self.phone.messages("INBOX")))

        code = self.pb.stop()
        self.assertEqual(code, 0, f"popbridge exited with code {code}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
