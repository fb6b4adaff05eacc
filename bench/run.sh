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

ip netns add "$NS_TX"
ip netns add "$NS_RX"
for ns in "$NS_TX" "$NS_RX"; do
    ip -n "$ns" link set lo up
    # No router solicitations, DAD or MLD on the benchmark's link: only our frames.
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
done
# Created inside the namespaces directly: never an interface in the root one.
ip -n "$NS_TX" link add "$IF_TX" type veth peer name "$IF_RX" netns "$NS_RX"
ip -n "$NS_TX" addr add "$ADDR_TX/24" dev "$IF_TX"
ip -n "$NS_RX" addr add "$ADDR_RX/24" dev "$IF_RX"
ip -n "$NS_TX" link set "$IF_TX" up
ip -n "$NS_RX" link set "$IF_RX" up
# Static neighbours: the receiver's stack answers some rows (RST to a SYN for a
# closed port), and the sender's XDP sink would drop the ARP reply it needs, so
# those answers would wait in the neighbour queue and never be sent.
mac_tx=$(ip -n "$NS_TX" -br link show dev "$IF_TX" | awk '{print $3}')
mac_rx=$(ip -n "$NS_RX" -br link show dev "$IF_RX" | awk '{print $3}')
ip -n "$NS_RX" neigh replace "$ADDR_TX" lladdr "$mac_tx" dev "$IF_RX" nud permanent
ip -n "$NS_TX" neigh replace "$ADDR_RX" lladdr "$mac_rx" dev "$IF_TX" nud permanent

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
