#!/usr/bin/env bash
# Demo: installs what is missing, builds, starts a private Dovecot POP3 server
# on a free loopback port seeded with the sample messages in tests/data/*.eml,
# then runs popbridge in the foreground against it, serving IMAP on
# 127.0.0.1:1143 (user demo, password demo). Ctrl-C stops everything.
# Everything lives in ./demo-run/, recreated on every run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
demo=$root/demo-run
imap_port=1143
demo_user=demo
demo_password=demo
pop_user=demo
pop_password=pop-demo-secret

say() { echo "demo.sh: $*"; }
die() { echo "demo.sh: error: $*" >&2; exit 1; }

# Stop a process from an earlier demo run, by the pid it recorded, and only if
# that pid still runs something from demo-run/.
stop_recorded() {
  local pidfile=$1 pid i
  [ -r "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null \
      && tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$demo"; then
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

bash scripts/install-deps.sh
bash scripts/build.sh "$root/build"
bin=${POPBRIDGE_BIN:-$root/build/proxy/popbridge}  # POPBRIDGE_BIN: run another binary
[ -x "$bin" ] || die "no popbridge binary at $bin after the build"
dovecot_bin=$(command -v dovecot || echo /usr/sbin/dovecot)
[ -x "$dovecot_bin" ] || die "dovecot not found"

# Leftovers from an earlier run (e.g. killed with SIGKILL), then a fresh demo-run/.
stop_recorded "$demo/popbridge.pid"
stop_recorded "$demo/dovecot.pid"
rm -rf "$demo"
mkdir -p "$demo/data" "$demo/accounts.d" "$demo/upstream"
chmod 755 "$demo" "$demo/upstream"

port_free() {
  python3 -c 'import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
port_free "$imap_port" || die "127.0.0.1:$imap_port is in use (another demo running?)"
pop_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# Who Dovecot runs as: as root, its own users (the mail belongs to "dovecot");
# otherwise everything runs as the current user.
# Without root, Dovecot cannot chroot its login and anvil processes.
if [ "$(id -u)" -eq 0 ]; then
  internal_user=dovecot; login_user=dovenull; mail_owner=dovecot; chroot_line=
else
  internal_user=$(id -un); login_user=$internal_user; mail_owner=$internal_user; chroot_line="  chroot ="
fi
internal_group=$(id -gn "$internal_user")
mail_uid=$(id -u "$mail_owner")
mail_gid=$(id -g "$mail_owner")

# Upstream mailbox: the sample messages, CRLF, delivered into Maildir new/.
up=$demo/upstream
maildir=$up/mail/$pop_user
mkdir -p "$maildir/cur" "$maildir/new" "$maildir/tmp" "$up/home/$pop_user"
n=0
now=$(date +%s)
for eml in "$root"/tests/data/*.eml; do
  n=$((n + 1))
  tmp="$maildir/tmp/$now.M${n}P$$.popbridge-demo"
  sed 's/\r*$/\r/' "$eml" > "$tmp"
  mv "$tmp" "$maildir/new/$(basename "$tmp"),S=$(stat -c %s "$tmp")"
done
[ "$n" -gt 0 ] || die "no sample messages in tests/data/*.eml"
chown -R "$mail_uid:$mail_gid" "$up/mail" "$up/home"
printf '%s:{PLAIN}%s::::::\n' "$pop_user" "$pop_password" > "$up/passwd"
chmod 644 "$up/passwd"

cat > "$up/dovecot.conf" <<CONF
# Demo upstream written by scripts/demo.sh: POP3 only, loopback only, all state under demo-run/.
protocols = pop3
listen = 127.0.0.1
base_dir = $up/run
state_dir = $up/state
instance_name = popbridge-demo
log_path = $up/dovecot.log
default_internal_user = $internal_user
default_internal_group = $internal_group
default_login_user = $login_user
first_valid_uid = 1
mail_location = maildir:$up/mail/%u
mail_uid = $mail_uid
mail_gid = $mail_gid
pop3_uidl_format = %08Xu%08Xv
disable_plaintext_auth = no
ssl = no
passdb {
  driver = passwd-file
  args = scheme=PLAIN $up/passwd
}
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$up/home/%u
}
service pop3-login {
$chroot_line
  inet_listener pop3 {
    address = 127.0.0.1
    port = $pop_port
  }
}
service anvil {
$chroot_line
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
chmod 644 "$up/dovecot.conf"

dovecot_pid=
popbridge_pid=
stop_pid() {
  local pid=$1 name=$2 i
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop on SIGTERM within 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  trap - EXIT INT TERM
  stop_pid "$popbridge_pid" popbridge
  stop_pid "$dovecot_pid" dovecot
  rm -f "$demo/popbridge.pid" "$demo/dovecot.pid"
  say "stopped popbridge and the demo Dovecot (files kept in demo-run/)"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$dovecot_bin" -F -c "$up/dovecot.conf" > "$up/dovecot.stdout" 2>&1 &
dovecot_pid=$!
echo "$dovecot_pid" > "$demo/dovecot.pid"
if ! python3 - "$pop_port" "$dovecot_pid" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + 20
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("dovecot exited")
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            if s.recv(512).startswith(b"+OK"):
                sys.exit(0)
    except OSError:
        pass
    time.sleep(0.1)
sys.exit("no POP3 greeting within 20s")
PY
then
  cat "$up/dovecot.stdout" "$up/dovecot.log" >&2 2>/dev/null || true
  die "the demo Dovecot did not start"
fi

password_hash=$(openssl passwd -6 "$demo_password")
cat > "$demo/popbridge.yaml" <<YAML
# popbridge daemon config for the demo (written by scripts/demo.sh)
data_dir: "$demo/data"
accounts_dir: "$demo/accounts.d"
imap:
  listen: ["127.0.0.1:$imap_port"]
log: {level: info, format: text}
YAML
cat > "$demo/accounts.d/$demo_user.yaml" <<YAML
# The demo user (written by scripts/demo.sh); IMAP password: $demo_password
user: $demo_user
password_hash: "$password_hash"
upstreams:
  - name: demo-dovecot
    host: 127.0.0.1
    port: $pop_port
    tls: none
    allow_plaintext: true
    username: $pop_user
    auth: pass
    password: "$pop_password"
    poll_every: 30s
    keep_on_server: true
    folder: INBOX
YAML

cat <<INFO

==========================================================================
 popbridge demo
   upstream POP3 : Dovecot on 127.0.0.1:$pop_port, user $pop_user, password $pop_password,
                   $n sample messages (log: demo-run/upstream/dovecot.log)
   IMAP          : host 127.0.0.1  port $imap_port  user $demo_user  password $demo_password  (no TLS)
   config        : demo-run/popbridge.yaml, demo-run/accounts.d/$demo_user.yaml
   mail store    : demo-run/data/

 Fetch the first message with curl:
   curl --user $demo_user:$demo_password 'imap://127.0.0.1:$imap_port/INBOX;UID=1'

 List the INBOX with python imaplib:
   python3 -c 'import imaplib; m = imaplib.IMAP4("127.0.0.1", $imap_port); m.login("$demo_user", "$demo_password"); print(m.select("INBOX")); print(m.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)")); m.logout()'

 Ctrl-C stops popbridge and the demo Dovecot.
==========================================================================

INFO

say "running: $bin --config demo-run/popbridge.yaml"
"$bin" --config demo-run/popbridge.yaml &
popbridge_pid=$!
echo "$popbridge_pid" > "$demo/popbridge.pid"
rc=0
wait "$popbridge_pid" || rc=$?
popbridge_pid=
say "popbridge exited with code $rc"
exit "$rc"
