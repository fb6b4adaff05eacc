#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# Runs one libFuzzer target over the seed corpus in the repository.
#
#   run_fuzzer.sh FUZZER SEEDS --runs N [--artifacts DIR]
#       CI (the ctest tests, label "fuzz"): N inputs from seed 1, so a run is
#       repeatable; what it learns goes to a scratch directory removed at the end,
#       never into SEEDS.
#   run_fuzzer.sh FUZZER SEEDS --seconds S --keep DIR [--artifacts DIR]
#       make fuzz: S seconds from a random seed; new inputs are kept in DIR and
#       read again by the next run, so long runs build on each other.
#
# A crash, a leak, a sanitizer report, a failed invariant (abort) or an input that
# takes more than 10 s fails the run; libFuzzer writes the input to the artifacts
# directory (crash-..., leak-..., timeout-...) and prints it (Base64:) when short.
# Replay one with: FUZZER ARTIFACT
set -euo pipefail

usage() {
    echo "usage: $0 FUZZER SEEDS (--runs N | --seconds S --keep DIR) [--artifacts DIR]" >&2
    exit 2
}
[ $# -ge 4 ] || usage
fuzzer=$1 seeds=$2
shift 2
runs='' seconds='' keep='' artifacts=''
while [ $# -gt 0 ]; do
    case $1 in
    --runs) runs=$2 ;;
    --seconds) seconds=$2 ;;
    --keep) keep=$2 ;;
    --artifacts) artifacts=$2 ;;
    *) usage ;;
    esac
    shift 2 || usage
done
if [ ! -x "$fuzzer" ] || [ ! -d "$seeds" ]; then usage; fi
[ -n "$runs" ] || { [ -n "$seconds" ] && [ -n "$keep" ]; } || usage

if [ -n "$runs" ]; then
    corpus=$(mktemp -d /tmp/connwatch-fuzz.XXXXXX)
    trap 'rm -rf "$corpus"' EXIT
    limits=(-runs="$runs" -seed=1)
else
    corpus=$keep
    mkdir -p "$corpus"
    limits=(-max_total_time="$seconds")
fi
name=$(basename "$fuzzer")
artifacts=${artifacts:-$PWD}
mkdir -p "$artifacts"

# print_stacktrace: UBSan's reports are fatal here (-fno-sanitize-recover) but
# without a stack by default. -close_fd_mask=1: the targets' own stdout (CLI11's
# --help, say) is noise; libFuzzer reports on stderr.
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
echo "$name: $(find "$seeds" -type f | wc -l) seeds, ${runs:+$runs runs}${seconds:+$seconds s}"
# Not exec: the EXIT trap must still remove the scratch corpus.
"$fuzzer" "${limits[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
    -close_fd_mask=1 -print_final_stats=1 -artifact_prefix="$artifacts/$name-" \
    "$corpus" "$seeds"
