#!/usr/bin/env python3
"""The container image, built and run with rootful podman.

Builds docker/Dockerfile (base image debian:bookworm made by tests/container/base-image.sh
with debootstrap and cached in /var/cache/popbridge-test), runs it against a Dovecot POP3
upstream on the host, reads every message over IMAP from outside the container, checks
/healthz and the image's HEALTHCHECK, then deletes the container, recreates it on the same
named volume and checks that nothing was lost (same UIDVALIDITY, UIDs, bytes) and nothing
was downloaded twice (the next poll, asked for with `popbridge poll-now` inside the
container, reports new=0).

The container uses host networking (rootful podman here has no working bridge to the
host's loopback), so the daemon listens on free 127.0.0.1 ports of the host.

Skipped when podman, debootstrap or root are missing (scripts/install-deps.sh installs the
first two). The first run on a machine debootstraps the base image (about 2 minutes);
every run compiles popbridge inside the image build (Release, -j2, tests off).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

SRC = harness.SOURCE_DIR
N_MESSAGES = 5
TAG = f"localhost/popbridge-test:{os.getpid()}"
NAME = f"pbtest-{os.getpid()}"
VOLUME = f"pbtest-data-{os.getpid()}"
CONTAINER_UID = 10143  # the image's popbridge user (docker/Dockerfile)


def podman_env() -> dict:
    """CONTAINERS_CONF / CONTAINERS_STORAGE_CONF as tests/container/podman-env.sh sets them."""
    out = subprocess.run(["bash", "-c", f"source {SRC}/tests/container/podman-env.sh && "
                          "echo \"$CONTAINERS_CONF\" && echo \"$CONTAINERS_STORAGE_CONF\" && "
                          "pb_debian_mirror"], capture_output=True, text=True, check=True)
    conf, storage, mirror = out.stdout.split()
    env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_STORAGE_CONF=storage)
    env["PB_MIRROR"] = mirror
    return env


def podman(env, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
    r = subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {r.returncode}:\n"
                             f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    return r


def build_context() -> Path:
    """Only what the Dockerfile copies: no build dirs, no .git."""
    ctx = Path(tempfile.mkdtemp(prefix="pbctx-"))
    for name in ("CMakeLists.txt",):
        shutil.copy2(SRC / name, ctx / name)
    ignore = shutil.ignore_patterns("build*", "__pycache__", "*.pyc")
    for d in ("cmake", "protocol", "store", "config", "proxy", "docker"):
        shutil.copytree(SRC / d, ctx / d, ignore=ignore)
    return ctx


class ContainerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = [t for t in ("podman", "debootstrap") if not shutil.which(t)]
        if missing:
            raise unittest.SkipTest(f"{', '.join(missing)} not installed "
                                    "(scripts/install-deps.sh installs them)")
        if os.geteuid() != 0:
            raise unittest.SkipTest("rootful podman needs root")
        harness.popbridge_binary()

    def setUp(self):
        self.env = podman_env()
        r = subprocess.run(["bash", str(SRC / "tests/container/base-image.sh")], env=self.env,
                           capture_output=True, text=True, timeout=900)
        self.assertEqual(r.returncode, 0, f"base image:\n{r.stdout}\n{r.stderr}")
        harness.log(r.stdout.strip().splitlines()[-1])

        ctx = build_context()
        self.addCleanup(shutil.rmtree, ctx, True)
        harness.log(f"podman build {TAG} (compiles popbridge, Release, -j2)")
        r = podman(self.env, "build", "--pull=never", "--format", "docker", "--network", "host",
                   "--build-arg", f"DEBIAN_MIRROR={self.env['PB_MIRROR']}",
                   "--build-arg", "BUILD_JOBS=2", "-f", "docker/Dockerfile", "-t", TAG,
                   str(ctx), timeout=1500)
        self.addCleanup(self.remove_image)
        harness.log("image built")

    def remove_image(self):
        podman(self.env, "rm", "-f", "-t", "0", NAME, check=False)
        podman(self.env, "volume", "rm", "-f", VOLUME, check=False)
        podman(self.env, "rmi", "-f", TAG, check=False)
        # Keep recent layers (apt installs) as build cache; drop what is a day old.
        podman(self.env, "image", "prune", "-f", "--filter", "until=24h", check=False)

    def write_config(self, dovecot) -> Path:
        cfg = Path(tempfile.mkdtemp(prefix="pbcfg-"))
        self.addCleanup(shutil.rmtree, cfg, True)
        os.chmod(cfg, 0o755)
        self.imap_port = harness.free_port()
        self.admin_port = harness.free_port()
        (cfg / "popbridge.yaml").write_text(
            "data_dir: /var/lib/popbridge\n"
            "accounts_dir: /etc/popbridge/accounts.d\n"
            f"imap: {{listen: [\"127.0.0.1:{self.imap_port}\"]}}\n"
            f"admin: {{listen: \"127.0.0.1:{self.admin_port}\"}}\n"
            "log: {level: debug, format: json}\n")
        (cfg / "accounts.d").mkdir()
        self.imap_password = "container-imap-pw"
        (cfg / "accounts.d" / "alice.yaml").write_text(
            "user: alice\n"
            f"password_hash: {harness.yaml_str(harness.crypt_sha512(self.imap_password))}\n"
            "upstreams:\n"
            f"  - {{name: dovecot, host: 127.0.0.1, port: {dovecot.port}, tls: none,\n"
            "     allow_plaintext: true, username: alice, auth: pass,\n"
            "     password_file: /run/secrets/alice-pop, poll_every: 10m,\n"
            "     keep_on_server: true, folder: INBOX}\n")
        for p in cfg.rglob("*"):
            os.chmod(p, 0o755 if p.is_dir() else 0o644)
        secret = cfg / "alice-pop.secret"
        secret.write_text(dovecot.password + "\n")
        os.chown(secret, CONTAINER_UID, CONTAINER_UID)
        os.chmod(secret, 0o600)
        return cfg

    def run_container(self, cfg: Path):
        podman(self.env, "run", "-d", "--name", NAME, "--network", "host",
               "-v", f"{VOLUME}:/var/lib/popbridge",
               "-v", f"{cfg}:/etc/popbridge:ro",
               "-v", f"{cfg / 'alice-pop.secret'}:/run/secrets/alice-pop:ro",
               TAG)
        self.addCleanup(lambda: podman(self.env, "rm", "-f", "-t", "0", NAME, check=False))

        def greeted():
            state = podman(self.env, "inspect", "-f", "{{.State.Status}}", NAME).stdout.strip()
            if state in ("exited", "stopped"):
                raise harness.WaitAborted(f"container {state}:\n{self.logs()}")
            try:
                return harness.read_greeting("127.0.0.1", self.imap_port).startswith(b"* OK")
            except OSError:
                return False

        try:
            harness.wait_until(greeted, 60, f"IMAP greeting from the container on {self.imap_port}")
        except (TimeoutError, harness.WaitAborted) as e:
            raise AssertionError(f"{e}\n--- container log ---\n{self.logs()}") from None

    def logs(self) -> str:
        r = podman(self.env, "logs", NAME, check=False)
        return (r.stdout + r.stderr)[-6000:]

    def poll_news(self) -> list[int]:
        out = []
        for line in self.logs().splitlines():
            try:
                msg = json.loads(line).get("msg", "")
            except ValueError:
                continue
            m = harness.poll_line_regex("alice", "dovecot").search(msg)
            if m:
                out.append(int(m.group(1)))
        return out

    def fetch(self):
        client = harness.imap_login("127.0.0.1", self.imap_port, "alice", self.imap_password)
        try:
            return harness.imap_fetch_all(client)
        finally:
            harness.imap_logout(client)

    def wait(self, pred, timeout, what):
        try:
            return harness.wait_until(pred, timeout, what, interval=0.3)
        except TimeoutError as e:
            raise AssertionError(f"{e}\n--- container log ---\n{self.logs()}") from None

    def test_image_serves_mail_and_survives_recreation(self):
        dovecot = harness.Dovecot().start()
        self.addCleanup(dovecot.stop)
        seeded = harness.generate_messages(N_MESSAGES, seed=77)
        dovecot.add_messages(seeded)
        want = sorted(harness.sha256(m) for m in seeded)
        cfg = self.write_config(dovecot)

        # First container: downloads everything.
        self.run_container(cfg)
        self.wait(lambda: len(self.fetch()[1]) >= N_MESSAGES, 60, "all messages over IMAP")
        uid_validity, by_uid = self.fetch()
        self.assertEqual(sorted(harness.sha256(b) for b in by_uid.values()), want)
        self.wait(lambda: sum(self.poll_news()) == N_MESSAGES, 20, "poll line new=N")
        r = podman(self.env, "healthcheck", "run", NAME, check=False)
        self.assertEqual(r.returncode, 0, f"HEALTHCHECK failed: {r.stdout}{r.stderr}")
        user = podman(self.env, "exec", NAME, "id", "-u").stdout.strip()
        self.assertEqual(user, str(CONTAINER_UID), "the daemon does not run as the image user")

        # Delete the container (not the volume) and create a new one.
        podman(self.env, "stop", "-t", "20", NAME)
        podman(self.env, "rm", NAME)
        self.run_container(cfg)
        # The new container polls soon after start on its own; poll-now asks once more.
        self.wait(lambda: self.poll_news(), 30, "a poll in the recreated container")
        r = podman(self.env, "exec", NAME, "popbridge", "--config",
                   "/etc/popbridge/popbridge.yaml", "poll-now", "alice/dovecot")
        self.assertIn("alice/dovecot", r.stdout)
        self.wait(lambda: len(self.poll_news()) >= 2, 30, "the poll asked for by poll-now")
        self.assertEqual(set(self.poll_news()), {0}, "messages downloaded twice after recreation")
        uid_validity2, by_uid2 = self.fetch()
        self.assertEqual(uid_validity2, uid_validity, "UIDVALIDITY changed")
        self.assertEqual({u: harness.sha256(b) for u, b in by_uid2.items()},
                         {u: harness.sha256(b) for u, b in by_uid.items()},
                         "messages or UIDs changed after recreating the container")
        self.assertEqual(dovecot.upstream_hashes(), want, "upstream changed (keep_on_server)")
        podman(self.env, "stop", "-t", "20", NAME)
        code = podman(self.env, "inspect", "-f", "{{.State.ExitCode}}", NAME).stdout.strip()
        self.assertEqual(code, "0", f"daemon exit code on stop:\n{self.logs()}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
