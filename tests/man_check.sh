#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# The man page must match the binary: every long option that `--help` lists is
# documented in the page, every option the page documents exists, and mandoc
# finds nothing to warn about.
# Usage: man_check.sh BINARY MANPAGE
#        man_check.sh --config BINARY CONFPAGE   (keys = the settable options)
set -euo pipefail
config=0
if [ "$1" = --config ]; then config=1; shift; fi
bin=$1 page=$2
fail=0

lint=$(mandoc -Tlint -Wwarning "$page" 2>&1) || true
if [ -n "$lint" ]; then
    echo "FAIL: mandoc -Tlint on $page:"; echo "$lint"; fail=1
fi

# The program's options, and those of its subcommands if it has any.
help_text=$("$bin" --help)
subs=$(printf '%s\n' "$help_text" | awk '/^Subcommands:/{on=1; next} on && NF {print $1}')
for sub in $subs; do help_text+=$'\n'$("$bin" "$sub" --help); done
help_opts=$(printf '%s\n' "$help_text" | grep -oE -- '--[a-z][a-z-]+' | sort -u)
# In mdoc, long options are written "Fl \-name"; config keys ".It Cm name".
if [ "$config" = 1 ]; then
    help_opts=$(printf '%s\n' "$help_opts" | grep -vxE -- '--(help|version|config|check-config|detach|verbose)')
    page_opts=$(grep -oE '^\.It Cm [a-z][a-z-]+' "$page" | sed 's/^\.It Cm /--/' | sort -u)
else
    page_opts=$(grep -oE 'Fl \\-[a-z][a-z-]+' "$page" | sed 's/^Fl \\-/--/' | sort -u)
fi
[ -n "$help_opts" ] || { echo "FAIL: $bin --help listed no options"; exit 1; }

missing=$(comm -23 <(echo "$help_opts") <(echo "$page_opts"))
extra=$(comm -13 <(echo "$help_opts") <(echo "$page_opts"))
if [ -n "$missing" ]; then echo "FAIL: in --help but not in $page:" $missing; fail=1; fi
if [ -n "$extra" ]; then echo "FAIL: in $page but not in --help:" $extra; fail=1; fi
[ "$fail" = 0 ] && echo "PASS: $(echo "$help_opts" | wc -l) options documented, lint clean"
exit "$fail"
