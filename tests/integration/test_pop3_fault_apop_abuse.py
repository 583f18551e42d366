#!/usr/bin/env python3
"""APOP timestamp abuse (issue 7 item 5; RFC 1939 section 7, CVE-2007-1558): an upstream
whose greeting carries a crafted challenge (NUL, non-ASCII bytes, no '@', two "<...>", over
256 bytes, empty) must get no APOP command and no other credential; the poll fails with a
clear reason in the log. A control with a normal msg-id shows APOP is sent otherwise."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fault"))
from pop3_fault import FaultCase, main, messages, wait_ok, wait_outcomes  # noqa: E402

CRED_COMMANDS = ("USER", "PASS", "APOP", "AUTH")


def raw(b: bytes) -> str:
    """Bytes the fault server writes back unchanged (it encodes with surrogateescape)."""
    return b.decode("utf-8", "surrogateescape")


CASES = [
    ("NUL", raw(b"<1896.69\x007170952@fake.example>"), "0x00"),
    ("non-ASCII", raw(b"<\xc3\xa9\x80\xff.1@fake.example>"), "0xc3"),
    ("no @", "<1896.697170952.fake.example>", "no '@'"),
    ("two pairs", "<1.2@fake.example> <3.4@fake.example>", "several '<'"),
    ("over 256 bytes", "<" + "9" * 300 + "@fake.example>", "longer than 256"),
    ("empty", "<>", "empty <>"),
]


class ApopAbuseTest(FaultCase):
    def test_abusive_timestamps_refused(self):
        for name, ts, reason in CASES:
            with self.subTest(case=name):
                srv = self.make_server(messages(1, tag="apop"))
                srv.timestamp = ts
                pb = self.make_pb(srv, auth="apop")
                pb.start()
                got = wait_outcomes(pb, 1)
                self.assertEqual(got[0][1], "auth_failed")
                log = self.log(pb)
                self.assertIn("APOP refused", log)
                self.assertIn(reason, log)
                names = [c.split(" ", 1)[0].upper() for _s, c in srv.commands]
                for verb in CRED_COMMANDS:
                    self.assertNotIn(verb, names, f"{verb} was sent after greeting {ts!r}")
                self.assertNotIn(srv.password, pb.log_since(0))
                pb.cleanup()

    def test_control_plausible_timestamp_uses_apop(self):
        srv = self.make_server(messages(1, tag="apopok"))
        srv.timestamp = "<" + "7" * 230 + "@fake.example>"  # 245 bytes: under the limit
        pb = self.make_pb(srv, auth="apop")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (1, "ok"))
        self.assertEqual(len(srv.commands_named("APOP")), 1)
        self.assertEqual(srv.commands_named("PASS"), [])


if __name__ == "__main__":
    main()
