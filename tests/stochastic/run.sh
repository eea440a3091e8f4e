#!/bin/sh
# Training-mode stochastic_pool2d from outside (pool.c says what it
# checks): pool.dl.in compiled with dlc for f32 and f64, each at -O0 and
# -O2, linked with pool.c and libdlrt, and run. Prints PASS/FAIL per
# build and "N passed, M failed".
#
# usage: run.sh DLC LIBDLRT SOURCE_DIR [LINK_LIBS]
#   LINK_LIBS: what the runtime needs (default "-lopenblas -lpthread -lm")
#   CC, STOCHASTIC_CFLAGS (e.g. sanitizer flags), STOCHASTIC_KEEP=1 (keep
#   the work dir)
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 DLC LIBDLRT SOURCE_DIR [LINK_LIBS]" >&2
    exit 2
fi
dlc=$1 rt=$2 src=$3
libs=${4:--lopenblas -lpthread -lm}
here=$src/tests/stochastic
cc=${CC:-cc}
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-stochastic.XXXXXX") || exit 2
if [ "${STOCHASTIC_KEEP:-0}" = 1 ]; then
    echo "work dir: $work"
else
    trap 'rm -rf "$work"' EXIT
fi
export OPENBLAS_NUM_THREADS=1

. "$src/tests/common/report.sh"
for dtype in f32 f64; do
    real=double
    [ $dtype = f32 ] && real=float
    for lvl in 0 2; do
        name=pool-$dtype-O$lvl
        d=$work/$name
        mkdir -p "$d"
        sed "s/@DTYPE@/$dtype/g" "$here/pool.dl.in" >"$d/spool.dl"
        ok=0
        if "$dlc" "$d/spool.dl" -O$lvl -o "$d/spool.o" >"$d/log" 2>&1 &&
            $cc -std=c11 -g -O1 -Wall -Wextra -Wpedantic -Wshadow -Werror \
                ${STOCHASTIC_CFLAGS:-} -DREAL=$real -I"$d" -I"$src/runtime" \
                "$here/pool.c" "$d/spool.o" "$rt" $libs -o "$d/run" >>"$d/log" 2>&1 &&
            "$d/run" >>"$d/log" 2>&1; then
            ok=1
        fi
        result "$name" $ok "$d/log"
    done
done
summary
