#!/usr/bin/env bash
# Configures and builds dlc in build/release (or the directory given as $1,
# with extra CMake arguments after it). Installs missing packages first.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build/release}
shift || true
scripts/install-deps.sh
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
