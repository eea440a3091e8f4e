"""The initializers against torch.nn.init (init.dl): dlc's draw of each
parameter (seed 1) against PyTorch's draw for the same tensor in its
layout (a dense weight transposed, so that the fans agree; seed 14),
by distribution, since the generators differ: the two samples' standard
deviations within 2% (a wrong gain or fan is off by 10% or more), their
means within 5 standard errors, the two-sample Kolmogorov-Smirnov
distance below 3.5·√(2/n) (the shape: uniform, normal or truncated), and
the support: uniform draws inside PyTorch's bound (and reaching 99% of
it), truncated ones inside [a, b]. Covered: kaiming_uniform and
kaiming_normal with their modes and nonlinearities (leaky_relu with a,
relu, tanh, selu, sigmoid; dense and convolution weights), xavier_uniform
and xavier_normal with a gain, truncated_normal (centred, off-centre,
far in a tail), uniform and normal.

    python3 init.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import ctypes
import math
import os
import sys
import warnings

import numpy as np
import torch
from torch.nn import init as I

import replay

# init.dl's parameters in declaration order: dlc's shape, PyTorch's
# initializer of a tensor in PyTorch's layout, and whether it is bounded
PARAMS = [
    ("ku", (512, 256), lambda t: I.kaiming_uniform_(t), "uniform"),
    ("ku_out", (512, 256), lambda t: I.kaiming_uniform_(t, a=0.2, mode="fan_out"), "uniform"),
    ("ku_conv", (32, 16, 5, 5),
     lambda t: I.kaiming_uniform_(t, mode="fan_out", nonlinearity="tanh"), "uniform"),
    ("ku_gan", (256, 512), lambda t: I.kaiming_uniform_(t, a=2.236), "uniform"),
    ("kn", (512, 256), lambda t: I.kaiming_normal_(t), None),
    ("kn_selu", (512, 256), lambda t: I.kaiming_normal_(t, nonlinearity="selu"), None),
    ("kn_relu", (256, 512), lambda t: I.kaiming_normal_(t, nonlinearity="relu", mode="fan_out"),
     None),
    ("kn_conv", (64, 32, 5, 5), lambda t: I.kaiming_normal_(t, a=0.1, mode="fan_out"), None),
    ("kn_sig", (512, 256), lambda t: I.kaiming_normal_(t, nonlinearity="sigmoid"), None),
    ("xu", (512, 256), lambda t: I.xavier_uniform_(t, gain=1.5), "uniform"),
    ("xn", (256, 512), lambda t: I.xavier_normal_(t, gain=2), None),
    ("tn", (512, 256), lambda t: I.trunc_normal_(t, std=0.02, a=-0.04, b=0.04), (-0.04, 0.04)),
    ("tn_off", (512, 256), lambda t: I.trunc_normal_(t, mean=1, std=0.5, a=1.2, b=3), (1.2, 3)),
    ("tn_tail", (512, 256), lambda t: I.trunc_normal_(t, 0, 1, 3, 5), (3, 5)),
    ("un", (512, 256), lambda t: I.uniform_(t, -0.3, 0.7), "uniform"),
    ("no", (512, 256), lambda t: I.normal_(t, 0.5, 2), None),
]


def ks(a, b):
    """The two-sample Kolmogorov-Smirnov distance."""
    a, b = np.sort(a), np.sort(b)
    x = np.concatenate([a, b])
    return float(np.abs(np.searchsorted(a, x, "right") / len(a)
                        - np.searchsorted(b, x, "right") / len(b)).max())


def main():
    # trunc_normal_ warns that a bound 3 std out may be drawn badly; in f64
    # its draw's mean is 3.282, the truncated normal's 3.283, as dlc's
    warnings.filterwarnings("ignore", "mean is more than 2 std", UserWarning)
    dlc, cc, libs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    lib = replay.build(dlc, cc, libs, work, "init")
    m = ctypes.c_void_p(lib.init_create(ctypes.c_uint64(1)))
    total = sum(math.prod(s) for _, s, _, _ in PARAMS)
    flat = np.ctypeslib.as_array(lib.init_params(m), shape=(total,)).copy()
    torch.manual_seed(14)
    bad, off = 0, 0
    for name, shape, init, support in PARAMS:
        n = math.prod(shape)
        got, off = flat[off:off + n], off + n
        layout = shape[::-1] if len(shape) == 2 else shape
        want = init(torch.empty(layout, dtype=torch.float64)).numpy().ravel()
        sd_ratio = got.std() / want.std()
        mean_z = abs(got.mean() - want.mean()) / (want.std() * math.sqrt(2 / n))
        d, d_max = ks(got, want), 3.5 * math.sqrt(2 / n)
        if support == "uniform":
            bound = np.abs(want).max()
            inside = np.abs(got).max() <= bound * (1 + 1e-3) and np.abs(got).max() >= 0.99 * bound
        elif support:
            inside = got.min() >= support[0] and got.max() <= support[1]
        else:
            inside = True
        ok = abs(sd_ratio - 1) <= 0.02 and mean_z <= 5 and d <= d_max and inside
        bad += not ok
        print(f"{name:8s} std {got.std():.5g} (PyTorch {want.std():.5g}) mean {got.mean():+.4g} "
              f"({want.mean():+.4g}) KS {d:.4f} (< {d_max:.4f}) range [{got.min():.4g}, "
              f"{got.max():.4g}] ([{want.min():.4g}, {want.max():.4g}]){'' if ok else '  FAIL'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
