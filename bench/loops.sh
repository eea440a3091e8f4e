#!/usr/bin/env bash
# Runs a program with DLRT_PROFILE_LOOPS (runtime/profile.c) and prints its
# loop profile with the task functions named:
#   bench/loops.sh build/release/bench/bench_gpt --threads 2 32 20 2
# One row per parallel step: loops, tasks a loop, wall time, the calling
# thread's wait for the others, its time alone before the loop.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 PROGRAM [ARG ...]" >&2; exit 2; }
prof=$(mktemp)
trap 'rm -f "$prof"' EXIT
DLRT_PROFILE_LOOPS="$prof" "$@" >&2
while IFS= read -r line; do
    fn=${line##* }
    if [[ $line != \#* && $fn == *+0x* ]]; then
        name=$(addr2line -f -e "${fn%+0x*}" "0x${fn##*+0x}" 2>/dev/null | head -1)
        [ -n "$name" ] && [ "$name" != "??" ] && line="${line% *} $name"
    fi
    printf '%s\n' "$line"
done <"$prof"
