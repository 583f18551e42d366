#!/usr/bin/env python3
"""Walking-skeleton acceptance test.

Dovecot POP3 upstream with 50 generated messages -> popbridge -> python imaplib:
all 50 arrive byte-identical; UIDVALIDITY and UIDs survive a restart; the next
poll downloads nothing (log line with "poll", "account=alice/dovecot", "new=0");
upstream keeps all 50 (keep_on_server: true). Plus the command-line options
--check-config, --version and --help.

Needs POPBRIDGE_BIN (ctest sets it; default build/proxy/popbridge).
"""

import re
import sys
import tempfile
import unittest
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

N_MESSAGES = 50
SYNC_TIMEOUT = 60       # 50 messages (~2.5 MB) on loopback; the first poll is due within poll_every
NEXT_POLL_TIMEOUT = 35  # poll_every 10s plus jitter


def setUpModule():
    harness.popbridge_binary()  # a missing binary is an error with a clear message, not a skip


def project_version() -> str:
    text = (harness.SOURCE_DIR / "CMakeLists.txt").read_text()
    m = re.search(r"project\(\s*popbridge\s+VERSION\s+([0-9.]+)", text)
    return m.group(1) if m else ""


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.pb = harness.Popbridge(upstream=None)
        self.addCleanup(self.pb.cleanup)

    def output(self, result) -> str:
        return result.stdout + result.stderr

    def test_version(self):
        r = self.pb.run_cli("--version")
        self.assertEqual(r.returncode, 0, f"--version exited {r.returncode}: {self.output(r)}")
        version = project_version()
        self.assertIn(version, self.output(r), f"--version does not print {version}")

    def test_help(self):
        r = self.pb.run_cli("--help")
        self.assertEqual(r.returncode, 0, f"--help exited {r.returncode}: {self.output(r)}")
        for option in ("--config", "--check-config", "--version"):
            self.assertIn(option, self.output(r), f"--help does not mention {option}")

    def test_check_config_good(self):
        r = self.pb.run_cli("--config", str(self.pb.config), "--check-config")
        self.assertEqual(r.returncode, 0,
                         f"--check-config rejected a valid config (exit {r.returncode}):\n"
                         f"{self.output(r)}\n--- {self.pb.config} ---\n{self.pb.config.read_text()}")

    def test_check_config_unknown_key_names_file_and_line(self):
        lines = self.pb.config.read_text().splitlines()
        lines.insert(3, "bogus_option: 1")  # becomes line 4
        bad = self.pb.dir / "bad.yaml"
        bad.write_text("\n".join(lines) + "\n")
        r = self.pb.run_cli("--config", str(bad), "--check-config")
        out = self.output(r)
        self.assertNotEqual(r.returncode, 0, f"--check-config accepted an unknown key:\n{out}")
        self.assertIn("bad.yaml:4", out, f"error does not name bad.yaml:4:\n{out}")
        self.assertIn("bogus_option", out, f"error does not name the unknown key:\n{out}")


class SkeletonSyncTest(unittest.TestCase):
    def test_fifty_messages_survive_restart_without_duplicates(self):
        seeded = harness.generate_messages(N_MESSAGES, seed=2025)
        want = sorted(harness.sha256(m) for m in seeded)
        self.assertEqual(len(set(want)), N_MESSAGES)
        harness.log(f"seeding {N_MESSAGES} messages, {sum(map(len, seeded)) / 1e6:.2f} MB, "
                    f"largest {max(map(len, seeded)) / 1e6:.2f} MB")

        dovecot = harness.Dovecot().start()
        self.addCleanup(dovecot.stop)
        dovecot.add_messages(seeded)

        pb = harness.Popbridge(upstream=dovecot, poll_every="10s", keep_on_server="true")
        self.addCleanup(pb.cleanup)
        pb.start()

        # 1. Every message arrives, byte-identical.
        pb.wait_for(lambda: pb.message_count() >= N_MESSAGES, SYNC_TIMEOUT,
                    f"{N_MESSAGES} messages in INBOX over IMAP")
        uid_validity, by_uid = pb.fetch_all()
        self.check_same_messages(by_uid, want, "after first sync")
        # The poll line may be written just after the last message becomes visible.
        pb.wait_for(lambda: sum(pb.poll_counts()) >= N_MESSAGES, 15,
                    "poll lines (poll ... account=alice/dovecot ... new=N) adding up to "
                    f"new={N_MESSAGES} in the log")
        first_run_polls = pb.poll_counts()
        self.assertEqual(sum(first_run_polls), N_MESSAGES,
                         f"poll lines report new={first_run_polls}, expected a total of {N_MESSAGES}")
        uid_to_hash = {uid: harness.sha256(body) for uid, body in by_uid.items()}

        # 2. Restart: same UIDVALIDITY, same UID -> message.
        pb.restart()
        uid_validity2, by_uid2 = pb.fetch_all()
        self.assertEqual(uid_validity2, uid_validity, "UIDVALIDITY changed across a restart")
        self.assertEqual({u: harness.sha256(b) for u, b in by_uid2.items()}, uid_to_hash,
                         "UID -> message map changed across a restart")

        # 3. The next poll downloads nothing.
        pb.wait_for(lambda: 0 in pb.poll_counts(), NEXT_POLL_TIMEOUT,
                    "a poll line with new=0 for account=alice/dovecot after the restart")
        after = pb.poll_counts()
        self.assertEqual(sum(after), 0, f"polls after restart downloaded again: new={after}")
        uid_validity3, by_uid3 = pb.fetch_all()
        self.assertEqual(uid_validity3, uid_validity)
        self.check_same_messages(by_uid3, want, "after the post-restart poll")
        self.assertEqual(set(by_uid3), set(uid_to_hash), "UIDs changed after the post-restart poll")

        # 4. keep_on_server: true -> upstream untouched.
        self.assertEqual(dovecot.upstream_hashes(), want, "upstream lost or changed messages")

        code = pb.stop()
        self.assertEqual(code, 0, f"popbridge exited with code {code} on SIGTERM")

    def check_same_messages(self, by_uid, want, when):
        got = [harness.sha256(b) for b in by_uid.values()]
        dups = [h[:12] for h, c in Counter(got).items() if c > 1]
        self.assertFalse(dups, f"{when}: duplicated messages {dups}")
        missing = set(want) - set(got)
        extra = set(got) - set(want)
        self.assertFalse(missing or extra,
                         f"{when}: {len(missing)} upstream messages missing or altered, "
                         f"{len(extra)} unexpected messages; sizes got "
                         f"{sorted(len(b) for b in by_uid.values())[:10]}...")
        self.assertEqual(len(got), N_MESSAGES, f"{when}: {len(got)} messages, want {N_MESSAGES}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
