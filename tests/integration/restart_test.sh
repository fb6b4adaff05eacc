#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# No gap on restart, judged by real traffic: the XDP program outlives connwatchd
# (pinned links), so a blocked source that sends all the time gets none of its
# packets through a kill -9 and a restart, nor through a restart by SIGUSR1 (the
# unit's RestartKillSignal); a scan made while no daemon runs is blocked by the
# kernel and reported after the restart, with what was missed; an interface the
# new configuration no longer names is detached; SIGTERM detaches everything,
# and `connwatchd --detach` removes what a killed daemon left.
#
#   root namespace                      cwrs-a                 cwrs-b
#   cwrs-h1 10.238.1.1/24  <── veth ──> cwrs-a0 10.238.1.2   (the blocked sender)
#   cwrs-h2 10.238.2.1/24  <── veth ──────────────────────────> cwrs-b0 10.238.2.2 (scanner)
#   cwrs-h3 (watched at first, then no longer configured)
#
# Usage: restart_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
cw_require_root
cw_require_tools ip nmap flock timeout python3
cw_take_lock /tmp/cwrs-restart.lock 240
cw_workdir /tmp/cwrs
PIDFILE=/tmp/cwrs-restart.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwrs."

H1=10.238.1.1 A=10.238.1.2 H2=10.238.2.1 B=10.238.2.2 PORT=9090 UDP=9191
CONF=$WORK/connwatchd.conf
SOCK=$WORK/control.sock
PIN=/sys/fs/bpf/cwrs-restart

cw_ns_create cwrs-a
cw_ns_create cwrs-b
cw_veth cwrs-h1 cwrs-a cwrs-a0
cw_veth cwrs-h2 cwrs-b cwrs-b0
cw_veth cwrs-h3 cwrs-b cwrs-b3
cw_addr cwrs-h1 $H1/24
cw_addr cwrs-a cwrs-a0 $A/24
cw_addr cwrs-h2 $H2/24
cw_addr cwrs-b cwrs-b0 $B/24
cw_default_route cwrs-a $H1
cw_default_route cwrs-b $H2

cw_listen 240 "$WORK/listen.ready" $H2:$PORT
cw_wait_until 10 test -s "$WORK/listen.ready" || cw_setup_fail "listener"

rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
write_conf() {
    {
        for i in "$@"; do echo "interface = $i"; done
        cat <<EOF
threshold = 3
window = 60s
block-duration = 10m
log-target = stdout
control-socket = $SOCK
state-dir = $WORK/state
pin-dir = $PIN
metrics-listen =
EOF
    } >"$CONF"
}
write_conf cwrs-h1 cwrs-h2 cwrs-h3

DPID=''
start_daemon() {
    cw_daemon_start 15 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" --config "$CONF" ||
        { echo "FAIL: connwatchd did not start:"; cat "$WORK/err"; exit 1; }
    DPID=$CW_DAEMON_PID
}
ctl() { "$CTL" --socket "$SOCK" "$@"; }
check_fail_note() { cw_pid_alive "${DPID:-0}" || echo " (connwatchd is not running)"; }
# lines_after N ERE: a line matching ERE among the lines of err after the first N.
lines_after() { tail -n +"$(($1 + 1))" "$WORK/err" | grep -E -- "$2"; }

# ---- the blocked sender and the receiver that counts what gets through -----------------
# The receiver counts every datagram from $A on $H1:$UDP and keeps the count in a
# file; the sender sends one every 2 ms until told to stop (bounded: 60 s, 30000).
"$CW_PY" - "$H1" $UDP "$A" "$WORK/received" "$WORK/stop" 9>&- <<'EOF' &
import os, socket, sys, time
host, port, src, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((host, port))
s.settimeout(0.2)
n, deadline = 0, time.monotonic() + 200
open(out, "w").write("0\n")
while time.monotonic() < deadline and not os.path.exists(stop + ".receiver"):
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if addr[0] == src:
        n += 1
        open(out + ".tmp", "w").write(f"{n}\n")
        os.replace(out + ".tmp", out)
EOF
RECEIVER=$!
cw_on_cleanup "touch $WORK/stop.receiver; cw_kill $RECEIVER 3"

SENDER=
start_sender() {
    ip netns exec cwrs-a "$CW_PY" - "$H1" $UDP "$WORK/sent" "$WORK/stop" 9>&- <<'EOF' &
import os, socket, sys, time
host, port, out, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
n, deadline = 0, time.monotonic() + 60
while n < 30000 and time.monotonic() < deadline and not os.path.exists(stop):
    s.sendto(b"x" * 32, (host, port))
    n += 1
    if n % 50 == 0:
        open(out + ".tmp", "w").write(f"{n}\n")
        os.replace(out + ".tmp", out)
    time.sleep(0.002)
open(out + ".tmp", "w").write(f"{n}\n")
os.replace(out + ".tmp", out)
EOF
    SENDER=$!
    cw_on_cleanup "touch $WORK/stop; cw_kill $SENDER 3"
}
count() { cat "$1" 2>/dev/null || echo 0; }
# at_least FILE N: the count in FILE is N or more.
at_least() { [ "$(count "$1")" -ge "$2" ]; }
# sent_grows N: waits until the sender has sent N more datagrams than now.
sent_grows() { cw_wait_until 20 at_least "$WORK/sent" $(($(count "$WORK/sent") + $1)); }

start_daemon
echo "# connwatchd pid $DPID"

# ---- cases -----------------------------------------------------------------------------

case_baseline() {
    # The count can fail: before any block the sender's datagrams arrive.
    rm -f "$WORK/stop"
    start_sender
    cw_wait_until 10 at_least "$WORK/received" 20 ||
        { touch "$WORK/stop"; WHY="the receiver counts none of the sender's datagrams"; return 1; }
    touch "$WORK/stop"
    cw_wait_exit "$SENDER" 10 || { WHY="the sender did not stop"; return 1; }
}
check "before a block, the sender's datagrams arrive (the count can fail)" case_baseline

RECEIVED0=
case_kill9() {
    ctl block $A --reason "restart test" >/dev/null || { WHY="block exited $?"; return 1; }
    RECEIVED0=$(count "$WORK/received")
    rm -f "$WORK/stop" "$WORK/sent"
    start_sender
    sent_grows 100 || { WHY="the sender does not send"; return 1; }
    local lines
    lines=$(wc -l <"$WORK/err")
    kill -9 "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="connwatchd did not die"; return 1; }
    cw_xdp_attached cwrs-h1 || { WHY="the program detached when connwatchd was killed"; return 1; }
    [ -e "$PIN/link_cwrs-h1" ] || { WHY="no pinned link $PIN/link_cwrs-h1"; return 1; }
    sent_grows 200 || { WHY="the sender stopped sending"; return 1; }
    # While no daemon runs: a scan, which the kernel detects and blocks; and the
    # configuration changes to no longer name cwrs-h3.
    ip netns exec cwrs-b timeout 60 nmap -sS -n -Pn -p 1-10 --max-retries 1 \
        --host-timeout 30s $H2 >/dev/null 2>&1 || true
    write_conf cwrs-h1 cwrs-h2
    start_daemon
    sent_grows 200 || { WHY="the sender stopped sending after the restart"; return 1; }
    lines_after "$lines" "^connwatchd: Took over cwrs-h1 \((native|generic)\), cwrs-h2 \((native|generic)\) from the previous connwatchd" >/dev/null ||
        { WHY="no 'Took over' notice: $(tail -n +"$((lines + 1))" "$WORK/err")"; return 1; }
    lines_after "$lines" "^connwatchd: While no connwatchd ran: [0-9]+ connection attempts, [0-9]+ probes, [1-9][0-9]* port scans, [1-9][0-9]* automatic blocks, [1-9][0-9]* packets dropped" >/dev/null ||
        { WHY="no or wrong 'While no connwatchd ran' notice: $(grep 'While no' "$WORK/err")"; return 1; }
}
check "kill -9 and a restart: the program stays attached and is taken over; the new daemon says what it missed" case_kill9

case_scan_while_down() {
    grep -Eq "Port scan detected: $(cw_regex_escape $B) -> $(cw_regex_escape $H2) on ports" "$WORK/out" ||
        { WHY="the scan made while no daemon ran is not reported"; return 1; }
    grep -Eq "^$(cw_regex_escape $B)/32 +scan " <<<"$(ctl list)" || { WHY="not listed as a scan block: $(ctl list)"; return 1; }
    local err
    if err=$(cw_connect cwrs-b $H2 $PORT 2 2>&1 >/dev/null); then WHY="the scanner still connects"; return 1; fi
    [[ $err == *"timed out"* ]] || { WHY="the scanner's connection was not dropped: $err"; return 1; }
}
check "a scan made while no daemon ran was blocked by the kernel and is reported after the restart" case_scan_while_down

case_unconfigured_detached() {
    grep -q "Detached from 'cwrs-h3'" "$WORK/err" || { WHY="no 'Detached from' notice"; return 1; }
    ! cw_xdp_attached cwrs-h3 || { WHY="cwrs-h3 is still attached"; return 1; }
    [ ! -e "$PIN/link_cwrs-h3" ] || { WHY="the link of cwrs-h3 is still pinned"; return 1; }
}
check "an interface the new configuration no longer names is detached" case_unconfigured_detached

case_sigusr1() {
    local lines
    lines=$(wc -l <"$WORK/err")
    kill -USR1 "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="connwatchd did not exit on SIGUSR1"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="connwatchd exited $CW_EXIT_STATUS after SIGUSR1"; return 1; }
    cw_xdp_attached cwrs-h1 || { WHY="the program detached on SIGUSR1"; return 1; }
    sent_grows 100 || { WHY="the sender stopped sending"; return 1; }
    start_daemon
    lines_after "$lines" "^connwatchd: Took over cwrs-h1 .* same program" >/dev/null ||
        { WHY="no 'Took over ... same program' notice"; return 1; }
    lines_after "$lines" "^connwatchd: While no connwatchd ran: .* [1-9][0-9]* packets dropped" >/dev/null ||
        { WHY="the drops while no daemon ran are not counted"; return 1; }
    sent_grows 100 || { WHY="the sender stopped sending"; return 1; }
}
check "SIGUSR1 (the unit's RestartKillSignal) exits 0 and leaves the program for the next daemon" case_sigusr1

case_none_through() {
    touch "$WORK/stop"
    cw_wait_exit "$SENDER" 10 || { WHY="the sender did not stop"; return 1; }
    local sent received
    sent=$(count "$WORK/sent")
    received=$(($(count "$WORK/received") - RECEIVED0))
    echo "# the blocked sender sent $sent datagrams through two restarts; $received arrived"
    [ "$sent" -ge 500 ] || { WHY="only $sent datagrams sent"; return 1; }
    [ "$received" = 0 ] || { WHY="$received of $sent datagrams from the blocked source got through"; return 1; }
}
check "not one datagram of the blocked source got through the restarts" case_none_through

case_stop_detaches() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="connwatchd did not stop on SIGTERM"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="connwatchd exited $CW_EXIT_STATUS after SIGTERM"; return 1; }
    if cw_xdp_attached cwrs-h1 || cw_xdp_attached cwrs-h2; then WHY="still attached after SIGTERM"; return 1; fi
    local left
    left=$(find "$PIN" -mindepth 1 ! -name block_addr ! -name block_cidr ! -name offenders -printf '%f ')
    [ -z "$left" ] || { WHY="pinned after a clean stop: $left"; return 1; }
    [ -e "$PIN/block_addr" ] || { WHY="the blocklist is no longer pinned"; return 1; }
}
check "SIGTERM detaches and unpins all but the blocklists and the offenders' history" case_stop_detaches

case_detach_command() {
    start_daemon
    grep -q "Took over" <<<"$(tail -3 "$WORK/err")" && { WHY="took over after a clean stop"; return 1; }
    kill -9 "$DPID"
    cw_wait_exit "$DPID" 10 || true
    cw_xdp_attached cwrs-h1 || { WHY="not attached after kill -9"; return 1; }
    local out
    out=$("$BIN" --config "$CONF" --detach 2>&1) || { WHY="--detach failed: $out"; return 1; }
    grep -q "cwrs-h1: detached" <<<"$out" || { WHY="--detach said: $out"; return 1; }
    if cw_xdp_attached cwrs-h1 || cw_xdp_attached cwrs-h2; then WHY="still attached after --detach"; return 1; fi
    [ -e "$PIN/block_addr" ] || { WHY="--detach removed the blocklist"; return 1; }
}
check "connwatchd --detach removes what a killed daemon left attached, keeps the blocks" case_detach_command

echo "# connwatchd stderr:"; sed 's/^/#   /' "$WORK/err"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
