"""A scripted POP3 server that misbehaves on demand (python3 stdlib only).

    srv = FakePop3(messages=[b"...", ...]).start()      # 127.0.0.1, free port
    srv.ignore_dele = True                               # flip behaviours any time
    ...; srv.stop()

Mailbox semantics follow RFC 1939: a session sees a snapshot taken at login,
DELE marks, QUIT applies the marks (unless ignore_dele). Every command line is
recorded in srv.commands (list of (session number, line)); PASS/AUTH arguments
are recorded as "<secret>" so tests can assert on them without leaking.

Knobs (attributes; read when the relevant command arrives):
  capa            list of CAPA lines, None -> "-ERR" to CAPA
  uidl_supported  False -> "-ERR" to UIDL
  top_supported   False -> "-ERR" to TOP
  login_errors    list of "-ERR ..." lines; each session that logs in pops one
                  (answering PASS/AUTH/APOP with it) until the list is empty
  ignore_dele     QUIT answers +OK but deletes nothing
  drop_in_retr    set of 1-based msgnos: close the socket halfway through RETR
  drop_on_quit    "before" (nothing applied) or "after" (deletions applied) -> close, no reply
  stall_on        command name (e.g. "RETR"): stop answering, keep the socket open
  long_line       UIDL answer has one line of this many bytes (0: off)
  bare_lf         message bodies and listings use LF line ends
  list_size_delta {msgno: delta} added to LIST sizes
  stls            offer STLS (needs tls_context)
  stls_refuse     answer STLS with -ERR
  stls_inject     bytes written right after "+OK" to STLS, before the handshake
  implicit_tls    wrap every connection in TLS from the first byte
  one_shot        (default True) drop_in_retr, drop_on_quit, stall_on and long_line
                  reset themselves after firing once
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class Msg:
    uidl: str
    data: bytes
    deleted: bool = False


@dataclass
class FakePop3:
    messages: list[bytes] = field(default_factory=list)
    user: str = "alice"
    password: str = "fake-secret"
    token: Optional[str] = None  # accepted by XOAUTH2 / OAUTHBEARER
    tls_context: Optional[ssl.SSLContext] = None
    implicit_tls: bool = False

    def __post_init__(self) -> None:
        self.mailbox: list[Msg] = []
        self.uidl_seq = 0
        for m in self.messages:
            self.add(m)
        self.capa: Optional[list[str]] = ["TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES",
                                          "AUTH-RESP-CODE", "SASL PLAIN XOAUTH2 OAUTHBEARER"]
        self.uidl_supported = True
        self.top_supported = True
        self.login_errors: list[str] = []
        self.ignore_dele = False
        self.drop_in_retr: set[int] = set()
        self.drop_on_quit: Optional[str] = None
        self.stall_on: Optional[str] = None
        self.long_line = 0
        self.bare_lf = False
        self.list_size_delta: dict[int, int] = {}
        self.stls = False
        self.stls_refuse = False
        self.stls_inject = b""
        self.one_shot = True
        self.timestamp = "<1896.697170952@fake.example>"
        self.commands: list[tuple[int, str]] = []
        self.sessions = 0
        self.lock = threading.Lock()
        self.port = 0
        self._sock: Optional[socket.socket] = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._stopping = False

    # -- mailbox --
    def add(self, data: bytes, uidl: Optional[str] = None) -> Msg:
        with getattr(self, "lock", threading.Lock()):
            self.uidl_seq += 1
            m = Msg(uidl or f"fake-{self.uidl_seq:06d}", data)
            self.mailbox.append(m)
            return m

    def live(self) -> list[Msg]:
        with self.lock:
            return [m for m in self.mailbox if not m.deleted]

    def live_bodies(self) -> list[bytes]:
        return [m.data for m in self.live()]

    def commands_named(self, name: str) -> list[str]:
        with self.lock:
            return [c for _s, c in self.commands if c.split(" ", 1)[0].upper() == name]

    # -- lifecycle --
    def start(self) -> "FakePop3":
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._sock is not None:
            # close() alone does not wake a thread blocked in accept() (Linux): every stop
            # then waited out the 5 s join below. shutdown() does wake it.
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                self._sock.close()
            except OSError:
                pass
        with self.lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> "FakePop3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                conn, _addr = self._sock.accept()
            except OSError:
                return
            with self.lock:
                self.sessions += 1
                n = self.sessions
                self._conns.append(conn)
            t = threading.Thread(target=self._session_safe, args=(conn, n), daemon=True)
            t.start()
            self._threads.append(t)

    def _session_safe(self, conn: socket.socket, n: int) -> None:
        try:
            _Session(self, conn, n).run()
        except (OSError, ssl.SSLError, ValueError):
            pass
        finally:
            try:
                conn.close()
            except OSError:
                pass


class _Closed(Exception):
    pass


class _Session:
    def __init__(self, srv: FakePop3, conn: socket.socket, n: int):
        self.srv = srv
        self.sock = conn
        self.n = n
        self.buf = b""
        self.authed = False
        self.user: Optional[str] = None
        self.snapshot: list[Msg] = []
        self.marked: set[int] = set()

    # -- I/O --
    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self, text: str) -> None:
        self.send(text.encode("utf-8", "surrogateescape") + b"\r\n")

    def readline(self) -> str:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _Closed()
            self.buf += chunk
        raw, self.buf = self.buf.split(b"\n", 1)
        return raw.rstrip(b"\r").decode("utf-8", "replace")

    def eol(self) -> bytes:
        return b"\n" if self.srv.bare_lf else b"\r\n"

    def multiline(self, lines: list[bytes]) -> None:
        eol = self.eol()
        out = [b"+OK" + eol]
        for ln in lines:
            out.append((b"." + ln if ln.startswith(b".") else ln) + eol)
        out.append(b"." + eol)
        self.send(b"".join(out))

    def body_lines(self, data: bytes) -> list[bytes]:
        lines = data.split(b"\r\n")
        if lines and lines[-1] == b"":
            lines.pop()
        return lines

    # -- protocol --
    def run(self) -> None:
        srv = self.srv
        if srv.implicit_tls:
            self.sock = srv.tls_context.wrap_socket(self.sock, server_side=True)
        self.line(f"+OK fake POP3 ready {srv.timestamp}")
        while True:
            try:
                cmdline = self.readline()
            except _Closed:
                return
            verb, _, arg = cmdline.partition(" ")
            verb = verb.upper()
            with srv.lock:
                shown = cmdline if verb not in ("PASS", "AUTH", "APOP") else f"{verb} <secret>"
                if not self.authed and verb == "" and cmdline:
                    shown = "<sasl response>"
                srv.commands.append((self.n, shown))
            if srv.stall_on and verb == srv.stall_on:
                if srv.one_shot:
                    srv.stall_on = None
                while True:  # keep the socket open, answer nothing
                    try:
                        if not self.sock.recv(65536):
                            return
                    except OSError:
                        return
            handler = getattr(self, "cmd_" + verb.lower(), None)
            if handler is None:
                self.line("-ERR unknown command")
                continue
            if handler(arg) == "close":
                return

    def cmd_capa(self, _arg: str) -> None:
        caps = self.srv.capa
        if caps is None:
            self.line("-ERR no CAPA")
            return
        lines = list(caps)
        if self.srv.stls and not isinstance(self.sock, ssl.SSLSocket):
            lines.append("STLS")
        self.multiline([c.encode() for c in lines])

    def cmd_stls(self, _arg: str):
        if not self.srv.stls or self.srv.stls_refuse:
            self.line("-ERR STLS not available now")
            return None
        self.send(b"+OK begin TLS\r\n" + self.srv.stls_inject)
        self.buf = b""
        try:
            self.sock = self.srv.tls_context.wrap_socket(self.sock, server_side=True)
        except (ssl.SSLError, OSError):
            return "close"
        return None

    def login_ok(self) -> bool:
        with self.srv.lock:
            if self.srv.login_errors:
                err = self.srv.login_errors.pop(0)
            else:
                err = None
        if err:
            self.line(err)
            return False
        self.authed = True
        with self.srv.lock:
            self.snapshot = [m for m in self.srv.mailbox if not m.deleted]
        self.line(f"+OK {len(self.snapshot)} messages")
        return True

    def cmd_user(self, arg: str) -> None:
        self.user = arg
        self.line("+OK")

    def cmd_pass(self, arg: str) -> None:
        if self.user != self.srv.user or arg != self.srv.password:
            self.line("-ERR [AUTH] invalid login")
            return
        self.login_ok()

    def cmd_apop(self, arg: str) -> None:
        name, _, digest = arg.partition(" ")
        want = hashlib.md5((self.srv.timestamp + self.srv.password).encode()).hexdigest()
        if name != self.srv.user or digest != want:
            self.line("-ERR [AUTH] APOP failed")
            return
        self.login_ok()

    def cmd_auth(self, arg: str) -> None:
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if not initial:
            self.line("+ ")
            initial = self.readline()
        try:
            raw = base64.b64decode(initial, validate=True)
        except ValueError:
            self.line("-ERR bad base64")
            return
        ok = False
        if mech == "PLAIN":
            parts = raw.split(b"\0")
            ok = len(parts) == 3 and parts[1].decode() == self.srv.user and \
                parts[2].decode() == self.srv.password
        elif mech in ("XOAUTH2", "OAUTHBEARER"):
            ok = self.srv.token is not None and f"auth=Bearer {self.srv.token}\x01".encode() in raw
        if not ok:
            self.line("-ERR [AUTH] authentication failed")
            return
        self.login_ok()

    def need_auth(self) -> bool:
        if not self.authed:
            self.line("-ERR not logged in")
            return False
        return True

    def msg(self, arg: str) -> Optional[tuple[int, Msg]]:
        try:
            n = int(arg.split()[0])
        except (ValueError, IndexError):
            self.line("-ERR bad message number")
            return None
        if n < 1 or n > len(self.snapshot) or n in self.marked:
            self.line("-ERR no such message")
            return None
        return n, self.snapshot[n - 1]

    def cmd_stat(self, _arg: str) -> None:
        if self.need_auth():
            live = [m for i, m in enumerate(self.snapshot, 1) if i not in self.marked]
            self.line(f"+OK {len(live)} {sum(len(m.data) for m in live)}")

    def cmd_list(self, _arg: str) -> None:
        if not self.need_auth():
            return
        out = []
        for i, m in enumerate(self.snapshot, 1):
            if i not in self.marked:
                out.append(f"{i} {len(m.data) + self.srv.list_size_delta.get(i, 0)}".encode())
        self.multiline(out)

    def cmd_uidl(self, _arg: str) -> None:
        if not self.need_auth():
            return
        if not self.srv.uidl_supported:
            self.line("-ERR UIDL not supported")
            return
        out = []
        for i, m in enumerate(self.snapshot, 1):
            if i not in self.marked:
                out.append(f"{i} {m.uidl}".encode())
        if self.srv.long_line:
            out.append(b"999 " + b"x" * self.srv.long_line)
            if self.srv.one_shot:
                self.srv.long_line = 0
        self.multiline(out)

    def cmd_top(self, arg: str) -> None:
        if not self.need_auth():
            return
        if not self.srv.top_supported:
            self.line("-ERR TOP not supported")
            return
        got = self.msg(arg)
        if got is None:
            return
        data = got[1].data
        end = data.find(b"\r\n\r\n")
        head = data if end < 0 else data[:end + 4]
        self.multiline(self.body_lines(head))

    def cmd_retr(self, arg: str):
        if not self.need_auth():
            return None
        got = self.msg(arg)
        if got is None:
            return None
        n, m = got
        if n in self.srv.drop_in_retr:
            if self.srv.one_shot:
                self.srv.drop_in_retr = set()
            eol = self.eol()
            lines = self.body_lines(m.data)
            half = lines[: max(1, len(lines) // 2)]
            self.send(b"+OK" + eol + eol.join(half) + eol)
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "close"
        self.multiline(self.body_lines(m.data))
        return None

    def cmd_dele(self, arg: str) -> None:
        if not self.need_auth():
            return
        got = self.msg(arg)
        if got is None:
            return
        self.marked.add(got[0])
        self.line("+OK marked")

    def cmd_rset(self, _arg: str) -> None:
        self.marked.clear()
        self.line("+OK")

    def cmd_noop(self, _arg: str) -> None:
        self.line("+OK")

    def cmd_quit(self, _arg: str) -> str:
        srv = self.srv
        if self.authed and srv.drop_on_quit != "before" and not srv.ignore_dele:
            with srv.lock:
                for i in self.marked:
                    self.snapshot[i - 1].deleted = True
        if srv.drop_on_quit:
            if srv.one_shot:
                srv.drop_on_quit = None
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return "close"
        self.line("+OK bye")
        return "close"


# --------------------------------------------------------------------------
# certificates
# --------------------------------------------------------------------------

class TestPki:
    """A throw-away CA with two server certificates: `good` (IP:127.0.0.1,
    DNS:localhost) and `wrong_host` (DNS:wrong.example only)."""

    def __init__(self, directory: Path):
        self.dir = directory
        d = directory

        def run(*args: str) -> None:
            subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

        key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")  # fast to make
        run("req", "-x509", *key, "-nodes", "-days", "2", "-subj",
            "/CN=popbridge fault CA", "-keyout", "ca.key", "-out", "ca.pem",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        for name, san in (("good", "IP:127.0.0.1,DNS:localhost"), ("wrong", "DNS:wrong.example")):
            run("req", *key, "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr")
            (d / f"{name}.ext").write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n"
                                           "extendedKeyUsage=serverAuth\n")
            run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem")
        self.ca_file = d / "ca.pem"

    def server_context(self, name: str = "good") -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.dir / f"{name}.pem", self.dir / f"{name}.key")
        return ctx

    def leaf_sha256(self, name: str = "good") -> str:
        pem = (self.dir / f"{name}.pem").read_text()
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()
