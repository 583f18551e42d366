#!/usr/bin/env python3
"""Process hygiene at start (issue 7 item 8):

- core dumps off: /proc/<pid>/limits shows "Max core file size 0 0";
- not dumpable (PR_SET_DUMPABLE 0): the kernel then makes /proc/<pid>/* owned by root
  instead of the process's uid, and another process of the same uid cannot read
  /proc/<pid>/environ. To see that, the daemon runs as `nobody` when the test runs as root
  (as itself otherwise); a control process of the same uid shows the opposite;
- RLIMIT_NOFILE: the soft limit is raised to the hard limit; under `ulimit -n 64` (soft and
  hard) the daemon warns with the number and how to raise it, and still serves.
"""

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import unittest
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from authlib import attempt  # noqa: E402

NOBODY = 65534


def limits(pid: int) -> dict[str, list[str]]:
    out = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name = line[:26].strip()
        out[name] = line[26:].split()
    return out


def uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def preexec(uid: Optional[int], nofile: Optional[tuple[int, int]]):
    def run() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile)
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
        # After the uid change, which clears it: die with the test.
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    return run


class HygieneTest(unittest.TestCase):
    def start(self, nofile: Optional[tuple[int, int]] = None) -> harness.Popbridge:
        """The daemon as `nobody` when we are root (its files chowned), with `nofile`."""
        pb = harness.Popbridge(log_level="debug")
        self.addCleanup(pb.cleanup)
        self.run_as = NOBODY if os.geteuid() == 0 else None
        binary = pb.binary
        if self.run_as is not None:
            binary = pb.dir / "popbridge"
            shutil.copy2(pb.binary, binary)
            for root, dirs, files in os.walk(pb.dir):
                for name in dirs + files:
                    os.chown(os.path.join(root, name), NOBODY, NOBODY)
            os.chown(pb.dir, NOBODY, NOBODY)
        logf = open(pb.log_file, "ab")
        try:
            pb.proc = subprocess.Popen([str(binary), "--config", str(pb.config)], stdout=logf,
                                       stderr=subprocess.STDOUT, cwd=pb.dir,
                                       preexec_fn=preexec(self.run_as, nofile),
                                       start_new_session=True)
        finally:
            logf.close()
        harness._live.append(pb)

        def greeted() -> bool:
            if pb.proc.poll() is not None:
                raise harness.WaitAborted(f"exited with {pb.proc.returncode}")
            return harness.read_greeting("127.0.0.1", pb.imap_port).startswith(b"* OK")

        try:
            harness.wait_until(greeted, 20, "IMAP greeting")
        except (TimeoutError, harness.WaitAborted) as exc:
            raise AssertionError(f"{exc}\n{pb.log_since(0)}") from None
        return pb

    def control_process(self) -> subprocess.Popen:
        """A plain process with the daemon's uid (dumpable as usual)."""
        p = subprocess.Popen(["sleep", "60"], preexec_fn=preexec(self.run_as, None))
        self.addCleanup(p.wait)
        self.addCleanup(p.kill)
        return p

    def readable_by_daemon_uid(self, path: str) -> bool:
        r = subprocess.run(["cat", path], capture_output=True,
                           preexec_fn=preexec(self.run_as, None))
        return r.returncode == 0

    def test_no_core_dumps_and_not_dumpable(self):
        pb = self.start()
        pid = pb.proc.pid
        self.assertEqual(limits(pid)["Max core file size"][:2], ["0", "0"])
        daemon_uid = uid_of(pid)
        self.assertNotEqual(daemon_uid, 0, "the daemon must not run as root for this check")
        # Dumpable 0: /proc/<pid>/ files belong to root, not to the process's uid.
        self.assertEqual(os.stat(f"/proc/{pid}/status").st_uid, 0)
        self.assertFalse(self.readable_by_daemon_uid(f"/proc/{pid}/environ"))
        # Control: the same checks on an ordinary process of that uid come out the other way.
        ctl = self.control_process()
        self.assertEqual(uid_of(ctl.pid), daemon_uid)
        self.assertEqual(os.stat(f"/proc/{ctl.pid}/status").st_uid, daemon_uid)
        self.assertTrue(self.readable_by_daemon_uid(f"/proc/{ctl.pid}/environ"))
        # And the daemon still works: a login and a poll-free session.
        text, _ = attempt(pb.imap_port, pb.user, pb.password, "127.0.0.1")
        self.assertTrue(text.startswith(b"OK"), text)

    def test_low_open_file_limit_is_reported(self):
        pb = self.start(nofile=(64, 64))
        self.assertEqual(limits(pb.proc.pid)["Max open files"][:2], ["64", "64"])
        log = pb.wait_for(lambda: pb.log_since(0) if "open file limit" in pb.log_since(0)
                          else None, 10, "the open file limit warning")
        line = next(l for l in log.splitlines() if "open file limit" in l)
        for needle in (" warning ", "open file limit is 64 (hard limit 64), below the 1024",
                       "ulimit -n 1024", "LimitNOFILE=1024", "--ulimit nofile=1024:1024"):
            self.assertIn(needle, line)
        text, _ = attempt(pb.imap_port, pb.user, pb.password, "127.0.0.1")
        self.assertTrue(text.startswith(b"OK"), text)

    def test_soft_open_file_limit_is_raised_to_the_hard_limit(self):
        pb = self.start(nofile=(64, 4096))
        self.assertEqual(limits(pb.proc.pid)["Max open files"][:2], ["4096", "4096"])
        pb.wait_for(lambda: "open file limit 4096" in pb.log_since(0), 10,
                    "the debug line with the raised limit")
        self.assertNotIn("below the", pb.log_since(0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
