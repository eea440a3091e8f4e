#!/bin/sh
# demo.sh TRAIN_TEXT_PROGRAM: a text demo (examples/common/train_text.c)
# data-parallel. 10 steps on 2 ranks print the held-out losses of 10 steps
# in one process (the same options: --batch is the global batch), up to
# the 4 decimals printed; 5 steps on 2 ranks, saved, resumed on 1 to step
# 10 print them too; the log is rank 0's alone (one header).
set -eu
train=$1
here=$(dirname "$0")
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-mpi-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
opts="--steps 10 --eval-every 5 --sample 0"
losses() { grep '^step .*held-out loss' "$1"; }

"$train" $opts --checkpoint "$work/one.safetensors" >"$work/one" 2>/dev/null
sh "$here/mpirun.sh" 2 "$train" $opts --checkpoint "$work/two.safetensors" \
    --log "$work/two.csv" >"$work/two" 2>/dev/null
cat "$work/two"
grep -q '^2 ranks, 32 windows of each batch per rank' "$work/two"
losses "$work/one" >"$work/one.l"
losses "$work/two" >"$work/two.l"
[ "$(wc -l <"$work/one.l")" -eq 2 ] && cmp "$work/one.l" "$work/two.l" ||
    { echo "demo.sh: 2 ranks' held-out losses differ from one process's"; exit 1; }
[ "$(grep -c '^step,' "$work/two.csv")" -eq 1 ] ||
    { echo "demo.sh: the log is not rank 0's alone"; cat "$work/two.csv"; exit 1; }

sh "$here/mpirun.sh" 2 "$train" --steps 5 --eval-every 5 --sample 0 \
    --checkpoint "$work/half.safetensors" >/dev/null 2>&1
"$train" $opts --checkpoint "$work/half.safetensors" --resume >"$work/resumed" 2>/dev/null
losses "$work/resumed" | tail -1 >"$work/resumed.l"
tail -1 "$work/one.l" | cmp - "$work/resumed.l" ||
    { echo "demo.sh: 2 ranks then 1 differ from one process"; cat "$work/resumed"; exit 1; }
echo "2 ranks = 1 process, and resumed from 2 ranks on 1: $(cat "$work/resumed.l")"
