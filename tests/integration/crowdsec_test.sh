#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Integration test: connwatchd as CrowdSec's bouncer and watcher, against the real
# CrowdSec Local API (Debian 12's crowdsec 1.4.6, fetched with `apt-get download`
# into CACHE_DIR and run from there, offline: its own configuration, SQLite in
# this run's directory, no Central API, no hub, nothing installed on the machine).
#
#   root namespace                       cwcs-a (sources)          cwcs-n2 ("host 2")
#   cwcs-h1 10.232.1.1/24  <── veth ──>  cwcs-a0 10.232.1.2, .3, .21, .33
#           fd17:c0e5:1::1/64                    fd17:c0e5:1::2, ::21
#                                        cwcs-x1 10.232.2.2 <─ veth ─> cwcs-x2 10.232.2.1/24
#   cwcs-h3 10.232.3.1/24  <── veth ────────────────────────────────> cwcs-y0 10.232.3.2/24
#   the LAPI listens on 10.232.3.1:PORT (PORT picked free), over http; a second
#   LAPI process on the same database on 10.232.3.1:PORT2, over https with a
#   self-signed certificate made here (a private CA)
#
# connwatchd 1 runs in the root namespace on cwcs-h1 (bouncer and watcher, http);
# connwatchd 2 runs in cwcs-n2 on cwcs-x2 (bouncer only, https with
# crowdsec-ca-file). Sources in cwcs-a reach host 1 through cwcs-h1 and host 2
# through cwcs-x1 with the same addresses.
#
# Cases: cscli decisions add --ip / --range / an IPv6 address → dropped in XDP
# within one poll (1 s), listed with origin crowdsec; decisions delete → passes;
# an nmap scan seen by host 1 → blocked by host 2; the LAPI stopped: decisions
# kept, an alert queued and delivered when it is back; connwatchd restarted while
# the LAPI is down: a decision deleted meanwhile keeps dropping until the first
# pull lifts it; a reload refuses a key file every user may read. The LAPI restarts
# with a new JWT secret: the watcher's token is refused (401), it logs in again
# (counted, logged) and the alert goes through. connwatchctl status (plain and
# --json) and STATUS= show the link: decisions mirrored, last pull, failing since,
# alerts sent and queued.
#
# Usage: crowdsec_test.sh PATH/TO/connwatchd PATH/TO/connwatchctl CACHE_DIR   (root)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"

if [ $# -ne 3 ] || [ ! -x "$1" ] || [ ! -x "$2" ]; then
    cw_usage "PATH/TO/connwatchd PATH/TO/connwatchctl CACHE_DIR"
fi
BIN=$(realpath "$1")
CTL=$(realpath "$2")
mkdir -p "$3"
CACHE=$(realpath "$3")
cw_require_root
cw_require_tools ip nmap flock timeout python3 nsenter curl apt-get dpkg-deb openssl
cw_take_lock /tmp/cwcs-integration.lock 240
cw_workdir /tmp/cwcs
PIDFILE1=/tmp/cwcs-integration.connwatchd1.pid
PIDFILE2=/tmp/cwcs-integration.connwatchd2.pid
LAPI_PIDFILE=/tmp/cwcs-integration.lapi.pid
LAPI2_PIDFILE=/tmp/cwcs-integration.lapi2.pid
cw_pidfile_reap $PIDFILE1 "--interface cwcs-h1"
cw_pidfile_reap $PIDFILE2 "--interface cwcs-x2"
cw_pidfile_reap $LAPI_PIDFILE "/tmp/cwcs."
cw_pidfile_reap $LAPI2_PIDFILE "/tmp/cwcs."

H1_4=10.232.1.1 A_4=10.232.1.2 A2_4=10.232.1.3 D_4=10.232.1.21 R_4=10.232.1.33
H1_6=fd17:c0e5:1::1 A_6=fd17:c0e5:1::2 D_6=fd17:c0e5:1::21
X1_4=10.232.2.2 X2_4=10.232.2.1 H3_4=10.232.3.1 Y0_4=10.232.3.2
RANGE=10.232.1.32/28

CW_LOGS=("$WORK"/cw1.out "$WORK"/cw1.err "$WORK"/cw2.out "$WORK"/cw2.err "$WORK"/lapi.log "$WORK"/lapi-tls.log)
CW_LOG_LINES=60

# ---- CrowdSec, from the package, run in this directory ---------------------------------

CS=$CACHE/root
if [ ! -x "$CS/usr/bin/crowdsec" ]; then
    mkdir -p "$CACHE"
    rm -f "$CACHE"/crowdsec_*.deb
    (cd "$CACHE" && timeout 120 apt-get download crowdsec >"$CACHE/download.log" 2>&1) ||
        cw_setup_fail "apt-get download crowdsec failed (an apt source with Debian 12's main is needed): $(tail -n 3 "$CACHE/download.log")"
    rm -rf "$CS.tmp"
    dpkg-deb -x "$CACHE"/crowdsec_*.deb "$CS.tmp" || cw_setup_fail "dpkg-deb -x of the crowdsec package failed"
    mv "$CS.tmp" "$CS"
fi
echo "setup: $("$CS/usr/bin/crowdsec" -version 2>&1 | grep -m1 -i version || echo crowdsec)"

D=$WORK/lapi
mkdir -p "$D/data" "$D/hub" "$D/notifications"
: >"$D/acquis.yaml"
# lapi_start: both LAPI processes (http and https, on the same database: the https
# one is first started once the http one has made the schema), each with a JWT secret
# of its own, new at every start: a token from before is refused.
LAPI2_PID=
lapi_start() {
    CS_LAPI_SECRET=$(openssl rand -hex 32) "$CS/usr/bin/crowdsec" -c "$D/config.yaml" -no-cs >>"$WORK/lapi.log" 2>&1 9>&- &
    LAPI_PID=$!
    cw_pidfile_track $LAPI_PIDFILE $LAPI_PID
    cw_on_cleanup "cw_kill $LAPI_PID 5"
    if [ -n "$LAPI2_PID" ]; then lapi2_start; fi
    # Up when it answers a pull without a key (403), a few seconds at most.
    cw_wait_until 30 eval "[ \"\$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 $URL/v1/decisions/stream)\" = 403 ]" ||
        cw_fatal "the LAPI did not answer on $URL within 30 s"
    if [ -z "$LAPI2_PID" ]; then lapi2_start; fi
    cw_wait_until 30 eval "[ \"\$(curl -s --cacert $WORK/lapi-ca.pem -o /dev/null -w '%{http_code}' --max-time 2 $URL2/v1/decisions/stream)\" = 403 ]" ||
        cw_fatal "the https LAPI did not answer on $URL2 within 30 s"
}
lapi2_start() {
    CS_LAPI_SECRET=$(openssl rand -hex 32) "$CS/usr/bin/crowdsec" -c "$D/config-tls.yaml" -no-cs >>"$WORK/lapi-tls.log" 2>&1 9>&- &
    LAPI2_PID=$!
    cw_pidfile_track $LAPI2_PIDFILE $LAPI2_PID
    cw_on_cleanup "cw_kill $LAPI2_PID 5"
}
lapi_stop() {
    kill -TERM "$LAPI_PID" "$LAPI2_PID" 2>/dev/null || true
    cw_kill "$LAPI_PID" 10
    cw_kill "$LAPI2_PID" 10
}
cscli() {
    timeout 30 "$CS/usr/bin/cscli" -c "$D/config.yaml" "$@"
}
# decide ARGS...: `cscli decisions ARGS`, tried up to three times (cscli and the LAPI
# share one SQLite file, and cscli gives up at once when it is locked); its output
# is in WHY when it fails.
decide() {
    local out i
    for i in 1 2 3; do
        out=$(cscli decisions "$@" 2>&1) && return 0
        sleep 0.5
    done
    why "cscli decisions $* failed 3 times: $out"
}

# ---- namespaces and links ---------------------------------------------------------------

cw_ns_create cwcs-a
cw_ns_create cwcs-n2
cw_veth cwcs-h1 cwcs-a cwcs-a0
cw_veth cwcs-h3 cwcs-n2 cwcs-y0
ip link del cwcs-x1 2>/dev/null || true
ip link add cwcs-x1 netns cwcs-a type veth peer name cwcs-x2 netns cwcs-n2
ip -n cwcs-a link set cwcs-x1 up
ip -n cwcs-n2 link set cwcs-x2 up
cw_addr cwcs-h1 $H1_4/24
cw_addr cwcs-h1 $H1_6/64
cw_addr cwcs-h3 $H3_4/24
for a in $A_4 $A2_4 $D_4 $R_4; do cw_addr cwcs-a cwcs-a0 "$a/24"; done
cw_addr cwcs-a cwcs-a0 $A_6/64
ip -n cwcs-a addr add $D_6/64 dev cwcs-a0 nodad preferred_lft 0
cw_addr cwcs-a cwcs-x1 $X1_4/24
cw_addr cwcs-n2 cwcs-x2 $X2_4/24
cw_addr cwcs-n2 cwcs-y0 $Y0_4/24
cw_default_route cwcs-a $H1_4
cw_default_route cwcs-a $H1_6
ip -n cwcs-n2 route add 10.232.1.0/24 via $X1_4

PY_N2=$WORK/python-in-n2
printf '#!/bin/sh\nexec ip netns exec cwcs-n2 %s "$@"\n' "$CW_PY" >"$PY_N2"
chmod +x "$PY_N2"
cw_listen 280 "$WORK/listen1.ready" $H1_4:8080 "[$H1_6]:8080"
cw_wait_for_line "$WORK/listen1.ready" '^ready$' 10 "$CW_LISTEN_PID" || cw_fatal "setup: listener 1"
CW_PY=$PY_N2 cw_listen 280 "$WORK/listen2.ready" $X2_4:8080
cw_wait_for_line "$WORK/listen2.ready" '^ready$' 10 "$CW_LISTEN_PID" || cw_fatal "setup: listener 2"

# passes SRC DST: a connection from SRC (in cwcs-a) to DST:8080 is accepted.
passes() { cw_connect cwcs-a "$2" 8080 3 "$1" >/dev/null 2>&1; }
# dropped SRC DST: it times out (dropped in XDP), twice in a row.
dropped() {
    local err
    err=$(cw_connect cwcs-a "$2" 8080 1 "$1" 2>&1 >/dev/null) && return 1
    [[ $err == *"timed out"* ]]
}
for src in $A_4 $A2_4 $D_4 $R_4 $A_6 $D_6; do
    case $src in *:*) dst=$H1_6 ;; *) dst=$H1_4 ;; esac
    passes "$src" "$dst" || cw_fatal "setup: $src cannot reach $dst:8080 before connwatchd runs"
done
for src in $A_4 $A2_4; do
    passes "$src" $X2_4 || cw_fatal "setup: $src cannot reach host 2 ($X2_4:8080) before connwatchd runs"
done

# ---- the LAPI, a bouncer key per host, a machine for host 1 and one for cscli --------

PORT=$("$CW_PY" -c "import socket; s=socket.socket(); s.bind(('$H3_4', 0)); print(s.getsockname()[1])")
URL=http://$H3_4:$PORT
cat >"$D/config.yaml" <<EOF
common: {daemonize: false, log_media: stdout, log_level: info, working_dir: .}
config_paths: {config_dir: $D/, data_dir: $D/data/, simulation_path: $CS/etc/crowdsec/simulation.yaml,
  hub_dir: $D/hub/, index_path: $D/hub/.index.json, notification_dir: $D/notifications/,
  plugin_dir: $CS/usr/lib/crowdsec/plugins/}
crowdsec_service: {acquisition_path: $D/acquis.yaml}
cscli: {output: human}
db_config: {log_level: info, type: sqlite, db_path: $D/data/crowdsec.db}
api:
  client: {credentials_path: $D/local_api_credentials.yaml}
  server: {log_level: info, listen_uri: '$H3_4:$PORT', profiles_path: $CS/etc/crowdsec/profiles.yaml, trusted_ips: [127.0.0.1]}
prometheus: {enabled: false}
EOF
# The https one: a certificate for its address, signed by itself (the private CA
# connwatchd 2 is given); started on the same database once the schema is made.
PORT2=$("$CW_PY" -c "import socket; s=socket.socket(); s.bind(('$H3_4', 0)); print(s.getsockname()[1])")
URL2=https://$H3_4:$PORT2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=cwcs-lapi -addext "subjectAltName=IP:$H3_4" \
    -keyout "$D/lapi-key.pem" -out "$WORK/lapi-ca.pem" >/dev/null 2>&1 || cw_fatal "setup: openssl req"
sed -e "s|listen_uri: '$H3_4:$PORT'|listen_uri: '$H3_4:$PORT2', tls: {cert_file: $WORK/lapi-ca.pem, key_file: $D/lapi-key.pem}|" \
    "$D/config.yaml" >"$D/config-tls.yaml"
grep -q "cert_file" "$D/config-tls.yaml" || cw_fatal "setup: the https LAPI's configuration"
lapi_start
echo "setup: LAPI on $URL and $URL2"
umask 077
cscli machines add cscli-m0 --password "m0-$RANDOM$RANDOM" -f "$D/local_api_credentials.yaml" >/dev/null 2>&1 ||
    cw_fatal "setup: cscli machines add cscli-m0"
cscli machines add connwatch-h1 --password "h1-$RANDOM$RANDOM" -f "$WORK/h1.machine" >/dev/null 2>&1 ||
    cw_fatal "setup: cscli machines add connwatch-h1"
cscli bouncers add connwatch-h1 -o raw >"$WORK/h1.key" 2>/dev/null || cw_fatal "setup: cscli bouncers add"
cscli bouncers add connwatch-h2 -o raw >"$WORK/h2.key" 2>/dev/null || cw_fatal "setup: cscli bouncers add"
umask 022
chmod 600 "$WORK/h1.machine" "$WORK/h1.key" "$WORK/h2.key"

# ---- the two connwatchd ---------------------------------------------------------------

cw_isolation "$BIN" "$WORK" cwcs-integration-1
ISO1=("${CW_ISOLATE[@]}")
# Host 1 serves its metrics, on a free loopback port, for the CrowdSec counters.
MPORT=$("$CW_PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
for i in "${!ISO1[@]}"; do
    [ "${ISO1[$i]}" = --metrics-listen ] && ISO1[i+1]=127.0.0.1:$MPORT
done
cw_isolation "$BIN" "$WORK" cwcs-integration-2
ISO2=("${CW_ISOLATE[@]}")
CS1=(--crowdsec-lapi-url "$URL" --crowdsec-bouncer-key-file "$WORK/h1.key"
     --crowdsec-poll-interval 1s --crowdsec-machine-credentials-file "$WORK/h1.machine")
# STATUS= of connwatchd 1: its sd_notify datagrams, one line each in notify.log
# (a listener bounded in time, as the traffic listeners).
NOTIFY=$WORK/notify.sock
rm -f "$NOTIFY"
"$CW_PY" - "$NOTIFY" "$WORK/notify.log" 280 <<'PY' 9>&- &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(1)
end = time.monotonic() + float(sys.argv[3])
with open(sys.argv[2], "a") as out:
    while time.monotonic() < end:
        try:
            d = s.recv(65536)
        except socket.timeout:
            continue
        out.write(d.decode(errors="replace").replace("\n", " | ") + "\n")
        out.flush()
PY
NOTIFY_PID=$!
cw_on_cleanup "cw_kill $NOTIFY_PID 2"
cw_wait_until 10 test -S "$NOTIFY" || cw_fatal "setup: the sd_notify listener"
start1() {
    NOTIFY_SOCKET=$NOTIFY "$BIN" "${ISO1[@]}" --interface cwcs-h1 --log-target stdout --threshold 3 --block-duration 10m \
        "${CS1[@]}" >>"$WORK/cw1.out" 2>>"$WORK/cw1.err" 9>&- &
    PID1=$!
    cw_on_cleanup "cw_kill $PID1 5"
    cw_pidfile_track $PIDFILE1 $PID1
    cw_wait_for_line "$WORK/cw1.err" 'watching cwcs-h1' 20 "$PID1" || cw_fatal "connwatchd 1 did not start"
}
: >"$WORK/cw1.err"
start1
nsenter --net=/run/netns/cwcs-n2 "$BIN" "${ISO2[@]}" --interface cwcs-x2 --log-target stdout \
    --threshold 3 --block-duration 10m --crowdsec-lapi-url "$URL2" \
    --crowdsec-bouncer-key-file "$WORK/h2.key" --crowdsec-poll-interval 1s \
    --crowdsec-ca-file "$WORK/lapi-ca.pem" \
    >"$WORK/cw2.out" 2>"$WORK/cw2.err" 9>&- &
PID2=$!
cw_on_cleanup "cw_kill $PID2 5"
cw_pidfile_track $PIDFILE2 $PID2
cw_wait_for_line "$WORK/cw2.err" 'watching cwcs-x2' 20 "$PID2" || cw_fatal "connwatchd 2 did not start"
for n in 1 2; do
    cw_wait_for_line "$WORK/cw$n.err" 'CrowdSec: first pull: 0 prefixes' 10 ||
        cw_fatal "connwatchd $n: no 'CrowdSec: first pull' line within 10 s"
done
echo "setup: both connwatchd pulled from the LAPI"
ctl() { "$CTL" --socket "$WORK/cwcs-integration-1.sock" "$@"; }
# metric NAME: host 1's value of the series NAME (with its labels, as exported).
metric() {
    curl -s --max-time 2 "http://127.0.0.1:$MPORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
# metric_is NAME VALUE
metric_is() { [ "$(metric "$1")" = "$2" ]; }

# listed PREFIX: connwatchctl list shows PREFIX with origin crowdsec.
listed() { ctl list | grep -Eq "^$(cw_regex_escape "$1")( |/[0-9]+ ).*crowdsec"; }

# ---- a: decisions added with cscli are dropped within a poll -----------------------

case_a() {
    decide add --ip $D_4 --duration 1h || return 1
    decide add --range $RANGE --duration 1h || return 1
    decide add --ip $D_6 --duration 1h || return 1
    cw_wait_until 10 dropped $D_4 $H1_4 || why "$D_4 still reaches $H1_4:8080 10 s after the decision" || return 1
    cw_wait_until 10 dropped $R_4 $H1_4 || why "$R_4 (in $RANGE) still reaches $H1_4:8080 10 s after the decision" || return 1
    cw_wait_until 10 dropped $D_6 $H1_6 || why "$D_6 still reaches [$H1_6]:8080 10 s after the decision" || return 1
    passes $A_4 $H1_4 || why "$A_4, not decided, no longer reaches $H1_4:8080" || return 1
    listed $D_4 || why "connwatchctl list does not show $D_4 with origin crowdsec: $(ctl list)" || return 1
    listed $RANGE || why "connwatchctl list does not show $RANGE with origin crowdsec: $(ctl list)" || return 1
    listed $D_6 || why "connwatchctl list does not show $D_6 with origin crowdsec: $(ctl list)" || return 1
}

case_b() {
    decide delete --ip $D_4 || return 1
    decide delete --range $RANGE || return 1
    decide delete --ip $D_6 || return 1
    cw_wait_until 10 passes $D_4 $H1_4 || why "$D_4 still dropped 10 s after the delete" || return 1
    cw_wait_until 10 passes $R_4 $H1_4 || why "$R_4 still dropped 10 s after the delete" || return 1
    cw_wait_until 10 passes $D_6 $H1_6 || why "$D_6 still dropped 10 s after the delete" || return 1
    listed $D_4 && { why "connwatchctl list still shows $D_4"; return 1; }
    return 0
}

# ---- s: connwatchctl status and STATUS= show the link ------------------------------

# status_json EXPR: python's EXPR on `connwatchctl status --json` (as j) is true.
status_json() {
    ctl status --json | "$CW_PY" -c "import json, sys; j = json.load(sys.stdin); sys.exit(0 if ($1) else 1)"
}
case_s() {
    local out
    cw_wait_until 5 eval "ctl status | grep -q 'decisions mirrored, last pull 2'" ||
        why "connwatchctl status shows no successful pull: $(ctl status)" || return 1
    out=$(ctl status)
    grep -Eq "^CrowdSec: +bouncer of $(cw_regex_escape "$URL"): 3 decisions mirrored, last pull [0-9-]+ [0-9:]+\$" <<<"$out" ||
        why "connwatchctl status has no bouncer line with 3 decisions mirrored: $out" || return 1
    grep -Eq "^ +watcher connwatch-h1 at $(cw_regex_escape "$URL")/?: 0 alerts sent, 0 queued, 0 dropped\$" <<<"$out" ||
        why "connwatchctl status has no watcher line: $out" || return 1
    status_json "j['crowdsec']['bouncer']['decisions'] == 3 and j['crowdsec']['bouncer']['last_pull'] > 0 and j['crowdsec']['bouncer']['failing_since'] == 0 and j['crowdsec']['watcher']['login'] == 'connwatch-h1' and j['crowdsec']['watcher']['alerts_queued'] == 0" ||
        why "connwatchctl status --json: $(ctl status --json)" || return 1
    cw_wait_until 5 grep -q "CrowdSec: 3 decisions mirrored, 0 alerts sent, 0 queued" "$WORK/notify.log" ||
        why "no STATUS= with the CrowdSec link: $(tail -n 3 "$WORK/notify.log")" || return 1
    # Host 2 is a bouncer only: no watcher, over https.
    out=$("$CTL" --socket "$WORK/cwcs-integration-2.sock" status)
    grep -q "bouncer of $URL2: 3 decisions mirrored" <<<"$out" && ! grep -q watcher <<<"$out" ||
        why "connwatchctl status of host 2: $out" || return 1
}

# ---- c: a scan seen by host 1 is blocked by host 2 ------------------------------------

# scan SRC: nmap -sS from SRC in cwcs-a at host 1, 20 ports, bounded.
scan() {
    timeout 90 ip netns exec cwcs-a nmap -sS -n -Pn -p 1-20 --max-retries 1 --host-timeout 30s \
        -S "$1" -e cwcs-a0 $H1_4 >"$WORK/nmap-$1.log" 2>&1
}
case_c() {
    scan $A_4 || why "nmap failed: $(cat "$WORK/nmap-$A_4.log")" || return 1
    cw_wait_for_line "$WORK/cw1.out" "Port scan detected: $(cw_regex_escape $A_4) " 10 "$PID1" ||
        why "host 1 reported no scan from $A_4" || return 1
    cw_wait_until 15 dropped $A_4 $X2_4 || why "host 2 still lets $A_4 reach $X2_4:8080 15 s after the scan" || return 1
    local alerts
    alerts=$(cscli alerts list -o raw 2>&1) || true
    grep -q "connwatch/port-scan" <<<"$alerts" ||
        why "cscli alerts list shows no connwatch/port-scan alert: $alerts" || return 1
    grep -q "$A_4" <<<"$(cscli decisions list -o json 2>/dev/null)" || why "cscli decisions list lacks $A_4" || return 1
}

# ---- d: the LAPI stopped and started again ----------------------------------------------

case_d() {
    local out n
    decide add --ip $D_4 --duration 1h || return 1
    cw_wait_until 10 dropped $D_4 $H1_4 || why "$D_4 not dropped after the decision" || return 1
    lapi_stop
    for n in 1 2; do
        cw_wait_for_line "$WORK/cw$n.err" 'CrowdSec: pulling decisions from .* failed' 15 ||
            why "connwatchd $n did not warn that the LAPI is gone" || return 1
    done
    dropped $D_4 $H1_4 || why "$D_4 passes while the LAPI is down: the decision was not kept" || return 1
    scan $A2_4 || why "nmap failed: $(cat "$WORK/nmap-$A2_4.log")" || return 1
    cw_wait_for_line "$WORK/cw1.out" "Port scan detected: $(cw_regex_escape $A2_4) " 10 "$PID1" ||
        why "host 1 reported no scan from $A2_4" || return 1
    cw_wait_for_line "$WORK/cw1.err" 'CrowdSec: sending alerts failed' 15 ||
        why "connwatchd 1 did not warn that the alert could not be sent" || return 1
    cw_wait_until 10 metric_is connwatch_crowdsec_alerts_queued 1 ||
        why "connwatch_crowdsec_alerts_queued is '$(metric connwatch_crowdsec_alerts_queued)', expected 1" || return 1
    n=$(metric connwatch_crowdsec_pull_failures_total)
    [ "${n:-0}" -ge 1 ] || why "connwatch_crowdsec_pull_failures_total is '$n' during the outage" || return 1
    n=$(cw_count_lines "$WORK/cw1.err" 'CrowdSec: pulling decisions from .* failed')
    [ "$n" = 1 ] || why "the outage was warned about $n times, expected once" || return 1
    out=$(ctl status)
    grep -Eq "^CrowdSec: +bouncer of .*; failing since [0-9-]+ [0-9:]+ \([1-9][0-9]* failed pulls\)" <<<"$out" &&
        grep -Eq "watcher .*: 1 alerts sent, 1 queued, 0 dropped; failing since" <<<"$out" ||
        why "connwatchctl status during the outage: $out" || return 1
    status_json "j['crowdsec']['bouncer']['failing_since'] > 0 and j['crowdsec']['watcher']['alerts_queued'] == 1" ||
        why "connwatchctl status --json during the outage: $(ctl status --json)" || return 1
    cw_wait_until 5 grep -Eq "CrowdSec: [0-9]+ decisions mirrored, LAPI failing since .* 1 queued \\(sending fails since" "$WORK/notify.log" ||
        why "no STATUS= saying the LAPI fails: $(tail -n 3 "$WORK/notify.log")" || return 1
    # Back with a new JWT secret: the token of before is refused.
    lapi_start
    cw_wait_for_line "$WORK/cw1.err" 'answers again' 20 || why "connwatchd 1 did not say the LAPI is back" || return 1
    cw_wait_until 20 dropped $A2_4 $X2_4 ||
        why "host 2 does not block $A2_4, whose scan host 1 saw while the LAPI was down" || return 1
    dropped $D_4 $H1_4 || why "$D_4 passes after the LAPI came back" || return 1
    metric_is connwatch_crowdsec_alerts_queued 0 || why "alerts still queued after the LAPI came back" || return 1
    metric_is connwatch_crowdsec_alerts_sent_total 2 ||
        why "connwatch_crowdsec_alerts_sent_total is '$(metric connwatch_crowdsec_alerts_sent_total)', expected 2 (two scans)" || return 1
    metric_is connwatch_crowdsec_alerts_dropped_total 0 || why "alerts were dropped" || return 1
    grep -q "refused the watcher's token (HTTP 401.*logged in again as connwatch-h1" "$WORK/cw1.err" ||
        why "no line saying the watcher logged in again after a 401" || return 1
    metric_is 'connwatch_crowdsec_relogins_total{reason="refused"}' 1 ||
        why "connwatch_crowdsec_relogins_total{reason=\"refused\"} is '$(metric 'connwatch_crowdsec_relogins_total{reason="refused"}')', expected 1" || return 1
    metric_is connwatch_crowdsec_logins_total 2 ||
        why "connwatch_crowdsec_logins_total is '$(metric connwatch_crowdsec_logins_total)', expected 2" || return 1
    cw_wait_until 5 eval "ctl status | grep -Eq '^CrowdSec: .*decisions mirrored, last pull [0-9-]+ [0-9:]+\$'" ||
        why "connwatchctl status still says failing: $(ctl status)" || return 1
    cw_pid_alive $PID1 && cw_pid_alive $PID2 || why "a connwatchd died" || return 1
}

# ---- e: restarted while the LAPI is down: pinned decisions hold until the first pull -----

case_e() {
    cw_kill $PID1 10
    decide delete --ip $D_4 || return 1
    lapi_stop
    start1
    cw_wait_for_line "$WORK/cw1.err" 'Kept [0-9]+ blocks from the previous run' 5 ||
        why "connwatchd 1 did not keep its pinned blocks" || return 1
    dropped $D_4 $H1_4 || why "$D_4 passes after the restart, before any pull" || return 1
    listed $D_4 || why "connwatchctl list does not show $D_4 as crowdsec after the restart" || return 1
    lapi_start
    cw_wait_until 20 passes $D_4 $H1_4 || why "$D_4 still dropped 20 s after the LAPI came back (deleted meanwhile)" || return 1
    grep -Eq 'first pull: .* [1-9][0-9]* mirrored blocks no longer decided lifted' "$WORK/cw1.err" ||
        why "no 'mirrored blocks no longer decided lifted' line" || return 1
    dropped $A2_4 $X2_4 || why "host 2 lost the block of $A2_4" || return 1
}

# ---- f: reload -----------------------------------------------------------------------

case_f() {
    local out n_before n_after
    n_before=$(cw_count_lines "$WORK/cw1.err" 'CrowdSec: bouncer pulling decisions')
    chmod 644 "$WORK/h1.key"
    if out=$(ctl reload 2>&1); then
        chmod 600 "$WORK/h1.key"
        why "a reload with a key file every user may read succeeded: $out"
        return 1
    fi
    chmod 600 "$WORK/h1.key"
    [[ $out == *"chmod o-r $WORK/h1.key"* ]] || why "the refused reload does not say the fix: $out" || return 1
    out=$(ctl reload 2>&1) || why "reload failed: $out" || return 1
    n_after=$(cw_count_lines "$WORK/cw1.err" 'CrowdSec: bouncer pulling decisions')
    [ "$n_after" = "$n_before" ] ||
        why "an unchanged configuration restarted the LAPI client ($n_before -> $n_after starts)" || return 1
    decide add --ip $D_4 --duration 1h || return 1
    cw_wait_until 10 dropped $D_4 $H1_4 || why "$D_4 not dropped after the reloads" || return 1
}

# ---- g: what is never blocked --------------------------------------------------------------

# refused_at_least N: host 1 counts at least N refused decisions.
refused_at_least() {
    local n
    n=$(metric 'connwatch_crowdsec_decisions_total{result="refused"}')
    [ "${n:-0}" -ge "$1" ]
}
case_g() {
    decide add --ip $H1_4 --duration 1h || return 1
    decide add --range 10.0.0.0/7 --duration 1h || return 1
    cw_wait_for_line "$WORK/cw1.err" "CrowdSec: refused [0-9]+ decisions? .*$(cw_regex_escape $H1_4): covered by the allow entry" 10 ||
        why "no 'CrowdSec: refused ... decision' line naming $H1_4, this host's own address; its CrowdSec lines: $(grep CrowdSec "$WORK/cw1.err")" || return 1
    cw_wait_for_line "$WORK/cw1.err" "CrowdSec: refused [0-9]+ decisions? .*10\\.0\\.0\\.0/7: it is wider than /8" 10 ||
        why "no refusal line naming 10.0.0.0/7 as too wide" || return 1
    listed $H1_4 && { why "this host's own address is listed as blocked"; return 1; }
    listed 10.0.0.0/7 && { why "10.0.0.0/7 is listed as blocked"; return 1; }
    # The metrics follow within a tick (1 s).
    cw_wait_until 5 refused_at_least 2 ||
        why "connwatch_crowdsec_decisions_total{result=\"refused\"} is '$(metric 'connwatch_crowdsec_decisions_total{result="refused"}')'" || return 1
    return 0
}

check "a: cscli decisions add --ip, --range and an IPv6 address: dropped in XDP, listed as crowdsec" case_a
check "s: connwatchctl status (plain, --json) and STATUS= show the CrowdSec link" case_s
check "b: cscli decisions delete: passes again" case_b
check "c: an nmap scan seen by host 1 becomes an alert, and host 2 blocks the scanner" case_c
check "d: LAPI down: decisions kept, an alert queued, both fine when it is back" case_d
check "e: connwatchd restarted with the LAPI down: the pinned decision keeps dropping; the first pull lifts what was deleted" case_e
check "f: reload: a key file every user may read is refused with the fix; an unchanged one keeps the client running" case_f
check "g: a decision for this host's own address or wider than /8 is refused, logged and counted, never blocked" case_g

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
