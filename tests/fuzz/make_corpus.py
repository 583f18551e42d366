#!/usr/bin/env python3
"""Makes seed corpora for tests/fuzz/corpus/<target>/ from the unit-test tables.

Every C++ string literal of the listed unit-test files (adjacent literals joined, raw strings
included) becomes one seed, with the target's leading option bytes in front, plus a few
hand-written whole sessions. Seeds are named by content hash.

Usage: python3 tests/fuzz/make_corpus.py STAGING_DIR
then keep only the seeds that add coverage, per target (fuzz build dir build-fuzz):
  build-fuzz/tests/fuzz/<target> -merge=1 tests/fuzz/corpus/<target> STAGING_DIR/<target>
"""

import hashlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UNIT = ROOT / "tests" / "unit"

_ESC = {"n": b"\n", "r": b"\r", "t": b"\t", "0": b"\0", "\\": b"\\", '"': b'"', "'": b"'",
        "a": b"\a", "b": b"\b", "f": b"\f", "v": b"\v", "?": b"?"}


def _unescape(body: str) -> bytes:
    out = bytearray()
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        n = body[i + 1] if i + 1 < len(body) else ""
        if n == "x":
            m = re.match(r"[0-9a-fA-F]+", body[i + 2:])
            out.append(int(m.group(0), 16) & 0xFF if m else 0)
            i += 2 + (len(m.group(0)) if m else 0)
        elif n in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
        else:
            out += _ESC.get(n, n.encode())
            i += 2
    return bytes(out)


_TOKEN = re.compile(r'R"([^(\s]*)\((.*?)\)\1"|"((?:[^"\\\n]|\\.)*)"|(//[^\n]*)|(\'(?:[^\'\\]|\\.)\')',
                    re.S)


def literals(path: Path) -> list[bytes]:
    """String literals of a C++ file; adjacent ones (only whitespace between) are joined."""
    text = path.read_text(encoding="utf-8", errors="replace")
    out: list[bytes] = []
    last_end = -1
    for m in _TOKEN.finditer(text):
        if m.group(4) is not None or m.group(5) is not None:
            continue  # comment or char literal
        value = m.group(2).encode() if m.group(2) is not None else _unescape(m.group(3))
        if out and last_end >= 0 and text[last_end:m.start()].strip() == "":
            out[-1] += value
        else:
            out.append(value)
        last_end = m.end()
    return [v for v in out if v]


OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "corpus"


def write(target: str, seeds: list[bytes]) -> int:
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    new = 0
    for s in seeds:
        if len(s) > 16384:
            continue
        name = hashlib.sha1(s).hexdigest()[:16]
        p = d / name
        if not p.exists():
            p.write_bytes(s)
            new += 1
    return new


def files(*globs: str) -> list[Path]:
    out: list[Path] = []
    for g in globs:
        out += sorted(UNIT.glob(g))
    return out


def main() -> int:
    imap_lits = [l for f in files("protocol/imap/*.cpp", "protocol/imap/parse/*.cpp") for l in literals(f)]
    pop3_lits = [l for f in files("protocol/pop3/*.cpp") for l in literals(f)]
    mbox_lits = [l for f in files("protocol/imap/mailbox_name_test.cpp") for l in literals(f)]
    yaml_lits = [l for f in files("config/*.cpp") for l in literals(f)]

    sessions = [
        b"a1 CAPABILITY\r\na2 LOGIN alice secret\r\na3 SELECT INBOX\r\n"
        b"a4 FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])\r\na5 LOGOUT\r\n",
        b"a LOGIN {5}\r\nalice {6}\r\nsecret\r\nb EXAMINE INBOX\r\nc UID FETCH 1:* BODY[]\r\n",
        b"a LOGIN {5+}\r\nalice \"secret\"\r\nb SELECT \"INBOX\"\r\nc FETCH 2 RFC822\r\nd UNSELECT\r\n",
        b"x ID (\"name\" \"fuzz\")\r\ny NOOP\r\nz CHECK\r\n",
    ]
    tok, ses = [], []
    for s in imap_lits + sessions:
        tok += [bytes([0, 0]) + s, bytes([2, 7]) + s]
        ses += [bytes([0, 0]) + s, bytes([1, 5]) + s]

    pop3_sessions = [
        b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n"
        b"+OK\r\nUSER\r\nUIDL\r\nPIPELINING\r\n.\r\n+OK\r\n+OK logged in\r\n"
        b"+OK\r\n1 a1\r\n2 b2\r\n.\r\n+OK\r\n1 10\r\n2 12\r\n.\r\n"
        b"+OK\r\nSubject: x\r\n\r\n..dot\r\n.\r\n+OK\r\nSubject: y\r\n\r\nbody\r\n.\r\n"
        b"+OK\r\n+OK\r\n+OK bye\r\n",
        b"+OK hi\r\n+OK\r\nSTLS\r\nUSER\r\n.\r\n+OK begin TLS\r\n+OK\r\nUSER\r\nUIDL\r\n.\r\n"
        b"+OK\r\n-ERR [AUTH] bad password\r\n",
        b"+OK hi\r\n-ERR no CAPA\r\n+ \r\n+OK\r\n-ERR [IN-USE] locked\r\n",
    ]
    reply, client = [], []
    for s in pop3_lits + pop3_sessions:
        reply += [bytes([0, 0]) + s, bytes([1, 3]) + s]
    for s in pop3_sessions + pop3_lits:
        for mode in (0, 2, 8):
            client.append(bytes([mode, 9]) + s)

    config_seeds = []
    for s in yaml_lits:
        if b":" in s:
            config_seeds += [b"\0" + s, b"\1" + s]
    design = (ROOT.parent / "shared" / "DESIGN.md")
    for f in (design, ROOT / "README.md", ROOT / "docs" / "configuration.md"):
        if f.exists():
            for block in re.findall(r"```yaml\n(.*?)```", f.read_text(), re.S):
                config_seeds += [b"\0" + block.encode(), b"\1" + block.encode()]

    mime = []
    for f in sorted((ROOT / "tests" / "data").glob("*.eml")) + files("protocol/mime/*.cpp"):
        for body in ([f.read_bytes()] if f.suffix == ".eml" else literals(f)):
            mime += [b"\0" + body, b"\1" + body]

    # fuzz_search: the argument part of every SEARCH / UID SEARCH line of the unit tests
    # (the target adds "a [UID] SEARCH", RETURN and CHARSET from byte 0), plus hand-written
    # programs that reach the fixtures' RFC 2047 words, dates, keywords and deep trees.
    search_args = set()
    search_rx = re.compile(rb"(?:^|\n)[A-Za-z0-9.]+ (?:UID )?SEARCH (.*?)\r\n", re.S)
    for lit in imap_lits + [l for f in files("protocol/mime/*.cpp") for l in literals(f)]:
        for m in search_rx.finditer(lit):
            args = m.group(1)
            search_args.add(args)
    search_args.update([
        b"OR SUBJECT caf\xc3\xa9 FROM J\xc3\xbcrgen",
        b"TEXT r\xc3\xa9sum\xc3\xa9",
        b"BODY quarterly NOT BODY inner",
        b"HEADER X-Empty \"\" UNKEYWORD work",
        b"KEYWORD $Junk OR ANSWERED DRAFT",
        b"SENTON 29-Feb-2024 OR SENTBEFORE 1-Jan-2000 SENTSINCE \"15-Nov-2023\"",
        b"BEFORE 1-Jan-1970 SINCE 31-Dec-1969",
        b"UID 4000000000:* LARGER 10 SMALLER 4294967296",
        b"1:4294967295 UID 1:*,20",
        b"MODSEQ \"/flags/\\\\Seen\" all 41",
        b"SUBJECT {6}\r\n\xe2\x9c\x93 don",
        b"TEXT {5+}\r\ninner",
        b"(((((((((((((((((((((((((((((((((ALL)))))))))))))))))))))))))))))))))",
        b"NOT " * 32 + b"ALL",
        b"OR " * 30 + b"SEEN" + b" ALL" * 30,
    ])
    search = []
    for a in sorted(search_args):
        for mode in (0, 1, 2, 9, 24, 31):
            search.append(bytes([mode]) + a)

    counts = {
        "fuzz_search": write("fuzz_search", search),
        "fuzz_mime": write("fuzz_mime", mime),
        "fuzz_imap_tokenizer": write("fuzz_imap_tokenizer", tok),
        "fuzz_imap_session": write("fuzz_imap_session", ses),
        "fuzz_pop3_reply": write("fuzz_pop3_reply", reply),
        "fuzz_pop3_client": write("fuzz_pop3_client", client),
        "fuzz_mailbox_name": write("fuzz_mailbox_name", mbox_lits + [b"INBOX", b"&AOk-t&AOk-"]),
        "fuzz_config": write("fuzz_config", config_seeds),
    }
    for k, v in counts.items():
        print(f"{k}: {v} new seeds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
