#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Faults, each with real traffic where it matters and each bounded: kill -9 under
# traffic and a restart; bpffs not mounted; another XDP program already on the
# interface; the ring buffer overflowing while connwatchd is stopped; a full
# blocklist; a full allowlist at start; state.json truncated, garbage, on a
# read-only file system and on a full one; a SIGHUP storm; hundreds of control
# clients at once, clients that never send or never read, a 100 MB request.
# (service_test.sh has kill -9 without traffic, a reboot, a full allowlist on
# reload and an interface re-created; netns_test.sh a second connwatchd.)
#
#   root namespace                       cwft-a
#   cwft-h1 10.241.0.1/24  <── veth ──>  cwft-a0 10.241.0.2 (and .10-.29 as extra sources)
#
# Usage: fault_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
cw_require_root
cw_require_tools ip nmap flock timeout unshare nsenter findmnt mount clang python3
cw_take_lock /tmp/cwft-fault.lock 280
# A run killed outright leaves its state tmpfs mounted: unmount it, or the
# removal of its work directory fails.
while read -r m; do umount -l "$m"; done < <(findmnt -rn -o TARGET | grep -E '^/tmp/cwft\.[A-Za-z0-9]{6}/state$' || true)
cw_workdir /tmp/cwft
PIDFILE=/tmp/cwft-fault.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwft."
cw_pidfile_reap /tmp/cwft-fault.listener.pid "/listen.ready"

H=10.241.0.1 A=10.241.0.2 PORT=9090
CONF=$WORK/connwatchd.conf
SOCK=$WORK/control.sock
STATE=$WORK/state
PIN=/sys/fs/bpf/cwft-fault
E() { cw_regex_escape "$1"; }

# ---- the test bed -------------------------------------------------------------------
cw_ns_create cwft-a
cw_veth cwft-h1 cwft-a cwft-a0
cw_addr cwft-h1 $H/24
cw_addr cwft-a cwft-a0 $A/24
for i in $(seq 10 29); do ip -n cwft-a addr add "10.241.0.$i/24" dev cwft-a0; done
# A second pair, for the instances that start beside the running one.
ip link add cwft-y1 type veth peer name cwft-y2
cw_on_cleanup "cw_link_destroy cwft-y1"
ip link set cwft-y1 up
ip link set cwft-y2 up
cw_listen 400 "$WORK/listen.ready" $H:$PORT
echo $CW_LISTEN_PID >/tmp/cwft-fault.listener.pid
cw_wait_until 10 test -s "$WORK/listen.ready" || cw_setup_fail "listener"

rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
# The state directory on a tmpfs of its own: case_state_unwritable makes it
# read-only and then full; and a manual block, saved at once with fsync, costs
# ~20 ms on this machine's disk but nothing here.
mkdir -p "$STATE"
mount -t tmpfs -o size=4m,mode=0700 cwft-state "$STATE"
cw_on_cleanup "umount -l $STATE"
# Written whole and renamed into place, as an operator's tool should: a reload
# that reads a half-written file applies what it reads (a file cut before its
# interface line means the default route's interface).
write_conf() {
    cat >"$CONF.new" <<EOF
interface = cwft-h1
threshold = ${1:-3}
window = 60s
block-duration = 10m
log-target = stdout
control-socket = $SOCK
state-dir = $STATE
pin-dir = $PIN
metrics-listen =
EOF
    mv "$CONF.new" "$CONF"
}
write_conf

DPID=
# start_daemon [OPTION...]: starts connwatchd and waits for its own "Started"
# line (not an earlier run's).
start_daemon() {
    local rc=0
    cw_daemon_start 15 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" --config "$CONF" "$@" || rc=1
    DPID=$CW_DAEMON_PID
    return $rc
}
stop_daemon() { cw_daemon_stop "$DPID" 10; }
ctl() { "$CTL" --socket "$SOCK" "$@"; }
can_connect() { cw_connect cwft-a $H $PORT 2 "${1:-$A}" >/dev/null 2>&1; }
cannot_connect() {
    local err
    if err=$(cw_connect cwft-a $H $PORT 2 "${1:-$A}" 2>&1 >/dev/null); then return 1; fi
    [[ $err == *"timed out"* ]]
}
# scan SRC FIRST LAST: SYNs from SRC to ports FIRST..LAST (nmap -S from an
# address of cwft-a0), detected as a scan.
scan() {
    timeout 60 ip netns exec cwft-a nmap -sS -n -Pn -e cwft-a0 -S "$1" -p "$2-$3" --max-retries 0 $H \
        >/dev/null 2>&1 || true
}
counter() { ctl --json status | "$CW_PY" -c "import json,sys; print(json.load(sys.stdin)['counters'].get('$1', 0))"; }
fds() { find "/proc/$DPID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"; }
# Under AddressSanitizer (tests/sanitize/run.sh sets ASAN_OPTIONS) freed memory
# waits in a quarantine of up to 256 MiB, so RSS says nothing about growth:
# the memory bounds are not checked there; LeakSanitizer checks at exit instead.
memory_checked() { [ -z "${ASAN_OPTIONS:-}" ]; }
check_fail_note() { cw_pid_alive "$DPID" || echo " (connwatchd is not running)"; }

start_daemon || cw_setup_fail "connwatchd did not start: $(cat "$WORK/err")"
echo "# connwatchd pid $DPID"

# ---- cases -----------------------------------------------------------------------------

# kill -9 while connections and a scan are under way: after a restart the blocks
# (automatic and manual, with their reasons) and the runtime allow entry are all
# there, the scanner is still dropped and new traffic is reported.
case_kill9_traffic() {
    ctl block 10.241.0.11 --reason "manual before the crash" >/dev/null || why "block exited $?" || return 1
    ctl allow 198.51.100.0/24 >/dev/null || why "allow exited $?" || return 1
    scan 10.241.0.10 1 6
    cw_wait_for_line "$WORK/out" "Port scan detected: $(E 10.241.0.10) -> " 10 "$DPID" ||
        why "the scan from 10.241.0.10 was not detected" || return 1
    # Traffic keeps flowing while the daemon is killed: 200 connections, bounded.
    ip netns exec cwft-a "$CW_PY" - $H $PORT 9>&- <<'EOF' &
import socket, sys
for i in range(200):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((sys.argv[1], int(sys.argv[2])))
    except OSError:
        pass
    s.close()
EOF
    local traffic=$!
    cw_wait_until 10 eval '[ "$(cw_count_lines "$WORK/out" "New connection: $(E $A):")" -ge 20 ]' ||
        why "the traffic is not reported" || return 1
    kill -9 "$DPID"
    cw_wait_exit "$DPID" 10 || true
    start_daemon || why "no restart: $(tail -3 "$WORK/err")" || return 1
    wait $traffic || true
    cw_wait_for_line "$WORK/err" "Kept 2 blocks from the previous run" 5 "$DPID" ||
        why "no 'Kept 2 blocks': $(tail -3 "$WORK/err")" || return 1
    local list
    list=$(ctl list)
    [[ $list == *"10.241.0.10/32"*scan* ]] || why "the automatic block is gone: $list" || return 1
    [[ $list == *"manual before the crash"* ]] || why "the manual block's reason is gone: $list" || return 1
    [[ $(ctl list --json) == *'"198.51.100.0/24"'* ]] || why "the runtime allow entry is gone: $list" || return 1
    cannot_connect 10.241.0.10 || why "the scanner connects after the restart" || return 1
    cannot_connect 10.241.0.11 || why "the manually blocked source connects after the restart" || return 1
    local before
    before=$(cw_count_lines "$WORK/out" "New connection: $(E 10.241.0.12):")
    can_connect 10.241.0.12 || why "10.241.0.12 cannot connect" || return 1
    cw_wait_until 5 eval '[ "$(cw_count_lines "$WORK/out" "New connection: $(E 10.241.0.12):")" -gt "$before" ]' ||
        why "new traffic after the restart is not reported" || return 1
    ctl flush >/dev/null
    ctl disallow 198.51.100.0/24 >/dev/null
}
check "kill -9 under traffic: blocks, reasons and allow entries survive the restart" case_kill9_traffic

# No bpffs at /sys/fs/bpf (its own mount namespace, where it is unmounted):
# connwatchd mounts it and pins there. A pin-dir whose parent is not bpffs: it
# says blocks will not survive a restart, and runs.
case_no_bpffs() {
    local out pid
    unshare -m --propagation private bash -c '
        umount /sys/fs/bpf 2>/dev/null
        findmnt -n /sys/fs/bpf >/dev/null && exit 3
        exec "$@"' _ "$BIN" --interface cwft-y1 --log-target stdout --control-socket "$WORK/nobpf.sock" \
        --state-dir "$WORK/nobpf.state" --pin-dir /sys/fs/bpf/cwft-fault-nobpf --metrics-listen= \
        --xdp-mode generic >"$WORK/nobpf.out" 2>&1 9>&- &
    pid=$!
    cw_wait_for_line "$WORK/nobpf.out" "Started" 15 $pid || { cw_kill $pid; why "did not start: $(cat "$WORK/nobpf.out")"; return 1; }
    out=$(nsenter -t $pid -m findmnt -n -o FSTYPE /sys/fs/bpf) || true
    local pinned=0
    nsenter -t $pid -m test -e /sys/fs/bpf/cwft-fault-nobpf/block_addr && pinned=1
    cw_kill $pid
    [ "$out" = bpf ] || why "/sys/fs/bpf in its namespace is '$out', not bpf" || return 1
    [ $pinned = 1 ] || why "nothing pinned in the bpffs it mounted" || return 1
    ! grep -q "not a bpf filesystem" "$WORK/nobpf.out" || why "it warned: $(cat "$WORK/nobpf.out")" || return 1
    # Elsewhere it does not mount anything: it says what it costs.
    mkdir -p "$WORK/notbpf"
    "$BIN" --interface cwft-y1 --log-target stdout --control-socket "$WORK/nobpf.sock" \
        --state-dir "$WORK/nobpf.state" --pin-dir "$WORK/notbpf/pins" --metrics-listen= \
        --xdp-mode generic >"$WORK/nobpf2.out" 2>&1 9>&- &
    pid=$!
    cw_wait_for_line "$WORK/nobpf2.out" "Started" 15 $pid || { cw_kill $pid; why "did not start: $(cat "$WORK/nobpf2.out")"; return 1; }
    cw_kill $pid
    grep -q "$WORK/notbpf is not a bpf filesystem (mount -t bpf bpf /sys/fs/bpf): blocks will not survive a restart" \
        "$WORK/nobpf2.out" || why "no clear warning: $(cat "$WORK/nobpf2.out")" || return 1
    echo "  $(grep "not a bpf" "$WORK/nobpf2.out")"
}
check "bpffs not mounted: mounted at /sys/fs/bpf, elsewhere a clear warning" case_no_bpffs

# Someone else's XDP program on the interface: connwatchd refuses with a message
# naming the interface, and leaves the other program attached.
case_foreign_xdp() {
    cat >"$WORK/other.bpf.c" <<'EOF'
/* No headers: 2 is XDP_PASS. */
__attribute__((section("xdp"), used)) int other(void *ctx) { return 2; }
char LICENSE[] __attribute__((section("license"), used)) = "GPL";
EOF
    clang -O2 -target bpf -c "$WORK/other.bpf.c" -o "$WORK/other.bpf.o" 2>"$WORK/clang.err" ||
        why "clang: $(cat "$WORK/clang.err")" || return 1
    ip link add cwft-x1 type veth peer name cwft-x2
    cw_on_cleanup "cw_link_destroy cwft-x1"
    ip link set cwft-x1 up
    ip link set dev cwft-x1 xdpgeneric obj "$WORK/other.bpf.o" sec xdp || why "ip link set xdp failed" || return 1
    local before out rc=0
    before=$(ip -d link show dev cwft-x1 | grep -o 'prog/xdp id [0-9]*')
    out=$(timeout 30 "$BIN" --interface cwft-x1 --log-target stdout --control-socket "$WORK/x.sock" \
        --state-dir "$WORK/x.state" --pin-dir /sys/fs/bpf/cwft-fault-x --metrics-listen= 2>&1) || rc=$?
    rm -rf /sys/fs/bpf/cwft-fault-x
    local after
    after=$(ip -d link show dev cwft-x1 | grep -o 'prog/xdp id [0-9]*')
    ip link del cwft-x1
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || why "exit $rc, expected a failure at once: $out" || return 1
    [[ $out =~ Another\ XDP\ program.*cwft-x1 ]] || why "the message does not say so: $out" || return 1
    [ -n "$before" ] && [ "$before" = "$after" ] || why "the other program was touched ($before -> $after)" || return 1
    echo "  exit $rc: $(grep "Another XDP" <<<"$out")"
}
check "another XDP program on the interface: refused with a clear message, left alone" case_foreign_xdp

# The ring buffer (8192 events) overflows while connwatchd is stopped: the loss
# is counted and said, the daemon carries on, and a scan made meanwhile is still
# blocked by the kernel alone.
case_ringbuf_overflow() {
    local lost0
    lost0=$(counter events_lost) || why "status failed" || return 1
    kill -STOP "$DPID"
    # 12000 SYNs from distinct source ports to a closed port: each a new
    # attempt, one port, so no scan. Refused at once, so fast.
    ip netns exec cwft-a "$CW_PY" - $H 9>&- <<'EOF'
import socket, sys
for i in range(12000):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(1)
    try:
        s.bind(("10.241.0.13", 20000 + i))
        s.connect((sys.argv[1], 9))
    except OSError:
        pass
    s.close()
EOF
    scan 10.241.0.14 1 6
    local blocked=0
    cannot_connect 10.241.0.14 && blocked=1
    kill -CONT "$DPID"
    [ $blocked = 1 ] || why "the scanner connects while connwatchd is stopped" || return 1
    cw_wait_for_line "$WORK/err" "events lost: the ring buffer was full" 10 "$DPID" ||
        why "no 'events lost' warning" || return 1
    local lost
    lost=$(counter events_lost)
    [ "$lost" -gt "$lost0" ] || why "events_lost did not move ($lost0 -> $lost)" || return 1
    cw_wait_until 10 eval '[[ $(ctl list) == *"10.241.0.14/32"* ]]' ||
        why "the block made meanwhile is not listed" || return 1
    can_connect 10.241.0.15 || why "10.241.0.15 cannot connect" || return 1
    echo "  $lost events lost, counted; the scanner blocked by the kernel alone"
    ctl flush >/dev/null
}
check "the ring buffer overflowing: counted, said, the daemon fine, scans still blocked" case_ringbuf_overflow

# A blocklist of 4 (max-blocks): full, a manual block is refused with the fix
# and a scan is reported "not blocking: the blocklist is full"; the daemon
# carries on, and blocks again once there is room.
case_blocklist_full() {
    stop_daemon || why "no stop" || return 1
    rm -rf "$PIN"
    start_daemon --max-blocks 4 || why "no start with max-blocks 4: $(tail -3 "$WORK/err")" || return 1
    local i err rc=0
    for i in 1 2 3 4; do ctl block 203.0.113.$i >/dev/null || why "block $i exited $?" || return 1; done
    err=$(ctl block 203.0.113.5 2>&1) || rc=$?
    [ $rc = 1 ] && [[ $err == *"the blocklist is full (max-blocks 4): unblock entries or raise max-blocks"* ]] ||
        why "a fifth block: exit $rc ($err)" || return 1
    scan 10.241.0.16 1 6
    cw_wait_for_line "$WORK/out" "Not blocking $(E 10.241.0.16): the blocklist is full" 10 "$DPID" ||
        why "no 'Not blocking ...: the blocklist is full' line" || return 1
    can_connect 10.241.0.16 || why "the unblocked scanner cannot connect" || return 1
    ctl unblock 203.0.113.1 >/dev/null
    ctl unblock 10.241.0.16 >/dev/null 2>&1 || true # judged afresh
    scan 10.241.0.17 1 6
    cw_wait_until 10 eval '[[ $(ctl list) == *"10.241.0.17/32"* ]]' || why "no block once there was room" || return 1
    cannot_connect 10.241.0.17 || why "10.241.0.17 connects" || return 1
    ctl flush >/dev/null
    stop_daemon
    rm -rf "$PIN"
    start_daemon || why "no restart" || return 1
}
check "a full blocklist: refusals say so, the scan is still reported, room again blocks again" case_blocklist_full

# More allow entries than the trie holds, at start: a clear error naming the
# limit, exit non-zero, nothing attached.
case_allowlist_full_start() {
    local out rc=0 i
    for ((i = 0; i < 4200; i++)); do echo "allow = 10.200.$((i / 256)).$((i % 256))"; done >"$WORK/allow.conf"
    out=$(timeout 30 "$BIN" --config "$WORK/allow.conf" --interface cwft-y1 --log-target stdout \
        --control-socket "$WORK/al.sock" --state-dir "$WORK/al.state" --pin-dir /sys/fs/bpf/cwft-fault-al \
        --metrics-listen= 2>&1) || rc=$?
    rm -rf /sys/fs/bpf/cwft-fault-al
    [ "$rc" != 0 ] && [ "$rc" != 124 ] || why "exit $rc: $out" || return 1
    [[ $out == *"do not fit the allowlist, which holds at most 4096"* ]] || why "message: $out" || return 1
    echo "  exit $rc: $(tail -1 <<<"$out")"
}
check "a full allowlist at start: a clear error, no start" case_allowlist_full_start

# ---- the state file ------------------------------------------------------------------

# restart_with_state CONTENT: stops connwatchd, replaces state.json with CONTENT
# (printf format), starts it again.
restart_with_state() {
    stop_daemon || return 1
    # shellcheck disable=SC2059
    printf "$1" >"$STATE/state.json"
    rm -f "$STATE/state.json.corrupt"
    start_daemon
}

# state.json truncated, or garbage: said with the fix, the file kept aside as
# .corrupt, and nothing else lost (the pinned blocks are all there).
case_state_bad() {
    ctl block 10.241.0.18 --reason "kept in bpffs" >/dev/null || why "block exited $?" || return 1
    local good what content
    good=$(cat "$STATE/state.json")
    for what in truncated garbage; do
        if [ $what = truncated ]; then content=${good:0:$((${#good} / 2))}; else content='\x00\x01garbage{{{'; fi
        restart_with_state "$content" || why "$what: no restart: $(tail -3 "$WORK/err")" || return 1
        cw_wait_for_line "$WORK/err" "the state file $(E "$STATE/state.json") could not be read .*moved it to $(E "$STATE/state.json.corrupt") and started without it" 5 "$DPID" ||
            why "$what: no clear warning: $(tail -3 "$WORK/err")" || return 1
        [ -s "$STATE/state.json.corrupt" ] || why "$what: the file was not kept aside" || return 1
        [[ $(ctl list) == *"10.241.0.18/32"* ]] || why "$what: the pinned block was lost" || return 1
        cannot_connect 10.241.0.18 || why "$what: 10.241.0.18 connects" || return 1
    done
    # A good file is written again at once.
    cw_wait_until 5 eval '"$CW_PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$STATE/state.json"' ||
        why "no good state file written again" || return 1
    ctl flush >/dev/null
}
check "state.json truncated or garbage: a clear warning, kept aside, nothing else lost" case_state_bad

# The state directory's tmpfs read-only, then full (8 KiB). Saving fails with
# a warning (once, not every second), the daemon carries on with every block in
# the kernel, the last good file stays as it was, and once there is room again
# everything is written.
case_state_unwritable() {
    ctl block 10.241.0.19 --reason "before read-only" >/dev/null || why "block exited $?" || return 1
    local good
    good=$(cat "$STATE/state.json")
    # A change goes to the journal beside the snapshot (docs/CONTROL.md), written
    # before the answer.
    grep -qs "before read-only" "$STATE/state.json" "$STATE/state.json.journal" ||
        why "the block is in neither state.json nor its journal" || return 1
    mount -o remount,ro "$STATE"
    local w0
    w0=$(cw_count_lines "$WORK/err" "will retry every second")
    ctl block 10.241.0.20 --reason "while read-only" >/dev/null || { mount -o remount,rw "$STATE"; why "block on a read-only state exited $?"; return 1; }
    cw_wait_until 5 eval '[ "$(cw_count_lines "$WORK/err" "will retry every second")" -gt "$w0" ]' ||
        { mount -o remount,rw "$STATE"; why "no warning for a read-only state directory"; return 1; }
    grep "will retry every second" "$WORK/err" | tail -1 | sed 's/^/  /'
    [ "$(cat "$STATE/state.json")" = "$good" ] || { mount -o remount,rw "$STATE"; why "the last good file changed"; return 1; }
    mount -o remount,rw "$STATE"
    cw_wait_for_line "$WORK/err" "Wrote $(E "$STATE/state.json") again after the failures above" 5 "$DPID" ||
        why "not written again once writable" || return 1
    grep -q "while read-only" "$STATE/state.json" || why "the block made meanwhile is not in the file" || return 1
    # Said once for the whole outage, although it was retried every second.
    [ "$(cw_count_lines "$WORK/err" "Read-only file system")" = 1 ] ||
        why "the read-only warning was repeated" || return 1

    # Full: 8 KiB, and 100 blocks need more.
    mount -o remount,size=8k "$STATE"
    w0=$(cw_count_lines "$WORK/err" "No space left on device")
    local i
    for i in $(seq 1 100); do
        ctl block 198.18.0.$i --reason "disk full test block number $i" >/dev/null || { mount -o remount,size=4m "$STATE"; why "block $i exited $?"; return 1; }
    done
    cw_wait_until 5 eval '[ "$(cw_count_lines "$WORK/err" "No space left on device")" -gt "$w0" ]' ||
        { mount -o remount,size=4m "$STATE"; why "no warning for a full state directory (had $w0)"; return 1; }
    grep "No space left" "$WORK/err" | tail -1 | sed 's/^/  /'
    "$CW_PY" -c "import json,sys; json.load(open(sys.argv[1]))" "$STATE/state.json" ||
        { mount -o remount,size=4m "$STATE"; why "the state file is not valid JSON while the disk is full"; return 1; }
    [ "$(ctl list --json | grep -o '198\.18\.0\.' | wc -l)" = 100 ] ||
        { mount -o remount,size=4m "$STATE"; why "blocks missing from the daemon"; return 1; }
    cannot_connect 10.241.0.19 || { mount -o remount,size=4m "$STATE"; why "10.241.0.19 connects"; return 1; }
    mount -o remount,size=4m "$STATE"
    cw_wait_until 5 eval '[ "$(grep -o "disk full test block" "$STATE/state.json" | wc -l)" = 100 ]' ||
        why "not all 100 blocks written once there was room" || return 1
    [ ! -e "$STATE/state.json.tmp" ] || why "state.json.tmp left behind" || return 1
    ctl flush >/dev/null
}
check "state directory read-only, then full: said, nothing lost, written when possible" case_state_unwritable

# ---- signals and the control socket ---------------------------------------------------

# Two storms of 200 SIGHUPs, each after a new configuration: alive, the last
# configuration applied, no descriptor growth, and no memory growth from one
# storm to the next.
case_sighup_storm() {
    local fd0 rss1 rss2 i watched0
    fd0=$(fds)
    watched0=$(cw_count_lines "$WORK/err" "Interface '.*' is watched|changes take effect when connwatchd restarts")
    for round in 1 2; do
        for ((i = 0; i < 200; i++)); do
            write_conf $((4 + i % 5))
            kill -HUP "$DPID"
        done
        write_conf 9
        kill -HUP "$DPID"
        cw_wait_until 15 eval '[[ $(ctl status) == *"more than 9 ports"* ]]' ||
            why "round $round: threshold 9 not applied: $(ctl status 2>&1 | head -3)" || return 1
        [ $round = 1 ] && rss1=$(rss_kb)
    done
    rss2=$(rss_kb)
    cw_pid_alive "$DPID" || why "connwatchd died" || return 1
    [ "$(fds)" = "$fd0" ] || why "open descriptors $fd0 -> $(fds)" || return 1
    [ "$(cw_count_lines "$WORK/err" "Interface '.*' is watched|changes take effect when connwatchd restarts")" = "$watched0" ] ||
        why "a reload saw another configuration than the ones written" || return 1
    ! memory_checked || [ $((rss2 - rss1)) -lt 2048 ] || why "RSS grew from $rss1 to $rss2 KiB over 200 more reloads" || return 1
    echo "  $(cw_count_lines "$WORK/err" "^connwatchd: Reloaded") reloads, $fd0 descriptors; RSS $rss1 -> $rss2 KiB"
    write_conf
    kill -HUP "$DPID"
    cw_wait_until 15 eval '[[ $(ctl status) == *"more than 3 ports"* ]]' || why "threshold 3 not restored" || return 1
}
check "a SIGHUP storm: alive, the last configuration applied, nothing grows" case_sighup_storm

# 300 control clients at once: each gets an answer or a clear "busy", none
# hangs, and the daemon serves the next one as usual.
case_many_clients() {
    local out
    out=$("$CW_PY" - "$SOCK" <<'EOF'
import json, selectors, socket, sys, time
sel = selectors.DefaultSelector()
socks = []
for i in range(300):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b'{"command": "status"}\n')
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, [b""])
    socks.append(s)
ok = busy = other = 0
pending = len(socks)
deadline = time.monotonic() + 30
while pending and time.monotonic() < deadline:
    for key, _ in sel.select(timeout=1):
        buf = key.data
        try:
            chunk = key.fileobj.recv(65536)
        except OSError:
            chunk = b""
        buf[0] += chunk
        if chunk and not buf[0].endswith(b"\n"):
            continue
        sel.unregister(key.fileobj)
        pending -= 1
        try:
            j = json.loads(buf[0])
        except ValueError:
            other += 1
            continue
        if j.get("ok"):
            ok += 1
        elif "busy" in j.get("error", ""):
            busy += 1
        else:
            other += 1
print(ok, busy, other, pending)
EOF
) || why "the client script failed" || return 1
    local ok busy other pending
    read -r ok busy other pending <<<"$out"
    [ "$pending" = 0 ] || why "$pending clients without an answer after 30 s ($out)" || return 1
    [ "$other" = 0 ] || why "$other answers neither status nor busy" || return 1
    [ "$ok" -ge 1 ] || why "no client was served" || return 1
    ctl status >/dev/null || why "status after the crowd failed" || return 1
    echo "  $ok answered, $busy told busy, none left waiting"
}
check "300 control clients at once: every one answered or told busy" case_many_clients

# Clients that connect and never send, more than the daemon takes at once: told
# busy meanwhile, they are cut off after the request timeout and everyone is
# served again -- while they still hold their sockets open.
case_silent_clients() {
    "$CW_PY" - "$SOCK" "$WORK/silent.ready" "$WORK/silent.result" 9>&- <<'EOF' &
import socket, sys, time
socks = []
for i in range(40):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    socks.append(s)
open(sys.argv[2], "w").write("ready\n")
deadline = time.monotonic() + 30
closed = 0
for s in socks:
    s.settimeout(max(0.1, deadline - time.monotonic()))
    try:
        data = s.recv(4096)
        closed += 1  # EOF after the timeout, or a "busy" line
    except OSError:
        pass
open(sys.argv[3], "w").write(f"{closed}\n")
EOF
    local holder=$!
    cw_wait_until 10 test -s "$WORK/silent.ready" || why "the silent clients did not connect" || return 1
    cw_wait_until 20 eval 'ctl status >/dev/null 2>&1' || { kill $holder; why "status refused for 20 s"; return 1; }
    wait $holder || true
    [ "$(cat "$WORK/silent.result")" = 40 ] || why "only $(cat "$WORK/silent.result") of 40 silent clients were cut off or refused" || return 1
    echo "  40 silent clients cut off or refused; status served again"
}
check "clients that never send are cut off and the daemon serves again" case_silent_clients

# Clients that ask for a long list and never read it: the daemon serves others
# meanwhile, cuts them off once they have taken nothing for 10 s, and keeps no
# descriptor of theirs.
case_unread_answers() {
    local fd0 out
    fd0=$(fds)
    # 700 blocks with the longest reason, straight over the socket: a list
    # answer of ~300 KB, more than a socket buffer holds.
    out=$("$CW_PY" - "$SOCK" <<'EOF'
import json, socket, sys
bad = 0
for i in range(700):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(json.dumps({"command": "block", "prefix": f"198.18.{i // 250}.{i % 250 + 1}",
                          "reason": "r" * 256}).encode() + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        data = s.recv(4096)
        if not data:
            break
        answer += data
    bad += not json.loads(answer or b"{}").get("ok")
    s.close()
print(bad)
EOF
) || why "the block script failed" || return 1
    [ "$out" = 0 ] || why "$out of 700 blocks refused" || return 1
    local size
    size=$(ctl list --json | wc -c)
    [ "$size" -gt 262144 ] || why "the list answer is only $size bytes" || return 1
    "$CW_PY" - "$SOCK" "$WORK/unread.ready" "$WORK/unread.result" 9>&- <<'EOF' &
import select, socket, sys, time
socks = []
for i in range(20):
    s = socket.socket(socket.AF_UNIX)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(sys.argv[1])
    s.sendall(b'{"command": "list"}\n')
    socks.append(s)
open(sys.argv[2], "w").write("ready\n")
p = select.poll()
for s in socks:
    p.register(s, select.POLLRDHUP)
cut = set()
deadline = time.monotonic() + 40
while len(cut) < len(socks) and time.monotonic() < deadline:
    for fd, ev in p.poll(500):
        if ev & (select.POLLRDHUP | select.POLLHUP):
            cut.add(fd)
            p.unregister(fd)
open(sys.argv[3], "w").write(f"{len(cut)}\n")
EOF
    local holder=$!
    cw_wait_until 10 test -s "$WORK/unread.ready" || why "the readers did not connect" || return 1
    ctl status >/dev/null || { kill $holder; why "status failed while 20 answers sat unread"; return 1; }
    ctl list --json >/dev/null || { kill $holder; why "list failed while 20 answers sat unread"; return 1; }
    wait $holder || true
    [ "$(cat "$WORK/unread.result")" = 20 ] ||
        why "$(cat "$WORK/unread.result") of 20 non-readers cut off within 40 s" || return 1
    cw_wait_until 5 eval '[ "$(fds)" = "$fd0" ]' || why "descriptors $fd0 -> $(fds)" || return 1
    ctl flush >/dev/null
    echo "  20 unread answers of $size bytes: status and list served meanwhile, the readers cut off"
}
check "clients that never read their answer delay nobody and are cut off" case_unread_answers

# A 100 MB request: refused after the first 64 KiB, the connection closed, the
# daemon's peak memory barely moved.
case_huge_request() {
    local hwm0 out
    hwm0=$(awk '/^VmHWM/ {print $2}' "/proc/$DPID/status")
    out=$("$CW_PY" - "$SOCK" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.settimeout(20)
chunk = b"x" * (1 << 20)
sent = 0
try:
    while sent < 100 << 20:
        sent += s.send(chunk)
except OSError:
    pass
answer = b""
try:
    while not answer.endswith(b"\n"):
        data = s.recv(4096)
        if not data:
            break
        answer += data
except OSError:
    pass
print(sent >> 20, answer.decode(errors="replace").strip())
EOF
) || why "the client script failed" || return 1
    local sent=${out%% *} answer=${out#* }
    [[ $answer == *"request too large (at most 65536 bytes)"* ]] || why "answer: $out" || return 1
    [ "$sent" -lt 100 ] || why "all 100 MB were taken" || return 1
    local hwm
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$DPID/status")
    ! memory_checked || [ $((hwm - hwm0)) -lt 4096 ] || why "peak RSS grew from $hwm0 to $hwm KiB" || return 1
    ctl status >/dev/null || why "status afterwards failed" || return 1
    echo "  refused after ${sent} MiB sent; peak RSS $hwm0 -> $hwm KiB"
}
check "a 100 MB request: refused at 64 KiB, memory bounded" case_huge_request

case_stop() {
    stop_daemon || why "connwatchd did not stop on SIGTERM" || return 1
    [ "$CW_EXIT_STATUS" = 0 ] || why "connwatchd exited $CW_EXIT_STATUS after SIGTERM" || return 1
}
check "SIGTERM after all that: a clean exit (0)" case_stop

echo "# connwatchd stderr:"; sed 's/^/#   /' "$WORK/err" | grep -v "Reloaded" | tail -40
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
