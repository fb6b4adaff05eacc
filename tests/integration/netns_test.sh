#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test: the real connwatchd, attached in XDP to veth pairs whose peers
# live in network namespaces this test creates, judged by real traffic — TCP
# connections from python and real `nmap -sS` scans, IPv4 and IPv6, and the
# stealth scans `nmap -sF/-sN/-sX` (detected and blocked the same way) and
# `nmap -sA` (not acted on, docs/PROBES.md).
#
#   root namespace                      cwit-a                 cwit-b
#   cwit-h1 10.231.1.1/24  <── veth ──> cwit-a0 10.231.1.2, .11-.14 (probe scanners)
#           fd17:c0de:1::1/64                   fd17:c0de:1::2, ::13
#   cwit-h2 10.231.2.1/24  <── veth ──────────────────────────> cwit-b0 10.231.2.2
#           fd17:c0de:2::1/64                                          fd17:c0de:2::2
#
# A listener in the root namespace accepts on ports 8080-8082 of the host-side
# addresses. Both namespaces route everything via their host-side address, so cwit-b
# can reach the addresses on cwit-h1 too (the host owns them; nothing is forwarded).
# Traffic goes nowhere else.
#
# Usage: netns_test.sh PATH/TO/connwatchd     (root; ctest label "integration")
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 1 ] || [ ! -x "$1" ]; then cw_usage "PATH/TO/connwatchd"; fi
BIN=$(realpath "$1")
cw_require_root
cw_require_tools ip nmap flock timeout python3
cw_take_lock /tmp/cwit-integration.lock 240
cw_workdir /tmp/cwit
OUT=$WORK/connwatchd.out   # the event lines (stdout)
ERR=$WORK/connwatchd.err   # notices and warnings (stderr)
# A connwatchd left running by an earlier run that was killed outright (SIGKILL
# skips every trap) would keep its blocks; end it, by the PID that run recorded.
# The same for the listener, which would keep the test's ports.
PIDFILE=/tmp/cwit-integration.connwatchd.pid
LISTEN_PIDFILE=/tmp/cwit-integration.listener.pid
cw_pidfile_reap $PIDFILE "--interface cwit-h1"
cw_pidfile_reap $LISTEN_PIDFILE "/listen.ready"

H1_4=10.231.1.1 A_4=10.231.1.2 H2_4=10.231.2.1 B_4=10.231.2.2
H1_6=fd17:c0de:1::1 A_6=fd17:c0de:1::2 H2_6=fd17:c0de:2::1 B_6=fd17:c0de:2::2
# More sources in cwit-a, one per stealth scan, so each starts from zero ports.
FIN_4=10.231.1.11 NULL_4=10.231.1.12 XMAS_4=10.231.1.13 ACK_4=10.231.1.14
XMAS_6=fd17:c0de:1::13
PORT=8080
TS=$CW_TS_RE
E() { cw_regex_escape "$1"; }

STOPPED=0 # set once case d has stopped connwatchd on purpose
# Ends every FAIL line (check.sh): a daemon that died explains this failure and the rest.
check_fail_note() {
    if [ "$STOPPED" = 0 ] && [ -n "${DPID:-}" ] && ! cw_pid_alive "$DPID"; then
        echo " (connwatchd is no longer running: see its stderr below)"
    fi
}
CW_LOGS=("$OUT" "$ERR" "$WORK/nmap*.log")

# ---- setup --------------------------------------------------------------------------

t_start=$(cw_now_ms)
cw_ns_create cwit-a
cw_ns_create cwit-b
cw_veth cwit-h1 cwit-a cwit-a0
cw_veth cwit-h2 cwit-b cwit-b0
cw_addr cwit-h1 $H1_4/24
cw_addr cwit-h1 $H1_6/64
cw_addr cwit-h2 $H2_4/24
cw_addr cwit-h2 $H2_6/64
cw_addr cwit-a cwit-a0 $A_4/24
cw_addr cwit-a cwit-a0 $A_6/64
for a in $FIN_4 $NULL_4 $XMAS_4 $ACK_4; do cw_addr cwit-a cwit-a0 "$a/24"; done
# Deprecated (preferred_lft 0): used only where a test binds to it, never chosen
# as the source of cwit-a's other IPv6 traffic (the -sS cases judge A_6).
ip -n cwit-a addr add $XMAS_6/64 dev cwit-a0 nodad preferred_lft 0
cw_addr cwit-b cwit-b0 $B_4/24
cw_addr cwit-b cwit-b0 $B_6/64
cw_default_route cwit-a $H1_4
cw_default_route cwit-a $H1_6
cw_default_route cwit-b $H2_4
cw_default_route cwit-b $H2_6

# The test's whole budget is 300 s (ctest TIMEOUT); the listener outlives no run.
cw_listen 280 "$WORK/listen.ready" \
    $H1_4:8080 $H1_4:8081 $H1_4:8082 $H2_4:8080 $H2_4:8081 $H2_4:8082 \
    "[$H1_6]:8080" "[$H1_6]:8081" "[$H1_6]:8082" "[$H2_6]:8080" "[$H2_6]:8081" "[$H2_6]:8082"
cw_pidfile_track $LISTEN_PIDFILE "$CW_LISTEN_PID"
cw_wait_for_line "$WORK/listen.ready" '^ready$' 10 "$CW_LISTEN_PID" ||
    cw_fatal "setup: the TCP listener did not start"

# Before connwatchd: every path the cases rely on works (so a failure later is
# connwatchd's doing, not the test bed's).
for ns in cwit-a cwit-b; do
    for dst in $H1_4 $H1_6; do
        cw_connect "$ns" "$dst" 8082 5 >/dev/null ||
            cw_fatal "setup: $ns cannot reach $dst port 8082 before connwatchd runs"
    done
done
for src in $FIN_4 $NULL_4 $XMAS_4 $ACK_4 $XMAS_6; do
    case $src in *:*) dst=$H1_6 ;; *) dst=$H1_4 ;; esac
    cw_connect cwit-a "$dst" 8082 5 "$src" >/dev/null ||
        cw_fatal "setup: cwit-a cannot reach $dst port 8082 from $src before connwatchd runs"
done

# Each instance gets its own configuration, control socket, state and pinned maps
# (ISO1, ISO2): nothing from an installed connwatchd or an earlier run leaks in.
cw_isolation "$BIN" "$WORK" cwit-integration-1
ISO1=("${CW_ISOLATE[@]}")
cw_isolation "$BIN" "$WORK" cwit-integration-2
ISO2=("${CW_ISOLATE[@]}")
"$BIN" "${ISO1[@]}" --interface cwit-h1 --interface cwit-h2 --log-target stdout \
    --threshold 3 --window 60s --block-duration 10m >"$OUT" 2>"$ERR" 9>&- &
DPID=$!
cw_on_cleanup "cw_kill $DPID 5"
cw_pidfile_track $PIDFILE $DPID
# "connwatchd: [Started, ]watching cwit-h1 (native), cwit-h2 (native); ..."
WATCHING_RE='^connwatchd: (.*, )?watching cwit-h1 \((native|generic)\), cwit-h2 \((native|generic)\);'
cw_wait_for_line "$ERR" "$WATCHING_RE" 20 "$DPID" ||
    cw_fatal "setup: connwatchd did not report 'watching cwit-h1 ..., cwit-h2 ...' within 20 s"
echo "setup: $(grep -E "$WATCHING_RE" "$ERR") ($(($(cw_now_ms) - t_start)) ms)"
if ! cw_xdp_attached cwit-h1 || ! cw_xdp_attached cwit-h2; then
    cw_fatal "setup: connwatchd says it is watching, but 'ip link' shows no XDP program"
fi

# ---- helpers for the cases ------------------------------------------------------

# A scan line's port list must hold at least 4 distinct ports, each one of ALLOWED
# (a space-separated list), in increasing order.
check_ports() {
    local list=$1 allowed=" $2 " p prev=0 n=0
    for p in ${list//,/ }; do
        [[ $allowed == *" $p "* ]] || why "port $p in '$list' was never probed by that source" || return 1
        [ "$p" -gt "$prev" ] || why "ports '$list' are not distinct and sorted" || return 1
        prev=$p
        n=$((n + 1))
    done
    [ "$n" -ge 4 ] || why "only $n ports in '$list' (threshold 3: the 4th port triggers)"
}

# scan_and_check FAMILY SRC DST NMAP_LOG ALLOWED_PORTS [SCAN_TYPE NMAP_ARGS...]: runs
# nmap (-sS unless SCAN_TYPE says otherwise) from cwit-a and checks the scan line and
# the block line that follows it.
scan_and_check() {
    local fam=$1 src=$2 dst=$3 log=$4 allowed=$5 type=${6:--sS} six=()
    shift 5
    [ $# -gt 0 ] && shift
    [ "$fam" = 6 ] && six=(-6)
    local rc=0
    timeout 90 ip netns exec cwit-a nmap "${six[@]}" "$type" -n -Pn -p 1-20 --max-retries 1 \
        --host-timeout 30s "$@" "$dst" >"$log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || why "nmap exited with $rc (see its output below)" || { cat "$log"; return 1; }

    local src_re dst_re
    src_re=$(E "$src")
    dst_re=$(E "$dst")
    local scan_re="^${TS}Port scan detected: $src_re -> $dst_re on ports ([0-9]+(,[0-9]+)*)\$"
    cw_wait_for_line "$OUT" "$scan_re" 10 "$DPID" ||
        why "no 'Port scan detected: $src -> $dst on ports ...' line within 10 s of the scan" || return 1
    local n
    n=$(cw_count_lines "$OUT" "Port scan detected: $src_re ")
    [ "$n" = 1 ] || why "$n scan lines for $src, expected exactly 1" || return 1
    local line ports
    line=$(grep -E "$scan_re" "$OUT")
    ports=${line##* on ports }
    check_ports "$ports" "$allowed" || return 1

    # The line right after the scan says what was done: blocked for --block-duration.
    local next block_re="^(${TS})Blocked $src_re until ([0-9-]+ [0-9:]+)\$"
    cw_wait_for_line "$OUT" "$block_re" 5 "$DPID" || why "no 'Blocked $src until ...' line" || return 1
    next=$(grep -E -A1 "$scan_re" "$OUT" | sed -n 2p)
    [[ $next =~ $block_re ]] || why "the line after the scan line is '$next', not 'Blocked $src until ...'" || return 1
    local t_scan t_until
    t_scan=$(date -d "${line:0:19}" +%s)
    t_until=$(date -d "${BASH_REMATCH[2]}" +%s)
    local d=$((t_until - t_scan))
    [ "$d" -ge 598 ] && [ "$d" -le 602 ] ||
        why "blocked until ${BASH_REMATCH[2]}: $d s after the scan, expected 600 (--block-duration 10m)" || return 1
    echo "  scan reported: ${line#*: } / ${next#*: }"
}

# expect_blocked NS DST: a connection from NS to DST:PORT must time out (dropped in
# XDP), not be refused (that would mean the listener is gone).
expect_blocked() {
    local err
    if err=$(cw_connect "$1" "$2" $PORT 2 2>&1); then
        why "$1 still connects to $2 port $PORT after the block"
        return 1
    fi
    [[ $err == *"timed out"* ]] || why "connection from $1 to $2 failed, but not by a drop: $err"
}

# probe_scan_and_check FAMILY SRC SCAN_TYPE FLAGS: a stealth scan (nmap SCAN_TYPE from
# SRC, an address of cwit-a) is reported as probes with FLAGS, never as connections,
# completes a scan and gets SRC blocked, judged by a connection from SRC that must
# time out; cwit-a's other addresses are not affected.
probe_scan_and_check() {
    local fam=$1 src=$2 type=$3 flags=$4 dst=$H1_4
    [ "$fam" = 6 ] && dst=$H1_6
    # --max-retries 0: one probe per port, so the Probe lines count ports.
    scan_and_check "$fam" "$src" "$dst" "$WORK/nmap$type$fam.log" "$(seq -s ' ' 1 20)" \
        "$type" -S "$src" -e cwit-a0 --max-retries 0 || return 1
    local src_ep n
    case $src in *:*) src_ep="\\[$(E "$src")\\]" ;; *) src_ep=$(E "$src") ;; esac
    n=$(cw_count_lines "$OUT" "^${TS}Probe: ${src_ep}:[0-9]+ -> .+:[0-9]+ \\($flags\\)\$")
    # Threshold 3: the 4th port completes the scan and is the last probe that passes.
    [ "$n" -ge 4 ] && [ "$n" -le 20 ] ||
        why "$n 'Probe: $src:... ($flags)' lines, expected 4 (threshold 3) and at most 20" || return 1
    n=$(cw_count_lines "$OUT" "New connection: ${src_ep}:")
    [ "$n" = 0 ] || why "$n 'New connection' lines for $src: a probe is no connection" || return 1
    local err
    if err=$(cw_connect cwit-a "$dst" $PORT 2 "$src" 2>&1); then
        why "$src still connects to $dst port $PORT after the block"
        return 1
    fi
    [[ $err == *"timed out"* ]] || why "connection from $src failed, but not by a drop: $err" || return 1
    echo "  $(grep -cE "Probe: ${src_ep}:" "$OUT") probe lines, e.g. $(grep -m1 -E "Probe: ${src_ep}:" "$OUT" | cut -d' ' -f3-)"
}

# expect_connects NS DST [SRC_RE]: a connection from NS to DST:PORT succeeds and is
# reported with the source address SRC_RE (when given).
expect_connects() {
    local ns=$1 dst=$2 src_re=${3:-} sport
    sport=$(cw_connect "$ns" "$dst" $PORT 2 2>&1) || why "$ns cannot connect to $dst port $PORT: $sport" || return 1
    [ -n "$src_re" ] || return 0
    local dst_ep
    case $dst in *:*) dst_ep="\\[$(E "$dst")\\]:$PORT" ;; *) dst_ep="$(E "$dst"):$PORT" ;; esac
    cw_wait_for_line "$OUT" "^${TS}New connection: ${src_re}:${sport} -> ${dst_ep}\$" 10 "$DPID" ||
        why "no 'New connection: ...:$sport -> $dst_ep' line for the connection from $ns"
}

# ---- the cases ------------------------------------------------------------------------

A_SPORT=
case_a() {
    A_SPORT=$(cw_connect cwit-a $H1_4 $PORT 5 2>&1) || why "the connection failed: $A_SPORT" || return 1
    local re
    re="^${TS}New connection: $(E $A_4):${A_SPORT} -> $(E $H1_4):${PORT}\$"
    cw_wait_for_line "$OUT" "$re" 10 "$DPID" ||
        why "no line matching '$re' within 10 s" || return 1
    local n
    n=$(cw_count_lines "$OUT" "New connection: ")
    [ "$n" = 1 ] || why "$n 'New connection' lines for one connection, expected exactly 1" || return 1
    echo "  $(cat "$OUT")"
}

case_b() {
    # Case a's connection to port 8080 counts too: a scan is distinct ports per source.
    scan_and_check 4 $A_4 $H1_4 "$WORK/nmap4.log" "$(seq -s ' ' 1 20) $PORT" || return 1
    expect_blocked cwit-a $H1_4 || return 1
    expect_connects cwit-b $H1_4 "$(E $B_4)" || return 1
    # The block is per address: cwit-a's IPv6 address still gets through.
    expect_connects cwit-a $H1_6 "\\[$(E $A_6)\\]" ||
        why "cwit-a's IPv6 address was blocked by the IPv4 scan: $WHY"
}

case_c() {
    # cwit-a's IPv6 address was not blocked by case b; it has probed port 8080 once.
    scan_and_check 6 $A_6 $H1_6 "$WORK/nmap6.log" "$(seq -s ' ' 1 20) $PORT" || return 1
    expect_blocked cwit-a $H1_6 || return 1
    expect_connects cwit-b $H1_6 "\\[$(E $B_6)\\]"
}

case_p_fin() { probe_scan_and_check 4 $FIN_4 -sF FIN; }
case_p_null() { probe_scan_and_check 4 $NULL_4 -sN none; }
case_p_xmas() { probe_scan_and_check 4 $XMAS_4 -sX FIN,PSH,URG; }
case_p_xmas6() {
    probe_scan_and_check 6 $XMAS_6 -sX FIN,PSH,URG || return 1
    # A block is per source: cwit-b still gets through.
    expect_connects cwit-b $H1_6 "\\[$(E $B_6)\\]"
}

# nmap -sA (ACK scan) sends ACK segments without a connection: without connection
# state they look like any established traffic, so connwatch does not act on them
# (docs/PROBES.md). Against Linux the scan learns nothing about which ports are open.
case_p_ack() {
    local log=$WORK/nmap-sA4.log rc=0
    timeout 60 ip netns exec cwit-a nmap -sA -n -Pn -p 1-20 --max-retries 0 --host-timeout 30s \
        -S $ACK_4 -e cwit-a0 $H1_4 >"$log" 2>&1 || rc=$?
    [ "$rc" = 0 ] || why "nmap -sA exited with $rc" || return 1
    local n
    n=$(grep -cE '^[0-9]+/tcp +unfiltered' "$log" || true)
    [ "$n" = 20 ] || why "nmap -sA saw $n of 20 ports unfiltered (every ACK is answered with RST)" || return 1
    # Not blocked: it connects, and is reported as a connection, nothing else.
    local sport
    sport=$(cw_connect cwit-a $H1_4 $PORT 2 $ACK_4 2>&1) || why "$ACK_4 cannot connect after nmap -sA: $sport" || return 1
    cw_wait_for_line "$OUT" "^${TS}New connection: $(E $ACK_4):${sport} -> " 10 "$DPID" ||
        why "no 'New connection' line for $ACK_4's connection" || return 1
    n=$(cw_count_lines "$OUT" "(Probe: |Port scan detected: |Blocked )$(E $ACK_4)[: ]")
    [ "$n" = 0 ] || why "nmap -sA from $ACK_4 was reported as probes or a scan" || return 1
    echo "  20 ports unfiltered; nothing reported for $ACK_4 but its connection"
}

case_e_busy() {
    local out rc=0
    # Its own socket, state and pins: what it must trip over is the XDP program.
    out=$(timeout 30 "$BIN" "${ISO2[@]}" --interface cwit-h1 --log-target stdout 2>&1) || rc=$?
    [ "$rc" != 0 ] || why "a second connwatchd on cwit-h1 exited 0" || return 1
    [ "$rc" != 124 ] || why "a second connwatchd on cwit-h1 was still running after 30 s" || return 1
    [[ $out =~ Another\ XDP\ program.*already\ attached\ to\ .cwit-h1. ]] ||
        why "the message does not say another XDP program is attached to cwit-h1: $out" || return 1
    # The failed attempt must leave the running instance alone.
    kill -0 "$DPID" 2>/dev/null || why "the first connwatchd died" || return 1
    cw_xdp_attached cwit-h1 || why "cwit-h1 lost its XDP program" || return 1
    expect_connects cwit-b $H1_4 "$(E $B_4)" || return 1
    echo "  exit $rc: $out"
}

case_d() {
    cw_pid_alive "$DPID" || why "connwatchd had exited before SIGTERM" || return 1
    STOPPED=1
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || why "connwatchd still runs 10 s after SIGTERM" || return 1
    [ "$CW_EXIT_STATUS" = 0 ] || why "connwatchd exited $CW_EXIT_STATUS after SIGTERM, expected 0" || return 1
    echo "  exit 0: $(tail -1 "$ERR")"
    local ifc
    for ifc in cwit-h1 cwit-h2; do
        ! cw_xdp_attached $ifc || why "an XDP program is still attached to $ifc: $(ip -d link show dev $ifc)" || return 1
    done
}

# After the exit every event has been drained: the complete log holds exactly the
# events the cases made, once each, every line in the documented format.
case_log() {
    local bad
    if bad=$(grep -Ev "^${TS}(New connection: .+:[0-9]+ -> .+:[0-9]+|Probe: .+:[0-9]+ -> .+:[0-9]+ \(([A-Z]{3}(,[A-Z]{3})*|none)\)|Port scan detected: [0-9a-f.:]+ -> [0-9a-f.:]+ on ports [0-9,]+|Blocked [0-9a-f.:]+ until [0-9-]+ [0-9:]+)\$" "$OUT"); then
        why "lines in no documented format: $bad"
        return 1
    fi
    local n
    n=$(cw_count_lines "$OUT" "New connection: $(E $A_4):${A_SPORT} ")
    [ "$n" = 1 ] || why "$n lines for case a's connection, expected 1" || return 1
    n=$(cw_count_lines "$OUT" "Port scan detected: ")
    [ "$n" = 6 ] || why "$n scan lines in all, expected 6 (-sS IPv4 and IPv6, -sF, -sN, -sX, -sX IPv6)" || return 1
    n=$(cw_count_lines "$OUT" "(Port scan detected|Blocked) $(E $B_4)|(Port scan detected|Blocked) $(E $B_6)")
    [ "$n" = 0 ] || why "cwit-b, which never scanned, was reported as a scanner" || return 1
    echo "  $(wc -l <"$OUT") event lines"
}

case_e_nope() {
    local out err rc=0
    out=$(timeout 20 "$BIN" "${ISO2[@]}" --interface cwit-nope --log-target stdout 2>"$WORK/nope.err") || rc=$?
    err=$(cat "$WORK/nope.err")
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || why "exit status $rc, expected a non-zero exit at once" || return 1
    [ -z "$out" ] || why "unexpected stdout: $out" || return 1
    [ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || why "expected one line on stderr, got: $err" || return 1
    [[ $err == *"'cwit-nope'"* ]] || why "the message does not name the interface: $err" || return 1
    echo "  exit $rc: $err"
}

case_e_threshold() {
    local out rc=0
    out=$(timeout 20 "$BIN" "${ISO2[@]}" --interface cwit-h1 --threshold 0 --log-target stdout 2>&1) || rc=$?
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || why "exit status $rc, expected a non-zero exit at once" || return 1
    [[ $out == *threshold* ]] || why "the message does not name --threshold: $out" || return 1
    [[ $out != *watching* ]] || why "it attached before rejecting the option: $out" || return 1
    ! cw_xdp_attached cwit-h1 || why "an XDP program is attached to cwit-h1" || return 1
    echo "  exit $rc: $(printf '%s\n' "$out" | head -1)"
}

check "a. one IPv4 connection is reported once, in the classic format" case_a
check "b. an IPv4 nmap -sS scan is reported once and the scanner is blocked, only it" case_b
check "c. an IPv6 nmap -sS scan is reported once and the scanner is blocked, only it" case_c
check "p. an IPv4 nmap -sF scan is reported as FIN probes, a scan, and the scanner blocked" case_p_fin
check "p. an IPv4 nmap -sN scan is reported as NULL probes, a scan, and the scanner blocked" case_p_null
check "p. an IPv4 nmap -sX scan is reported as Xmas probes, a scan, and the scanner blocked" case_p_xmas
check "p. an IPv6 nmap -sX scan is reported as Xmas probes, a scan, and the scanner blocked" case_p_xmas6
check "p. an IPv4 nmap -sA scan is not acted on" case_p_ack
check "e. a second connwatchd on the same interface fails: another XDP program" case_e_busy
check "d. SIGTERM: exit 0, XDP detached from both interfaces" case_d
check "d. the complete log: every event once, every line in the documented format" case_log
check "e. --interface cwit-nope fails with one line naming the interface" case_e_nope
check "e. --threshold 0 fails before anything is attached" case_e_threshold

echo "netns_integration: $PASSED passed, $FAILED failed ($(($(cw_now_ms) - t_start)) ms)"
if [ "$FAILED" != 0 ]; then
    cw_dump_logs
    exit 1
fi
