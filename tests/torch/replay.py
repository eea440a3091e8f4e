"""The compiled side of the PyTorch replays (ops.py, nn.py, rnn.py): builds
a model into a shared library with libdlrt, sets its weights, runs its
forward function and compute_gradients on given inputs, and compares
every output, the loss and each weight's gradient with PyTorch's; main
is every replay's driver."""
import ctypes
import os
import subprocess
import sys

import numpy as np


def build(dlc, cc, libs, work, name, src=None, options=()):
    """dlc compiles src (HERE/NAME.dl by default) with options; the
    library of its entry points."""
    src = src or os.path.join(os.path.dirname(os.path.abspath(__file__)), name + ".dl")
    obj, so = os.path.join(work, name + ".o"), os.path.join(work, name + ".so")
    subprocess.run([dlc, src, "-o", obj, *options], check=True)
    subprocess.run([cc, "-shared", "-o", so, obj, "-Wl,--whole-archive", libs.split()[0],
                    "-Wl,--no-whole-archive"] + libs.split()[1:], check=True)
    lib = ctypes.CDLL(so)
    getattr(lib, name + "_create").restype = ctypes.c_void_p
    getattr(lib, name + "_params").restype = ctypes.POINTER(ctypes.c_double)
    if hasattr(lib, name + "_grads"):  # not in a model without training
        getattr(lib, name + "_grads").restype = ctypes.POINTER(ctypes.c_double)
    return lib


def run(lib, name, params, ins, want):
    """dlc's outputs (shaped and typed as want's, which lists them in the
    model's order), loss and gradients ("grad NAME") from the f64 weights
    params (declaration order) and inputs ins (declaration order); None
    if an entry point fails."""
    fn = lambda f: getattr(lib, name + "_" + f)  # noqa: E731
    m = ctypes.c_void_p(fn("create")(ctypes.c_uint64(1)))
    n = sum(p.size for p in params.values())
    np.ctypeslib.as_array(fn("params")(m), shape=(n,))[:] = \
        np.concatenate([p.ravel() for p in params.values()])
    ptr = lambda v: v.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    ins = [np.ascontiguousarray(v) for v in ins.values()]
    got = {k: np.zeros(np.shape(w), dtype=np.asarray(w).dtype) for k, w in want.items()
           if k != "loss" and not k.startswith("grad ")}
    rc = fn("forward")(m, len(ins[0]), *[ptr(v) for v in ins], *[ptr(v) for v in got.values()])
    if rc != 0:
        print(name + "_forward returned", rc)
        return None
    grads = np.ctypeslib.as_array(fn("grads")(m), shape=(n,))
    grads[:] = 0
    loss = np.zeros((), dtype=np.float64)
    rc = fn("compute_gradients")(m, len(ins[0]), *[ptr(v) for v in ins], ptr(loss))
    if rc != 0:
        print(name + "_compute_gradients returned", rc)
        return None
    got["loss"] = loss
    off = 0
    for k, p in params.items():
        got["grad " + k] = grads[off:off + p.size].reshape(p.shape).copy()
        off += p.size
    return got


def compare(got, want, tol=1e-12):
    """Prints each result's largest difference (relative to the magnitude,
    at least 1; i32 exactly; NaN only where PyTorch's is); the number that
    differ by more than tol."""
    bad = 0
    for k, w in want.items():
        g, w = np.asarray(got[k]), np.asarray(w)
        if g.shape != w.shape:
            print(f"{k:12s} shape {g.shape}, PyTorch's {w.shape}  FAIL")
            bad += 1
            continue
        if g.dtype == np.int32:
            err = float(np.abs(g.astype(np.int64) - w.astype(np.int64)).max(initial=0))
            ok = err == 0
        else:
            # NaN where PyTorch has NaN agrees; NaN elsewhere, or a number
            # where PyTorch has NaN, does not
            d = np.abs(g - w) / np.maximum(np.abs(w), 1)
            d = np.where(np.isnan(g) & np.isnan(w), 0, np.where(np.isnan(d), np.inf, d))
            err = float(d.max(initial=0))
            ok = err <= tol
        bad += not ok
        print(f"{k:12s} max difference {err:.3g}{'' if ok else '  FAIL'}")
    return bad


def results(out, loss, grads):
    """What run and compare take from PyTorch's side: its outputs out (by
    name, in the model's order), the loss and each weight's gradient
    grads (by name, declaration order) as arrays."""
    want = {k: v.detach().numpy() for k, v in out.items()}
    want["loss"] = np.array(loss.item())
    want.update({"grad " + k: g for k, g in grads.items()})
    return want


def main(name, data, torch_side):
    """python3 NAME.py DLC CC "DLRT_LIBS" WORKDIR: compiles NAME.dl, draws
    the inputs and weights with data(rng) (seed 14), and compares dlc's
    results with torch_side(ins, params)'s. Exit status 0 when all agree."""
    dlc, cc, libs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    lib = build(dlc, cc, libs, work, name)
    ins, params = data(np.random.default_rng(14))
    want = torch_side(ins, params)
    got = run(lib, name, params, ins, want)
    return 1 if got is None or compare(got, want) else 0
