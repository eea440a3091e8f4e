#!/bin/sh
# Gradient checks through the compiled code: for every tests/gradcheck/*.dl
# model (f64, with a train statement), compile it with dlc at each
# optimization level its "# GRADCHECK: levels=..." line asks for (default
# 0,2), build harness.c against the object and the runtime, and run it:
# the compiled gradients against central differences of the compiled loss
# (harness.c says how). A model passes when it passes at every level.
# Models run JOBS at a time (default 2); the results print in order, then
# "N passed, M failed". Models in tests/gradcheck/pending/ are not run
# (see pending/README.md); pass them by name to try one.
#
# usage: run.sh DLC LIBDLRT SOURCE_DIR [LINK_LIBS] [MODEL.dl...]
#   LINK_LIBS: what the runtime needs (default "-lopenblas -lpthread -lm")
#   CC, EXEC_CFLAGS (e.g. sanitizer flags), JOBS, GRADCHECK_KEEP=1 (keep the
#   work dir), GRADCHECK_VERBOSE=1 (print every harness log),
#   GRADCHECK_SEED=N (another sample point than the models' seeds)
set -u
if [ "${1:-}" = --one ]; then
    # one model, in the work dir $2: writes $2/result (PASS or FAIL ...) and
    # $2/log
    d=$2 model=$3
    name=$(sed -n 's/^[[:space:]]*model[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' \
        "$model" | head -n 1)
    levels=$(sed -n 's/^# GRADCHECK:.*levels=\([0-9,]*\).*/\1/p' "$model" | tail -n 1 |
        tr ',' ' ')
    [ -n "$levels" ] || levels="0 2"
    bad=""
    : >"$d/log"
    for lvl in $levels; do
        o=$d/O$lvl
        mkdir -p "$o"
        echo "== -O$lvl" >>"$d/log"
        start=$(date +%s.%N)
        if ! "$GC_DLC" "$model" -O"$lvl" -o "$o/m.o" >>"$d/log" 2>&1; then
            echo "dlc -O$lvl failed" >>"$d/log"
            bad="$bad -O$lvl"
        elif ! "$GC_CC" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wpedantic -Wshadow \
                -Wstrict-prototypes -Wmissing-prototypes -Werror ${EXEC_CFLAGS:-} \
                -I"$GC_SRC/runtime" -I"$GC_SRC/tests/common" -I"$o" \
                -DMODEL_HEADER='"m.h"' -DMODEL="$name" \
                "$GC_SRC/tests/gradcheck/harness.c" "$o/m.o" "$GC_RT" $GC_LIBS \
                -o "$o/harness" >>"$d/log" 2>&1; then
            echo "compiling the harness failed" >>"$d/log"
            bad="$bad -O$lvl"
        elif ! "$o/harness" "$model" >>"$d/log" 2>&1; then
            bad="$bad -O$lvl"
        fi
        end=$(date +%s.%N)
        awk "BEGIN { printf \"   (%.2f s)\\n\", $end - $start }" >>"$d/log"
    done
    if [ -z "$bad" ]; then
        echo "PASS: $(basename "$model" .dl) (-O$(echo $levels | sed 's/ /, -O/g'))" >"$d/result"
    else
        echo "FAIL: $(basename "$model" .dl) at$bad" >"$d/result"
    fi
    exit 0
fi

if [ $# -lt 3 ]; then
    echo "usage: $0 DLC LIBDLRT SOURCE_DIR [LINK_LIBS] [MODEL.dl...]" >&2
    exit 2
fi
GC_DLC=$1 GC_RT=$2 GC_SRC=$3
shift 3
GC_LIBS="-lopenblas -lpthread -lm"
if [ $# -gt 0 ]; then
    GC_LIBS=$1
    shift
fi
[ $# -gt 0 ] || set -- "$GC_SRC"/tests/gradcheck/*.dl
GC_CC=${CC:-cc}
export GC_DLC GC_RT GC_SRC GC_LIBS GC_CC OPENBLAS_NUM_THREADS=1
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-gradcheck.XXXXXX") || exit 2
[ "${GRADCHECK_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
echo "harness: $GC_CC ${EXEC_CFLAGS:-}"

# the harness itself, on a hand-written stand-in for a model (selftest.c):
# it passes the right gradients and catches every planted fault
. "$GC_SRC/tests/common/report.sh"
st=$work/selftest
mkdir -p "$st"
if ! "$GC_CC" -std=c11 -D_GNU_SOURCE -g -O1 -Wall -Wextra -Wpedantic -Wshadow \
        -Wstrict-prototypes -Wmissing-prototypes -Werror ${EXEC_CFLAGS:-} -I"$GC_SRC/runtime" \
        -I"$GC_SRC/tests/common" -I"$GC_SRC/tests/gradcheck" \
        -DMODEL_HEADER='"selftest.h"' -DMODEL=gc_selftest \
        "$GC_SRC/tests/gradcheck/harness.c" "$GC_SRC/tests/gradcheck/selftest.c" "$GC_RT" \
        $GC_LIBS -o "$st/harness" >"$st/log" 2>&1; then
    bad="(does not compile)"
else
    bad=""
    for fault in none grad frozen overwrite flat noise; do
        GRADCHECK_FAULT=$fault "$st/harness" /dev/null >"$st/$fault.log" 2>&1
        rc=$? want=1
        [ $fault = none ] && want=0
        if [ $rc != $want ]; then
            bad="$bad $fault (exit $rc, want $want)"
            cat "$st/$fault.log" >>"$st/log"
        fi
    done
fi
if [ -z "$bad" ]; then
    result "selftest (right gradients pass; each planted fault fails)" 1 "$st/log"
else
    result "selftest:$bad" 0 "$st/log"
fi

# one work dir per model, numbered in the order given
i=0
for model in "$@"; do
    i=$((i + 1))
    mkdir -p "$work/$i"
    printf '%s\n%s\n' "$work/$i" "$model"
done | xargs -n 2 -P "${JOBS:-2}" sh "$0" --one

i=0
for model in "$@"; do
    i=$((i + 1))
    d=$work/$i
    if [ ! -f "$d/result" ]; then
        echo "FAIL: $(basename "$model" .dl): no result" >"$d/result"
    fi
    line=$(cat "$d/result")
    case $line in PASS*) ok=1 ;; *) ok=0 ;; esac
    result "${line#*: }" $ok "$d/log" "${GRADCHECK_VERBOSE:-0}"
done
npending=$(ls "$GC_SRC"/tests/gradcheck/pending/*.dl 2>/dev/null | wc -l)
[ "$npending" -gt 0 ] && echo "not run: $npending models in tests/gradcheck/pending/ (see its README.md)"
summary
