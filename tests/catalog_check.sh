#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The journal catalog explains exactly the MESSAGE_IDs connwatchd sends, and
# journalctl accepts it.
# Usage: catalog_check.sh CATALOG EVENT_SINK_H
set -euo pipefail
catalog=$1 header=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd/catalog"
cp "$catalog" "$root/usr/lib/systemd/catalog/connwatch.catalog"
journalctl --root="$root" --update-catalog
listed=$(journalctl --root="$root" --list-catalog | awk '/ connwatch: /{print $1}' | sort)
sent=$(grep -oE 'kMsg[A-Za-z]+ = "[0-9a-f]{32}"' "$header" | grep -oE '[0-9a-f]{32}' | sort)
[ -n "$sent" ] || { echo "FAIL: no MESSAGE_IDs found in $header"; exit 1; }
if [ "$listed" != "$sent" ]; then
    echo "FAIL: catalog and $header differ:"
    diff <(echo "$sent") <(echo "$listed") || true
    exit 1
fi
echo "PASS: $(echo "$sent" | wc -l) MESSAGE_IDs explained"
