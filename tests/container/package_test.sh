#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The .deb the way a user meets it. A Debian 12 rootfs (debootstrap, cached) gets
# the package from real apt, which fetches its dependencies from Debian's archive;
# systemd-nspawn boots it (this machine's PID 1 is not systemd) with a private
# network, and inside it: the service the package enabled starts at boot (Type=notify,
# READY, STATUS, watchdog), real connections and a real nmap scan reach journald with
# their fields and catalog text, connwatchctl works for root and for the connwatch
# group (made by sysusers.d) and refuses others, the metrics answer, reload (good and
# bad), the unit's hardening is in force, `systemctl restart` and an upgrade keep the
# program attached (a blocked source sending all along gets nothing through), an
# upgrade keeps an edited conffile and every block, stop detaches, and purge of a running service leaves nothing behind.
#
# Usage: package_test.sh BUILD_DIR   (root, after `make package`; ctest label "container")
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 1 ] || [ ! -d "$1" ]; then cw_usage "BUILD_DIR (with the .deb built: make package)"; fi
BUILD=$(realpath "$1")
cw_require_root
cw_require_tools systemd-nspawn nsenter tar dpkg-deb
DEB=$(cw_built_package "$BUILD" 'connwatch_*.deb' 2>&1) || { echo "$DEB"; exit 1; }
VERSION=$(dpkg-deb -f "$DEB" Version)
cw_take_lock /tmp/cwct-container.lock 600

# No libbpf, no prometheus-cpp: apt must find the package's dependencies itself.
cw_rootfs_tarball systemd,systemd-sysv,dbus,iproute2,python3-minimal,nmap,procps

cw_workdir /var/tmp/cwct
ROOT=$WORK/rootfs
NSPAWN=
cw_rootfs_unpack "$ROOT"

# "The previous build": this package with a lower version and a different default
# configuration, so that the upgrade below must keep an edited conffile whose
# packaged version changed too (the case where dpkg has to decide).
PREV=$WORK/connwatch_${VERSION}~prev1_amd64.deb
dpkg-deb -R "$DEB" "$WORK/prev"
sed -i "s/^Version: .*/Version: ${VERSION}~prev1/" "$WORK/prev/DEBIAN/control"
echo "# (the previous build's default configuration)" >>"$WORK/prev/etc/connwatch/connwatchd.conf"
(cd "$WORK/prev" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | xargs -0 md5sum >DEBIAN/md5sums)
dpkg-deb --root-owner-group -b "$WORK/prev" "$PREV" >/dev/null
# Not /tmp: the booted system mounts a fresh tmpfs there.
mkdir -p "$ROOT/var/tmp/cwct"
cp "$PREV" "$ROOT/var/tmp/cwct/prev.deb"
cp "$DEB" "$ROOT/var/tmp/cwct/new.deb"

# ---- install, before the first boot, as an image build would -----------------------------
in_root() { chroot "$ROOT" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
case_install() {
    in_root apt-get update -q >"$WORK/apt.log" 2>&1 || { WHY="apt-get update: $(tail -3 "$WORK/apt.log")"; return 1; }
    in_root apt-get install -y -q --no-install-recommends /var/tmp/cwct/prev.deb >>"$WORK/apt.log" 2>&1 ||
        { WHY="apt-get install: $(tail -5 "$WORK/apt.log")"; return 1; }
    local dep
    for dep in libbpf1 libprometheus-cpp-pull1.0 libsystemd0; do
        [ "$(in_root dpkg-query -W -f='${db:Status-Status}' "$dep")" = installed ] ||
            { WHY="dependency $dep not installed"; return 1; }
    done
    grep -q "not found" <<<"$(in_root ldd /usr/sbin/connwatchd /usr/bin/connwatchctl)" &&
        { WHY="ldd: a library is missing"; return 1; }
    in_root getent group connwatch >/dev/null || { WHY="no connwatch group (sysusers.d)"; return 1; }
    [ "$(in_root systemctl is-enabled connwatchd 2>&1)" = enabled ] ||
        { WHY="unit not enabled on install (Debian's policy)"; return 1; }
    grep -q "/etc/connwatch/connwatchd.conf" <<<"$(in_root dpkg-query -W -f='${Conffiles}' connwatch)" ||
        { WHY="the configuration is not a conffile"; return 1; }
    in_root /usr/sbin/connwatchd --check-config >/dev/null || { WHY="the shipped configuration does not check"; return 1; }
}
check "apt-get install ./connwatch.deb resolves its dependencies, makes the group, enables the unit" case_install
[ "$FAILED" = 0 ] || { echo "$PASSED passed, $FAILED failed"; exit 1; }

# The operator's edit of the conffile. The pin-dir stays the default: the container
# gets a bpffs instance of its own (at boot, below), not the host's.
cat >>"$ROOT/etc/connwatch/connwatchd.conf" <<'CONF'

# -- the package test's settings --
interface = cwct-h1
threshold = 3
block-duration = 10m
CONF
cp "$ROOT/etc/connwatch/connwatchd.conf" "$WORK/good.conf"
# The test bed, made at boot before connwatchd starts: cwct-h1 <-> cwct-a0 in
# namespace cwct-a.
cat >"$ROOT/etc/systemd/system/cwct-testbed.service" <<'UNIT'
[Unit]
Description=connwatch package test: veth pair and namespace
Before=connwatchd.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -ec 'ip netns add cwct-a; \
  ip link add cwct-h1 type veth peer name cwct-a0 netns cwct-a; \
  ip addr add 10.237.0.1/24 dev cwct-h1; ip link set cwct-h1 up; \
  ip netns exec cwct-a ip addr add 10.237.0.2/24 dev cwct-a0; \
  ip netns exec cwct-a ip link set cwct-a0 up; ip netns exec cwct-a ip link set lo up'
UNIT
# A short watchdog for the test (several periods pass within seconds), and the
# test bed before the service.
mkdir -p "$ROOT/etc/systemd/system/connwatchd.service.d"
printf '[Unit]\nWants=cwct-testbed.service\nAfter=cwct-testbed.service\n[Service]\nWatchdogSec=3s\n' \
    >"$ROOT/etc/systemd/system/connwatchd.service.d/test.conf"
in_root useradd --create-home --groups connwatch cwct-op
in_root useradd --create-home cwct-other

# ---- boot ------------------------------------------------------------------------------
# Not the host's /sys/fs/bpf: a new bpffs instance of the test's own is bound in
# (the container's sysfs has no fs/bpf to mount one on), so the default pin-dir is
# safe to use and purge's removal of it can be seen. Unmounting it frees the pins.
mkdir "$WORK/bpffs"
mount -t bpf cwct-bpffs "$WORK/bpffs"
cw_on_cleanup "umount -l $WORK/bpffs"
SYSTEMD_NSPAWN_API_VFS_WRITABLE=1 systemd-nspawn -D "$ROOT" --boot --register=no --keep-unit \
    --capability=all --system-call-filter='bpf perf_event_open' --private-network \
    --bind="$WORK/bpffs:/sys/fs/bpf" --console=pipe -M cwct >"$WORK/console.log" 2>&1 9>&- &
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
in_ct() { nsenter -t "$LEADER" -a env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
booted() {
    local s
    s=$(in_ct systemctl is-system-running 2>/dev/null) || true
    [ "$s" = running ] || [ "$s" = degraded ]
}
cw_wait_until 90 booted || { echo "FAIL: setup: systemd did not finish booting:"; tail -20 "$WORK/console.log"; exit 1; }
echo "# container booted (leader pid $LEADER)"

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
last_log() { in_ct journalctl -u connwatchd -u cwct-testbed --no-pager | tail -15; }

case_boot() {
    # Started at boot because the package enabled it; READY carries a STATUS.
    cw_wait_until 20 eval '[ "$(in_ct systemctl is-active connwatchd)" = active ]' ||
        { WHY="not active after boot: $(last_log)"; return 1; }
    local status; status=$(prop StatusText)
    [[ $status == watching\ cwct-h1* ]] || { WHY="StatusText='$status'"; return 1; }
    has_entry 3a4cfcd983604884a15c127a995372a4 || { WHY="no 'started' entry"; return 1; }
    # README's and PACKAGING.md's first look after the install (exit 0: active).
    local out
    out=$(in_ct systemctl status connwatchd --no-pager 2>&1) || { WHY="systemctl status: $out"; return 1; }
    grep -q 'Active: active (running)' <<<"$out" || { WHY="systemctl status: $out"; return 1; }
}
check "the service the package enabled starts at boot: Type=notify reaches READY with a STATUS" case_boot

case_hardening() {
    # The sandbox of docs/HARDENING.md is in force, not only written down.
    local out
    out=$(in_ct systemd-analyze verify --man=no connwatchd.service 2>&1) || { WHY="verify: $out"; return 1; }
    [ -z "$out" ] || { WHY="verify: $out"; return 1; }
    [ "$(prop CapabilityBoundingSet)" = "cap_net_admin cap_perfmon cap_bpf" ] ||
        { WHY="CapabilityBoundingSet=$(prop CapabilityBoundingSet)"; return 1; }
    [ -z "$(prop AmbientCapabilities)" ] || { WHY="AmbientCapabilities=$(prop AmbientCapabilities)"; return 1; }
    [ "$(prop NoNewPrivileges)" = yes ] && [ "$(prop ProtectSystem)" = strict ] &&
        [ "$(prop ProcSubset)" = pid ] && [ "$(prop SupplementaryGroups)" = connwatch ] ||
        { WHY="NoNewPrivileges, ProtectSystem, ProcSubset or SupplementaryGroups"; return 1; }
    [ "$(prop RestrictAddressFamilies)" = "AF_INET AF_INET6 AF_NETLINK AF_UNIX" ] ||
        { WHY="RestrictAddressFamilies=$(prop RestrictAddressFamilies)"; return 1; }
    # The running process has exactly those three: bits 12 (NET_ADMIN), 38 (PERFMON), 39 (BPF).
    grep -q '^CapEff:.*000000c000001000$' <<<"$(in_ct cat "/proc/$(prop MainPID)/status")" ||
        { WHY="CapEff: $(grep CapEff <<<"$(in_ct cat "/proc/$(prop MainPID)/status")")"; return 1; }
    # The exposure score is 2.0 (the threshold is in tenths): anything looser fails.
    out=$(in_ct systemd-analyze security --threshold=20 connwatchd 2>&1) ||
        { WHY="exposure above 2.0: $(tail -1 <<<"$out")"; return 1; }
    # What the sandbox must still allow: the group's socket, pins through ReadWritePaths.
    [ "$(in_ct stat -c '%a %G' /run/connwatch/control.sock)" = "660 connwatch" ] ||
        { WHY="control socket: $(in_ct stat -c '%a %U:%G' /run/connwatch/control.sock)"; return 1; }
    [ -e "$WORK/bpffs/connwatch/block_addr" ] || { WHY="blocklist not pinned (bpffs read-only?)"; return 1; }
    # Nothing the sandbox broke quietly (the own-address list, the socket's group, ...).
    out=$(in_ct journalctl -u connwatchd -p warning -q --no-pager _COMM=connwatchd)
    [ -z "$out" ] || { WHY="connwatchd warned: $(tail -3 <<<"$out")"; return 1; }
}
check "the unit's sandbox is in force: three capabilities, exposure <= 2.0, verify clean, no warnings" case_hardening

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
        { WHY="journalctl -x does not show the catalog entry (postinst's --update-catalog)"; return 1; }
}
check "events reach journald with their MESSAGE_ID and fields; the catalog explains them" case_events

scanner_listed() { grep -qE '^10\.237\.0\.2/32 +scan ' <<<"$(in_ct connwatchctl list 2>&1)"; }
case_ctl() {
    scanner_listed || { WHY="root: list: $(in_ct connwatchctl list 2>&1)"; return 1; }
    local out rc=0
    out=$(in_ct setpriv --reuid=cwct-op --regid=cwct-op --init-groups connwatchctl list 2>&1) ||
        { WHY="a member of group connwatch: $out"; return 1; }
    grep -qE '^10\.237\.0\.2/32 +scan ' <<<"$out" || { WHY="group member's list: $out"; return 1; }
    out=$(in_ct setpriv --reuid=cwct-other --regid=cwct-other --init-groups connwatchctl list 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || { WHY="a user outside group connwatch may use the control socket: $out"; return 1; }
}
check "connwatchctl list shows the scanner's block, for root and group connwatch, not for others" case_ctl

case_metrics() {
    local out
    # python3-minimal has no http.client: plain HTTP/1.0 over a socket.
    out=$(in_ct python3 -c '
import socket
s = socket.create_connection(("127.0.0.1", 9467), timeout=5)
s.sendall(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.decode())') ||
        { WHY="GET /metrics failed"; return 1; }
    grep -qE '^connwatch_new_connections_total\{interface="cwct-h1"\} [1-9]' <<<"$out" ||
        { WHY="no connwatch_new_connections_total for cwct-h1"; return 1; }
}
check "the metrics endpoint answers on 127.0.0.1:9467 with the connection counter" case_metrics

case_reload() {
    in_ct systemctl reload connwatchd || { WHY="systemctl reload failed: $(last_log)"; return 1; }
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

case_default_route() {
    # No interface configured: the default route's. Under ProcSubset=pid the routing
    # table is read through /proc/self/net (/proc/net is hidden).
    in_ct ip route add default via 10.237.0.2 dev cwct-h1 || { WHY="ip route add"; return 1; }
    grep -v '^interface = ' "$WORK/good.conf" >"$ROOT/etc/connwatch/connwatchd.conf"
    local ok=1 status
    in_ct systemctl restart connwatchd || { ok=0; WHY="restart without an interface: $(last_log)"; }
    status=$(prop StatusText)
    [ "$ok" = 0 ] || [[ $status == watching\ cwct-h1* ]] || { ok=0; WHY="StatusText='$status'"; }
    cp "$WORK/good.conf" "$ROOT/etc/connwatch/connwatchd.conf"
    in_ct ip route del default || true
    in_ct systemctl restart connwatchd || { WHY="restart with the test's configuration: $(last_log)"; return 1; }
    [ "$ok" = 1 ]
}
check "with no interface configured it watches the default route's, inside the sandbox" case_default_route

xdp_on_veth() { grep -q prog/xdp <<<"$(in_ct ip -d link show dev cwct-h1)"; }

# The scanner (10.237.0.2, blocked since case_events) sends a datagram every 2 ms to a
# receiver on the host side through CMD...; not one may arrive. The scripts live in
# the container's /var/tmp/cwct, the counts in files there.
cp "$CW_LIB/../container/udp_count.py" "$ROOT/var/tmp/cwct/udp_count.py"
count_at_least() { [ "$(cat "$1" 2>/dev/null || echo 0)" -ge "$2" ]; }
blocked_sender_through() {
    local d=/var/tmp/cwct sent0 sent received
    rm -f "$ROOT$d/stop" "$ROOT$d/sent" "$ROOT$d/received"
    in_ct python3 $d/udp_count.py receive 10.237.0.1 9191 10.237.0.2 $d/received $d/stop &
    local rpid=$!
    cw_wait_until 10 test -s "$ROOT$d/received" || { WHY="the receiver did not start"; kill $rpid; return 1; }
    in_ct ip netns exec cwct-a python3 $d/udp_count.py send 10.237.0.1 9191 - $d/sent $d/stop &
    local spid=$!
    cw_wait_until 10 count_at_least "$ROOT$d/sent" 100 ||
        { WHY="the sender does not send"; touch "$ROOT$d/stop"; return 1; }
    sent0=$(cat "$ROOT$d/sent")
    "$@" || { WHY="$* failed: $(last_log)"; touch "$ROOT$d/stop"; return 1; }
    # Still sending after the command: the whole of it was covered.
    cw_wait_until 10 count_at_least "$ROOT$d/sent" $((sent0 + 100)) ||
        { WHY="the sender stopped"; touch "$ROOT$d/stop"; return 1; }
    touch "$ROOT$d/stop"
    cw_wait_exit "$spid" 10 || true
    cw_wait_exit "$rpid" 10 || true
    sent=$(cat "$ROOT$d/sent") received=$(cat "$ROOT$d/received")
    echo "# the blocked scanner sent $sent datagrams through '$*'; $received arrived"
    [ "$received" = 0 ] || { WHY="$received of $sent datagrams of a blocked source got through"; return 1; }
}

restart_unit() {
    local pid_before
    pid_before=$(prop MainPID)
    in_ct systemctl restart connwatchd || return 1
    [ "$(prop MainPID)" != "$pid_before" ]
}
case_restart() {
    local since
    since=$(in_ct date '+%Y-%m-%d %H:%M:%S')
    blocked_sender_through restart_unit || return 1
    xdp_on_veth || { WHY="not attached after the restart"; return 1; }
    grep -q "Took over cwct-h1 (native) from the previous connwatchd" \
        <<<"$(in_ct journalctl -u connwatchd --since "$since" --no-pager)" ||
        { WHY="no 'Took over' entry: $(last_log)"; return 1; }
    grep -q "While no connwatchd ran: " <<<"$(in_ct journalctl -u connwatchd --since "$since" --no-pager)" ||
        { WHY="no 'While no connwatchd ran' entry"; return 1; }
}
check "systemctl restart: the program stays attached and is taken over; not one packet of a blocked source passes" case_restart

upgrade_package() {
    in_ct apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        /var/tmp/cwct/new.deb >"$WORK/upgrade.log" 2>&1
}
case_upgrade() {
    local pid_before pid_after out
    pid_before=$(prop MainPID)
    # The upgrade restarts the daemon (try-restart): a blocked source gets nothing through.
    blocked_sender_through upgrade_package || { WHY="upgrade: $WHY $(tail -5 "$WORK/upgrade.log")"; return 1; }
    [ "$(in_ct dpkg-query -W -f='${Version}' connwatch)" = "$VERSION" ] || { WHY="version not $VERSION"; return 1; }
    cmp -s "$WORK/good.conf" "$ROOT/etc/connwatch/connwatchd.conf" || { WHY="the edited conffile was replaced"; return 1; }
    [ -f "$ROOT/etc/connwatch/connwatchd.conf.dpkg-dist" ] || { WHY="no .dpkg-dist with the new default"; return 1; }
    cw_wait_until 20 eval '[ "$(in_ct systemctl is-active connwatchd)" = active ]' ||
        { WHY="not active after the upgrade: $(last_log)"; return 1; }
    pid_after=$(prop MainPID)
    [ "$pid_after" != "$pid_before" ] || { WHY="not restarted by the upgrade (MainPID $pid_before)"; return 1; }
    scanner_listed || { WHY="the scanner's block was lost: $(in_ct connwatchctl list 2>&1)"; return 1; }
}
check "an upgrade keeps the edited conffile, restarts the daemon without a gap and keeps every block" case_upgrade

case_stop() {
    in_ct systemctl stop connwatchd || { WHY="stop failed"; return 1; }
    [ "$(in_ct systemctl is-active connwatchd)" = inactive ] || { WHY="not inactive"; return 1; }
    ! xdp_on_veth || { WHY="XDP still attached"; return 1; }
    in_ct test -e /sys/fs/bpf/connwatch/block_addr || { WHY="no pinned blocklists in /sys/fs/bpf/connwatch after stop"; return 1; }
    local left
    left=$(in_ct find /sys/fs/bpf/connwatch -mindepth 1 ! -name block_addr ! -name block_cidr ! -name offenders -printf '%f ')
    [ -z "$left" ] || { WHY="still pinned after stop: $left"; return 1; }
    # Detached: now the scanner's datagrams do arrive (so the zero counts above can fail).
    local d=/var/tmp/cwct
    rm -f "$ROOT$d/stop" "$ROOT$d/sent" "$ROOT$d/received"
    in_ct python3 $d/udp_count.py receive 10.237.0.1 9191 10.237.0.2 $d/received $d/stop &
    local rpid=$!
    cw_wait_until 10 test -s "$ROOT$d/received" || { WHY="the receiver did not start"; touch "$ROOT$d/stop"; return 1; }
    in_ct ip netns exec cwct-a python3 $d/udp_count.py send 10.237.0.1 9191 - $d/sent $d/stop &
    local spid=$! ok=0
    cw_wait_until 10 count_at_least "$ROOT$d/received" 10 || ok=1
    touch "$ROOT$d/stop"
    cw_wait_exit "$spid" 10 || true
    cw_wait_exit "$rpid" 10 || true
    [ "$ok" = 0 ] || { WHY="after stop the scanner's datagrams still do not arrive"; return 1; }
}
check "systemctl stop detaches (the blocklists stay pinned, nothing else; the blocked source's datagrams arrive)" case_stop

case_purge() {
    # Removal of a running service: prerm stops it.
    in_ct systemctl start connwatchd || { WHY="start before purge failed: $(last_log)"; return 1; }
    xdp_on_veth || { WHY="XDP not attached before purge"; return 1; }
    # The test's own drop-in would otherwise be the one file left.
    rm -rf "$ROOT/etc/systemd/system/connwatchd.service.d"
    local out left
    out=$(in_ct apt-get purge -y -q connwatch 2>&1) || { WHY="apt-get purge: $(tail -5 <<<"$out")"; return 1; }
    [ -z "$(in_ct pgrep -x connwatchd)" ] || { WHY="connwatchd still runs"; return 1; }
    ! xdp_on_veth || { WHY="XDP still attached after purge"; return 1; }
    [ "$(in_ct dpkg-query -W -f='${db:Status-Status}' connwatch 2>/dev/null)" != installed ] ||
        { WHY="still installed"; return 1; }
    left=$(in_ct find / -xdev \( -path /proc -o -path /sys -o -path /tmp -o -path /var/log \
        -o -path /var/cache/apt -o -path /var/tmp/cwct \) -prune -o -name '*connwatch*' -print)
    left+=$(in_ct find /run /sys/fs/bpf -name '*connwatch*' 2>/dev/null)
    [ -z "$left" ] || { WHY="left behind: $(tr '\n' ' ' <<<"$left")"; return 1; }
    in_ct getent group connwatch >/dev/null || { WHY="the connwatch group was removed (it is kept by design)"; return 1; }
    [ "$(in_ct systemctl is-enabled connwatchd 2>&1)" != enabled ] || { WHY="still enabled"; return 1; }
}
check "apt-get purge stops the running service and leaves nothing behind but the group" case_purge

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
