#!/bin/sh
# Draws a training log (the CSV that the demos write with --log, see
# dlrt_log in runtime/dlrt_data.h) with gnuplot: the loss against the step,
# the training rows as a line and each evaluation as points, and, when the
# log has accuracies, the accuracy in a second panel. The picture's format
# follows OUT's extension: .svg (default) or .png.
#
# usage: scripts/plot-log.sh LOG.csv [OUT.svg|OUT.png] [TITLE]
set -eu
if [ $# -lt 1 ] || [ ! -f "$1" ]; then
    echo "usage: $0 LOG.csv [OUT.svg|OUT.png] [TITLE]" >&2
    exit 2
fi
log=$1
out=${2:-${log%.csv}.svg}
title=${3:-$(basename "$log" .csv)}
command -v gnuplot >/dev/null || { echo "$0: gnuplot is not installed (apt-get install gnuplot-nox)" >&2; exit 2; }
case "$out" in
*.png) term="pngcairo size 900,${H:-600}" ; gnuplot -e 'set terminal pngcairo' 2>/dev/null || term="png size 900,600" ;;
*.svg) term="svg size 900,600 dynamic" ;;
*) echo "$0: OUT must end in .svg or .png" >&2; exit 2 ;;
esac
if [ "$(head -n 1 "$log")" != "step,epoch,split,loss,accuracy,lr,rate,elapsed" ]; then
    echo "$0: $log is not a dlc training log (no step,epoch,split,... header)" >&2
    exit 1
fi
# one data file per split (step, loss, accuracy), so each draws as one line
work=$(mktemp -d "${TMPDIR:-/tmp}/plot-log.XXXXXX")
trap 'rm -rf "$work"' EXIT
awk -F, -v dir="$work" 'NR > 1 {
    f = dir "/" $3; print $1, ($4 == "" ? "NaN" : $4), ($5 == "" ? "NaN" : $5) > f
    if ($3 != "train" && !seen[$3]++) print $3 > (dir "/splits")
    if ($5 != "") acc = 1
} END { print acc + 0 > (dir "/accuracy") }' "$log"
splits=$(cat "$work/splits" 2>/dev/null || true)
accuracy=$(cat "$work/accuracy")

{
    echo "set terminal $term"
    echo "set output '$out'"
    echo "set key outside right top"
    echo "set grid"
    if [ "$accuracy" = 1 ]; then
        echo "set multiplot layout 2,1 title '$title'"
    else
        echo "set title '$title'"
    fi
    echo "set xlabel 'step'"
    echo "set ylabel 'loss'"
    plot="plot"
    sep=""
    if [ -f "$work/train" ]; then
        plot="$plot '$work/train' using 1:2 with lines title 'train'"
        sep=","
    fi
    for s in $splits; do
        plot="$plot$sep '$work/$s' using 1:2 with linespoints pointtype 7 title '$s'"
        sep=","
    done
    echo "$plot"
    if [ "$accuracy" = 1 ]; then
        echo "set ylabel 'accuracy (%)'"
        plot="plot"
        sep=""
        for s in $splits; do
            plot="$plot$sep '$work/$s' using 1:3 with linespoints pointtype 7 title '$s'"
            sep=","
        done
        echo "$plot"
        echo "unset multiplot"
    fi
} | gnuplot
echo "$out"
