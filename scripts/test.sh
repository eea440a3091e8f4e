#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds with warnings as errors and runs every test (unit, lit:
# golden IR, diagnostics, execution, gradient, training models; a bounded
# fuzz run; the demos); then builds again with AddressSanitizer +
# UndefinedBehaviorSanitizer and libdlrt's portable matrix products in
# place of OpenBLAS (DLC_BLAS=OFF), and runs the suite again: so every
# execution, gradient and training test also runs without BLAS, at no
# extra cost. Both stages run even
# when the first fails, so a release failure does not hide what the
# sanitizers find; the end prints each stage's PASS or FAIL and the exit
# status is 1 when either failed.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh || exit 1

# stage NAME BUILD_DIR CMAKE_OPTION...: configure, build and ctest; fails at
# the first step that fails
stage() {
    local name=$1 dir=$2
    shift 2
    echo "== $name: build"
    cmake -S . -B "$dir" "$@" >/dev/null &&
        cmake --build "$dir" -j"$jobs" &&
        echo "== $name: tests" &&
        ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

release=PASS asan=PASS
stage release build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLC_WERROR=ON \
    -DDLC_EXAMPLES=ON -DDLC_BENCH=ON -DDLC_FUZZ=ON || release=FAIL
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
stage "ASan + UBSan, no BLAS" build/asan -DCMAKE_BUILD_TYPE=Debug -DDLC_WERROR=ON -DDLC_SANITIZE=ON \
    -DDLC_BLAS=OFF -DDLC_EXAMPLES=OFF -DDLC_BENCH=OFF -DDLC_FUZZ=OFF || asan=FAIL

echo "== summary"
echo "release (warnings are errors): $release"
echo "ASan + UBSan, no BLAS:         $asan"
[ "$release" = PASS ] && [ "$asan" = PASS ]
