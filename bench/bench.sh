#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# `make bench`: every row of issue 11 in one run with one sender (bench/README.md).
#
#   bench/bench.sh [BUILD_DIR]          (root; BUILD_DIR defaults to build)
#
# Installs what the other tools' rows need when missing (apt-get: xdp-tools,
# nftables, iptables, ipset, ethtool, python3-matplotlib), builds live_frames,
# runs bench/run.sh with all rows (it creates the namespaces and the veth pair
# and removes them on every way out), appends the output to
# bench/results/<date>-bench.txt and draws the plots next to it
# (<date>-<time>-rate.png, -ratios.png), then runs bench/syn_rows.sh (the SYN
# rows with connwatchd running; SYN_ROWS=0 skips them) into the same file.
# Bounded: run.sh's timeout (TIMEOUT=, default 3600 s here), every row's, and
# syn_rows.sh's (SYN_TIMEOUT=, 600 s). Environment: ARGS= extra live_frames
# options (e.g. ARGS='--count 2000000 --entries 1,10000'), OUT= another results file.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${1:-$root/build}

if [ "$(id -u)" -ne 0 ]; then
    echo "bench: needs root (namespaces, veth, XDP, nftables, iptables)" >&2
    exit 1
fi
pkgs="xdp-tools nftables iptables ipset ethtool python3-matplotlib"
missing=
for p in $pkgs; do
    dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench: installing$missing"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing </dev/null
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target live_frames syn_flood connwatchd connwatchctl -j "$(nproc)"

stamp=$(date -u +%F-%H%M)
out=${OUT:-$here/results/$(date -u +%F)-bench.txt}
echo "# uptime before: $(uptime)" | tee -a "$out"
status=0
# shellcheck disable=SC2086 # ARGS is a list of options
OUT=$out RUN_TIMEOUT=${TIMEOUT:-3600} "$here/run.sh" "$build" -- ${ARGS:-} || status=$?
# The SYN rows with connwatchd running (drain rate, 10 s floods with a scan
# mixed in): bench/syn_rows.sh, its own namespaces. SYN_ROWS=0 leaves them out.
if [ "${SYN_ROWS:-1}" != 0 ]; then
    echo | tee -a "$out"
    OUT=$out TIMEOUT=${SYN_TIMEOUT:-600} "$here/syn_rows.sh" "$build" || status=$?
fi
echo "# uptime after: $(uptime)" | tee -a "$out"
if [ "$status" -eq 0 ] || grep -q '^| drop ' "$out"; then
    /usr/bin/python3 "$here/plot.py" "$out" "$here/results/$stamp" || status=$?
fi
exit "$status"
