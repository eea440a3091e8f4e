#!/bin/sh
# Installs the build BUILD into a scratch prefix and builds two user
# projects against it, as a user would: a CMake project (find_package(dlc),
# dlc_add_model, static and shared runtime) and a plain Makefile (dlc on
# PATH, pkg-config dlrt). Each program trains a small model and checks it.
# Then editing a file the model imports must rebuild the model in both.
# Last, a CMake project that builds dlc from source with FetchContent
# (INSTALL_FETCH=0 skips it: it builds dlc once more).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$1" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/dlc" && test -f "$prefix/include/dlrt.h" && test -f "$prefix/share/man/man1/dlc.1"
readelf -d "$prefix/lib/libdlrt.so" | grep -q 'SONAME.*libdlrt\.so\.[0-9]'

# Copies of the projects, so that touching the import does not touch the tree.
cp -r "$here/model" "$here/cmake-project" "$here/make-project" "$work/"

echo "== CMake project"
cmake -S "$work/cmake-project" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
"$work/cmake-build/classify"
LD_LIBRARY_PATH="$prefix/lib" "$work/cmake-build/classify_so"

echo "== Makefile project"
export PATH="$prefix/bin:$PATH" PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
make -s -C "$work/make-project" >/dev/null
LD_LIBRARY_PATH="$prefix/lib" "$work/make-project/classify"

echo "== editing an imported file rebuilds the model"
sleep 1 # a newer modification time than the outputs'
echo "# edited" >>"$work/model/layers.dl"
cmake --build "$work/cmake-build" -- VERBOSE=1 | grep 'dlc.*classifier.dl' >/dev/null ||
    { echo "FAIL: the CMake build did not rebuild the model"; exit 1; }
make -C "$work/make-project" | grep 'dlc.*classifier.dl' >/dev/null ||
    { echo "FAIL: make did not rebuild the model"; exit 1; }
if [ "${INSTALL_FETCH:-1}" = 1 ]; then
    echo "== FetchContent of the source tree"
    cp -r "$here/fetch-project" "$work/"
    cmake -S "$work/fetch-project" -B "$work/fetch-build" -DDLC_SOURCE="$here/../.." >/dev/null
    cmake --build "$work/fetch-build" -j2 >/dev/null
    "$work/fetch-build/classify"
fi
echo "== a Debian package (CPack)"
(cd "$work" && cpack -G DEB --config "$build/CPackConfig.cmake" >/dev/null)
deb=$(ls "$work"/dlc_*.deb)
dpkg-deb -c "$deb" >"$work/deb.txt"
grep -q '/usr/bin/dlc$' "$work/deb.txt"
grep -q 'libdlrt\.so\.[0-9]' "$work/deb.txt"
grep -q 'dlrt\.pc$' "$work/deb.txt"
echo "PASS"
