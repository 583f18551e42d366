"""A minimal blocking IMAP client that times whole commands without parsing more than
needed: it follows literals ({n} / {n+}) so that a tag inside message data is never taken
for the end of a response, and counts the untagged responses. Standard library only."""

from __future__ import annotations

import re
import socket
import ssl
import time
from typing import Optional

_LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class ImapError(Exception):
    pass


class RawImap:
    def __init__(self, host: str, port: int, timeout: float = 300.0,
                 tls: Optional[ssl.SSLContext] = None):
        raw = socket.create_connection((host, port), timeout=timeout)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = tls.wrap_socket(raw, server_hostname=host) if tls else raw
        self.buf = b""
        self.n = 0
        self.greeting = self._line()

    def _fill(self) -> None:
        data = self.sock.recv(1 << 18)
        if not data:
            raise ImapError("server closed the connection")
        self.buf += data

    def _line(self) -> bytes:
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            self._fill()

    def _exactly(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self) -> bytes:
        """One whole response (a line plus any literals it carries)."""
        parts = []
        while True:
            line = self._line()
            parts.append(line)
            m = _LITERAL.search(line)
            if not m:
                return b"".join(parts)
            parts.append(self._exactly(int(m.group(1))))

    def command(self, text: str, keep: bool = False) -> tuple[bytes, list[bytes], float]:
        """Send `TAG text`, read to the tagged reply. Returns (tagged line, untagged responses
        if keep else [] , seconds). Raises ImapError unless the reply is OK."""
        self.n += 1
        tag = f"B{self.n:04d}".encode()
        t0 = time.perf_counter()
        self.sock.sendall(tag + b" " + text.encode() + b"\r\n")
        untagged: list[bytes] = []
        count = 0
        while True:
            r = self.response()
            if r.startswith(tag + b" "):
                dt = time.perf_counter() - t0
                if not r[len(tag) + 1:].upper().startswith(b"OK"):
                    raise ImapError(f"{text.split()[0]}: {r[:300]!r}")
                self.untagged_count = count
                return r, untagged, dt
            if r.startswith(b"+"):
                raise ImapError(f"unexpected continuation for {text[:40]}: {r[:200]!r}")
            count += 1
            if keep:
                untagged.append(r)

    def login(self, user: str, password: str) -> None:
        self.command(f'LOGIN "{user}" "{password}"')

    def close(self) -> None:
        try:
            self.command("LOGOUT")
        except Exception:  # noqa: BLE001
            pass
        try:
            self.sock.close()
        except OSError:
            pass
