"""dlc against PyTorch on the same problem: runs crosscheck_NAME (the first
STEPS steps of the compiled training, crosscheck.c), then trains the same
model in PyTorch (bench/torch_mnist.py's definitions) from the weights dlc
initialized, on the same batches, with torch.optim.Adam(lr=1e-3) and the
model's schedule, in f64,
and compares every step's loss and the final weights. dlc computes in f32,
so they agree to a tolerance while the training is not yet chaotic: the
difference grows exponentially once it is, from step 40 or so for the MLP
(4e-4 of the loss at step 60), from step 100 for LeNet, so the default
STEPS are 30 and 100 (relative differences there: 2e-6 and 3e-7). PyTorch in f32 is no better a reference: with OPENBLAS_NUM_THREADS=1
Debian's torch 1.13 strays from its own f64 result 50 times further than
dlc does (the MLP's loss after 10 steps: 5e-5 against 1e-6).

    python3 crosscheck.py --model NAME PROGRAM DATA_DIR [STEPS [BATCH]]

Exit status 0 when every loss agrees within --loss-tol (relative) and the
final weights within --weight-tol (the norm of the difference over the
norm of the weights, per tensor: Adam's step is about lr whatever the
gradient's size, so a weight whose gradient is rounding noise moves by
lr either way); 1 otherwise. Needs python3-torch (Debian).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench"))
from torch_mnist import MODELS  # noqa: E402

# the dlc parameter of each torch layer with weights, in the layers' order
LAYERS = {"mnist_mlp": ["fc1", "fc2"], "lenet": ["conv1", "conv2", "fc1", "fc2", "fc3"]}
STEPS = {"mnist_mlp": 30, "lenet": 100}
# the models' schedules: cosine(total, min_lr), as CosineAnnealingLR
COSINE = {"lenet": (9380, 1e-5)}
MEAN, STD = 0.1307, 0.3081  # DLRT_MNIST_NORMALIZE


def safetensors(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    head = json.loads(raw[8:8 + n])
    out = {}
    for name, t in head.items():
        if name == "__metadata__":
            continue
        if t["dtype"] != "F32":
            sys.exit(f"{path}: {name} is {t['dtype']}, expected F32")
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], np.float32).reshape(t["shape"])
    return out


def idx(path):
    raw = open(path, "rb").read()
    nd = raw[3]
    dims = [struct.unpack(">I", raw[4 + 4 * i:8 + 4 * i])[0] for i in range(nd)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * nd).reshape(dims)


def layers(model):
    return [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]


def to_torch(name, a, layer):
    # dense weights are [in, out] in dlc, [out, in] in torch; conv weights agree
    t = a.T.copy() if isinstance(layer, nn.Linear) and name.endswith(".w") else a
    return torch.tensor(t, dtype=torch.float64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=LAYERS, required=True)
    ap.add_argument("--loss-tol", type=float, default=1e-4)
    ap.add_argument("--weight-tol", type=float, default=1e-3)
    ap.add_argument("program")
    ap.add_argument("data")
    ap.add_argument("sizes", type=int, nargs="*", help="STEPS BATCH (see STEPS; 64)")
    a = ap.parse_args()
    steps, batch = a.sizes + [STEPS[a.model], 64][len(a.sizes):]
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory() as tmp:
        init, final = os.path.join(tmp, "init.safetensors"), os.path.join(tmp, "final.safetensors")
        run = subprocess.run([a.program, a.data, str(steps), str(batch), init, final],
                             capture_output=True, text=True)
        if run.returncode:
            sys.exit(f"{a.program} failed: {run.stderr}")
        dlc_losses = [float(v) for v in run.stdout.split()]
        w0, w1 = safetensors(init), safetensors(final)

    shape, build = MODELS[a.model]
    model = build().double()
    for name, layer in zip(LAYERS[a.model], layers(model)):
        with torch.no_grad():
            layer.weight.copy_(to_torch(name + ".w", w0[name + ".w"], layer))
            layer.bias.copy_(to_torch(name + ".b", w0[name + ".b"], layer))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = None
    if a.model in COSINE:
        total, min_lr = COSINE[a.model]
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, min_lr)
    x = idx(os.path.join(a.data, "train-images-idx3-ubyte"))[:steps * batch]
    y = idx(os.path.join(a.data, "train-labels-idx1-ubyte"))[:steps * batch]
    x = (torch.tensor(x, dtype=torch.float64) / 255 - MEAN) / STD
    y = torch.tensor(y, dtype=torch.long)

    worst, ok = 0.0, True
    for k in range(steps):
        xb, yb = x[k * batch:(k + 1) * batch].reshape(batch, *shape), y[k * batch:(k + 1) * batch]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        d = abs(loss.item() - dlc_losses[k]) / max(1.0, abs(loss.item()))
        worst = max(worst, d)
        if d > a.loss_tol:
            ok = False
            print(f"step {k}: torch loss {loss.item():.9g}, dlc {dlc_losses[k]:.9g}")
    print(f"{a.model}: {steps} steps of batch {batch}: losses {dlc_losses[0]:.4f} -> "
          f"{dlc_losses[-1]:.4f}, largest relative difference from torch {worst:.2e} "
          f"(tolerance {a.loss_tol:g})")
    for name, layer in zip(LAYERS[a.model], layers(model)):
        for suffix, p in ((".w", layer.weight), (".b", layer.bias)):
            want = p.detach().numpy()
            got = to_torch(name + suffix, w1[name + suffix], layer).numpy()
            d = float(np.linalg.norm(got - want) / max(1e-30, float(np.linalg.norm(want))))
            if d > a.weight_tol:
                ok = False
            print(f"  {name + suffix:10s} {str(list(want.shape)):16s} final weights differ by "
                  f"{d:.2e} of their norm{'' if d <= a.weight_tol else '  <-- too much'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
