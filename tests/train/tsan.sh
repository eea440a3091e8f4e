#!/bin/sh
# Thread safety under ThreadSanitizer (docs/RUNTIME.md, "Threads"): a
# BLAS-free libdlrt built with -fsanitize=thread, the MNIST MLP compiled
# by dlc to LLVM IR and instrumented too (clang compiles the .ll with
# -fsanitize=thread once its functions carry the sanitize_thread
# attribute), linked with tests/train/threads.c. Runs two instances
# trained from two threads at once (and against one after the other) and
# the same training at 1, 2 and 3 threads; any race TSan sees fails it.
# Exit 77 (skipped) when clang cannot build a TSan program here.
#
# usage: tsan.sh DLC SOURCE_DIR WORK
set -eu
dlc=$1 src=$2 work=$3
cc=${TSAN_CC:-clang-19}
rm -rf "$work" && mkdir -p "$work/rt"
echo 'int main(void) { return 0; }' >"$work/probe.c"
if ! $cc -fsanitize=thread "$work/probe.c" -o "$work/probe" 2>/dev/null || ! "$work/probe"; then
    echo "tsan.sh: $cc cannot build and run a ThreadSanitizer program; skipped"
    exit 77
fi
flags="-std=c11 -O1 -g -fsanitize=thread -D_GNU_SOURCE -ffp-contract=off -DDLRT_NO_BLAS"
version=$(sed -n 's/^project(dlc VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
for f in "$src"/runtime/*.c; do
    # shellcheck disable=SC2086 # flags is a list of words
    $cc $flags -DDLC_VERSION="\"$version\"" -I"$src/runtime" -c "$f" -o "$work/rt/$(basename "$f" .c).o"
done
# small enough for seconds under TSan, large enough that GEMMs are tiled
"$dlc" "$src/examples/mnist/mnist_mlp.dl" -D H=128 -O1 --emit=llvm -o "$work/mlp.ll"
sed -E 's/^(attributes #[0-9]+ = \{)/\1 sanitize_thread/' "$work/mlp.ll" >"$work/mlp.tsan.ll"
$cc -fsanitize=thread -O1 -c "$work/mlp.tsan.ll" -o "$work/mlp.o"
# shellcheck disable=SC2086
$cc $flags -DINFO=mnist_mlp_info -I"$src/runtime" "$src/tests/train/threads.c" "$work/mlp.o" \
    "$work"/rt/*.o -lpthread -lm -o "$work/threads"
export TSAN_OPTIONS="halt_on_error=1 exitcode=66"
"$work/threads" 32 10 apart
"$work/threads" 32 10 counts
