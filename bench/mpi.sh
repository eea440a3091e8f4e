#!/usr/bin/env bash
# Data-parallel scaling, run by hand: bench/ddp.c for the MLP and LeNet-5 on
# 1 and then 2 ranks of this machine (tests/mpi/mpirun.sh: shared memory
# between the ranks), one OpenBLAS thread per rank, the same global batch;
# prints each run's lines (on 2 ranks: the all-reduce after the backward,
# overlapped with it, and on the communication thread after it) and the
# speed-up of 2 ranks over 1. BENCH_BUILD
# is the build directory (default build/release); the arguments go to
# bench_ddp_NAME: [GLOBAL_BATCH [STEPS [ROUNDS]]] (default 64 200 5).
# Then, from the 1-rank step time C and the parameter count P, the model
# of docs/DISTRIBUTED.md for N ranks of the same per-rank batch (weak
# scaling): T(N) = C + 2(N-1)/N 4P/B + 2(N-1) alpha, over two networks.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BENCH_BUILD:-build/release}
scripts/build.sh "$build" -DDLC_BENCH=ON >/dev/null
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in mnist_mlp lenet; do
    one=$(sh tests/mpi/mpirun.sh 1 "$build/bench/bench_ddp_$model" "$@")
    two=$(sh tests/mpi/mpirun.sh 2 "$build/bench/bench_ddp_$model" "$@")
    echo "$one"
    echo "$two"
    ov=$(echo "$two" | sed -n 's/.*overlapped with the backward.*: \([0-9.]*\) ms per step.*/\1/p')
    two=$(echo "$two" | head -1)
    awk -v a="$(echo "$one" | sed -n 's/.*: step \([0-9.]*\) ms.*/\1/p')" -v b="$ov" -v m="$model" \
        'BEGIN { if (b) printf "%s: 2 ranks overlapped (the default) take %.2fx the step time of 1\n", m, b / a }'
    step() { echo "$1" | sed -n 's/.*: step \([0-9.]*\) ms.*/\1/p'; }
    awk -v a="$(step "$one")" -v b="$(step "$two")" -v m="$model" \
        'BEGIN { printf "%s: 2 ranks take %.2fx the step time of 1: speed-up %.2fx\n", m, b / a, a / b }'
    params=$(echo "$one" | sed -n 's/.*, \([0-9]*\) parameters.*/\1/p')
    awk -v c="$(step "$one")" -v p="$params" -v m="$model" 'BEGIN {
        split("1.16e9 11.6e9", bw); split("25e-6 3e-6", lat); split("10GbE 100Gb/s", name)
        for (k = 1; k <= 2; k++) {
            printf "%s, model over %s (time per step, throughput vs 1 rank):", m, name[k]
            for (n = 1; n <= 64; n *= 2) {
                t = c / 1e3 + 2 * (n - 1) / n * 4 * p / bw[k] + 2 * (n - 1) * lat[k]
                printf "  N=%d %.2f ms %.1fx", n, t * 1e3, n * c / 1e3 / t
            }
            printf "\n"
        }
    }'
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
