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
# IMPORT=1 measures manual blocks instead: connwatchd starts with --max-blocks N
# and an empty map, N lines ("10.a.b.c 1h bulk import", consecutive addresses
# from 10.0.0.0) are imported with `connwatchctl block --file` (timed), then it is
# measured idle as above, and `flush` removes them all (the daemon's answer timed
# over its socket, without connwatchctl's 30 s answer timeout). No fill_blocks.
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
import=${IMPORT:-0}
[ "$import" = 1 ] && fill=/bin/true
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

# The daemon's answer to one request over its socket, timed: "MS ANSWER".
ask() { # JSON
    python3 - "$WORK/sock" "$1" <<'PY'
import socket, sys, time
t0 = time.monotonic()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
print("%.1f %s" % ((time.monotonic() - t0) * 1000, buf.decode().strip()))
PY
}

out "# control plane, $(date -u '+%F %T') UTC, $(uname -r), $(git -C "$(dirname "$0")" rev-parse --short HEAD 2>/dev/null || echo '?'), idle ${idle} s, $(uptime | sed 's/.*load/load/')"
if [ "$import" = 1 ]; then
    out "# IMPORT=1: N manual blocks imported with connwatchctl block --file"
    out "# N | import ms (connwatchctl, wall; CPU seconds of each side) | idle CPU % of a core | RSS MiB | connwatchctl status ms (min/median/max of 5) | status answer ms, socket (min/median/max of 5) | flush answer ms | SIGTERM to exit ms"
else
    out "# N | start-up ms (CPU s) | idle CPU % of a core | RSS MiB | connwatchctl status ms (min/median/max of 5) | status answer ms, socket (min/median/max of 5) | SIGTERM to exit ms"
fi
for n in "$@"; do
    cap=$n
    [ "$cap" -ge 1 ] || cap=1
    rm -rf "$PIN" "$WORK/state"
    start_daemon "$cap"
    if [ "$import" = 1 ]; then
        python3 - "$WORK/import.txt" "$n" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        f.write("10.%d.%d.%d 1h bulk import\n" % (i >> 16, (i >> 8) & 255, i & 255))
PY
        t0=$(now_ms)
        ic0=$(cpu_ticks "$DPID")
        # connwatchctl's own CPU time too (reading and sending the file).
        import_out=$( { TIMEFORMAT='%U %S'; time "$ctl" --socket "$WORK/sock" block --file "$WORK/import.txt" 2>&1 | tail -1; } 2>"$WORK/ctl.time") || true
        IMPORT_MS=$(($(now_ms) - t0))
        ic1=$(cpu_ticks "$DPID")
        IMPORT_MS="$IMPORT_MS (daemon CPU $(awk -v c="$((ic1 - ic0))" -v hz="$ticks_per_s" 'BEGIN { printf "%.1f", c / hz }') s, connwatchctl CPU $(awk '{ printf "%.1f", $1 + $2 }' "$WORK/ctl.time") s)"
        out "#   import: $import_out; load: $(cut -d' ' -f1-3 /proc/loadavg)"
    else
        stop_daemon
        if [ "$n" -gt 0 ]; then
            fill_out=$("$fill" --map "$PIN/block_addr" --count "$n" --duration 3600)
            out "#   fill: $fill_out"
        fi
        start_daemon "$cap"
    fi
    sleep 3 # the start-up walk's (or the import's) aftermath, the first ticks
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
    times=()
    for _ in 1 2 3 4 5; do
        read -r ms _ < <(ask '{"command":"status"}')
        times+=("$ms")
    done
    mapfile -t tsorted < <(printf '%s\n' "${times[@]}" | sort -n)
    answer="${tsorted[0]}/${tsorted[2]}/${tsorted[4]}"
    if [ "$import" = 1 ]; then
        read -r flush_ms flush_answer < <(ask '{"command":"flush"}')
        out "#   flush: $flush_answer; blocks left: $("$ctl" --socket "$WORK/sock" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["blocks"])'); log lines: $(wc -l <"$WORK/log")"
        stop_daemon
        out "$n | $IMPORT_MS | $cpu | $rss | ${sorted[0]}/${sorted[2]}/${sorted[4]} | $answer | $flush_ms | $STOP_MS   ($blocked)"
        continue
    fi
    stop_daemon
    out "$n | $STARTUP_MS ($STARTUP_CPU) | $cpu | $rss | ${sorted[0]}/${sorted[2]}/${sorted[4]} | $answer | $STOP_MS   ($blocked)"
done
