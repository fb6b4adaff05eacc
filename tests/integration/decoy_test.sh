#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test: decoy scans (nmap -D) against the reverse-path check
# (rp-filter; docs/SECURITY.md, "Spoofed sources and decoys"), with real nmap
# from a namespace and connwatchd watching both veths:
#
#   root namespace                          cwdc-s (scanner)
#   cwdc-h1 10.72.1.1/24  <── veth ──> cwdc-s0 10.72.1.2 (nmap, ME), 10.72.1.3
#           fd17:dec0:1::1/64                  fd17:dec0:1::2
#   cwdc-h2 10.72.0.1/24  <── veth ──> cwdc-v0 10.72.0.2 (the "victim")
#           fd17:dec0::1/64                    fd17:dec0::2    cwdc-v
#   routes of the host: 10.72.64.0/18 via cwdc-h2 (more of the victim's side),
#   10.72.8.0/24 via cwdc-h1, moved to cwdc-h2 while connwatchd runs.
#
# Cases (rp-filter strict unless said):
#   - nmap -D 10.72.0.2,ME: the real scanner is blocked; the decoy, whose route
#     leaves by cwdc-h2, is reported as spoofed and never blocked, and can still
#     connect; the same over IPv6;
#   - nmap -D 10.72.1.50,ME with 10.72.1.50 allowlisted (on the scanner's side,
#     so it passes the check): never blocked, the real scanner is;
#   - a route moved after start is followed: scans from 10.72.8.0/24 on cwdc-h1
#     are blocked while the route leaves by cwdc-h1, reported as spoofed once it
#     leaves by cwdc-h2;
#   - a decoy flood (2000 sources x 4 ports, written here as raw frames) from the
#     victim's prefix: no block at all; with rp-filter loose the same flood
#     passes the check, and the blocks stay within the token bucket's bound.
#
# Usage: decoy_test.sh PATH/TO/connwatchd     (root; ctest label "integration")
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 1 ] || [ ! -x "$1" ]; then cw_usage "PATH/TO/connwatchd"; fi
BIN=$(realpath "$1")
cw_require_root
cw_require_tools ip nmap flock timeout python3 bpftool
cw_take_lock /tmp/cwdc-integration.lock 240
# Not /tmp/cwdc: docs_check.sh's (its names are cwdc-* too), which this test's
# cw_workdir would remove as an earlier run's while it runs beside it.
cw_workdir /tmp/cwdc-decoy
PIDFILE=/tmp/cwdc-integration.connwatchd.pid
LISTEN_PIDFILE=/tmp/cwdc-integration.listener.pid
cw_pidfile_reap $PIDFILE "--interface cwdc-h1"
cw_pidfile_reap $LISTEN_PIDFILE "/listen.ready"

H1_4=10.72.1.1 S_4=10.72.1.2 S2_4=10.72.1.3 ALLOWED=10.72.1.50
H2_4=10.72.0.1 V_4=10.72.0.2
H1_6=fd17:dec0:1::1 S_6=fd17:dec0:1::2 H2_6=fd17:dec0::1 V_6=fd17:dec0::2
PORT=8080
TS=$CW_TS_RE
E() { cw_regex_escape "$1"; }
OUT="" ERR="" DPID=""
PIN=/sys/fs/bpf/cwdc-integration

check_fail_note() {
    if [ -n "$DPID" ] && ! cw_pid_alive "$DPID"; then
        echo " (connwatchd is no longer running: see its stderr below)"
    fi
}
CW_LOGS=("$WORK/*.out" "$WORK/*.err" "$WORK/nmap*.log") CW_LOG_LINES=60

# ---- setup --------------------------------------------------------------------------

t_start=$(cw_now_ms)
cw_ns_create cwdc-s
cw_ns_create cwdc-v
cw_veth cwdc-h1 cwdc-s cwdc-s0
cw_veth cwdc-h2 cwdc-v cwdc-v0
cw_addr cwdc-h1 $H1_4/24
cw_addr cwdc-h1 $H1_6/64
cw_addr cwdc-h2 $H2_4/24
cw_addr cwdc-h2 $H2_6/64
cw_addr cwdc-s cwdc-s0 $S_4/24
cw_addr cwdc-s cwdc-s0 $S2_4/24
cw_addr cwdc-s cwdc-s0 $S_6/64
cw_addr cwdc-v cwdc-v0 $V_4/24
cw_addr cwdc-v cwdc-v0 $V_6/64
cw_default_route cwdc-s $H1_4
cw_default_route cwdc-s $H1_6
cw_default_route cwdc-v $H2_4
cw_default_route cwdc-v $H2_6
# Routes of the host for the cases (removed with the links at cleanup). Through a
# gateway, the namespace's address, not on-link: the host's answers to thousands of
# forged sources then need one neighbour entry, not thousands (the root namespace's
# neighbour table is shared with everything else on the machine).
ip route add 10.72.64.0/18 via $V_4 dev cwdc-h2
ip route add 10.72.8.0/24 via $S_4 dev cwdc-h1

cw_listen 280 "$WORK/listen.ready" $H1_4:$PORT $H2_4:$PORT "[$H1_6]:$PORT" "[$H2_6]:$PORT"
cw_pidfile_track $LISTEN_PIDFILE "$CW_LISTEN_PID"
cw_wait_for_line "$WORK/listen.ready" '^ready$' 10 "$CW_LISTEN_PID" ||
    cw_fatal "setup: the TCP listener did not start"
cw_connect cwdc-v $H2_4 $PORT 5 >/dev/null || cw_fatal "setup: cwdc-v cannot reach $H2_4"
cw_connect cwdc-v $H2_6 $PORT 5 >/dev/null || cw_fatal "setup: cwdc-v cannot reach $H2_6"
cw_connect cwdc-s $H1_4 $PORT 5 >/dev/null || cw_fatal "setup: cwdc-s cannot reach $H1_4"

cw_isolation "$BIN" "$WORK" cwdc-integration
ISO=("${CW_ISOLATE[@]}")

# start_daemon NAME ARGS...: connwatchd on both veths, events in $WORK/NAME.out.
start_daemon() {
    local name=$1
    shift
    OUT=$WORK/$name.out ERR=$WORK/$name.err
    cw_daemon_start --ready '^connwatchd: (.*, )?watching cwdc-h1' 20 "$OUT" "$ERR" $PIDFILE \
        "$BIN" "${ISO[@]}" --interface cwdc-h1 --interface cwdc-h2 --log-target stdout \
        --threshold 3 --window 60s --block-duration 10m "$@" ||
        cw_fatal "setup: connwatchd ($name) did not report 'watching cwdc-h1' within 20 s"
    DPID=$CW_DAEMON_PID
}
stop_daemon() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || cw_fatal "connwatchd still runs 10 s after SIGTERM"
    DPID=
}

# send_scans IF FIRST_SRC COUNT PORTS: from the scanner's side, COUNT sources
# from FIRST_SRC on (consecutive IPv4 addresses), each a SYN to every port of the
# comma-separated PORTS on $H1_4, as raw frames: nmap -D takes at most 128
# decoys, and a flood needs thousands. Bounded: COUNT x ports frames, once.
send_scans() {
    local dmac
    dmac=$(cat /sys/class/net/cwdc-h1/address)
    ip netns exec cwdc-s "$CW_PY" - "$dmac" "$H1_4" "$1" "$2" "$3" <<'PY'
import ipaddress, socket, struct, sys
dmac = bytes.fromhex(sys.argv[1].replace(":", ""))
dst, first, count = sys.argv[2], ipaddress.IPv4Address(sys.argv[3]), int(sys.argv[4])
ports = [int(p) for p in sys.argv[5].split(",")]
smac = bytes.fromhex(open("/sys/class/net/cwdc-s0/address").read().strip().replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("cwdc-s0", 0))
def csum(b):
    if len(b) % 2: b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16: t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff
d = socket.inet_aton(dst)
for i in range(count):
    src = socket.inet_aton(str(first + i))
    for port in ports:
        tcp = struct.pack("!HHIIBBHHH", 40000 + i % 20000, port, i, 0, 5 << 4, 0x02, 64240, 0, 0)
        tcp = tcp[:16] + struct.pack("!H", csum(src + d + struct.pack("!BBH", 0, 6, 20) + tcp)) + tcp[18:]
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, i & 0xffff, 0, 64, 6, 0, src, d)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        s.send(dmac + smac + b"\x08\x00" + ip + tcp)
PY
}

# blocks_in_kernel: the number of entries in the pinned exact blocklist.
blocks_in_kernel() {
    bpftool -j map dump pinned "$PIN/block_addr" | "$CW_PY" -c 'import json,sys; print(len(json.load(sys.stdin)))'
}

# ---- the cases ----------------------------------------------------------------------

# decoy_scan FAMILY DECOY REAL DST LOG: nmap -sS -D DECOY,ME from cwdc-s.
decoy_scan() {
    local fam=$1 decoy=$2 real=$3 dst=$4 log=$5 six=() rc=0
    [ "$fam" = 6 ] && six=(-6)
    timeout 90 ip netns exec cwdc-s nmap "${six[@]}" -sS -n -Pn -D "$decoy,ME" -S "$real" \
        -e cwdc-s0 -p 1-12,$PORT --max-retries 0 --host-timeout 30s "$dst" >"$log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || why "nmap exited with $rc: $(cat "$log")" || return 1
    cw_wait_for_line "$OUT" "^${TS}Blocked $(E "$real") until " 10 "$DPID" ||
        why "the real scanner $real was not blocked" || return 1
    cw_wait_for_line "$OUT" "^${TS}Port scan detected: $(E "$decoy") -> " 10 "$DPID" ||
        why "the decoy's scan ($decoy) was not reported" || return 1
}

case_v4() {
    decoy_scan 4 $V_4 $S_4 $H1_4 "$WORK/nmap-decoy4.log" || return 1
    cw_wait_for_line "$OUT" "^${TS}Not blocking [0-9]+ scanners? \\(the latest $(E $V_4)\\): its source fails the reverse-path check" 15 "$DPID" ||
        why "no 'Not blocking ... (the latest $V_4): ... reverse-path check' line" || return 1
    ! grep -qE "Blocked $(E $V_4) " "$OUT" || why "the decoy $V_4 was blocked" || return 1
    local err
    err=$(cw_connect cwdc-v $H2_4 $PORT 3 2>&1) || why "the decoy host can no longer connect: $err"
}
case_v6() {
    decoy_scan 6 $V_6 $S_6 $H1_6 "$WORK/nmap-decoy6.log" || return 1
    cw_wait_for_line "$OUT" "^${TS}Not blocking [0-9]+ scanners? \\(the latest $(E $V_6)\\): its source fails the reverse-path check" 15 "$DPID" ||
        why "no 'Not blocking ... (the latest $V_6): ...' line" || return 1
    ! grep -qE "Blocked $(E $V_6) " "$OUT" || why "the decoy $V_6 was blocked" || return 1
    local err
    err=$(cw_connect cwdc-v $H2_6 $PORT 3 2>&1) || why "the decoy host can no longer connect over IPv6: $err"
}
case_allowed() {
    decoy_scan 4 $ALLOWED $S2_4 $H1_4 "$WORK/nmap-allowed.log" || return 1
    cw_wait_for_line "$OUT" "^${TS}Not blocking $(E $ALLOWED): it is in the allowlist\$" 10 "$DPID" ||
        why "no 'Not blocking $ALLOWED: it is in the allowlist' line" || return 1
    ! grep -qE "Blocked $(E $ALLOWED) " "$OUT" || why "the allowlisted decoy was blocked"
}
# A scan from one source of 10.72.8.0/24 at a time, until it is judged as `want`
# (blocked | spoofed): the mirror follows the route change within the deadline.
case_route_follows() {
    send_scans 10.72.8.8 1 1,2,3,4 || why "sending failed" || return 1
    cw_wait_for_line "$OUT" "^${TS}Blocked 10\\.72\\.8\\.8 until " 10 "$DPID" ||
        why "10.72.8.8 (route via cwdc-h1, where it came in) was not blocked" || return 1
    ip route replace 10.72.8.0/24 via $V_4 dev cwdc-h2
    local i deadline=$(($(cw_now_ms) + 30000))
    for ((i = 20; i < 60; i++)); do
        send_scans "10.72.8.$i" 1 1,2,3,4 || why "sending failed" || return 1
        cw_wait_for_line "$OUT" "^${TS}Port scan detected: 10\\.72\\.8\\.$i -> " 10 "$DPID" ||
            why "the scan from 10.72.8.$i was not reported" || return 1
        if cw_wait_for_line "$OUT" "^${TS}Not blocking [0-9]+ scanners? \\(the latest 10\\.72\\.8\\.$i\\): its source fails" 12 "$DPID"; then
            echo "  followed after $((i - 19)) scan(s)"
            ! grep -qE "Blocked 10\\.72\\.8\\.$i " "$OUT" || why "10.72.8.$i both spoofed and blocked" || return 1
            return 0
        fi
        [ "$(cw_now_ms)" -lt "$deadline" ] || break
    done
    why "scans from 10.72.8.0/24 were still blocked 30 s after its route moved to cwdc-h2"
}
case_flood_strict() {
    local before after
    before=$(blocks_in_kernel)
    send_scans 10.72.64.1 2000 1,2,3,4 || why "sending the flood failed" || return 1
    cw_wait_for_line "$OUT" "^${TS}Not blocking [0-9]+ scanners \\(the latest 10\\.72\\.[0-9]+\\.[0-9]+\\): its source fails" 15 "$DPID" ||
        why "no 'Not blocking N scanners ...: its source fails the reverse-path check' line" || return 1
    after=$(blocks_in_kernel)
    [ "$after" = "$before" ] || why "the flood made $((after - before)) blocks" || return 1
    ! grep -qE "Blocked 10\\.72\\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\\." "$OUT" ||
        why "a decoy of the flood was blocked" || return 1
    echo "  $(grep -cE "Port scan detected: 10\\.72\\.(6[4-9]|[7-9][0-9]|1[01][0-9]|12[0-7])\\." "$OUT") flood scans reported; $(grep -E "Not blocking [0-9]+ scanners" "$OUT" | tail -1 | cut -d' ' -f3-6)"
}
# rp-filter loose: the flood's sources have a route, so they pass the check;
# the bucket (2 a second after a burst of 10) bounds what they get blocked.
case_flood_loose() {
    local t0 t1 n bound before
    t0=$(cw_now_ms)
    before=$(blocks_in_kernel) # the strict run's blocks, kept (pinned)
    send_scans 10.72.64.1 2000 1,2,3,4 || why "sending the flood failed" || return 1
    cw_wait_for_line "$OUT" "^${TS}Not blocking [0-9]+ scanners .*max-new-blocks-per-second" 15 "$DPID" ||
        why "no 'Not blocking N scanners ...: more automatic blocks than ...' line" || return 1
    n=$(($(blocks_in_kernel) - before))
    t1=$(cw_now_ms)
    # From the daemon's start (a full bucket) to now, rounded up.
    bound=$((10 + 2 * ((t1 - T_DAEMON + 999) / 1000)))
    [ "$n" -le "$bound" ] || why "$n blocks, more than the bucket's bound $bound" || return 1
    [ "$n" -ge 10 ] || why "only $n blocks: the burst was not even spent (the check is not loose?)" || return 1
    echo "  $n blocks in the kernel after 2000 decoy scans in $((t1 - t0)) ms (bound $bound)"
}

start_daemon strict --rp-filter strict --allow $ALLOWED
echo "setup: $(grep -E 'Reverse-path' "$ERR" | head -1) ($(($(cw_now_ms) - t_start)) ms)"
check "nmap -D 10.72.0.2,ME: the scanner is blocked, the decoy behind cwdc-h2 reported as spoofed, never blocked" case_v4
check "nmap -6 -D fd17:dec0::2,ME: the same over IPv6" case_v6
check "nmap -D with an allowlisted decoy: never blocked, the scanner is" case_allowed
check "a route moved after start is followed" case_route_follows
check "a decoy flood of 2000 sources from behind cwdc-h2: not one block (strict)" case_flood_strict
stop_daemon
T_DAEMON=$(cw_now_ms)
start_daemon loose --rp-filter loose --max-new-blocks-per-second 2 --max-new-blocks-burst 10
check "the same flood with rp-filter loose: blocks within the token bucket's bound" case_flood_loose

echo "decoy_integration: $PASSED passed, $FAILED failed ($(($(cw_now_ms) - t_start)) ms)"
if [ "$FAILED" != 0 ]; then
    cw_dump_logs
    exit 1
fi
