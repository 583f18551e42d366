# Sourced by the container scripts: a private podman configuration (runc, cgroupfs,
# fixed ulimits) and storage under a stable cache directory, so the suite never touches
# the host's /etc/containers defaults and keeps the base image and apt layers between runs.
#
# Inputs (optional): POPBRIDGE_PODMAN_CACHE (default /var/cache/popbridge-test).
# Outputs: CONTAINERS_CONF, CONTAINERS_STORAGE_CONF exported; PB_CACHE, PB_PODMAN_DRIVER set.

PB_CACHE=${POPBRIDGE_PODMAN_CACHE:-/var/cache/popbridge-test}
mkdir -p "$PB_CACHE/conf" "$PB_CACHE/run"

cat > "$PB_CACHE/conf/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF

# overlay when the kernel lets us mount it here, vfs otherwise. The choice is remembered:
# one storage directory must always be opened with the same driver.
pb_pick_driver() {
    if [ -f "$PB_CACHE/conf/driver" ]; then
        cat "$PB_CACHE/conf/driver"
        return
    fi
    local t driver=vfs
    t=$(mktemp -d "$PB_CACHE/run/ovl.XXXXXX")
    mkdir -p "$t/l" "$t/u" "$t/w" "$t/m"
    if mount -t overlay overlay -o "lowerdir=$t/l,upperdir=$t/u,workdir=$t/w" "$t/m" 2>/dev/null; then
        umount "$t/m"
        driver=overlay
    fi
    rm -rf "$t"
    echo "$driver" > "$PB_CACHE/conf/driver"
    echo "$driver"
}
PB_PODMAN_DRIVER=$(pb_pick_driver)

cat > "$PB_CACHE/conf/storage.conf" <<CONF
[storage]
driver = "$PB_PODMAN_DRIVER"
graphroot = "$PB_CACHE/storage-$PB_PODMAN_DRIVER"
runroot = "$PB_CACHE/run/storage"
CONF

export CONTAINERS_CONF="$PB_CACHE/conf/containers.conf"
export CONTAINERS_STORAGE_CONF="$PB_CACHE/conf/storage.conf"

# The Debian mirror this machine's apt uses (deb822 .sources first, then sources.list).
pb_debian_mirror() {
    local m=""
    if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
        m=$(awk '
            /^URIs:/ { uri = $2 }
            /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") found = uri }
            /^$/ { uri = "" }
            END { print found }' /etc/apt/sources.list.d/*.sources)
    fi
    if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
        m=$(awk '$1 == "deb" && $0 ~ / bookworm / {
                for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' /etc/apt/sources.list)
    fi
    echo "${m:-http://deb.debian.org/debian}"
}
