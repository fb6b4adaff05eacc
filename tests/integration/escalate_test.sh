#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Repeat offenders, judged by real nmap scans from a namespace with short blocks:
# block-duration 2s, escalation-factor 2, max-block-duration 6s. The first scan is
# blocked for 2 s (offence 1), the same scanner again after its block ended for
# 4 s (offence 2), as `connwatchctl list --json` and the log line say; the history
# survives a restart (the pinned map: offence 3, capped at 6 s) and a "reboot"
# (the pins removed: offenders.json, offence 4); an operator's unblock forgives
# (offence 1 again).
#
#   root namespace                      cwes-s
#   cwes-h1 10.246.1.1/24  <── veth ──> cwes-s0 10.246.1.2 (the scanner)
#
# Usage: escalate_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
cw_require_root
cw_require_tools ip nmap flock timeout python3
cw_take_lock /tmp/cwes-escalate.lock 240
cw_workdir /tmp/cwes
PIDFILE=/tmp/cwes-escalate.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwes."

H1=10.246.1.1 S=10.246.1.2
CONF=$WORK/connwatchd.conf
SOCK=$WORK/control.sock
PIN=/sys/fs/bpf/cwes-escalate

cw_ns_create cwes-s
cw_veth cwes-h1 cwes-s cwes-s0
cw_addr cwes-h1 $H1/24
cw_addr cwes-s cwes-s0 $S/24
cw_default_route cwes-s $H1

rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
cat >"$CONF" <<EOF
interface = cwes-h1
threshold = 3
window = 60s
block-duration = 2s
escalation-window = 1m
escalation-factor = 2
max-block-duration = 6s
log-target = stdout
control-socket = $SOCK
state-dir = $WORK/state
pin-dir = $PIN
metrics-listen =
EOF

DPID=''
start_daemon() {
    cw_daemon_start 15 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" --config "$CONF" ||
        { echo "FAIL: connwatchd did not start:"; cat "$WORK/err"; exit 1; }
    DPID=$CW_DAEMON_PID
}
stop_daemon() { cw_daemon_stop "$DPID" 10; }
ctl() { "$CTL" --socket "$SOCK" "$@"; }
check_fail_note() { cw_pid_alive "${DPID:-0}" || echo " (connwatchd is not running)"; }

# One nmap SYN scan of 10 ports, each probed once (no retransmission could
# outlive a 2 s block and start the next offence by itself), in the background:
# nmap waits for the dropped probes' answers longer than a 2 s block lasts, so
# the block is looked for while it runs. Bounded: 20 s. Sets SCAN_PID.
SCAN_PID=
scan() {
    ip netns exec cwes-s timeout 20 nmap -sS -n -Pn -p 1-10 --max-retries 0 \
        --host-timeout 10s $H1 >/dev/null 2>&1 9>&- &
    SCAN_PID=$!
    cw_on_cleanup "cw_kill $SCAN_PID 2"
}
scan_done() { wait "$SCAN_PID" 2>/dev/null || true; }
# The scanner's block as a `list --json` answer shows it: "OFFENCE SECONDS"
# (expires - created), or nothing when it is not blocked. JSON on stdin.
block_in() {
    "$CW_PY" -c '
import json, sys
for b in json.load(sys.stdin)["blocks"]:
    if b["prefix"] == sys.argv[1] + "/32" and b["origin"] == "scan":
        print(b["offence"], b["expires"] - b["created"])' "$S"
}
block_of_scanner() { ctl list --json | block_in; }
unblocked() { [ -z "$(block_of_scanner)" ]; }
# caught: the scanner is blocked in both forms of the list, read one right after
# the other (a 2 s block leaves no time for more): JSON in LIST_JSON, plain in
# LIST_PLAIN.
LIST_JSON='' LIST_PLAIN=''
caught() {
    LIST_JSON=$(ctl list --json) && LIST_PLAIN=$(ctl list) || return 1
    grep -q "\"$S/32\"" <<<"$LIST_JSON" && grep -q "^$(cw_regex_escape $S)/32 " <<<"$LIST_PLAIN"
}
# expect_offence N SECONDS: a scan is blocked as offence N for SECONDS (+-1: the
# wall-clock seconds of created and expires are each rounded), listed so and
# logged with "(offence N, blocked for SECONDSs)".
expect_offence() {
    local n=$1 secs=$2 got offence len lines
    cw_wait_until 20 unblocked || { WHY="the previous block did not end: $(block_of_scanner)"; return 1; }
    lines=$(wc -l <"$WORK/out")
    scan
    cw_wait_until 10 caught || { scan_done; WHY="the scan was not blocked (or not listed): $(tail -n +"$((lines + 1))" "$WORK/out" | head -5)"; return 1; }
    scan_done
    got=$(block_in <<<"$LIST_JSON")
    read -r offence len <<<"$got"
    [ "$offence" = "$n" ] || { WHY="listed as offence $offence, not $n ($got)"; return 1; }
    if [ "$len" -lt $((secs - 1)) ] || [ "$len" -gt $((secs + 1)) ]; then
        WHY="listed for ${len}s, not ${secs}s"
        return 1
    fi
    # The plain list's columns are the ones it always had; from the second offence
    # on, "(offence N)" follows the reason.
    if [ "$n" -ge 2 ]; then
        grep -Eq "^$(cw_regex_escape $S)/32 +scan +.* Port scan detected.* \\(offence $n\\)\$" <<<"$LIST_PLAIN" ||
            { WHY="the plain list does not say offence $n: $(grep "$S" <<<"$LIST_PLAIN")"; return 1; }
    else
        grep -E "^$(cw_regex_escape $S)/32 +scan +.* Port scan detected" <<<"$LIST_PLAIN" | grep -vq "(offence" ||
            { WHY="the plain list of a first offence: $(grep "$S" <<<"$LIST_PLAIN")"; return 1; }
    fi
    tail -n +"$((lines + 1))" "$WORK/out" |
        grep -Eq "Blocked $(cw_regex_escape $S) until .* \(offence $n, blocked for ${secs}s\)$" ||
        { WHY="no '(offence $n, blocked for ${secs}s)' line: $(tail -n +"$((lines + 1))" "$WORK/out" | grep Blocked)"; return 1; }
    tail -n +"$((lines + 1))" "$WORK/out" |
        grep -Eq "^[0-9-]+ [0-9:]+: Port scan detected: $(cw_regex_escape $S) -> $(cw_regex_escape $H1) on ports [0-9,]+$" ||
        { WHY="the scan's own line changed: $(tail -n +"$((lines + 1))" "$WORK/out" | grep 'Port scan')"; return 1; }
}

start_daemon
echo "# connwatchd pid $DPID"

case_first() { expect_offence 1 2; }
check "a first scan is blocked for block-duration (2 s), offence 1" case_first

case_second() { expect_offence 2 4; }
check "the same scanner again after its block ended: 2 x 2 = 4 s, offence 2" case_second

case_restart() {
    cw_wait_until 20 unblocked || { WHY="the previous block did not end"; return 1; }
    stop_daemon || { WHY="connwatchd did not stop"; return 1; }
    [ -e "$PIN/offenders" ] || { WHY="the offenders map is not pinned after a stop"; return 1; }
    start_daemon
    expect_offence 3 6
}
check "after a restart the history goes on (pinned): 8 s capped at max-block-duration, 6 s, offence 3" case_restart

case_reboot() {
    cw_wait_until 20 unblocked || { WHY="the previous block did not end"; return 1; }
    stop_daemon || { WHY="connwatchd did not stop"; return 1; }
    [ -s "$WORK/state/offenders.json" ] || { WHY="no $WORK/state/offenders.json after a stop"; return 1; }
    grep -q "\"source\":\"$S\"" "$WORK/state/offenders.json" ||
        { WHY="offenders.json lacks the scanner: $(cat "$WORK/state/offenders.json")"; return 1; }
    # A reboot takes bpffs with it.
    rm -rf "$PIN"
    local lines
    lines=$(wc -l <"$WORK/err")
    start_daemon
    tail -n +"$((lines + 1))" "$WORK/err" | grep -q "Restored the history of 1 repeat offenders" ||
        { WHY="no 'Restored the history' notice: $(tail -n +"$((lines + 1))" "$WORK/err")"; return 1; }
    expect_offence 4 6
}
check "after a 'reboot' (pins removed) the history comes back from offenders.json: offence 4" case_reboot

case_unblock_forgives() {
    # Offence 5 (6 s), lifted at once by the operator; then a first offence again.
    cw_wait_until 20 unblocked || { WHY="the previous block did not end"; return 1; }
    scan
    cw_wait_until 10 caught || { scan_done; WHY="the scan was not blocked"; return 1; }
    ctl unblock $S >/dev/null || { scan_done; WHY="unblock failed"; return 1; }
    scan_done
    [ "$(block_in <<<"$LIST_JSON" | cut -d' ' -f1)" = 5 ] || { WHY="not offence 5: $(block_in <<<"$LIST_JSON")"; return 1; }
    expect_offence 1 2
}
check "an operator's unblock forgives: the next scan is offence 1 again, 2 s" case_unblock_forgives

case_off_by_default() {
    cw_wait_until 20 unblocked || { WHY="the previous block did not end"; return 1; }
    stop_daemon || { WHY="connwatchd did not stop"; return 1; }
    sed -i '/^escalation-/d; /^max-block-duration/d' "$CONF"
    start_daemon
    local lines got
    lines=$(wc -l <"$WORK/out")
    scan
    cw_wait_until 10 caught || { scan_done; WHY="the scan was not blocked"; return 1; }
    scan_done
    got=$(block_in <<<"$LIST_JSON")
    [ "${got%% *}" = 0 ] || { WHY="escalation off, yet listed as offence ${got%% *}"; return 1; }
    tail -n +"$((lines + 1))" "$WORK/out" | grep -Eq "Blocked $(cw_regex_escape $S) until [0-9-]+ [0-9:]+$" ||
        { WHY="the block's line is not as before: $(tail -n +"$((lines + 1))" "$WORK/out" | grep Blocked)"; return 1; }
}
check "without escalation-window: offence 0, the block's line as before" case_off_by_default

stop_daemon || true
echo "# connwatchd stderr:"; sed 's/^/#   /' "$WORK/err"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
