#!/bin/sh
# Execution tests: for every tests/exec/*.dl model and *.ir graph (textual
# IR, for the internal ops that .dl cannot call; or the models named),
# compile it with dlc at each optimization level its "# EXEC: levels=..."
# line asks for (default 0,2; the list must hold 0 and 2), write the
# shape-checked IR for the reference (--dump-ir=shape: the graph before
# simplification and fusion, so the reference does not share the compiler's
# rewrites), build the harness against the object, run it, and print a
# summary "N passed, M failed". The -O0 run dumps its outputs and every
# other level compares its own with them directly (harness --against), so
# the levels are held to agree with each other, not only each with the
# reference. Models are compiled --inference-only: these are tests of the
# forward pass; the training code has its own (tests/train, tests/gradcheck).
# Models in tests/exec/pending/ are not run (see pending/README).
#
# usage: run.sh DLC LIBDLRT "LIBDLC_PASSES LIBDLC_IR" SOURCE_DIR [LINK_LIBS] [MODEL.dl|MODEL.ir...]
#   LINK_LIBS: what the runtime needs (default "-lopenblas -lpthread -lm")
#   CC, EXEC_CFLAGS (e.g. sanitizer flags), EXEC_KEEP=1 (keep the work dir),
#   EXEC_VERBOSE=1 (print every harness log, not only the failing ones)
set -u
if [ $# -lt 4 ]; then
    echo "usage: $0 DLC LIBDLRT \"LIBDLC_PASSES LIBDLC_IR\" SOURCE_DIR [LINK_LIBS] [MODEL.dl...]" >&2
    exit 2
fi
dlc=$1 rt=$2 core=$3 src=$4
shift 4
libs="-lopenblas -lpthread -lm"
if [ $# -gt 0 ]; then
    libs=$1
    shift
fi
[ $# -gt 0 ] || set -- "$src"/tests/exec/*.dl "$src"/tests/exec/*.ir
cc=${CC:-cc}
warn="-Wall -Wextra -Wpedantic -Wshadow -Werror"
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-exec.XXXXXX") || exit 2
[ "${EXEC_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

echo "harness: $cc ${EXEC_CFLAGS:-}"
# the reference once for all models
if ! "$cc" -std=c11 -D_GNU_SOURCE -g -O1 $warn ${EXEC_CFLAGS:-} -I"$src/ir" -I"$src/passes" -c "$src/tests/exec/ref.c" \
        -o "$work/ref.o"; then
    echo "compiling the reference failed"
    exit 1
fi

. "$src/tests/common/report.sh"
for model in "$@"; do
    base=$(basename "$model")
    base=${base%.*}
    name=$(sed -n 's/^[[:space:]]*model[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$model" | head -n 1)
    levels=$(sed -n 's/^# EXEC:.*levels=\([0-9,]*\).*/\1/p' "$model" | tail -n 1 | tr ',' '\n' |
        sort -n -u | tr '\n' ' ')
    [ -n "$levels" ] || levels="0 2"
    levels=${levels% }
    case " $levels " in
    *" 0 "*) case " $levels " in *" 2 "*) both=1 ;; *) both=0 ;; esac ;;
    *) both=0 ;;
    esac
    if [ $both = 0 ]; then
        echo "levels are '$levels'; -O0 and -O2 must both run" >"$work/$base.levels"
        result "$base" 0 "$work/$base.levels"
        continue
    fi
    outs=$work/$base-O0.out
    for lvl in $levels; do
        d=$work/$base-O$lvl
        mkdir -p "$d"
        log=$d/log
        ok=1
        if [ "$lvl" = 0 ]; then
            levelopt="--level 0 --dump $outs"
        else
            levelopt="--level $lvl --against $outs"
        fi
        if ! "$dlc" "$model" --inference-only -O"$lvl" -o "$d/m.o" >"$log" 2>&1; then
            echo "dlc -O$lvl failed:" >>"$log"
            ok=0
        elif ! "$dlc" "$model" --dump-ir=shape --emit=ir -o /dev/null 2>"$d/m.ir"; then
            echo "dlc --dump-ir=shape failed" >>"$log"
            ok=0
        elif ! "$cc" -std=c11 -D_GNU_SOURCE -g -O1 $warn ${EXEC_CFLAGS:-} -I"$src/ir" -I"$src/passes" \
                -I"$src/tests/exec" -I"$src/runtime" -I"$src/tests/common" -I"$d" -DMODEL_HEADER='"m.h"' -DMODEL="$name" \
                "$src/tests/exec/harness.c" "$work/ref.o" "$d/m.o" $core "$rt" \
                $libs -o "$d/harness" >>"$log" 2>&1; then
            echo "compiling the harness failed" >>"$log"
            ok=0
        elif ! "$d/harness" "$d/m.ir" "$model" $levelopt >>"$log" 2>&1; then
            ok=0
        fi
        result "$base-O$lvl" $ok "$log" "${EXEC_VERBOSE:-0}"
    done
done
summary
