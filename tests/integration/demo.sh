#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# `make demo`: a narrated, self-contained show of connwatch on a tiny network built
# inside this machine — two network namespaces, "alice" (a client) and "mallory" (a
# scanner), each on a veth pair to the host. connwatchd watches the host side of
# both, sees alice's connection, sees mallory's real nmap scan, blocks mallory in
# XDP, and is stopped again. Everything is removed at the end, however it ends.
# Traffic goes only to the addresses below, which live on those veth pairs.
#
#   root namespace (the host)                       namespaces
#   cwdemo-h1 10.233.0.1/28   <── veth ──>  cwdemo-a0 10.233.0.2   in cwdemo-alice
#   cwdemo-h2 10.233.0.17/28  <── veth ──>  cwdemo-m0 10.233.0.18  in cwdemo-mallory
#
# Usage: demo.sh PATH/TO/connwatchd    (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 1 ] || [ ! -x "$1" ]; then cw_usage "PATH/TO/connwatchd"; fi
BIN=$(realpath "$1")
cw_require_root
cw_require_tools ip nmap flock timeout python3

if [ -t 1 ]; then
    B=$'\e[1m' D=$'\e[2m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'
else
    B='' D='' G='' R='' N=''
fi
say() { printf '\n%s==> %s%s\n' "$B" "$*" "$N"; }
note() { printf '    %s\n' "$*"; }
ok() { printf '    %s✔ %s%s\n' "$G" "$*" "$N"; }
die() {
    printf '    %s✘ %s%s\n' "$R" "$*" "$N"
    if [ -n "${LOG:-}" ] && [ -f "$LOG" ]; then
        echo "    connwatchd's output so far:"
        sed 's/^/      /' "$LOG"
    fi
    exit 1
}

cw_take_lock /tmp/cwdemo.lock 60
PIDFILE=/tmp/cwdemo.connwatchd.pid
LISTEN_PIDFILE=/tmp/cwdemo.listener.pid
cw_pidfile_reap $PIDFILE "--interface cwdemo-h1"
cw_pidfile_reap $LISTEN_PIDFILE "/listen.ready"
cw_workdir /tmp/cwdemo
LOG=$WORK/connwatchd.log
# The preamble's EXIT trap, with a word about what was removed.
demo_exit() {
    local rc=$?
    say "Cleaning up"
    cw_cleanup
    if ip netns list | grep -q '^cwdemo-' || ip link show | grep -q ' cwdemo-'; then
        note "some cwdemo-* namespaces or links are still being removed by the kernel"
    else
        ok "the namespaces, veth pairs and processes of this demo are gone"
    fi
    exit "$rc"
}
trap demo_exit EXIT

HOST=10.233.0.1 ALICE=10.233.0.2 HOST_M=10.233.0.17 MALLORY=10.233.0.18 PORT=8080

# connwatchd's output: stdout (events) and stderr (notices) both go to $LOG; this
# shows what was added since the last call, so its lines appear between the steps
# that caused them.
SHOWN=0
show_connwatchd() {
    local total
    total=$(wc -l <"$LOG")
    if [ "$total" -gt "$SHOWN" ]; then
        tail -n +"$((SHOWN + 1))" "$LOG" | head -n "$((total - SHOWN))" | sed "s/^/    ${D}connwatchd │${N} /"
        SHOWN=$total
    fi
}

t0=$(cw_now_ms)
printf '%sconnwatch demo%s: a port scan, caught and blocked in XDP, on a network that lives only\n' "$B" "$N"
printf 'inside this machine. None of the machine'"'"'s own interfaces is touched.\n'

say "Building the network: two namespaces, two veth pairs"
cw_ns_create cwdemo-alice
cw_ns_create cwdemo-mallory
cw_veth cwdemo-h1 cwdemo-alice cwdemo-a0
cw_veth cwdemo-h2 cwdemo-mallory cwdemo-m0
cw_addr cwdemo-h1 $HOST/28
cw_addr cwdemo-h2 $HOST_M/28
cw_addr cwdemo-alice cwdemo-a0 $ALICE/28
cw_addr cwdemo-mallory cwdemo-m0 $MALLORY/28
cw_default_route cwdemo-alice $HOST
cw_default_route cwdemo-mallory $HOST_M
note "host    $HOST on cwdemo-h1, $HOST_M on cwdemo-h2"
note "alice   $ALICE   (namespace cwdemo-alice), a client"
note "mallory $MALLORY  (namespace cwdemo-mallory), a scanner"

say "Starting a small TCP service on the host: $HOST port $PORT"
cw_listen 300 "$WORK/listen.ready" "$HOST:$PORT"
cw_pidfile_track $LISTEN_PIDFILE "$CW_LISTEN_PID"
cw_wait_for_line "$WORK/listen.ready" '^ready$' 10 "$CW_LISTEN_PID" || die "the service did not start"
cw_connect cwdemo-mallory $HOST $PORT 5 >/dev/null || die "mallory cannot reach the service"
ok "it answers (mallory can reach it too, for now)"

say "Starting connwatchd on cwdemo-h1 and cwdemo-h2"
note "\$ connwatchd --interface cwdemo-h1 --interface cwdemo-h2 --log-target stdout --block-duration 10m"
# Its own (empty) configuration, control socket, state and pinned maps: the demo
# neither reads nor touches those of a connwatchd installed on this machine.
cw_isolation "$BIN" "$WORK" cwdemo
"$BIN" "${CW_ISOLATE[@]}" --interface cwdemo-h1 --interface cwdemo-h2 --log-target stdout \
    --block-duration 10m >"$LOG" 2>&1 9>&- &
DPID=$!
cw_on_cleanup "cw_kill $DPID 5"
cw_pidfile_track $PIDFILE $DPID
cw_wait_for_line "$LOG" '^connwatchd: (.*, )?watching cwdemo-h1 ' 20 "$DPID" || die "connwatchd did not start"
show_connwatchd
ok "attached: $(ip -d link show dev cwdemo-h1 | grep -oE 'prog/xdp id [0-9]+' | head -1) on cwdemo-h1"

say "alice opens one connection to $HOST:$PORT"
sport=$(cw_connect cwdemo-alice $HOST $PORT 5) || die "alice could not connect"
cw_wait_for_line "$LOG" "New connection: $(cw_regex_escape $ALICE):$sport -> " 10 "$DPID" ||
    die "connwatchd did not report alice's connection"
show_connwatchd
ok "reported the moment its SYN reached cwdemo-h1"

say "mallory scans the host: nmap -sS -n -Pn -p 1-100 --min-rate 200 $HOST"
note "(a SYN scan: one SYN to each of 100 ports; more than 3 distinct ports within 60 s is a scan)"
timeout 90 ip netns exec cwdemo-mallory nmap -sS -n -Pn -p 1-100 --min-rate 200 --max-retries 1 \
    --host-timeout 30s $HOST >"$WORK/nmap.log" 2>&1 || die "nmap failed: $(cat "$WORK/nmap.log")"
grep -E "^(PORT|[0-9]+/tcp|Not shown|All |Nmap done)" "$WORK/nmap.log" | sed "s/^/    ${D}nmap │${N} /"
cw_wait_for_line "$LOG" "Blocked $(cw_regex_escape $MALLORY) until" 10 "$DPID" ||
    die "connwatchd did not report and block the scan"
show_connwatchd
ok "the 4th distinct port made it a scan; mallory is dropped in XDP from that packet on"
note "(nmap saw the first few ports answer, then silence: every later probe was dropped,"
note " which nmap can only call 'filtered')"

say "mallory tries the service again"
if err=$(cw_connect cwdemo-mallory $HOST $PORT 2 2>&1); then
    die "mallory still got through"
fi
ok "no answer: ${err#*: }"

say "alice is not affected"
sport=$(cw_connect cwdemo-alice $HOST $PORT 5) || die "alice could not connect"
cw_wait_for_line "$LOG" "New connection: $(cw_regex_escape $ALICE):$sport -> " 10 "$DPID" ||
    die "connwatchd did not report alice's connection"
show_connwatchd
ok "connected, and reported"

say "Stopping connwatchd (SIGTERM)"
kill -TERM $DPID
cw_wait_exit $DPID 10 || die "connwatchd did not stop within 10 s"
show_connwatchd
[ "$CW_EXIT_STATUS" = 0 ] || die "connwatchd exited with status $CW_EXIT_STATUS"
if cw_xdp_attached cwdemo-h1 || cw_xdp_attached cwdemo-h2; then
    die "an XDP program is still attached"
fi
ok "exited 0; no XDP program is attached to cwdemo-h1 or cwdemo-h2 any more"
cw_connect cwdemo-mallory $HOST $PORT 5 >/dev/null || die "mallory still cannot connect"
ok "with nothing attached, mallory's packets reach the host again"

say "Done in $((($(cw_now_ms) - t0) / 1000)) s."
