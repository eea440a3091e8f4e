"""The optimizers' options and the schedules against torch.optim and
torch.optim.lr_scheduler in f64 (optim.dl): every objective of the model
trains its own weight from the same start on the same batches for STEPS
steps, in dlc (NAME_train_step_OBJ) and in a PyTorch loop with the
optimizer and scheduler that docs/TRAINING.md names; before each step the
rate (NAME_learning_rate_OBJ against param_groups[0]["lr"]), and after it
the loss and the weight must agree within 1e-12 (relative to the
magnitude, at least 1). Covered: sgd with dampening (also = momentum, the
EMA form), nesterov, clip_value (clip_grad_value_), clip_norm
(clip_grad_norm_), l1 (a loss term λ·Σ|w| in PyTorch) with sgd, with
adamw and with clip_value, rmsprop with momentum, adagrad; the schedules
multistep (a milestone twice), linear_warmup (LinearLR), one_cycle
(OneCycleLR, two and three phases, cos and linear), cyclic triangular2
and exp_range (CyclicLR), cosine_restarts (CosineAnnealingWarmRestarts,
T_mult 2 and 1), inverse_sqrt (LambdaLR), reduce_on_plateau
(ReduceLROnPlateau, "max" and "min" with an absolute threshold, stepped
with the loss NAME_evaluate_OBJ gives on a held-out batch after each
step, the same value for both), step, exponential, cosine
(CosineAnnealingLR) and warmup_cosine (SequentialLR of LinearLR and
CosineAnnealingLR).

Where dlc's definition differs on purpose (docs/TRAINING.md), PyTorch's
loop is adjusted as documented, not skipped: past `total` the scheduler of
cosine, warmup_cosine and one_cycle is no longer stepped (dlc stays at the last rate;
PyTorch's closed form rises again, OneCycleLR raises); OneCycleLR and
CyclicLR get cycle_momentum=False (dlc's schedules move the rate only);
with l1 and clip_value together, the L1 term's gradient λ·sign(w) is added
after clip_grad_value_ (dlc adds it where weight decay goes, after
clipping; a loss term in PyTorch would be clipped with the rest).

    python3 optim.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import ctypes
import math
import os
import sys
import warnings

import numpy as np
import torch

import replay

B, STEPS = 8, 12
O = torch.optim
S = torch.optim.lr_scheduler

# each objective of optim.dl in declaration order: (name, the optimizer
# from a parameter list, the scheduler from an optimizer or None, options)
# options: l1 = λ (a loss term), clip_value, clip_norm, l1_after_clip (the
# term's gradient added after clipping), plateau (stepped with the metric),
# stop = steps after which the scheduler is no longer stepped
OBJECTIVES = [
    ("damp", lambda p: O.SGD(p, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.01), None, {}),
    ("ema", lambda p: O.SGD(p, lr=0.2, momentum=0.9, dampening=0.9), None, {}),
    ("nest", lambda p: O.SGD(p, lr=0.1, momentum=0.8, nesterov=True), None, {}),
    ("clipv", lambda p: O.SGD(p, lr=0.5, momentum=0.5), None, {"clip_value": 0.05}),
    ("clipn", lambda p: O.Adam(p, lr=0.05), None, {"clip_norm": 0.2}),
    ("l1sgd", lambda p: O.SGD(p, lr=0.3), None, {"l1": 0.02}),
    ("l1adamw", lambda p: O.AdamW(p, lr=0.05, weight_decay=0.1), None, {"l1": 0.01}),
    ("l1clip", lambda p: O.SGD(p, lr=0.3, momentum=0.9), None,
     {"l1": 0.05, "clip_value": 0.02, "l1_after_clip": True}),
    ("rms", lambda p: O.RMSprop(p, lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01), None, {}),
    ("adag", lambda p: O.Adagrad(p, lr=0.1, weight_decay=0.01), None, {}),
    ("mstep", lambda p: O.SGD(p, lr=0.1, momentum=0.9),
     lambda o: S.MultiStepLR(o, milestones=[2, 5, 5], gamma=0.5), {}),
    ("lwarm", lambda p: O.Adam(p, lr=0.05),
     lambda o: S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=5), {}),
    ("ocyc", lambda p: O.SGD(p, lr=0.2, momentum=0.9),
     lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=8, pct_start=0.4, cycle_momentum=False),
     {"stop": 7}),
    ("ocyc3", lambda p: O.Adam(p, lr=0.1),
     lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=0.25,
                            anneal_strategy="linear", div_factor=10, final_div_factor=100,
                            three_phase=True, cycle_momentum=False), {"stop": 9}),
    ("tri2", lambda p: O.SGD(p, lr=0.1, momentum=0.9),
     lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.2, step_size_up=2, mode="triangular2",
                          cycle_momentum=False), {}),
    ("expr", lambda p: O.SGD(p, lr=0.1),
     lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=3, mode="exp_range",
                          gamma=0.9, cycle_momentum=False), {}),
    ("restart", lambda p: O.SGD(p, lr=0.1, momentum=0.5),
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=2, T_mult=2, eta_min=0.01), {}),
    ("restart1", lambda p: O.Adam(p, lr=0.05),
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, eta_min=0.001), {}),
    ("isqrt", lambda p: O.Adam(p, lr=1, betas=(0.9, 0.98), eps=1e-9),
     lambda o: S.LambdaLR(o, lambda t: 16 ** -0.5 * min((t + 1) ** -0.5, (t + 1) * 4 ** -1.5)),
     {}),
    ("plmax", lambda p: O.SGD(p, lr=0.1),
     lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=1, cooldown=1,
                                   min_lr=0.02), {"plateau": True}),
    ("plabs", lambda p: O.Adam(p, lr=0.05),
     lambda o: S.ReduceLROnPlateau(o, factor=0.3, patience=0, threshold=0.05,
                                   threshold_mode="abs"), {"plateau": True}),
    ("stepd", lambda p: O.SGD(p, lr=0.1), lambda o: S.StepLR(o, 3, gamma=0.5), {}),
    ("expo", lambda p: O.RMSprop(p, lr=0.01), lambda o: S.ExponentialLR(o, 0.8), {}),
    ("cos", lambda p: O.Adam(p, lr=0.05),
     lambda o: S.CosineAnnealingLR(o, T_max=6, eta_min=0.005), {"stop": 6}),
    ("wcos", lambda p: O.SGD(p, lr=0.1),
     lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=1 / 3, total_iters=2),
                                  S.CosineAnnealingLR(o, T_max=6, eta_min=0.01)],
                              milestones=[3]), {"stop": 9}),
]


def fit(w, x, y):
    return ((torch.tanh(x @ w) - y) ** 2).mean()


def torch_run(w0, batches, held, metrics, make_opt, make_sched, o):
    """PyTorch's rates, losses and weights of each step from w0; the
    plateau scheduler is stepped with the given metrics (dlc's)."""
    w = torch.tensor(w0, requires_grad=True)
    opt = make_opt([w])
    sched = make_sched(opt) if make_sched else None
    rates, losses, weights, evals = [], [], [], []
    for t, (x, y) in enumerate(batches):
        rates.append(opt.param_groups[0]["lr"])
        opt.zero_grad()
        loss = fit(w, x, y)
        losses.append(loss.item())
        if "l1" in o and not o.get("l1_after_clip"):
            loss = loss + o["l1"] * w.abs().sum()
        loss.backward()
        if "clip_value" in o:
            torch.nn.utils.clip_grad_value_([w], o["clip_value"])
        if "clip_norm" in o:
            torch.nn.utils.clip_grad_norm_([w], o["clip_norm"])
        if o.get("l1_after_clip"):
            w.grad += o["l1"] * torch.sign(w.detach())
        opt.step()
        weights.append(w.detach().numpy().copy())
        if o.get("plateau"):
            with torch.no_grad():
                evals.append(fit(w, *held).item())
            sched.step(metrics[t])
        elif sched and t < o.get("stop", math.inf):
            sched.step()
    return rates, losses, weights, evals


def main():
    # SequentialLR steps its second scheduler with an epoch, which warns
    warnings.filterwarnings("ignore", "The epoch parameter", UserWarning)
    dlc, cc, libs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    lib = replay.build(dlc, cc, libs, work, "optim")
    fn = lambda f: getattr(lib, "optim_" + f)  # noqa: E731
    rng = np.random.default_rng(14)
    batches = [(rng.uniform(-1, 1, (B, 4)), rng.uniform(-0.9, 0.9, (B, 3))) for _ in range(STEPS)]
    held = (rng.uniform(-1, 1, (B, 4)), rng.uniform(-0.9, 0.9, (B, 3)))
    w0 = [rng.uniform(-1, 1, (4, 3)) for _ in OBJECTIVES]

    m = ctypes.c_void_p(fn("create")(ctypes.c_uint64(1)))
    params = np.ctypeslib.as_array(fn("params")(m), shape=(12 * len(OBJECTIVES),))
    params[:] = np.concatenate([w.ravel() for w in w0])
    ptr = lambda v: v.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    bad = 0
    for k, (name, make_opt, make_sched, o) in enumerate(OBJECTIVES):
        fn("learning_rate_" + name).restype = ctypes.c_double
        rates, losses, weights, metrics = [], [], [], []
        for x, y in batches:
            rates.append(fn("learning_rate_" + name)(m))
            loss = np.zeros(())
            rc = fn("train_step_" + name)(m, B, ptr(x), ptr(y), ptr(loss))
            if rc:
                print(f"optim_train_step_{name} returned {rc}")
                return 1
            losses.append(float(loss))
            weights.append(params[12 * k:12 * k + 12].reshape(4, 3).copy())
            if o.get("plateau"):
                v = np.zeros(())
                fn("evaluate_" + name)(m, B, ptr(held[0]), ptr(held[1]), ptr(v))
                metrics.append(float(v))
                fn("report_metric_" + name)(m, ctypes.c_double(float(v)))
        T = [(torch.tensor(x), torch.tensor(y)) for x, y in batches]
        want = torch_run(w0[k], T, tuple(map(torch.tensor, held)), metrics, make_opt, make_sched, o)
        got = (rates, losses, weights, metrics)
        errs = []
        for what, g, w in zip(("rate", "loss", "weights", "evaluate"), got, want):
            g, w = np.array(g), np.array(w)
            errs.append(float((np.abs(g - w) / np.maximum(np.abs(w), 1)).max(initial=0)))
        ok = max(errs) <= 1e-12
        bad += not ok
        rs = " ".join(f"{r:.4g}" for r in rates)
        print(f"{name:9s} rate {errs[0]:.2g} loss {errs[1]:.2g} weights {errs[2]:.2g}"
              f"{f' evaluate {errs[3]:.2g}' if metrics else ''}  rates {rs}"
              f"{'' if ok else '  FAIL'}")
        if not ok:
            print("  PyTorch's rates " + " ".join(f"{r:.4g}" for r in want[0]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
