#!/usr/bin/env python3
"""STARTTLS and LOGINDISABLED on the plain IMAP listener (RFC 3501 6.2.1, 6.2.3).

The test makes its own CA and server certificate with the openssl CLI and configures
imap.tls {cert, key}. popbridge runs with POPBRIDGE_TEST_LOOPBACK_IS_REMOTE=1 so the
127.0.0.1 client is treated like a remote one (loopback peers may otherwise log in
without TLS):
  1. before TLS: CAPABILITY has STARTTLS and LOGINDISABLED and no AUTH=PLAIN; LOGIN and
     AUTHENTICATE are refused;
  2. a command pipelined after STARTTLS in the same packet is discarded, not run inside
     the TLS session (STARTTLS injection);
  3. after TLS: LOGINDISABLED is gone, LOGIN works (imaplib's starttls());
  4. the implicit-TLS listener (listen_tls) needs no STARTTLS.

Needs POPBRIDGE_BIN and openssl.
"""

import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    openssl = harness.which("openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, timeout=60)

    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "key.pem", "req.csr",
                                                  "cert.pem"))
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=popbridge test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))
    os.chmod(key, 0o600)
    return ca, cert, key


def read_until(sock, marker: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class StartTlsTest(unittest.TestCase):
    def setUp(self):
        self.certdir = Path(tempfile.mkdtemp(prefix="pbtls-"))
        self.addCleanup(shutil.rmtree, self.certdir, True)
        ca, cert, key = make_certs(self.certdir)
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.pb = harness.Popbridge(upstream=None)
        self.addCleanup(self.pb.cleanup)
        self.tls_port = harness.free_port()
        text = self.pb.config.read_text()
        text = text.replace(
            "imap:\n",
            f"imap:\n  listen_tls: [\"127.0.0.1:{self.tls_port}\"]\n"
            f"  tls: {{cert: {harness.yaml_str(str(cert))}, key: {harness.yaml_str(str(key))}}}\n",
            1)
        self.pb.config.write_text(text)
        old = os.environ.get("POPBRIDGE_TEST_LOOPBACK_IS_REMOTE")
        os.environ["POPBRIDGE_TEST_LOOPBACK_IS_REMOTE"] = "1"
        try:
            self.pb.start()
        finally:
            if old is None:
                del os.environ["POPBRIDGE_TEST_LOOPBACK_IS_REMOTE"]
            else:
                os.environ["POPBRIDGE_TEST_LOOPBACK_IS_REMOTE"] = old

    def test_logindisabled_before_tls_and_login_after(self):
        c = imaplib.IMAP4("127.0.0.1", self.pb.imap_port, timeout=15)
        self.addCleanup(harness.imap_logout, c)
        caps = c.capabilities
        self.assertIn("STARTTLS", caps)
        self.assertIn("LOGINDISABLED", caps)
        self.assertNotIn("AUTH=PLAIN", caps)
        typ, data = c._simple_command("LOGIN", self.pb.user, self.pb.password)
        self.assertEqual(typ, "NO", data)
        c.starttls(self.ctx)
        self.assertNotIn("LOGINDISABLED", c.capabilities)
        self.assertIn("AUTH=PLAIN", c.capabilities)
        typ, _ = c.login(self.pb.user, self.pb.password)
        self.assertEqual(typ, "OK")
        typ, data = c.select("INBOX")
        self.assertEqual(typ, "OK")

    def test_authenticate_refused_before_tls(self):
        s = socket.create_connection(("127.0.0.1", self.pb.imap_port), timeout=10)
        self.addCleanup(s.close)
        read_until(s, b"\r\n")
        s.sendall(b"a AUTHENTICATE PLAIN AGFsaWNlAHg=\r\n")
        self.assertIn(b"a NO [PRIVACYREQUIRED]", read_until(s, b"a "))

    def test_commands_pipelined_after_starttls_are_discarded(self):
        s = socket.create_connection(("127.0.0.1", self.pb.imap_port), timeout=10)
        self.addCleanup(s.close)
        read_until(s, b"\r\n")
        # One packet: STARTTLS plus an injected command in the clear.
        s.sendall(b"a STARTTLS\r\nb CAPABILITY\r\n")
        reply = read_until(s, b"a OK")
        self.assertIn(b"a OK", reply)
        self.assertNotIn(b"b ", reply)
        tls = self.ctx.wrap_socket(s, server_hostname="127.0.0.1")
        self.addCleanup(tls.close)
        tls.sendall(b"c CAPABILITY\r\n")
        after = read_until(tls, b"c OK")
        self.assertIn(b"c OK", after)
        self.assertNotIn(b"b OK", after, "the injected command was executed inside TLS")
        self.assertNotIn(b"LOGINDISABLED", after)
        tls.sendall(b"d STARTTLS\r\n")
        self.assertIn(b"d BAD", read_until(tls, b"d "))

    def test_implicit_tls_listener(self):
        c = imaplib.IMAP4_SSL("127.0.0.1", self.tls_port, ssl_context=self.ctx, timeout=15)
        self.addCleanup(harness.imap_logout, c)
        self.assertNotIn("LOGINDISABLED", c.capabilities)
        self.assertNotIn("STARTTLS", c.capabilities)
        typ, _ = c.login(self.pb.user, self.pb.password)
        self.assertEqual(typ, "OK")


if __name__ == "__main__":
    unittest.main(verbosity=2)
