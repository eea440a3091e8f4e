#!/bin/sh
# The MNIST demo end to end: fetch MNIST (once, checksummed), train the MLP
# for 3 epochs and require 97.5% test accuracy; then train 1 epoch, stop,
# resume to 3 epochs and require a checkpoint identical, byte for byte, to
# the uninterrupted run's (parameters, Adam's moments, step, lr).
#
# usage: mnist.sh TRAIN_MNIST SOURCE_DIR
set -eu
train=$1 src=$2
"$src/scripts/fetch-mnist.sh" >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-mnist.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="--data $src/data/mnist"
"$train" $data --epochs 3 --min-accuracy 97.5 --checkpoint "$work/full.safetensors" 2>/dev/null
"$train" $data --epochs 1 --checkpoint "$work/resumed.safetensors" 2>/dev/null
"$train" $data --epochs 3 --resume --checkpoint "$work/resumed.safetensors" 2>/dev/null
if cmp "$work/full.safetensors" "$work/resumed.safetensors"; then
    echo "resume: bit for bit"
else
    echo "resume: the resumed run's checkpoint differs from the uninterrupted run's"
    exit 1
fi
