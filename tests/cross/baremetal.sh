#!/bin/sh
# Bare metal: the firmware of examples/baremetal on QEMU's mps2-an386
# (Cortex-M4F). export.c trains digits.dl on MNIST for one epoch on this
# machine (x86-64, with a BLAS-free libdlrt built like the firmware's, so
# that both sum in the same order) and writes the trained parameters and
# the first ten test digits as C; the firmware, built by the example's
# Makefile with Debian's gcc-arm-none-eabi, classifies those digits under
# qemu-system-arm and prints them over semihosting. Its printout must be
# the x86-64 one, line for line: the same predicted digits and the same
# bits of their probabilities. The image must hold no allocator and no
# stdio (make check-image). Prints the sizes for docs/TARGETS.md.
#
# usage: baremetal.sh DLC SOURCE_DIR MNIST_DIR WORK_DIR
# Exits 77 (skipped) without arm-none-eabi-gcc, qemu-system-arm or make.
set -eu
dlc=$1 src=$2 mnist=$3 work=$4
for tool in arm-none-eabi-gcc qemu-system-arm make; do
    command -v $tool >/dev/null || { echo "SKIP: no $tool (scripts/install-deps.sh)"; exit 77; }
done
ex=$src/examples/baremetal
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

host_cc=${CC:-cc}
sh "$src/tests/cross/runtime.sh" "$host_cc" ar "$src" rt-host
"$dlc" "$ex/digits.dl" -O2 -o digits.o || fail "dlc digits.dl"
$host_cc -std=c11 -O2 -I. -I"$src/runtime" -I"$ex" "$ex/export.c" digits.o rt-host/libdlrt.a -lm \
    -o export || fail "link export"
./export "$mnist" 938 digits_data.c > expected.txt || fail "export"

make -s -f "$ex/Makefile" DLC="$dlc" RUNTIME="$src/runtime" DATA=digits_data.c OUT=fw \
    > size.txt || fail "make firmware"
make -s -f "$ex/Makefile" DLC="$dlc" RUNTIME="$src/runtime" DATA=digits_data.c OUT=fw \
    check-image || fail "the image has an allocator or stdio"
st=0
timeout 120 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native -kernel fw/firmware.elf > got.txt 2>&1 || st=$?
[ $st = 0 ] || { cat got.txt; fail "the firmware exited with status $st"; }
diff expected.txt got.txt || fail "the firmware's printout differs from x86-64's"
cat got.txt size.txt
echo "state bytes: $(sed -n 's/^#define digits_STATE_BYTES //p' fw/digits.h)"
right=$(awk -F'[ ,]+' '$4 == $6 { n++ } END { print n + 0 }' got.txt)
echo "bare metal: 10 digits as on x86-64, $right right"
