#!/bin/sh
# scripts/plot-log.sh draws a training log: an SVG with the train loss as
# one line, the test loss and accuracy as points (a second panel), and a
# PNG; a file that is not a log is refused with exit status 1.
# usage: plot.sh SOURCE_DIR
set -eu
src=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-plot.XXXXXX")
trap 'rm -rf "$work"' EXIT
sh "$src/scripts/plot-log.sh" "$src/tests/demo/log-sample.csv" "$work/log.svg" "sample run" >/dev/null
grep -q '<svg' "$work/log.svg"
grep -q 'sample run' "$work/log.svg"
grep -q 'accuracy (%)' "$work/log.svg"
grep -q '>test<' "$work/log.svg"
grep -q '>train<' "$work/log.svg"
[ "$(grep -c '<path' "$work/log.svg")" -ge 6 ] || { echo "too few paths"; exit 1; }
sh "$src/scripts/plot-log.sh" "$src/tests/demo/log-sample.csv" "$work/log.png" >/dev/null
[ "$(head -c 4 "$work/log.png" | od -An -c | tr -d ' ')" = '211PNG' ] || { echo "not a PNG"; exit 1; }
printf 'a,b\n1,2\n' >"$work/bad.csv"
if sh "$src/scripts/plot-log.sh" "$work/bad.csv" "$work/bad.svg" 2>"$work/err"; then
    echo "a file that is not a log was drawn"
    exit 1
fi
grep -q 'not a dlc training log' "$work/err"
echo "PASS: plot-log.sh"
