#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The man page must match the binary: every long option that `--help` lists is
# documented in the page, every option the page documents exists, and mandoc
# finds nothing to warn about.
# Usage: man_check.sh BINARY MANPAGE
set -euo pipefail
bin=$1 page=$2
fail=0

lint=$(mandoc -Tlint -Wwarning "$page" 2>&1) || true
if [ -n "$lint" ]; then
    echo "FAIL: mandoc -Tlint on $page:"; echo "$lint"; fail=1
fi

help_opts=$("$bin" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u)
# In mdoc, long options are written "Fl \-name".
page_opts=$(grep -oE 'Fl \\-[a-z][a-z-]+' "$page" | sed 's/^Fl \\-/--/' | sort -u)
[ -n "$help_opts" ] || { echo "FAIL: $bin --help listed no options"; exit 1; }

missing=$(comm -23 <(echo "$help_opts") <(echo "$page_opts"))
extra=$(comm -13 <(echo "$help_opts") <(echo "$page_opts"))
if [ -n "$missing" ]; then echo "FAIL: in --help but not in $page:" $missing; fail=1; fi
if [ -n "$extra" ]; then echo "FAIL: in $page but not in --help:" $extra; fail=1; fi
[ "$fail" = 0 ] && echo "PASS: $(echo "$help_opts" | wc -l) options documented, lint clean"
exit "$fail"
