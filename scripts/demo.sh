#!/usr/bin/env bash
# The main job, for now: build dlc, check every example model, and print
# the graph IR of the MNIST MLP after shape inference. (Training it on
# MNIST arrives with native code generation and autodiff.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh build/release >/dev/null
dlc=build/release/dlc
status=0
# Files without a model (examples/common/layers.dl) are libraries of defs.
for f in $(grep -rl --include='*.dl' '^model ' examples | sort); do
  if $dlc check "$f"; then
    echo "ok      $f"
  else
    echo "FAILED  $f"
    status=1
  fi
done
echo
echo "== IR of examples/mnist/mnist_mlp.dl"
$dlc examples/mnist/mnist_mlp.dl --emit=ir -o -
exit $status
