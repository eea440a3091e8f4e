#!/usr/bin/env bash
# Benchmarks, run by hand: builds build/release, prints the MNIST MLP's
# memory plan (dlc --stats), its compiled training and inference throughput,
# and, when PyTorch is installed (Debian's python3-torch, for
# /usr/bin/python3), PyTorch's throughput for the same model measured in
# the same run, with the ratios. Both sides use the same threads: OpenBLAS
# and torch get BENCH_THREADS (default: all cores); OPENBLAS_CORETYPE is
# left as the environment sets it.
#
#   bench/run.sh [BATCH [STEPS [ROUNDS]]]        default 64 300 5
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build/release >/dev/null
threads=${BENCH_THREADS:-$(nproc)}
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
echo "== memory plan of examples/mnist/mnist_mlp.dl (dlc --stats)"
build/release/dlc examples/mnist/mnist_mlp.dl --stats -o /tmp/dlc-bench-mlp.o 2>&1 |
    sed -n '/^memory plan/,/^instance/p'
rm -f /tmp/dlc-bench-mlp.o /tmp/dlc-bench-mlp.h
echo "== throughput ($threads threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
dlc_line=$(build/release/bench/bench_mnist_mlp "$@")
echo "$dlc_line"
py=/usr/bin/python3
if [ -x $py ] && $py -c 'import torch' 2>/dev/null; then
    torch_line=$($py bench/torch_mnist_mlp.py "$@")
    echo "$torch_line"
    rate() { echo "$1" | sed -n "s/.*$2 \([0-9]*\) samples.*/\1/p"; }
    awk -v dt="$(rate "$dlc_line" train)" -v tt="$(rate "$torch_line" train)" \
        -v df="$(rate "$dlc_line" forward)" -v tf="$(rate "$torch_line" forward)" \
        'BEGIN { printf "dlc / torch: train %.2fx, forward %.2fx\n", dt / tt, df / tf }'
else
    echo "(PyTorch not installed: apt-get install python3-torch to compare)"
fi
