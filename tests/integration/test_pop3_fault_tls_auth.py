#!/usr/bin/env python3
"""POP3 upstream TLS and authentication against the scripted server
(tests/fault/pop3_server.py): implicit TLS, STLS, STLS missing / refused
(no credential sent), STARTTLS injection, a certificate for another host, SHA-256
pinning, [AUTH] stopping the poller until SIGHUP with a changed file, repeated
refusals, XOAUTH2 with token_command (stderr logged without the token) and
token_file, [IN-USE] / [SYS/TEMP] retried with backoff, LOGIN-DELAY."""

import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fault"))
from pop3_fault import (FaultCase, check_no_loss_no_dup, harness, main, messages,  # noqa: E402
                        outcomes, sighup, wait_ok, wait_outcomes, write_account)

CRED_COMMANDS = ("USER", "PASS", "APOP", "AUTH")


class TlsTest(FaultCase):
    def test_implicit_tls_verified(self):
        pki = self.pki()
        msgs = messages(4)
        srv = self.make_server(msgs, tls_context=pki.server_context(), implicit_tls=True)
        pb = self.make_pb(srv, tls="implicit", allow_plaintext=None, ca_file=str(pki.ca_file))
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (4, "ok"))
        self.assertEqual(sorted(local_hashes(pb)), sorted(map(harness.sha256, msgs)))
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_stls_verified(self):
        pki = self.pki()
        msgs = messages(3)
        srv = self.make_server(msgs, tls_context=pki.server_context())
        srv.stls = True
        pb = self.make_pb(srv, tls="starttls", allow_plaintext=None, ca_file=str(pki.ca_file))
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (3, "ok"))
        names = [c.split()[0] for _s, c in srv.commands]
        self.assertEqual(names[:4], ["CAPA", "STLS", "CAPA", "USER"], names)
        check_no_loss_no_dup(self, pb, msgs, srv)

    def assert_no_credentials(self, srv):
        for verb in CRED_COMMANDS:
            self.assertEqual(srv.commands_named(verb), [], f"{verb} was sent")

    def test_stls_not_offered(self):
        pki = self.pki()
        msgs = messages(2)
        srv = self.make_server(msgs, tls_context=pki.server_context())
        pb = self.make_pb(srv, tls="starttls", allow_plaintext=None, ca_file=str(pki.ca_file))
        pb.start()
        got = wait_outcomes(pb, 1)
        self.assertEqual(got[0][1], "failed")
        self.assertIn("does not offer STLS", self.log(pb))
        self.assert_no_credentials(srv)
        self.assertEqual(local_hashes(pb), [])
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_stls_offered_then_refused(self):
        pki = self.pki()
        msgs = messages(2)
        srv = self.make_server(msgs, tls_context=pki.server_context())
        srv.stls = True
        srv.stls_refuse = True
        pb = self.make_pb(srv, tls="starttls", allow_plaintext=None, ca_file=str(pki.ca_file))
        pb.start()
        got = wait_outcomes(pb, 1)
        self.assertEqual(got[0][1], "failed")
        self.assertIn("STLS refused", self.log(pb))
        self.assert_no_credentials(srv)
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_stls_injection_ignored(self):
        # Plaintext after "+OK" to STLS must not be read as the answer to the CAPA sent
        # inside TLS: the poll completes normally and every command got its own answer.
        pki = self.pki()
        msgs = messages(3)
        srv = self.make_server(msgs, tls_context=pki.server_context())
        srv.stls = True
        srv.stls_inject = b"+OK injected\r\nSASL PLAIN\r\n.\r\n-ERR injected\r\n"
        pb = self.make_pb(srv, tls="starttls", allow_plaintext=None, ca_file=str(pki.ca_file))
        pb.start()
        got = wait_outcomes(pb, 1)
        # Either the bytes were discarded (poll ok) or they broke the handshake (failed);
        # never may they be taken as a reply.
        if got[0][1] == "ok":
            self.assertEqual(got[0][0], 3)
        else:
            self.assert_no_credentials(srv)
        self.assertNotIn("injected", self.log(pb))
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_certificate_for_another_host(self):
        pki = self.pki()
        msgs = messages(2)
        for mode in ("implicit", "starttls"):
            with self.subTest(mode=mode):
                srv = self.make_server(msgs, tls_context=pki.server_context("wrong"),
                                       implicit_tls=mode == "implicit")
                srv.stls = True
                pb = self.make_pb(srv, tls=mode, allow_plaintext=None, ca_file=str(pki.ca_file))
                pb.start()
                got = wait_outcomes(pb, 1)
                self.assertEqual(got[0][1], "failed")
                self.assertRegex(self.log(pb), r"certificate verification failed|hostname mismatch")
                self.assert_no_credentials(srv)
                self.assertEqual(local_hashes(pb), [])
                pb.cleanup()

    def test_untrusted_ca_without_ca_file(self):
        pki = self.pki()
        msgs = messages(1)
        srv = self.make_server(msgs, tls_context=pki.server_context(), implicit_tls=True)
        pb = self.make_pb(srv, tls="implicit", allow_plaintext=None)
        pb.start()
        self.assertEqual(wait_outcomes(pb, 1)[0][1], "failed")
        self.assertIn("certificate verification failed", self.log(pb))
        self.assert_no_credentials(srv)

    def test_pin_sha256(self):
        pki = self.pki()
        msgs = messages(2)
        # The pin accepts the wrong-host certificate without any CA...
        srv = self.make_server(msgs, tls_context=pki.server_context("wrong"), implicit_tls=True)
        pb = self.make_pb(srv, tls="implicit", allow_plaintext=None,
                          pin_sha256=pki.leaf_sha256("wrong"))
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (2, "ok"))
        pb.cleanup()
        # ...and refuses a certificate that does not match, even one the CA signed.
        srv2 = self.make_server(msgs, tls_context=pki.server_context("good"), implicit_tls=True)
        pb2 = self.make_pb(srv2, tls="implicit", allow_plaintext=None, ca_file=str(pki.ca_file),
                           pin_sha256=pki.leaf_sha256("wrong"))
        pb2.start()
        self.assertEqual(wait_outcomes(pb2, 1)[0][1], "failed")
        self.assertIn("does not match pin_sha256", self.log(pb2))
        self.assert_no_credentials(srv2)


class AuthTest(FaultCase):
    def test_apop_and_sasl_plain(self):
        for auth in ("apop", "plain"):
            with self.subTest(auth=auth):
                msgs = messages(2, tag=auth)
                srv = self.make_server(msgs)
                pb = self.make_pb(srv, auth=auth)
                pb.start()
                self.assertEqual(wait_ok(pb)[-1], (2, "ok"))
                verb = "APOP" if auth == "apop" else "AUTH"
                self.assertEqual(len(srv.commands_named(verb)), 1)
                self.assertEqual(srv.commands_named("PASS"), [])
                check_no_loss_no_dup(self, pb, msgs, srv)
                pb.cleanup()

    def test_auth_code_stops_polling_until_file_changes(self):
        msgs = messages(2)
        srv = self.make_server(msgs)
        pb = self.make_pb(srv, password=harness.yaml_str("wrong-password"))
        pb.start()
        got = wait_outcomes(pb, 1)
        self.assertEqual(got[0][1], "stopped")
        pb.wait_for(lambda: "polling stopped until the account file changes" in self.log(pb), 5)
        # Backoff is 300 ms in tests: a poller that was not stopped would be back by now.
        time.sleep(2.0)  # a negative check: nothing may happen during this window
        self.assertEqual(srv.sessions, 1)
        write_account(pb, srv)  # the right password
        sighup(pb)
        got = wait_outcomes(pb, 2)
        self.assertEqual(got[1], (2, "ok"))
        check_no_loss_no_dup(self, pb, msgs, srv, secrets=("wrong-password",))

    def test_repeated_refusals_stop(self):
        msgs = messages(1)
        srv = self.make_server(msgs)
        srv.login_errors = ["-ERR invalid credentials"] * 10  # no resp-code
        pb = self.make_pb(srv)
        pb.start()
        got = wait_outcomes(pb, 3)
        self.assertEqual([o for _n, o in got[:3]], ["auth_failed", "auth_failed", "stopped"])
        time.sleep(2.0)  # a negative check: no fourth login attempt
        self.assertEqual(srv.sessions, 3)
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_in_use_and_sys_temp_retry(self):
        msgs = messages(3)
        srv = self.make_server(msgs)
        srv.login_errors = ["-ERR [IN-USE] mailbox locked", "-ERR [SYS/TEMP] try later"]
        pb = self.make_pb(srv, keep_on_server="false")
        pb.start()
        got = wait_outcomes(pb, 3)
        self.assertEqual([o for _n, o in got[:3]], ["failed", "failed", "ok"])
        log = self.log(pb)
        self.assertIn("InUse", log)
        self.assertIn("SysTemp", log)
        self.assertIn("next attempt in", log)
        self.assertEqual(srv.live(), [])
        check_no_loss_no_dup(self, pb, msgs, srv)

    def test_login_delay(self):
        msgs = messages(1)
        srv = self.make_server(msgs)
        srv.capa = srv.capa + ["LOGIN-DELAY 3600"]
        pb = self.make_pb(srv)
        pb.start()
        wait_ok(pb)
        m = pb.wait_for(lambda: re.search(r"next poll in (\d+) s", self.log(pb)), 5)
        self.assertGreaterEqual(int(m.group(1)), 3600 * 0.9 - 1)
        # A folder being opened must not trigger a poll either.
        client = pb.imap()
        client.select("INBOX")
        harness.imap_logout(client)
        time.sleep(1.0)  # a negative check: no second session
        self.assertEqual(srv.sessions, 1)

    def test_login_delay_code(self):
        msgs = messages(1)
        srv = self.make_server(msgs)
        srv.login_errors = ["-ERR [LOGIN-DELAY] wait 5 minutes"]
        pb = self.make_pb(srv)
        pb.start()
        self.assertEqual(wait_outcomes(pb, 1)[0][1], "failed")
        m = pb.wait_for(lambda: re.search(r"next attempt in (\d+) s", self.log(pb)), 5)
        self.assertGreaterEqual(int(m.group(1)), 299)

    def test_token_command_and_file(self):
        token = "ya29.fault-token-" + "x" * 40
        tmp = self.tmpdir()
        script = tmp / "token.py"
        script.write_text("import sys\n"
                          f"sys.stderr.write('refreshing; got {token}\\n')\n"
                          f"print('{token}')\n")
        msgs = messages(2)
        srv = self.make_server(msgs, token=token)
        pb = self.make_pb(srv, auth="xoauth2", password=None,
                          token_command=f"[{harness.yaml_str(sys.executable)}, {harness.yaml_str(str(script))}]")
        pb.start()
        self.assertEqual(wait_ok(pb)[-1], (2, "ok"))
        log = self.log(pb)
        self.assertIn("token_command stderr: refreshing; got <redacted>", log)
        check_no_loss_no_dup(self, pb, msgs, srv, secrets=(token,))
        pb.cleanup()

        # token_file, and a failing command reported without a crash
        tf = tmp / "token.txt"
        tf.write_text(token + "\n")
        pb2 = self.make_pb(srv, auth="oauthbearer", password=None, token_file=str(tf))
        pb2.start()
        self.assertEqual(wait_ok(pb2)[-1][1], "ok")
        pb2.cleanup()
        pb3 = self.make_pb(srv, auth="xoauth2", password=None, token_command="[/bin/false]")
        pb3.start()
        self.assertEqual(wait_outcomes(pb3, 1)[0][1], "failed")
        self.assertIn("token_command failed (exit 1)", self.log(pb3))


def local_hashes(pb):
    return [harness.sha256(b) for b in pb.fetch_all()[1].values()]


if __name__ == "__main__":
    main()
