"""Integration-test fixtures for popbridge (python3 standard library only).

What is here:
  free_port()                      a currently free TCP port on 127.0.0.1
  wait_until(pred, timeout, what)  poll pred() until truthy or raise TimeoutError
  generate_messages(n, seed)       deterministic RFC 5322 test messages (bytes, CRLF)
  Dovecot                          a private Dovecot POP3 server on loopback
  Popbridge                        the daemon under test with a temp data dir
  imap_login / imap_fetch_all      python imaplib helpers for the IMAP side
  sha256(data)                     hex digest, for "same bytes" checks

Every wait has a deadline; nothing sleeps blindly. Every process started here
is stopped by stop() (also at interpreter exit, and the kernel kills it if the
test process dies: PR_SET_PDEATHSIG). Set POPBRIDGE_KEEP_TMP=1 to keep the
temporary directories for inspection.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import datetime as _dt
import email.utils
import grp
import hashlib
import imaplib
import os
import poplib
import pwd
import random
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar

T = TypeVar("T")

SOURCE_DIR = Path(os.environ.get("POPBRIDGE_SOURCE_DIR") or Path(__file__).resolve().parents[2])
KEEP_TMP = os.environ.get("POPBRIDGE_KEEP_TMP") == "1"

_live: list = []  # fixtures to stop at interpreter exit


@atexit.register
def _stop_all() -> None:
    for fixture in list(_live):
        with contextlib.suppress(Exception):
            fixture.stop()


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the test process dies."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def log(msg: str) -> None:
    print(f"[harness {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WaitAborted(Exception):
    """Raised by a wait_until predicate to stop waiting at once (e.g. the process died)."""


def wait_until(pred: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call pred() until it returns something truthy; return it. Raise
    TimeoutError naming `what` after `timeout` seconds. Exceptions from pred()
    count as "not yet" (the last one is quoted in the error), except
    WaitAborted, which ends the wait immediately."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            value = pred()
            if value:
                return value
        except WaitAborted:
            raise
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


def read_greeting(host: str, port: int, timeout: float = 2.0, tls: Optional[ssl.SSLContext] = None) -> bytes:
    """Connect, read the first line the server sends, close."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        buf = b""
        while b"\n" not in buf:
            chunk = sock.recv(1024)
            if not chunk:
                break
            buf += chunk
        if tls:
            sock.close()
        return buf


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def which(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if not found:
        raise RuntimeError(f"'{name}' not found; run scripts/install-deps.sh as root")
    return found


def crypt_sha512(password: str) -> str:
    """crypt(3) SHA-512 hash ($6$...) made with the openssl CLI."""
    out = subprocess.run([which("openssl"), "passwd", "-6", password], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def yaml_str(value: str) -> str:
    """A YAML double-quoted scalar (JSON string syntax is valid YAML)."""
    import json
    return json.dumps(value)


def tail(path: Path, max_bytes: int = 6000) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    if len(data) > max_bytes:
        data = b"...\n" + data[-max_bytes:]
    return data.decode("utf-8", "replace")


# --------------------------------------------------------------------------
# Test messages
# --------------------------------------------------------------------------

_WORDS = ("the invoice for march is attached please review before friday meeting "
          "schedule project update server migration backup mailbox quota customer "
          "support ticket release notes deadline budget draft agenda minutes travel "
          "booking receipt confirmation password reset newsletter weekly report "
          "numbers look good thanks regards team office holiday lunch on tuesday").split()
_NAMES = [("Alice Martin", "alice@example.org"), ("Bob Okafor", "bob@example.net"),
          ("Chloé Dubois", "chloe@example.fr"), ("Dmitri Ivanov", "dmitri@example.com"),
          ("Eva Nováková", "eva@example.cz"), ("Fumiko Sato", "fumiko@example.jp"),
          ("Billing", "billing@shop.example"), ("Newsletter", "news@lists.example.com")]
# (subject as sent, charset) - encoded with RFC 2047 below.
_NON_ASCII_SUBJECTS = ["Réunion de l'équipe à 14h", "Grüße aus München – Fotos",
                       "Отчёт за неделю", "会議の議事録", "Zpráva: účet č. 42 ✓"]
_DOT_LINES = [".", "..", ".hidden lines start with a dot", "...and so on", ". leading dot and space"]


def _encoded_word(text: str, rng: random.Random) -> str:
    raw = text.encode("utf-8")
    if rng.random() < 0.5:
        return "=?UTF-8?B?" + base64.b64encode(raw).decode("ascii") + "?="
    q = "".join(chr(b) if (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122) else
                ("_" if b == 32 else f"={b:02X}") for b in raw)
    return "=?UTF-8?Q?" + q + "?="


def _paragraphs(rng: random.Random, size: int, dot_lines: bool) -> list[str]:
    """Text lines of at most 76 chars, about `size` bytes in total. No line starts
    with '.' unless dot_lines, which sprinkles a few that do (dot-stuffing)."""
    lines: list[str] = []
    total = 0
    while total < size:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(6, 12))]
        line = " ".join(words).capitalize()[:76]
        if rng.random() < 0.12:
            line = ""
        lines.append(line)
        total += len(line) + 2
    if dot_lines:
        for dot in _DOT_LINES:
            lines.insert(rng.randrange(1, len(lines)), dot)
    return lines


def _base64_lines(data: bytes) -> list[str]:
    enc = base64.b64encode(data).decode("ascii")
    return [enc[i:i + 76] for i in range(0, len(enc), 76)]


def generate_messages(n: int, seed: int = 1, big_index: Optional[int] = None) -> list[bytes]:
    """n deterministic, realistic RFC 5322 messages, CRLF line endings, each
    ending in CRLF, unique Message-IDs. Mix (by index): plain text 2-10 KB,
    multipart/alternative text+HTML, multipart/mixed with a base64 attachment
    of 20-100 KB, replies (In-Reply-To/References), RFC 2047 subjects, and
    some plain messages containing lines that start with '.' (dot-stuffing).
    Message `big_index` (default n // 2, if n >= 2) carries a ~1.2 MB
    attachment, so the message is over 1 MB."""
    rng = random.Random(seed)
    if big_index is None and n >= 2:
        big_index = n // 2
    base_date = _dt.datetime(2025, 3, 3, 8, 0, 0, tzinfo=_dt.timezone(_dt.timedelta(hours=1)))
    ids: list[str] = []
    out: list[bytes] = []
    for i in range(n):
        sender = _NAMES[rng.randrange(len(_NAMES))]
        date = base_date + _dt.timedelta(minutes=37 * i + rng.randint(0, 30))
        msgid = f"<{seed}.{i}.{rng.getrandbits(48):012x}@gen.popbridge.test>"
        kind = ("plain", "alternative", "attachment", "plain-dots", "reply", "plain")[i % 6]
        if i == big_index:
            kind = "big"
        if kind == "reply" and not ids:
            kind = "plain"
        if i % 4 == 1:
            subject = _encoded_word(_NON_ASCII_SUBJECTS[i % len(_NON_ASCII_SUBJECTS)], rng)
        else:
            subject = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 7))).capitalize()
        from_name = sender[0]
        if not from_name.isascii():
            from_name = _encoded_word(from_name, rng)
        headers = [
            f"Return-Path: <{sender[1]}>",
            f"Received: from mx{i % 3}.example.net (mx{i % 3}.example.net [192.0.2.{10 + i % 200}])",
            f"\tby pop.example.net with ESMTPS id {rng.getrandbits(40):010x}",
            f"\tfor <alice@example.net>; {email.utils.format_datetime(date)}",
            f"Date: {email.utils.format_datetime(date)}",
            f"From: {from_name} <{sender[1]}>",
            "To: Alice <alice@example.net>",
            f"Message-ID: {msgid}",
        ]
        if kind == "reply":
            parent = ids[rng.randrange(len(ids))]
            headers += [f"Subject: Re: {subject}", f"In-Reply-To: {parent}",
                        f"References: {parent}"]
        else:
            headers.append(f"Subject: {subject}")
        headers.append("MIME-Version: 1.0")
        body: list[str]
        if kind in ("plain", "plain-dots", "reply"):
            headers += ["Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit"]
            body = _paragraphs(rng, rng.randint(2000, 10000), dot_lines=(kind == "plain-dots"))
            if kind == "reply":
                body += ["", "On an earlier day someone wrote:"] + ["> " + l for l in _paragraphs(rng, 600, False)]
        elif kind == "alternative":
            boundary = f"=_alt_{seed}_{i}_{rng.getrandbits(32):08x}"
            headers.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            text = _paragraphs(rng, rng.randint(1500, 5000), False)
            html = ["<html><body>"] + [f"<p>{l}</p>" for l in text if l] + ["</body></html>"]
            body = (["This is a multi-part message in MIME format.", "", f"--{boundary}",
                     "Content-Type: text/plain; charset=us-ascii", "Content-Transfer-Encoding: 7bit", ""]
                    + text + ["", f"--{boundary}", "Content-Type: text/html; charset=us-ascii",
                              "Content-Transfer-Encoding: 7bit", ""] + html + ["", f"--{boundary}--"])
        else:  # attachment / big
            boundary = f"=_mix_{seed}_{i}_{rng.getrandbits(32):08x}"
            headers.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            size = 1_200_000 if kind == "big" else rng.randint(15_000, 75_000)  # base64: x4/3
            blob = rng.randbytes(size)
            name = f"scan-{i:03d}.pdf" if kind == "big" else f"report-{i:03d}.bin"
            body = (["This is a multi-part message in MIME format.", "", f"--{boundary}",
                     "Content-Type: text/plain; charset=us-ascii", ""]
                    + _paragraphs(rng, 800, False)
                    + ["", f"--{boundary}", f'Content-Type: application/octet-stream; name="{name}"',
                       "Content-Transfer-Encoding: base64",
                       f'Content-Disposition: attachment; filename="{name}"', ""]
                    + _base64_lines(blob) + ["", f"--{boundary}--"])
        ids.append(msgid)
        text = "\r\n".join(headers) + "\r\n\r\n" + "\r\n".join(body) + "\r\n"
        out.append(text.encode("utf-8"))
    return out


# --------------------------------------------------------------------------
# Dovecot POP3 upstream
# --------------------------------------------------------------------------

class Dovecot:
    """A private Dovecot serving POP3 on 127.0.0.1 only.

    d = Dovecot(tls=True); d.start(); d.add_messages(generate_messages(10))
    d.port (plain, STLS offered when tls=True), d.tls_port (implicit TLS or None),
    d.ca_file (CA that signed the server cert, CN/SAN 127.0.0.1 + localhost),
    d.user / d.password, d.upstream_messages() -> {maildir file name: bytes}.
    Runs as root (CI: internal user dovecot, login user dovenull, mail owned by
    dovecot) or as an ordinary user (everything runs as that user).
    """

    def __init__(self, user: str = "alice", password: str = "alice-pop-secret",
                 tls: bool = False, auth_mechanisms: str = "plain login"):
        self.user = user
        self.password = password
        self.tls = tls
        self.auth_mechanisms = auth_mechanisms
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_port: Optional[int] = None
        self.ca_file: Optional[Path] = None
        self.dir: Optional[Path] = None
        self.proc: Optional[subprocess.Popen] = None
        self._seq = 0

    # -- lifecycle --
    def start(self, timeout: float = 20.0) -> "Dovecot":
        binary = which("dovecot")
        self.dir = Path(tempfile.mkdtemp(prefix="pbdc-"))
        os.chmod(self.dir, 0o755)  # the mail uid and login processes must traverse it
        self.port = free_port()
        self.tls_port = free_port() if self.tls else None
        if os.geteuid() == 0:
            internal, login = "dovecot", "dovenull"
            mail_pw = pwd.getpwnam("dovecot")
        else:
            mail_pw = pwd.getpwuid(os.getuid())
            internal = login = mail_pw.pw_name
        self.mail_uid, self.mail_gid = mail_pw.pw_uid, mail_pw.pw_gid
        self.maildir = self.dir / "mail" / self.user
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True)
        (self.dir / "home" / self.user).mkdir(parents=True)
        for p in (self.dir / "mail", self.maildir, self.maildir / "cur", self.maildir / "new",
                  self.maildir / "tmp", self.dir / "home", self.dir / "home" / self.user):
            self._own(p)
        passwd = self.dir / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}::::::\n")
        os.chmod(passwd, 0o644)
        ssl_conf = "ssl = no\n"
        if self.tls:
            self._make_certs()
            ssl_conf = (f"ssl = yes\nssl_cert = <{self.dir}/server.pem\n"
                        f"ssl_key = <{self.dir}/server.key\n")
        tls_listener = (f"  inet_listener pop3s {{\n    address = 127.0.0.1\n    port = {self.tls_port}\n"
                        f"    ssl = yes\n  }}\n") if self.tls else ""
        self.log_file = self.dir / "dovecot.log"
        # Without root, Dovecot cannot chroot its login and anvil processes.
        no_chroot = "" if os.geteuid() == 0 else "  chroot =\n"
        conf = f"""# written by tests/integration/harness.py
protocols = pop3
listen = 127.0.0.1
base_dir = {self.dir}/run
state_dir = {self.dir}/state
instance_name = pbtest-{self.dir.name}
log_path = {self.log_file}
info_log_path = {self.log_file}
debug_log_path = {self.log_file}
default_internal_user = {internal}
default_internal_group = {grp.getgrgid(pwd.getpwnam(internal).pw_gid).gr_name}
default_login_user = {login}
first_valid_uid = {min(self.mail_uid, 500) if self.mail_uid else 1}
last_valid_uid = 0
mail_location = maildir:{self.dir}/mail/%u
mail_uid = {self.mail_uid}
mail_gid = {self.mail_gid}
pop3_uidl_format = %08Xu%08Xv
disable_plaintext_auth = no
auth_mechanisms = {self.auth_mechanisms}
{ssl_conf}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {passwd}
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={self.dir}/home/%u
}}
service pop3-login {{
{no_chroot}  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
{tls_listener}}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
{no_chroot}}}
service stats {{
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
        self.proc = subprocess.Popen([binary, "-F", "-c", str(self.conf)], stdout=self._stdout,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
                                     start_new_session=True)
        _live.append(self)

        def greeted() -> bool:
            if self.proc.poll() is not None:
                raise WaitAborted(f"dovecot exited with code {self.proc.returncode}:\n"
                                   f"{tail(self.dir / 'dovecot.stdout')}\n{tail(self.log_file)}")
            if self.log_file.exists() and "Fatal:" in self.log_file.read_text(errors="replace"):
                raise WaitAborted(f"dovecot logged a fatal error:\n{tail(self.log_file)}")
            return read_greeting(self.host, self.port).startswith(b"+OK")

        try:
            wait_until(greeted, timeout, f"Dovecot POP3 greeting on {self.host}:{self.port}")
        except (TimeoutError, WaitAborted) as exc:
            self.stop()
            raise RuntimeError(f"Dovecot did not start: {exc}") from None
        log(f"dovecot POP3 on {self.host}:{self.port}"
            + (f" (STLS; implicit TLS on {self.tls_port})" if self.tls else "") + f", dir {self.dir}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc, "dovecot")
            self.proc = None
            with contextlib.suppress(Exception):
                self._stdout.close()
        if self in _live:
            _live.remove(self)
        if self.dir is not None and not KEEP_TMP:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    def __enter__(self) -> "Dovecot":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- mailbox --
    def add_message(self, data: bytes) -> str:
        """Deliver one message (bytes exactly as they should be served) into new/."""
        assert self.dir is not None, "start() first"
        self._seq += 1
        name = f"{int(time.time())}.M{self._seq}P{os.getpid()}.pbtest,S={len(data)}"
        tmp = self.maildir / "tmp" / name
        tmp.write_bytes(data)
        self._own(tmp)
        os.rename(tmp, self.maildir / "new" / name)
        return name

    def add_messages(self, messages: Iterable[bytes]) -> list[str]:
        return [self.add_message(m) for m in messages]

    def upstream_messages(self) -> dict[str, bytes]:
        """Messages still in the mailbox (new/ and cur/), keyed by the base file
        name (the part before ':2,' flags), read straight from the Maildir."""
        assert self.dir is not None, "start() first"
        for _attempt in range(20):  # Dovecot may rename new/ -> cur/ under us
            result: dict[str, bytes] = {}
            try:
                for sub in ("new", "cur"):
                    for entry in sorted(os.listdir(self.maildir / sub)):
                        result[entry.split(":", 1)[0]] = (self.maildir / sub / entry).read_bytes()
                return result
            except FileNotFoundError:
                time.sleep(0.05)
        raise RuntimeError(f"Maildir {self.maildir} kept changing while being read")

    def upstream_hashes(self) -> list[str]:
        """Sorted SHA-256 digests of the messages still upstream (duplicates kept)."""
        return sorted(sha256(m) for m in self.upstream_messages().values())

    def pop3(self, stls: bool = False) -> poplib.POP3:
        """A logged-in poplib client (plain port; STLS first when stls=True)."""
        client = poplib.POP3(self.host, self.port, timeout=10)
        if stls:
            client.stls(context=self.ssl_context())
        client.user(self.user)
        client.pass_(self.password)
        return client

    def pop3_fetch_all(self, client: Optional[poplib.POP3] = None) -> dict[str, bytes]:
        """{UIDL: message bytes} via UIDL + RETR (dot-unstuffed, CRLF restored)."""
        own = client is None
        client = client or self.pop3()
        try:
            out: dict[str, bytes] = {}
            for line in client.uidl()[1]:
                num, uidl = line.decode("ascii").split()
                _resp, lines, _octets = client.retr(int(num))
                out[uidl] = b"\r\n".join(lines) + b"\r\n"
            return out
        finally:
            if own:
                client.quit()

    def ssl_context(self) -> ssl.SSLContext:
        assert self.ca_file is not None, "Dovecot(tls=True) needed"
        return ssl.create_default_context(cafile=str(self.ca_file))

    # -- internals --
    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            os.chown(path, self.mail_uid, self.mail_gid)

    def _make_certs(self) -> None:
        d = self.dir
        openssl = which("openssl")

        def run(*args: str) -> None:
            subprocess.run([openssl, *args], check=True, capture_output=True, cwd=d)

        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=popbridge test CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", "server.key", "-out", "server.csr")
        (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                      "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        run("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "server.ext", "-out", "server.pem")
        for name in ("ca.pem", "server.pem"):
            os.chmod(d / name, 0o644)
        os.chmod(d / "server.key", 0o600)  # read by the master (root) only
        self.ca_file = d / "ca.pem"


def _terminate(proc: subprocess.Popen, name: str, timeout: float = 10.0) -> None:
    """SIGTERM, wait up to `timeout`, then SIGKILL; finally SIGKILL whatever is
    left in the process group we created for it (start_new_session=True)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{name} ignored SIGTERM for {timeout:.0f}s; sending SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------
# popbridge
# --------------------------------------------------------------------------

def popbridge_binary() -> Path:
    env = os.environ.get("POPBRIDGE_BIN")
    # Resolved: popbridge runs with its temporary directory as working directory.
    path = (Path(env) if env else SOURCE_DIR / "build" / "proxy" / "popbridge").resolve()
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(f"popbridge binary not found or not executable: {path} "
                           "(set POPBRIDGE_BIN or run scripts/build.sh)")
    return path


# A poll line: contains "poll", "account=<user>/<upstream>" and "new=<n>".
def poll_line_regex(user: str, upstream: str) -> re.Pattern:
    return re.compile(r"^(?=.*poll)(?=.*\baccount=" + re.escape(f"{user}/{upstream}") +
                      r"(?:\s|$|,))(?=.*\bnew=(\d+)\b).*$", re.M)


class Popbridge:
    """The daemon under test, with its own temp dir:
        dir/popbridge.yaml, dir/accounts.d/<user>.yaml, dir/data/, dir/popbridge.log
    p = Popbridge(upstream=dovecot); p.start(); ...; p.restart(); p.stop()
    p.imap_port is a free loopback port; the log accumulates over restarts and
    p.log_offset marks where the current run's output starts.
    """

    def __init__(self, upstream: Optional[Dovecot] = None, user: str = "alice",
                 password: str = "alice-imap-secret", upstream_name: str = "dovecot",
                 poll_every: str = "10s", keep_on_server: str = "true",
                 upstream_extra: Optional[dict[str, str]] = None, log_level: str = "debug"):
        self.binary = popbridge_binary()
        self.upstream = upstream
        self.user = user
        self.password = password
        self.upstream_name = upstream_name
        self.dir = Path(tempfile.mkdtemp(prefix="pbtest-"))
        self.data_dir = self.dir / "data"
        self.accounts_dir = self.dir / "accounts.d"
        self.config = self.dir / "popbridge.yaml"
        self.log_file = self.dir / "popbridge.log"
        self.imap_port = free_port()
        self.proc: Optional[subprocess.Popen] = None
        self.log_offset = 0
        self.data_dir.mkdir()
        self.accounts_dir.mkdir()
        self.config.write_text(
            "# written by tests/integration/harness.py\n"
            f"data_dir: {yaml_str(str(self.data_dir))}\n"
            f"accounts_dir: {yaml_str(str(self.accounts_dir))}\n"
            "imap:\n"
            f"  listen: [\"127.0.0.1:{self.imap_port}\"]\n"
            f"log: {{level: {log_level}, format: text}}\n")
        lines = ["# written by tests/integration/harness.py", f"user: {yaml_str(user)}",
                 f"password_hash: {yaml_str(crypt_sha512(password))}"]
        if upstream is not None:
            fields = {"name": upstream_name, "host": upstream.host, "port": str(upstream.port),
                      "tls": "none", "allow_plaintext": "true", "username": yaml_str(upstream.user),
                      "auth": "pass", "password": yaml_str(upstream.password),
                      "poll_every": poll_every, "keep_on_server": keep_on_server, "folder": "INBOX"}
            fields.update(upstream_extra or {})
            lines.append("upstreams:")
            for i, (key, value) in enumerate(fields.items()):
                lines.append(("  - " if i == 0 else "    ") + f"{key}: {value}")
        else:
            lines.append("upstreams: []")
        self.account_file = self.accounts_dir / f"{user}.yaml"
        self.account_file.write_text("\n".join(lines) + "\n")

    # -- process --
    def run_cli(self, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
        """Run the binary once (e.g. --config FILE --check-config, --version); capture output."""
        return subprocess.run([str(self.binary), *args], capture_output=True, text=True,
                              timeout=timeout, preexec_fn=_die_with_parent)

    def start(self, timeout: float = 20.0) -> "Popbridge":
        self.log_offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        logf = open(self.log_file, "ab")
        try:
            self.proc = subprocess.Popen([str(self.binary), "--config", str(self.config)],
                                         stdout=logf, stderr=subprocess.STDOUT, cwd=self.dir,
                                         preexec_fn=_die_with_parent, start_new_session=True)
        finally:
            logf.close()
        if self not in _live:
            _live.append(self)

        def greeted() -> bool:
            if self.proc.poll() is not None:
                raise WaitAborted(f"popbridge exited with code {self.proc.returncode} before "
                                   f"accepting IMAP on 127.0.0.1:{self.imap_port}")
            return read_greeting("127.0.0.1", self.imap_port).startswith(b"* OK")

        try:
            wait_until(greeted, timeout, f"popbridge IMAP greeting '* OK' on 127.0.0.1:{self.imap_port}")
        except (TimeoutError, WaitAborted) as exc:
            self.kill9()
            raise RuntimeError(f"popbridge did not start: {exc}\n--- popbridge log ---\n"
                               f"{self.log_since(self.log_offset)}") from None
        log(f"popbridge IMAP on 127.0.0.1:{self.imap_port}, dir {self.dir}")
        return self

    def stop(self, timeout: float = 10.0) -> Optional[int]:
        """SIGTERM, wait, SIGKILL fallback. Returns the exit code (None if not running)."""
        if self.proc is None:
            return None
        _terminate(self.proc, "popbridge", timeout)
        code = self.proc.returncode
        self.proc = None
        return code

    def kill9(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None

    def restart(self, timeout: float = 20.0) -> "Popbridge":
        self.stop()
        return self.start(timeout)

    def cleanup(self) -> None:
        """stop() and remove the temp dir (kept with POPBRIDGE_KEEP_TMP=1)."""
        self.stop()
        if self in _live:
            _live.remove(self)
        if not KEEP_TMP:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Popbridge":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()

    # -- waiting and logs --
    def wait_for(self, predicate: Callable[[], T], timeout: float, what: str = "condition",
                 interval: float = 0.2) -> T:
        """wait_until, but fails early (with the log) if the daemon exits."""
        def check() -> T:
            if self.proc is not None and self.proc.poll() is not None:
                raise WaitAborted(f"popbridge exited with code {self.proc.returncode}")
            return predicate()

        try:
            return wait_until(check, timeout, what, interval)
        except (TimeoutError, WaitAborted) as exc:
            raise AssertionError(f"{exc}\n--- popbridge log (this run, tail) ---\n"
                                 f"{self.log_since(self.log_offset)[-6000:]}") from None

    def log_since(self, offset: int = 0) -> str:
        try:
            with open(self.log_file, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def poll_counts(self, since: Optional[int] = None) -> list[int]:
        """new=<n> of every completed poll line for this account, in order."""
        text = self.log_since(self.log_offset if since is None else since)
        rx = poll_line_regex(self.user, self.upstream_name)
        return [int(m.group(1)) for m in rx.finditer(text)]

    # -- IMAP --
    def imap(self) -> imaplib.IMAP4:
        return imap_login("127.0.0.1", self.imap_port, self.user, self.password)

    def fetch_all(self, mailbox: str = "INBOX") -> tuple[int, dict[int, bytes]]:
        client = self.imap()
        try:
            return imap_fetch_all(client, mailbox)
        finally:
            imap_logout(client)

    def message_count(self, mailbox: str = "INBOX") -> int:
        client = self.imap()
        try:
            typ, data = client.select(mailbox, readonly=True)
            if typ != "OK":
                raise RuntimeError(f"EXAMINE {mailbox}: {typ} {data}")
            return int(data[0])
        finally:
            imap_logout(client)


def imap_login(host: str, port: int, user: str, password: str, timeout: float = 15.0) -> imaplib.IMAP4:
    client = imaplib.IMAP4(host, port, timeout=timeout)
    client.login(user, password)
    return client


def imap_logout(client: imaplib.IMAP4) -> None:
    with contextlib.suppress(Exception):
        client.logout()
    with contextlib.suppress(Exception):
        client.shutdown()


_UID_RX = re.compile(rb"\bUID (\d+)")
_SIZE_RX = re.compile(rb"\bRFC822\.SIZE (\d+)")


def imap_fetch_all(client: imaplib.IMAP4, mailbox: str = "INBOX") -> tuple[int, dict[int, bytes]]:
    """EXAMINE mailbox, UID FETCH 1:* (UID RFC822.SIZE BODY.PEEK[]).
    Returns (UIDVALIDITY, {uid: bytes}); checks RFC822.SIZE == len(body)."""
    typ, data = client.select(mailbox, readonly=True)
    if typ != "OK":
        raise RuntimeError(f"EXAMINE {mailbox} failed: {typ} {data}")
    _typ, uv = client.response("UIDVALIDITY")
    if not uv or uv[0] is None:
        raise RuntimeError(f"EXAMINE {mailbox}: no [UIDVALIDITY n] response code")
    uid_validity = int(uv[0])
    if int(data[0] or 0) == 0:
        return uid_validity, {}
    typ, data = client.uid("FETCH", "1:*", "(UID RFC822.SIZE BODY.PEEK[])")
    if typ != "OK":
        raise RuntimeError(f"UID FETCH 1:* failed: {typ} {data}")
    messages: dict[int, bytes] = {}
    for k, part in enumerate(data):
        if not isinstance(part, tuple):
            continue
        meta = part[0]
        if k + 1 < len(data) and isinstance(data[k + 1], bytes):
            meta += data[k + 1]  # items after the literal, e.g. b" UID 7)"
        uid_m, size_m = _UID_RX.search(meta), _SIZE_RX.search(meta)
        if not uid_m:
            raise RuntimeError(f"FETCH response without UID: {meta[:200]!r}")
        uid, body = int(uid_m.group(1)), part[1]
        if uid in messages:
            raise RuntimeError(f"UID {uid} returned twice")
        if size_m and int(size_m.group(1)) != len(body):
            raise RuntimeError(f"UID {uid}: RFC822.SIZE {size_m.group(1).decode()} but BODY[] "
                               f"has {len(body)} bytes")
        messages[uid] = body
    return uid_validity, messages


def describe_bytes(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.1f} KB"


if __name__ == "__main__":  # quick manual check: start Dovecot, print how to reach it
    with Dovecot() as d:
        d.add_messages(generate_messages(3, seed=7))
        print(f"POP3 127.0.0.1:{d.port} user {d.user} password {d.password}; Ctrl-C to stop")
        with contextlib.suppress(KeyboardInterrupt):
            while d.proc and d.proc.poll() is None:
                time.sleep(1)
    sys.exit(0)


# --- Sanitizer runs (issue 7) -----------------------------------------------------------
# In the ASan/UBSan build, ctest sets POPBRIDGE_SANITIZER_CHECK=1 (tests/CMakeLists.txt) and
# ASAN_OPTIONS with abort_on_error=1, so a report ends the daemon with SIGABRT. Then
# Popbridge.stop() raises AssertionError when this run's log holds a sanitizer report or the
# daemon died of SIGABRT, instead of returning quietly: a leak at shutdown or UB in a
# request fails the test that caused it.
SANITIZER_CHECK = os.environ.get("POPBRIDGE_SANITIZER_CHECK") == "1"
_SANITIZER_RX = re.compile(r"ERROR: (?:AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)"
                           r"|SUMMARY: (?:Address|Leak|UndefinedBehavior)Sanitizer"
                           r"|^.*: runtime error: .*$", re.M)


def sanitizer_reports(text: str) -> list[str]:
    """The sanitizer report lines in a log text (empty if none)."""
    return [m.group(0) for m in _SANITIZER_RX.finditer(text)]


_unchecked_stop = Popbridge.stop


def _sanitizer_checked_stop(self: Popbridge, timeout: float = 10.0) -> Optional[int]:
    was_running = self.proc is not None
    offset = self.log_offset
    code = _unchecked_stop(self, timeout)
    if SANITIZER_CHECK and was_running:
        reports = sanitizer_reports(self.log_since(offset))
        if reports or code == -signal.SIGABRT:
            raise AssertionError(f"popbridge sanitizer report (exit code {code}): {reports[:5]}\n"
                                 f"--- popbridge log (this run, tail) ---\n"
                                 f"{self.log_since(offset)[-8000:]}")
    return code


Popbridge.stop = _sanitizer_checked_stop  # type: ignore[method-assign]


# --- Polls on demand (issue 4 leftovers) ------------------------------------------------
# Tests that need a second poll ask for it instead of waiting for poll_every (10 s minimum):
# with_admin(pb) before pb.start() adds an admin listener on a free loopback port;
# poll_now(pb) then POSTs /poll-now for the account and returns at once (202).
def with_admin(pb: Popbridge) -> int:
    port = free_port()
    with open(pb.config, "a") as f:
        f.write(f"admin: {{listen: \"127.0.0.1:{port}\"}}\n")
    pb.admin_port = port  # type: ignore[attr-defined]
    return port


def poll_now(pb: Popbridge, upstream: Optional[str] = None, timeout: float = 10.0) -> None:
    import http.client
    import urllib.parse
    account = urllib.parse.quote(f"{pb.user}/{upstream or pb.upstream_name}", safe="")
    conn = http.client.HTTPConnection("127.0.0.1", pb.admin_port, timeout=timeout)  # type: ignore[attr-defined]
    try:
        conn.request("POST", f"/poll-now?account={account}")
        resp = conn.getresponse()
        body = resp.read().decode("utf-8", "replace")
    finally:
        conn.close()
    if resp.status != 202:
        raise AssertionError(f"POST /poll-now for {account}: {resp.status} {body}")
