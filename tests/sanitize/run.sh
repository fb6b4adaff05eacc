#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# run.sh COMMAND...: runs a test of the sanitizer build (an integration script)
# and fails it when any process it started wrote a sanitizer report.
#
# The scripts start connwatchd in the background with its stderr in a file of
# their own, and stop it at cleanup without always looking at how it ended: a
# report written then (LeakSanitizer's runs at exit) would go unseen. So every
# sanitized process of the test writes its reports to files here too (log_path,
# one file per process), whoever started it and however it was stopped, and this
# fails the test if there is one, printing it. The scripts check the exit status
# where they stop connwatchd on purpose as well; this is the net under the rest.
set -uo pipefail
[ $# -ge 1 ] || { echo "usage: $0 COMMAND..." >&2; exit 2; }

reports=$(mktemp -d /tmp/connwatch-sanitize.XXXXXX)
trap 'rm -rf "$reports"' EXIT
# Appended: the binaries' own defaults (tests/sanitize/defaults.cpp) stay. One
# path for both: the two runtimes share it (the one parsed last would win).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$reports/report"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$reports/report"

"$@"
rc=$?

found=0
for f in "$reports"/*; do
    [ -s "$f" ] || continue
    found=1
    echo "==== sanitizer report: $(basename "$f") ===="
    cat "$f"
done
if [ "$found" = 1 ]; then
    echo "FAIL: a process of this test wrote a sanitizer report (above)"
    [ "$rc" != 0 ] || rc=1
fi
exit "$rc"
