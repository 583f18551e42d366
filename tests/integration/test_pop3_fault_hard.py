#!/usr/bin/env python3
"""POP3 hard cases against the scripted server (tests/fault/pop3_server.py):
duplicate UIDLs, no UIDL (header hash), no UIDL and no TOP, UIDLs changed
wholesale, a UIDL reused for another message, DELE ignored, wrong LIST sizes,
messages over max_message_size, an over-long line, bare LF, connection dropped
mid-RETR and mid-QUIT, a stalled server, import_since. Each case ends with
check_no_loss_no_dup()."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fault"))
from pop3_fault import (FaultCase, check_no_loss_no_dup, harness, main, message,  # noqa: E402
                        messages, outcomes, poll_next, wait_ok, wait_outcomes, write_account)


def hashes(bodies):
    return sorted(harness.sha256(b) for b in bodies)


class UidlCases(FaultCase):
    def test_duplicate_uidls(self):
        msgs = messages(4)
        other = message(99, tag="other")
        srv = self.make_server(msgs)
        srv.add(msgs[0], uidl="fake-000001")  # the same message listed twice
        srv.add(other, uidl="fake-000002")    # a different message under a listed UIDL
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (5, "ok"))
        local = check_no_loss_no_dup(self, pb, msgs + [other], srv)
        self.assertEqual(hashes(local), hashes(msgs + [other]))
        # Messages under a repeated UIDL are never deleted; the others are.
        self.assertEqual(hashes(srv.live_bodies()), hashes([msgs[0], msgs[1], msgs[0], other]))
        self.assertIn("fake-000002#", self.log(pb))

    def test_no_uidl_uses_header_hash(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.uidl_supported = False
        pb = self.make_pb(srv)
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (3, "ok"))
        self.assertIn("does not support UIDL", self.log(pb))
        more = messages(2, tag="later")
        for m in more:
            srv.add(m)
        pb.restart()
        self.assertEqual(wait_ok(pb)[-1], (2, "ok"))  # only the two new ones
        local = check_no_loss_no_dup(self, pb, msgs + more, srv)
        self.assertEqual(len(local), 5)

    def test_no_uidl_no_top_refused(self):
        msgs = messages(2)
        srv = self.make_server(msgs)
        srv.uidl_supported = False
        srv.capa = ["USER", "RESP-CODES"]
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        self.assertEqual(wait_outcomes(pb, 1)[0], (0, "failed"))
        self.assertIn("neither UIDL nor TOP", self.log(pb))
        self.assertEqual(srv.commands_named("RETR"), [])
        self.assertEqual(srv.commands_named("DELE"), [])
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_uidls_changed_wholesale(self):
        msgs = messages(5)
        srv = self.make_server(msgs)
        pb = self.make_pb(srv)
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (5, "ok"))
        with srv.lock:
            for m in srv.mailbox:
                m.uidl = "renumbered-" + m.uidl
        new = messages(2, tag="new")
        for m in new:
            srv.add(m)
        pb.restart()
        self.assertEqual(wait_ok(pb)[-1], (2, "ok"))
        log = self.log(pb)
        self.assertIn("the server changed its UIDLs", log)
        self.assertIn("5 listed message(s) matched stored ones", log)
        local = check_no_loss_no_dup(self, pb, msgs + new, srv)
        self.assertEqual(len(local), 7)
        # The matches are durable aliases: after a restart nothing is downloaded twice and
        # the UIDLs are not taken for changed again.
        retrs = len(srv.commands_named("RETR"))
        pb.restart()
        self.assertEqual(wait_ok(pb)[-1], (0, "ok"))
        self.assertNotIn("the server changed its UIDLs", self.log(pb))
        self.assertEqual(len(srv.commands_named("RETR")), retrs)
        self.assertEqual(srv.commands_named("DELE"), [])  # keep_on_server: true
        # Retention applies to the matched messages under their new UIDLs.
        write_account(pb, srv, keep_on_server="false")
        pb.restart()
        self.assertEqual(wait_ok(pb)[-1], (0, "ok"))
        self.assertEqual(len(srv.commands_named("DELE")), 7)
        self.assertEqual(srv.live(), [])
        local = check_no_loss_no_dup(self, pb, msgs + new, srv)
        self.assertEqual(hashes(local), hashes(msgs + new))

    def test_uidl_reused_for_another_message(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        pb = self.make_pb(srv)
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (3, "ok"))
        stranger = message(50, size=1500, tag="stranger")
        with srv.lock:
            reused = srv.mailbox[1].uidl
            srv.mailbox[1].deleted = True
        srv.add(stranger, uidl=reused)
        pb.restart()
        self.assertEqual(wait_ok(pb)[-1], (1, "ok"))
        self.assertIn(f"UIDL {reused} now names a different message", self.log(pb))
        local = check_no_loss_no_dup(self, pb, msgs + [stranger], srv)
        self.assertEqual(hashes(local), hashes(msgs + [stranger]))

    def test_dele_ignored(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.ignore_dele = True
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (3, "ok"))
        self.assertEqual(len(srv.commands_named("DELE")), 3)
        srv.ignore_dele = False
        self.assertEqual(poll_next(pb), (0, "ok"))
        self.assertIn("the server ignored DELE", self.log(pb))
        self.assertEqual(srv.live(), [])
        local = check_no_loss_no_dup(self, pb, msgs, srv)
        self.assertEqual(len(local), 3)


class ContentCases(FaultCase):
    def test_wrong_list_sizes(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.list_size_delta = {1: 5000, 2: -200}
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (3, "ok"))
        local = check_no_loss_no_dup(self, pb, msgs, srv)
        self.assertEqual(hashes(local), hashes(msgs))
        self.assertEqual(srv.live(), [])

    def test_over_max_message_size(self):
        small = messages(2)
        big = message(7, size=40000, tag="big")
        liar = message(8, size=40000, tag="liar")  # LIST says small
        srv = self.make_server(small + [big, liar])
        srv.list_size_delta = {4: -39000}
        pb = self.make_pb(srv, keep_on_server="false", max_message_size="20KB")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (2, "ok"))
        log = self.log(pb)
        self.assertIn("over max_message_size", log)
        self.assertIn("grew past max_message_size", log)
        self.assertRegex(log, r"too_large=2")
        self.assertEqual(hashes(srv.live_bodies()), hashes([big, liar]))  # never deleted
        local = check_no_loss_no_dup(self, pb, small + [big, liar], srv)
        self.assertEqual(hashes(local), hashes(small))

    def test_line_over_limit(self):
        msgs = messages(2)
        srv = self.make_server(msgs)
        srv.long_line = 10000  # one UIDL line of 10 KB (limit 8 KiB); once
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        got = wait_outcomes(pb, 2)
        self.assertEqual(got[0], (0, "failed"))
        self.assertIn("TooLong", self.log(pb))
        self.assertEqual(got[1], (2, "ok"))  # retried after the backoff
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_bare_lf(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.bare_lf = True
        pb = self.make_pb(srv)
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (3, "ok"))
        local = check_no_loss_no_dup(self, pb, msgs, srv)
        self.assertEqual(hashes(local), hashes(msgs))  # stored with CRLF

    def test_import_since(self):
        old = messages(3, tag="old", date="Tue, 01 Jan 2019 10:00:00 +0000")
        recent = messages(2, tag="recent", date=harness_date_now())
        srv = self.make_server(old + recent)
        pb = self.make_pb(srv, keep_on_server="false", import_since="30d")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (2, "ok"))
        self.assertIn("3 message(s) older than import_since", self.log(pb))
        self.assertEqual(hashes(srv.live_bodies()), hashes(old))  # not imported, not deleted
        local = check_no_loss_no_dup(self, pb, old + recent, srv)
        self.assertEqual(hashes(local), hashes(recent))
        # "Seen, not stored" is durable: after a restart the old ones are still skipped
        # (not read again, not deleted), and a later message is imported.
        later = message(9, tag="later", date=harness_date_now())
        srv.add(later)
        retrs = len(srv.commands_named("RETR"))
        pb.restart()
        self.assertEqual(wait_ok(pb)[-1], (1, "ok"))
        self.assertEqual(len(srv.commands_named("RETR")), retrs + 1)
        self.assertNotIn("older than import_since", self.log(pb))
        self.assertEqual(hashes(srv.live_bodies()), hashes(old))
        local = check_no_loss_no_dup(self, pb, old + recent + [later], srv)
        self.assertEqual(hashes(local), hashes(recent + [later]))


class NetworkCases(FaultCase):
    def test_drop_mid_retr(self):
        msgs = messages(5, size=4000)
        srv = self.make_server(msgs)
        srv.drop_in_retr = {3}
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        got = wait_outcomes(pb, 2)
        self.assertEqual(got[0][1], "failed")
        self.assertEqual(got[1][1], "ok")
        self.assertEqual(srv.live(), [])
        local = check_no_loss_no_dup(self, pb, msgs, srv)
        self.assertEqual(hashes(local), hashes(msgs))

    def test_drop_mid_quit(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.drop_on_quit = "before"  # DELEs are not applied, QUIT gets no answer
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        got = wait_outcomes(pb, 2)
        self.assertEqual(got[0], (3, "failed"))
        self.assertIn("during QUIT", self.log(pb))
        self.assertEqual(got[1], (0, "ok"))  # known messages: only DELE again
        self.assertEqual(srv.live(), [])
        local = check_no_loss_no_dup(self, pb, msgs, srv)
        self.assertEqual(len(local), 3)

    def test_stalled_server(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.stall_on = "RETR"
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        got = wait_outcomes(pb, 2)
        self.assertEqual(got[0], (0, "failed"))
        self.assertIn("timeout", self.log(pb).lower())
        self.assertEqual(got[1], (3, "ok"))
        local = check_no_loss_no_dup(self, pb, msgs, srv)
        self.assertEqual(len(local), 3)


def harness_date_now() -> str:
    import email.utils
    return email.utils.formatdate(usegmt=True)


if __name__ == "__main__":
    main()
