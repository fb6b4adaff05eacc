#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# connwatchd with a million blocks (issue 10): the blocks are put into its pinned
# blocklist with bpf_map_update_batch (bench/fill_blocks), 1,000,000 of them for an
# hour and 1,000 for a few seconds, then connwatchd takes them over at start. It
# must count them all in status, remove the short ones when they fall due (and
# log each), stay responsive (status, a manual block counted, a real connection
# reported) and stop on SIGTERM. No timing assertions: every wait has a generous deadline.
#
#   root namespace                      cwsc-a
#   cwsc-h1 10.237.1.1/24  <── veth ──> cwsc-a0 10.237.1.2
#
# Usage: scale_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl PATH/TO/fill_blocks   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 3 ] || [ ! -x "$1" ] || [ ! -x "$2" ] || [ ! -x "$3" ]; then
    cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl PATH/TO/fill_blocks"
fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
FILL=$(realpath "$3")
cw_require_root
cw_require_tools ip timeout python3
cw_take_lock /tmp/cwsc-scale.lock 240
cw_workdir /tmp/cwsc
PIDFILE=/tmp/cwsc-scale.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwsc."

H1=10.237.1.1 A=10.237.1.2 PORT=9090
SOCK=$WORK/control.sock
PIN=/sys/fs/bpf/cwsc-scale
LONG=1000000 SHORT=1000 SHORT_S=15
TS=$CW_TS_RE

cw_ns_create cwsc-a
cw_veth cwsc-h1 cwsc-a cwsc-a0
cw_addr cwsc-h1 $H1/24
cw_addr cwsc-a cwsc-a0 $A/24
cw_listen 120 "$WORK/listen.ready" $H1:$PORT
cw_wait_until 10 test -s "$WORK/listen.ready" || cw_setup_fail "listener"

rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"

DPID=
start_daemon() {
    : >"$WORK/err"
    cw_daemon_start 120 "$WORK/out" "$WORK/err" $PIDFILE \
        "$BIN" --interface cwsc-h1 --max-blocks 1100000 --block-duration 1h --log-target stdout \
        --control-socket "$SOCK" --state-dir "$WORK/state" --pin-dir "$PIN" --metrics-listen "" \
        --allow-own-addresses true || cw_setup_fail "connwatchd did not start: $(cat "$WORK/err")"
    DPID=$CW_DAEMON_PID
}
stop_daemon() {
    cw_daemon_stop "$DPID" 30 || { echo "FAIL: connwatchd still runs 30 s after SIGTERM"; exit 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { echo "FAIL: connwatchd exited $CW_EXIT_STATUS on SIGTERM"; exit 1; }
}
ctl() { "$CTL" --socket "$SOCK" "$@"; }
blocks() { ctl status --json | "$CW_PY" -c 'import json,sys; print(json.load(sys.stdin)["blocks"])'; }

# A first start creates the pinned blocklist; then it is filled, as a previous
# run (or an import) would leave it, and connwatchd takes it over.
start_daemon
stop_daemon
"$FILL" --map "$PIN/block_addr" --count $LONG --first 10.0.0.0 --duration 3600 >"$WORK/fill" ||
    cw_setup_fail "fill_blocks: $(cat "$WORK/fill")"
"$FILL" --map "$PIN/block_addr" --count $SHORT --first 11.0.0.0 --duration $SHORT_S >>"$WORK/fill" ||
    cw_setup_fail "fill_blocks: $(cat "$WORK/fill")"
echo "# $(tr '\n' ';' <"$WORK/fill")"
start_daemon
echo "# connwatchd pid $DPID"

case_counts() {
    local n
    n=$(blocks) || { WHY="status --json failed"; return 1; }
    # The short ones may already be going.
    if [ "$n" -gt $((LONG + SHORT)) ] || [ "$n" -lt $LONG ]; then
        WHY="status counts $n blocks, expected $LONG to $((LONG + SHORT))"
        return 1
    fi
    ctl status | grep -Eq "^Blocks: +[0-9]+ of at most 1100000$" ||
        { WHY="status: $(ctl status | grep Blocks)"; return 1; }
}
check "status counts the million blocks taken over" case_counts

blocks_are() { [ "$(blocks)" = "$1" ]; }
expired_lines_are() {
    [ "$(cw_count_lines "$WORK/out" "^${TS}Block expired: 11\.0\.[0-9]+\.[0-9]+$")" = "$1" ]
}
case_expiry() {
    cw_wait_until 60 blocks_are $LONG ||
        { WHY="still $(blocks) blocks 60 s later, expected $LONG"; return 1; }
    cw_wait_until 10 expired_lines_are $SHORT ||
        { WHY="$(cw_count_lines "$WORK/out" "Block expired: 11\.") expiry lines, expected $SHORT"; return 1; }
    [ "$(cw_count_lines "$WORK/out" "Block expired: 10\.")" = 0 ] ||
        { WHY="a long block expired"; return 1; }
}
check "the $SHORT short blocks among them expire, each logged, the rest stay" case_expiry

case_responsive() {
    ctl block 192.0.2.1 --duration 1h --reason "scale test" >/dev/null || { WHY="block exited $?"; return 1; }
    [ "$(blocks)" = $((LONG + 1)) ] || { WHY="$(blocks) blocks after a manual one"; return 1; }
    ctl unblock 192.0.2.1 >/dev/null || { WHY="unblock exited $?"; return 1; }
    cw_connect cwsc-a $H1 $PORT 5 >/dev/null 2>&1 || { WHY="cwsc-a cannot connect"; return 1; }
    cw_wait_for_line "$WORK/out" "^${TS}New connection: $(cw_regex_escape $A):[0-9]+ -> $(cw_regex_escape $H1):$PORT$" 10 ||
        { WHY="the connection was not reported"; return 1; }
}
# (Not `list`: listing a million blocks is the streamed list's, issue 10's other half.)
check "it stays responsive: a manual block counted, a real connection reported" case_responsive

case_stop() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 30 || { WHY="still running 30 s after SIGTERM"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="exit status $CW_EXIT_STATUS"; return 1; }
}
check "SIGTERM stops it" case_stop

echo "# connwatchd stderr:"; sed 's/^/#   /' "$WORK/err"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
