#!/bin/sh
# Training execution tests: each model is compiled with dlc, linked with
# libdlrt and its C driver, and run; the drivers compare the compiled
# training step with docs/TRAINING.md (reference.c, hand gradients, closed
# forms). Prints PASS/FAIL per test and a summary "N passed, M failed".
#
#   optim cases  optim.dl.in with the optimizer, clipping and schedule of
#                each line of the case table below (optim.c)
#   xor, lsq     convergence: XOR with a 2-8-1 MLP, least squares vs the
#                normal equations (xor.c, lsq.c)
#   det          the same run at -O0 and -O2 (losses within tolerance), and
#                twice with one seed (identical bits) (det.c)
#   resume       save, load into another instance, continue: the same bits
#                as never stopping (resume.c)
#   args         bad arguments, evaluate changing nothing (args.c)
#   dropout      training masks: rate, scale, per step, per seed (dropout.c)
#   bn_stats     batch norm's running statistics over several steps against
#                PyTorch's update, used in inference, through a checkpoint
#   lstm_grads   the built-in lstm's gradients = autodiff through the same
#                LSTM unrolled by hand (lstm_grads.c)
#
# Models in pending/ are not run unless named (see pending/README.md).
#
# usage: run.sh DLC LIBDLRT SOURCE_DIR [LINK_LIBS] [TEST...]
#   LINK_LIBS: what the runtime needs (default "-lopenblas -lpthread -lm");
#   TEST: names of tests or optim cases to run (default: all)
#   CC, TRAIN_CFLAGS (e.g. sanitizer flags), TRAIN_KEEP=1 (keep the work dir)
set -u
if [ $# -lt 3 ]; then
    echo "usage: $0 DLC LIBDLRT SOURCE_DIR [LINK_LIBS] [TEST...]" >&2
    exit 2
fi
dlc=$1 rt=$2 src=$3
shift 3
libs="-lopenblas -lpthread -lm"
if [ $# -gt 0 ]; then
    libs=$1
    shift
fi
only=" $* "
here=$src/tests/train
cc=${CC:-cc}
cflags="-std=c11 -g -O1 -Wall -Wextra -Wpedantic -Wshadow -Werror ${TRAIN_CFLAGS:-}"
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-train.XXXXXX") || exit 2
[ "${TRAIN_KEEP:-0}" = 1 ] && echo "work dir: $work"
[ "${TRAIN_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

. "$src/tests/common/report.sh"
wanted() { [ "$only" = "  " ] || case "$only" in *" $1 "*) true ;; *) false ;; esac; }

# build DIR MODEL.dl DRIVER DLCFLAGS CFLAGS: dlc, then the driver against
# the generated header (DRIVER is X.c, or WORK/X-TAG.o: X.c compiled once,
# by the first build that needs it); the log is DIR/log
build() {
    bdir=$1
    mkdir -p "$bdir"
    # the object and header take the model's name; the driver includes NAME.h
    name=$(sed -n 's/^model[[:space:]]\{1,\}\([A-Za-z_][A-Za-z0-9_]*\).*/\1/p' "$2" | head -n 1)
    "$dlc" "$2" $4 -o "$bdir/$name.o" >"$bdir/log" 2>&1 || { echo "dlc $4 failed" >>"$bdir/log"; return 1; }
    case $3 in
    *.o)
        [ -f "$3" ] || $cc $cflags $5 -I"$bdir" -I"$src/runtime" -I"$here" -c "$here/$(basename "${3%-*}").c" \
            -o "$3" >>"$bdir/log" 2>&1 || { echo "compiling $3 failed" >>"$bdir/log"; return 1; }
        ;;
    esac
    $cc $cflags $5 -I"$bdir" -I"$src/runtime" -I"$here" "$3" "$work/reference.o" "$bdir/$name.o" \
        "$rt" $libs -o "$bdir/run" >>"$bdir/log" 2>&1 || { echo "compiling $3 failed" >>"$bdir/log"; return 1; }
}

if ! $cc $cflags -c "$here/reference.c" -o "$work/reference.o" >"$work/ref.log" 2>&1; then
    cat "$work/ref.log"
    echo "0 passed, 1 failed"
    exit 1
fi

# The optimizer, clipping and schedule cases: name, parameter type, driver
# arguments after the checkpoint path, and the train options.
while read -r case dtype args train; do
    case $case in '#'* | '') continue ;; esac
    wanted "$case" || wanted optim || continue
    d=$work/$case
    mkdir -p "$d"
    sed -e "s/@DTYPE@/$dtype/g" -e "s/@TRAIN@/$train/" "$here/optim.dl.in" >"$d/optim.dl"
    real=double
    [ "$dtype" = f32 ] && real=float
    ok=0
    args=$(echo "$args" | tr ',' ' ')
    [ "$args" = - ] && args=""
    # optim.c is compiled once per type: the header differs between the
    # cases only in its size macros, which optim.c does not use
    drv=$work/optim-$dtype.o
    if build "$d" "$d/optim.dl" "$drv" "" "-DREAL=$real" &&
        "$d/run" "$train" "$d/ckpt.safetensors" $args >>"$d/log" 2>&1; then
        ok=1
    fi
    result "$case" $ok "$d/log"
done <<'EOF'
# optimizers (5 steps, f64 unless named f32)
sgd                f64 -                   sgd(lr = 0.1)
sgd_momentum       f64 -                   sgd(lr = 0.1, momentum = 0.9)
sgd_nesterov       f64 -                   sgd(lr = 0.1, momentum = 0.8, nesterov = true)
sgd_weight_decay   f64 -                   sgd(lr = 0.1, weight_decay = 0.05)
sgd_all            f64 -                   sgd(lr = 0.05, momentum = 0.5, nesterov = true, weight_decay = 0.1)
sgd_f32            f32 -                   sgd(lr = 0.1, momentum = 0.9, weight_decay = 0.01)
adagrad            f64 -                   adagrad(lr = 0.1)
adagrad_wd         f64 -                   adagrad(lr = 0.1, eps = 1e-6, weight_decay = 0.2)
rmsprop            f64 -                   rmsprop(lr = 0.01)
rmsprop_momentum   f64 -                   rmsprop(lr = 0.01, momentum = 0.9)
rmsprop_wd         f64 -                   rmsprop(lr = 0.01, weight_decay = 0.1)
rmsprop_alpha      f64 -                   rmsprop(lr = 0.01, alpha = 0.5, eps = 1e-4)
rmsprop_f32        f32 -                   rmsprop(lr = 0.01, alpha = 0.9, momentum = 0.5)
adam               f64 -                   adam(lr = 0.01)
adam_wd            f64 -                   adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-6, weight_decay = 0.1)
adam_f32           f32 -                   adam(lr = 0.01, weight_decay = 0.01)
adamw              f64 -                   adamw(lr = 0.01)
adamw_wd           f64 -                   adamw(lr = 0.01, weight_decay = 0.2)
adamw_f32          f32 -                   adamw(lr = 0.02, beta2 = 0.9)
# clipping: C far below the gradient norm, and far above it
clip_sgd           f64 clip=all            sgd(lr = 0.1), clip_norm = 0.05
clip_adam          f64 clip=all            adam(lr = 0.01, weight_decay = 0.1), clip_norm = 0.1
clip_inactive      f64 clip=none           sgd(lr = 0.1, momentum = 0.9), clip_norm = 100
clip_f32           f32 clip=all            sgd(lr = 0.1), clip_norm = 0.05
# schedules: rates before every step, set_learning_rate midway
sched_constant     f64 steps=6,set=3:0.03  sgd(lr = 0.1), schedule = constant()
sched_step         f64 steps=8,set=5:0.2   sgd(lr = 0.1), schedule = step(3, 0.5)
sched_exponential  f64 steps=6             sgd(lr = 0.1), schedule = exponential(0.8)
sched_cosine       f64 steps=8             sgd(lr = 0.1), schedule = cosine(5, 0.01)
sched_cosine_zero  f64 steps=7,set=2:0.05  sgd(lr = 0.1), schedule = cosine(4)
sched_warmup       f64 steps=10            sgd(lr = 0.1), schedule = warmup_cosine(3, 7, 0.001)
sched_warmup_adam  f64 steps=6             adam(lr = 0.01), schedule = warmup_cosine(2, 5)
sched_cyclic       f64 steps=11,set=6:0.3  sgd(lr = 0.1), schedule = cyclic(0.01, 0.2, 2)
sched_cyclic_f32   f32 steps=9             sgd(lr = 0.1), schedule = cyclic(0.02, 0.1, 3)
EOF

# single-model tests: name, model, driver, driver arguments
single() {
    wanted "$1" || return 0
    d=$work/$1
    ok=0
    if build "$d" "$here/$2" "$here/$3" "" "" && "$d/run" $4 >>"$d/log" 2>&1; then
        ok=1
    fi
    result "$1" $ok "$d/log"
}
single xor xor.dl xor.c ""
single lsq lsq.dl lsq.c ""
single dropout dropout.dl dropout.c ""
single bn_stats bn_stats.dl bn_stats.c "$work/bn_stats.safetensors"
single lstm_grads lstm_grads.dl lstm_grads.c ""

# det at -O0 (dumping its results) and at -O2 (comparing with them)
for model in det det_dropout; do
    file=$here/$model.dl
    if [ ! -f "$file" ]; then
        # pending (see pending/README.md): only when asked for by name
        file=$here/pending/$model.dl
        case "$only" in *" $model "*) ;; *) continue ;; esac
    fi
    wanted "$model" || continue
    d=$work/$model
    ok=0
    if build "$d/O0" "$file" "$here/det.c" -O0 "" &&
        build "$d/O2" "$file" "$here/det.c" -O2 "" &&
        "$d/O0/run" --dump "$d/O0.out" >>"$d/O0/log" 2>&1; then
        cat "$d/O0/log" >"$d/log"
        "$d/O2/run" --against "$d/O0.out" >>"$d/O2/log" 2>&1 && ok=1
        cat "$d/O2/log" >>"$d/log"
    else
        cat "$d/O0/log" "$d/O2/log" >"$d/log" 2>/dev/null
    fi
    result "$model" $ok "$d/log"
done

single args args.dl args.c ""

# resume: the optimizer's slots are on the model's "# RESUME:" line
for model in resume resume_bn; do
    slots=$(sed -n 's/^# RESUME://p' "$here/$model.dl")
    single "$model" "$model.dl" resume.c "$work/$model $slots"
done

npending=$(ls "$here"/pending/*.dl 2>/dev/null | wc -l)
[ "$npending" -gt 0 ] && [ "$only" = "  " ] &&
    echo "not run: $npending models in tests/train/pending/ (see its README.md)"
summary
