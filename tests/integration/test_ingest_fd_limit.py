#!/usr/bin/env python3
"""Ingest of many small messages under a low open-file limit.

Each downloaded message holds an open file until its group commit. A fast upstream on a
slow disk used to pile up thousands of them and fail the poll with "Too many open files"
(found by bench/open_time.py). popbridge now stops reading from the server while too many
commits are pending. Here popbridge runs with `ulimit -n 256` and must still store all
3,000 messages, each exactly once and byte-identical.
"""

import hashlib
import os
import stat
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

N = 3000
FD_LIMIT = 256


def small_message(i: int) -> bytes:
    body = "".join(f"line {j} of message {i}\r\n" for j in range(20))
    return (f"From: sender{i}@example.org\r\nTo: alice@example.net\r\n"
            f"Subject: small {i}\r\nMessage-ID: <small-{i}@example.org>\r\n"
            f"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\n\r\n{body}").encode()


class IngestUnderFdLimit(unittest.TestCase):
    def test_many_small_messages_with_few_file_descriptors(self):
        messages = [small_message(i) for i in range(N)]
        with harness.Dovecot() as dovecot:
            dovecot.add_messages(messages)
            pb = harness.Popbridge(upstream=dovecot, poll_every="10s")
            try:
                wrapper = pb.dir / "popbridge-lowfd.sh"
                wrapper.write_text(f"#!/bin/sh\nulimit -n {FD_LIMIT} || exit 97\n"
                                   f"exec {pb.binary} \"$@\"\n")
                wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
                pb.binary = wrapper
                pb.start()
                pb.wait_for(lambda: pb.message_count() >= N, 180,
                            f"{N} messages in INBOX with ulimit -n {FD_LIMIT}")
                log = pb.log_since(pb.log_offset)
                self.assertNotIn("Too many open files", log)
                _, stored = pb.fetch_all()
                self.assertEqual(len(stored), N, "message count over IMAP")
                want = sorted(hashlib.sha256(m).hexdigest() for m in messages)
                got = sorted(hashlib.sha256(b).hexdigest() for b in stored.values())
                self.assertEqual(got, want, "stored bytes differ from the upstream messages")
            finally:
                pb.stop()
                pb.cleanup()


if __name__ == "__main__":
    unittest.main(verbosity=2)
