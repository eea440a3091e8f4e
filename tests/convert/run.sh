#!/bin/sh
# tools/dlc-torch against the compiled models (driver.c, built per model as
# convert_MODEL: the demos' MLP, LeNet-5, char-LSTM, GPT and ResNet, and
# seq.dl with a GRU, an rnn, layer and batch norm and an embedding):
#  1. round trip: a new instance's checkpoint -> torch -> dlc, loaded and
#     saved again, is the same file byte for byte; after two training steps
#     (nonzero biases, running statistics, optimizer state, step) every
#     parameter and state comes back bit for bit and the forward outputs
#     are the same bits;
#  2. from torch: a state_dict with new random values (nonzero bias_hh
#     among them) converted to dlc loads (NAME_load) and gives the outputs
#     that torch.nn's formulas give in numpy (check.py reference, 1e-6),
#     and, where torch is installed, that the torch.nn modules give
#     (check.py torch: the test convert_torch, which exits 77, skipped,
#     without torch);
#  3. the messages for a missing, transposed, F64, extra or unmapped
#     tensor and a bad map, and exit status 1 (2 for the map).
#
# usage: run.sh PYTHON SOURCE_DIR DRIVER_DIR WORK_DIR [torch]
set -eu
py=$1 src=$2 bin=$3 work=$4 mode=${5:-}
here=$src/tests/convert
tool() { "$py" "$src/tools/dlc-torch" "$@"; }
check() { "$py" "$here/check.py" "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
if [ "$mode" = torch ] && ! "$py" -c "import torch" 2>/dev/null; then
    echo "no torch for $py: skipped"
    exit 77
fi

# 1. the round trips of model $m (its new instance converted: $m.torch.*)
roundtrip() {
    tool from-torch $m.torch.safetensors $m.back.safetensors --like $m.safetensors $map \
        || fail "$m: from-torch"
    "$drv" resave $m.back.safetensors $m.resaved.safetensors || fail "$m: load the converted file"
    cmp -s $m.safetensors $m.resaved.safetensors || fail "$m: the round trip changed the checkpoint"
    "$drv" train $m.safetensors $m.trained.safetensors || fail "$m: train"
    tool to-torch $m.trained.safetensors $m.ttorch.safetensors $map || fail "$m: to-torch (trained)"
    tool from-torch $m.ttorch.safetensors $m.tback.safetensors --like $m.safetensors $map \
        || fail "$m: from-torch (trained)"
    check same $m.trained.safetensors $m.tback.safetensors || fail "$m: trained round trip"
    "$drv" forward $m.trained.safetensors $m.fwd1 && "$drv" forward $m.tback.safetensors $m.fwd2 \
        || fail "$m: forward"
    cmp -s $m.fwd1 $m.fwd2 || fail "$m: the round trip changed the outputs"
}

models="mnist_mlp lenet charlstm gpt resnet seq"
for m in $models; do
    drv=$bin/convert_$m
    map=
    [ "$m" = seq ] && map="--map $here/seq.map"
    "$drv" create 7 $m.safetensors || fail "$m: create"
    tool to-torch $m.safetensors $m.torch.safetensors $map || fail "$m: to-torch"
    [ "$mode" = torch ] || roundtrip
    # 2. from torch's values
    check randomize $m.torch.safetensors $m.random.safetensors 5
    tool from-torch $m.random.safetensors $m.rback.safetensors --like $m.safetensors $map \
        || fail "$m: from-torch (random)"
    "$drv" forward $m.rback.safetensors $m.rfwd || fail "$m: forward (random)"
    if [ "$mode" = torch ]; then
        check torch $m $m.random.safetensors $m.rfwd || fail "$m: torch.nn"
    else
        check reference $m $m.random.safetensors $m.rfwd || fail "$m: reference"
    fi
    echo "PASS: $m"
done
[ "$mode" != torch ] || exit 0

# names: a gru of layer 1, a state_dict without metadata but the format
tool to-torch seq.safetensors seq1.safetensors --map /dev/stdin <<EOF || fail "map gru:1"
param embed embed
gru:1 rnn   w_ih w_hh b_ih b_hh
lstm:1 bi   bl.w_ih bl.w_hh bl.b
rnn   r     r.w_ih r.w_hh r.b
param n.gamma n.gamma
param n.beta n.beta
batchnorm norm norm.gamma norm.beta norm.running_mean norm.running_var
linear head head.w head.b
EOF
check has seq1.safetensors rnn.weight_ih_l1 F32 18,5
check has seq1.safetensors bi.weight_hh_l1_reverse F32 12,3
check has seq1.safetensors bi.bias_hh_l1 F32 12
check has seq1.safetensors norm.num_batches_tracked I64 ""
check has seq1.safetensors head.weight F32 3,6

# the inferred map finds the stacked bidirectional lstm
tool map seq.safetensors | grep -Eq '^lstm +bl +bl.w_ih bl.w_hh bl.b$' || fail "map: bl"
check has seq.torch.safetensors bl.weight_ih_l0_reverse F32 12,6
check has seq.torch.safetensors bl.bias_hh_l0_reverse F32 12

# 3. errors: the message (text) and the exit status
expect() { # STATUS TEXT COMMAND...
    status=$1 text=$2
    shift 2
    rc=0
    "$@" > out.txt 2>&1 || rc=$?
    [ "$rc" = "$status" ] || fail "$*: exit $rc, want $status: $(cat out.txt)"
    grep -qF -- "$text" out.txt || fail "$*: no '$text' in: $(cat out.txt)"
}
t=mnist_mlp.torch.safetensors
check edit $t drop.safetensors drop fc2.weight
expect 1 "dlc-torch: drop.safetensors: no tensor 'fc2.weight' (for dlc 'fc2.w', inferred)" \
    tool from-torch drop.safetensors o.safetensors --like mnist_mlp.safetensors
check edit $t transposed.safetensors transpose fc1.weight
expect 1 "dlc-torch: transposed.safetensors: tensor 'fc1.weight' is F32 [784, 256], the model needs F32 [256, 784] (dlc 'fc1.w' F32 [784, 256])" \
    tool from-torch transposed.safetensors o.safetensors --like mnist_mlp.safetensors
check edit $t f64.safetensors f64 fc2.bias
expect 1 "tensor 'fc2.bias' is F64 [10], the model needs F32 [10] (dlc 'fc2.b' F32 [10])" \
    tool from-torch f64.safetensors o.safetensors --like mnist_mlp.safetensors
check edit $t extra.safetensors add extra.weight
expect 1 "dlc-torch: extra.safetensors: tensor 'extra.weight' (F32 [3]) is not in the map" \
    tool from-torch extra.safetensors o.safetensors --like mnist_mlp.safetensors
[ ! -e o.safetensors ] || fail "a refused conversion wrote its output"
check edit seq.torch.safetensors bidrop.safetensors drop bl.weight_hh_l0_reverse
expect 1 "no tensor 'bl.weight_hh_l0_reverse' (for dlc 'bl.w_hh', $here/seq.map:5)" \
    tool from-torch bidrop.safetensors o.safetensors --like seq.safetensors --map $here/seq.map
printf 'lstm bl bl.w_ih bl.w_hh r.b\n' > bi.map
expect 1 "lstm 'bl' (bi.map:1), bidirectional, wants w_ih [2, in, 4H], w_hh [2, H, 4H] and biases [2, 4H], not 'bl.w_ih' F32 [2, 6, 12], 'bl.w_hh' F32 [2, 3, 12], 'r.b' F32 [6]" \
    tool to-torch seq.safetensors o.safetensors --map bi.map
printf 'linear fc1 fc1.w fc1.b\n' > part.map
expect 1 "dlc-torch: mnist_mlp.safetensors: tensor 'fc2.w' (F32 [256, 10]) is not in the map" \
    tool to-torch mnist_mlp.safetensors o.safetensors --map part.map
expect 1 "mnist_mlp.safetensors: tensor 'fc2.b' (F32 [10]) is not in the map" \
    tool from-torch $t o.safetensors --like mnist_mlp.safetensors --map part.map
printf 'linear fc1 fc1.w fc1.b\nlinear fc2 fc2.w fc2.bias\n' > typo.map
expect 1 "dlc-torch: mnist_mlp.safetensors: no tensor 'fc2.bias' (b of linear 'fc2', typo.map:2)" \
    tool to-torch mnist_mlp.safetensors o.safetensors --map typo.map
printf 'linear fc1 fc1.w fc1.b\ndense fc2 fc2.w fc2.b\n' > kind.map
expect 2 "dlc-torch: kind.map:2: unknown kind 'dense'" \
    tool to-torch mnist_mlp.safetensors o.safetensors --map kind.map
printf 'lstm fc1 fc1.w fc1.b\nlinear fc2 fc2.w fc2.b\n' > short.map
expect 2 "dlc-torch: short.map:1: lstm wants a torch module and 3 dlc tensors (w_ih w_hh b)" \
    tool to-torch mnist_mlp.safetensors o.safetensors --map short.map
printf 'conv fc1 fc1.w fc1.b\nlinear fc2 fc2.w fc2.b\n' > conv.map
expect 1 "conv 'fc1' (conv.map:1) wants w [out, in, k...] and b [out], not 'fc1.w' F32 [784, 256], 'fc1.b' F32 [256]" \
    tool to-torch mnist_mlp.safetensors o.safetensors --map conv.map
expect 2 "a checkpoint of model 'mnist_mlp', not 'lenet'" \
    tool from-torch $t o.safetensors --like mnist_mlp.safetensors --model lenet
printf 'not safetensors' > junk.safetensors
expect 1 "dlc-torch: junk.safetensors: not a safetensors file" \
    tool to-torch junk.safetensors o.safetensors
expect 2 "from-torch needs --map, --like or both" tool from-torch $t o.safetensors
[ ! -e o.safetensors ] || fail "a refused conversion wrote its output"
# dlc's own loader refuses a state_dict as it is
expect 1 "mnist_mlp.torch.safetensors: no tensor 'fc1.w' in the file (it has 4)" \
    "$bin/convert_mnist_mlp" resave $t o.safetensors
echo "PASS: messages"
