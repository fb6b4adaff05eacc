#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# A full blocklist (issue 12; docs/SECURITY.md, "A full blocklist"), judged by
# real traffic from a namespace with max-blocks 6:
#   - 2 manual blocks and 4 automatic ones (real nmap scans) fill the list; a
#     fifth scanner's block takes the place of the oldest automatic one: the
#     log says so (the scan's "Blocked ... in place of ..." line and the
#     "Unblocked ... (replaced by ...)" line), connwatchctl list shows the new
#     block and not the old one, the manual blocks and the other automatic
#     ones are untouched, the replaced source connects again, the new scanner
#     is dropped, connwatch_blocks_removed_total{reason="replaced"} counts it;
#     an IPv6 scanner replaces the next oldest (one map for both families);
#   - a list full of manual blocks only: the scan is refused as before ("Not
#     blocking ...: the blocklist is full"), nothing removed, the scanner passes.
#
#   root namespace                      cwfl-a
#   cwfl-h1 10.247.0.1/24    <── veth ──> cwfl-a0 10.247.0.2, .10-.19 (sources)
#           fd17:f011::1/64                       fd17:f011::2, ::10
#
# Usage: full_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
cw_require_root
cw_require_tools ip nmap flock timeout python3 curl
cw_take_lock /tmp/cwfl-full.lock 240
cw_workdir /tmp/cwfl
PIDFILE=/tmp/cwfl-full.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwfl."
cw_pidfile_reap /tmp/cwfl-full.listener.pid "/listen.ready"

H=10.247.0.1 A=10.247.0.2 H6=fd17:f011::1 A6=fd17:f011::2 S6=fd17:f011::10 PORT=9090
CONF=$WORK/connwatchd.conf
SOCK=$WORK/control.sock
PIN=/sys/fs/bpf/cwfl-full
E() { cw_regex_escape "$1"; }

cw_ns_create cwfl-a
cw_veth cwfl-h1 cwfl-a cwfl-a0
cw_addr cwfl-h1 $H/24
cw_addr cwfl-a cwfl-a0 $A/24
cw_addr cwfl-h1 $H6/64
cw_addr cwfl-a cwfl-a0 $A6/64
cw_addr cwfl-a cwfl-a0 $S6/64
for i in $(seq 10 19); do ip -n cwfl-a addr add "10.247.0.$i/24" dev cwfl-a0; done
cw_listen 300 "$WORK/listen.ready" $H:$PORT "[$H6]:$PORT"
echo "$CW_LISTEN_PID" >/tmp/cwfl-full.listener.pid
cw_wait_until 10 test -s "$WORK/listen.ready" || cw_setup_fail "listener"

MPORT=$("$CW_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
cat >"$CONF" <<EOF
interface = cwfl-h1
threshold = 3
window = 60s
block-duration = 10m
max-blocks = 6
log-target = stdout
control-socket = $SOCK
state-dir = $WORK/state
pin-dir = $PIN
metrics-listen = 127.0.0.1:$MPORT
EOF

DPID=
cw_daemon_start 15 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" --config "$CONF" ||
    cw_setup_fail "connwatchd did not start: $(cat "$WORK/err")"
DPID=$CW_DAEMON_PID
echo "# connwatchd pid $DPID"
ctl() { "$CTL" --socket "$SOCK" "$@"; }
can_connect() { cw_connect cwfl-a "$2" $PORT 2 "$1" >/dev/null 2>&1; }
cannot_connect() {
    local err
    if err=$(cw_connect cwfl-a "$2" $PORT 2 "$1" 2>&1 >/dev/null); then return 1; fi
    [[ $err == *"timed out"* ]]
}
# scan SRC TARGET: SYNs from SRC (an address of cwfl-a0) to 6 ports, each once.
scan() {
    local six=()
    [[ $1 == *:* ]] && six=(-6)
    timeout 60 ip netns exec cwfl-a nmap "${six[@]}" -sS -n -Pn -e cwfl-a0 -S "$1" -p 1-6 \
        --max-retries 0 "$2" >/dev/null 2>&1 || true
}
blocks() { ctl status | awk '/^Blocks:/ { print $2 }'; }
replaced_once() { [ "$(replaced_count)" = 1 ]; }
listed() { ctl list | grep -Eq "^$(E "$1")/(32|128) +$2 "; }
replaced_count() {
    curl -fsS "http://127.0.0.1:$MPORT/metrics" |
        awk '$1 == "connwatch_blocks_removed_total{reason=\"replaced\"}" { print $2 }'
}
T0=0
later_than_t0() { [ $(($(cw_now_ms) - T0)) -ge 1200 ]; }
check_fail_note() { cw_pid_alive "$DPID" || echo " (connwatchd is not running)"; }
dump() { echo "# list:"; ctl list 2>&1 | sed 's/^/#   /'; echo "# log tail:"; tail -15 "$WORK/out" | sed 's/^/#   /'; }

case_replaces_oldest() {
    local s
    ctl block 203.0.113.1 --reason "manual one" >/dev/null || { WHY="manual block 1 refused"; return 1; }
    ctl block 203.0.113.2 --duration 1m --reason "manual two, sooner than any scan block" >/dev/null ||
        { WHY="manual block 2 refused"; return 1; }
    # The oldest automatic block: 10.247.0.10, its deadline more than a second
    # before the others' (deadlines are kept to the second).
    scan 10.247.0.10 $H
    cw_wait_until 10 listed 10.247.0.10 scan || { WHY="10.247.0.10 was not blocked"; dump; return 1; }
    T0=$(cw_now_ms)
    cw_wait_until 5 later_than_t0
    for s in 10.247.0.11 10.247.0.12 10.247.0.13; do
        scan $s $H
        cw_wait_until 10 listed $s scan || { WHY="$s was not blocked"; dump; return 1; }
    done
    [ "$(blocks)" = 6 ] || { WHY="the list is not full (6)"; dump; return 1; }
    # The fifth scanner: the kernel refuses (full), connwatchd makes its block
    # in place of 10.247.0.10's.
    scan 10.247.0.14 $H
    cw_wait_for_line "$WORK/out" "Blocked $(E 10.247.0.14) until [0-9: -]+ in place of $(E 10.247.0.10), the oldest automatic block \\(the blocklist is full\\)\$" 10 "$DPID" ||
        { WHY="no 'Blocked 10.247.0.14 ... in place of 10.247.0.10' line"; dump; return 1; }
    grep -Eq "Unblocked $(E 10.247.0.10)/32 \\(replaced by $(E 10.247.0.14): the blocklist was full, and this was the oldest automatic block\\)" "$WORK/out" ||
        { WHY="no 'Unblocked 10.247.0.10/32 (replaced by ...)' line"; dump; return 1; }
    if grep -q "Not blocking $(E 10.247.0.14)" "$WORK/out"; then WHY="said 'Not blocking' too"; return 1; fi
    listed 10.247.0.14 scan || { WHY="10.247.0.14 is not listed"; dump; return 1; }
    if listed 10.247.0.10 scan; then WHY="10.247.0.10 is still listed"; dump; return 1; fi
    for s in 10.247.0.11 10.247.0.12 10.247.0.13; do
        listed $s scan || { WHY="the automatic block of $s went"; dump; return 1; }
    done
    { listed 203.0.113.1 manual && listed 203.0.113.2 manual; } || { WHY="a manual block went"; dump; return 1; }
    can_connect 10.247.0.10 $H || { WHY="the replaced source 10.247.0.10 cannot connect"; return 1; }
    cannot_connect 10.247.0.14 $H || { WHY="the new scanner 10.247.0.14 connects"; return 1; }
    cannot_connect 10.247.0.11 $H || { WHY="10.247.0.11 connects"; return 1; }
    cw_wait_until 5 replaced_once ||
        { WHY="connwatch_blocks_removed_total{reason=\"replaced\"} is '$(replaced_count)', not 1"; return 1; }
    # An IPv6 scanner: the same map; the next oldest automatic block goes (one
    # of .11-.13, made within a second of each other), never a manual one.
    scan $S6 $H6
    cw_wait_for_line "$WORK/out" "Blocked $(E $S6) until [0-9: -]+ in place of 10\\.247\\.0\\.1[123], the oldest automatic block" 10 "$DPID" ||
        { WHY="the IPv6 scanner did not replace one of 10.247.0.11-13"; dump; return 1; }
    { listed $S6 scan && listed 203.0.113.1 manual && listed 203.0.113.2 manual && listed 10.247.0.14 scan; } ||
        { WHY="after the IPv6 replacement"; dump; return 1; }
    cannot_connect $S6 $H6 || { WHY="the IPv6 scanner connects"; return 1; }
    [ "$(blocks)" = 6 ] || { WHY="not 6 blocks after the replacements"; dump; return 1; }
}
check "a full list: a new scanner's block replaces the oldest automatic one, manual ones untouched" case_replaces_oldest

case_all_manual_refused() {
    local i before
    ctl flush >/dev/null || { WHY="flush failed"; return 1; }
    before=$(replaced_count)
    for i in 1 2 3 4 5 6; do ctl block 198.51.100.$i >/dev/null || { WHY="manual block $i refused"; return 1; }; done
    scan 10.247.0.16 $H
    cw_wait_for_line "$WORK/out" "Not blocking $(E 10.247.0.16): the blocklist is full" 10 "$DPID" ||
        { WHY="no 'Not blocking 10.247.0.16: the blocklist is full' line"; dump; return 1; }
    if listed 10.247.0.16 scan; then WHY="10.247.0.16 is listed"; return 1; fi
    for i in 1 2 3 4 5 6; do listed 198.51.100.$i manual || { WHY="198.51.100.$i went"; dump; return 1; }; done
    can_connect 10.247.0.16 $H || { WHY="the refused scanner cannot connect"; return 1; }
    [ "$(replaced_count)" = "$before" ] || { WHY="replacements counted: $(replaced_count), $before before"; return 1; }
}
check "a list full of manual blocks: the scan is refused as before, nothing removed" case_all_manual_refused

cw_daemon_stop "$DPID" 10 || true
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
