"""The older ops whose PyTorch meaning has corners, against PyTorch in f64
(basic.dl): forward outputs, loss and every weight's gradient within
1e-12 (replay.py). maximum and minimum propagate NaN (made in the model:
the entry points refuse NaN inputs); at ties between two weights dlc's
gradient goes to the first operand of maximum and minimum, PyTorch's
half to each (docs/OPS.md), so PyTorch's side is written with where, as
dlc defines it; max and min reductions share the gradient among ties as
torch.amax and amin do; argmax takes the first of equals; pow with
tensor and number exponents, rsqrt; one_hot gives a zero row for ids
outside 0..n-1 where F.one_hot raises (so PyTorch's side masks them);
global_max_pool (F.adaptive_max_pool2d to 1); conv1d and
conv_transpose2d with a bias; batch_norm in inference (the outputs, with
the initial running statistics 0 and 1) and training (the loss: batch
statistics); embedding.

    python3 basic.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import sys

import numpy as np
import torch
from torch.nn import functional as F

import replay

B = 5
# the parameters in declaration order: NAME_params(m) is them, flat
PARAMS = {"wa": (6,), "wb": (6,), "wp": (6,), "k1": (4, 3, 3), "b1": (4,), "kt": (2, 3, 3, 3),
          "bt": (3,), "g": (2,), "be": (2,), "emb": (7, 4)}


def torch_side(ins, params):
    T = {k: torch.tensor(v) for k, v in ins.items()}
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    a, q = T["a"], T["q"]
    ha, hb = a * P["wa"], a * P["wb"]
    qn = torch.where(q == 99, torch.sqrt(-q), q)
    out = {"mxn": torch.maximum(qn, a) + torch.minimum(a, qn)}
    out["rmax"] = torch.amax(torch.stack([ha, hb], 1), 1)
    out["rmin"] = torch.amin(torch.stack([ha, hb], 2), 2, keepdim=True)
    out["am"] = torch.argmax(T["t3"], 1).int()
    # dlc's maximum(a, b): a where a >= b; minimum: a where a <= b
    out["mh"] = torch.where(ha >= hb, ha, hb) + torch.where(ha <= hb, ha, hb) * 2
    out["pw"] = (torch.pow(ha.abs() + 0.5, P["wp"]) + torch.pow(ha, 3)
                 + torch.pow(hb.abs() + 0.1, -1.5) + torch.rsqrt(ha.abs() + 0.2))
    ids = T["ids"].long()
    inside = (ids >= 0) & (ids < 6)
    out["oh"] = F.one_hot(torch.where(inside, ids, 0), 6).double() * inside[..., None]
    c = F.conv_transpose2d(T["img"], P["kt"], P["bt"], stride=2, padding=1)
    out["gmp"] = F.adaptive_max_pool2d(c, 1).reshape(B, 3)
    out["c1"] = F.conv1d(T["sq"], P["k1"], P["b1"], padding=1)
    img = T["img"]
    out["bni"] = F.batch_norm(img, torch.zeros(2, dtype=torch.float64),
                              torch.ones(2, dtype=torch.float64), P["g"], P["be"])
    out["em"] = F.embedding(T["tok"].long(), P["emb"])
    bn = F.batch_norm(img, None, None, P["g"], P["be"], training=True)
    sq = lambda t: (t * t).sum()  # noqa: E731
    loss = (sq(out["rmax"]) + out["rmin"].sum() + sq(out["mh"]) + out["pw"].sum()
            + sq(out["gmp"]) + sq(out["c1"]) + (bn * bn * img).sum() + sq(out["em"]))
    loss.backward()
    return replay.results(out, loss, {k: p.grad.numpy() for k, p in P.items()})


def data(rng):
    u = lambda *s: rng.uniform(-1, 1, size=s)  # noqa: E731
    a = u(B, 6)
    q = np.where(rng.random((B, 6)) < 0.3, a, u(B, 6))
    q[rng.random((B, 6)) < 0.2] = 99  # NaN in the model
    ins = {"a": a, "q": q,
           "ids": np.array([[0, 5, -1], [6, 2, 2], [3, 7, 1], [4, 0, -5], [1, 1, 5]],
                           dtype=np.int32),
           "img": u(B, 2, 5, 5), "sq": u(B, 3, 8),
           "tok": rng.integers(0, 7, size=(B, 4)).astype(np.int32),
           # ties for argmax
           "t3": rng.integers(0, 3, size=(B, 6)).astype(np.float64)}
    params = {n: rng.uniform(-1, 1, size=s) for n, s in PARAMS.items()}
    params["wb"][::2] = params["wa"][::2]  # ties between ha and hb
    params["g"] = rng.uniform(0.5, 1.5, size=2)
    return ins, params


if __name__ == "__main__":
    sys.exit(replay.main("basic", data, torch_side))
