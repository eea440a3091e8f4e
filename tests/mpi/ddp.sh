#!/bin/sh
# ddp.sh CASE DRIVER DIR: one case of tests/mpi with a ddp.c driver, its
# files in DIR. 100 steps (1000 for overlap with EARLY), global batch 64,
# 2 ranks (mpirun.sh).
#   same    2 ranks of 32 rows = 1 process of 64 (MLP, LeNet-5: no per-rank
#           randomness or statistics), losses and parameters within 1e-5
#           (f32 sums in another order), and = the simulation of 2 ranks
#           bit for bit
#   sim     2 ranks of 32 = the one-process simulation of 2 ranks (batch
#           norm, dropout: per-rank statistics and masks)
#   resume  50 steps on 2 ranks, saved, 50 more on 1 = 100 on 1; and 1 -> 2
#   dead    a rank killed at step 10 ends the run with an error, no hang
#   hang    a rank asleep at step 10: the others time out (DLRT_MPI_TIMEOUT
#           3 s) and end the run with an error naming it
#   errors  a missing checkpoint stops both ranks with rank 0's message
#   overlap the all-reduce overlapped with the backward (DLRT_MPI_OVERLAP=1)
#           and on the communication thread after it (2) give the losses
#           and parameters of the all-reduce after it (0) bit for bit;
#           with EARLY, some bucket must have started during the
#           backward; and the backward's gradient reports (ddp hooks)
set -eu
case_=$1 ddp=$2 dir=$3 early=${4:-}
here=$(dirname "$0")
run() { sh "$here/mpirun.sh" "$@"; }
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
tol=1e-5
case $case_ in
same)
    "$ddp" sim 1 100 64 ref.txt
    run 2 "$ddp" run 100 32 out.txt
    "$ddp" compare ref.txt out.txt $tol
    # and bit for bit the one-process simulation of the two ranks' sums
    "$ddp" sim 2 100 32 sim.txt
    "$ddp" compare sim.txt out.txt 0
    ;;
sim)
    "$ddp" sim 2 100 32 ref.txt
    run 2 "$ddp" run 100 32 out.txt
    "$ddp" compare ref.txt out.txt $tol
    # and the per-rank draws and statistics matter: one process differs
    "$ddp" sim 1 100 64 single.txt
    if "$ddp" compare single.txt out.txt $tol 2>/dev/null; then
        echo "ddp.sh: 2 ranks match one process of batch 64: per-rank dropout/BN not exercised" >&2
        exit 1
    fi
    ;;
resume)
    "$ddp" sim 1 100 64 ref.txt
    run 2 "$ddp" run 50 32 half2.txt --save two.safetensors
    run 1 "$ddp" run 100 64 rest1.txt --resume two.safetensors
    "$ddp" compare ref.txt rest1.txt $tol
    run 1 "$ddp" run 50 64 half1.txt --save one.safetensors
    run 2 "$ddp" run 100 32 rest2.txt --resume one.safetensors
    "$ddp" compare ref.txt rest2.txt $tol
    ;;
dead)
    start=$(date +%s)
    status=0
    DLC_MPI_TIMEOUT=60 run 2 "$ddp" run 100000 32 out.txt --die-at 10 >log.txt 2>&1 || status=$?
    took=$(($(date +%s) - start))
    cat log.txt
    if [ $status -eq 0 ] || [ $status -eq 124 ] || [ $took -ge 50 ]; then
        echo "ddp.sh: a dead rank gave exit status $status after ${took}s (want an error, no timeout)" >&2
        exit 1
    fi
    grep -q "exited on signal 9" log.txt || { echo "ddp.sh: mpirun did not report the dead rank" >&2; exit 1; }
    grep -q "loss 9 " out.txt || { echo "ddp.sh: rank 0 did not train up to step 9" >&2; exit 1; }
    echo "a dead rank stopped the run with status $status after ${took}s"
    ;;
hang)
    start=$(date +%s)
    status=0
    DLRT_MPI_TIMEOUT=3 DLC_MPI_TIMEOUT=60 run 2 "$ddp" run 100000 32 out.txt --hang-at 10 \
        >log.txt 2>&1 || status=$?
    took=$(($(date +%s) - start))
    cat log.txt
    if [ $status -eq 0 ] || [ $status -eq 124 ] || [ $took -ge 50 ]; then
        echo "ddp.sh: a hung rank gave exit status $status after ${took}s (want an error, no timeout)" >&2
        exit 1
    fi
    grep -q "rank 0 had no answer.* in 3 s" log.txt ||
        { echo "ddp.sh: rank 0 did not report the hung rank" >&2; exit 1; }
    echo "a hung rank stopped the run with status $status after ${took}s"
    ;;
errors)
    status=0
    run 2 "$ddp" run 10 32 out.txt --resume missing.safetensors >log.txt 2>&1 || status=$?
    cat log.txt
    [ $status -ne 0 ] && [ $status -ne 124 ] || { echo "ddp.sh: status $status" >&2; exit 1; }
    n=$(grep -c "missing.safetensors" log.txt)
    [ "$n" -ge 2 ] || { echo "ddp.sh: want the error from both ranks, got $n lines" >&2; exit 1; }
    ;;
overlap)
    # 1000 steps with EARLY: whether a bucket starts before the backward
    # ends is up to the scheduler (the communication thread must get a
    # core from 2 ranks' busy threads within a backward of about 1 ms);
    # over 100 steps of LeNet-5 one rank started 0-36 of its 200
    # buckets early in runs on this 2-core machine, and once none; over
    # 300 steps of an idle machine 2-25 of 600
    steps=100
    [ -z "$early" ] || steps=1000
    "$ddp" hooks 32
    DLRT_MPI_OVERLAP=0 run 2 "$ddp" run $steps 32 off.txt
    DLRT_MPI_OVERLAP=2 run 2 "$ddp" run $steps 32 thread.txt
    DLRT_MPI_OVERLAP=1 run 2 "$ddp" run $steps 32 on.txt >log.txt
    cat log.txt
    "$ddp" compare off.txt on.txt 0
    "$ddp" compare off.txt thread.txt 0
    grep -q "ddp: overlap: [1-9]" log.txt || { echo "ddp.sh: the steps were not overlapped" >&2; exit 1; }
    if [ -n "$early" ] && ! grep -q "during the backward: [1-9]" log.txt; then
        echo "ddp.sh: no bucket started during the backward" >&2
        exit 1
    fi
    ;;
*)
    echo "ddp.sh: unknown case $case_" >&2
    exit 2
    ;;
esac
