#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# shellcheck disable=SC2016  # the backquotes in the sed expressions are Markdown's
# docs_check.py can fail: on a made-up source tree (a README, a Makefile, a test
# script registered in a CMakeLists.txt, and stand-ins for connwatchd and
# connwatchctl that print a --help), each kind of fault it exists to catch is planted
# once and must be reported, and the same tree without the faults must pass.
# No privileges, no daemon.
# Usage: docs_check_selftest.sh SOURCE_DIR
set -euo pipefail
src=$(realpath "$1")
work=$(mktemp -d /tmp/cwdcst.XXXXXX)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
# The system's python3, not a per-user shim (tests/lib/netns.sh does the same).
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

mkdir -p "$work/tree/docs" "$work/tree/tests" "$work/bin"
cat >"$work/bin/connwatchd" <<'EOF'
#!/bin/sh
case " $* " in
*" --help "*) echo "Options: --interface --threshold --check-config --config"; exit 0 ;;
*" --threshold 0 "*) echo "connwatchd: --threshold: Value 0 not in range 1 to 31" >&2; exit 2 ;;
*) exit 0 ;;
esac
EOF
cat >"$work/bin/connwatchctl" <<'EOF'
#!/bin/sh
echo "Subcommands: status list block; global: --socket --json; block: --duration"
EOF
chmod +x "$work/bin/connwatchd" "$work/bin/connwatchctl"
printf 'all:\n\ttrue\nbuild:\n\ttrue\n' >"$work/tree/Makefile"
cat >"$work/tree/tests/thing_test.sh" <<'EOF'
in_ct journalctl -u connwatchd -o json --no-pager
"$CTL" block 192.0.2.9 --duration 10m
EOF
echo 'add_test(NAME thing COMMAND bash thing_test.sh)' >"$work/tree/tests/CMakeLists.txt"

# The good README: every kind of block, each right.
good() {
    cat <<'EOF'
# t
```text
output
```
```sh docs-check
make build
connwatchd --interface eth0 --threshold 3
connwatchctl block 203.0.113.7 --duration 1d
```
```sh test=tests/thing_test.sh
journalctl -u connwatchd -o json
connwatchctl block 198.51.100.1 --duration 1h
```
```sh operator: needs a real host's package repository
apt install connwatch
podman exec cw connwatchctl block 192.0.2.1 --duration 1h
```
```ini
threshold = 5
```
Inline: `connwatchd --check-config` and `make all`.
EOF
}

# expect NAME PATTERN SED: the good README changed by SED must fail with PATTERN;
# with an empty SED it must pass.
expect() {
    local name=$1 pattern=$2 sed=$3 out rc=0
    good >"$work/tree/README.md"
    [ -z "$sed" ] || sed -i "$sed" "$work/tree/README.md"
    out=$("$PY" "$src/tests/docs_check.py" "$work/tree" "$work/bin/connwatchd" \
        "$work/bin/connwatchctl" --ctl-out "$work/ctl" 2>&1) || rc=$?
    if [ -z "$sed" ]; then
        if [ $rc = 0 ] && grep -q '"block", "203.0.113.7"' "$work/ctl"; then
            echo "PASS: $name"; passed=$((passed + 1))
        else
            echo "FAIL: $name: exit $rc: $out"; failed=$((failed + 1))
        fi
    elif [ $rc = 1 ] && grep -Eq -- "$pattern" <<<"$out"; then
        echo "PASS: $name"; passed=$((passed + 1))
    else
        echo "FAIL: $name: exit $rc, expected a FAIL matching '$pattern': $out"; failed=$((failed + 1))
    fi
}

expect "the good tree passes, its connwatchctl commands handed on" '' ''
expect "a block without an info string" 'no info string' 's/^```text$/```/'
expect "a shell block without a tag" "expected docs-check, test=PATH or operator" 's/^```sh docs-check$/```sh/'
expect "an operator block without a reason" 'needs the reason' 's/^```sh operator: .*/```sh operator:/'
expect "a claim gone stale" 'does not appear in tests/thing_test.sh' 's/-o json$/-o verbose/'
expect "a claim naming a test that does not exist" 'does not exist' 's|test=tests/thing_test.sh|test=tests/gone_test.sh|'
expect "an option the binary does not have" 'has no option --thresold' 's/--threshold 3/--thresold 3/'
expect "a connwatchctl subcommand option it does not have" 'has no option --reason' 's/--duration 1d$/--duration 1d --reason x/'
expect "a make target that does not exist" 'No rule to make target' 's/^make build$/make bulid/'
expect "a connwatchd command --check-config refuses" 'exited 2' 's/--threshold 3/--threshold 0/'
expect "a configuration key that is no option" "'thresh' is not a connwatchd option" 's/^threshold = 5$/thresh = 5/'
expect "a command docs-check does not know how to run" 'does not run .rm.' 's/^make build$/rm -rf x/'
expect "an option of a connwatchctl run by podman exec" 'has no option --durration' 's/192.0.2.1 --duration 1h/192.0.2.1 --durration 1h/'
expect "an inline option that does not exist" 'has no option --check-confg' 's/--check-config`/--check-confg`/'
expect "an inline make target that does not exist" 'No rule to make target' 's/`make all`/`make al`/'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
