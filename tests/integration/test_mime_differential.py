#!/usr/bin/env python3
"""Differential test of MIME structure: popbridge against Dovecot's IMAP server.

Both serve the corpus tests/data/mime/*.eml. Dovecot holds it in its Maildir (and serves
IMAP on loopback); popbridge downloads the same files from that Dovecot over POP3
(keep_on_server), so both hold the same bytes in the same order. For every message the test
compares ENVELOPE, BODYSTRUCTURE, BODY, RFC822.SIZE, BODY[] and every section the Dovecot
BODYSTRUCTURE names (n, n.MIME, and n.HEADER / n.TEXT for message/rfc822 parts), plus
HEADER, TEXT and HEADER.FIELDS; then a set of SEARCH queries with UTF-8 needles.

Values are compared as parsed IMAP data (a literal and a quoted string with the same bytes
are equal). Differences kept on purpose are listed in KNOWN_DIFFERENCES with a reason; any
other difference fails the test with one line per (message, item).

Env: POPBRIDGE_BIN (ctest sets it). MIME_DIFF_RECORD=FILE writes Dovecot's answers as JSON
(used to refresh tests/data/mime/dovecot-expected.json for the unit tests).
"""

import json
import os
import re
import signal
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

CORPUS = harness.SOURCE_DIR / "tests" / "data" / "mime"
SYNC_TIMEOUT = 60

# (corpus file name or "*", item) -> reason. Items: ENVELOPE, BODYSTRUCTURE, BODY,
# BODY[<section>], SEARCH <query>.
_POP3_ADDS_FINAL_CRLF = (
    "POP3 sends a message as CRLF-terminated lines (RFC 1939 3), so Dovecot's RETR adds a "
    "line break after a last line that has none; popbridge stores what POP3 delivered, "
    "two bytes longer than Dovecot's own Maildir copy (one more body line)")
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    ("39-text-no-trailing-newline.eml", item): _POP3_ADDS_FINAL_CRLF
    for item in ("RFC822.SIZE", "BODYSTRUCTURE", "BODY", "BODY[]", "BODY[TEXT]", "BODY[1]")
}

SEARCHES = [
    ("SUBJECT", "plain"),
    ("SUBJECT", "grüße"),
    ("SUBJECT", "GRÜSSE"),
    ("SUBJECT", "æble"),
    ("SUBJECT", "€uro"),
    ("FROM", "alice"),
    ("FROM", "andré"),
    ("TO", "bob@example"),
    ("CC", "quoted"),
    ("BODY", "köln"),
    ("BODY", "café"),
    ("BODY", "brücke"),
    ("BODY", "øl på stålet"),
    ("BODY", "日本語"),
    ("BODY", "€"),
    ("TEXT", "grüße"),
    ("TEXT", "undisclosed"),
    ("TEXT", "original plain"),
]


# ---- IMAP data parsing ---------------------------------------------------------------

class Atom(str):
    pass


def parse_value(data: bytes, i: int):
    """One IMAP value at data[i:] -> (value, next index). Strings are bytes, NIL is None,
    lists are lists, other atoms are Atom."""
    while i < len(data) and data[i:i + 1] == b" ":
        i += 1
    if i >= len(data):
        raise ValueError("IMAP data ends inside a value")
    c = data[i:i + 1]
    if c == b"(":
        out = []
        i += 1
        while True:
            while data[i:i + 1] == b" ":
                i += 1
            if i >= len(data):
                raise ValueError("IMAP data ends inside a list")
            if data[i:i + 1] == b")":
                return out, i + 1
            v, i = parse_value(data, i)
            out.append(v)
    if c == b'"':
        out = bytearray()
        i += 1
        while data[i:i + 1] != b'"':
            if data[i:i + 1] == b"\\":
                i += 1
            out += data[i:i + 1]
            i += 1
        return bytes(out), i + 1
    if c == b"{":
        j = data.index(b"}", i)
        n = int(data[i + 1:j].rstrip(b"+"))
        start = j + 3  # "}\r\n"
        return data[start:start + n], start + n
    j = i
    depth = 0
    while j < len(data):
        ch = data[j:j + 1]
        if ch == b"[":
            depth += 1
        elif ch == b"]":
            depth -= 1
        elif depth == 0 and ch in (b" ", b"(", b")"):
            break
        j += 1
    word = data[i:j].decode("latin-1")
    return (None if word.upper() == "NIL" else Atom(word)), j


def fetch_items(client, seq: int, items: str) -> dict:
    """FETCH seq (items) -> {ITEM NAME (upper): value}; raises on a NO/BAD."""
    typ, data = client.fetch(str(seq), f"({items})")
    if typ != "OK":
        raise RuntimeError(f"{typ} {data}")
    raw = b""
    for e in data:
        # imaplib splits a literal off as (b'... {n}', bytes): put the CRLF back.
        raw += (e[0] + b"\r\n" + e[1]) if isinstance(e, tuple) else (e or b"")
    m = re.match(rb"\s*(\d+) \(", raw)
    if not m:
        raise RuntimeError(f"unexpected FETCH data {raw[:200]!r}")
    values, _ = parse_value(raw, m.end() - 1)
    out = {}
    for k in range(0, len(values) - 1, 2):
        out[str(values[k]).upper()] = values[k + 1]
    return out


def sections_of(bs, prefix: str = "") -> list[str]:
    """Part paths named by a BODYSTRUCTURE value (Dovecot's), with MIME/HEADER/TEXT."""
    out = []
    if isinstance(bs, list) and bs and isinstance(bs[0], list):  # multipart
        k = 0
        for child in bs:
            if not isinstance(child, list):
                break
            k += 1
            path = f"{prefix}{k}"
            out += [path, path + ".MIME"]
            out += sections_of(child, path + ".")
        return out
    if isinstance(bs, list) and len(bs) > 8 and isinstance(bs[0], bytes) and \
            bs[0].lower() == b"message" and bs[1].lower() in (b"rfc822", b"global"):
        path = prefix.rstrip(".")
        if path:
            out += [path + ".HEADER", path + ".TEXT"]
        out += sections_of(bs[8], prefix if not path else path + ".")
    return out


def describe(v, limit: int = 300) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


def collect(client, names: list[str], sections_from: dict | None) -> dict:
    """Everything the test compares, for every message: {name: {item: value}}."""
    typ, data = client.select("INBOX", readonly=True)
    if typ != "OK":
        raise RuntimeError(f"EXAMINE INBOX: {typ} {data}")
    count = int(data[0])
    if count != len(names):
        raise RuntimeError(f"INBOX has {count} messages, expected {len(names)}")
    result: dict = {}
    for seq, name in enumerate(names, start=1):
        items: dict = {}
        for item in ("RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "BODY"):
            try:
                items[item] = fetch_items(client, seq, item).get(item)
            except Exception as exc:  # noqa: BLE001 - report, keep going
                items[item] = f"<error: {exc}>"
        secs = ["", "HEADER", "TEXT", "1", "HEADER.FIELDS (FROM SUBJECT)",
                "HEADER.FIELDS.NOT (FROM SUBJECT DATE)"]
        ref = (sections_from or {}).get(name, items).get("BODYSTRUCTURE")
        if isinstance(ref, list):
            secs += [s for s in sections_of(ref) if s not in secs]
        for sec in secs:
            key = f"BODY[{sec}]"
            try:
                got = fetch_items(client, seq, f"BODY.PEEK[{sec}]")
                items[key] = next((v for k, v in got.items() if k.startswith("BODY[")), None)
            except Exception as exc:  # noqa: BLE001
                items[key] = f"<error: {exc}>"
        result[name] = items
    for key, needle in SEARCHES:
        client.literal = needle.encode("utf-8")
        try:
            typ, data = client.search("UTF-8", key)  # imaplib adds CHARSET
            hits = sorted(names[int(n) - 1] for n in (data[0] or b"").split()) \
                if typ == "OK" else f"<{typ} {data}>"
        except Exception as exc:  # noqa: BLE001
            hits = f"<error: {exc}>"
        result.setdefault("SEARCH", {})[f"{key} {needle}"] = hits
    return result


def jsonable(v):
    if isinstance(v, bytes):
        return {"b": v.decode("latin-1")}
    if isinstance(v, list):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    return v


def compare(dovecot: dict, popbridge: dict) -> list[str]:
    problems = []
    for name, items in dovecot.items():
        for item, want in items.items():
            got = popbridge.get(name, {}).get(item, "<missing>")
            if got == want:
                continue
            if (name, item) in KNOWN_DIFFERENCES or ("*", item) in KNOWN_DIFFERENCES:
                continue
            problems.append(f"{name} {item}:\n    dovecot:   {describe(want)}\n"
                            f"    popbridge: {describe(got)}")
    return problems


# ---- fixtures ------------------------------------------------------------------------

def enable_imap(dc: harness.Dovecot) -> int:
    """Turns on Dovecot's IMAP service on a free loopback port (config rewrite + reload)."""
    port = harness.free_port()
    conf = dc.conf.read_text()
    conf = conf.replace("protocols = pop3", "protocols = pop3 imap", 1)
    conf = conf.replace("  inet_listener imap {\n    port = 0\n  }",
                        f"  inet_listener imap {{\n    address = 127.0.0.1\n    port = {port}\n  }}", 1)
    if os.geteuid() != 0:
        conf = conf.replace("service imap-login {\n", "service imap-login {\n  chroot =\n", 1)
    dc.conf.write_text(conf)
    dc.proc.send_signal(signal.SIGHUP)
    harness.wait_until(lambda: harness.read_greeting("127.0.0.1", port).startswith(b"* OK"),
                       20, f"Dovecot IMAP greeting on 127.0.0.1:{port}")
    return port


class MimeDifferentialTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.names = sorted(p.name for p in CORPUS.glob("*.eml"))
        assert len(cls.names) >= 40, f"corpus has {len(cls.names)} messages"
        cls.dc = harness.Dovecot().start()
        for name in cls.names:
            cls.dc.add_message((CORPUS / name).read_bytes())
        cls.imap_port = enable_imap(cls.dc)
        client = harness.imap_login("127.0.0.1", cls.imap_port, cls.dc.user, cls.dc.password)
        try:
            cls.dovecot = collect(client, cls.names, None)
        finally:
            harness.imap_logout(client)
        if os.environ.get("MIME_DIFF_RECORD"):
            Path(os.environ["MIME_DIFF_RECORD"]).write_text(
                json.dumps(jsonable(cls.dovecot), indent=1, ensure_ascii=False, sort_keys=True))

    @classmethod
    def tearDownClass(cls):
        cls.dc.stop()

    def test_dovecot_side_is_sane(self):
        """The reference answers what RFC 3501 says, so the comparison means something."""
        d = self.dovecot
        env = d["14-group-undisclosed.eml"]["ENVELOPE"]
        self.assertEqual(env[5], [[None, None, b"undisclosed-recipients", None],
                                  [None, None, None, None]])
        bs = d["04-multipart-mixed.eml"]["BODYSTRUCTURE"]
        self.assertIsInstance(bs[0], list)
        self.assertEqual(bs[2].lower(), b"mixed")
        self.assertEqual(d["04-multipart-mixed.eml"]["BODY[1]"], "Grüße aus Köln".encode())
        self.assertEqual(d["SEARCH"]["SUBJECT grüße"], ["10-encoded-words.eml"])
        # The comparison itself: a changed value is reported, an equal one is not.
        other = json.loads(json.dumps(jsonable(d)))
        self.assertEqual(compare({"a": {"X": b"1"}}, {"a": {"X": b"1"}}), [])
        self.assertEqual(len(compare({"a": {"X": b"1"}}, {"a": {"X": b"2"}})), 1)
        self.assertTrue(other)

    def test_popbridge_matches_dovecot(self):
        pb = harness.Popbridge(upstream=self.dc, keep_on_server="true")
        self.addCleanup(pb.cleanup)
        pb.start()
        pb.wait_for(lambda: pb.message_count() == len(self.names), SYNC_TIMEOUT,
                    f"popbridge holds all {len(self.names)} corpus messages")
        client = pb.imap()
        try:
            mine = collect(client, self.names, self.dovecot)
        finally:
            harness.imap_logout(client)
        problems = compare(self.dovecot, mine)
        total = sum(len(v) for v in self.dovecot.values())
        if problems:
            self.fail(f"{len(problems)} of {total} compared items differ from Dovecot:\n" +
                      "\n".join(problems))


if __name__ == "__main__":
    unittest.main(verbosity=2)
