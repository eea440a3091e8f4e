#!/bin/sh
# aarch64 Linux under emulation: builds libdlrt without BLAS with the
# cross compiler, compiles the MNIST MLP, LeNet-5 and the char-LSTM with
# dlc --target=aarch64-linux-gnu, links each with driver.c (statically)
# (the LSTM over 16 characters, not 64, to compile in a few seconds)
# and runs it under qemu-aarch64: the forward pass, three training steps
# and the forward pass after them. The printouts are compared with the
# same driver on this machine (x86-64), both against a BLAS-free libdlrt
# built the same way and against the build's libdlrt (OpenBLAS, if so
# built). The inputs come from driver.c, so nothing needs MNIST.
#
# What must agree (docs/TARGETS.md): the MLP and LeNet-5, whose kernels
# have no fused multiply-adds, give the same bits on both targets with the
# BLAS-free runtime when their products run there (--gemm-rows=0, or more
# rows than the limit: the MLP at batch 4); the products dlc generates
# (codegen/gemm.c) and the LSTM's sigmoid and tanh are evaluated with
# llvm.fmuladd, which aarch64 fuses and generic x86-64 does not, so their
# values agree within rounding. Against OpenBLAS everything agrees within
# rounding.
#
# usage: aarch64.sh DLC SOURCE_DIR LIBDLRT WORK_DIR
# Exits 77 (skipped) without aarch64-linux-gnu-gcc or qemu-aarch64.
set -eu
dlc=$1 src=$2 libdlrt=$3 work=$4
for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-ar qemu-aarch64 python3; do
    command -v $tool >/dev/null || { echo "SKIP: no $tool (scripts/install-deps.sh)"; exit 77; }
done
host_cc=${CC:-cc}
here=$src/tests/cross
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# the BLAS-free runtime, one archive per target
sh "$here/runtime.sh" aarch64-linux-gnu-gcc aarch64-linux-gnu-ar "$src" rt-aarch64
sh "$here/runtime.sh" "$host_cc" ar "$src" rt-host

# model FILE BATCH EXACT [DLC OPTION...]: compile, run on both targets,
# compare
model() {
    file=$1 batch=$2 exact=$3
    shift 3
    name=$(basename "$file" .dl)
    # x86-64 for its baseline CPU, as aarch64 gets its generic one: no
    # FMA on either side unless the IR asks for it
    "$dlc" "$src/$file" "$@" -O2 --target=x86_64-linux-gnu -o host/$name.o || fail "dlc $name"
    "$dlc" "$src/$file" "$@" -O2 --target=aarch64-linux-gnu -o a64/$name.o || fail "dlc aarch64 $name"
    aarch64-linux-gnu-readelf -h a64/$name.o | grep -q AArch64 || fail "$name.o: not AArch64"
    def="-DMODEL_HEADER=\"$name.h\" -DMODEL=$name -I$src/runtime"
    aarch64-linux-gnu-gcc -std=c11 -O2 $def -Ia64 -static "$here/driver.c" a64/$name.o \
        rt-aarch64/libdlrt.a -lm -o a64/$name || fail "link aarch64 $name"
    $host_cc -std=c11 -O2 $def -Ihost "$here/driver.c" host/$name.o rt-host/libdlrt.a -lm \
        -o host/$name-noblas || fail "link $name (no BLAS)"
    $host_cc -std=c11 -O2 $def -Ihost "$here/driver.c" host/$name.o "$libdlrt" \
        ${OPENBLAS_LIB:-} -lpthread -lm -o host/$name || fail "link $name"
    timeout 300 qemu-aarch64 a64/$name $batch 3 > a64/$name.txt || fail "qemu-aarch64 $name"
    host/$name-noblas $batch 3 > host/$name-noblas.txt || fail "run $name (no BLAS)"
    host/$name $batch 3 > host/$name.txt || fail "run $name"
    flag=
    [ "$exact" = exact ] && flag=--exact
    python3 "$here/compare.py" $flag host/$name-noblas.txt a64/$name.txt ||
        fail "$name: aarch64 against x86-64, both without BLAS"
    python3 "$here/compare.py" host/$name.txt a64/$name.txt ||
        fail "$name: aarch64 against x86-64 with the build's libdlrt"
}
mkdir -p host a64
model examples/mnist/mnist_mlp.dl 4 exact
model examples/lenet/lenet.dl 2 exact --gemm-rows=0
model examples/lenet/lenet.dl 2 close
model examples/charlstm/charlstm.dl 2 close -D T=16
echo "aarch64: 3 models (LeNet-5 twice) agree with x86-64"
