"""dlc against PyTorch on the same problem: runs crosscheck_NAME (the first
STEPS steps of the compiled training, crosscheck.c), then trains the same
model in PyTorch (bench/torch_mnist.py's definitions) from the weights dlc
initialized, on the same batches, with torch.optim.Adam(lr=1e-3) and the
model's schedule, twice: in f64 (the reference) and in f32. It compares
every step's loss and the final weights of dlc with the f64 run.

dlc computes in f32, and an f32 training does not follow the f64 one
exactly: Adam divides each gradient by its own running size, so a weight
whose gradient is rounding noise moves by about lr whatever the noise, and
the trajectories part, exponentially once the training is chaotic (from
step 40 or so for the MLP, 85-100 for LeNet as the GEMM's tiles round,
hence STEPS 30 and 80: with two row tiles LeNet parted at step 87). How
much rounding there is depends on the BLAS kernel: with OpenBLAS's
SkylakeX kernels dlc's losses stay within 2e-6 (MLP) and 3e-7 (LeNet) of
the f64 ones, with its Haswell or Zen kernels the MLP's reached 5.9e-4 at
step 30. That is f32 arithmetic, not dlc's math (a wrong gradient or
update shows from the first steps), so the bound at each step is the
larger of --loss-tol and the largest distance PyTorch's own f32 run has
had from the f64 one up to that step, on the same machine and BLAS (the
final weights likewise, per tensor, with --weight-tol): dlc in f32 must
stay about as close to the f64 result as PyTorch in f32 does (within
twice its distance: which of two f32 trajectories strays less once they
part is chance; the MLP's fc2.b was 1.69e-3 away in dlc and in torch f32
alike, dlc's a hair further), and within the fixed tolerance while the
f32 runs agree that closely. (PyTorch in f32 was
no better a reference than dlc: with OPENBLAS_NUM_THREADS=1 Debian's
torch 1.13 strayed from its own f64 result 50 times further than dlc did,
the MLP's loss after 10 steps: 5e-5 against 1e-6.)

    python3 crosscheck.py --model NAME PROGRAM DATA_DIR [STEPS [BATCH]]

Exit status 0 when every loss agrees within its bound (relative) and the
final weights within theirs (the norm of the difference over the norm of
the weights, per tensor); 1 otherwise. Needs python3-torch (Debian).
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
STEPS = {"mnist_mlp": 30, "lenet": 80}
# the models' schedules: cosine(total, min_lr), as CosineAnnealingLR
COSINE = {"lenet": (9380, 1e-5)}
MEAN, STD = 0.1307, 0.3081  # DLRT_MNIST_NORMALIZE
# how much further from f64 than torch f32 dlc may be once f32 drifts (above)
F32_SLACK = 2.0


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


def train(name, build, shape, w0, x, y, steps, batch, dtype):
    """The model trained in PyTorch in dtype from dlc's initial weights w0;
    the losses of its steps."""
    model = build().to(dtype)
    for lname, layer in zip(LAYERS[name], layers(model)):
        with torch.no_grad():
            layer.weight.copy_(to_torch(lname + ".w", w0[lname + ".w"], layer))
            layer.bias.copy_(to_torch(lname + ".b", w0[lname + ".b"], layer))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = None
    if name in COSINE:
        total, min_lr = COSINE[name]
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, total, min_lr)
    x, losses = x.to(dtype), []
    for k in range(steps):
        xb, yb = x[k * batch:(k + 1) * batch].reshape(batch, *shape), y[k * batch:(k + 1) * batch]
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        losses.append(loss.item())
    return model, losses


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
    x = idx(os.path.join(a.data, "train-images-idx3-ubyte"))[:steps * batch]
    y = idx(os.path.join(a.data, "train-labels-idx1-ubyte"))[:steps * batch]
    x = (torch.tensor(x, dtype=torch.float64) / 255 - MEAN) / STD
    y = torch.tensor(y, dtype=torch.long)
    model, losses = train(a.model, build, shape, w0, x, y, steps, batch, torch.float64)
    model32, losses32 = train(a.model, build, shape, w0, x, y, steps, batch, torch.float32)

    worst, ok, drift32 = 0.0, True, 0.0
    for k in range(steps):
        ref = losses[k]
        d = abs(ref - dlc_losses[k]) / max(1.0, abs(ref))
        drift32 = max(drift32, abs(ref - losses32[k]) / max(1.0, abs(ref)))
        worst = max(worst, d)
        if d > max(a.loss_tol, F32_SLACK * drift32):
            ok = False
            print(f"step {k}: torch f64 loss {ref:.9g}, dlc {dlc_losses[k]:.9g}, "
                  f"torch f32 {losses32[k]:.9g}")
    print(f"{a.model}: {steps} steps of batch {batch}: losses {dlc_losses[0]:.4f} -> "
          f"{dlc_losses[-1]:.4f}, largest relative difference from torch f64 {worst:.2e} "
          f"(tolerance {a.loss_tol:g}, or {F32_SLACK:g}x torch f32's own: {drift32:.2e})")
    for name, layer, layer32 in zip(LAYERS[a.model], layers(model), layers(model32)):
        for suffix, p, p32 in ((".w", layer.weight, layer32.weight),
                               (".b", layer.bias, layer32.bias)):
            want = p.detach().numpy()
            norm = max(1e-30, float(np.linalg.norm(want)))
            got = to_torch(name + suffix, w1[name + suffix], layer).numpy()
            d = float(np.linalg.norm(got - want)) / norm
            d32 = float(np.linalg.norm(p32.detach().double().numpy() - want)) / norm
            tol = max(a.weight_tol, F32_SLACK * d32)
            if d > tol:
                ok = False
            print(f"  {name + suffix:10s} {str(list(want.shape)):16s} final weights differ by "
                  f"{d:.2e} of their norm (torch f32 {d32:.2e})"
                  f"{'' if d <= tol else '  <-- too much'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
