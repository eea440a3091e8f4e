#!/usr/bin/env bash
# A differential-testing campaign (tests/difftest/README.md, docs/TESTING.md):
# random models compiled at -O0 and -O2 against the f64 reference and finite
# differences, failures shrunk and printed; ends with the counts (models
# tried, agreed, failures shrunk per kind). Builds what it needs first.
#
#   scripts/difftest.sh [--seed S] [--count N] [--jobs J] [...]   (difftest.py --help)
#
# BUILD=build/asan runs it against another build (default build/release,
# configured as scripts/test.sh does when missing). The failing models'
# files stay in $BUILD/difftest/.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build/release}
if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLC_WERROR=ON >/dev/null
fi
cmake --build "$build" -j"$(nproc)" --target dlc dlrt_static exec_ref train_reference >/dev/null
rm -rf "$build/difftest"
exec sh "$build/difftest.sh" --count 200 --jobs "$(nproc)" --keep "$build/difftest" "$@"
