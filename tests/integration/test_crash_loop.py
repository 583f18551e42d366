#!/usr/bin/env python3
"""Crash loops: popbridge is SIGKILLed at random moments and restarted, again and again
(DESIGN.md "Store" invariants 1-4, "Tests": crash tests).

IngestCrashLoop: a Dovecot POP3 upstream holds small and 1-3 MB messages; popbridge polls
it and is killed 0-300 ms (seeded RNG, seed printed) after each start, so kills land
mid-RETR, mid-fsync and mid-commit. After every kill, with the daemon down:
  - every message missing upstream is in the store (never a DELE for a message the store
    lacks; keep_on_server: false variant), checked over IMAP after the restart;
  - no Message-ID is stored twice, a message keeps its UID, UIDs only grow, UIDVALIDITY
    never changes, UIDNEXT never goes back.
At the end (clean finish): every upstream message is in INBOX exactly once with the same
bytes, the upstream is empty (keep_on_server: false), tmp/ is empty, cur/ holds exactly
the indexed files, and the daemon's log shows recovery.

ImapCrashLoop: one IMAP client does APPEND, UID STORE, UID COPY, UID MOVE, UID EXPUNGE,
CREATE, RENAME and DELETE as fast as it can while popbridge is killed at random moments.
After each restart every operation whose tagged OK the client saw is there; the one
operation in flight at the kill is either fully done or not at all (a MOVE is in exactly
one folder); UIDNEXT, HIGHESTMODSEQ and MODSEQs never go back; UIDVALIDITY is kept.

IngestCrashLoop.test_same_pid_on_every_restart runs popbridge as PID 1 of a new PID
namespace (unshare; root only), as in a container: restarts within the same second reuse the
pid, which once made file names repeat (a new message renamed over a committed one).

CompactionCrashLoop: many flag changes on a 100-message folder make the journal compact
every ~41 STOREs; a watcher kills popbridge the moment popbridge.index.compact exists.

SigtermDuringIngest: SIGTERM mid-ingest stops popbridge within a bounded time, and what it
committed is complete (the next run finishes the ingest without duplicates).

Counts scale down under the sanitizer build (POPBRIDGE_SANITIZER_CHECK=1) or with
POPBRIDGE_CRASH_LOOPS=<n>; POPBRIDGE_CRASH_SEED=<n> replays a run.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SANITIZED = os.environ.get("POPBRIDGE_SANITIZER_CHECK") == "1"
LOOPS = int(os.environ.get("POPBRIDGE_CRASH_LOOPS") or (6 if SANITIZED else 18))
SEED = int(os.environ.get("POPBRIDGE_CRASH_SEED") or random.SystemRandom().randrange(1 << 30))

_MSGID_RX = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.M | re.I)
_UID_RX = re.compile(rb"\bUID (\d+)")
_FLAGS_RX = re.compile(rb"\bFLAGS \(([^)]*)\)")
_MODSEQ_RX = re.compile(rb"\bMODSEQ \((\d+)\)")


def message_id(data: bytes) -> str:
    m = _MSGID_RX.search(data)
    assert m, f"no Message-ID in {data[:200]!r}"
    return m.group(1).decode()


def big_message(i: int, size: int, rng: random.Random) -> bytes:
    """A message with a base64 attachment of about `size` bytes on the wire."""
    raw = rng.randbytes(size * 3 // 4)
    enc = base64.b64encode(raw).decode("ascii")
    lines = "\r\n".join(enc[k:k + 76] for k in range(0, len(enc), 76))
    return ("From: Scanner <scan@example.org>\r\nTo: alice@example.net\r\n"
            f"Subject: big scan {i}\r\nMessage-ID: <big-{i}-{rng.getrandbits(32):08x}@crash.test>\r\n"
            "Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n"
            f"\r\n{lines}\r\n").encode()


def corpus(n: int, big: int, seed: int) -> list[bytes]:
    """n ordinary messages and `big` 1-3 MB ones (kills land mid-RETR and mid-commit)."""
    rng = random.Random(seed)
    messages = harness.generate_messages(n, seed=seed, big_index=-1)
    for i in range(big):
        messages.insert(rng.randrange(len(messages) + 1),
                        big_message(seed * 100 + i, rng.randint(1, 3) * 1_000_000, rng))
    return messages


def observe_folder(client: imaplib.IMAP4, mailbox: str) -> dict:
    """EXAMINE + UID FETCH 1:* (FLAGS MODSEQ Message-ID) ->
    {uidvalidity, uidnext, highestmodseq, messages: {uid: (msgid, frozenset flags, modseq)}}."""
    typ, data = client.select(f'"{mailbox}"', readonly=True)
    if typ != "OK":
        raise AssertionError(f"EXAMINE {mailbox}: {typ} {data}")
    exists = int(data[0] or 0)

    def code(name: str) -> int:
        _t, v = client.response(name)
        if not v or v[0] is None:
            raise AssertionError(f"EXAMINE {mailbox}: no [{name}] response code")
        return int(v[0])

    out = {"uidvalidity": code("UIDVALIDITY"), "uidnext": code("UIDNEXT"),
           "highestmodseq": code("HIGHESTMODSEQ"), "messages": {}}
    if exists == 0:
        return out
    typ, data = client.uid("FETCH", "1:*",
                           "(UID FLAGS MODSEQ BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    if typ != "OK":
        raise AssertionError(f"UID FETCH in {mailbox}: {typ} {data}")
    for k, part in enumerate(data):
        if not isinstance(part, tuple):
            continue
        meta = part[0]
        if k + 1 < len(data) and isinstance(data[k + 1], bytes):
            meta += data[k + 1]
        uid = int(_UID_RX.search(meta).group(1))
        flags = frozenset(f.decode() for f in _FLAGS_RX.search(meta).group(1).split()
                          if f != b"\\Recent")
        modseq = int(_MODSEQ_RX.search(meta).group(1))
        m = _MSGID_RX.search(part[1])
        msgid = m.group(1).decode() if m else ""
        if uid in out["messages"]:
            raise AssertionError(f"{mailbox}: UID {uid} returned twice")
        out["messages"][uid] = (msgid, flags, modseq)
    if len(out["messages"]) != exists:
        raise AssertionError(f"{mailbox}: {exists} EXISTS but {len(out['messages'])} fetched")
    return out


def condstore_login(pb: harness.Popbridge) -> imaplib.IMAP4:
    """A logged-in client with CONDSTORE enabled (HIGHESTMODSEQ in EXAMINE, RFC 7162)."""
    try:
        client = pb.imap()
    except OSError as exc:
        code = pb.proc.poll() if pb.proc is not None else "not running"
        raise AssertionError(f"IMAP login failed ({exc!r}); popbridge exit status: {code}\n"
                             f"{pb.log_since(pb.log_offset)[-3000:]}") from None
    typ, data = client._simple_command("ENABLE", "CONDSTORE")
    if typ != "OK":
        raise AssertionError(f"ENABLE CONDSTORE: {typ} {data}")
    return client


def maildir_files(folder_dir: Path) -> tuple[list[str], list[str]]:
    """(cur/ names, tmp/ names) of one store folder."""
    return sorted(os.listdir(folder_dir / "cur")), sorted(os.listdir(folder_dir / "tmp"))


class CrashLoopBase(unittest.TestCase):
    def setUp(self):
        harness.log(f"crash loop seed {SEED} (replay: POPBRIDGE_CRASH_SEED={SEED}), {LOOPS} loops")
        self.rng = random.Random(SEED ^ zlib.crc32(self.id().encode()))

    def start_and_kill_when_busy(self, pb, tmp_dir: Path, timeout: float = 10.0) -> bool:
        """Starts popbridge and SIGKILLs it as soon as tmp_dir holds a file (a message being
        downloaded or committed). True if that happened within `timeout`; the caller still
        calls pb.kill9() to reap it (or to kill it if tmp/ never filled)."""
        fired = threading.Event()
        done = threading.Event()
        skip = self.rng.randrange(0, 4)  # which sighting to act on: spread over the ingest

        def watch() -> None:
            seen = 0
            end = time.monotonic() + timeout
            while not done.is_set() and time.monotonic() < end:
                proc = pb.proc
                if proc is None:
                    continue
                with contextlib.suppress(FileNotFoundError), os.scandir(tmp_dir) as entries:
                    if any(True for _ in entries):
                        seen += 1
                        if seen > skip:
                            proc.kill()
                            fired.set()
                            return

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            pb.start()
        except RuntimeError:
            if not fired.is_set():
                raise
        fired.wait(timeout)
        done.set()
        watcher.join()
        return fired.is_set()


# --------------------------------------------------------------------------
# a. ingest crash loop
# --------------------------------------------------------------------------

def port_free(port: int) -> bool:
    """True when 127.0.0.1:port can be bound again (no process listens on it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class IngestCrashLoop(CrashLoopBase):
    def run_loop(self, keep_on_server: bool, same_pid: bool = False) -> None:
        messages = corpus(60, 4, SEED % 100_000)
        by_id = {message_id(m): m for m in messages}
        self.assertEqual(len(by_id), len(messages), "corpus Message-IDs must be unique")
        dovecot = harness.Dovecot().start()
        self.addCleanup(dovecot.stop)
        dovecot.add_messages(messages)
        pb = harness.Popbridge(upstream=dovecot, poll_every="10s",
                               keep_on_server="true" if keep_on_server else "false")
        self.addCleanup(pb.cleanup)
        if same_pid:
            # PID 1 of a new PID namespace on every start, as in a container: names built
            # from time + pid + a counter repeat when a restart comes within the second.
            wrapper = pb.dir / "popbridge-pid1.sh"
            wrapper.write_text(f"#!/bin/sh\nexec unshare --pid --fork --kill-child "
                               f"{pb.binary} \"$@\"\n")
            wrapper.chmod(0o755)
            pb.binary = wrapper
        inbox = pb.data_dir / "users" / pb.user

        uidvalidity = None
        uidnext = 0
        uid_of: dict[str, int] = {}  # Message-ID -> UID, fixed once seen
        upstream_missing: set[str] = set()
        kills = 0
        busy_kills = 0  # kills that landed while tmp/ held a file
        progress: list[int] = []  # messages stored at each checked restart

        def check_store(where: str) -> dict:
            nonlocal uidvalidity, uidnext
            client = condstore_login(pb)
            try:
                obs = observe_folder(client, "INBOX")
            finally:
                harness.imap_logout(client)
            if uidvalidity is None:
                uidvalidity = obs["uidvalidity"]
            self.assertEqual(obs["uidvalidity"], uidvalidity, f"{where}: UIDVALIDITY changed")
            self.assertGreaterEqual(obs["uidnext"], uidnext, f"{where}: UIDNEXT went back")
            uidnext = obs["uidnext"]
            seen: dict[str, int] = {}
            for uid, (msgid, _f, _m) in sorted(obs["messages"].items()):
                self.assertLess(uid, obs["uidnext"], f"{where}: UID {uid} >= UIDNEXT")
                self.assertIn(msgid, by_id, f"{where}: UID {uid} is not an upstream message")
                self.assertNotIn(msgid, seen, f"{where}: {msgid} stored twice "
                                              f"(UIDs {seen.get(msgid)} and {uid})")
                seen[msgid] = uid
                if msgid in uid_of:
                    self.assertEqual(uid, uid_of[msgid], f"{where}: {msgid} changed UID")
                else:
                    self.assertTrue(all(uid > u for u in uid_of.values()),
                                    f"{where}: new UID {uid} not above the older ones")
            for msgid, uid in uid_of.items():
                self.assertIn(msgid, seen, f"{where}: {msgid} (UID {uid}) disappeared")
            uid_of.update(seen)
            # Invariant 1: whatever the upstream lost, the store has.
            lost = upstream_missing - set(seen)
            self.assertFalse(lost, f"{where}: deleted upstream but not in the store: {sorted(lost)}")
            return seen

        for loop in range(LOOPS):
            # New mail keeps arriving, so every restart has something to download.
            more = corpus(3, 1 if loop % 4 == 0 else 0, SEED % 100_000 + 1 + loop)
            messages += more
            by_id.update((message_id(m), m) for m in more)
            dovecot.add_messages(more)
            where = f"loop {loop} (seed {SEED})"
            if loop % 2 == 1:
                # Kill mid-ingest whatever the machine's speed: the moment a download or a
                # group commit has a file in tmp/ (a random delay after the greeting can miss
                # a fast ingest altogether).
                if self.start_and_kill_when_busy(pb, inbox / "tmp"):
                    busy_kills += 1
            else:
                pb.start()
                seen = check_store(where)
                progress.append(len(seen))
                time.sleep(self.rng.uniform(0, 0.3))  # a random moment, not a wait for a state
            pb.kill9()
            kills += 1
            if same_pid:
                # SIGKILL of unshare reaches the namespace's PID 1 asynchronously
                # (--kill-child): wait until its listening socket is gone before restarting.
                harness.wait_until(lambda: port_free(pb.imap_port), 10,
                                   f"IMAP port {pb.imap_port} free after the kill")
            upstream_missing = set(by_id) - {message_id(m) for m in dovecot.upstream_messages().values()}
            if keep_on_server:
                self.assertFalse(upstream_missing, f"{where}: keep_on_server true but upstream lost "
                                                   f"{sorted(upstream_missing)}")

        harness.log(f"stored at each restart: {progress}")
        # Clean finish: let it ingest everything, stop with SIGTERM.
        if pb.proc is None:
            pb.start()
        pb.wait_for(lambda: len(check_store("final")) == len(messages), 60,
                    f"all {len(messages)} messages in INBOX")
        if not keep_on_server:
            pb.wait_for(lambda: not dovecot.upstream_messages(), 30,
                        "upstream empty (keep_on_server: false)")
        _uv, stored = pb.fetch_all()
        self.assertEqual(sorted(harness.sha256(b) for b in stored.values()),
                         sorted(harness.sha256(m) for m in messages),
                         "stored bytes differ from the upstream messages")
        if same_pid:  # unshare ignores SIGTERM and waits for its child: signal the group
            os.killpg(pb.proc.pid, signal.SIGTERM)
        self.assertEqual(pb.stop(), 0, "clean exit after SIGTERM")
        cur, tmp = maildir_files(inbox)
        self.assertEqual(tmp, [], "tmp/ not empty after a clean finish")
        self.assertEqual(len(cur), len(messages), f"cur/ holds {len(cur)} files for "
                                                  f"{len(messages)} indexed messages")
        log = pb.log_since(0)
        recoveries = re.findall(r"store: (?:recovered|removed|rolled|truncated|finished).*", log)
        harness.log(f"{kills} kills, {busy_kills} with a file in tmp/; recovery log lines: "
                    f"{len(recoveries)}; e.g. {recoveries[:3]}")
        self.assertGreater(busy_kills, 0, "no kill landed mid-ingest: the test did not test it")
        self.assertTrue(recoveries, "no recovery in the daemon log after "
                                    f"{kills} kills mid-ingest")

    def test_keep_on_server(self):
        self.run_loop(keep_on_server=True)

    def test_delete_after_download(self):
        self.run_loop(keep_on_server=False)

    def test_same_pid_on_every_restart(self):
        if os.geteuid() != 0 or subprocess.run(["unshare", "--pid", "--fork", "true"],
                                               capture_output=True).returncode != 0:
            self.skipTest("needs root and unshare(1) for a PID namespace")
        self.run_loop(keep_on_server=False, same_pid=True)


# --------------------------------------------------------------------------
# b. IMAP-side crash loop
# --------------------------------------------------------------------------

_COPYUID_RX = re.compile(rb"\[COPYUID (\d+) ([0-9:,]+) ([0-9:,]+)\]")
_APPENDUID_RX = re.compile(rb"\[APPENDUID (\d+) (\d+)\]")
_FLAG_CHOICES = ("\\Seen", "\\Flagged", "\\Answered", "\\Draft")


def expand_set(text: bytes) -> list[int]:
    out: list[int] = []
    for part in text.decode().split(","):
        if ":" in part:
            a, b = (int(x) for x in part.split(":"))
            out.extend(range(min(a, b), max(a, b) + 1))
        else:
            out.append(int(part))
    return out


class Killed(Exception):
    """The connection died because the test killed popbridge."""


class Op:
    """One IMAP operation. apply(model) returns the model after it succeeded, with new
    messages keyed ("new", msgid) when their UIDs are not known (no tagged OK seen)."""

    def __init__(self, kind: str, **kw):
        self.kind = kind
        self.__dict__.update(kw)

    def __repr__(self) -> str:
        return f"Op({self.kind}, " + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()
                                                if k != "kind" and k != "data") + ")"


def apply_op(model: dict, op: Op, new_uids: dict | None = None) -> dict:
    """The model after `op` succeeded. new_uids: {(folder, msgid or source uid): uid} from
    APPENDUID/COPYUID when known."""
    m = {f: dict(msgs) for f, msgs in model.items()}
    if op.kind == "append":
        key = (new_uids or {}).get(op.msgid, ("new", op.msgid))
        m[op.folder][key] = (op.msgid, op.flags)
    elif op.kind == "store":
        for uid in op.uids:
            msgid, flags = m[op.folder][uid]
            m[op.folder][uid] = (msgid, flags | op.flags if op.add else flags - op.flags)
    elif op.kind in ("copy", "move"):
        for uid in op.uids:
            msgid, flags = m[op.folder][uid]
            # Copies of one message share a Message-ID: the source UID tells them apart.
            key = (new_uids or {}).get(uid, ("new", msgid, op.folder, uid))
            m[op.target][key] = (msgid, flags)
            if op.kind == "move":
                del m[op.folder][uid]
    elif op.kind == "expunge":
        for uid in op.uids:
            del m[op.folder][uid]
    elif op.kind == "create":
        m[op.folder] = {}
    elif op.kind == "rename":
        m[op.target] = m.pop(op.folder)
    elif op.kind == "delete":
        del m[op.folder]
    else:
        raise AssertionError(f"unknown op {op}")
    return m


def match_model(candidate: dict, observed: dict, uidnext_before: dict) -> tuple[dict | None, str]:
    """Concrete model if `observed` ({folder: {uid: (msgid, flags)}}) is `candidate` with its
    ("new", msgid) keys given UIDs >= the folder's UIDNEXT before; else (None, why)."""
    if set(candidate) != set(observed):
        return None, f"folders {sorted(observed)} != {sorted(candidate)}"
    out: dict = {}
    for folder, msgs in candidate.items():
        obs = dict(observed[folder])
        concrete: dict = {}
        for key, value in msgs.items():
            if isinstance(key, int):
                if obs.get(key) != value:
                    return None, f"{folder} UID {key}: {obs.get(key)} != {value}"
                concrete[key] = obs.pop(key)
        for key, value in msgs.items():
            if isinstance(key, tuple):  # identical copies: any of them (multiset match)
                hits = sorted(u for u, v in obs.items() if v == value)
                if not hits:
                    return None, f"{folder}: new message {value} missing"
                if hits[0] < uidnext_before.get(folder, 0):
                    return None, f"{folder}: new UID {hits[0]} below the old UIDNEXT"
                concrete[hits[0]] = obs.pop(hits[0])
        if obs:
            return None, f"{folder}: unexpected messages {obs}"
        out[folder] = concrete
    return out, ""


class ImapCrashLoop(CrashLoopBase):
    def test_acknowledged_operations_survive_kill9(self):
        pb = harness.Popbridge(upstream=None)
        self.addCleanup(pb.cleanup)
        rng = self.rng
        model: dict = {"INBOX": {}}   # folder -> {uid: (msgid, frozenset flags)}
        meta: dict = {}               # folder -> observed (uidvalidity, uidnext, highestmodseq)
        modseqs: dict = {}            # (folder, uid) -> last MODSEQ seen
        counters = {"msg": 0, "folder": 0, "ops": 0, "acked": 0, "inflight": 0}
        inflight: Op | None = None

        def observe(client) -> dict:
            typ, data = client.list('""', '"*"')
            self.assertEqual(typ, "OK", f"LIST: {data}")
            names = []
            for line in data:
                name = line.decode().rsplit(" ", 1)[-1].strip('"')
                if name == "INBOX" or name.startswith("crash"):
                    names.append(name)
            obs = {}
            for name in names:
                obs[name] = observe_folder(client, name)
            return obs

        def check(client, where: str) -> None:
            nonlocal model
            obs = observe(client)
            observed = {f: {u: (mid, fl) for u, (mid, fl, _ms) in o["messages"].items()}
                        for f, o in obs.items()}
            uidnext_before = {f: v[1] for f, v in meta.items()}
            candidates = [model] if inflight is None else [model, apply_op(model, inflight)]
            whys = []
            for cand in candidates:
                got, why = match_model(cand, observed, uidnext_before)
                if got is not None:
                    break
                whys.append(why)
            else:
                self.fail(f"{where}: store state matches neither before nor after the "
                          f"operation in flight {inflight}: {whys}")
            # UIDVALIDITY kept (a renamed folder keeps its own), UIDNEXT, HIGHESTMODSEQ and
            # MODSEQ never go back.
            if inflight is not None and inflight.kind == "rename" and inflight.target in obs:
                rekey(inflight.folder, inflight.target)
            for f, o in obs.items():
                prev = meta.get(f)
                if prev is not None:
                    self.assertEqual(o["uidvalidity"], prev[0], f"{where}: {f} UIDVALIDITY changed")
                    self.assertGreaterEqual(o["uidnext"], prev[1], f"{where}: {f} UIDNEXT went back")
                    self.assertGreaterEqual(o["highestmodseq"], prev[2],
                                            f"{where}: {f} HIGHESTMODSEQ went back")
                for uid, (_mid, _fl, ms) in o["messages"].items():
                    old = modseqs.get((f, uid))
                    if old is not None:
                        self.assertGreaterEqual(ms, old, f"{where}: {f} UID {uid} MODSEQ went back")
            meta.clear()
            modseqs.clear()
            for f, o in obs.items():
                meta[f] = (o["uidvalidity"], o["uidnext"], o["highestmodseq"])
                for uid, (_mid, _fl, ms) in o["messages"].items():
                    modseqs[(f, uid)] = ms
            model = got

        def rekey(old: str, new: str) -> None:
            """Observed figures of a renamed folder follow it."""
            if old in meta:
                meta[new] = meta.pop(old)
            for (f, uid) in [k for k in modseqs if k[0] == old]:
                modseqs[(new, uid)] = modseqs.pop((f, uid))

        def command(client, killed: threading.Event, *args):
            """_simple_command; Killed if the kill cut it off."""
            try:
                typ, data = client._simple_command(*args)
            except (imaplib.IMAP4.abort, OSError, EOFError) as exc:
                if killed.is_set():
                    raise Killed() from exc
                raise
            return typ, data

        def next_op() -> Op:
            folders = sorted(model)
            crash_folders = [f for f in folders if f != "INBOX"]
            with_msgs = [f for f in folders if model[f]]
            r = rng.random()
            if r < 0.30 or not with_msgs:
                counters["msg"] += 1
                msgid = f"<ap-{SEED}-{counters['msg']}@crash.test>"
                size = rng.choice((2_000, 8_000, 30_000)) if rng.random() < 0.9 else 600_000
                body = "".join(f"{rng.getrandbits(64):016x} line {k}\r\n" for k in range(size // 30))
                data = (f"From: a@example.org\r\nTo: alice@example.net\r\nSubject: crash {counters['msg']}\r\n"
                        f"Message-ID: {msgid}\r\n\r\n{body}").encode()
                flags = frozenset(rng.sample(_FLAG_CHOICES, rng.randint(0, 2)))
                return Op("append", folder=rng.choice(folders), msgid=msgid, flags=flags, data=data)
            if r < 0.85:
                folder = rng.choice(with_msgs)
                uids = sorted(rng.sample(sorted(model[folder]), min(len(model[folder]), rng.randint(1, 3))))
                kind = rng.choice(("store", "store", "copy", "move", "move", "expunge"))
                if kind == "store":
                    return Op("store", folder=folder, uids=uids, add=rng.random() < 0.7,
                              flags=frozenset(rng.sample(_FLAG_CHOICES, rng.randint(1, 2))))
                if kind == "expunge":
                    return Op("expunge", folder=folder, uids=uids)
                targets = [f for f in folders if f != folder] or folders
                return Op(kind, folder=folder, uids=uids, target=rng.choice(targets))
            if len(crash_folders) < 2 or r < 0.90:
                counters["folder"] += 1
                return Op("create", folder=f"crash{counters['folder']}")
            if r < 0.96:
                counters["folder"] += 1
                return Op("rename", folder=rng.choice(crash_folders), target=f"crash{counters['folder']}")
            return Op("delete", folder=rng.choice(crash_folders))

        def run(client, op: Op, killed: threading.Event) -> None:
            nonlocal model, inflight
            inflight = op
            new_uids: dict = {}
            if op.kind in ("store", "copy", "move", "expunge"):
                typ, data = command(client, killed, "SELECT", f'"{op.folder}"')
                self.assertEqual(typ, "OK", f"SELECT {op.folder}: {data}")
                client.state = "SELECTED"
                client.untagged_responses.clear()
            uidset = ",".join(str(u) for u in getattr(op, "uids", []))
            if op.kind == "append":
                flags = "(" + " ".join(sorted(op.flags)) + ")" if op.flags else None
                client.literal = op.data  # imaplib sends it after the continuation
                typ, data = command(client, killed, "APPEND", f'"{op.folder}"', flags,
                                    imaplib.Time2Internaldate(time.time()))
            elif op.kind == "store":
                typ, data = command(client, killed, "UID", "STORE", uidset,
                                    ("+" if op.add else "-") + "FLAGS.SILENT",
                                    "(" + " ".join(sorted(op.flags)) + ")")
            elif op.kind in ("copy", "move"):
                typ, data = command(client, killed, "UID", op.kind.upper(), uidset, f'"{op.target}"')
            elif op.kind == "expunge":
                # Two operations: the \\Deleted flag (acknowledged on its own), then UID EXPUNGE.
                run(client, Op("store", folder=op.folder, uids=op.uids, add=True,
                               flags=frozenset({"\\Deleted"})), killed)
                inflight = op
                typ, data = command(client, killed, "UID", "EXPUNGE", uidset)
            else:
                if client.state == "SELECTED":  # RENAME/DELETE of the selected folder: [INUSE]
                    typ, data = command(client, killed, "UNSELECT")
                    self.assertEqual(typ, "OK", f"UNSELECT: {data}")
                    client.state = "AUTH"
                cmd = {"create": "CREATE", "rename": "RENAME", "delete": "DELETE"}[op.kind]
                args = [f'"{op.folder}"'] + ([f'"{op.target}"'] if op.kind == "rename" else [])
                typ, data = command(client, killed, cmd, *args)
            self.assertEqual(typ, "OK", f"{op}: {data}")
            text = b" ".join(d for d in data if isinstance(d, bytes))
            if op.kind == "append":
                m = _APPENDUID_RX.search(text)
                self.assertTrue(m, f"{op}: no APPENDUID in {text!r}")
                new_uids[op.msgid] = int(m.group(2))
            elif op.kind in ("copy", "move"):
                m = _COPYUID_RX.search(text)
                if not m:
                    _t, untagged = client.response("COPYUID")
                    raw = b" ".join(u for u in (untagged or []) if u)
                    m = re.search(rb"(\d+) ([0-9:,]+) ([0-9:,]+)", raw)
                self.assertTrue(m, f"{op}: no COPYUID in {text!r}")
                src, dst = expand_set(m.group(2)), expand_set(m.group(3))
                self.assertEqual(sorted(src), op.uids, f"{op}: COPYUID source set")
                new_uids.update(zip(src, dst))
            model = apply_op(model, op, new_uids)
            if op.kind == "rename":
                rekey(op.folder, op.target)
            inflight = None
            counters["acked"] += 1

        # The model's flags also hold \\Deleted set by the expunge op (see run()).
        for loop in range(LOOPS):
            pb.start()
            where = f"loop {loop} (seed {SEED})"
            client = condstore_login(pb)
            check(client, where)
            killed = threading.Event()

            def kill() -> None:
                killed.set()
                pb.kill9()

            timer = threading.Timer(rng.uniform(0.02, 0.5), kill)
            timer.start()
            try:
                while not killed.is_set():
                    op = next_op()
                    counters["ops"] += 1
                    run(client, op, killed)
            except Killed:
                counters["inflight"] += inflight is not None
            finally:
                timer.join()
                harness.imap_logout(client)
        pb.start()
        client = condstore_login(pb)
        check(client, "final")
        harness.imap_logout(client)
        harness.log(f"IMAP crash loop: {counters['ops']} operations, {counters['acked']} "
                    f"acknowledged, {counters['inflight']} cut off by a kill; "
                    f"{sum(len(v) for v in model.values())} messages in {len(model)} folders")
        self.assertEqual(pb.stop(), 0)
        # Every folder: cur/ holds exactly the indexed files, tmp/ is empty.
        users = pb.data_dir / "users" / pb.user
        total = sum(len(os.listdir(d / "cur")) for d in [users] + sorted(users.glob(".[0-9]*")))
        leftovers = sum(len(os.listdir(d / "tmp")) for d in [users] + sorted(users.glob(".[0-9]*")))
        self.assertEqual(leftovers, 0, "files left in tmp/")
        self.assertEqual(total, sum(len(v) for v in model.values()),
                         "message files in cur/ != messages in the indexes")


# --------------------------------------------------------------------------
# c. kills during journal compaction
# --------------------------------------------------------------------------

class CompactionCrashLoop(CrashLoopBase):
    """Flag toggles on a 100-message folder write 100 journal records each, so the
    journal passes the compaction threshold (4096 records and twice the messages) every
    ~41 toggles. A watcher thread kills popbridge the moment popbridge.index.compact
    appears (compaction in progress); a random timer kills it otherwise."""

    N = 100

    def test_kill_during_compaction(self):
        pb = harness.Popbridge(upstream=None)
        self.addCleanup(pb.cleanup)
        rng = self.rng
        pb.start()
        client = condstore_login(pb)
        typ, data = client.create("bulk")
        self.assertEqual(typ, "OK", data)
        for i in range(self.N):
            typ, data = client.append("bulk", None, None,
                                      f"Subject: bulk {i}\r\nMessage-ID: <bulk-{i}@crash.test>\r\n"
                                      f"\r\nbody {i}\r\n".encode())
            self.assertEqual(typ, "OK", data)
        before = observe_folder(client, "bulk")
        harness.imap_logout(client)
        users = pb.data_dir / "users" / pb.user
        folder_dir = max([users] + sorted(users.glob(".[0-9]*")),
                         key=lambda d: len(os.listdir(d / "cur")))
        compact_file = folder_dir / "popbridge.index.compact"
        index_file = folder_dir / "popbridge.index"
        uids = sorted(before["messages"])
        flagged = False   # acknowledged state of \Flagged on every message
        inflight = None   # the state the toggle in flight would leave
        meta = (before["uidvalidity"], before["uidnext"], before["highestmodseq"])
        modseqs = {u: v[2] for u, v in before["messages"].items()}
        inodes = {index_file.stat().st_ino}
        during = toggles = 0
        loops = max(4, LOOPS // 3)
        for loop in range(loops):
            if pb.proc is None:
                pb.start()
            where = f"compaction loop {loop} (seed {SEED})"
            client = condstore_login(pb)
            obs = observe_folder(client, "bulk")
            self.assertEqual(sorted(obs["messages"]), uids, f"{where}: UIDs changed")
            self.assertEqual(obs["uidvalidity"], meta[0], f"{where}: UIDVALIDITY changed")
            self.assertGreaterEqual(obs["uidnext"], meta[1], f"{where}: UIDNEXT went back")
            self.assertGreaterEqual(obs["highestmodseq"], meta[2], f"{where}: HIGHESTMODSEQ went back")
            states = {("\\Flagged" in v[1]) for v in obs["messages"].values()}
            self.assertEqual(len(states), 1, f"{where}: a STORE on all messages applied to some only")
            state = states.pop()
            allowed = {flagged} | ({inflight} if inflight is not None else set())
            self.assertIn(state, allowed, f"{where}: \\Flagged is {state}, acknowledged {flagged}")
            flagged, inflight = state, None
            for u, v in obs["messages"].items():
                self.assertGreaterEqual(v[2], modseqs[u], f"{where}: UID {u} MODSEQ went back")
                modseqs[u] = v[2]
            meta = (obs["uidvalidity"], obs["uidnext"], obs["highestmodseq"])
            inodes.add(index_file.stat().st_ino)
            self.assertFalse(compact_file.exists(), f"{where}: a cut-short compaction file was kept")

            killed = threading.Event()
            stop_watch = threading.Event()
            lock = threading.Lock()
            hit = []

            def kill() -> bool:
                with lock:
                    if killed.is_set():
                        return False
                    killed.set()
                    pb.kill9()
                    return True

            start_inode = index_file.stat().st_ino
            let_finish = loop % 2 == 1  # every other loop, kill only after a compaction completed

            def watch() -> None:  # kill while the compaction file exists, or right after it
                while not stop_watch.is_set() and not killed.is_set():
                    if let_finish:
                        with contextlib.suppress(FileNotFoundError):
                            if index_file.stat().st_ino != start_inode:
                                kill()
                                return
                    elif compact_file.exists():
                        if kill():
                            hit.append(True)
                        return

            watcher = threading.Thread(target=watch)
            watcher.start()
            timer = threading.Timer(rng.uniform(1.0, 4.0), kill)
            timer.start()
            typ, data = client.select("bulk")
            self.assertEqual(typ, "OK", data)
            try:
                while not killed.is_set():
                    inflight = not flagged
                    try:
                        typ, data = client.uid("STORE", "1:*", "+FLAGS.SILENT" if inflight else
                                               "-FLAGS.SILENT", "(\\Flagged)")
                    except (imaplib.IMAP4.abort, OSError, EOFError):
                        if killed.is_set():
                            break
                        raise
                    self.assertEqual(typ, "OK", data)
                    flagged, inflight = inflight, None
                    toggles += 1
            finally:
                stop_watch.set()
                timer.cancel()
                timer.join()  # a timer already firing finishes its kill9 first
                watcher.join()
                kill()
                harness.imap_logout(client)
            during += bool(hit)
        pb.start()
        client = condstore_login(pb)
        obs = observe_folder(client, "bulk")
        harness.imap_logout(client)
        self.assertEqual(sorted(obs["messages"]), uids)
        self.assertIn({("\\Flagged" in v[1]) for v in obs["messages"].values()},
                      ({flagged}, {inflight}) if inflight is not None else ({flagged},))
        inodes.add(index_file.stat().st_ino)
        self.assertEqual(pb.stop(), 0)
        harness.log(f"compaction loop: {toggles} acknowledged toggles, {len(inodes) - 1} "
                    f"compactions seen, {during} of {loops} kills during a compaction")
        self.assertGreater(len(inodes), 1, "no compaction happened: the test did not test it")


# --------------------------------------------------------------------------
# SIGTERM during an active ingest
# --------------------------------------------------------------------------

class SigtermDuringIngest(CrashLoopBase):
    def test_sigterm_stops_promptly_and_cleanly(self):
        rng = self.rng
        messages = corpus(40, 4, SEED % 100_000 + 7)
        by_id = {message_id(m): m for m in messages}
        dovecot = harness.Dovecot().start()
        self.addCleanup(dovecot.stop)
        dovecot.add_messages(messages)
        pb = harness.Popbridge(upstream=dovecot, poll_every="10s", keep_on_server="false")
        self.addCleanup(pb.cleanup)
        stored: set[str] = set()
        for round_ in range(3):
            more = corpus(10, 1, SEED % 100_000 + 8 + round_)
            messages += more
            by_id.update((message_id(m), m) for m in more)
            dovecot.add_messages(more)  # every round has an ingest to interrupt
            pb.start()
            # The daemon is ingesting meanwhile: read the upstream first, then the store, so a
            # message committed and deleted between the two reads is not a false alarm
            # (a message only ever moves from upstream to store).
            missing = set(by_id) - {message_id(m) for m in dovecot.upstream_messages().values()}
            client = condstore_login(pb)
            obs = observe_folder(client, "INBOX")
            harness.imap_logout(client)
            ids = [v[0] for v in obs["messages"].values()]
            self.assertEqual(len(ids), len(set(ids)), f"round {round_}: a message stored twice")
            self.assertTrue(stored <= set(ids), f"round {round_}: committed messages were lost")
            stored = set(ids)
            self.assertFalse(missing - stored, f"round {round_}: deleted upstream, not stored: "
                                               f"{sorted(missing - stored)}")
            time.sleep(rng.uniform(0.05, 0.4))
            t0 = time.monotonic()
            pb.proc.send_signal(signal.SIGTERM)
            code = pb.proc.wait(timeout=30)
            took = time.monotonic() - t0
            pb.proc = None
            harness.log(f"round {round_}: SIGTERM -> exit {code} in {took:.2f} s, "
                        f"{len(stored)} stored before")
            self.assertEqual(code, 0, f"round {round_}: exit status after SIGTERM")
            self.assertLess(took, 7.0, f"round {round_}: SIGTERM took {took:.1f} s")
            cur, tmp = maildir_files(pb.data_dir / "users" / pb.user)
            self.assertEqual(tmp, [], f"round {round_}: files left in tmp/ after SIGTERM")
        pb.start()
        pb.wait_for(lambda: not dovecot.upstream_messages(), 60, "upstream emptied")
        _uv, final = pb.fetch_all()
        self.assertEqual(sorted(harness.sha256(b) for b in final.values()),
                         sorted(harness.sha256(m) for m in messages))
        self.assertEqual(pb.stop(), 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
