#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test: an IPv6 scanner rotating its address inside its /64
# (ipv6-prefix, default 64), with real nmap from a network namespace. Four nmap
# runs, each from another address of one /64 and to one port: before, each
# address started from zero ports and nothing was seen; now the /64 is one
# scanner, reported as the prefix, and the whole /64 is blocked -- an address that
# never sent a packet too -- while another /64 of the same namespace is untouched.
# connwatchctl lists the block as the prefix and unblocks it. Four addresses of
# the host's own /64 (which holds an own address) are counted per address: no scan.
#
#   root namespace                            cwpx-a
#   cwpx-h1 fd17:f7a9:12:1::1/64   <── veth ──> cwpx-a0 fd17:f7a9:12:1::2/64 (link)
#                                                       fd17:f7a9:12:1::11-14 (own /64)
#                                                       fd17:f7a9:12:2::a-e (scanner /64)
#                                                       fd17:f7a9:12:3::a   (another /64)
#   routes: fd17:f7a9:12:2::/64 and :3::/64 via fd17:f7a9:12:1::2
#
# Usage: prefix_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl  (root; label "integration")
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
cw_require_root
cw_require_tools ip nmap flock timeout python3
cw_take_lock /tmp/cwpx-integration.lock 240
cw_workdir /tmp/cwpx
PIDFILE=/tmp/cwpx-integration.connwatchd.pid
LISTEN_PIDFILE=/tmp/cwpx-integration.listener.pid
cw_pidfile_reap $PIDFILE "--interface cwpx-h1"
cw_pidfile_reap $LISTEN_PIDFILE "/listen.ready"

H=fd17:f7a9:12:1::1 LINK=fd17:f7a9:12:1::2
SCAN=(fd17:f7a9:12:2::a fd17:f7a9:12:2::b fd17:f7a9:12:2:ffff::c fd17:f7a9:12:2:1:2:3:4)
UNUSED=fd17:f7a9:12:2::e   # in the scanner's /64, sends nothing before the block
OTHER=fd17:f7a9:12:3::a    # another /64
OWN64=(fd17:f7a9:12:1::11 fd17:f7a9:12:1::12 fd17:f7a9:12:1::13 fd17:f7a9:12:1::14)
PREFIX=fd17:f7a9:12:2::/64
PORT=8080 # listens
TS=$CW_TS_RE
E() { cw_regex_escape "$1"; }
OUT="" ERR="" DPID=""
SOCK=$WORK/cwpx-integration.sock # cw_isolation names it so
ctl() { "$CTL" --socket "$SOCK" "$@"; }

check_fail_note() {
    if [ -n "$DPID" ] && ! cw_pid_alive "$DPID"; then
        echo " (connwatchd is no longer running: see its stderr below)"
    fi
}
CW_LOGS=("$WORK/*.out" "$WORK/*.err" "$WORK/nmap*.log") # cw_fatal, cw_dump_logs: all of each

# ---- setup --------------------------------------------------------------------------

t_start=$(cw_now_ms)
cw_ns_create cwpx-a
cw_veth cwpx-h1 cwpx-a cwpx-a0
cw_addr cwpx-h1 $H/64
cw_addr cwpx-a cwpx-a0 $LINK/64
# Deprecated (preferred_lft 0): used only where a test binds them, never chosen by
# the stack for the namespace's own connections.
for a in "${SCAN[@]}" $UNUSED $OTHER; do
    ip -n cwpx-a addr add "$a/64" dev cwpx-a0 nodad preferred_lft 0
done
for a in "${OWN64[@]}"; do
    ip -n cwpx-a addr add "$a/64" dev cwpx-a0 nodad preferred_lft 0
done
cw_default_route cwpx-a $H
for p in fd17:f7a9:12:2::/64 fd17:f7a9:12:3::/64; do
    ip -6 route add $p via $LINK dev cwpx-h1
    cw_on_cleanup "ip -6 route del $p via $LINK dev cwpx-h1 2>/dev/null || true"
done

cw_listen 280 "$WORK/listen.ready" "[$H]:$PORT"
cw_pidfile_track $LISTEN_PIDFILE "$CW_LISTEN_PID"
cw_wait_for_line "$WORK/listen.ready" '^ready$' 10 "$CW_LISTEN_PID" ||
    cw_fatal "setup: the TCP listener did not start"
for src in "${SCAN[@]}" $UNUSED $OTHER "${OWN64[@]}"; do
    cw_connect cwpx-a $H $PORT 5 "$src" >/dev/null ||
        cw_fatal "setup: cwpx-a cannot reach $H port $PORT from $src before connwatchd runs"
done

cw_isolation "$BIN" "$WORK" cwpx-integration
ISO=("${CW_ISOLATE[@]}")
OUT=$WORK/connwatchd.out ERR=$WORK/connwatchd.err
# ipv6-prefix is left at its default (64): that is what is tested.
"$BIN" "${ISO[@]}" --interface cwpx-h1 --log-target stdout \
    --threshold 3 --window 60s --block-duration 10m >"$OUT" 2>"$ERR" 9>&- &
DPID=$!
cw_on_cleanup "cw_kill $DPID 5"
cw_pidfile_track $PIDFILE $DPID
cw_wait_for_line "$ERR" '^connwatchd: (.*, )?watching cwpx-h1 ' 20 "$DPID" ||
    cw_fatal "setup: connwatchd did not report 'watching cwpx-h1' within 20 s"
echo "setup: $(grep -E 'watching cwpx-h1' "$ERR") ($(($(cw_now_ms) - t_start)) ms)"

# ---- the cases ----------------------------------------------------------------------

# nmap_from SRC PORT LOG: one SYN probe of PORT from SRC (an address of cwpx-a0).
nmap_from() {
    timeout 60 ip netns exec cwpx-a nmap -6 -sS -n -Pn -p "$2" --max-retries 0 \
        --host-timeout 20s -S "$1" -e cwpx-a0 $H >>"$3" 2>&1
}

# A plain connection from SRC, and its "New connection" line: a barrier after
# which everything sent before has been reported.
connected() {
    local sport
    sport=$(cw_connect cwpx-a $H $PORT 3 "$1" 2>&1) || why "$1 cannot connect: $sport" || return 1
    cw_wait_for_line "$OUT" "^${TS}New connection: \\[$(E "$1")\\]:$sport -> " 10 "$DPID" ||
        why "no 'New connection' line for $1's connection"
}

# The block holds: a connection from SRC times out (dropped, not refused).
blocked() {
    local err
    if err=$(cw_connect cwpx-a $H $PORT 2 "$1" 2>&1); then
        why "$1 still connects to $H port $PORT"
        return 1
    fi
    [[ $err == *"timed out"* ]] || why "the connection from $1 failed, but not by a drop: $err"
}

case_rotating() {
    local i ports=(22 80 443 8080) log=$WORK/nmap-rotating.log
    for i in 0 1 2 3; do
        nmap_from "${SCAN[$i]}" "${ports[$i]}" "$log" ||
            why "nmap from ${SCAN[$i]} failed: $(cat "$log")" || return 1
    done
    cw_wait_for_line "$OUT" "^${TS}Port scan detected: $(E $PREFIX) -> $(E $H) on ports 22,80,443,8080\$" 10 "$DPID" ||
        why "no 'Port scan detected: $PREFIX -> $H on ports 22,80,443,8080' line" || return 1
    cw_wait_for_line "$OUT" "^${TS}Blocked $(E $PREFIX) until " 5 "$DPID" ||
        why "no 'Blocked $PREFIX until' line" || return 1
    local n
    n=$(cw_count_lines "$OUT" "Port scan detected: fd17:f7a9:12:2:[0-9a-f:]* -> ")
    [ "$n" = 0 ] || why "$n scan lines name a single address of the /64" || return 1
    echo "  $(grep -E "Port scan detected: " "$OUT" | cut -d' ' -f3-)"
}
case_whole_prefix() {
    local a
    for a in "${SCAN[@]}" $UNUSED; do
        blocked "$a" || return 1
    done
}
case_other_prefix() { connected $OTHER; }
case_list() {
    local out
    out=$(ctl list) || why "connwatchctl list failed: $out" || return 1
    grep -Eq "^$(E $PREFIX) +scan " <<<"$out" || why "connwatchctl list has no scan row for $PREFIX: $out" || return 1
    echo "  $(grep -E "$(E $PREFIX)" <<<"$out" | tr -s ' ' | cut -c1-100)"
}
# The /64's block lives under the key fd17:f7a9:12:2::, also an address: unblocking
# that address -- alone, or listed in a file (one kernel delete batch) -- is not
# unblocking the /64 (docs/ARCHITECTURE.md, "The prefix's first address").
case_first_address() {
    local out list=$WORK/unblock-first.txt first=${PREFIX%/64}
    if out=$(ctl unblock "$first" 2>&1); then
        why "unblock $first said it removed a block: $out"
        return 1
    fi
    printf '%s\n' "$first" "${SCAN[0]}" >"$list"
    out=$(ctl unblock --file "$list" 2>&1) || true
    blocked $UNUSED || return 1
    blocked "${SCAN[0]}" || return 1
    out=$(ctl list) || why "connwatchctl list failed: $out" || return 1
    grep -Eq "$(E $PREFIX)" <<<"$out" || why "$PREFIX no longer listed after unblocking $first: $out"
}
case_unblock() {
    local out
    out=$(ctl unblock $PREFIX 2>&1) || why "connwatchctl unblock $PREFIX failed: $out" || return 1
    connected $UNUSED || return 1
    connected "${SCAN[0]}" || return 1
    out=$(ctl list) || why "connwatchctl list failed: $out" || return 1
    ! grep -Eq "$(E $PREFIX)" <<<"$out" || why "$PREFIX still listed after unblock: $out"
}
case_own_prefix() {
    local i ports=(22 80 443 8080) log=$WORK/nmap-own.log
    for i in 0 1 2 3; do
        nmap_from "${OWN64[$i]}" "${ports[$i]}" "$log" ||
            why "nmap from ${OWN64[$i]} failed: $(cat "$log")" || return 1
    done
    # A barrier: the SYNs above have all been reported once this line is there.
    connected "${OWN64[0]}" || return 1
    local n
    n=$(cw_count_lines "$OUT" "Port scan detected: fd17:f7a9:12:1:")
    [ "$n" = 0 ] || why "$n scans reported from the host's own /64, which must count per address" || return 1
    n=$(cw_count_lines "$OUT" "^${TS}New connection: \\[fd17:f7a9:12:1::1[1-4]\\]:[0-9]+ -> ")
    [ "$n" -ge 5 ] || why "only $n connection attempts from the own /64 were reported (expected 5)"
}

check "nmap from 4 addresses of one /64, one port each: one scan of $PREFIX, blocked" case_rotating
check "every address of $PREFIX is dropped, one that never sent anything too" case_whole_prefix
check "another /64 of the same namespace is untouched" case_other_prefix
check "connwatchctl list shows $PREFIX with origin scan" case_list
check "unblock (and unblock --file) of ${PREFIX%/64}, the /64's key, leaves the /64 blocked" case_first_address
check "connwatchctl unblock $PREFIX lets the whole /64 back in" case_unblock
check "4 addresses of the host's own /64: counted per address, no scan" case_own_prefix

kill -TERM "$DPID"
cw_wait_exit "$DPID" 10 || cw_fatal "connwatchd still runs 10 s after SIGTERM"
DPID=

echo "prefix_integration: $PASSED passed, $FAILED failed ($(($(cw_now_ms) - t_start)) ms)"
if [ "$FAILED" != 0 ]; then
    cw_dump_logs
    exit 1
fi
