#!/bin/sh
# A text demo end to end (examples/common/train_text.c): train STEPS steps
# on the default text (a licence Debian ships) and require the final
# held-out loss to be at least MARGIN nats below the unigram baseline the
# program prints; the sample after it must be 200 characters of printable
# ASCII. Bad input (a missing file, a text too short for a window) must
# fail with a message, and --max-loss must fail a run above it. With
# "resume", also train 10 steps, stop, resume to 20 and require a
# checkpoint identical, byte for byte, to a 20-step run's, and a --log
# that the resumed run appended to: one header, train rows every 10 steps
# up to 20, a valid row at 10 and 20 whose losses are the printed ones.
#
# usage: text.sh TRAIN_PROGRAM STEPS MARGIN [resume]
set -eu
train=$1 steps=$2 margin=$3 resume=${4:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/dlc-text.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$train" --steps "$steps" --eval-every "$steps" --sample 200 --temperature 0.8 \
    --checkpoint "$work/full.safetensors" >"$work/out" 2>/dev/null
cat "$work/out"
awk -v margin="$margin" '
    /^final held-out loss/ { loss = $4; unigram = $(NF - 2); sub(/;$/, "", unigram) }
    END {
        if (loss == "" || unigram == "") { print "no final loss line"; exit 1 }
        printf "held-out %.4f, unigram %.4f: %.4f below, required %s\n", loss, unigram,
            unigram - loss, margin
        exit !(unigram - loss >= margin)
    }' "$work/out"
# The sample: the lines between "--- 200 characters ..." and "---".
sed -n '/^--- 200 characters/,/^---$/p' "$work/out" | sed '1d;$d' >"$work/sample"
chars=$(wc -c <"$work/sample")
[ "$chars" -ge 200 ] || { echo "sample: $chars characters"; exit 1; }
if LC_ALL=C grep -q '[^ -~	]' "$work/sample"; then
    echo "sample: not printable ASCII"
    exit 1
fi

if "$train" --text "$work/missing.txt" --steps 1 >/dev/null 2>"$work/err"; then
    echo "a missing text file did not fail"
    exit 1
fi
grep -q "missing.txt: cannot open" "$work/err"
printf 'too short\n' >"$work/short.txt"
if "$train" --text "$work/short.txt" --steps 1 >/dev/null 2>"$work/err"; then
    echo "a short text did not fail"
    exit 1
fi
grep -q "too short" "$work/err"
if "$train" --resume --steps 0 --sample 0 --max-loss 0.01 \
    --checkpoint "$work/full.safetensors" >/dev/null 2>&1; then
    echo "--max-loss 0.01 did not fail"
    exit 1
fi

[ "$resume" = resume ] || exit 0
c="--sample 0 --eval-every 10"
"$train" $c --steps 20 --checkpoint "$work/straight.safetensors" >/dev/null 2>&1
"$train" $c --steps 10 --checkpoint "$work/resumed.safetensors" --log "$work/log.csv" \
    >"$work/first" 2>&1
"$train" $c --steps 20 --resume --checkpoint "$work/resumed.safetensors" --log "$work/log.csv" \
    >"$work/second" 2>&1
printed=$(cat "$work/first" "$work/second" | awk '/^step [0-9]+: held-out loss/ { print $1, $2, $5 }' |
    tr -d ':' | awk '{ printf "%d,valid,%.4f\n", $2, $3 }')
logged=$(awk -F, '$3 == "valid" { printf "%d,valid,%.4f\n", $1, $4 }' "$work/log.csv")
[ "$(grep -c '^step,epoch,split' "$work/log.csv")" = 1 ] || { echo "log: header count"; exit 1; }
[ "$(awk -F, '$3 == "train" { print $1 }' "$work/log.csv" | tr '\n' ' ')" = "10 20 " ] ||
    { echo "log: train rows"; cat "$work/log.csv"; exit 1; }
[ -n "$printed" ] && [ "$printed" = "$logged" ] ||
    { echo "log: valid rows '$logged', printed '$printed'"; exit 1; }
echo "log: appended on resume, held-out losses as printed"
if cmp "$work/straight.safetensors" "$work/resumed.safetensors"; then
    echo "resume: bit for bit"
else
    echo "resume: the resumed run's checkpoint differs from the uninterrupted run's"
    exit 1
fi
