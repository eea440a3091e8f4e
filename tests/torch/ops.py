"""Recent ops against PyTorch in f64 (ops.dl): compiles the model, links it
into a shared library with libdlrt, sets its weights, runs its forward
function and compute_gradients on the same random inputs, and compares
every output, the loss and every weight's gradient with PyTorch's
(torch.autograd): // and % (Python's floor division and remainder on
tensors and numbers, f64 and i32), cross_entropy and nll_loss with
ignore_index, and x[ids] indexing with repeated ids. Within 1e-12
(relative to the magnitude, at least 1); the i32 results exactly.

dlc's floor division has a zero gradient; torch's `a // b` has none
(autograd raises), so the loss's term is torch.div(..., rounding_mode=
"floor"), whose gradient is zero. An i32 divisor of 0 is left out:
PyTorch raises, dlc gives 0 (docs/OPS.md).

    python3 ops.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import ctypes
import os
import subprocess
import sys

import numpy as np
import torch

B, C = 6, 4
# the parameters in declaration order: NAME_params(m) is them, flat
PARAMS = {"w": (7, 4), "wd": (5,), "wc": (4, 4), "wm": (3, 6)}
OUTS = {"fdiv": ((B, 5), np.float64), "rem": ((B, 5), np.float64),
        "fdiv_c": ((B, 5), np.float64), "rem_c": ((B, 5), np.float64),
        "ifdiv": ((B, 5), np.int32), "irem": ((B, 5), np.int32), "irem_c": ((B, 5), np.int32),
        "rows": ((B, 3, 4), np.float64), "mid": ((B, 4, 4), np.float64),
        "last": ((B, 4, 4), np.float64), "cols": ((3, 4), np.float64),
        "ce": ((), np.float64), "ce_sum": ((), np.float64), "ce_none": ((B,), np.float64),
        "nll": ((), np.float64)}


def build(dlc, cc, libs, work):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ops.dl")
    obj, so = os.path.join(work, "ops.o"), os.path.join(work, "ops.so")
    subprocess.run([dlc, src, "-o", obj], check=True)
    subprocess.run([cc, "-shared", "-o", so, obj, "-Wl,--whole-archive", libs.split()[0],
                    "-Wl,--no-whole-archive"] + libs.split()[1:], check=True)
    lib = ctypes.CDLL(so)
    lib.ops_create.restype = ctypes.c_void_p
    lib.ops_params.restype = ctypes.POINTER(ctypes.c_double)
    lib.ops_grads.restype = ctypes.POINTER(ctypes.c_double)
    return lib


def inputs(rng):
    u = lambda lo, hi, *s: rng.uniform(lo, hi, size=s)
    sign = lambda *s: rng.choice([-1.0, 1.0], size=s)
    t = rng.integers(1, 5, size=(B, 5)) * rng.choice([-1, 1], size=(B, 5))
    return {
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
    }


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
    loss = (out["ce"] + 0.5 * out["nll"] + (w[ids] * x[:, 0:3]).sum()
            + (x[:, 1:4] * wm[:, k]).sum() + ((a * wd) % d).sum() + (a % (d * wd)).sum()
            + torch.div(a, d * wd, rounding_mode="floor").sum() + ((s % t).double() * wd).sum())
    loss.backward()
    return ({n: v.detach().numpy() for n, v in out.items()}, loss.item(),
            {n: p.grad.numpy() for n, p in P.items()})


def main():
    dlc, cc, libs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    lib = build(dlc, cc, libs, work)
    rng = np.random.default_rng(14)
    ins = {k: np.ascontiguousarray(v) for k, v in inputs(rng).items()}
    params = {n: rng.uniform(-1, 1, size=s) for n, s in PARAMS.items()}
    params["wd"] = rng.uniform(0.5, 1.5, size=PARAMS["wd"])  # divisors: away from 0

    m = ctypes.c_void_p(lib.ops_create(ctypes.c_uint64(1)))
    n = sum(int(np.prod(s)) for s in PARAMS.values())
    flat = np.ctypeslib.as_array(lib.ops_params(m), shape=(n,))
    flat[:] = np.concatenate([params[k].ravel() for k in PARAMS])
    ptr = lambda v: v.ctypes.data_as(ctypes.c_void_p)
    got = {k: np.zeros(s, dtype=t) for k, (s, t) in OUTS.items()}
    rc = lib.ops_forward(m, B, *[ptr(v) for v in ins.values()], *[ptr(v) for v in got.values()])
    if rc != 0:
        print("ops_forward returned", rc)
        return 1
    grads = np.ctypeslib.as_array(lib.ops_grads(m), shape=(n,))
    grads[:] = 0
    loss = np.zeros((), dtype=np.float64)
    rc = lib.ops_compute_gradients(m, B, *[ptr(v) for v in ins.values()], ptr(loss))
    if rc != 0:
        print("ops_compute_gradients returned", rc)
        return 1

    want, want_loss, want_grads = torch_side(ins, params)
    got["loss"], want["loss"] = loss, np.array(want_loss)
    off = 0
    for name, s in PARAMS.items():
        size = int(np.prod(s))
        got["grad " + name] = grads[off:off + size].reshape(s)
        want["grad " + name] = want_grads[name]
        off += size
    bad = 0
    for k in got:
        g, w = np.asarray(got[k]), np.asarray(want[k])
        if g.shape != w.shape:
            print(f"{k:10s} shape {g.shape}, PyTorch's {w.shape}  FAIL")
            bad += 1
            continue
        if g.dtype == np.int32:
            err = float(np.abs(g.astype(np.int64) - w.astype(np.int64)).max())
            ok = err == 0
        else:
            err = float((np.abs(g - w) / np.maximum(np.abs(w), 1)).max())
            ok = err <= 1e-12
        bad += not ok
        print(f"{k:10s} max difference {err:.3g}{'' if ok else '  FAIL'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
