#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# The control-plane benchmark (bench/README.md, "Control plane"): connwatchd with
# N blocks in its pinned blocklist, idle — CPU, RSS, start-up, `connwatchctl status`
# latency and how long SIGTERM takes — for each N given.
#
#   bench/control_plane.sh BUILD_DIR N...        (root)
#
# BUILD_DIR holds connwatchd, connwatchctl and (unless FILL= names another)
# bench/fill_blocks. For each N: connwatchd starts once with --max-blocks N (at
# least 1) to create the pinned map, stops, fill_blocks puts N blocks in it
# (bpf_map_update_batch, 1 h deadlines, origin scan), connwatchd starts again and
# takes them over, then it is measured idle for IDLE seconds (default 20) and
# stopped with SIGTERM. OUT= appends the output to a file as well.
#
# What it creates, and removes on every way out: netns cwcp-ns with veth cwcp1,
# cwcp0 in the root namespace (10.236.0.1/24, connwatchd attaches there), the pin
# directory /sys/fs/bpf/cwcp and a work directory /tmp/cwcp.XXXXXX.
set -euo pipefail

if [ $# -lt 2 ] || [ "$(id -u)" -ne 0 ]; then
    echo "usage: $0 BUILD_DIR N...   (as root)" >&2
    exit 2
fi
build=$(realpath "$1")
shift
bin=$build/connwatchd
[ -x "$bin" ] || bin=$build/src/connwatchd
ctl=$build/connwatchctl
[ -x "$ctl" ] || ctl=$build/src/connwatchctl
fill=${FILL:-$build/bench/fill_blocks}
idle=${IDLE:-20}
for f in "$bin" "$ctl" "$fill"; do
    [ -x "$f" ] || { echo "$0: $f is missing (cmake --build $build)" >&2; exit 1; }
done

PIN=/sys/fs/bpf/cwcp
WORK=$(mktemp -d /tmp/cwcp.XXXXXX)
DPID=
cleanup() {
    set +e
    [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null
    ip link del cwcp0 2>/dev/null
    ip netns del cwcp-ns 2>/dev/null
    rm -rf "$PIN" "$WORK"
}
trap cleanup EXIT INT TERM HUP
ip netns add cwcp-ns
ip link add cwcp0 type veth peer name cwcp1 netns cwcp-ns
ip addr add 10.236.0.1/24 dev cwcp0
ip link set cwcp0 up
ip -n cwcp-ns link set cwcp1 up

out() { echo "$@"; [ -z "${OUT:-}" ] || echo "$@" >>"$OUT"; }

ticks_per_s=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

start_daemon() { # MAX_BLOCKS
    : >"$WORK/log"
    "$bin" --interface cwcp0 --max-blocks "$1" --pin-dir "$PIN" --state-dir "$WORK/state" \
        --control-socket "$WORK/sock" --metrics-listen "" --log-target stdout \
        >>"$WORK/log" 2>&1 &
    DPID=$!
    local t0
    t0=$(now_ms)
    until grep -q "Started" "$WORK/log"; do
        kill -0 "$DPID" 2>/dev/null || { cat "$WORK/log"; echo "$0: connwatchd died" >&2; exit 1; }
        [ $(($(now_ms) - t0)) -lt 600000 ] || { echo "$0: no start in 600 s" >&2; exit 1; }
        sleep 0.05
    done
    STARTUP_MS=$(($(now_ms) - t0))
    # Its CPU time so far: the start-up's own cost, whatever share of the
    # machine it got (wall time is long when others compile).
    STARTUP_CPU=$(awk -v hz="$ticks_per_s" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$DPID/stat")
}

stop_daemon() {
    local t0
    t0=$(now_ms)
    kill -TERM "$DPID"
    wait "$DPID" || true
    STOP_MS=$(($(now_ms) - t0))
    DPID=
}

out "# control plane, $(date -u '+%F %T') UTC, $(uname -r), $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo '?'), idle ${idle} s"
out "# N | start-up ms (CPU s) | idle CPU % of a core | RSS MiB | connwatchctl status ms (min/median/max of 5) | status answer ms, socket (min/median/max of 5) | SIGTERM to exit ms"
for n in "$@"; do
    cap=$n
    [ "$cap" -ge 1 ] || cap=1
    rm -rf "$PIN" "$WORK/state"
    start_daemon "$cap"
    stop_daemon
    if [ "$n" -gt 0 ]; then
        fill_out=$("$fill" --map "$PIN/block_addr" --count "$n" --duration 3600)
        out "#   fill: $fill_out"
    fi
    start_daemon "$cap"
    sleep 3 # the start-up walk's aftermath, the first ticks
    c0=$(cpu_ticks "$DPID")
    t0=$(now_ms)
    sleep "$idle"
    c1=$(cpu_ticks "$DPID")
    t1=$(now_ms)
    cpu=$(awk -v c="$((c1 - c0))" -v hz="$ticks_per_s" -v ms="$((t1 - t0))" \
        'BEGIN { printf "%.2f", 100 * c / hz / (ms / 1000) }')
    rss=$(awk -v k="$(rss_kib "$DPID")" 'BEGIN { printf "%.1f", k / 1024 }')
    lat=()
    for _ in 1 2 3 4 5; do
        s=$(now_ms)
        "$ctl" --socket "$WORK/sock" status >"$WORK/status" 2>&1 || true
        lat+=($(($(now_ms) - s)))
    done
    blocked=$(grep "^Blocks" "$WORK/status" || true)
    mapfile -t sorted < <(printf '%s\n' "${lat[@]}" | sort -n)
    # The daemon's own answer time, without connwatchctl's process start (which
    # alone takes 10-100 ms on a loaded machine): connect, ask, read the line.
    answer=$(python3 - "$WORK/sock" <<'PY'
import socket, sys, time
times = []
for _ in range(5):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    s.sendall(b'{"command":"status"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    times.append((time.monotonic() - t0) * 1000)
times.sort()
print("%.1f/%.1f/%.1f" % (times[0], times[2], times[4]))
PY
)
    stop_daemon
    out "$n | $STARTUP_MS ($STARTUP_CPU) | $cpu | $rss | ${sorted[0]}/${sorted[2]}/${sorted[4]} | $answer | $STOP_MS   ($blocked)"
done
