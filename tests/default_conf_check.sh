#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The shipped /etc/connwatch/connwatchd.conf (packaging/connwatchd.conf) lists every
# key of connwatchd.conf(5), no other, each commented out; it checks as it ships, and
# with every line uncommented (so each value written there is one the daemon accepts).
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
[ "$fail" = 0 ] && echo "PASS: $(wc -l <<<"$conf_keys") keys, as in $(basename "$man"); valid as shipped and uncommented"
exit "$fail"
