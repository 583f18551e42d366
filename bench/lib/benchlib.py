"""Shared pieces of the popbridge benchmarks (python3 standard library only).

  corpus(n, seed)             the deterministic benchmark corpus, cached on disk
  Upstream                    a private Dovecot (POP3 + IMAP) on 127.0.0.1, seeded from a corpus
  PopbridgeRun                popbridge with its own config and data dir, measured from /proc
  timed(cmd)                  run a command under /usr/bin/time: wall, CPU (incl. children), peak RSS
  proc_cpu / proc_hwm / tree_pss   /proc readers
  Table                       medians, ratios, markdown output
  machine_facts()             CPU, cores, RAM, disk, kernel, package versions, fsync latency

It reuses tests/integration/harness.py for free ports, waits, password hashes and
process termination, and never modifies it. Everything is started on loopback,
in temporary directories, and stopped by stop()/cleanup() (also at exit).
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import email.utils
import datetime as _dt
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

BENCH_DIR = Path(__file__).resolve().parents[1]
SOURCE_DIR = BENCH_DIR.parent
sys.path.insert(0, str(SOURCE_DIR / "tests" / "integration"))
import harness  # noqa: E402  (free_port, wait_until, crypt_sha512, _terminate, ...)

from harness import free_port, wait_until, WaitAborted, crypt_sha512, yaml_str  # noqa: E402,F401

BUILD_DIR = Path(os.environ.get("POPBRIDGE_BENCH_BUILD") or SOURCE_DIR / "build-bench")
CACHE_DIR = BUILD_DIR / "cache"
RESULTS_DIR = BUILD_DIR / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

_live: list = []
_groups: set[int] = set()  # process groups of commands running under timed()


@atexit.register
def _stop_all() -> None:
    for pgid in list(_groups):
        with contextlib.suppress(OSError):
            os.killpg(pgid, signal.SIGKILL)
    for thing in reversed(list(_live)):
        with contextlib.suppress(Exception):
            thing.stop()


# SIGTERM / SIGHUP end the run through the atexit cleanup above.
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, lambda signum, _frame: sys.exit(128 + signum))


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def raise_nofile(want: int = 1 << 20) -> int:
    """Raise the soft RLIMIT_NOFILE as far as the hard limit allows; return it.
    Children (popbridge, Dovecot, clients) inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.geteuid() == 0 and hard < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
            return want
    target = min(want, hard) if hard != resource.RLIM_INFINITY else want
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

_WORDS = ("the invoice for march is attached please review before friday meeting schedule "
          "project update server migration backup mailbox quota customer support ticket "
          "release notes deadline budget draft agenda minutes travel booking receipt "
          "confirmation password reset newsletter weekly report numbers look good thanks "
          "regards team office holiday lunch on tuesday").split()
_SENDERS = [("Alice Martin", "alice@example.org"), ("Bob Okafor", "bob@example.net"),
            ("Dmitri Ivanov", "dmitri@example.com"), ("Fumiko Sato", "fumiko@example.jp"),
            ("Billing", "billing@shop.example"), ("Newsletter", "news@lists.example.com")]
# A word that appears in no message of any corpus (for SEARCH TEXT that must scan everything).
ABSENT_WORD = "quixotically"
# A word that appears in about 1 message out of 50 (in the body of text messages).
RARE_WORD = "zeppelin"


def _text_lines(rng: random.Random, size: int) -> list[str]:
    lines, total = [], 0
    while total < size:
        line = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(6, 12))).capitalize()[:76]
        if rng.random() < 0.1:
            line = ""
        elif rng.random() < 0.01:
            line = "." + line  # dot-stuffed on the wire
        lines.append(line)
        total += len(line) + 2
    return lines


def make_message(i: int, rng: random.Random, kind: str, size: int) -> bytes:
    """One RFC 5322 message, CRLF line ends. kind: text | attach; size: target total bytes."""
    name, addr = _SENDERS[rng.randrange(len(_SENDERS))]
    date = _dt.datetime(2025, 3, 3, 8, 0, tzinfo=_dt.timezone.utc) + _dt.timedelta(minutes=7 * i)
    subject = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 7))).capitalize()
    head = [f"Return-Path: <{addr}>",
            f"Received: from mx{i % 3}.example.net (mx{i % 3}.example.net [192.0.2.{10 + i % 200}])",
            f"\tby pop.example.net with ESMTPS id {rng.getrandbits(40):010x}",
            f"\tfor <bench@example.net>; {email.utils.format_datetime(date)}",
            f"Date: {email.utils.format_datetime(date)}",
            f"From: {name} <{addr}>",
            "To: Bench User <bench@example.net>",
            f"Subject: {subject} #{i}",
            f"Message-ID: <bench.{i}.{rng.getrandbits(48):012x}@corpus.popbridge.test>",
            "MIME-Version: 1.0"]
    if kind == "text":
        head += ["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit"]
        body = _text_lines(rng, max(200, size - 700))
        if i % 50 == 7:
            body.insert(len(body) // 2, f"The {RARE_WORD} arrives on tuesday")
    else:
        boundary = f"=_bench_{i}_{rng.getrandbits(32):08x}"
        head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
        text = _text_lines(rng, 600)
        raw = rng.randbytes(max(1000, (size - 1500) * 3 // 4))
        enc = base64.b64encode(raw).decode("ascii")
        fname = f"attachment-{i:05d}.pdf"
        body = (["This is a multi-part message in MIME format.", "", f"--{boundary}",
                 "Content-Type: text/plain; charset=us-ascii", ""] + text +
                ["", f"--{boundary}", f'Content-Type: application/pdf; name="{fname}"',
                 "Content-Transfer-Encoding: base64",
                 f'Content-Disposition: attachment; filename="{fname}"', ""] +
                [enc[k:k + 76] for k in range(0, len(enc), 76)] + ["", f"--{boundary}--"])
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode("ascii")


def corpus_spec(i: int, rng: random.Random, profile: str) -> tuple[str, int]:
    if profile == "tiny":
        return "text", rng.randint(800, 1200)
    r = rng.random()
    if r < 0.6:
        return "text", rng.randint(2_000, 10_000)
    if r < 0.9:
        return "attach", rng.randint(20_000, 100_000)
    return "attach", rng.randint(500_000, 2_000_000)


def corpus(n: int, seed: int = 8, profile: str = "mixed") -> Path:
    """Directory with n message files 00000.eml ... (cached under build-bench/cache).
    profile mixed: 60% 2-10 KB text, 30% 20-100 KB with an attachment, 10% 0.5-2 MB with an
    attachment. profile tiny: ~1 KB text messages. Deterministic for (n, seed, profile)."""
    d = CACHE_DIR / f"corpus-{profile}-{n}-s{seed}"
    if (d / "DONE").exists():
        return d
    log(f"generating corpus {d.name} ...")
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    rng = random.Random(seed)
    total = 0
    for i in range(n):
        kind, size = corpus_spec(i, rng, profile)
        data = make_message(i, rng, kind, size)
        (d / f"{i:06d}.eml").write_bytes(data)
        total += len(data)
    (d / "DONE").write_text(json.dumps({"messages": n, "bytes": total}))
    log(f"corpus {d.name}: {n} messages, {total / 1e6:.1f} MB")
    return d


def corpus_info(d: Path) -> dict:
    return json.loads((d / "DONE").read_text())


# --------------------------------------------------------------------------
# Dovecot: POP3 upstream and IMAP peer
# --------------------------------------------------------------------------

class Upstream:
    """A private Dovecot on 127.0.0.1 with POP3 (port) and IMAP (imap_port; imaps_port with
    TLS), one user, mailbox seeded from a corpus directory. Tuned the way Dovecot's docs
    recommend for many connections: imap-login in high-performance mode, several clients per
    imap process (imap_client_limit), optionally IDLE connections hibernated after 5 s
    (hibernate=True), no per-user connection cap."""

    def __init__(self, user: str = "bench", password: str = "bench-secret", tls: bool = False,
                 imap_client_limit: int = 1, hibernate: bool = False):
        self.user, self.password, self.tls = user, password, tls
        self.imap_client_limit = imap_client_limit
        self.hibernate = hibernate
        self.host = "127.0.0.1"
        self.dir: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self.port = self.imap_port = 0
        self.imaps_port: Optional[int] = None
        self.ca_file: Optional[Path] = None

    def start(self, seed_from: Optional[Path] = None, timeout: float = 60.0) -> "Upstream":
        import grp
        import pwd
        self.dir = Path(tempfile.mkdtemp(prefix="pbbench-dc-", dir=os.environ.get("PB_BENCH_TMP")))
        os.chmod(self.dir, 0o755)
        self.port, self.imap_port = free_port(), free_port()
        self.imaps_port = free_port() if self.tls else None
        if os.geteuid() == 0:
            internal, login, pw = "dovecot", "dovenull", pwd.getpwnam("dovecot")
        else:
            pw = pwd.getpwuid(os.getuid())
            internal = login = pw.pw_name
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.maildir = self.dir / "mail" / self.user
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        (self.dir / "home" / self.user).mkdir(parents=True)
        if seed_from is not None:
            self.seed(seed_from)
        for root, dirs, _files in os.walk(self.dir):
            for x in dirs:
                self._own(Path(root) / x)
        passwd = self.dir / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        os.chmod(passwd, 0o644)
        ssl_conf = "ssl = no\n"
        imaps = ""
        if self.tls:
            self._certs()
            ssl_conf = (f"ssl = yes\nssl_cert = <{self.dir}/server.pem\n"
                        f"ssl_key = <{self.dir}/server.key\n")
            imaps = (f"  inet_listener imaps {{\n    address = 127.0.0.1\n"
                     f"    port = {self.imaps_port}\n    ssl = yes\n  }}\n")
        self.log_file = self.dir / "dovecot.log"
        no_chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        group = grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name
        conf = f"""# written by bench/lib/benchlib.py
protocols = pop3 imap
listen = 127.0.0.1
base_dir = {self.dir}/run
state_dir = {self.dir}/state
instance_name = pbbench-{self.dir.name}
log_path = {self.log_file}
info_log_path = {self.log_file}
default_internal_user = {internal}
default_internal_group = {group}
default_login_user = {login}
first_valid_uid = {min(self.uid, 500) if self.uid else 1}
last_valid_uid = 0
mail_location = maildir:{self.dir}/mail/%u
mail_uid = {self.uid}
mail_gid = {self.gid}
pop3_uidl_format = %08Xu%08Xv
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_max_userip_connections = 100000
default_client_limit = 30000
default_process_limit = 30000
default_vsz_limit = 1G
imap_hibernate_timeout = {"5s" if self.hibernate else "0"}
{ssl_conf}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.dir}/home/%u
}}
service pop3-login {{
{no_chroot}  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service imap-login {{
{no_chroot}  service_count = 0
  process_min_avail = 2
  client_limit = 30000
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
{imaps}}}
service imap {{
  service_count = {0 if self.imap_client_limit > 1 else 1}
  client_limit = {self.imap_client_limit}
  process_limit = 30000
}}
service imap-hibernate {{
  client_limit = 30000
  unix_listener imap-hibernate {{
    mode = 0660
    group = {group}
  }}
}}
service anvil {{
{no_chroot}  client_limit = 70000
}}
service auth {{
  client_limit = 70000
}}
service stats {{
  client_limit = 70000
  unix_listener stats-reader {{
    user = {internal}
  }}
  unix_listener stats-writer {{
    user = {internal}
  }}
}}
"""
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(conf)
        os.chmod(self.conf, 0o644)
        self._stdout = open(self.dir / "dovecot.stdout", "wb")
        self.proc = subprocess.Popen([harness.which("dovecot"), "-F", "-c", str(self.conf)],
                                     stdout=self._stdout, stderr=subprocess.STDOUT,
                                     preexec_fn=harness._die_with_parent, start_new_session=True)
        _live.append(self)

        def greeted() -> bool:
            if self.proc.poll() is not None:
                raise WaitAborted(f"dovecot exited {self.proc.returncode}: "
                                  f"{harness.tail(self.dir / 'dovecot.stdout')}"
                                  f"{harness.tail(self.log_file)}")
            return harness.read_greeting(self.host, self.port).startswith(b"+OK")

        wait_until(greeted, timeout, "Dovecot POP3 greeting")
        log(f"dovecot: POP3 {self.port}, IMAP {self.imap_port}"
            + (f", IMAPS {self.imaps_port}" if self.tls else "") + f", dir {self.dir}")
        return self

    def seed(self, src: Path) -> None:
        """Copy the corpus files into new/ (Maildir names carrying S= and W= sizes)."""
        files = sorted(p for p in src.iterdir() if p.suffix == ".eml")
        for k, f in enumerate(files):
            size = f.stat().st_size
            name = f"{1700000000 + k}.M{k}P1.bench,S={size},W={size}"
            dst = self.maildir / "new" / name
            shutil.copyfile(f, dst)
            self._own(dst)

    def warm(self) -> None:
        """One POP3 session (UIDL + LIST) so that Dovecot's index exists before timing."""
        import poplib
        c = poplib.POP3(self.host, self.port, timeout=120)
        c.user(self.user)
        c.pass_(self.password)
        c.uidl()
        c.list()
        c.quit()

    def pids(self) -> list[int]:
        """Dovecot master and all its descendants."""
        return [self.proc.pid] + descendants(self.proc.pid) if self.proc else []

    def stop(self) -> None:
        if self.proc is not None:
            harness._terminate(self.proc, "dovecot")
            self.proc = None
            with contextlib.suppress(Exception):
                self._stdout.close()
        if self in _live:
            _live.remove(self)
        if self.dir is not None and os.environ.get("POPBRIDGE_KEEP_TMP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def _own(self, p: Path) -> None:
        if os.geteuid() == 0:
            os.chown(p, self.uid, self.gid)

    def _certs(self) -> None:
        make_certs(self.dir)
        self.ca_file = self.dir / "ca.pem"


def make_certs(d: Path) -> None:
    """CA + server cert for 127.0.0.1 in d (ca.pem, server.pem, server.key). ECDSA P-256, as
    a current deployment would use."""
    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-days", "2", "-subj", "/CN=popbridge bench CA", "-keyout", "ca.key", "-out", "ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-subj", "/CN=127.0.0.1", "-keyout", "server.key", "-out", "server.csr")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem")
    for name in ("ca.pem", "server.pem", "server.key"):
        os.chmod(d / name, 0o644 if name != "server.key" else 0o600)


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------

def proc_cpu(pid: int) -> float:
    """utime + stime of a live process (all its threads), seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_cpu_precise(pid: int) -> float:
    """CPU seconds of a live process with nanosecond resolution: the sum of the first field
    of /proc/<pid>/task/*/schedstat over its live threads (threads that already exited are
    missing; popbridge's loop and thread-pool threads live as long as the process)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
    return total / 1e9


def proc_status(pid: int, key: str) -> int:
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM, ...), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def proc_pss(pid: int) -> int:
    """Proportional set size in bytes (shared pages split between their users)."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    return 0


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def tree_memory(pids: Iterable[int]) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) over pids, bytes; vanished processes are skipped."""
    rss = pss = 0
    for p in pids:
        with contextlib.suppress(OSError, KeyError):
            rss += proc_status(p, "VmRSS")
            pss += proc_pss(p)
    return rss, pss


# --------------------------------------------------------------------------
# Running and timing commands
# --------------------------------------------------------------------------

def timed(cmd: list[str], env: Optional[dict] = None, cwd: Optional[Path] = None,
          timeout: float = 900, check: bool = True) -> dict:
    """Run cmd and wait4() it. Returns wall (s), cpu (user+sys s of the process and every
    descendant it waited for, microsecond resolution), rss_max (bytes, the largest single
    process of that tree), rc, out, err."""
    # Peak RSS comes from /usr/bin/time (%M): a child forked straight from this Python process
    # would report Python's own RSS, since the high-water mark survives exec().
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rss") as rssf:
        cmd = ["/usr/bin/time", "-o", rssf.name, "-f", "%M"] + cmd
        t0 = time.monotonic()
        # Own process group: a tool that drops privileges (setpriv) loses PDEATHSIG, so the
        # group is what the cleanup kills.
        p = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=err,
                             preexec_fn=harness._die_with_parent, start_new_session=True)
        _groups.add(p.pid)
        try:
            deadline = t0 + timeout
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    p.kill()
                    pid, status, ru = os.wait4(p.pid, 0)
                    break
                time.sleep(0.002)
        finally:
            with contextlib.suppress(OSError):
                os.killpg(p.pid, signal.SIGKILL)  # leftovers of the group, if any
            _groups.discard(p.pid)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        try:
            rss = int(rssf.read().split()[-1]) * 1024
        except (IndexError, ValueError):
            rss = 0
    if check and p.returncode != 0:
        raise RuntimeError(f"{cmd[5]} exited {p.returncode}\n--- stdout ---\n{stdout[-3000:]}"
                           f"\n--- stderr ---\n{stderr[-3000:]}")
    return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "rss_max": rss,
            "rc": p.returncode, "out": stdout, "err": stderr}


def count_files(d: Path) -> int:
    return sum(len(files) for _r, _d, files in os.walk(d))


def syscall_counts(cmd: list[str], names: str = "fsync,fdatasync,sync_file_range,syncfs",
                   env: Optional[dict] = None, cwd: Optional[Path] = None,
                   pid: Optional[int] = None, until: Optional[Callable[[], bool]] = None) -> dict:
    """strace -f -c counts of the given syscalls for a command (or attached to pid until
    until() is true). Used once per contender, outside the timed runs."""
    if not shutil.which("strace"):
        return {}
    with tempfile.NamedTemporaryFile("r", suffix=".strace") as tf:
        if pid is None:
            subprocess.run(["strace", "-f", "-c", "-e", f"trace={names}", "-o", tf.name] + cmd,
                           env=env, cwd=cwd, capture_output=True, timeout=900)
        else:
            p = subprocess.Popen(["strace", "-f", "-c", "-e", f"trace={names}", "-o", tf.name,
                                  "-p", str(pid)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            try:
                wait_until(until, 900, "the traced run to finish", 0.05)
            finally:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=30)
        out = {}
        for line in tf.read().splitlines():
            parts = line.split()
            if len(parts) >= 5 and parts[-1] in names.split(","):
                out[parts[-1]] = int(parts[3])
        return out


# --------------------------------------------------------------------------
# popbridge
# --------------------------------------------------------------------------

def popbridge_binary() -> Path:
    env = os.environ.get("POPBRIDGE_BIN")
    p = Path(env) if env else BUILD_DIR / "obj" / "proxy" / "popbridge"
    if not p.is_file():
        raise RuntimeError(f"{p} missing: run bench/build.sh (or set POPBRIDGE_BIN)")
    return p


class PopbridgeRun:
    """popbridge with a temp dir (config, accounts.d, data, log). upstream None: an account
    without upstreams (IMAP only). data_dir: use this data dir (e.g. a cached store) instead
    of a fresh one."""

    def __init__(self, upstream: Optional[Upstream], user: str = "bench",
                 password: str = "bench-imap", poll_every: str = "10s",
                 data_dir: Optional[Path] = None, tls: bool = False, log_level: str = "info",
                 extra_upstream: Optional[dict] = None):
        self.binary = popbridge_binary()
        self.user, self.password = user, password
        self.dir = Path(tempfile.mkdtemp(prefix="pbbench-pb-", dir=os.environ.get("PB_BENCH_TMP")))
        self.data_dir = data_dir or self.dir / "data"
        self.data_dir.mkdir(exist_ok=True, parents=True)
        (self.dir / "accounts.d").mkdir()
        self.imap_port = free_port()
        self.imaps_port = free_port() if tls else None
        self.log_file = self.dir / "popbridge.log"
        self.proc: Optional[subprocess.Popen] = None
        self.started_at = 0.0
        conf = [f"data_dir: {yaml_str(str(self.data_dir))}",
                f"accounts_dir: {yaml_str(str(self.dir / 'accounts.d'))}",
                "imap:", f'  listen: ["127.0.0.1:{self.imap_port}"]']
        if tls:
            make_certs(self.dir)
            self.ca_file = self.dir / "ca.pem"
            conf += [f'  listen_tls: ["127.0.0.1:{self.imaps_port}"]',
                     f"  tls: {{cert: {yaml_str(str(self.dir / 'server.pem'))}, "
                     f"key: {yaml_str(str(self.dir / 'server.key'))}}}"]
        conf.append(f"log: {{level: {log_level}, format: text}}")
        (self.dir / "popbridge.yaml").write_text("\n".join(conf) + "\n")
        acct = [f"user: {yaml_str(user)}", f"password_hash: {yaml_str(crypt_sha512(password))}"]
        if upstream is None:
            acct.append("upstreams: []")
        else:
            fields = {"name": "up", "host": upstream.host, "port": str(upstream.port),
                      "tls": "none", "allow_plaintext": "true",
                      "username": yaml_str(upstream.user), "auth": "pass",
                      "password": yaml_str(upstream.password), "poll_every": poll_every,
                      "keep_on_server": "true", "folder": "INBOX",
                      "max_message_size": "50MB"}
            fields.update(extra_upstream or {})
            acct.append("upstreams:")
            for k, (key, value) in enumerate(fields.items()):
                acct.append(("  - " if k == 0 else "    ") + f"{key}: {value}")
        (self.dir / "accounts.d" / f"{user}.yaml").write_text("\n".join(acct) + "\n")

    def start(self, wrap: Optional[list[str]] = None) -> "PopbridgeRun":
        """wrap: a command prefix (e.g. perf trace -s -o FILE --); pid is then the wrapper's."""
        logf = open(self.log_file, "ab")
        self.started_at = time.monotonic()
        try:
            self.proc = subprocess.Popen((wrap or []) + [str(self.binary), "--config",
                                                         str(self.dir / "popbridge.yaml")],
                                         stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir,
                                         preexec_fn=harness._die_with_parent, start_new_session=True)
        finally:
            logf.close()
        _live.append(self)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise WaitAborted(f"popbridge exited ({self.proc.returncode if self.proc else '-'}):\n"
                              f"{harness.tail(self.log_file)}")

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    _POLL = re.compile(r"poll account=\S+ new=(\d+) bytes=(\d+) [^\n]*?duration=(\d+)ms "
                       r"outcome=(\w+)")

    def polls(self) -> list[dict]:
        return [{"new": int(m[1]), "bytes": int(m[2]), "duration_ms": int(m[3]), "outcome": m[4]}
                for m in self._POLL.finditer(self.log_text())]

    def wait_polls(self, count: int, timeout: float, interval: float = 0.02) -> list[dict]:
        def check():
            self.alive()
            p = self.polls()
            return p if len(p) >= count else None
        try:
            return wait_until(check, timeout, f"{count} completed poll line(s)", interval)
        except TimeoutError as exc:
            raise RuntimeError(f"{exc}\n{harness.tail(self.log_file)}") from None

    def wait_imap(self, port: Optional[int] = None, timeout: float = 60.0) -> None:
        port = port or self.imap_port

        def greeted():
            self.alive()
            return harness.read_greeting("127.0.0.1", port).startswith(b"* OK")
        wait_until(greeted, timeout, f"popbridge IMAP greeting on {port}", 0.01)

    def stop(self) -> None:
        if self.proc is not None:
            harness._terminate(self.proc, "popbridge")
            self.proc = None
        if self in _live:
            _live.remove(self)

    def cleanup(self, keep_data: bool = False) -> None:
        self.stop()
        if os.environ.get("POPBRIDGE_KEEP_TMP") == "1":
            return
        if keep_data:
            for entry in self.dir.iterdir():
                if entry != self.data_dir:
                    shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------

def median(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


def fmt(x, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and x != x):
        return "n/a"
    if isinstance(x, str):
        return x
    if unit == "MiB":
        return f"{x / 1048576:.1f}"
    if unit == "KiB":
        return f"{x / 1024:.1f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    if abs(x) >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def save(name: str, text: str, data: dict) -> None:
    """Print the markdown and keep it with the raw numbers in build-bench/results/."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.md").write_text(text + "\n")
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(data, indent=1, default=str))
    print(text, flush=True)


# --------------------------------------------------------------------------
# Machine facts
# --------------------------------------------------------------------------

def _cmd(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def fsync_latency(n: int = 200) -> float:
    """Median seconds of write(4 KiB)+fsync on the bench temp dir's file system."""
    with tempfile.NamedTemporaryFile(dir=os.environ.get("PB_BENCH_TMP")) as f:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            f.write(b"x" * 4096)
            f.flush()
            os.fsync(f.fileno())
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def machine_facts() -> dict:
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
    tmp = os.environ.get("PB_BENCH_TMP") or tempfile.gettempdir()
    df = _cmd("df", "-hT", tmp).splitlines()[-1:]
    dev = _cmd("findmnt", "-no", "SOURCE,FSTYPE,OPTIONS", "-T", tmp)
    pkgs = {}
    for pkg in ("dovecot-core", "fetchmail", "getmail6", "mpop", "isync", "libssl3", "libuv1",
                "python3", "g++"):
        pkgs[pkg] = _cmd("dpkg-query", "-W", "-f=${Version}", pkg) or "?"
    commit = _cmd("git", "-C", str(SOURCE_DIR), "rev-parse", "--short", "HEAD")
    bench_commit = ""
    src = BUILD_DIR / "src" / ".bench-commit"
    if src.exists():
        bench_commit = src.read_text().strip()[:7]
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(mem / 1048576, 1),
            "kernel": platform.release(), "os": _cmd("cat", "/etc/debian_version"),
            "disk": (df[0] if df else "?") + f" ({dev})",
            "fsync_4k_ms": round(fsync_latency() * 1000, 2),
            "loadavg": open("/proc/loadavg").read().split()[:3],
            "packages": pkgs, "popbridge_commit": bench_commit or commit,
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}


def machine_pkg(pkg: str) -> str:
    return _cmd("dpkg-query", "-W", "-f=${Version}", pkg) or "?"
