# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
# shellcheck disable=SC2034  # CW_LIB and WORK are read by the scripts that source this
# The opening every shell test (and the demo) shares. A script starts with
#
#   set -euo pipefail
#   # shellcheck source-path=SCRIPTDIR source=../lib/preamble.sh
#   source "$(dirname "${BASH_SOURCE[0]}")/../lib/preamble.sh"
#
# and then says, one line each, what it needs: cw_usage unless its arguments are
# right, cw_require_root, cw_require_tools, cw_take_lock, cw_workdir.
#
# Sourcing this brings in every helper (netns.sh: namespaces, waiting, cleanup;
# check.sh: test cases; packages.sh: the packages and a Debian rootfs) and installs
# the cleanup traps at once, so whatever a script registers with cw_on_cleanup is
# undone on every way out, including a failure half-way through its setup.

CW_LIB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/netns.sh
source "$CW_LIB/netns.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/check.sh
source "$CW_LIB/check.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/packages.sh
source "$CW_LIB/packages.sh"
cw_install_traps

# cw_usage ARGUMENTS...: prints "usage: SCRIPT ARGUMENTS" and exits 2 (a wrong
# call, which ctest must not confuse with a test that ran and failed).
cw_usage() {
    echo "usage: $0 $*" >&2
    exit 2
}

# cw_setup_fail MESSAGE: the test could not even start; says why, exits 1.
cw_setup_fail() {
    echo "FAIL: setup: $*"
    exit 1
}

# The files a failed test shows (its daemons' output, nmap's logs), as glob
# patterns expanded when they are shown: a test sets them once, after cw_workdir,
# quoted, e.g. CW_LOGS=("$WORK/*.out" "$WORK/*.err"). CW_LOG_LINES: how many lines of
# each, from the end; 0, all of it.
CW_LOGS=()
CW_LOG_LINES=0

# cw_dump_logs: every existing file CW_LOGS names, each under a "---- NAME ----"
# line.
cw_dump_logs() {
    local pattern f
    for pattern in "${CW_LOGS[@]}"; do
        # shellcheck disable=SC2086  # the pattern is a glob, expanded here on purpose
        for f in $pattern; do
            [ -f "$f" ] || continue
            echo "---- $(basename "$f") ----"
            if [ "$CW_LOG_LINES" -gt 0 ]; then
                tail -n "$CW_LOG_LINES" "$f"
            else
                cat "$f"
            fi
        done
    done
}

# cw_fatal MESSAGE: a failure the test cannot go on after (its setup, a daemon
# that will not start or stop): says so, shows the logs (cw_dump_logs), exits 1.
cw_fatal() {
    echo "FAIL: $1"
    cw_dump_logs
    exit 1
}

# cw_require_tools TOOL...: every TOOL is on PATH. python3 means the interpreter
# netns.sh chose ($CW_PY), the one the helpers run.
cw_require_tools() {
    local tool
    for tool in "$@"; do
        if [ "$tool" = python3 ]; then
            [ -n "$CW_PY" ] || cw_setup_fail "python3 is not installed (make deps)"
        else
            command -v "$tool" >/dev/null || cw_setup_fail "'$tool' is not installed (make deps)"
        fi
    done
}

# cw_take_lock FILE TIMEOUT_S: cw_lock, or a setup failure when another run holds
# FILE past the deadline. Two runs of one test (two build trees, two people) would
# fight over the same names: the second waits for the first.
CW_LOCKED=
cw_take_lock() {
    cw_lock "$1" "$2" || cw_setup_fail "another run held $1 for $2 s"
    CW_LOCKED=$1
}

# cw_workdir PREFIX: sets WORK to a fresh directory PREFIX.XXXXXX, removed at
# cleanup. Under cw_take_lock it first removes the ones of earlier runs that were
# killed outright (SIGKILL skips every trap): no other run can be using them then.
# Without the lock it leaves them, since a concurrent run may own one.
cw_workdir() {
    if [ -n "$CW_LOCKED" ]; then
        rm -rf "$1".??????
    fi
    WORK=$(mktemp -d "$1.XXXXXX")
    cw_on_cleanup "rm -rf $WORK"
}
