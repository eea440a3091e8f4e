#!/bin/sh
# Compiles every example model under DIR (each .dl file that declares a
# model; a library of defs has none) with its training code at -O1, links
# it with the generic driver examples.c and runs a few training steps.
# usage: examples.sh DLC "CC" "DLRT" DIR WORK
set -eu
dlc=$1 cc=$2 dlrt=$3 dir=$4 work=$5
n=0
for f in $(find "$dir" -name '*.dl' | sort); do
    name=$(sed -n 's/^ *model \([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$f" | head -n 1)
    [ -n "$name" ] || continue
    "$dlc" "$f" -O1 -o "$work/$name.o"
    # shellcheck disable=SC2086 # CC and DLRT are lists of words
    $cc -DINFO="${name}_info" "$(dirname "$0")/examples.c" "$work/$name.o" $dlrt -o "$work/$name"
    "$work/$name"
    n=$((n + 1))
done
echo "trained $n examples"
