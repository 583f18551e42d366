#!/usr/bin/env python3
"""Admin endpoint and operator CLI against a real daemon and a real Dovecot upstream.

- /healthz 200; /metrics in Prometheus text format with the per-upstream, IMAP and
  store numbers matching what was really downloaded and served;
- /status HTML lists the account with its state, last poll and next poll; HTML in an
  upstream error is escaped;
- `popbridge status`, `poll-now`, `health`: output and exit codes (0, 1, 3, 4);
- malformed, oversized and wrong-method requests get 4xx and the daemon keeps serving;
- JSON log format: every line parses as JSON, even messages with quotes.

Needs POPBRIDGE_BIN (ctest sets it; default build/proxy/popbridge).
"""

import http.client as httpclient
import json
import re
import socket
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

N_MESSAGES = 7


def enable_admin(pb: "harness.Popbridge", log_format: str = "text") -> int:
    port = harness.free_port()
    text = pb.config.read_text()
    text = re.sub(r"format: text", f"format: {log_format}", text)
    pb.config.write_text(text + f"admin: {{listen: \"127.0.0.1:{port}\"}}\n")
    return port


def http(port: int, method: str, path: str, timeout: float = 10.0):
    conn = httpclient.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path)
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read().decode("utf-8", "replace")
    finally:
        conn.close()


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
        return b"".join(chunks)


def parse_metrics(text: str) -> dict:
    """{(name, frozenset(labels.items())): value}; also checks the exposition syntax."""
    out = {}
    declared = set()
    rx = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
    label_rx = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            declared.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = rx.match(line)
        if not m:
            raise AssertionError(f"not Prometheus text format: {line!r}")
        name, labels_text, value = m.group(1), m.group(3) or "", m.group(4)
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name not in declared and base not in declared:
            raise AssertionError(f"sample {name} before its # TYPE line")
        labels = {k: v for k, v, _ in label_rx.findall(labels_text)}
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def metric(m: dict, name: str, **labels) -> float:
    key = (name, frozenset(labels.items()))
    if key not in m:
        have = sorted(f"{n}{dict(ls)}" for n, ls in m if n == name)
        raise AssertionError(f"metric {name}{labels} missing; have {have}")
    return m[key]


def setUpModule():
    harness.popbridge_binary()


class AdminEndpointTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dovecot = harness.Dovecot().start()
        cls.messages = harness.generate_messages(N_MESSAGES, seed=61)
        cls.dovecot.add_messages(cls.messages)
        cls.pb = harness.Popbridge(upstream=cls.dovecot, poll_every="10m", keep_on_server="true")
        cls.port = enable_admin(cls.pb, log_format="json")
        cls.pb.start()
        cls.pb.wait_for(lambda: cls.pb.message_count() >= N_MESSAGES, 60,
                        f"{N_MESSAGES} messages in INBOX")
        cls.pb.wait_for(lambda: sum(cls.pb.poll_counts()) >= N_MESSAGES or
                        "new=%d" % N_MESSAGES in cls.pb.log_since(0), 15, "the poll line")

    @classmethod
    def tearDownClass(cls):
        cls.pb.cleanup()
        cls.dovecot.stop()

    def cli(self, *args):
        return self.pb.run_cli("--config", str(self.pb.config), *args)

    def test_healthz(self):
        status, headers, body = http(self.port, "GET", "/healthz")
        self.assertEqual((status, body.strip()), (200, "ok"))
        self.assertEqual(headers.get("Connection"), "close")
        status, _, body = http(self.port, "HEAD", "/healthz")
        self.assertEqual((status, body), (200, ""))

    def test_metrics_content(self):
        status, headers, body = http(self.port, "GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain; version=0.0.4"))
        m = parse_metrics(body)
        acct = "alice/dovecot"
        size = sum(len(x) for x in self.messages)
        self.assertEqual(metric(m, "popbridge_upstream_messages_downloaded_total", account=acct),
                         N_MESSAGES)
        self.assertEqual(metric(m, "popbridge_upstream_bytes_downloaded_total", account=acct), size)
        self.assertEqual(metric(m, "popbridge_upstream_consecutive_failures", account=acct), 0)
        last = metric(m, "popbridge_upstream_last_success_timestamp_seconds", account=acct)
        self.assertLess(abs(last - time.time()), 300, "last success is not a recent Unix time")
        self.assertGreater(metric(m, "popbridge_upstream_next_poll_timestamp_seconds",
                                  account=acct), last)
        self.assertEqual(metric(m, "popbridge_upstream_last_outcome", account=acct, **{"class": "ok"}), 1)
        self.assertEqual(metric(m, "popbridge_store_messages", user="alice"), N_MESSAGES)
        self.assertEqual(metric(m, "popbridge_store_bytes", user="alice"), size)
        self.assertEqual(metric(m, "popbridge_store_writable"), 1)
        self.assertEqual(metric(m, "popbridge_accounts"), 1)
        self.assertGreaterEqual(metric(m, "popbridge_store_commit_seconds_count"), 1)
        self.assertEqual(metric(m, "popbridge_store_commit_seconds_count"),
                         metric(m, "popbridge_store_commit_seconds_bucket", le="+Inf"))
        # IMAP: a connection open while scraping is counted, and the total grows.
        before_total = metric(m, "popbridge_imap_connections_total")
        client = self.pb.imap()
        try:
            m2 = parse_metrics(http(self.port, "GET", "/metrics")[2])
            self.assertGreaterEqual(metric(m2, "popbridge_imap_connections"), 1)
            self.assertGreaterEqual(metric(m2, "popbridge_imap_connections_total"), before_total + 1)
        finally:
            harness.imap_logout(client)
        self.pb.wait_for(lambda: metric(parse_metrics(http(self.port, "GET", "/metrics")[2]),
                                        "popbridge_imap_connections") == 0, 10,
                         "popbridge_imap_connections back to 0 after LOGOUT")

    def test_status_page(self):
        status, headers, body = http(self.port, "GET", "/status")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        for needle in ("<table", "alice", "dovecot", f"127.0.0.1:{self.dovecot.port}",
                       "Last poll", "Next poll", "Last error", ">ok<"):
            self.assertIn(needle, body)

    def test_cli_status_and_poll_now(self):
        r = self.cli("status")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"alice/dovecot\s+ok\s")
        offset = self.pb.log_file.stat().st_size
        r = self.cli("poll-now", "alice/dovecot")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("alice/dovecot", r.stdout)
        # poll_every is 10m: only poll-now can cause a poll line now.
        self.pb.wait_for(lambda: harness.poll_line_regex("alice", "dovecot").search(
            self.pb.log_since(offset)), 20, "a poll after poll-now")
        r = self.cli("poll-now", "nobody")
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        self.assertIn("no such account", r.stderr)
        r = self.cli("poll-now", "alice/nope")
        self.assertEqual(r.returncode, 4, r.stdout + r.stderr)
        r = self.cli("health")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        r = self.pb.run_cli("--admin", f"127.0.0.1:{harness.free_port()}", "status")
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertIn("cannot connect", r.stderr)
        r = self.pb.run_cli("--config", str(self.pb.config), "poll-now")
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        status, _, _ = http(self.port, "GET", "/poll-now?account=alice")
        self.assertEqual(status, 405)

    def test_bad_requests_get_4xx_and_daemon_keeps_serving(self):
        cases = [
            (b"GARBAGE\r\n\r\n", 400),
            (b"DELETE /status HTTP/1.1\r\n\r\n", 405),
            (b"GET /status HTTP/2.0\r\n\r\n", 505),
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
            (b"POST /poll-now?account=alice HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 413),
            (b"GET /nowhere HTTP/1.1\r\n\r\n", 404),
            (b"GET /status?x=%zz HTTP/1.1\r\n\r\n", 400),
        ]
        for data, want in cases:
            with self.subTest(request=data[:40]):
                reply = raw_request(self.port, data)
                self.assertTrue(reply.startswith(f"HTTP/1.1 {want} ".encode()), reply[:200])
        self.assertEqual(http(self.port, "GET", "/healthz")[0], 200)
        self.assertEqual(self.pb.message_count(), N_MESSAGES)

    def test_json_log_lines_parse(self):
        # Poll lines contain error="..." style quoting; every line must still be JSON.
        text = self.pb.log_since(0)
        lines = [l for l in text.splitlines() if l.strip()]
        self.assertGreater(len(lines), 3)
        for line in lines:
            try:
                obj = json.loads(line)
            except ValueError as e:
                self.fail(f"log line is not JSON ({e}): {line[:300]}")
            self.assertEqual(set(obj), {"time", "level", "msg"}, line)


class ErrorEscapingTest(unittest.TestCase):
    def test_upstream_error_is_html_escaped_and_status_exit_1(self):
        # An upstream that answers with markup in its error: the page must not render it.
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(4)
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        self.addCleanup(srv.close)

        class Fake:
            host, user, password = "127.0.0.1", "alice", "x"

        Fake.port = port
        pb = harness.Popbridge(upstream=Fake(), poll_every="10m")
        self.addCleanup(pb.cleanup)
        admin = enable_admin(pb)
        pb.start()

        def serve_one():
            try:
                c, _ = srv.accept()
            except socket.timeout:
                return False
            with c:
                c.sendall(b"-ERR <script>alert(1)</script> go away\r\n")
            return True

        pb.wait_for(serve_one, 20, "popbridge connecting to the fake upstream")
        pb.wait_for(lambda: "failing" in http(admin, "GET", "/status?format=text")[2], 20,
                    "status 'failing'")
        body = http(admin, "GET", "/status")[2]
        self.assertNotIn("<script>", body)
        r = pb.run_cli("--config", str(pb.config), "status")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("failing", r.stdout)
        m = parse_metrics(http(admin, "GET", "/metrics")[2])
        self.assertEqual(metric(m, "popbridge_upstream_consecutive_failures",
                                account="alice/dovecot"), 1)
        self.assertEqual(metric(m, "popbridge_upstream_last_success_timestamp_seconds",
                                account="alice/dovecot"), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
