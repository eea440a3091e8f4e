#!/bin/sh
# Runs the README's quick start as written, in a scratch directory, with
# dlc and libdlrt from the build directory BUILD (default build/release);
# the test quickstart runs it. CFLAGS: extra flags (the sanitizers).
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$src/build/release}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-quickstart.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
"$build/dlc" "$src/examples/quickstart/xor.dl" -o xor.o
${CC:-cc} ${CFLAGS:-} "$src/examples/quickstart/xor.c" xor.o -I. -I"$src/runtime" \
    "$build/libdlrt.a" -lopenblas -lm -o xor
./xor
