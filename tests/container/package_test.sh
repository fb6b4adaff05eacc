#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# connwatchd under real systemd: a Debian 12 rootfs booted with systemd-nspawn
# (PID 1 of this machine is not systemd), the unit started with Type=notify, events
# found with their fields in journald, the catalog, reload (good and bad),
# watchdog, stop. The container has a private network: the veth pair and the
# namespace that send real traffic are created inside it.
#
# Usage: systemd_test.sh BUILD_DIR       (root; ctest label "container")
# The rootfs is built once with debootstrap (~1 min, needs Debian's archive) and
# cached as a tarball in $CW_CACHE (default /var/cache/connwatch-test).
set -euo pipefail

if [ $# -ne 1 ] || [ ! -x "$1/connwatchd" ] || [ ! -x "$1/connwatchctl" ]; then
    echo "usage: $0 BUILD_DIR (with connwatchd and connwatchctl built)" >&2
    exit 2
fi
BUILD=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/netns.sh
source "$HERE/../lib/netns.sh"

cw_require_root
for tool in debootstrap systemd-nspawn nsenter tar; do
    command -v "$tool" >/dev/null || { echo "FAIL: setup: '$tool' is not installed (make deps)"; exit 1; }
done
if ! cw_lock /tmp/cwct-container.lock 600; then
    echo "FAIL: setup: another run held /tmp/cwct-container.lock for 600 s"
    exit 1
fi

CACHE=${CW_CACHE:-/var/cache/connwatch-test}
PACKAGES=systemd,systemd-sysv,dbus,iproute2,libbpf1,libprometheus-cpp-pull1.0,python3-minimal,nmap,procps
TARBALL=$CACHE/bookworm-$(echo "$PACKAGES" | md5sum | cut -c1-8).tar
mkdir -p "$CACHE"
if [ ! -s "$TARBALL" ]; then
    echo "# building the Debian 12 rootfs (cached in $TARBALL)"
    tmp=$(mktemp -d "$CACHE/rootfs.XXXXXX")
    chmod 0755 "$tmp" # it becomes the container's /: mktemp's 0700 would lock out every non-root daemon
    if ! debootstrap --variant=minbase --include=$PACKAGES bookworm "$tmp" >"$tmp.log" 2>&1; then
        echo "FAIL: setup: debootstrap failed (is Debian's archive reachable?):"
        tail -5 "$tmp.log"
        rm -rf "$tmp" "$tmp.log"
        exit 1
    fi
    tar -C "$tmp" -cf "$TARBALL.new" . && mv "$TARBALL.new" "$TARBALL"
    rm -rf "$tmp" "$tmp.log"
fi

rm -rf /var/tmp/cwct.??????
WORK=$(mktemp -d /var/tmp/cwct.XXXXXX)
ROOT=$WORK/rootfs
NSPAWN=
cw_install_traps
cw_on_cleanup "rm -rf $WORK"
mkdir -p "$ROOT"
tar -C "$ROOT" -xf "$TARBALL"
chmod 0755 "$ROOT"

# ---- what a package would install ------------------------------------------------------
install -m 0755 "$BUILD/connwatchd" "$ROOT/usr/sbin/connwatchd"
install -m 0755 "$BUILD/connwatchctl" "$ROOT/usr/bin/connwatchctl"
install -m 0644 "$SRC/systemd/connwatchd.service" "$ROOT/etc/systemd/system/connwatchd.service"
install -D -m 0644 "$SRC/systemd/connwatch.catalog" "$ROOT/usr/lib/systemd/catalog/connwatch.catalog"
# A short watchdog for the test: several periods pass within seconds.
mkdir -p "$ROOT/etc/systemd/system/connwatchd.service.d"
printf '[Service]\nWatchdogSec=3s\n' >"$ROOT/etc/systemd/system/connwatchd.service.d/test.conf"
PIN=/sys/fs/bpf/cwct-container # the host's bpffs is bound in: a name of our own
rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
mkdir -p "$ROOT/etc/connwatch"
cat >"$ROOT/etc/connwatch/connwatchd.conf" <<EOF
interface = cwct-h1
threshold = 3
block-duration = 10m
pin-dir = $PIN
EOF
cp "$ROOT/etc/connwatch/connwatchd.conf" "$WORK/good.conf"
chroot "$ROOT" groupadd --system connwatch
chroot "$ROOT" journalctl --update-catalog

# ---- boot ------------------------------------------------------------------------------
SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 systemd-nspawn -D "$ROOT" --boot --register=no --keep-unit \
    --capability=all --system-call-filter='bpf perf_event_open' --private-network \
    --bind=/sys/fs/bpf --console=pipe \
    -M cwct >"$WORK/console.log" 2>&1 9>&- &
NSPAWN=$!
cw_on_cleanup "stop_container"
stop_container() {
    [ -n "$NSPAWN" ] || return 0
    kill -TERM "$NSPAWN" 2>/dev/null || true # nspawn asks the container's systemd to power off
    cw_wait_exit "$NSPAWN" 30 || { kill -KILL "$NSPAWN" 2>/dev/null; cw_wait_exit "$NSPAWN" 10 || true; }
}
LEADER=
find_leader() {
    LEADER=$(pgrep -P "$NSPAWN" | head -1) || true
    [ -n "$LEADER" ] && [ "$(cat /proc/"$LEADER"/comm 2>/dev/null)" = systemd ]
}
cw_wait_until 30 find_leader || { echo "FAIL: setup: the container did not start:"; tail -20 "$WORK/console.log"; exit 1; }
in_ct() { nsenter -t "$LEADER" -a "$@"; }
booted() {
    local s
    s=$(in_ct systemctl is-system-running 2>/dev/null) || true
    [ "$s" = running ] || [ "$s" = degraded ]
}
cw_wait_until 90 booted || { echo "FAIL: setup: systemd did not finish booting:"; tail -20 "$WORK/console.log"; exit 1; }
echo "# container booted (leader pid $LEADER)"

# The test bed, inside the container: cwct-h1 <-> cwct-a0 in namespace cwct-a.
in_ct ip netns add cwct-a
in_ct ip link add cwct-h1 type veth peer name cwct-a0 netns cwct-a
in_ct ip addr add 10.237.0.1/24 dev cwct-h1
in_ct ip link set cwct-h1 up
in_ct ip netns exec cwct-a ip addr add 10.237.0.2/24 dev cwct-a0
in_ct ip netns exec cwct-a ip link set cwct-a0 up
in_ct ip netns exec cwct-a ip link set lo up

PASSED=0 FAILED=0 WHY=
check() {
    WHY=
    if "$2"; then echo "PASS: $1"; PASSED=$((PASSED + 1)); else echo "FAIL: $1: $WHY"; FAILED=$((FAILED + 1)); fi
}
prop() { in_ct systemctl show -P "$1" connwatchd; }
journal_json() { in_ct journalctl -u connwatchd -o json --no-pager; }
# has_entry MESSAGE_ID FIELD=VALUE...: an entry with that ID and those fields.
has_entry() {
    journal_json | "$CW_PY" -c '
import json, sys
want_id, pairs = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
for line in sys.stdin:
    e = json.loads(line)
    if e.get("MESSAGE_ID") == want_id and all(e.get(k) == v for k, v in pairs):
        sys.exit(0)
sys.exit(1)' "$@"
}

case_start() {
    in_ct systemctl start connwatchd || { WHY="systemctl start failed: $(in_ct journalctl -u connwatchd --no-pager | tail -5)"; return 1; }
    [ "$(in_ct systemctl is-active connwatchd)" = active ] || { WHY="not active"; return 1; }
    local status; status=$(prop StatusText)
    [[ $status == watching\ cwct-h1* ]] || { WHY="StatusText='$status'"; return 1; }
    has_entry 3a4cfcd983604884a15c127a995372a4 || { WHY="no 'started' entry"; return 1; }
}
check "systemctl start: Type=notify reaches READY with a STATUS" case_start

case_watchdog() {
    [ "$(prop WatchdogUSec)" = 3s ] || { WHY="WatchdogUSec=$(prop WatchdogUSec)"; return 1; }
    # Survives over time: 3 watchdog periods, polled.
    local deadline=$(($(cw_now_ms) + 9000))
    while [ "$(cw_now_ms)" -lt "$deadline" ]; do
        [ "$(in_ct systemctl is-active connwatchd)" = active ] && [ "$(prop NRestarts)" = 0 ] ||
            { WHY="restarted or stopped within 9 s (NRestarts=$(prop NRestarts))"; return 1; }
        sleep 0.5
    done
}
check "the watchdog is kept happy (WatchdogSec=3s, 9 s without a restart)" case_watchdog

case_events() {
    in_ct ip netns exec cwct-a timeout 5 bash -c 'exec 3<>/dev/tcp/10.237.0.1/9' 2>/dev/null || true
    cw_wait_until 10 has_entry e18fa1fc536a4f27a8eebff10fb095bf SRC_ADDR=10.237.0.2 \
        DST_ADDR=10.237.0.1 DST_PORT=9 INTERFACE=cwct-h1 ||
        { WHY="no new-connection entry with its fields"; return 1; }
    grep -q '"SRC_PORT":"[0-9]' <<<"$(journal_json)" || { WHY="no SRC_PORT field"; return 1; }
    in_ct ip netns exec cwct-a timeout 60 nmap -sS -n -Pn -p 1-10 --max-retries 1 \
        --host-timeout 30s 10.237.0.1 >/dev/null 2>&1 || true
    cw_wait_until 10 has_entry 6f4d3a22a208414a9454080c9c0630c9 SRC_ADDR=10.237.0.2 ACTION=blocked ||
        { WHY="no port-scan entry with ACTION=blocked"; return 1; }
    grep -qE '"PORTS":"[0-9]+(,[0-9]+){3,}"' <<<"$(journal_json)" || { WHY="no PORTS field"; return 1; }
    has_entry 674ffcdc16a34d2abba8aacd8deb5369 SRC_ADDR=10.237.0.2 BLOCK_ORIGIN=scan ||
        { WHY="no block-added entry"; return 1; }
    grep -qE '"BLOCK_EXPIRES":"[1-9][0-9]+"' <<<"$(journal_json)" || { WHY="no BLOCK_EXPIRES"; return 1; }
    grep -q "Port scan detected: 10.237.0.2 -> 10.237.0.1 on ports" \
        <<<"$(in_ct journalctl -u connwatchd MESSAGE_ID=6f4d3a22a208414a9454080c9c0630c9 --no-pager)" ||
        { WHY="journalctl MESSAGE_ID=... filter"; return 1; }
    grep -q "Subject: Port scan from 10.237.0.2" <<<"$(in_ct journalctl -x -u connwatchd --no-pager)" ||
        { WHY="journalctl -x does not show the catalog entry"; return 1; }
}
check "events reach journald with their MESSAGE_ID and fields; the catalog explains them" case_events

case_ctl() {
    local list; list=$(in_ct connwatchctl list) || { WHY="connwatchctl list failed"; return 1; }
    echo "$list" | grep -qE '^10\.237\.0\.2/32 +scan ' || { WHY="list: $list"; return 1; }
}
check "connwatchctl list shows the scanner's block" case_ctl

case_reload() {
    in_ct systemctl reload connwatchd || { WHY="systemctl reload failed"; return 1; }
    cw_wait_until 5 has_entry 9ad18623f6374caf9edb6b41021f1e1c || { WHY="no 'reloaded' entry"; return 1; }
    sed 's/^threshold = .*/threshold = 0/' "$WORK/good.conf" >"$ROOT/etc/connwatch/connwatchd.conf"
    if in_ct systemctl reload connwatchd 2>/dev/null; then
        cp "$WORK/good.conf" "$ROOT/etc/connwatch/connwatchd.conf"
        WHY="reload of an invalid configuration succeeded"; return 1
    fi
    cp "$WORK/good.conf" "$ROOT/etc/connwatch/connwatchd.conf"
    [ "$(in_ct systemctl is-active connwatchd)" = active ] || { WHY="not active after a failed reload"; return 1; }
    has_entry dfcffc22fa2549078cc940e2eacc4394 || { WHY="no error entry for the failed reload"; return 1; }
}
check "systemctl reload applies a good configuration and fails on a bad one, still running" case_reload

case_stop() {
    in_ct systemctl stop connwatchd || { WHY="stop failed"; return 1; }
    [ "$(in_ct systemctl is-active connwatchd)" = inactive ] || { WHY="not inactive"; return 1; }
    grep -q prog/xdp <<<"$(in_ct ip -d link show dev cwct-h1)" && { WHY="XDP still attached"; return 1; }
    return 0
}
check "systemctl stop detaches" case_stop

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
