#!/usr/bin/env bash
# The main job: build dlc and the MNIST demo (dlc compiles
# examples/mnist/mnist_mlp.dl into an object with the whole training step,
# linked with examples/mnist/train_mnist.c and libdlrt), fetch MNIST once,
# and train the MLP for 3 epochs with a progress bar, test accuracy after
# each epoch and a checkpoint (mnist_mlp.safetensors). Arguments go to
# train_mnist: e.g. scripts/demo.sh --epochs 10, or --resume to continue.
# A first argument --ranks N trains data-parallel on N MPI ranks of this
# machine (scripts/mpirun.sh; docs/DISTRIBUTED.md), with the same results.
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=1
if [ "${1:-}" = --ranks ]; then
    ranks=${2:?--ranks wants a number}
    shift 2
fi
scripts/build.sh build/release -DDLC_EXAMPLES=ON >/dev/null
scripts/fetch-mnist.sh
if [ "$ranks" = 1 ]; then
    exec build/release/examples/train_mnist --data data/mnist --epochs 3 "$@"
fi
# the cores shared among the ranks: ranks x pool threads no more than the
# cores (libdlrt keeps OpenBLAS to one thread of its own)
DLRT_NUM_THREADS=${DLRT_NUM_THREADS:-$(( $(nproc) / ranks > 0 ? $(nproc) / ranks : 1 ))} \
    exec scripts/mpirun.sh "$ranks" -x DLRT_NUM_THREADS \
    build/release/examples/train_mnist --data data/mnist --epochs 3 "$@"
