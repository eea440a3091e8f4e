#!/usr/bin/env bash
# Benchmarks, run by hand: builds dlc (scripts/build.sh) and, for each MNIST
# classifier (the MLP of examples/mnist, LeNet-5 of examples/lenet, the
# ResNet of examples/resnet: BENCH_RESNET="BATCH STEPS ROUNDS", default
# "64 30 5", as its steps are 40 times LeNet-5's) and
# each character-level language model (the LSTM of examples/charlstm, the
# Transformer of examples/gpt), prints its memory plan (dlc --stats), its
# compiled training and inference throughput (bench/mnist.c in samples/s,
# bench/text.c in tokens/s) and, when PyTorch is installed (Debian's
# python3-torch, for /usr/bin/python3), PyTorch's throughput for the same
# model measured in the same run (bench/torch_mnist.py, bench/torch_text.py),
# with the ratios. "compile" (bench/compile/compile.py) times the compiler
# itself: every example at -O2 and the char LSTM at T=64 and T=512, phase
# by phase, with object sizes and peak memory; BENCH_COMPILE holds its
# options (such as "--baseline OTHER_DLC --runs 5").
# Both sides use the same threads: dlc's pool (--threads) and torch get
# BENCH_THREADS (default: all cores), and each model is also run at one
# thread, to print the scaling (N threads over 1) of dlc and of torch side
# by side; OpenBLAS runs one thread of its own under libdlrt's pool.
# OPENBLAS_CORETYPE is left as the environment sets it. The run starts with
# the machine's one-thread peaks (bench/peak.c: OpenBLAS's sgemm and the
# core's fused multiply-adds, the roof), and each model's
# lines are followed by its achieved GFLOP/s and their fraction of that
# peak (bench/roofline.py, from the flops dlc --stats=json counts). BENCH_MODELS picks the models (default "mnist_mlp lenet resnet charlstm
# gpt compile"), BENCH_BUILD the build directory (default build/release). The
# arguments size the MNIST runs; BENCH_TEXT="BATCH STEPS ROUNDS" the text
# models' (default: each model's largest batch, 20 steps, 5 rounds).
#
#   bench/run.sh [BATCH [STEPS [ROUNDS]]]        default 64 300 5
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BENCH_BUILD:-build/release}
scripts/build.sh "$build" -DDLC_BENCH=ON >/dev/null
threads=${BENCH_THREADS:-$(nproc)}
py=/usr/bin/python3
have_torch=0
if [ -x $py ] && $py -c 'import torch' 2>/dev/null; then
    have_torch=1
fi
peak_line=$("$build"/bench/bench_peak)
echo "$peak_line"
# the roof: the core's fused multiply-add peak where bench_peak measures
# it (x86-64), else OpenBLAS's sgemm
peak=$(echo "$peak_line" | sed -n 's/^core peak \([0-9.]*\) GFLOP.*/\1/p')
[ -n "$peak" ] || peak=$(echo "$peak_line" | sed -n 's/^sgemm peak \([0-9.]*\) GFLOP.*/\1/p')
rate() { echo "$1" | sed -n "s/.*$2 \([0-9]*\) \(samples\|tokens\).*/\1/p"; }
for model in ${BENCH_MODELS:-mnist_mlp lenet resnet charlstm gpt compile}; do
    if [ "$model" = compile ]; then
        echo "== compile time (bench/compile/compile.py ${BENCH_COMPILE:-})"
        # shellcheck disable=SC2086 # BENCH_COMPILE is a list of options
        $py bench/compile/compile.py --dlc "$build/dlc" ${BENCH_COMPILE:-}
        continue
    fi
    case $model in
    mnist_mlp) dl=examples/mnist/mnist_mlp.dl torch=mnist sizes=("$@") ;;
    lenet) dl=examples/lenet/lenet.dl torch=mnist sizes=("$@") ;;
    resnet) dl=examples/resnet/resnet.dl torch=mnist sizes=(${BENCH_RESNET:-64 30 5}) ;;
    charlstm | gpt) dl=examples/$model/$model.dl torch=text sizes=(${BENCH_TEXT:-}) ;;
    *) echo "bench/run.sh: unknown model '$model' (mnist_mlp, lenet, resnet, charlstm, gpt, compile)" >&2; exit 2 ;;
    esac
    echo "== memory plan of $dl (dlc --stats)"
    tmp=/tmp/dlc-bench-$model.$$
    "$build"/dlc $dl --stats -o $tmp.o 2>&1 | sed -n '/^memory plan/,/^instance/p'
    "$build"/dlc $dl --stats=json -o $tmp.o 2>$tmp.json
    rm -f $tmp.o $tmp.h
    echo "== $model throughput ($threads threads, OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
    dlc_line=$("$build"/bench/bench_$model --threads "$threads" "${sizes[@]}")
    echo "$dlc_line"
    one_line=$("$build"/bench/bench_$model --threads 1 "${sizes[@]}")
    echo "$one_line"
    $py bench/roofline.py $tmp.json "$peak" "$dlc_line"
    $py bench/roofline.py $tmp.json "$peak" "$one_line"
    rm -f $tmp.json
    scaling() { # line at N threads, line at 1: "train X.XXx, forward Y.YYx"
        awk -v t="$(rate "$1" train)" -v t1="$(rate "$2" train)" \
            -v f="$(rate "$1" forward)" -v f1="$(rate "$2" forward)" \
            'BEGIN { printf "train %.2fx, forward %.2fx", t / t1, f / f1 }'
    }
    echo "dlc scaling $model, $threads threads over 1: $(scaling "$dlc_line" "$one_line")"
    if [ -x "$build"/bench/bench_${model}_nochecks ]; then
        # the input, loss and gradient checks (docs/API.md): with / without
        off_line=$("$build"/bench/bench_${model}_nochecks "${sizes[@]}")
        echo "--no-checks: $off_line"
        awk -v on="$(rate "$dlc_line" train)" -v off="$(rate "$off_line" train)" \
            -v fon="$(rate "$dlc_line" forward)" -v foff="$(rate "$off_line" forward)" \
            'BEGIN { printf "checks cost: train %+.1f%%, forward %+.1f%%\n", (off / on - 1) * 100, (foff / fon - 1) * 100 }'
    fi
    if [ $have_torch = 1 ]; then
        # torch's BLAS (Debian's: OpenBLAS with threads of its own) takes
        # its threads from OMP_NUM_THREADS, not from torch.set_num_threads:
        # each run gets its own count, or the one-thread run's products
        # would run on $threads
        torch_line=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
            $py bench/torch_$torch.py --model $model --threads "$threads" "${sizes[@]}")
        echo "$torch_line"
        torch_one=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
            $py bench/torch_$torch.py --model $model --threads 1 "${sizes[@]}")
        echo "$torch_one"
        echo "torch scaling $model, $threads threads over 1: $(scaling "$torch_line" "$torch_one")"
        awk -v dt="$(rate "$dlc_line" train)" -v tt="$(rate "$torch_line" train)" \
            -v df="$(rate "$dlc_line" forward)" -v tf="$(rate "$torch_line" forward)" \
            -v m="$model" \
            'BEGIN { printf "dlc / torch %s: train %.2fx, forward %.2fx\n", m, dt / tt, df / tf }'
    fi
done
if [ $have_torch = 0 ]; then
    echo "(PyTorch not installed: apt-get install python3-torch to compare)"
fi
