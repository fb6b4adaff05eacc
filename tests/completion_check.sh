#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The bash completion of connwatchctl offers its commands and their options.
# Usage: completion_check.sh COMPLETION_FILE
set -euo pipefail
# shellcheck source=/dev/null
source "$1"
fail=0
complete_words() { # completes the last word of "$@"
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _connwatchctl
    echo "${COMPREPLY[*]}"
}
expect() { # expect WANT -- WORDS...
    local want=$1; shift 2
    local got; got=$(complete_words "$@")
    if [ "$got" != "$want" ]; then echo "FAIL: '$*' -> '$got', expected '$want'"; fail=1; fi
}
expect "block" -- connwatchctl bl
expect "disallow" -- connwatchctl --socket /tmp/x di
expect "--duration" -- connwatchctl block 192.0.2.1 --du
expect "10m 1h 1d" -- connwatchctl block 192.0.2.1 --duration 1
expect "--json" -- connwatchctl list --j
expect "--origin" -- connwatchctl list --or
expect "scan manual crowdsec" -- connwatchctl list --origin ""
expect "--file" -- connwatchctl block --fi
[ "$(complete_words connwatchctl "" | wc -w)" -eq 12 ] || { echo "FAIL: top level"; fail=1; }
[ "$fail" = 0 ] && echo "PASS: completion"
exit "$fail"
