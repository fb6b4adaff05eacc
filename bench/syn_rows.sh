#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The SYN rows of `make bench` with the real daemon (bench/README.md, "SYN rows
# with connwatchd"):
#
#   bench/syn_rows.sh [BUILD_DIR]       (root; BUILD_DIR defaults to build)
#
# 1. drain: SYNs from new sources at rising rates (RATES=, a second each
#    STEP= seconds), connwatchd on the receiving veth: per step the SYNs the
#    program reported and the events lost (connwatchd's own counters, its
#    metrics endpoint), and the daemon's CPU. The drain rate is the highest
#    step without a lost event.
# 2. flood: FLOOD= seconds (10) as fast as the sender goes, from new sources,
#    with a port scan from one source mixed in (threshold + 3 ports, one every
#    SCAN_MS= ms; one flood per value, "50 700"): events lost, the daemon's CPU (% of one core) and peak RSS,
#    and at which port the scanner was blocked (the first threshold ports are
#    reported, the (threshold+1)-th completes the scan and blocks, the two
#    after it must be dropped).
#
# Creates netns cwsf-tx and cwsf-rx with a veth pair (cwsf0 10.234.0.1 ->
# cwsf1 10.234.0.2), pins under /sys/fs/bpf/cwsf, a work dir in /tmp; removes
# all of it on every way out. Traffic only inside those namespaces. Bounded:
# every step's sender has its own --seconds, the whole run TIMEOUT= (600 s).
# OUT= appends the output to a file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
build=$(realpath "${1:-$root/build}")
bin=$build/connwatchd
ctl=$build/connwatchctl
flood=$build/bench/syn_flood
for f in "$bin" "$ctl" "$flood"; do
    [ -x "$f" ] || { echo "$0: $f is missing (cmake --build $build --target connwatchd connwatchctl syn_flood)" >&2; exit 1; }
done
if [ "$(id -u)" -ne 0 ]; then
    echo "$0: needs root (namespaces, veth, XDP)" >&2
    exit 1
fi
RATES=${RATES:-"5000 10000 20000 50000 100000 200000"}
STEP=${STEP:-3}
FLOOD=${FLOOD:-10}
SCAN_MS=${SCAN_MS:-"50 700"}
THRESHOLD=${THRESHOLD:-10}
CPU=${CPU:-0}
NS_TX=cwsf-tx NS_RX=cwsf-rx IF_TX=cwsf0 IF_RX=cwsf1
ADDR_TX=10.234.0.1 ADDR_RX=10.234.0.2
PIN=/sys/fs/bpf/cwsf
METRICS=127.0.0.1:9479
WORK=$(mktemp -d /tmp/cwsf.XXXXXX)
DPID=

cleanup() {
    set +e
    if [ -n "$DPID" ]; then
        kill -TERM "$DPID" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$DPID" 2>/dev/null
    fi
    ip netns del "$NS_TX" 2>/dev/null
    ip netns del "$NS_RX" 2>/dev/null
    rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
# Bounded as a whole: a watchdog ends this script (and with it the cleanup).
( sleep "${TIMEOUT:-600}"; kill -TERM $$ 2>/dev/null ) &
watchdog=$!
trap 'kill $watchdog 2>/dev/null; cleanup' EXIT

out() { echo "$@"; [ -z "${OUT:-}" ] || echo "$@" >>"$OUT"; }

ip netns del "$NS_TX" 2>/dev/null || true
ip netns del "$NS_RX" 2>/dev/null || true
rm -rf "$PIN"
bench_veth_pair "$NS_TX" "$IF_TX" "$ADDR_TX" "$NS_RX" "$IF_RX" "$ADDR_RX"
# The RSTs to the flood's sources go out through a route (and the static
# neighbour above; xdp_sink drops them on the other side): without them each
# would wait for ARP.
ip -n "$NS_RX" route add 10.64.0.0/10 via "$ADDR_TX" dev "$IF_RX"

# connwatchd on the receiving veth, natively, as in production; its metrics
# endpoint inside the namespace.
ip netns exec "$NS_RX" "$bin" --interface "$IF_RX" --xdp-mode native --threshold "$THRESHOLD" \
    --pin-dir "$PIN" --state-dir "$WORK/state" --control-socket "$WORK/sock" \
    --metrics-listen "$METRICS" --log-target stdout >"$WORK/log" 2>&1 &
DPID=$!
t0=$(date +%s)
until grep -q "Started" "$WORK/log"; do
    kill -0 "$DPID" 2>/dev/null || { cat "$WORK/log"; echo "$0: connwatchd died" >&2; exit 1; }
    [ $(($(date +%s) - t0)) -lt 120 ] || { echo "$0: connwatchd did not start in 120 s" >&2; exit 1; }
    sleep 0.1
done

metric() { # NAME [LABEL-MATCH]: the sum of the metric's samples
    ip netns exec "$NS_RX" curl -s --max-time 10 "http://$METRICS/metrics" |
        awk -v m="$1" -v l="${2:-}" '$1 ~ "^"m"({|$)" && index($1, l) {s += $NF} END {printf "%d\n", s}'
}
ticks() { awk '{print $14 + $15}' "/proc/$DPID/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$DPID/status"; }
hz=$(getconf CLK_TCK)
send() { # syn_flood options
    ip netns exec "$NS_TX" taskset -c "$CPU" "$flood" --tx-if "$IF_TX" --dst-mac "$mac_rx" \
        --src "$ADDR_TX" --dst "$ADDR_RX" "$@"
}

out "# bench/syn_rows.sh $(date -u '+%F %H:%M') UTC, tree $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'), $(uname -r), $(nproc) CPUs, sender on CPU $CPU"
out "# uptime: $(uptime)"
out "# connwatchd --threshold $THRESHOLD (pid $DPID); every flood SYN from a source not seen before (10.64.0.0 + n)"
out ""
out "## drain: new-source SYNs at a fixed rate, $STEP s a step"
out "| offered SYN/s | sent SYN/s | reported (new_connections) | events lost | daemon CPU, % of a core |"
out "|---|---|---|---|---|"
best=0
# Each run's sources after the last run's: all new. The flood sources are
# 10.64.0.0 + first + n mod 2,000,000, inside 10.64.0.0/10 (4,194,304): `first`
# wraps at 2,097,152, where the sources met again are millions of SYNs old,
# long gone from the scan-state and dedup LRUs (32,768 and 65,536 entries).
first=0
next_first() { echo $(( ($1 + $2) % 2097152 )); }
for r in $RATES; do
    c0=$(metric connwatch_new_connections_total) l0=$(metric connwatch_events_lost_total) k0=$(ticks)
    line=$(send --rate "$r" --seconds "$STEP" --sources 2000000 --first "$first")
    first=$(next_first "$first" "$(echo "$line" | awk '{print $2}')")
    # The daemon drains what is queued: give it a moment before reading.
    sleep 1
    c1=$(metric connwatch_new_connections_total) l1=$(metric connwatch_events_lost_total) k1=$(ticks)
    rate=$(echo "$line" | sed -n 's/.*(\([0-9]*\) a second.*/\1/p')
    cpu=$(awk -v a="$k0" -v b="$k1" -v hz="$hz" -v s="$((STEP + 1))" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}')
    out "| $r | $rate | $((c1 - c0)) | $((l1 - l0)) | $cpu |"
    [ $((l1 - l0)) -eq 0 ] && best=$rate
done
out ""
out "drain rate without loss: at least $best SYN/s (the highest step above with 0 events lost)"
out ""

for scan_ms in $SCAN_MS; do
    out "## flood: $FLOOD s as fast as the sender goes, a scan mixed in ($((THRESHOLD + 3)) ports from $ADDR_TX, one every $scan_ms ms)"
    c0=$(metric connwatch_new_connections_total) l0=$(metric connwatch_events_lost_total)
    d0=$(metric connwatch_packets_dropped_total blocklist\") s0=$(metric connwatch_port_scans_total)
    k0=$(ticks) rss0=$(rss_kib) log0=$(wc -l <"$WORK/log")
    peak=$rss0
    send --rate 0 --seconds "$FLOOD" --sources 2000000 --first "$first" --scan-ports $((THRESHOLD + 3)) --scan-every-ms "$scan_ms" \
        >"$WORK/flood" &
    spid=$!
    while kill -0 "$spid" 2>/dev/null; do
        r=$(rss_kib)
        [ "$r" -gt "$peak" ] && peak=$r
        sleep 0.2
    done
    wait "$spid" || { cat "$WORK/flood"; echo "$0: the sender failed" >&2; exit 1; }
    k1=$(ticks)
    sleep 1
    c1=$(metric connwatch_new_connections_total) l1=$(metric connwatch_events_lost_total)
    d1=$(metric connwatch_packets_dropped_total blocklist\") s1=$(metric connwatch_port_scans_total)
    out "sender: $(cat "$WORK/flood")"
    out "| reported (new_connections) | events lost | daemon CPU, % of a core | daemon RSS before, peak | scans | scanner's SYNs dropped |"
    out "|---|---|---|---|---|---|"
    cpu=$(awk -v a="$k0" -v b="$k1" -v hz="$hz" -v s="$FLOOD" 'BEGIN {printf "%.1f", (b - a) / hz / s * 100}')
    out "| $((c1 - c0)) | $((l1 - l0)) | $cpu | $((rss0 / 1024)) MiB, $((peak / 1024)) MiB | $((s1 - s0)) | $((d1 - d0)) |"
    scanlog=$(tail -n +"$((log0 + 1))" "$WORK/log" | grep -i "scan" | grep -F "$ADDR_TX" | head -1 || true)
    out "daemon's line: ${scanlog:-none}"
    listed=$(ip netns exec "$NS_RX" "$ctl" --socket "$WORK/sock" list 2>/dev/null | grep -cF "$ADDR_TX" || true)
    # Blocked at the (threshold+1)-th port: one scan, the scanner in the list, and
    # exactly the two SYNs after that port dropped.
    if [ "$((s1 - s0))" -ge 1 ] && [ "$listed" -ge 1 ] && [ "$((d1 - d0))" -eq 2 ]; then
        out "scan blocked at its port $((THRESHOLD + 1)) of $((THRESHOLD + 3)) during the flood: yes"
    else
        out "scan blocked at its port $((THRESHOLD + 1)) during the flood: NO (scans $((s1 - s0)), listed $listed, dropped $((d1 - d0)))"
    fi
    first=$(next_first "$first" "$(awk '{print $2}' "$WORK/flood")")
    # The next flood's scan starts afresh (an unblock also resets its scan state).
    ip netns exec "$NS_RX" "$ctl" --socket "$WORK/sock" unblock "$ADDR_TX" >/dev/null 2>&1 || true
    out ""
done
