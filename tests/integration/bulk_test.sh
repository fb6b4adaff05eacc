#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test of issue 10's control plane on the real connwatchd: bulk
# import from a file with good and bad lines (judged by real traffic too), the
# streamed list and its filters, a reader that stops mid-list while another
# client asks for status, blocks from a file surviving a "reboot" (the state
# journal), and an import of CW_BULK_LINES (default 1,000,000) lines, listed in
# full and removed again with unblock --file.
#
#   root namespace                      cwbk-a
#   cwbk-h1 10.242.1.1/24  <── veth ──> cwbk-a0 10.242.1.2, 10.242.1.3
#
# Usage: bulk_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
LINES=${CW_BULK_LINES:-1000000}
cw_require_root
cw_require_tools ip flock timeout python3
cw_take_lock /tmp/cwbk-bulk.lock 240
cw_workdir /tmp/cwbk
PIDFILE=/tmp/cwbk-bulk.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwbk."
cw_pidfile_reap /tmp/cwbk-bulk.listener.pid "/listen.ready"

H1=10.242.1.1 A=10.242.1.2 A2=10.242.1.3 PORT=9191
CONF=$WORK/connwatchd.conf
SOCK=$WORK/control.sock
STATE=$WORK/state
PIN=/sys/fs/bpf/cwbk-bulk

cw_ns_create cwbk-a
cw_veth cwbk-h1 cwbk-a cwbk-a0
cw_addr cwbk-h1 $H1/24
cw_addr cwbk-a cwbk-a0 $A/24
ip -n cwbk-a addr add $A2/24 dev cwbk-a0
cw_default_route cwbk-a $H1
cw_listen 280 "$WORK/listen.ready" $H1:$PORT
echo $CW_LISTEN_PID >/tmp/cwbk-bulk.listener.pid
cw_wait_until 10 test -s "$WORK/listen.ready" || { echo "FAIL: setup: listener"; exit 1; }

rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
cat >"$CONF" <<EOF
interface = cwbk-h1
threshold = 3
window = 60s
block-duration = 10m
max-blocks = $((LINES + 10000))
log-target = stdout
control-socket = $SOCK
state-dir = $STATE
pin-dir = $PIN
metrics-listen =
EOF

DPID=
start_daemon() {
    # 120 s, as scale_test gives its own: a start that takes over a million
    # blocks, on a machine that runs another test beside this one.
    cw_daemon_start 120 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" --config "$CONF" ||
        cw_setup_fail "connwatchd did not start: $(cat "$WORK/err")"
    DPID=$CW_DAEMON_PID
}
stop_daemon() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 30 || { WHY="connwatchd did not stop on SIGTERM"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="connwatchd exited $CW_EXIT_STATUS after SIGTERM"; return 1; }
}
check_fail_note() {
    if [ -n "${DPID:-}" ] && ! cw_pid_alive "$DPID"; then echo " (connwatchd is no longer running)"; fi
}
ctl() { "$CTL" --socket "$SOCK" "$@"; }
can_connect() { cw_connect cwbk-a $H1 $PORT 2 "$1" >/dev/null 2>&1; }
cannot_connect() {
    local err
    if err=$(cw_connect cwbk-a $H1 $PORT 2 "$1" 2>&1 >/dev/null); then return 1; fi
    [[ $err == *"timed out"* ]]
}
# json_check EXPRESSION: python's verdict on the JSON on stdin (as `j`).
json_check() { "$CW_PY" -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($1) else 1)"; }

start_daemon
echo "# connwatchd pid $DPID, $LINES lines for the large import"

# ---- cases -----------------------------------------------------------------------------

case_file() {
    can_connect $A || why "cwbk-a cannot connect before any block" || return 1
    cat >"$WORK/list.txt" <<EOF
# a threat list
$A 1h   from the list   # the namespace's first address
192.0.2.1
192.0.2.1                 # again: already present
198.51.100.0/24 - a prefix without duration
300.1.2.3
192.0.2.2 soon
127.0.0.1                 # loopback: allowlisted
0.0.0.0/0                 # dangerous without --force
2001:db8::/48 30m
EOF
    local out err rc=0
    out=$(ctl block --file "$WORK/list.txt" 2>"$WORK/file.err") || rc=$?
    err=$(cat "$WORK/file.err")
    [ "$rc" = 1 ] || why "exit status $rc, expected 1 (lines refused)" || return 1
    [[ $out == "Added 4 blocks; 1 already present; 4 lines refused" ]] || why "summary: $out" || return 1
    [[ $err == *"list.txt:6: "*"300.1.2.3"* ]] || why "line 6 not said: $err" || return 1
    [[ $err == *"list.txt:7: "*"use - for none"* ]] || why "line 7 not said: $err" || return 1
    [[ $err == *"list.txt:8: 127.0.0.1/32 is covered by the allow entry"* ]] || why "line 8 not said: $err" || return 1
    [[ $err == *"list.txt:9: not blocking 0.0.0.0/0"* ]] || why "line 9 not said: $err" || return 1
    cannot_connect $A || why "cwbk-a ($A) still connects: the file's block is not in force" || return 1
    can_connect $A2 || why "$A2 (not in the file) cannot connect" || return 1
    ctl list --json | json_check '[b["reason"] for b in j["blocks"] if b["prefix"]=="198.51.100.0/24"]==["a prefix without duration"]' ||
        why "the prefix's reason is not listed" || return 1
    # Again from standard input: everything is there already.
    out=$(grep -v -e 300.1 -e soon -e 127.0 -e 0.0.0.0 "$WORK/list.txt" | ctl block --file - --json) ||
        why "block --file - exited $?" || return 1
    json_check 'j["ok"] and j["added"]==0 and j["present"]==5 and j["refused"]==[]' <<<"$out" ||
        why "second import: $out" || return 1
}
check "block --file: good lines applied, bad ones said with their numbers" case_file

case_list_filters() {
    local manual match limit
    # A scan block, for --origin scan: four ports from the second address.
    local p
    for p in 1 2 3 4; do cw_connect cwbk-a $H1 $((PORT + p)) 1 $A2 >/dev/null 2>&1 || true; done
    cw_wait_until 10 eval "ctl list --origin scan | grep -q '^$A2/32 '" ||
        why "no scan block of $A2 listed by --origin scan" || return 1
    manual=$(ctl list --origin manual | grep -c '^[0-9a-f].* manual ' || true)
    [ "$manual" = 4 ] || why "--origin manual listed $manual blocks, expected 4" || return 1
    ctl list --origin manual | grep -q ' scan ' && { why "--origin manual lists a scan block"; return 1; }
    match=$(ctl list --match 198.51.100.7 | awk 'NR>1 && /^[0-9]/ {print $1}')
    [ "$match" = 198.51.100.0/24 ] || why "--match 198.51.100.7: '$match'" || return 1
    match=$(ctl list --match 10.242.0.0/16 | awk 'NR>1 && /^[0-9]/ {print $1}' | sort | tr '\n' ' ')
    [ "$match" = "$A/32 $A2/32 " ] || why "--match 10.242.0.0/16: '$match'" || return 1
    limit=$(ctl list --limit 2 --json | "$CW_PY" -c 'import json,sys; print(len(json.load(sys.stdin)["blocks"]))')
    [ "$limit" = 2 ] || why "--limit 2 listed $limit" || return 1
    # The old document, as scripts read it: every key where it was (and
    # offence, added for repeat offenders).
    ctl list --json | json_check 'set(j)=={"ok","allow","blocks"} and j["ok"] and all(set(b)=={"prefix","origin","reason","created","expires","expires_in","offence"} for b in j["blocks"])' ||
        why "list --json is not the document it was" || return 1
}
check "list: --origin, --match, --limit; --json the same document as before" case_list_filters

case_reboot() {
    stop_daemon || return 1
    rm -rf "$PIN" # what a reboot does to bpffs
    [ -s "$STATE/state.json.journal" ] || [ -s "$STATE/state.json" ] || why "nothing in $STATE" || return 1
    start_daemon
    cw_wait_for_line "$WORK/err" "Restored 4 manual blocks" 5 "$DPID" ||
        why "no 'Restored 4 manual blocks' notice: $(grep -i restor "$WORK/err" | tail -1)" || return 1
    cannot_connect $A || why "cwbk-a connects after the simulated reboot" || return 1
    ctl list | grep -q "from the list" || why "the reason from the file was lost" || return 1
}
check "blocks from a file survive a reboot (snapshot + journal)" case_reboot

# Many blocks, so that a list is far more than a socket buffer.
python3 - "$WORK/many.txt" "$LINES" <<'EOF'
import sys, ipaddress
path, n = sys.argv[1], int(sys.argv[2])
base = int(ipaddress.IPv4Address("100.64.0.0"))  # 100.64.0.0/10: 4 M addresses
with open(path, "w") as f:
    f.write("# %d addresses\n" % n)
    for i in range(n):
        f.write("%s 1d bulk\n" % ipaddress.IPv4Address(base + i))
EOF

case_import() {
    local t0 out
    t0=$(cw_now_ms)
    out=$(ctl block --file "$WORK/many.txt") || why "block --file exited $?: $out" || return 1
    echo "# imported $LINES lines in $(($(cw_now_ms) - t0)) ms: $out"
    [ "$out" = "Added $LINES blocks; 0 already present; 0 lines refused" ] || why "summary: $out" || return 1
    ctl status --json | json_check "j['blocks'] >= $LINES" || why "status does not count them" || return 1
}
check "block --file of $LINES lines" case_import

case_stalled_reader() {
    # A client that asks for the whole list and reads one piece of it, then
    # nothing: the daemon must go on serving everyone else.
    "$CW_PY" - "$SOCK" "$WORK/stalled.ready" 9>&- <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"command":"list"}\n')
s.recv(4096)
open(sys.argv[2], "w").write("ready\n")
time.sleep(20)
EOF
    local reader=$!
    cw_on_cleanup "cw_kill $reader 2"
    cw_wait_until 10 test -s "$WORK/stalled.ready" || why "the stalled reader never got a first piece" || return 1
    local i out
    for i in 1 2 3; do
        out=$(ctl status --json) || why "status failed while a reader stalls mid-list" || return 1
    done
    json_check 'j["ok"]' <<<"$out" || why "status: $out" || return 1
    cw_kill $reader 2
}
check "a reader that stops mid-list delays no one" case_stalled_reader

case_full_list() {
    local t0 n
    t0=$(cw_now_ms)
    n=$(ctl list | grep -c ' bulk$' || true)
    echo "# listed $n blocks in $(($(cw_now_ms) - t0)) ms"
    [ "$n" = "$LINES" ] || why "list showed $n of the $LINES imported" || return 1
    n=$(ctl list --json | "$CW_PY" -c 'import json,sys; print(sum(1 for b in json.load(sys.stdin)["blocks"] if b["reason"]=="bulk"))')
    [ "$n" = "$LINES" ] || why "list --json showed $n of the $LINES imported" || return 1
}
check "a full list of $LINES blocks, plain and --json" case_full_list

case_unblock_file() {
    local out
    out=$(ctl unblock --file "$WORK/many.txt") || why "unblock --file exited $?: $out" || return 1
    [ "$out" = "Removed $LINES blocks; 0 were not blocked; 0 lines refused" ] || why "summary: $out" || return 1
    ctl status --json | json_check "j['blocks'] < 10" || why "the blocks are still counted" || return 1
}
check "unblock --file of the same $LINES lines" case_unblock_file

case_restart_keeps_reasons() {
    local out
    out=$(ctl block --file "$WORK/many.txt") || why "block --file exited $?: $out" || return 1
    [ "$out" = "Added $LINES blocks; 0 already present; 0 lines refused" ] || why "summary: $out" || return 1
    echo "# connwatchd RSS with $LINES manual blocks: $(awk '/VmRSS/ {print $2, $3}' /proc/"$DPID"/status)"
    stop_daemon || return 1
    start_daemon
    ctl status --json | json_check "j['blocks'] >= $LINES" || why "the blocks are not counted after the restart" || return 1
    out=$(ctl list --match 100.64.0.0/30 --json) || why "list --match exited $?" || return 1
    json_check 'sorted(b["prefix"] for b in j["blocks"])==["100.64.0.%d/32" % i for i in range(4)] and all(b["reason"]=="bulk" and b["origin"]=="manual" and b["expires"]>0 for b in j["blocks"])' <<<"$out" ||
        why "after the restart the imported blocks' reasons are not listed: $out" || return 1
}
check "a restart keeps the $LINES imported blocks and their reason" case_restart_keeps_reasons

case_flush() {
    local out n status_ok=0 t0
    t0=$(cw_now_ms)
    ctl flush >"$WORK/flush.out" 2>&1 &
    local flusher=$!
    cw_on_cleanup "cw_kill $flusher 2"
    # The daemon answers others while it flushes (or after: either way an answer).
    ctl status --json | json_check 'j["ok"]' && status_ok=1
    cw_wait_exit "$flusher" 120 || why "connwatchctl flush did not finish" || return 1
    [ "$CW_EXIT_STATUS" = 0 ] || why "connwatchctl flush exited $CW_EXIT_STATUS: $(cat "$WORK/flush.out")" || return 1
    out=$(cat "$WORK/flush.out")
    echo "# flushed in $(($(cw_now_ms) - t0)) ms: $out"
    [ "$status_ok" = 1 ] || why "status during the flush failed" || return 1
    [[ $out =~ ^Removed\ ([0-9]+)\ blocks$ ]] || why "flush said: $out" || return 1
    local removed=${BASH_REMATCH[1]}
    [ "$removed" -ge "$LINES" ] || why "flush removed $removed, fewer than $LINES" || return 1
    ctl status --json | json_check "j['blocks'] == 0" || why "blocks left after the flush" || return 1
    # One line in the log for the whole flush, counted by origin; none a block.
    cw_wait_for_line "$WORK/err" "Flushed $removed blocks \\([0-9]+ manual, [0-9]+ scan, [0-9]+ crowdsec\\)" 5 "$DPID" ||
        why "no 'Flushed $removed blocks (... manual, ... scan, ... crowdsec)' line" || return 1
    n=$(cat "$WORK/out" "$WORK/err" | grep -c 'flushed (by' || true)
    [ "$n" = 0 ] || why "$n log lines of a block each 'flushed (by ...)'" || return 1
    # Nothing comes back on a restart: the state file was rewritten.
    stop_daemon || return 1
    start_daemon
    ctl status --json | json_check "j['blocks'] == 0" || why "flushed blocks came back after a restart" || return 1
}
check "flush of $LINES blocks: batched, one log line, nothing back after a restart" case_flush

check "SIGTERM: a clean exit (0)" stop_daemon
echo "# connwatchd stderr:"; sed 's/^/#   /' "$WORK/err" | tail -20
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
