"""Half-precision storage against PyTorch (half.dl): the model compiled
with --weights=f16 and with --weights=bf16 loads an f32 checkpoint, as
PyTorch's load_state_dict into a model.half() (or .bfloat16()) rounds
it; the stored weights (NAME_params' bit patterns) must be PyTorch's
exactly, rounding ties to even, overflowing to infinity and rounding
into and out of the subnormals; the casts to f16 and bf16 likewise,
bit for bit; the forward pass, f32 arithmetic on the rounded weights and
an f16 input, within 1e-6 of PyTorch's f32 result.

    python3 half.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import ctypes
import json
import os
import struct
import sys

import numpy as np
import torch

import replay

B = 4
TYPES = {"f16": torch.float16, "bf16": torch.bfloat16}


def special():
    """Weights that test the rounding: ties either way, the largest
    values, overflow, subnormals, signed zeros, and random ones."""
    v = [1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-11), 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-9,
         65504, 65519.99, 65520, -65520, 2**-24, 2**-25, 3 * 2**-26, 2**-26, 1e-8, 6e-5, -0.0,
         0.0, 3.3e38, 3.4028234e38, 1e-39, -1e-40, 2**-133, 2**-134]
    v += list(np.random.default_rng(14).standard_normal(40 - len(v)) * 10)
    return np.array(v, dtype=np.float32)


def write_safetensors(path, tensors):
    head, data = {}, b""
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        head[name] = {"dtype": "F32", "shape": list(a.shape),
                      "data_offsets": [len(data), len(data) + len(b)]}
        data += b
    h = json.dumps(head).encode()
    h += b" " * (-len(h) % 8)
    open(path, "wb").write(struct.pack("<Q", len(h)) + h + data)


def bits(t):
    return t.view(torch.int16).numpy().view(np.uint16)


def main():
    dlc, cc, libs, work = sys.argv[1:5]
    rng = np.random.default_rng(14)
    weights = {"w": rng.standard_normal((8, 6)).astype(np.float32) * 0.5,
               "b": rng.standard_normal(6).astype(np.float32) * 0.1, "e": special()}
    x = rng.uniform(-70, 70, (B, 8)).astype(np.float32)
    x[0, :3] = [65.52, -65.52, 0.00005]  # x·1000 overflows f16; subnormal
    xh = torch.tensor(rng.standard_normal((B, 8)), dtype=torch.float16)
    ckpt = os.path.join(work, "weights.safetensors")
    os.makedirs(work, exist_ok=True)
    write_safetensors(ckpt, weights)
    ptr = lambda v: v.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    bad = 0
    for kind, dtype in TYPES.items():
        sub = os.path.join(work, kind)
        os.makedirs(sub, exist_ok=True)
        lib = replay.build(dlc, cc, libs, sub, "half", options=["--weights=" + kind])
        lib.half_params.restype = ctypes.POINTER(ctypes.c_uint16)
        m = ctypes.c_void_p(lib.half_create(ctypes.c_uint64(1)))
        rc = lib.half_load(m, ckpt.encode())
        if rc:
            print(f"{kind}: half_load returned {rc}")
            return 1
        n = sum(a.size for a in weights.values())
        stored = np.ctypeslib.as_array(lib.half_params(m), shape=(n,)).copy()
        out = {"y": np.zeros((B, 6), np.float32), "y16": np.zeros((B, 6), np.uint16),
               "yb16": np.zeros((B, 6), np.uint16), "ew": np.zeros(40, np.float32),
               "xc": np.zeros((B, 8), np.uint16), "xcb": np.zeros((B, 8), np.uint16)}
        xh_bits = bits(xh).copy()
        rc = lib.half_forward(m, B, ptr(x), ptr(xh_bits), *[ptr(v) for v in out.values()])
        if rc:
            print(f"{kind}: half_forward returned {rc}")
            return 1

        W = {k: torch.tensor(a).to(dtype) for k, a in weights.items()}
        F = {k: t.float() for k, t in W.items()}
        X = torch.tensor(x)
        y = torch.relu(X @ F["w"] + F["b"]) + xh.float()[:, 0:6]
        got_y = torch.tensor(out["y"])
        want = {
            "params": np.concatenate([bits(t).ravel() for t in W.values()]),
            # the casts of dlc's own y: the rounding, not the sums' order
            "y16": bits(got_y.to(torch.float16)), "yb16": bits(got_y.to(torch.bfloat16)),
            "ew": F["e"].numpy(),
            "xc": bits((X * 1000).to(torch.float16)), "xcb": bits((X * 1e36).to(torch.bfloat16)),
        }
        got = {"params": stored, **{k: out[k] for k in ("y16", "yb16", "ew", "xc", "xcb")}}
        print(f"--weights={kind}:")
        for k, w in want.items():
            same = np.array_equal(got[k], w) if k != "ew" else np.array_equal(
                got[k], w, equal_nan=True)
            diff = int(np.sum(got[k] != w))
            bad += not same
            print(f"{k:8s} {'bit for bit' if same else f'{diff} differ  FAIL'}")
        bad += replay.compare({"y": out["y"]}, {"y": y.numpy()}, tol=1e-6)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
