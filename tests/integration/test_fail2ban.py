#!/usr/bin/env python3
"""The fail2ban filter documented in README.md matches the daemon's real failed-login
lines, in the text and the json log format, and extracts the client's address, also when
the user name is hostile (spaces, CR/LF, quotes, "remote=1.2.3.4", a whole fake log line;
sent with AUTHENTICATE PLAIN, which carries any bytes).

The failregex is read from README.md (section "Failed logins and fail2ban"); fail2ban's
<HOST> is replaced by the IPv4 part of its definition. Each line is matched the way fail2ban
does: against the whole line, and against the line with its date cut out.
"""

import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402
from authlib import attempt, attempt_plain, make_daemon, wait_log  # noqa: E402

# fail2ban's <HOST> (config/filter.d/common.conf, the IPv4/host-name form).
HOST = r"(?:::f{4,6}:)?(?P<host>[\w\-.^_]*\w)"

HOSTILE = [
    "alice",
    "x remote=1.2.3.4",
    "x\" remote=1.2.3.4 user=\"y",
    "a\r\n2026-01-01T00:00:00.000+0000 warning imap auth failed remote=6.6.6.6 user=\"z\"",
    "\\\" remote=9.9.9.9",
    "imap auth failed remote=5.5.5.5 user=",
    '","level":"warning","msg":"imap auth failed remote=4.4.4.4 user=',
    "\u00e9t\u00e9 remote=3.3.3.3",
]


def readme_failregex() -> list[str]:
    text = (Path(harness.SOURCE_DIR) / "README.md").read_text()
    section = text[text.index("## Failed logins and fail2ban"):]
    block = section[section.index("[Definition]"):]
    block = block[:block.index("```")]
    lines = block.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("failregex ="))
    regexes = [lines[start].split("=", 1)[1].strip()]
    for l in lines[start + 1:]:
        if not l.startswith((" ", "\t")) or not l.strip():
            break
        regexes.append(l.strip())
    return regexes


def cut_date(line: str) -> str:
    """What fail2ban matches after it found the date: the line without the date text."""
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+[+-]\d{4}", "", line, count=1)


class Fail2banTest(unittest.TestCase):
    def setUp(self):
        self.regexes = [re.compile(r.replace("<HOST>", HOST)) for r in readme_failregex()]
        self.assertEqual(len(self.regexes), 2, "README: one failregex per log format")

    def hosts(self, line: str) -> set:
        found = set()
        for variant in (line, cut_date(line)):
            for rx in self.regexes:
                m = rx.search(variant)
                if m:
                    found.add(m.group("host"))
        return found

    def run_format(self, log_format: str):
        pb = make_daemon(login_delay="1ms", login_delay_max="1ms", log_format=log_format,
                         log_level="trace")
        self.addCleanup(pb.cleanup)
        pb.start()
        sources = [f"127.0.{i + 20}.1" for i in range(len(HOSTILE))]
        for user, source in zip(HOSTILE, sources):
            text, _ = attempt_plain(pb.imap_port, user.encode(), b"wrong", source)
            self.assertTrue(text.startswith(b"NO"), text)
        # One good login: its lines must not match.
        text, _ = attempt(pb.imap_port, "bob", "bob-secret", "127.0.99.1")
        self.assertTrue(text.startswith(b"OK"), text)
        log = wait_log(pb, "imap auth failed", len(HOSTILE))
        matched = []
        for line in log.splitlines():
            hosts = self.hosts(line)
            if hosts:
                self.assertEqual(len(hosts), 1, f"two addresses from one line: {line!r}")
                matched.append(hosts.pop())
        # Every failure, and nothing else (trace lines carry the user names too), matched
        # with the real client address, in order.
        self.assertEqual(matched, sources, log[-4000:])

    def test_text_format(self):
        self.run_format("text")

    def test_json_format(self):
        self.run_format("json")

    def test_the_regex_refuses_forged_lines(self):
        # Control: the regexes do match a line shaped like the daemon's, and not the same
        # text at another level or inside another message.
        good = ('2026-03-01T12:00:05.123+0000 warning imap auth failed remote=203.0.113.7 '
                'user="alice" reason=bad_password delay_ms=2000')
        self.assertEqual(self.hosts(good), {"203.0.113.7"})
        for bad in ['2026-03-01T12:00:05.123+0000 trace imap C: imap auth failed '
                    'remote=6.6.6.6 user=',
                    '2026-03-01T12:00:05.123+0000 info warning imap auth failed '
                    'remote=6.6.6.6 user=',
                    '{"time":"t","level":"trace","msg":"x \\"level\\":\\"warning\\",'
                    '\\"msg\\":\\"imap auth failed remote=6.6.6.6 user="}']:
            self.assertEqual(self.hosts(bad), set(), bad)


if __name__ == "__main__":
    unittest.main(verbosity=2)
