#!/bin/sh
# Container entry point (under tini, which forwards signals and reaps). Subcommands
# (check-config, hash-password, status, poll-now, health, --help, --version) run as given;
# anything else starts the daemon in the foreground after checking that the data volume is
# writable, so a volume with the wrong owner fails with a message that says what to do.
set -eu

case "${1:-}" in
    check-config|hash-password|status|poll-now|health|--help|-h|--version|-V)
        exec popbridge "$@" ;;
esac

if ! touch /var/lib/popbridge/.entrypoint-probe 2>/dev/null; then
    echo "popbridge-entrypoint: /var/lib/popbridge is not writable by uid $(id -u):" \
         "chown the volume to $(id -u):$(id -g)" >&2
    exit 1
fi
rm -f /var/lib/popbridge/.entrypoint-probe
exec popbridge "$@"
