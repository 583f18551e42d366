#!/usr/bin/env python3
"""Limit and timeout keys of the daemon file taking effect (docs/configuration.md):
imap.limits.max_line / max_line_pre_auth / max_bad_commands_pre_auth, imap.limits.max_connections
(one connection over the cap gets "* BYE [UNAVAILABLE]" and a log line),
imap.timeouts.tls_handshake, poll.token_command_timeout (a hanging command and its children are
killed and reaped, the poll fails quickly with a clear status), and --check-config refusing
bad values with file:line:col."""

import re
import shutil
import socket
import ssl
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fault"))
from pop3_fault import FaultCase, harness, main, messages, wait_outcomes  # noqa: E402


def add_imap_keys(pb: harness.Popbridge, *lines: str) -> None:
    """Inserts `lines` (already indented by two) into the imap: section of the daemon file."""
    text = pb.config.read_text()
    assert "imap:\n" in text
    pb.config.write_text(text.replace("imap:\n", "imap:\n" + "".join(l + "\n" for l in lines), 1))


class RawImap:
    """A bare IMAP client on a socket, for what imaplib will not send."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(f"connection closed; unread: {self.buf!r}")
            self.buf += chunk
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out

    def command(self, tag: str, text: bytes) -> list[bytes]:
        """Sends `tag text` and returns every line up to and including the tagged one."""
        self.sock.sendall(tag.encode() + b" " + text + b"\r\n")
        lines = []
        while True:
            ln = self.line()
            lines.append(ln)
            if ln.startswith(tag.encode() + b" ") or ln.startswith(b"* BYE"):
                return lines

    def closed_by_peer(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self) -> None:
        self.sock.close()


class ImapLimitsTest(unittest.TestCase):
    def make_pb(self) -> harness.Popbridge:
        pb = harness.Popbridge()
        self.addCleanup(pb.cleanup)
        return pb

    def test_line_and_bad_command_limits(self):
        pb = self.make_pb()
        add_imap_keys(pb, "  limits: {max_line_pre_auth: 1KiB, max_line: 2KiB,",
                      "           max_bad_commands_pre_auth: 2}")
        pb.start()
        c = RawImap(pb.imap_port)
        self.addCleanup(c.close)
        self.assertTrue(c.line().startswith(b"* OK"))
        # 1.5 KiB is under the default 8 KiB but over the configured 1 KiB before login.
        r = c.command("p1", b"NOOP " + b"x" * 1500)
        self.assertEqual(r[-1], b"p1 BAD [TOOBIG] Command line too long")
        # The second BAD before login is the last one (default: 3).
        r = c.command("p2", b"NOSUCHCOMMAND")
        self.assertEqual(r[-1], b"p2 BAD Unknown command NOSUCHCOMMAND")
        self.assertEqual(c.line(), b"* BYE Too many invalid commands")
        self.assertTrue(harness.wait_until(c.closed_by_peer, 5, "close after the BYE"))

        c = RawImap(pb.imap_port)
        self.addCleanup(c.close)
        c.line()
        r = c.command("a", b"LOGIN " + pb.user.encode() + b" " + pb.password.encode())
        self.assertTrue(r[-1].startswith(b"a OK"), r)
        c.command("s", b"SELECT INBOX")
        # A 1.5 KiB command is fine after login, a 3 KiB one is over max_line (default 64 KiB).
        r = c.command("b", b"SEARCH SUBJECT " + b"y" * 1500)
        self.assertEqual(r[-1], b"b OK SEARCH completed")
        r = c.command("c", b"SEARCH SUBJECT " + b"y" * 3000)
        self.assertEqual(r[-1], b"c BAD [TOOBIG] Command line too long")
        # Still usable: one BAD is far from max_bad_commands (20).
        r = c.command("d", b"NOOP")
        self.assertTrue(r[-1].startswith(b"d OK"), r)

    def test_max_connections(self):
        pb = self.make_pb()
        add_imap_keys(pb, "  limits: {max_connections: 2}")
        pb.start()
        # harness.start() opened (and closed) one connection to see the greeting: wait
        # until the daemon has let it go.
        first = RawImap(pb.imap_port)
        self.addCleanup(first.close)
        self.assertTrue(first.line().startswith(b"* OK"))

        def second_greeted():
            c = RawImap(pb.imap_port)
            ln = c.line()
            if ln.startswith(b"* OK"):
                return c
            c.close()
            return None
        second = harness.wait_until(second_greeted, 10, "a second connection greeted")
        self.addCleanup(second.close)
        third = RawImap(pb.imap_port)
        self.addCleanup(third.close)
        self.assertEqual(third.line(), b"* BYE [UNAVAILABLE] Too many connections, try again later")
        self.assertTrue(harness.wait_until(third.closed_by_peer, 5, "the refused one closed"))
        pb.wait_for(lambda: "imap.limits.max_connections is 2" in pb.log_since(pb.log_offset), 5,
                    "the refusal logged")
        # The two open ones still work, and a slot freed is a slot usable again.
        self.assertTrue(first.command("n", b"NOOP")[-1].startswith(b"n OK"))
        first.close()
        again = harness.wait_until(second_greeted, 10, "a connection greeted after one closed")
        again.close()

    def test_tls_handshake_timeout(self):
        pb = self.make_pb()
        pki = FaultCase.pki(self)
        tls_port = harness.free_port()
        text = pb.config.read_text().replace(
            "imap:\n", f"imap:\n  listen_tls: [\"127.0.0.1:{tls_port}\"]\n"
            f"  tls: {{cert: {harness.yaml_str(str(pki.dir / 'good.pem'))}, "
            f"key: {harness.yaml_str(str(pki.dir / 'good.key'))}}}\n"
            "  timeouts: {tls_handshake: 1s, login: 1h}\n", 1)
        pb.config.write_text(text)
        pb.start()
        # A client that sends one byte of a ClientHello every 200 ms keeps an idle timer
        # alive forever; the handshake deadline closes it after 1 s anyway.
        s = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
        self.addCleanup(s.close)
        start = time.monotonic()
        s.setblocking(False)
        closed = False
        for b in b"\x16\x03\x01\x00\xff\x01\x00\x00\xfb\x03\x03" * 10:
            try:
                s.send(bytes([b]))
                if s.recv(1) == b"":
                    closed = True
                    break
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if time.monotonic() - start > 6:
                break
            time.sleep(0.2)  # the pace of the slow client, not a wait for a result
        elapsed = time.monotonic() - start
        self.assertTrue(closed, "the server kept a handshake open for 6 s")
        self.assertGreaterEqual(elapsed, 0.8)
        self.assertLess(elapsed, 4.0)
        pb.wait_for(lambda: "imap TLS handshake timeout" in pb.log_since(pb.log_offset), 5,
                    "the timeout logged")
        # A real client still gets through.
        ctx = ssl.create_default_context(cafile=str(pki.ca_file))
        ctx.check_hostname = False
        with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw:
            with ctx.wrap_socket(raw) as t:
                self.assertTrue(t.recv(100).startswith(b"* OK"))

    def test_check_config_rejects_bad_values(self):
        pb = self.make_pb()
        add_imap_keys(pb, "  timeouts: {autologout: 10m}", "  limits: {max_line: 12}")
        r = pb.run_cli("--config", str(pb.config), "--check-config")
        out = r.stdout + r.stderr
        self.assertNotEqual(r.returncode, 0, out)
        self.assertRegex(out, re.escape(str(pb.config)) + r":5:26: imap\.timeouts\.autologout: "
                         r"expected a duration between 30m and 1d, got 10m \(RFC 3501")
        self.assertRegex(out, re.escape(str(pb.config)) + r":6:22: imap\.limits\.max_line: "
                         r"expected a size between 1KiB and 16MiB, got 12B")
        # The same file with good values passes.
        pb.config.write_text(pb.config.read_text().replace("10m", "30m").replace(": 12}", ": 1MiB}"))
        r = pb.run_cli("--config", str(pb.config), "--check-config")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


def process_state(pid: int):
    """'Z' for a zombie, another letter for a live process, None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2]


class TokenCommandTimeoutTest(FaultCase):
    def test_hanging_token_command_is_killed_with_its_children(self):
        tmp = Path(tempfile.mkdtemp(prefix="pbtok-"))
        self.addCleanup(shutil.rmtree, tmp, True)
        script = tmp / "token.sh"
        script.write_text("#!/bin/sh\n"
                          f"echo $$ > {tmp}/leader.pid\n"
                          "sleep 300 &\n"
                          f"echo $! > {tmp}/child.pid\n"
                          "wait\n")
        srv = self.make_server(messages(1), token="unused-token")
        pb = self.make_pb(srv, auth="xoauth2", password=None,
                          token_command=f"[/bin/sh, {harness.yaml_str(str(script))}]")
        with open(pb.config, "a") as f:
            f.write("poll: {token_command_timeout: 1s}\n")
        pb.start()
        started = time.monotonic()
        got = wait_outcomes(pb, 1, timeout=15)
        self.assertEqual(got[0][1], "failed")
        self.assertLess(time.monotonic() - started, 10)
        log = pb.log_since(pb.log_offset)
        self.assertIn("token_command timed out after 1s; killed", log)
        leader = int((tmp / "leader.pid").read_text())
        child = int((tmp / "child.pid").read_text())
        # The leader is our child: reaped, not a zombie. The sleep it started is killed with
        # its process group (then reaped by init, which may be slower: 'Z' is accepted).
        harness.wait_until(lambda: process_state(leader) is None, 5,
                           f"token_command pid {leader} reaped (state {process_state(leader)})")
        harness.wait_until(lambda: process_state(child) in (None, "Z"), 5,
                           f"token_command child {child} killed (state {process_state(child)})")
        self.assertEqual(srv.commands_named("AUTH"), [], "authenticated without a token")


if __name__ == "__main__":
    main()
