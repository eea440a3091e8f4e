#!/bin/sh
# Objects for a --mcpu list (docs/TARGETS.md, CPU lists): the MNIST MLP,
# LeNet-5 and the char LSTM (through NAME_info()'s generic entries,
# driver.c: each level's products, convolutions, pooling and recurrent
# kernels) and cpu_list.dl (the direct entry points, cpu_list.c) are
# compiled once for the list
# x86-64,x86-64-v3,x86-64-v4 and once for each of its CPUs alone, linked
# with a BLAS-free libdlrt (whose results depend on no CPU feature) and
# run: the forward pass, three Adam steps, the forward pass after them.
# With DLRT_CPU forcing each level in turn, the list's printout must be
# the bits of the single object of the highest listed level at most that
# one and the CPU's own (x86-64-v2 runs the x86-64 variant), and the
# x86-64 and x86-64-v3 objects of cpu_list.dl must differ (FMA), so that
# a wrong choice cannot pass. Under qemu-x86_64, when present, a CPU
# without AVX-512 (Haswell) or AVX (Nehalem) runs the list, DLRT_CPU
# asking for more than it has: the variant must be the CPU's, not the
# one asked for.
#
# The list's object must hold AVX instructions only in the functions of
# its v3 and v4 variants (objdump).
#
# usage: cpu_list.sh DLC SOURCE_DIR WORK_DIR
# Exits 77 (skipped) on a host that is not x86-64.
set -eu
dlc=$1 src=$2 work=$3
[ "$(uname -m)" = x86_64 ] || { echo "SKIP: not an x86-64 host"; exit 77; }
cc=${CC:-cc}
here=$src/tests/cross
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }
sh "$here/runtime.sh" "$cc" ar "$src" rt

levels="x86-64 x86-64-v3 x86-64-v4"
list=x86-64,x86-64-v3,x86-64-v4
# build NAME FILE DRIVER...: NAME.list and NAME.CPU for each listed CPU
build() {
    name=$1 file=$2
    shift 2
    for cpu in list $levels; do
        mcpu=$cpu
        [ $cpu = list ] && mcpu=$list
        mkdir -p $cpu
        "$dlc" "$file" -O2 --target=x86_64-linux-gnu --mcpu=$mcpu -o $cpu/$name.o ||
            fail "dlc --mcpu=$mcpu $name"
        $cc -std=c11 -O2 -I$cpu -I"$src/runtime" "$@" $cpu/$name.o rt/libdlrt.a -lm \
            -o $cpu/$name || fail "link $cpu/$name"
    done
}
build mnist_mlp "$src/examples/mnist/mnist_mlp.dl" -DMODEL_HEADER='"mnist_mlp.h"' \
    -DMODEL=mnist_mlp "$here/driver.c"
build lenet "$src/examples/lenet/lenet.dl" -DMODEL_HEADER='"lenet.h"' -DMODEL=lenet \
    "$here/driver.c"
build charlstm "$src/examples/charlstm/charlstm.dl" -DMODEL_HEADER='"charlstm.h"' \
    -DMODEL=charlstm "$here/driver.c"
build cpu_list "$here/cpu_list.dl" "$here/cpu_list.c"
models="mnist_mlp lenet charlstm cpu_list"
# AVX (VEX or EVEX, mnemonics v...) only in the functions of the v3 and
# v4 variants, and in some of them
for name in $models; do
    objdump -d --no-show-raw-insn list/$name.o > list/$name.dis || fail "objdump list/$name.o"
    bad=$(awk -F'\t' '/^[0-9a-f]+ <.*>:$/ { f = $0 }
                       $2 ~ /^v[a-z]/ && f !~ /x86-64-v[34]>/ { print f }' list/$name.dis | sort -u)
    [ -z "$bad" ] || fail "list/$name.o: AVX outside the v3 and v4 variants: $bad"
    grep -q "x86-64-v3>:" list/$name.dis || fail "list/$name.o: no x86-64-v3 variant"
    grep -q "	v.*%ymm" list/$name.dis || fail "list/$name.o: no AVX in the variants"
done
run_mnist() { "$@" 4 3; }
run_lenet() { "$@" 4 3; }
run_charlstm() { "$@" 2 2; }
run_cpu() { "$@"; }
# same A B: the same values (cpu_list's "level" line says what libdlrt saw)
same() { [ "$(grep -v '^level' "$1")" = "$(grep -v '^level' "$2")" ]; }

# the CPU's level, from libdlrt
cat > level.c <<'C'
#include <stdio.h>
#include "dlrt.h"
int main(void) { printf("%d\n", dlrt_cpu_level()); return 0; }
C
$cc -std=c11 -I"$src/runtime" level.c rt/libdlrt.a -lm -o level
have=$(env -u DLRT_CPU ./level)
[ "$have" -ge 1 ] && [ "$have" -le 4 ] || fail "dlrt_cpu_level() = $have"

# expect LEVEL: the listed CPU run at LEVEL (1..4)
expect() {
    case $1 in 1|2) echo x86-64 ;; 3) echo x86-64-v3 ;; *) echo x86-64-v4 ;; esac
}
for name in $models; do
    for l in $levels; do
        [ $(expect $(DLRT_CPU=$l ./level)) = $l ] || continue # above this CPU
        DLRT_CPU=$l run_${name%%_*} $l/$name > $name.$l.txt || fail "run $l/$name"
    done
    for forced in x86-64 x86-64-v2 x86-64-v3 x86-64-v4 none; do
        level=$(DLRT_CPU=$forced ./level)
        want=$(expect $level)
        DLRT_CPU=$forced run_${name%%_*} list/$name > $name.list.$forced.txt ||
            fail "run list/$name with DLRT_CPU=$forced"
        same $name.list.$forced.txt $name.$want.txt ||
            fail "$name: the list with DLRT_CPU=$forced (level $level) is not the $want object"
        echo "$name: DLRT_CPU=$forced runs the $want variant"
    done
done
! same cpu_list.x86-64.txt cpu_list.x86-64-v3.txt ||
    fail "cpu_list: x86-64 and x86-64-v3 give the same bits: the test cannot tell them apart"
grep -q "^level $have\$" cpu_list.list.none.txt || fail "cpu_list: the instance's level is not $have"

# CPUs this one is not, emulated
if command -v qemu-x86_64 >/dev/null; then
    for q in Nehalem:2:x86-64 Haswell:3:x86-64-v3; do
        cpu=${q%%:*} rest=${q#*:}
        level=${rest%%:*} want=${rest#*:}
        got=$(DLRT_CPU=x86-64-v4 qemu-x86_64 -cpu $cpu ./level 2>>qemu.log)
        [ "$got" = $level ] || fail "qemu $cpu: dlrt_cpu_level() = $got, not $level"
        DLRT_CPU=x86-64-v4 qemu-x86_64 -cpu $cpu list/cpu_list > qemu.$cpu.txt 2>>qemu.log ||
            fail "qemu $cpu: list/cpu_list failed"
        qemu-x86_64 -cpu $cpu $want/cpu_list > qemu.$cpu.$want.txt 2>>qemu.log ||
            fail "qemu $cpu: $want/cpu_list failed"
        same qemu.$cpu.txt qemu.$cpu.$want.txt ||
            fail "qemu $cpu: the list asked for x86-64-v4 is not the $want object"
        echo "qemu -cpu $cpu: the list runs the $want variant"
    done
else
    echo "no qemu-x86_64: other CPUs not emulated"
fi
echo "cpu_list: every level's variant is its single-CPU object"
