#!/bin/sh
# An MNIST demo end to end: fetch MNIST (once, checksummed), train for
# EPOCHS epochs and require MIN_ACCURACY percent test accuracy; with
# "resume", also train 1 epoch, stop, resume to EPOCHS and require a
# checkpoint identical, byte for byte, to the uninterrupted run's
# (parameters, optimizer state, step, lr).
#
# usage: mnist.sh TRAIN_PROGRAM SOURCE_DIR EPOCHS MIN_ACCURACY [resume]
set -eu
train=$1 src=$2 epochs=$3 min=$4 resume=${5:-}
"$src/scripts/fetch-mnist.sh" >&2
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-mnist.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="--data $src/data/mnist"
"$train" $data --epochs "$epochs" --min-accuracy "$min" --checkpoint "$work/full.safetensors" 2>/dev/null
[ "$resume" = resume ] || exit 0
"$train" $data --epochs 1 --checkpoint "$work/resumed.safetensors" 2>/dev/null
"$train" $data --epochs "$epochs" --resume --checkpoint "$work/resumed.safetensors" 2>/dev/null
if cmp "$work/full.safetensors" "$work/resumed.safetensors"; then
    echo "resume: bit for bit"
else
    echo "resume: the resumed run's checkpoint differs from the uninterrupted run's"
    exit 1
fi
