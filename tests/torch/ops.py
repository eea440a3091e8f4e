"""Recent ops against PyTorch in f64 (ops.dl): compiles the model, links it
into a shared library with libdlrt, sets its weights, runs its forward
function and compute_gradients on the same random inputs, and compares
every output, the loss and every weight's gradient with PyTorch's
(torch.autograd): // and % (Python's floor division and remainder on
tensors and numbers, f64 and i32), cross_entropy and nll_loss with
ignore_index, x[ids] indexing with repeated ids, and issue 14's math:
comparisons, where, sign, step, clamp, tril, triu, arange, eye, the
activations, layer_norm over two axes, var, lp_pool2d over windows that
a relu zeroed (gradient 0 there, as PyTorch's), stop_gradient; the
comparisons lt, ge, eq and ne, as calls and as operators, on f64 with
NaN (made in the model: the entry points refuse NaN inputs) and on i32,
with &, | and ! and torch.where on them, gradients through where;
torch.gather (repeated indices, a parameter, i32; dlc's broadcasting
indices as torch.take_along_dim), reverse_sequence (as flip of each
row's first n steps), cast to i32 (truncation), relu of NaN (NaN, as
PyTorch's: replay.compare wants NaN exactly where PyTorch has it). Within 1e-12
(relative to the magnitude, at least 1); the i32 results exactly.

dlc's floor division has a zero gradient; torch's `a // b` has none
(autograd raises), so the loss's term is torch.div(..., rounding_mode=
"floor"), whose gradient is zero. An i32 divisor of 0 is left out:
PyTorch raises, dlc gives 0 (docs/OPS.md).

    python3 ops.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import sys

import numpy as np
import torch

import replay

B = 6
# the parameters in declaration order: NAME_params(m) is them, flat
PARAMS = {"w": (7, 4), "wd": (5,), "wc": (4, 4), "wm": (3, 6), "we": (4, 4), "g2": (4, 4),
          "bt2": (4, 4), "wg": (6, 4)}


def inputs(rng):
    u = lambda lo, hi, *s: rng.uniform(lo, hi, size=s)
    sign = lambda *s: rng.choice([-1.0, 1.0], size=s)
    t = rng.integers(1, 5, size=(B, 5)) * rng.choice([-1, 1], size=(B, 5))
    out = {
        "a": u(-4, 4, B, 5),
        "d": u(0.3, 2, B, 5) * sign(B, 5),
        "s": rng.integers(-20, 21, size=(B, 5)).astype(np.int32),
        "t": t.astype(np.int32),
        # repeats within each row and across rows
        "ids": np.array([[0, 6, 0], [3, 3, 3], [6, 1, 2], [5, 0, 5], [4, 4, 1], [2, 6, 2]],
                        dtype=np.int32),
        "k": np.array([5, 1, 5, 0], dtype=np.int32),
        "x": u(-1, 1, B, 6, 4),
        "y": np.array([1, -100, 3, 0, -100, 2], dtype=np.int32),
        "z": np.array([2, 0, 2, 3, 1, 2], dtype=np.int32),
        "e": u(-1.5, 1.5, B, 2, 4, 4),
    }
    # a's values at some places, NaN at others, and the constants compared
    q = np.where(rng.random((B, 5)) < 0.3, out["a"], rng.choice([-1.0, 0.0, 0.5, 1.0, 2.0],
                                                                 size=(B, 5)))
    q[rng.random((B, 5)) < 0.15] = 99  # NaN in the model (inputs are finite)
    out.update({
        "q": q,
        "gi": rng.integers(0, 6, size=(B, 3, 4)).astype(np.int32),
        "gj": rng.integers(0, 4, size=(B, 6, 2)).astype(np.int32),
        "gl": rng.integers(0, 6, size=(B, 2, 1)).astype(np.int32),
        "gk": rng.integers(0, 6, size=(3, 4)).astype(np.int32),
        "gs": rng.integers(0, 5, size=(B, 2)).astype(np.int32),
        "n": np.array([0, 6, 3, 1, 5, 2], dtype=np.int32),
    })
    return out


def torch_side(ins, params):
    T = {k: torch.tensor(v) for k, v in ins.items()}
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    a, d, s, t, x = T["a"], T["d"], T["s"], T["t"], T["x"]
    ids, k = T["ids"].long(), T["k"].long()
    w, wd, wc, wm = P["w"], P["wd"], P["wc"], P["wm"]
    logits = x[:, 0] @ wc
    y, z = T["y"].long(), T["z"].long()
    F = torch.nn.functional
    out = {
        "fdiv": a // d, "rem": a % d, "fdiv_c": a // -0.75, "rem_c": 2.5 % d,
        "ifdiv": s // t, "irem": s % t, "irem_c": s % -3,
        "rows": w[ids], "mid": x[:, k], "last": x[:, 1:5, k // 2], "cols": wm[:, k],
        "ce": F.cross_entropy(logits, y, ignore_index=-100),
        "ce_sum": F.cross_entropy(logits, y, reduction="sum", ignore_index=-100),
        "ce_none": F.cross_entropy(logits, y, reduction="none", ignore_index=-100),
        "nll": F.nll_loss(F.log_softmax(logits, dim=-1), z, ignore_index=2),
    }
    he = T["e"] * P["we"]
    act = (F.gelu(he, approximate="tanh") + F.gelu(he) + F.elu(he) + F.silu(he)
           + F.softplus(he) + F.leaky_relu(he, 0.2) + torch.sigmoid(he) * torch.tanh(he))
    out.update({
        "wh": torch.where(he > 0, he, 0.1 * he),
        "sg": torch.sign(he) + (he > 0).double() + (he > 0.2).double() - (~(he <= -0.1)).double(),
        "cl": torch.clamp(he, -0.3, 0.4),
        "tr": torch.tril(he, -1) + torch.triu(he, 2),
        "ar": torch.arange(1, 3.5, 0.5, dtype=torch.float64),
        "ey": torch.eye(3, 4, dtype=torch.float64),
        "act": act,
        "ln2": F.layer_norm(he, (4, 4), P["g2"], P["bt2"], eps=1e-5),
        "vr": torch.var(he, dim=(2, 3), unbiased=False),
        "vr1": torch.var(he, dim=3),
        "lp": F.lp_pool2d(F.relu(he - 0.3), 2, 2) + F.lp_pool2d(F.relu(he), 3, 2),
        "sc": (torch.sin(he) * torch.cos(he) + torch.sqrt(he.abs() + 1) + torch.exp(-he * he)
               + torch.log(he.abs() + 0.5)),
    })
    q, si = T["q"], s // 5
    q = torch.where(q == 99, torch.sqrt(-q), q)
    f = lambda m: m.double()  # noqa: E731
    i = lambda m: m.int()  # noqa: E731
    out["cmp"] = (f(q < a) + f(q >= a) * 2 + f(q == a) * 4 + f(q != a) * 8 + f(q < 0) * 16
                  + f(q >= 0.5) * 32 + f(q == 1) * 64 + f(q != -1) * 128)
    out["icmp"] = (i(si < t) + i(si >= t) * 2 + i(si == t) * 4 + i(si != t) * 8 + i(si < 0) * 16
                   + i(si >= -2) * 32 + i(si == 1) * 64 + i(si != t) * 128)
    out["logic"] = f(((a > 0) & (d < 0)) | ~(q <= 0.5)) + f(q != q) * 2
    out["ilogic"] = i(((si > 0) & (t < 0)) | ~(si != t))
    out["wsel"] = (torch.where(q < a, a, d) + torch.where(si != 0, a, -1.0)
                   + torch.where(q == q, 0 * a, 1.0))
    xg = x * P["wg"]
    gi, gj, gl, gk = (T[n].long() for n in ("gi", "gj", "gl", "gk"))
    out["ga"] = torch.gather(xg, 1, gi)
    out["gb"] = torch.gather(xg, 2, gj)
    out["gc"] = torch.gather(P["wg"], 0, gk)
    out["gbc"] = torch.take_along_dim(xg, gl, dim=1)  # broadcasts, as dlc's gather
    out["gint"] = torch.gather(s, -1, T["gs"].long())
    out["rv"] = torch.stack([torch.cat([xg[b, :m].flip(0), xg[b, m:]])
                             for b, m in enumerate(ins["n"])])
    out["ci"] = (a * 3).to(torch.int32)
    out["rn"] = F.relu(q)
    wc2 = (torch.where(he >= 0.1, he, he * he) + torch.where(he < -0.2, he * 3, 0.5 * he)
           + torch.where(he == 0, 1.0, he) * torch.where(he != 0.5, he, 0.0))
    sq = lambda v: (v * v).sum()  # noqa: E731
    loss = (sq(out["wh"]) + (out["cl"] * he).sum() + sq(out["tr"]) + sq(act)
            + (out["ln2"] * he).sum() + out["vr"].sum() + out["vr1"].sum() + sq(out["lp"])
            + out["sc"].sum() + (he.detach() * he).sum()
            + out["ce"] + 0.5 * out["nll"] + (w[ids] * x[:, 0:3]).sum()
            + (x[:, 1:4] * wm[:, k]).sum() + ((a * wd) % d).sum() + (a % (d * wd)).sum()
            + torch.div(a, d * wd, rounding_mode="floor").sum() + ((s % t).double() * wd).sum()
            + sq(wc2) + sq(out["ga"]) + sq(out["gb"]) + sq(out["gc"]) + out["gbc"].sum()
            + (out["rv"] * x[:, :, 0:1]).sum())
    loss.backward()
    return replay.results(out, loss, {n: p.grad.numpy() for n, p in P.items()})


def data(rng):
    ins = inputs(rng)
    params = {n: rng.uniform(-1, 1, size=s) for n, s in PARAMS.items()}
    params["wd"] = rng.uniform(0.5, 1.5, size=PARAMS["wd"])  # divisors: away from 0
    return ins, params


if __name__ == "__main__":
    sys.exit(replay.main("ops", data, torch_side))
