#!/bin/sh
# Code generation end to end: compiles each model with dlc at -O0 and -O2,
# builds its C driver (*_main.c, which compares outputs with naive loops
# or, for mathfn, the inline exp/sigmoid/tanh with libm in f64, for half
# the inline f16/bf16 conversions with a reference in f64)
# against the generated header, links with libdlrt + OpenBLAS + libm and
# runs it; checks that the headers compile alone as C99 and C++ with
# warnings as errors, that --target=aarch64-linux-gnu gives an aarch64 ELF
# object, and that dlc reports LLVM errors with exit status 2.
#
# usage: run.sh DLC LIBDLRT RUNTIME_DIR OPENBLAS_LIB WORK_DIR
set -eu
dlc=$1 libdlrt=$2 rtdir=$3 blas=$4 work=$5
here=$(cd "$(dirname "$0")" && pwd)
cc=${CC:-cc}
flags=${DRIVER_FLAGS:-}
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# mathfn and half feed NaN and infinities on purpose (no input checks);
# mathfn runs once more without fused multiply-adds (x86-64's baseline
# CPU), since its error bounds must hold either way.
for model in mlp ops nobatch mathfn half; do
    opts="-O0 -O2"
    if [ $model = mathfn ] && [ "$(uname -m)" = x86_64 ]; then
        opts="$opts -O2,--mcpu=x86-64"
    fi
    for opt in $opts; do
        d=$model$(echo "$opt" | tr -d ,=)
        mkdir -p "$d"
        # shellcheck disable=SC2046 # opt is a comma-separated option list
        "$dlc" "$here/$model.dl" $(echo "$opt" | tr , ' ') $(case $model in mathfn | half) echo --no-checks ;; esac) \
            -o "$d/$model.o" || fail "dlc $model $opt"
        [ -s "$d/$model.o" ] && [ -s "$d/$model.h" ] || fail "$model $opt: no .o or .h"
        $cc $flags -std=c11 -Wall -Wextra -pedantic -Werror -I"$d" -I"$rtdir" -I"$here" \
            "$here/${model}_main.c" "$d/$model.o" "$libdlrt" ${blas:+"$blas"} -lm -lpthread \
            -o "$d/run" || fail "link $model $opt"
        "$d/run" || fail "run $model $opt"
    done
    # the header alone, as C99 and as C++
    printf '#include "%s.h"\n' "$model" > "$model-c99.c"
    $cc -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$model-O2" -I"$rtdir" \
        "$model-c99.c" || fail "$model.h as C99"
    if command -v c++ >/dev/null 2>&1; then
        c++ -x c++ -std=c++11 -Wall -Wextra -pedantic -Werror -fsyntax-only -I"$model-O2" \
            -I"$rtdir" "$model-c99.c" || fail "$model.h as C++"
    fi
done

# cross-compilation: ELF e_machine (bytes 18-19, little endian) is 183
"$dlc" "$here/mlp.dl" --target=aarch64-linux-gnu -o a64.o || fail "aarch64"
machine=$(od -An -j18 -N2 -tu2 a64.o | tr -d ' ')
[ "$machine" = 183 ] || fail "aarch64 object has e_machine $machine"

# every kind of output, and LLVM's errors as dlc errors with status 2
"$dlc" "$here/mlp.dl" --emit=llvm --emit=asm --emit=header -o out.o || fail "emit"
grep -q 'define.*@mlp_forward(' out.ll || fail "no mlp_forward in out.ll"
grep -q 'mlp_forward' out.s || fail "no mlp_forward in out.s"
grep -q 'int mlp_forward(mlp \*m, int batch, const float \*x, float \*probs);' out.h ||
    fail "mlp_forward prototype"
set +e
"$dlc" "$here/mlp.dl" --target=no-such-arch -o x.o 2> err.txt; st=$?
set -e
[ $st = 2 ] && grep -q 'dlc: error: unknown target' err.txt || fail "bad triple: status $st"
set +e
"$dlc" "$here/mlp.dl" -o no/such/dir/x.o 2> err.txt; st=$?
set -e
[ $st = 2 ] && grep -q "dlc: error: cannot write" err.txt || fail "unwritable: status $st"
echo "codegen: all passed"
