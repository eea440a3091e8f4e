#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is
# missing, builds with warnings as errors and runs every test (unit, golden
# IR, diagnostics, a bounded fuzz run); then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite again.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

scripts/install-deps.sh

echo "== build (warnings are errors)"
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLC_WERROR=ON \
      -DDLC_EXAMPLES=ON -DDLC_BENCH=ON -DDLC_FUZZ=ON >/dev/null
cmake --build build/release -j"$jobs"
echo "== tests"
ctest --test-dir build/release --output-on-failure -j"$jobs"

echo "== build with ASan + UBSan"
cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DDLC_WERROR=ON -DDLC_SANITIZE=ON \
      -DDLC_EXAMPLES=OFF -DDLC_BENCH=OFF -DDLC_FUZZ=OFF >/dev/null
cmake --build build/asan -j"$jobs"
echo "== tests under ASan + UBSan"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
ctest --test-dir build/asan --output-on-failure -j"$jobs"
