#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test of connwatchd as a service, with real traffic: the control
# socket and connwatchctl (block, unblock, CIDR, --force, a scanner unblocked and
# scanning again, allow, access control), reload
# (SIGHUP and connwatchctl reload, good and bad configurations, an allowlist too
# large for the kernel), and persistence
# (kill -9 and restart, and a "reboot" that empties bpffs).
#
#   root namespace                      cwsv-a                 cwsv-b
#   cwsv-h1 10.235.1.1/24  <── veth ──> cwsv-a0 10.235.1.2
#   cwsv-h2 10.235.2.1/24  <── veth ──────────────────────────> cwsv-b0 10.235.2.2
#
# Usage: service_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 2 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl"; fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
cw_require_root
cw_require_tools ip nmap flock timeout setpriv groupadd python3
cw_take_lock /tmp/cwsv-service.lock 240
cw_workdir /tmp/cwsv
# nobody must be able to reach the socket's directory, so that the daemon's own
# credential check (not only the file mode) is what refuses it.
chmod 0755 "$WORK"
PIDFILE=/tmp/cwsv-service.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwsv."
cw_pidfile_reap /tmp/cwsv-service.listener.pid "/listen.ready"

H1=10.235.1.1 A=10.235.1.2 H2=10.235.2.1 B=10.235.2.2 PORT=9090
CONF=$WORK/connwatchd.conf
SOCK=$WORK/control.sock
STATE=$WORK/state
PIN=/sys/fs/bpf/cwsv-service
GROUP=cwsvtest
TS=$CW_TS_RE
E() { cw_regex_escape "$1"; }

# ---- the test bed -------------------------------------------------------------------
cw_ns_create cwsv-a
cw_ns_create cwsv-b
cw_veth cwsv-h1 cwsv-a cwsv-a0
cw_veth cwsv-h2 cwsv-b cwsv-b0
cw_addr cwsv-h1 $H1/24
cw_addr cwsv-a cwsv-a0 $A/24
cw_addr cwsv-h2 $H2/24
cw_addr cwsv-b cwsv-b0 $B/24
cw_default_route cwsv-a $H1
cw_default_route cwsv-b $H2

cw_listen 240 "$WORK/listen.ready" $H1:$PORT $H2:$PORT
echo $CW_LISTEN_PID >/tmp/cwsv-service.listener.pid
cw_wait_until 10 test -s "$WORK/listen.ready" || { echo "FAIL: setup: listener"; exit 1; }

# A group for the "member may use it" case; removed at cleanup.
groupdel $GROUP 2>/dev/null || true
groupadd --system $GROUP
cw_on_cleanup "groupdel $GROUP"

rm -rf "$PIN"
cw_on_cleanup "rm -rf $PIN"
cat >"$CONF" <<EOF
interface = cwsv-h1
interface = cwsv-h2
threshold = 3
window = 60s
block-duration = 10m
log-target = stdout
control-socket = $SOCK
control-group = $GROUP
state-dir = $STATE
pin-dir = $PIN
metrics-listen =
EOF

DPID=
# Starts connwatchd and waits for its own "Started" line (not an earlier run's).
start_daemon() {
    cw_daemon_start 15 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" --config "$CONF" ||
        cw_setup_fail "connwatchd did not start: $(cat "$WORK/err")"
    DPID=$CW_DAEMON_PID
}
ctl() { "$CTL" --socket "$SOCK" "$@"; }
can_connect() { cw_connect "$1" "$2" $PORT 2 >/dev/null 2>&1; }
cannot_connect() {
    # A timeout, not a refusal: a refusal would mean the listener is gone.
    local err
    if err=$(cw_connect "$1" "$2" $PORT 2 2>&1 >/dev/null); then return 1; fi
    [[ $err == *"timed out"* ]]
}

start_daemon
echo "# connwatchd pid $DPID"

# ---- cases -----------------------------------------------------------------------------

case_status() {
    local out
    out=$(ctl status) || { WHY="connwatchctl status exited $?"; return 1; }
    [[ $out == *"cwsv-h1 (native)"* && $out == *"cwsv-h2 (native)"* ]] ||
        { WHY="status does not show both interfaces: $out"; return 1; }
    [[ $out == *"more than 3 ports within 1m"* ]] || { WHY="status: $out"; return 1; }
    ctl status --json | "$CW_PY" -c 'import json,sys; j=json.load(sys.stdin); assert j["ok"] and j["threshold"]==3' ||
        { WHY="status --json is not the expected JSON"; return 1; }
    # rp-filter auto (the default): each interface's mode is what its rp_filter
    # sysctl and conf/all's give it, the larger, as the kernel reads them.
    local rp want=""
    rp=$(ctl status --json | "$CW_PY" -c '
import json, sys
names = {0: "off", 1: "strict", 2: "loose"}
def sysctl(n):
    with open("/proc/sys/net/ipv4/conf/%s/rp_filter" % n) as f:
        return int(f.read())
r = json.load(sys.stdin)["rp_filter"]
want = {i: names.get(max(sysctl("all"), sysctl(i)), "off") for i in ("cwsv-h1", "cwsv-h2")}
assert r["mode"] == "auto" and r["interfaces"] == want, "%s, not auto with %s" % (r, want)
print("auto (" + ", ".join(i + " " + m for i, m in sorted(want.items())) + ")" if r["active"] else "")
' 2>&1) || { WHY="status --json: rp_filter: $rp"; return 1; }
    # Active unless the route mirror failed (then the log says why and status says so).
    if [ -n "$rp" ]; then want="Rp-filter:   $rp"; else want="Rp-filter:   auto, not checking"; fi
    [[ $out == *"$want"* ]] || { WHY="status has no '$want': $out"; return 1; }
}
check "connwatchctl status shows interfaces and settings" case_status

case_block_unblock() {
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect before any block"; return 1; }
    ctl block $A --reason "test block" >/dev/null || { WHY="block exited $?"; return 1; }
    cannot_connect cwsv-a $H1 || { WHY="cwsv-a still connects after block"; return 1; }
    can_connect cwsv-b $H2 || { WHY="cwsv-b cannot connect while cwsv-a is blocked"; return 1; }
    local list
    list=$(ctl list)
    echo "$list" | grep -Eq "^$(E $A)/32 +manual +[0-9-]+ [0-9:]+|^$(E $A)/32 +manual +never +test block" ||
        { WHY="list does not show the manual block: $list"; return 1; }
    ctl unblock $A >/dev/null || { WHY="unblock exited $?"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect after unblock"; return 1; }
    grep -Eq "^${TS}Blocked $(E $A)/32 until removed \(manual: test block" "$WORK/out" ||
        { WHY="no 'Blocked ... (manual' line"; return 1; }
    grep -Eq "^${TS}Unblocked $(E $A)/32 \(unblocked" "$WORK/out" ||
        { WHY="no 'Unblocked' line"; return 1; }
}
check "connwatchctl block stops the traffic, unblock restores it" case_block_unblock

case_cidr() {
    # The /24 holds this host's own $H2: that needs --force (its neighbours would be cut off).
    local err rc=0
    err=$(ctl block 10.235.2.0/24 --duration 5m 2>&1) || rc=$?
    if [ $rc != 1 ] || [[ $err != *"covers $H2/32, an address of this host"*"--force"* ]]; then
        WHY="a /24 holding an own address without --force: exit $rc ($err)"
        return 1
    fi
    ctl block 10.235.2.0/24 --duration 5m --force >/dev/null || { WHY="CIDR block exited $?"; return 1; }
    cannot_connect cwsv-b $H2 || { WHY="cwsv-b still connects inside a blocked /24"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a (outside the /24) cannot connect"; return 1; }
    ctl list --json | "$CW_PY" -c '
import json,sys
j=json.load(sys.stdin)
b=[x for x in j["blocks"] if x["prefix"]=="10.235.2.0/24"]
assert b and b[0]["origin"]=="manual" and 250 <= b[0]["expires_in"] <= 300, j' ||
        { WHY="list --json does not show the /24 with its expiry"; return 1; }
    ctl unblock 10.235.2.0/24 >/dev/null || { WHY="unblock of the /24 exited $?"; return 1; }
    can_connect cwsv-b $H2 || { WHY="cwsv-b cannot connect after the /24 is unblocked"; return 1; }
}
check "a CIDR block drops the whole prefix and nothing else" case_cidr

case_force() {
    local err rc=0
    err=$(ctl block 0.0.0.0/0 2>&1) || rc=$?
    [ $rc = 1 ] || { WHY="block 0.0.0.0/0 without --force exited $rc, not 1"; return 1; }
    [[ $err == *"wider than /8"*"--force"* ]] || { WHY="message: $err"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect after the refusal"; return 1; }
    # Forced, it cuts off every IPv4 client (this test's own traffic too): lifted at once.
    ctl block 0.0.0.0/0 --force >/dev/null || { WHY="block 0.0.0.0/0 --force exited $?"; return 1; }
    local cut=0
    cannot_connect cwsv-a $H1 || cut=1
    ctl unblock 0.0.0.0/0 >/dev/null || { WHY="unblock 0.0.0.0/0 exited $?"; return 1; }
    [ $cut = 0 ] || { WHY="cwsv-a still connects with 0.0.0.0/0 blocked"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect after unblock 0.0.0.0/0"; return 1; }
    # ::/0 needs --force too, and never covers IPv4.
    rc=0
    err=$(ctl block ::/0 2>&1) || rc=$?
    if [ $rc != 1 ] || [[ $err != *"--force"* ]]; then WHY="block ::/0: exit $rc ($err)"; return 1; fi
    ctl block ::/0 --force >/dev/null || { WHY="block ::/0 --force exited $?"; return 1; }
    cut=0
    can_connect cwsv-a $H1 || cut=1
    ctl unblock ::/0 >/dev/null || { WHY="unblock ::/0 exited $?"; return 1; }
    [ $cut = 0 ] || { WHY="::/0 cut off the IPv4 client cwsv-a"; return 1; }
    # The operator's own ssh session: connwatchctl refuses before asking the daemon.
    rc=0
    err=$(SSH_CONNECTION="$A 50000 $H1 22" ctl block $A 2>&1) || rc=$?
    if [ $rc != 1 ] || [[ $err != *"where this ssh session comes from (SSH_CONNECTION)"*"--force"* ]]; then
        WHY="block of the ssh client: exit $rc ($err)"
        return 1
    fi
    grep -q "$A" <<<"$(ctl list --json)" && { WHY="the ssh client was blocked"; return 1; }
    return 0
}
check "dangerous blocks (0.0.0.0/0, ::/0, the ssh client) need --force; ::/0 spares IPv4" case_force

# nmap from cwsv-a, ports FIRST-LAST: reported as a scan and blocked.
scan_and_blocked() {
    local before
    before=$(cw_count_lines "$WORK/out" "Port scan detected: $(E $A) -> ")
    timeout 60 ip netns exec cwsv-a nmap -sS -n -Pn -p "$1-$2" --max-retries 0 $H1 >/dev/null 2>&1 || true
    cw_wait_until 10 eval '[ "$(cw_count_lines "$WORK/out" "Port scan detected: $(E $A) -> ")" -gt "$before" ]' ||
        { WHY="the scan of ports $1-$2 was not detected"; return 1; }
    cannot_connect cwsv-a $H1 || { WHY="the scanner still connects after ports $1-$2"; return 1; }
}

case_rescan_after_unblock() {
    scan_and_blocked 1 6 || return 1
    ctl unblock $A >/dev/null || { WHY="unblock of the scanner exited $?"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect after unblock"; return 1; }
    # Seconds later, well within the first report's window: judged afresh.
    scan_and_blocked 11 16 || { WHY="after unblock: $WHY"; return 1; }
    ctl unblock $A >/dev/null
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect after the second unblock"; return 1; }
}
check "a scanner unblocked and scanning again is detected and blocked again" case_rescan_after_unblock

# The canary's switch (docs/DEPLOYMENT.md, section 3): monitor-only turned on and off
# again by reloads of the file. cwsv-a's scan is reported and not blocked; after the
# second reload cwsv-b's is blocked (cwsv-a's was already reported in this window).
monitor_only_scan() {
    local before
    echo "monitor-only = true" >>"$CONF"
    ctl reload >/dev/null || { WHY="the reload into monitor-only exited $?"; return 1; }
    before=$(cw_count_lines "$WORK/out" "Not blocking $(E $A): monitor-only mode")
    timeout 60 ip netns exec cwsv-a nmap -sS -n -Pn -p 21-26 --max-retries 0 $H1 >/dev/null 2>&1 || true
    cw_wait_until 10 eval '[ "$(cw_count_lines "$WORK/out" "Not blocking $(E $A): monitor-only mode")" -gt "$before" ]' ||
        { WHY="no 'Not blocking $A: monitor-only mode' for cwsv-a's scan"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a was blocked in monitor-only mode"; return 1; }
}
case_monitor_only_reload() {
    local rc=0 before
    monitor_only_scan || rc=1
    sed -i '/^monitor-only = true$/d' "$CONF"
    ctl reload >/dev/null || { WHY="${WHY:+$WHY; }the reload out of monitor-only exited $?"; return 1; }
    [ $rc = 0 ] || return 1
    before=$(cw_count_lines "$WORK/out" "Blocked $(E $B) until")
    timeout 60 ip netns exec cwsv-b nmap -sS -n -Pn -p 21-26 --max-retries 0 $H2 >/dev/null 2>&1 || true
    cw_wait_until 10 eval '[ "$(cw_count_lines "$WORK/out" "Blocked $(E $B) until")" -gt "$before" ]' ||
        { WHY="cwsv-b's scan was not blocked once monitor-only was off"; return 1; }
    cannot_connect cwsv-b $H2 || { WHY="cwsv-b still connects after its block"; return 1; }
    ctl unblock $B >/dev/null || { WHY="unblock of cwsv-b exited $?"; return 1; }
    can_connect cwsv-b $H2 || { WHY="cwsv-b cannot connect after unblock"; return 1; }
}
check "monitor-only switched on and off by reloads: reported, not blocked; then blocked" case_monitor_only_reload

case_allow() {
    ctl allow 10.235.1.0/24 >/dev/null || { WHY="allow exited $?"; return 1; }
    local err rc=0
    err=$(ctl block $A 2>&1) || rc=$?
    [ $rc = 1 ] || { WHY="block of an allowed address exited $rc, not 1"; return 1; }
    [[ $err == *"covered by the allow entry 10.235.1.0/24"* ]] || { WHY="message: $err"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect"; return 1; }
    ctl disallow 10.235.1.0/24 >/dev/null || { WHY="disallow exited $?"; return 1; }
    ctl block $A --duration 1h >/dev/null || { WHY="block after disallow exited $?"; return 1; }
    ctl allow 10.235.1.0/24 >/dev/null || { WHY="second allow exited $?"; return 1; }
    # Allowing lifts the blocks it covers.
    can_connect cwsv-a $H1 || { WHY="allow did not lift the block it covers"; return 1; }
    ctl disallow 10.235.1.0/24 >/dev/null
}
check "the allowlist wins: blocks inside it are refused, and lifted when it is added" case_allow

case_access() {
    local rc=0 err
    err=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" --socket "$SOCK" list 2>&1) || rc=$?
    [ $rc = 4 ] || { WHY="nobody: exit $rc, not 4 ($err)"; return 1; }
    # With the file mode opened up, the daemon's own credential check still refuses.
    chmod 0666 "$SOCK"
    rc=0
    err=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" --socket "$SOCK" block 192.0.2.1 2>&1) || rc=$?
    chmod 0660 "$SOCK"
    [ $rc = 4 ] && [[ $err == *"permission denied: only root and members"* ]] ||
        { WHY="nobody through a 0666 socket: exit $rc ($err)"; return 1; }
    grep -q 192.0.2.1 <<<"$(ctl list --json)" && { WHY="nobody's block request was carried out"; return 1; }
    # A member of the control group (supplementary) may.
    local gid
    gid=$(getent group $GROUP | cut -d: -f3)
    setpriv --reuid=65534 --regid=65534 --groups="$gid" "$CTL" --socket "$SOCK" status >/dev/null ||
        { WHY="a member of $GROUP was refused"; return 1; }
}
check "an unprivileged user is refused, a control-group member is not" case_access

case_sighup() {
    sed -i 's/^threshold = .*/threshold = 10/' "$CONF"
    kill -HUP "$DPID"
    cw_wait_for_line "$WORK/err" "Reloaded.*threshold 10 ports" 10 "$DPID" ||
        { WHY="no 'Reloaded ... threshold 10' after SIGHUP"; return 1; }
    local before after
    before=$(cw_count_lines "$WORK/out" 'Port scan detected')
    timeout 60 ip netns exec cwsv-a nmap -sS -n -Pn -p 1-6 --max-retries 0 $H1 >/dev/null 2>&1 || true
    cw_wait_until 10 bash -c "[ \$(grep -c 'New connection: $(E $A):[0-9]* -> $(E $H1):[1-6]\$' '$WORK/out') -ge 6 ]" ||
        { WHY="the 6-port scan was not reported as 6 connections"; return 1; }
    after=$(cw_count_lines "$WORK/out" 'Port scan detected')
    [ "$before" = "$after" ] || { WHY="a 6-port scan was detected with threshold 10"; return 1; }
    can_connect cwsv-a $H1 || { WHY="cwsv-a was blocked"; return 1; }
}
check "SIGHUP applies a new threshold live" case_sighup

case_bad_reload() {
    cp "$CONF" "$WORK/good.conf"
    sed -i 's/^threshold = .*/threshold = 0/' "$CONF"
    local rc=0 err
    err=$(ctl reload 2>&1) || rc=$?
    cp "$WORK/good.conf" "$CONF"
    [ $rc = 1 ] || { WHY="reload of a bad configuration exited $rc, not 1"; return 1; }
    [[ $err == *"$CONF:"*": --threshold: Value 0 not in range 1 to 31"* ]] ||
        { WHY="the error does not name file, line and key: $err"; return 1; }
    cw_pid_alive "$DPID" || { WHY="connwatchd died"; return 1; }
    grep -q "more than 10 ports" <<<"$(ctl status)" || { WHY="the running configuration was not kept"; return 1; }
    # A file without its interface lines (caught half-written, say) never moves
    # a reload to the default route's interface.
    grep -v '^interface = ' "$WORK/good.conf" >"$CONF"
    rc=0
    err=$(ctl reload 2>&1) || rc=$?
    cp "$WORK/good.conf" "$CONF"
    [ $rc = 1 ] || { WHY="reload of a file without interfaces exited $rc, not 1"; return 1; }
    [[ $err == *"names no interface, and connwatchd watches cwsv-h1, cwsv-h2"* ]] ||
        { WHY="the refusal does not say why: $err"; return 1; }
    grep -q "cwsv-h1" <<<"$(ctl status)" || { WHY="the interfaces were not kept"; return 1; }
    ctl reload >/dev/null || { WHY="reload of the good configuration failed"; return 1; }
}
check "a bad configuration on reload leaves the daemon running on the old one" case_bad_reload

# More allow entries than the kernel's trie holds (4096): refused as a whole, by
# connwatchctl reload and by SIGHUP alike; the daemon keeps running on its old
# configuration and allowlist, and says why.
# allow_entries: the allowlist's configured and connwatchctl entries, sorted. Not
# the host's own addresses, which connwatchd allowlists too: the integration tests
# running beside this one add and remove theirs in the root namespace.
allow_entries() {
    ctl list --json | "$CW_PY" -c '
import json, sys
print(sorted(a["prefix"] + " " + a["source"] for a in json.load(sys.stdin)["allow"] if a["source"] != "own-address"))'
}
case_allowlist_overflow_reload() {
    cp "$CONF" "$WORK/good.conf"
    local before rc=0 err i
    before=$(allow_entries) || { WHY="list --json failed"; return 1; }
    for ((i = 0; i < 4200; i++)); do
        echo "allow = 10.200.$((i / 256)).$((i % 256))"
    done >>"$CONF"
    err=$(ctl reload 2>&1) || rc=$?
    kill -HUP "$DPID"
    cw_wait_until 10 eval '[ "$(cw_count_lines "$WORK/err" "Reload failed.*do not fit the allowlist")" -ge 2 ]' ||
        { cp "$WORK/good.conf" "$CONF"; WHY="SIGHUP did not log why the reload failed"; return 1; }
    cp "$WORK/good.conf" "$CONF"
    [ $rc = 1 ] || { WHY="reload with 4200 allow entries exited $rc, not 1"; return 1; }
    [[ $err == *"allow entries (configured, added with connwatchctl, and this host's own addresses) do not fit the allowlist, which holds at most 4096"* ]] ||
        { WHY="the error does not say why: $err"; return 1; }
    cw_pid_alive "$DPID" || { WHY="connwatchd died"; return 1; }
    [ "$(allow_entries)" = "$before" ] || { WHY="the allowlist changed ($before before)"; return 1; }
    grep -q "more than 10 ports" <<<"$(ctl status)" || { WHY="the running configuration was not kept"; return 1; }
    ctl reload >/dev/null || { WHY="reload of the good configuration failed"; return 1; }
}
check "a reload with more allow entries than the kernel holds keeps the old ones" case_allowlist_overflow_reload

# A watched interface deleted and created again (a veth re-made, a VM's tap, a
# driver reload): connwatchd says it is gone, status shows it missing, and it is
# attached again when it is back, judged by a block dropping traffic on it.
case_interface_recreated() {
    local before status
    before=$(cw_count_lines "$WORK/err" "Interface 'cwsv-h2' is watched")
    ip link del cwsv-h2
    cw_wait_for_line "$WORK/err" "Interface 'cwsv-h2' is gone" 10 "$DPID" ||
        { WHY="no warning that cwsv-h2 is gone"; return 1; }
    status=$(ctl status)
    [[ $status == *"cwsv-h2 (missing"* ]] || { WHY="status does not say cwsv-h2 is missing: $status"; return 1; }
    cw_veth cwsv-h2 cwsv-b cwsv-b0
    cw_addr cwsv-h2 $H2/24
    cw_addr cwsv-b cwsv-b0 $B/24
    cw_default_route cwsv-b $H2
    cw_wait_until 10 eval '[ "$(cw_count_lines "$WORK/err" "Interface .cwsv-h2. is watched")" -gt "$before" ]' ||
        { WHY="cwsv-h2 was not attached again"; return 1; }
    status=$(ctl status)
    [[ $status == *"cwsv-h2 (native)"* || $status == *"cwsv-h2 (generic)"* ]] ||
        { WHY="status does not show cwsv-h2 attached: $status"; return 1; }
    cw_wait_until 10 can_connect cwsv-b $H2 || { WHY="no traffic over the new cwsv-h2"; return 1; }
    ctl block $B >/dev/null || { WHY="block exited $?"; return 1; }
    cannot_connect cwsv-b $H2 || { ctl unblock $B >/dev/null; WHY="the block did not drop on the new cwsv-h2"; return 1; }
    ctl unblock $B >/dev/null || { WHY="unblock exited $?"; return 1; }
    can_connect cwsv-b $H2 || { WHY="cwsv-b still cut off after unblock"; return 1; }
}
check "an interface deleted and created again is watched again" case_interface_recreated

# An address added to the host while connwatchd runs is one of its own at once
# (rtnetlink), not only after a reload: a block of it is refused, it is listed.
case_new_own_address() {
    local own=10.235.9.9
    ip addr add $own/32 dev cwsv-h1
    cw_on_cleanup "ip addr del $own/32 dev cwsv-h1 2>/dev/null || true"
    cw_wait_until 10 eval '[[ $(ctl list) == *"$own/32"*own-address* ]]' ||
        { ip addr del $own/32 dev cwsv-h1; WHY="$own is not listed as an own address: $(ctl list | tail -5)"; return 1; }
    local err rc=0
    err=$(ctl block $own 2>&1) || rc=$?
    ip addr del $own/32 dev cwsv-h1
    [ $rc = 1 ] || { ctl unblock $own >/dev/null 2>&1; WHY="a block of a new own address exited $rc"; return 1; }
    [[ $err == *"covered by the allow entry $own/32"* ]] || { WHY="not refused as an own address: $err"; return 1; }
    cw_wait_until 10 eval '[[ $(ctl list) != *"$own/32"* ]]' ||
        { WHY="$own still listed after it was removed from the host"; return 1; }
}
check "an address added to the host is protected as its own at once" case_new_own_address

case_kill9() {
    ctl block $A --reason "survives" >/dev/null || { WHY="block exited $?"; return 1; }
    kill -9 "$DPID"
    cw_wait_exit "$DPID" 10 || true
    # The program outlives the process (restart_test.sh has the rest of that).
    cw_xdp_attached cwsv-h1 || { WHY="the program detached after kill -9"; return 1; }
    cannot_connect cwsv-a $H1 || { WHY="cwsv-a connects while no connwatchd runs"; return 1; }
    start_daemon
    cw_wait_for_line "$WORK/err" "Kept 1 blocks from the previous run" 5 "$DPID" ||
        { WHY="no 'Kept 1 blocks' notice"; return 1; }
    cannot_connect cwsv-a $H1 || { WHY="cwsv-a connects after the restart"; return 1; }
    grep -q "survives" <<<"$(ctl list)" || { WHY="the block's reason was lost"; return 1; }
}
check "kill -9 and restart keep the blocklist, enforced throughout" case_kill9

case_reboot() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="connwatchd did not stop on SIGTERM"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="connwatchd exited $CW_EXIT_STATUS after SIGTERM, expected 0"; return 1; }
    rm -rf "$PIN" # what a reboot does to bpffs
    start_daemon
    cw_wait_for_line "$WORK/err" "Restored 1 manual blocks" 5 "$DPID" ||
        { WHY="no 'Restored 1 manual blocks' notice"; return 1; }
    cannot_connect cwsv-a $H1 || { WHY="cwsv-a connects after the simulated reboot"; return 1; }
    ctl flush >/dev/null
    can_connect cwsv-a $H1 || { WHY="cwsv-a cannot connect after flush"; return 1; }
}
check "manual blocks survive a reboot (state file)" case_reboot

# The exit status says whether the shutdown was clean: in the sanitizer build, a
# leak or another report at exit makes it non-zero.
case_stop() {
    kill -TERM "$DPID"
    cw_wait_exit "$DPID" 10 || { WHY="connwatchd did not stop on SIGTERM"; return 1; }
    [ "$CW_EXIT_STATUS" = 0 ] || { WHY="connwatchd exited $CW_EXIT_STATUS after SIGTERM, expected 0"; return 1; }
}
check "SIGTERM after all that: a clean exit (0)" case_stop
echo "# connwatchd stderr:"; sed 's/^/#   /' "$WORK/err"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
