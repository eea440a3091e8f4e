"""Issue 14's layers against PyTorch in f64 (nn.dl): the model's forward
outputs, its loss and every weight's gradient against torch.nn.functional
and torch.autograd from the same inputs and weights (replay.py), within
1e-12 relative to the magnitude: convolutions with a bias, "same" and
asymmetric padding (F.pad, then F.conv2d), dilation and strides; pooling
with ceil_mode and count_include_pad = False, adaptive pooling; upsample
nearest and bilinear (F.interpolate); conv3d and the 3-d pools,
conv_transpose1d and the 1-d pools; kl_div, multi_margin_loss and
cross_entropy with soft targets; attention with a key padding mask,
causal, and both (against the formula PyTorch users write: torch 1.13
has no scaled_dot_product_attention; no query has every key masked,
where dlc gives 0 and the formula NaN); kl_div with log targets and its
reductions, multi_margin_loss's defaults, binary_cross_entropy (dlc's
takes logits: F.binary_cross_entropy_with_logits), huber_loss,
smooth_l1_loss (beta 0 too), l1_loss and mse, with their reductions.

    python3 nn.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import sys
import warnings

import numpy as np
import torch
from torch.nn import functional as F

import replay

B = 3
# the parameters in declaration order: NAME_params(m) is them, flat
PARAMS = {"w1": (3, 2, 3, 3), "b1": (3,), "w2": (3, 2, 2, 3), "w3": (2, 2, 2, 3, 3),
          "w4": (2, 3, 3), "b4": (3,), "wl": (12, 4), "wq": (5, 4), "wk": (6, 4), "wv": (6, 4)}


def attention(q, k, v, mask=None, causal=False):
    """What PyTorch users write: softmax(q kᵀ / √d) v, masked with -inf
    where the mask is 0 and above the diagonal when causal."""
    s = q @ k.transpose(-1, -2) / np.sqrt(q.shape[-1])
    if mask is not None:
        s = s.masked_fill(mask == 0, float("-inf"))
    if causal:
        t = s.shape[-1]
        s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, -1) @ v


def torch_side(ins, params):
    T = {k: torch.tensor(v) for k, v in ins.items()}
    P = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    x, v, s, q = T["x"], T["v"], T["s"], T["q"]
    y = T["y"].long()
    # "same" with dilation 2 and a 3x3 kernel: 2 on each side
    c1 = F.conv2d(x, P["w1"], P["b1"], padding="same", dilation=2)
    # padding [0, 1, 2, 0]: rows 0 before, 1 after; columns 2 before, 0 after
    c2 = F.conv2d(F.pad(x, (2, 0, 0, 1)), P["w2"], stride=(1, 2))
    out = {"same": c1, "asym": c2}
    out["mx"] = F.max_pool2d(c1, 3, stride=2, ceil_mode=True)
    out["av"] = F.avg_pool2d(c1, 3, stride=2, padding=1, ceil_mode=True,
                             count_include_pad=False)
    out["av_pad"] = F.avg_pool2d(c2, 2, padding=1)
    out["amax"] = F.adaptive_max_pool2d(c1, (3, 2))
    out["aavg"] = F.adaptive_avg_pool2d(c2, (5, 3))
    out["near"] = F.interpolate(c2, scale_factor=2, mode="nearest")
    out["near_size"] = F.interpolate(c2, size=(10, 9), mode="nearest")
    out["bil"] = F.interpolate(c2, size=(9, 7), mode="bilinear", align_corners=False)
    out["bil_ac"] = F.interpolate(c2, scale_factor=2, mode="bilinear", align_corners=True)
    c3 = F.conv3d(v, P["w3"], padding=1)
    out["mx3"] = F.max_pool3d(c3, 2, ceil_mode=True)
    out["av3"] = F.avg_pool3d(c3, 3, stride=2, padding=1, count_include_pad=False)
    c4 = F.conv_transpose1d(s, P["w4"], P["b4"], stride=2, padding=1)
    out["ct"] = c4
    out["mx1"] = F.max_pool1d(c4, 3, stride=2, padding=1, ceil_mode=True)
    out["av1"] = F.avg_pool1d(c4, 4, stride=3, count_include_pad=False)
    wl = P["wl"]
    scores = c1.mean((2, 3)) @ wl[0:3] + c4[:, :, 0:4].reshape(B, 12) @ wl
    out["kl"] = F.kl_div(F.log_softmax(scores, -1), F.softmax(q, -1), reduction="batchmean")
    out["mm"] = F.multi_margin_loss(scores, y, p=2, margin=0.5)
    out["soft"] = F.cross_entropy(scores, F.softmax(q, -1))
    lq, tb, tr = F.log_softmax(q, -1), T["tb"], T["tr"]
    out["kl_log"] = F.kl_div(F.log_softmax(scores, -1), lq, log_target=True)
    out["kl_sum"] = F.kl_div(F.log_softmax(scores, -1), F.softmax(q, -1), reduction="sum")
    out["kl_none"] = F.kl_div(F.log_softmax(scores, -1), lq, reduction="none", log_target=True)
    out["mm1"] = F.multi_margin_loss(scores, y)
    out["mm_none"] = F.multi_margin_loss(scores, y, reduction="none")
    bce = F.binary_cross_entropy_with_logits  # dlc's binary_cross_entropy takes logits
    out["bce"] = bce(scores, tb)
    out["bce_sum"] = bce(scores, tb, reduction="sum")
    out["bce_none"] = bce(3 * scores, tb, reduction="none")
    out["hub"] = F.huber_loss(scores, tr, delta=0.5)
    out["hub_none"] = F.huber_loss(scores, tr, delta=0.3, reduction="none")
    out["sl1"] = F.smooth_l1_loss(scores, tr, beta=0.4)
    out["sl1_0"] = F.smooth_l1_loss(scores, tr, beta=0, reduction="sum")
    out["l1"] = F.l1_loss(scores, tr)
    out["l1_none"] = F.l1_loss(scores, tr, reduction="none")
    out["ms"] = F.mse_loss(scores, tr, reduction="sum")
    aq, ak, av = T["qa"] * P["wq"], T["kv"] * P["wk"], T["kv"] * P["wv"]
    out["att_mask"] = attention(aq, ak, av, mask=T["m"])
    out["att_causal"] = attention(ak, ak, av, causal=True)
    out["att_both"] = attention(ak, ak, av, mask=T["m"], causal=True)
    sq = lambda t: (t * t).sum()  # noqa: E731
    loss = (sq(out["att_mask"]) + sq(out["att_causal"]) + out["att_both"].sum()
            + sq(c1) * 0.1 + sq(c2) * 0.1
            + sum(sq(out[k]) for k in ("mx", "av", "av_pad", "amax", "aavg", "near",
                                         "near_size", "bil", "bil_ac", "mx3", "av3", "mx1",
                                         "av1"))
            + out["kl"] + out["mm"] + out["soft"]
            + sum(out[k] if out[k].dim() == 0 else sq(out[k])
                  for k in ("kl_log", "kl_sum", "kl_none", "mm1", "mm_none", "bce", "bce_sum",
                            "bce_none", "hub", "hub_none", "sl1", "sl1_0", "l1", "l1_none",
                            "ms")))
    loss.backward()
    return replay.results(out, loss, {k: p.grad.numpy() for k, p in P.items()})


def data(rng):
    u = lambda *s: rng.uniform(-1, 1, size=s)  # noqa: E731
    ins = {"x": u(B, 2, 7, 7), "v": u(B, 2, 4, 5, 5), "s": u(B, 2, 9),
           "y": np.array([3, 0, 2], dtype=np.int32), "q": u(B, 4),
           "qa": u(B, 2, 5, 4), "kv": u(B, 2, 6, 4),
           # key padding: key 0 always seen (every query sees one key)
           "m": np.array([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 0]],
                         dtype=np.float64).reshape(B, 1, 1, 6),
           # binary targets in [0, 1], regression targets around the scores
           "tb": rng.uniform(0, 1, (B, 4)), "tr": u(B, 4)}
    return ins, {n: rng.uniform(-0.5, 0.5, size=s) for n, s in PARAMS.items()}


if __name__ == "__main__":
    # kl_div's "mean" is PyTorch's current one, which it warns will change
    warnings.filterwarnings("ignore", "reduction: 'mean'", UserWarning)
    sys.exit(replay.main("nn", data, torch_side))
