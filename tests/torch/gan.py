"""The GAN example's two objectives against a PyTorch loop in f64: the
model of examples/gan/gan.dl, as written but with f64 for f32, trains
STEPS steps as train_gan does (gan_train_step_disc on real images and
noise, then gan_train_step_gen on fresh noise), and PyTorch repeats them
from the weights dlc initialized, with the loop its users write
(BCEWithLogitsLoss on D's logits, as d2l's GAN): two Adam
optimizers (lr 2e-4, betas (0.5, 0.999)), the discriminator's on D's
weights only, the generator's on G's only; D's loss on G(z).detach() (the
model's stop_gradient), G's loss through D, whose gradients G's optimizer
ignores (the model's params = [fake]). After each of the 2·STEPS steps
the loss, every weight and both optimizers' moments (read back from a
checkpoint: opt.disc.exp_avg.d1w, ...) must agree within 1e-12 (relative
to the magnitude, at least 1). The moments matter: Adam's update is the
same for a gradient twice too large, its exp_avg is not. The images are
random in [-1, 1], not digits: this checks the arithmetic, not learning.

    python3 gan.py DLC CC "DLRT_LIBS" WORKDIR GAN_DL

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import ctypes
import json
import os
import re
import struct
import sys

import numpy as np
import torch
from torch.nn import functional as F

import replay

bce = F.binary_cross_entropy_with_logits  # dlc's binary_cross_entropy takes logits

B, STEPS, NOISE, DIM = 16, 3, 64, 784
ADAM = {"lr": 2e-4, "betas": (0.5, 0.999)}
# G's layers in order (gan.dl's generator; names from the checkpoint)
GEN = ["fake.h1", "fake.h2", "fake.dense"]
DISC = ["d1w", "d1b", "d2w", "d2b"]


def safetensors(path):
    """A checkpoint's F64 tensors by name."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    out = {}
    for name, t in json.loads(raw[8:8 + n]).items():
        if name != "__metadata__" and t["dtype"] == "F64":
            b, e = t["data_offsets"]
            out[name] = np.frombuffer(raw[8 + n + b:8 + n + e], np.float64).reshape(t["shape"])
    return out


def disc(P, x):
    """D's logits."""
    return F.leaky_relu(x @ P["d1w"] + P["d1b"], 0.2) @ P["d2w"] + P["d2b"]


def gen(P, z):
    h = z
    for k, layer in enumerate(GEN):
        h = h @ P[layer + ".w"] + P[layer + ".b"]
        h = torch.tanh(h) if k == len(GEN) - 1 else F.leaky_relu(h, 0.2)
    return h


def state(P, opts):
    """The weights and, as the checkpoint names them, the moments."""
    out = {k: p.detach().numpy() for k, p in P.items()}
    for obj, opt in opts.items():
        for k, p in P.items():
            for slot in ("exp_avg", "exp_avg_sq"):
                if any(p is q for q in opt.param_groups[0]["params"]):
                    # zeros until the optimizer's first step, as dlc's
                    v = opt.state[p][slot] if p in opt.state else torch.zeros_like(p)
                    out[f"opt.{obj}.{slot}.{k}"] = v.numpy()
    return out


def main():
    dlc, cc, libs, work, gan_dl = sys.argv[1:6]
    os.makedirs(work, exist_ok=True)
    text, n = re.subn(r"\bf32\b", "f64", open(gan_dl).read())
    assert n > 0, gan_dl + " has no f32 types"
    src = os.path.join(work, "gan.dl")
    open(src, "w").write(text)
    lib = replay.build(dlc, cc, libs, work, "gan", src)
    fn = lambda f: getattr(lib, "gan_" + f)  # noqa: E731
    ptr = lambda v: v.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    ckpt = os.path.join(work, "gan.safetensors").encode()

    m = ctypes.c_void_p(fn("create")(ctypes.c_uint64(1)))
    if fn("save")(m, ckpt):
        print("gan_save failed")
        return 1
    w0 = {k: v for k, v in safetensors(ckpt).items() if not k.startswith("opt.")}
    assert sorted(w0) == sorted(DISC + [g + s for g in GEN for s in (".w", ".b")]), sorted(w0)
    P = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in w0.items()}
    opt_d = torch.optim.Adam([P[k] for k in DISC], **ADAM)
    opt_g = torch.optim.Adam([P[g + s] for g in GEN for s in (".w", ".b")], **ADAM)
    opts = {"disc": opt_d, "gen": opt_g}

    rng = np.random.default_rng(14)
    bad = 0
    for t in range(STEPS):
        real = rng.uniform(-1, 1, (B, DIM))
        z1, z2 = rng.standard_normal((B, NOISE)), rng.standard_normal((B, NOISE))
        for obj, ins in (("disc", (real, z1)), ("gen", (z2,))):
            loss = np.zeros(())
            rc = fn("train_step_" + obj)(m, B, *[ptr(v) for v in ins], ptr(loss))
            if rc or fn("save")(m, ckpt):
                print(f"step {t} {obj}: gan_train_step_{obj} returned {rc}, or gan_save failed")
                return 1
            got = safetensors(ckpt)
            opt = opts[obj]
            opt.zero_grad()
            T = [torch.tensor(v) for v in ins]
            if obj == "disc":
                d_real, d_fake = disc(P, T[0]), disc(P, gen(P, T[1]).detach())
                want = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            else:
                d_gen = disc(P, gen(P, T[0]))
                want = bce(d_gen, torch.ones_like(d_gen))
            want.backward()
            opt.step()
            print(f"step {t} {obj}:")
            bad += replay.compare(dict(got, loss=loss), dict(state(P, opts), loss=want.item()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
