#!/usr/bin/env bash
# Installs the Debian packages dlc needs, only those that are missing.
# Idempotent; uses sudo only when not already root.
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config
  flex bison
  llvm-19-dev llvm-19-tools clang-19 libclang-rt-19-dev
  libopenblas-dev check
  libopenmpi-dev openmpi-bin
  gnuplot-nox
  python3 python3-numpy nodejs npm
  # the PyTorch replays (tests/torch) and convert_torch; 1.13 in Debian 12
  python3-torch
  # other targets, run under emulation (tests/cross, docs/TARGETS.md)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
  gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# node/npm may come from a non-Debian package that provides the commands.
filtered=()
for p in "${missing[@]}"; do
  case "$p" in
    nodejs) command -v node >/dev/null 2>&1 || filtered+=("$p") ;;
    npm) command -v npm >/dev/null 2>&1 || filtered+=("$p") ;;
    python3) command -v python3 >/dev/null 2>&1 || filtered+=("$p") ;;
    *) filtered+=("$p") ;;
  esac
done

if [ ${#filtered[@]} -eq 0 ]; then
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "install-deps: installing ${filtered[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${filtered[@]}" >&2
