#!/usr/bin/env bash
# The main job: build dlc and the MNIST demo (dlc compiles
# examples/mnist/mnist_mlp.dl into an object with the whole training step,
# linked with examples/mnist/train_mnist.c and libdlrt), fetch MNIST once,
# and train the MLP for 3 epochs with a progress bar, test accuracy after
# each epoch and a checkpoint (mnist_mlp.safetensors). Arguments go to
# train_mnist: e.g. scripts/demo.sh --epochs 10, or --resume to continue.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build/release -DDLC_EXAMPLES=ON >/dev/null
scripts/fetch-mnist.sh
exec build/release/examples/train_mnist --data data/mnist --epochs 3 "$@"
