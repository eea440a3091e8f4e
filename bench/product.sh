#!/usr/bin/env bash
# One matrix product as dlc generates it, against OpenBLAS (bench/product.c):
# writes a model of one product x[M, K] @ w[K, N] (with "tb": x @ w^T, w
# stored [N, K]), compiles it for this machine (--mcpu=native, or
# $MCPU) with the build's dlc, or $DLC, and prints the best of ROUNDS
# rounds of each, their GFLOP/s and dlc's speed over OpenBLAS's ("ta":
# x^T @ d instead, d [M, N]: out [K, N] over an inner extent of M rows,
# as a weight gradient x^T @ dy is). With
# BENCH_VS=OTHER_DLC it compiles the model with both and runs the two
# programs in turn, PAIRS times (default 3), so that a change to
# codegen/gemm.c is judged on the same host state:
#
#   bench/product.sh M K N [tb|ta]
#   BENCH_VS=/tmp/dlc-before bench/product.sh 2048 128 512
#
# ROUNDS (default 20) and THREADS (default 1) pass on; BENCH_BUILD is the
# build directory (default build/release).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 M K N [tb|ta]" >&2; exit 2; }
m=$1 k=$2 n=$3 tb=0 ta=0
[ "${4:-}" = tb ] && tb=1
[ "${4:-}" = ta ] && ta=1
cd "$(dirname "$0")/.."
build=${BENCH_BUILD:-build/release}
dlc=${DLC:-$build/dlc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ $ta = 1 ]; then
    param="input d: f32[B, $n];" use="transpose(x, [1, 0]) @ d"
elif [ $tb = 1 ]; then
    param="param w: f32[$n, $k] = uniform(-1, 1);" use="x @ transpose(w, [1, 0])"
else
    param="param w: f32[$k, $n] = uniform(-1, 1);" use="x @ w"
fi
cat >"$tmp/product.dl" <<EOF
model product {
    batch B <= $m;
    input x: f32[B, $k];
    $param
    output y = $use;
}
EOF
blas=$(sed -n 's/^OPENBLAS_LIB:FILEPATH=//p' "$build/CMakeCache.txt")
# variant NAME DLC: the program $tmp/NAME
variant() {
    "$2" --mcpu="${MCPU:-native}" --inference-only "$tmp/product.dl" -o "$tmp/$1.o"
    cc -O2 -Iruntime -I"$tmp" -DMODEL=product -DMODEL_HEADER="\"$1.h\"" -DPROD_K="$k" -DPROD_N="$n" \
        -DPROD_TB=$tb -DPROD_TA=$ta bench/product.c "$tmp/$1.o" "$build/libdlrt.a" "${blas:--lopenblas}" -lm \
        -lpthread -o "$tmp/$1"
}
variant a "$dlc"
if [ -z "${BENCH_VS:-}" ]; then
    "$tmp/a" "$m" "${ROUNDS:-20}" "${THREADS:-1}"
    exit
fi
variant b "$BENCH_VS"
echo "A: $dlc"
echo "B: $BENCH_VS"
for p in $(seq "${PAIRS:-3}"); do
    echo "pair $p, A: $("$tmp/a" "$m" "${ROUNDS:-20}" "${THREADS:-1}")"
    echo "pair $p, B: $("$tmp/b" "$m" "${ROUNDS:-20}" "${THREADS:-1}")"
done
