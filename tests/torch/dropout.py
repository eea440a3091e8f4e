"""Dropout in training against PyTorch (dropout.dl): dlc's
compute_gradients on one sample whose loss sums the dropped values gives
each weight's mask times its input and 1 / (1 - p); PyTorch's
F.dropout2d (channels of [N, C, H, W]), F.dropout1d (channels of
[N, C, L], dlc's dropout2d of a 3-d tensor) and F.dropout draw their own
on the same shapes. The generators differ, so they are compared by what
the masks must be: every kept value scaled by exactly 1 / (1 - p) and the
rest 0 (within 1e-12), whole channels kept or dropped for the 2-d and
1-d forms, and a dropped fraction within 4 standard errors of p for both
(2000 channels, 12000 elements); the inference forward is the identity.

    python3 dropout.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import math
import os
import sys

import numpy as np
import torch
from torch.nn import functional as F

import replay

# output, parameter, input, shape of one sample, p, PyTorch's function,
# the axes of one channel (None: elementwise)
CASES = [("y", "w", "x", (2000, 2, 3), 0.3, F.dropout2d, (1, 2)),
         ("ys", "ws", "s", (2000, 5), 0.6, F.dropout1d, (1,)),
         ("yv", "wv", "v", (12000,), 0.25, F.dropout, None)]


def check(name, kept, p, axes, n):
    """kept: per element, 1 / (1 - p) or 0 (scale off, or NaN if neither);
    prints and returns the number of failures."""
    scale = 1 / (1 - p)
    values = np.isclose(kept, scale, rtol=1e-12, atol=0) | (kept == 0)
    chan = kept.reshape(kept.shape[0], -1) if axes else kept.reshape(-1, 1)
    zero = chan == 0
    whole = bool(np.all(zero.all(1) | ~zero.any(1)))
    dropped = float(np.mean(chan[:, 0] == 0))
    z = (dropped - p) / math.sqrt(p * (1 - p) / n)
    ok = bool(values.all()) and whole and abs(z) <= 4
    form = f"whole channels: {whole}" if axes else "elementwise"
    print(f"{name:18s} kept values 1/(1-p) or 0: {bool(values.all())}, {form}, "
          f"dropped {dropped:.4f} (p {p}, {z:+.2f} standard errors){'' if ok else '  FAIL'}")
    return not ok


def main():
    dlc, cc, libs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    lib = replay.build(dlc, cc, libs, work, "dropout")
    rng = np.random.default_rng(14)
    ins = {inp: rng.uniform(0.5, 1.5, (1, *shape)) for _, _, inp, shape, _, _, _ in CASES}
    params = {w: rng.uniform(0.5, 1.5, shape) for _, w, _, shape, _, _, _ in CASES}
    want = {out: ins[inp] * params[w] for out, w, inp, _, _, _, _ in CASES}  # inference
    want["loss"] = np.zeros(())  # placeholder: the training loss is checked below
    got = replay.run(lib, "dropout", params, ins, dict(want, **{"grad " + w: params[w]
                                                             for _, w, _, _, _, _, _ in CASES}))
    if got is None:
        return 1
    bad = replay.compare({k: got[k] for k in ("y", "ys", "yv")},
                         {k: want[k] for k in ("y", "ys", "yv")})
    total = 0.0
    for out, w, inp, shape, p, fn, axes in CASES:
        kept = got["grad " + w] / ins[inp][0]
        total += float(np.sum(ins[inp][0] * params[w] * kept))
        n = shape[0]
        bad += check(f"dlc {out}", kept, p, axes, n)
        torch.manual_seed(14)
        t = fn(torch.ones(1, *shape, dtype=torch.float64), p, training=True)[0].numpy()
        bad += check(f"PyTorch {fn.__name__}", t, p, axes, n)
    # the training loss is the sum of the values the masks kept
    err = abs(float(got["loss"]) - total) / max(1, abs(total))
    bad += err > 1e-12
    print(f"training loss {float(got['loss']):.6g}, from the masks {total:.6g}"
          f"{'' if err <= 1e-12 else '  FAIL'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
