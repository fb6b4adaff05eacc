#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test of the Prometheus endpoint: after real traffic from a
# namespace (connections, an nmap scan, packets from the blocked scanner), the
# scraped values equal what was sent, and promtool finds nothing wrong with them.
#
#   root namespace                      cwmt-a
#   cwmt-h1 10.236.1.1/24  <── veth ──> cwmt-a0 10.236.1.2
#
# Scrapes go to 127.0.0.1 only. Usage: metrics_test.sh PATH/TO/connwatchd (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 1 ] || [ ! -x "$1" ]; then cw_usage "PATH/TO/connwatchd"; fi
BIN=$(realpath "$1")
cw_require_root
cw_require_tools ip nmap flock timeout promtool python3
cw_take_lock /tmp/cwmt-metrics.lock 240
cw_workdir /tmp/cwmt
cw_pidfile_reap /tmp/cwmt-metrics.connwatchd.pid "/tmp/cwmt."
cw_pidfile_reap /tmp/cwmt-metrics.listener.pid "/listen.ready"

H=10.236.1.1 A=10.236.1.2 LPORT=8080
cw_ns_create cwmt-a
cw_veth cwmt-h1 cwmt-a cwmt-a0
cw_addr cwmt-h1 $H/24
cw_addr cwmt-a cwmt-a0 $A/24
cw_listen 200 "$WORK/listen.ready" $H:$LPORT
echo $CW_LISTEN_PID >/tmp/cwmt-metrics.listener.pid
cw_wait_until 10 test -s "$WORK/listen.ready" || { echo "FAIL: setup: listener"; exit 1; }

# A free loopback port for the endpoint.
MPORT=$("$CW_PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cw_isolation "$BIN" "$WORK" cwmt-metrics
# The isolation turns metrics off; this test points them at its own port.
for i in "${!CW_ISOLATE[@]}"; do
    [ "${CW_ISOLATE[$i]}" = --metrics-listen ] && CW_ISOLATE[$((i + 1))]="127.0.0.1:$MPORT"
done
"$BIN" "${CW_ISOLATE[@]}" --interface cwmt-h1 \
    --log-target stdout >"$WORK/out" 2>"$WORK/err" 9>&- &
DPID=$!
echo $DPID >/tmp/cwmt-metrics.connwatchd.pid
cw_on_cleanup "cw_kill $DPID 5"
cw_wait_for_line "$WORK/err" "Started" 15 "$DPID" || { echo "FAIL: setup: connwatchd:"; cat "$WORK/err"; exit 1; }

scrape() { "$CW_PY" -c 'import sys, urllib.request; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())' "http://127.0.0.1:$MPORT/metrics"; }
# value NAME{LABELS}: the sample's value as an integer, or "none".
value() {
    scrape | "$CW_PY" -c '
import sys
want = sys.argv[1]
for line in sys.stdin:
    if line.startswith(want + " "):
        print(int(float(line.split()[-1]))); break
else:
    print("none")' "$1"
}

conn_lines() { cw_count_lines "$WORK/out" "New connection: $(cw_regex_escape $A):"; }

case_connections() {
    local i
    for i in 1 2 3 4 5; do cw_connect cwmt-a $H $LPORT 2 >/dev/null || { WHY="connection $i failed"; return 1; }; done
    cw_wait_until 5 eval '[ "$(conn_lines)" -ge 5 ]' || { WHY="5 connections gave $(conn_lines) lines"; return 1; }
    local v; v=$(value 'connwatch_new_connections_total{interface="cwmt-h1"}')
    [ "$v" = "$(conn_lines)" ] || { WHY="new_connections_total=$v, lines=$(conn_lines)"; return 1; }
    [ "$v" = 5 ] || { WHY="new_connections_total=$v, sent 5"; return 1; }
}
check "connwatch_new_connections_total{interface} equals the connections made" case_connections

case_scan() {
    timeout 60 ip netns exec cwmt-a nmap -sS -n -Pn -p 1-10 --max-retries 1 --host-timeout 30s $H >/dev/null 2>&1 || true
    cw_wait_for_line "$WORK/out" "Port scan detected: $(cw_regex_escape $A) " 10 "$DPID" || { WHY="no scan line"; return 1; }
    local before; before=$(value 'connwatch_packets_dropped_total{reason="blocklist"}')
    # Three attempts from the blocked scanner: each SYN (and its retransmissions) dropped.
    local i
    for i in 1 2 3; do cw_connect cwmt-a $H $LPORT 1 >/dev/null 2>&1 && { WHY="the scanner connected"; return 1; }; done
    local after; after=$(value 'connwatch_packets_dropped_total{reason="blocklist"}')
    [ $((after - before)) -ge 3 ] || { WHY="drops went from $before to $after after 3 blocked attempts"; return 1; }
    [ "$(value connwatch_port_scans_total)" = 1 ] || { WHY="port_scans_total=$(value connwatch_port_scans_total)"; return 1; }
    [ "$(value 'connwatch_blocks_added_total{origin="scan"}')" = 1 ] || { WHY="blocks_added_total{scan}"; return 1; }
    cw_wait_until 5 eval '[ "$(value "connwatch_blocklist_entries{origin=\"scan\"}")" = 1 ]' ||
        { WHY="blocklist_entries{scan}=$(value 'connwatch_blocklist_entries{origin="scan"}')"; return 1; }
    local v; v=$(value 'connwatch_new_connections_total{interface="cwmt-h1"}')
    [ "$v" = "$(conn_lines)" ] || { WHY="new_connections_total=$v, lines=$(conn_lines) after the scan"; return 1; }
}
check "scans, blocks and drops are counted as they happened" case_scan

case_info() {
    [ "$(value 'connwatch_interface_info{interface="cwmt-h1",xdp_mode="native"}')" = 1 ] || { WHY="interface_info"; return 1; }
    grep -qE '^connwatch_build_info\{version="[0-9.]+"\} 1$' <<<"$(scrape)" || { WHY="build_info"; return 1; }
    [ "$(value connwatch_events_lost_total)" = 0 ] || { WHY="events were lost"; return 1; }
}
check "interface and build info" case_info

case_promtool() {
    local out
    out=$(scrape | promtool check metrics 2>&1) || { WHY="promtool failed: $out"; return 1; }
    [ -z "$out" ] || { WHY="promtool: $out"; return 1; }
}
check "promtool check metrics finds nothing" case_promtool

# Local users holding unfinished HTTP requests open must not stop Prometheus from
# scraping (the endpoint once ran one thread with civetweb's 30 s request timeout).
case_held_requests() {
    local held
    timeout 30 "$CW_PY" -c '
import socket, sys, time
socks = []
for _ in range(2):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")  # never the blank line
    socks.append(s)
open(sys.argv[2], "w").write("held\n")
time.sleep(30)' "$MPORT" "$WORK/held.ready" &
    held=$!
    cw_on_cleanup "kill $held 2>/dev/null || true"
    cw_wait_until 10 test -s "$WORK/held.ready" || { WHY="could not open the held requests"; return 1; }
    local out
    out=$(scrape 2>&1) || { kill $held 2>/dev/null; WHY="no scrape while two requests were held: $out"; return 1; }
    kill $held 2>/dev/null || true
    grep -q '^connwatch_build_info' <<<"$out" || { WHY="the scrape was incomplete"; return 1; }
}
check "requests held open by other local users do not stop a scrape" case_held_requests

case_documented() {
    local doc=$CW_LIB/../../docs/METRICS.md exported documented
    exported=$(scrape | sed -n 's/^# TYPE \(connwatch_[a-z_]*\) .*/\1/p' | sort -u)
    documented=$(grep -oE '^\| `connwatch_[a-z_]+`' "$doc" | grep -oE 'connwatch_[a-z_]+' | sort -u)
    [ -n "$exported" ] && [ "$exported" = "$documented" ] ||
        { WHY="exported and docs/METRICS.md differ: $(diff <(echo "$exported") <(echo "$documented") | tr '\n' ' ')"; return 1; }
}
check "every exported metric is documented in docs/METRICS.md, and only those" case_documented

case_in_use() {
    # A second daemon asking for the same port fails at start, naming the address.
    local rc=0 err
    err=$(timeout 20 "$BIN" --config /dev/null --control-socket "$WORK/second.sock" --pin-dir "" \
          --state-dir "$WORK/second" --metrics-listen "127.0.0.1:$MPORT" --interface cwmt-h1 2>&1) || rc=$?
    [ $rc != 0 ] && [[ $err == *"Cannot serve metrics on 127.0.0.1:$MPORT"* ]] || { WHY="exit $rc: $err"; return 1; }
}
check "a port in use is a clear start-up error" case_in_use

case_signals() {
    # With the endpoint's threads running, SIGHUP reloads and SIGTERM ends the daemon
    # through its own loop (a thread that had them unblocked used to take them with
    # the default action: SIGHUP killed the daemon, SIGTERM skipped the shutdown).
    kill -HUP "$DPID"
    cw_wait_for_line "$WORK/err" "Reloaded" 10 "$DPID" || { WHY="SIGHUP: no 'Reloaded' line; alive: $(cw_pid_alive "$DPID" && echo yes || echo no)"; return 1; }
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="SIGTERM: still running after 10 s"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="SIGTERM: exit status $CW_EXIT_STATUS (143: killed by the signal)"; return 1; }
    grep -q "received Terminated" "$WORK/err" || { WHY="SIGTERM: no 'received Terminated' line"; return 1; }
}
check "with metrics on, SIGHUP reloads and SIGTERM shuts down cleanly (exit 0)" case_signals

case_disabled() {
    cw_kill "$DPID" 10
    cw_isolation "$BIN" "$WORK" cwmt-metrics
    "$BIN" "${CW_ISOLATE[@]}" --interface cwmt-h1 --log-target stdout >"$WORK/out2" 2>"$WORK/err2" 9>&- &
    DPID=$!
    cw_on_cleanup "cw_kill $DPID 5"
    cw_wait_for_line "$WORK/err2" "Started" 15 "$DPID" || { WHY="did not start"; return 1; }
    if scrape >/dev/null 2>&1; then WHY="something still answers on $MPORT"; return 1; fi
    # The isolation passes --metrics-listen "": the default port must be silent too.
    "$CW_PY" -c 'import socket; socket.create_connection(("127.0.0.1", 9467), 1)' 2>/dev/null &&
        { WHY="something answers on 127.0.0.1:9467"; return 1; }
    return 0
}
check "an empty metrics-listen disables the endpoint" case_disabled

# The exit status says whether the shutdown was clean: in the sanitizer build, a
# leak or another report at exit makes it non-zero.
case_stop() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="connwatchd did not stop on SIGTERM"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="connwatchd exited $CW_EXIT_STATUS after SIGTERM, expected 0"; return 1; }
}
check "metrics off: SIGTERM, a clean exit (0)" case_stop

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
