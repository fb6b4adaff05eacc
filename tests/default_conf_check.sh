#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The shipped /etc/connwatch/connwatchd.conf (packaging/connwatchd.conf) lists every
# key of connwatchd.conf(5), no other, each commented out; it checks as it ships, and
# with every line uncommented (so each value written there is one the daemon accepts).
# --check-config prints the escalation warning start and reload log (escalation on
# with rate x max-block-duration + burst above half of max-blocks) to stderr and
# still exits 0; as shipped, and with escalation sized as docs/DEPLOYMENT.md shows,
# it prints none.
#
# Usage: default_conf_check.sh CONNWATCHD CONF MAN5
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "usage: $0 CONNWATCHD CONF MAN5" >&2
    exit 2
fi
daemon=$1 conf=$2 man=$3
fail=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

grep -qE '^[a-z-]+ *=' "$conf" && { echo "FAIL: $conf sets a key; the shipped file must only show defaults"; fail=1; }
conf_keys=$(sed -nE 's/^#([a-z-]+) = .*/\1/p' "$conf" | sort -u)
man_keys=$(sed -nE 's/^\.It Cm ([a-z-]+)$/\1/p' "$man" | sort -u)
if [ "$conf_keys" != "$man_keys" ]; then
    echo "FAIL: keys differ (< $conf, > $man):"
    diff <(echo "$conf_keys") <(echo "$man_keys") || true
    fail=1
fi
out=$("$daemon" --config "$conf" --check-config 2>&1) || { echo "FAIL: as shipped: $out"; fail=1; }
sed -E 's/^#([a-z-]+ = )/\1/' "$conf" >"$work/uncommented.conf"
out=$("$daemon" --config "$work/uncommented.conf" --check-config 2>&1) ||
    { echo "FAIL: with every key uncommented: $out"; fail=1; }
warning='connwatchd: warning: Escalation is on: spoofed repeat scans at max-new-blocks-per-second'
if grep -qF 'warning:' <<<"$out"; then
    echo "FAIL: the shipped values, uncommented, warn: $out"; fail=1
fi
out=$("$daemon" --config "$conf" --check-config 2>&1)
grep -qF 'warning:' <<<"$out" && { echo "FAIL: as shipped, a warning: $out"; fail=1; }
# The shipped file's own suggestion, escalation-window = 24h, at its other defaults
# (5 a second x 7d is far above half of 65536 blocks).
sed -E 's/^#(escalation-window = ).*/\124h/' "$conf" >"$work/escalation.conf"
grep -qx 'escalation-window = 24h' "$work/escalation.conf" ||
    { echo "FAIL: no '#escalation-window = ' line in $conf to turn on"; fail=1; }
if out=$("$daemon" --config "$work/escalation.conf" --check-config 2>"$work/stderr"); then
    grep -qF "$warning" "$work/stderr" ||
        { echo "FAIL: escalation-window = 24h at the defaults: no warning on stderr: $(cat "$work/stderr")"; fail=1; }
    grep -qF 'configuration OK' <<<"$out" ||
        { echo "FAIL: escalation-window = 24h: stdout is '$out', not 'configuration OK'"; fail=1; }
else
    echo "FAIL: escalation-window = 24h: exit status $?, a warning is not an error: $(cat "$work/stderr")"; fail=1
fi
# Sized as docs/DEPLOYMENT.md advises: 5 x 86400 + 100 is under half of 1048576.
printf 'escalation-window = 24h\nmax-block-duration = 1d\nmax-blocks = 1048576\n' >"$work/sized.conf"
out=$("$daemon" --config "$work/sized.conf" --check-config 2>&1) ||
    { echo "FAIL: escalation sized: $out"; fail=1; }
grep -qF 'warning:' <<<"$out" && { echo "FAIL: escalation sized as docs/DEPLOYMENT.md shows, yet a warning: $out"; fail=1; }
[ "$fail" = 0 ] && echo "PASS: $(wc -l <<<"$conf_keys") keys, as in $(basename "$man"); valid as shipped and uncommented; the escalation warning when due, only then"
exit "$fail"
