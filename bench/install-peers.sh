#!/usr/bin/env bash
# Install the programs the benchmarks compare popbridge with (Debian 12, as root).
# Idempotent: installs only what is missing, never leaves a system Dovecot running.
set -euo pipefail

need=()
have() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in fetchmail getmail6 mpop isync dovecot-core dovecot-pop3d dovecot-imapd \
           python3 openssl time procps linux-perf valgrind; do
    have "$pkg" || need+=("$pkg")
done

if ((${#need[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-peers.sh: missing ${need[*]}; run as root" >&2
        exit 1
    fi
    echo "install-peers.sh: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Do not let the packages start a system-wide Dovecot or fetchmail daemon.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod +x "$policy"
        created_policy=1
    fi
    trap '[[ $created_policy == 1 ]] && rm -f "$policy"' EXIT
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# A package install may still have started Dovecot through another path.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet dovecot 2>/dev/null; then
    systemctl stop dovecot || true
fi
for prog in fetchmail getmail mpop mbsync dovecot /usr/lib/dovecot/dovecot-lda /usr/bin/time; do
    command -v "$prog" >/dev/null 2>&1 || { echo "install-peers.sh: $prog still missing" >&2; exit 1; }
done
echo "install-peers.sh: all peers present"
