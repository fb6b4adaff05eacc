# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034  # PASSED, FAILED and WHY are read by the scripts that source this
# Test cases for the shell tests: `check NAME FUNCTION` runs FUNCTION, which returns
# non-zero and sets WHY to say what went wrong; one PASS or FAIL line, counted.
# A script ends with: echo "$PASSED passed, $FAILED failed"; [ "$FAILED" = 0 ]

PASSED=0 FAILED=0 WHY=
check() {
    WHY=
    if "$2"; then echo "PASS: $1"; PASSED=$((PASSED + 1)); else echo "FAIL: $1: $WHY"; FAILED=$((FAILED + 1)); fi
}
