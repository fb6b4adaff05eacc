#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# Runs the live-frames packet-rate benchmark (bench/README.md) as root:
#
#   bench/run.sh [BUILD_DIR] [-- live_frames options...]
#
# BUILD_DIR defaults to build-bench in the project root; it must hold
# bench/live_frames (cmake -S . -B build-bench && cmake --build build-bench
# --target live_frames). The output is shown and appended to
# bench/results/<date>-live-frames.txt (set OUT= to save it elsewhere, OUT=/dev/null
# not at all). CPU=<n> pins the sender to another CPU than 0.
#
# What it creates, and removes again on every way out (EXIT/INT/TERM/HUP trap):
#   netns cwbn-tx  with cwbn0 10.232.0.1/24   (the sender's veth)
#   netns cwbn-rx  with cwbn1 10.232.0.2/24   (the receiver's veth, program under test)
# Nothing in the root namespace, no other interface is touched. The names and the
# 10.232.0.0/24 net are this benchmark's own; cwit-*/cwdemo-* belong to others.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
build=$root/build-bench
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    build=$1
    shift
fi
[ "${1:-}" = "--" ] && shift
bin=$build/bench/live_frames
cpu=${CPU:-0}
out=${OUT:-$here/results/$(date +%F)-live-frames.txt}

NS_TX=cwbn-tx
NS_RX=cwbn-rx
IF_TX=cwbn0
IF_RX=cwbn1
ADDR_TX=10.232.0.1
ADDR_RX=10.232.0.2

if [ "$(id -u)" -ne 0 ]; then
    echo "$0: needs root (network namespaces, veth pair, XDP, BPF_PROG_RUN)" >&2
    exit 1
fi
if [ ! -x "$bin" ]; then
    echo "$0: $bin is missing: cmake -S $root -B $build && cmake --build $build --target live_frames" >&2
    exit 1
fi

cleanup() {
    set +e
    # Deleting a namespace deletes the veth end in it, and with it the pair.
    ip netns del "$NS_TX" 2>/dev/null
    ip netns del "$NS_RX" 2>/dev/null
}
# A signal ends the harness first (its links detach when it exits), then the
# EXIT trap removes the namespaces. The harness runs in the background so that
# `wait` can be interrupted: bash runs no trap while a foreground job runs.
harness=
# shellcheck disable=SC2317 # called from the traps below
on_signal() {
    if [ -n "$harness" ]; then
        kill -TERM "$harness" 2>/dev/null
        wait "$harness" 2>/dev/null
    fi
    exit "$1"
}
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

# Leftovers of an earlier run that was killed before its trap ran (our names only).
cleanup

bench_veth_pair "$NS_TX" "$IF_TX" "$ADDR_TX" "$NS_RX" "$IF_RX" "$ADDR_RX"

mkdir -p "$(dirname "$out")"
args=
[ $# -gt 0 ] && args=$(printf ' %q' "$@")
# Appended: every run of the day stays in the day's file, noisy ones included.
[ -s "$out" ] && echo >>"$out"
echo "# bench/run.sh$args (CPU=$cpu, tree $(git -C "$root" describe --always --dirty 2>/dev/null || echo '?'))" | tee -a "$out"
# The harness bounds every row (count, --row-timeout); timeout bounds the whole.
timeout --signal=TERM --kill-after=10 "${RUN_TIMEOUT:-300}" \
    taskset -c "$cpu" "$bin" --cpu "$cpu" \
    --tx-netns "$NS_TX" --rx-netns "$NS_RX" --tx-if "$IF_TX" --rx-if "$IF_RX" \
    --src "$ADDR_TX" --dst "$ADDR_RX" "$@" > >(tee -a "$out") 2>&1 &
harness=$!
status=0
wait "$harness" || status=$?
harness=
wait # for tee (the process substitution) to write the last lines
echo "# saved in $out" >&2
exit "$status"
