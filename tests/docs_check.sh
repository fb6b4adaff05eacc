#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# make docs-check: every command README.md and docs/*.md show is run here or by a
# named test (tests/docs_check.py has the rules and does the static part: block tags,
# test claims, options against --help, make targets, connwatchd --check-config,
# promtool), then the connwatchctl commands of `sh docs-check` blocks run in order
# against a throwaway connwatchd on a veth pair of its own (root; exit 77, skipped,
# without root). No traffic: the daemon needs a link to attach to, nothing more.
#
# Usage: docs_check.sh SOURCE_DIR PATH/TO/connwatchd PATH/TO/connwatchctl
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/preamble.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/preamble.sh"

if [ $# -ne 3 ] || [ ! -d "$1" ] || [ ! -x "$2" ] || [ ! -x "$3" ]; then
    cw_usage "SOURCE_DIR PATH/TO/connwatchd PATH/TO/connwatchctl"
fi
SRC=$(realpath "$1")
BIN=$(realpath "$2")
CTL=$(realpath "$3")
cw_require_tools python3 make promtool ip flock
cw_workdir /tmp/cwdc

rc=0
"$CW_PY" "$SRC/tests/docs_check.py" "$SRC" "$BIN" "$CTL" --ctl-out "$WORK/ctl.jsonl" || rc=1

n=$(wc -l <"$WORK/ctl.jsonl")
if [ "$n" = 0 ]; then
    exit $rc
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: $n connwatchctl commands need a daemon, which needs root"
    [ $rc = 0 ] && exit 77
    exit $rc
fi

cw_take_lock /tmp/cwdc-docs.lock 240
PIDFILE=/tmp/cwdc-docs.connwatchd.pid
cw_pidfile_reap $PIDFILE "/tmp/cwdc."
cw_on_cleanup "rm -f $PIDFILE"
IF=cwdc-h0
cw_ns_create cwdc-ns
cw_veth $IF cwdc-ns cwdc-p0
cw_addr $IF 10.243.0.1/24
cw_isolation "$BIN" "$WORK" cwdc-docs
SOCK=$WORK/cwdc-docs.sock
cw_daemon_start 15 "$WORK/out" "$WORK/err" $PIDFILE "$BIN" "${CW_ISOLATE[@]}" \
    --interface $IF --log-target stdout ||
    cw_setup_fail "connwatchd did not start: $(cat "$WORK/err")"

# The files the documented commands name, with something in them.
printf '203.0.113.250\n203.0.113.248/30\n2001:db8:dc::/48\n' >"$WORK/threats.txt"

case_ctl() {
    local line out
    local -a args
    while IFS= read -r line; do
        mapfile -t args < <("$CW_PY" -c 'import json,sys; print("\n".join(json.loads(sys.argv[1])))' "$line")
        if ! out=$(cd "$WORK" && "$CTL" --socket "$SOCK" "${args[@]}" 2>&1 </dev/null); then
            why "connwatchctl ${args[*]} failed: $out"
            return
        fi
        echo "# connwatchctl ${args[*]}: ok"
    done <"$WORK/ctl.jsonl"
}
check "the documented connwatchctl commands ($n) succeed against a daemon" case_ctl

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ] && [ $rc = 0 ]
