# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034  # PASSED, FAILED and WHY are read by the scripts that source this
# Test cases for the shell tests: `check NAME FUNCTION` runs FUNCTION, which returns
# non-zero and sets WHY to say what went wrong; one PASS or FAIL line, counted, with
# the case's time on a PASS line. A script ends with:
#   echo "$PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]
# Sourced by preamble.sh, after netns.sh (cw_now_ms).
#
# A script that can tell more about any failure (say, that its daemon has died,
# which explains every later failure too) defines check_fail_note: what it prints
# ends each FAIL line.

PASSED=0 FAILED=0 WHY=
check() {
    local t0 note=
    WHY=
    t0=$(cw_now_ms)
    # In an if, FUNCTION runs without set -e: it must return its own failures.
    if "$2"; then
        echo "PASS: $1 ($(($(cw_now_ms) - t0)) ms)"
        PASSED=$((PASSED + 1))
    else
        if declare -F check_fail_note >/dev/null; then
            note=$(check_fail_note)
        fi
        echo "FAIL: $1: $WHY$note"
        FAILED=$((FAILED + 1))
    fi
}

# why MESSAGE: sets the failure reason and fails (use as `... || why "..."`).
why() {
    WHY=$1
    return 1
}
