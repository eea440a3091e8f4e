#!/bin/sh
# How dlc's compile time and memory grow with the model (issue 11: the
# compiler scales with the model). For each kind of generated model
# (gen.sh) and size, prints the wall and user time and the peak resident
# memory of one compilation, so that superlinear growth shows as a ratio
# above 2 between a size and its double. Run by hand:
#
#   bench/scale/run.sh [DLC] [KINDS] [SIZES] [-- DLC OPTIONS]
#   bench/scale/run.sh build/release/dlc "dense eltwise" "1000 2000 5000 10000"
#   bench/scale/run.sh build/release/dlc for "10000 100000" -- --emit=header
#
# DLC defaults to build/release/dlc; KINDS to "dense eltwise for"; SIZES to
# "1000 2000 5000 10000"; the options to -O2 (an object with training code).
# A compilation is stopped after BENCH_SCALE_TIMEOUT seconds (default 600)
# and gets BENCH_SCALE_MEM KB of address space (default 16000000).
set -eu
here=$(dirname "$0")
dlc=${1:-build/release/dlc}
kinds=${2:-dense eltwise for}
sizes=${3:-1000 2000 5000 10000}
[ $# -ge 3 ] && shift 3 || shift $#
[ "${1:-}" = -- ] && shift
[ $# -eq 0 ] && set -- -O2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-8s %8s %8s %10s %10s  %s\n' kind size lines "wall s" "user s" "peak MB"
for kind in $kinds; do
    for n in $sizes; do
        "$here/gen.sh" "$kind" "$n" >"$tmp/m.dl"
        status=0
        (ulimit -v "${BENCH_SCALE_MEM:-16000000}"
         exec /usr/bin/time -f '%e %U %M' -o "$tmp/time" \
             timeout "${BENCH_SCALE_TIMEOUT:-600}" "$dlc" "$tmp/m.dl" -o "$tmp/m.o" "$@") \
            >"$tmp/out" 2>&1 || status=$?
        # time(1) puts "Command exited with non-zero status N" first
        read -r wall user kb <<EOF || true
$(tail -n 1 "$tmp/time")
EOF
        note=
        [ "$status" -ne 0 ] && note="exit $status: $(grep -v '^Command' "$tmp/out" | head -1)"
        printf '%-8s %8s %8s %10s %10s %9s  %s\n' "$kind" "$n" "$(wc -l <"$tmp/m.dl")" \
            "$wall" "$user" "$((kb / 1024))" "$note"
    done
done
