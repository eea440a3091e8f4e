#!/bin/sh
# Builds libdlrt without BLAS into OUT/libdlrt.a with the C compiler CC
# and archiver AR, the way CMake builds it with DLC_BLAS=OFF, for the
# cross-target tests (aarch64.sh, baremetal.sh).
#
# usage: runtime.sh CC AR SOURCE_DIR OUT
set -eu
cc=$1 ar=$2 src=$3 out=$4
version=$(sed -n 's/^project(dlc VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
mkdir -p "$out/rt"
for f in "$src"/runtime/*.c; do
    $cc -std=c11 -O2 -ffp-contract=off -D_GNU_SOURCE -DDLC_VERSION="\"$version\"" -DDLRT_NO_BLAS \
        -I"$src/runtime" -c "$f" -o "$out/rt/$(basename "$f" .c).o" || {
        echo "FAIL: $cc $f" >&2
        exit 1
    }
done
rm -f "$out/libdlrt.a"
$ar rcs "$out/libdlrt.a" "$out"/rt/*.o
