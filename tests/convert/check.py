"""check.py — the Python side of the converter tests (tests/convert/run.sh):

    check.py same A B                 the parameters and states of dlc checkpoint A
                                      are in B, bit for bit (names, dtypes, shapes);
                                      B has no others (optimizer state aside)
    check.py randomize IN OUT SEED    IN's tensors (a state_dict) with new random
                                      values: what PyTorch, not dlc, trained
    check.py edit IN OUT OP NAME      IN with tensor NAME removed (drop),
                                      transposed (transpose), in F64 (f64), or
                                      with NAME [3] added (add)
    check.py has IN NAME DTYPE SHAPE  IN holds NAME as DTYPE [SHAPE] ("2,3")
    check.py reference MODEL SD FWD   the forward pass of MODEL computed in numpy
                                      in f64 from the state_dict SD with
                                      torch.nn's formulas, against dlc's
                                      outputs in FWD (the driver's forward file)
    check.py torch MODEL SD FWD       the same through torch.nn modules loaded
                                      with SD (load_state_dict, strict); exit
                                      77 (skipped) without torch

MODEL: mnist_mlp, lenet, charlstm, gpt, resnet, seq. The torch.nn modules
equivalent to them, with the module names dlc-torch's inferred map gives
(seq's: seq.map), are in torch_models() below; the numpy functions compute
the same formulas. Uses tools/dlc-torch's reader and writer.
"""
import importlib.machinery
import importlib.util
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
_path = os.path.join(HERE, "..", "..", "tools", "dlc-torch")
_loader = importlib.machinery.SourceFileLoader("dlc_torch", _path)
_spec = importlib.util.spec_from_loader("dlc_torch", _loader)
dt = importlib.util.module_from_spec(_spec)
_loader.exec_module(dt)


def fail(msg):
    print("check.py: " + msg, file=sys.stderr)
    sys.exit(1)


def same(a_path, b_path):
    a, _ = dt.read_safetensors(a_path)
    b, _ = dt.read_safetensors(b_path)
    a = {k: v for k, v in a.items() if not k.startswith("opt.")}
    b = {k: v for k, v in b.items() if not k.startswith("opt.")}
    if set(a) != set(b):
        fail("%s and %s hold different tensors: %s" % (a_path, b_path, sorted(set(a) ^ set(b))))
    for k in a:
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape or a[k].tobytes() != b[k].tobytes():
            fail("tensor '%s' differs between %s and %s" % (k, a_path, b_path))


def randomize(src, out, seed):
    """New values of torch.nn's scale, so that the outputs do not saturate:
    weights U(-2/sqrt(fan_in), +), norms' scales and variances U(0.5, 1.5),
    the rest U(-0.1, 0.1)."""
    rng = np.random.default_rng(seed)
    t, _ = dt.read_safetensors(src)
    new = []
    for k, a in t.items():
        if a.dtype.kind == "f":
            if a.ndim >= 2:
                r = 2 / np.sqrt(np.prod(a.shape[1:]))
                lo, hi = -r, r
            elif k.endswith("running_var") or (k.endswith(".weight") and a.ndim == 1):
                lo, hi = 0.5, 1.5
            else:
                lo, hi = -0.1, 0.1
            a = rng.uniform(lo, hi, a.shape).astype(a.dtype)
        new.append((k, a))
    dt.write_safetensors(out, new, {"format": "pt"})


def edit(src, out, op, name):
    t, meta = dt.read_safetensors(src)
    if op == "add":
        t[name] = np.zeros(3, np.float32)
    elif name not in t:
        fail("%s: no tensor '%s'" % (src, name))
    elif op == "drop":
        del t[name]
    elif op == "transpose":
        t[name] = t[name].T
    elif op == "f64":
        t[name] = t[name].astype(np.float64)
    dt.write_safetensors(out, list(t.items()), meta)


def has(path, name, dtype, shape):
    t, _ = dt.read_safetensors(path)
    want = (dtype, [int(d) for d in shape.split(",") if d])
    if name not in t or (dt.st_dtype(t[name]), list(t[name].shape)) != want:
        fail("%s: want %s %s, have %s" % (path, name, want, sorted(t)))


# --- numpy, in torch.nn's formulas (f64) ------------------------------------

def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def linear(sd, m, x):
    return x @ sd[m + ".weight"].T + sd[m + ".bias"]


def conv2d(sd, m, x, stride=1, pad=0):
    w = sd[m + ".weight"]
    o, c, kh, kw = w.shape
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, hh, ww = x.shape
    ho, wo = (hh - kh) // stride + 1, (ww - kw) // stride + 1
    y = np.zeros((n, o, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + stride * ho:stride, j:j + stride * wo:stride]
            y += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    if m + ".bias" in sd:
        y += sd[m + ".bias"][:, None, None]
    return y


def max_pool2(x):
    n, c, h, w = x.shape
    return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max((3, 5))


def batch_norm(sd, m, x):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = sd[m + ".running_mean"].reshape(shape), sd[m + ".running_var"].reshape(shape)
    return (x - mean) / np.sqrt(var + 1e-5) * sd[m + ".weight"].reshape(shape) + \
        sd[m + ".bias"].reshape(shape)


def layer_norm(sd, m, x):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * sd[m + ".weight"] + sd[m + ".bias"]


def recurrent(sd, m, kind, x, sfx=""):
    """nn.LSTM / nn.GRU / nn.RNN (batch_first, one layer, h0 = c0 = 0);
    bidirectional (the _reverse tensors): both directions' states side
    by side, the second's computed over the reversed sequence."""
    if not sfx and m + ".weight_ih_l0_reverse" in sd:
        back = recurrent(sd, m, kind, x[:, ::-1], "_reverse")[:, ::-1]
        return np.concatenate([recurrent(sd, m, kind, x, "_forward"), back], -1)
    sfx = "" if sfx == "_forward" else sfx
    wih, whh = sd[m + ".weight_ih_l0" + sfx], sd[m + ".weight_hh_l0" + sfx]
    bih, bhh = sd[m + ".bias_ih_l0" + sfx], sd[m + ".bias_hh_l0" + sfx]
    b, t, _ = x.shape
    hn = whh.shape[1]
    h, c = np.zeros((b, hn)), np.zeros((b, hn))
    out = []
    for s in range(t):
        gi, gh = x[:, s] @ wih.T + bih, h @ whh.T + bhh
        if kind == "lstm":
            i, f, g, o = np.split(gi + gh, 4, axis=1)
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
        elif kind == "gru":
            ir, iz, inn = np.split(gi, 3, axis=1)
            hr, hz, hnn = np.split(gh, 3, axis=1)
            r, z = sigmoid(ir + hr), sigmoid(iz + hz)
            h = (1 - z) * np.tanh(inn + r * hnn) + z * h
        else:
            h = np.tanh(gi + gh)
        out.append(h)
    return np.stack(out, 1)


def ref_mnist_mlp(sd, x):
    return softmax(linear(sd, "fc2", np.maximum(linear(sd, "fc1", x), 0)))


def ref_lenet(sd, x):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731
    h = max_pool2(relu(conv2d(sd, "conv1", x, pad=2)))
    h = max_pool2(relu(conv2d(sd, "conv2", h))).reshape(len(x), -1)
    h = relu(linear(sd, "fc2", relu(linear(sd, "fc1", h))))
    return softmax(linear(sd, "fc3", h))


def ref_charlstm(sd, ids):
    hs = recurrent(sd, "lstm", "lstm", sd["embed"][ids])
    return softmax(linear(sd, "out", hs.reshape(-1, hs.shape[-1])))


def ref_seq(sd, ids):
    gs = recurrent(sd, "gru", "gru", sd["embed.weight"][ids])
    bl = recurrent(sd, "bl", "lstm", gs)
    r = recurrent(sd, "r", "rnn", bl)
    n = layer_norm(sd, "n", r[:, -1])
    return softmax(linear(sd, "head", np.maximum(batch_norm(sd, "norm", n), 0)))


def ref_resnet(sd, x):
    relu = lambda v: np.maximum(v, 0)  # noqa: E731

    def conv_bn(m, h, stride, pad):
        return batch_norm(sd, m + ".bn", conv2d(sd, m + ".conv", h, stride, pad))

    h = relu(conv_bn("stem", x, 1, 1))
    h = relu(conv_bn("block1.conv2", relu(conv_bn("block1.conv1", h, 1, 1)), 1, 1) + h)
    for b in ("block2", "block3"):
        y = conv_bn(b + ".conv2", relu(conv_bn(b + ".conv1", h, 2, 1)), 1, 1)
        h = relu(y + conv_bn(b + ".shortcut", h, 2, 0))
    return softmax(linear(sd, "fc", h.mean((2, 3))))


def ref_gpt(sd, ids):
    b, t = ids.shape
    x = sd["wte"][ids] + sd["wpe"][:t]
    d, nh = x.shape[-1], 4
    mask = np.triu(np.ones((t, t), bool), 1)
    i = 0
    while "h.%d.ln1.weight" % i in sd:
        p = "h.%d." % i
        q, k, v = np.split(linear(sd, p + "attn.qkv", layer_norm(sd, p + "ln1", x)), 3, -1)
        q, k, v = (a.reshape(b, t, nh, d // nh).transpose(0, 2, 1, 3) for a in (q, k, v))
        s = np.where(mask, -np.inf, q @ k.transpose(0, 1, 3, 2) / np.sqrt(d // nh))
        y = (softmax(s) @ v).transpose(0, 2, 1, 3).reshape(b, t, d)
        x = x + linear(sd, p + "attn.proj", y)
        f = linear(sd, p + "ff.fc", layer_norm(sd, p + "ln2", x))
        f = 0.5 * f * (1 + np.tanh(np.sqrt(2 / np.pi) * (f + 0.044715 * f ** 3)))
        x = x + linear(sd, p + "ff.proj", f)
        i += 1
    return softmax(layer_norm(sd, "ln_f", x) @ sd["wte"].T)


INPUT = {"mnist_mlp": "x", "lenet": "x", "resnet": "x", "charlstm": "ids", "gpt": "ids",
         "seq": "ids"}


def compare(model, got, want, tol):
    err = np.abs(got - want).max()
    if not err <= tol:
        fail("%s: dlc's probs and the reference differ by %.3g (tolerance %g)" % (model, err, tol))
    print("%s: dlc's probs within %.2g of the reference" % (model, err))


def reference(model, sd_path, fwd_path):
    sd, _ = dt.read_safetensors(sd_path)
    fwd, _ = dt.read_safetensors(fwd_path)
    sd = {k: v.astype(np.float64) if v.dtype.kind == "f" else v for k, v in sd.items()}
    x = fwd[INPUT[model]]
    x = x.astype(np.float64) if x.dtype.kind == "f" else x
    want = globals()["ref_" + model](sd, x)
    compare(model, fwd["probs"].astype(np.float64), want.reshape(fwd["probs"].shape), 1e-6)


# --- torch.nn ---------------------------------------------------------------

def torch_models(torch, nn, f):
    """MODEL -> (the module, its forward from the input tensor to probs)."""

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = nn.Linear(784, 256), nn.Linear(256, 10)

        def forward(self, x):
            return f.softmax(self.fc2(f.relu(self.fc1(x))), -1)

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2, self.fc3 = nn.Linear(400, 120), nn.Linear(120, 84), nn.Linear(84, 10)

        def forward(self, x):
            x = f.max_pool2d(f.relu(self.conv1(x)), 2)
            x = f.max_pool2d(f.relu(self.conv2(x)), 2).flatten(1)
            return f.softmax(self.fc3(f.relu(self.fc2(f.relu(self.fc1(x))))), -1)

    class CharLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Parameter(torch.zeros(128, 64))  # a param in the inferred map
            self.lstm = nn.LSTM(64, 256, batch_first=True)
            self.out = nn.Linear(256, 128)

        def forward(self, ids):
            hs, _ = self.lstm(self.embed[ids])
            return f.softmax(self.out(hs.reshape(-1, 256)), -1)

    class Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(11, 5)
            self.gru = nn.GRU(5, 6, batch_first=True)
            self.bl = nn.LSTM(6, 3, batch_first=True, bidirectional=True)
            self.r = nn.RNN(6, 6, batch_first=True)
            self.n, self.norm, self.head = nn.LayerNorm(6), nn.BatchNorm1d(6), nn.Linear(6, 3)

        def forward(self, ids):
            gs, _ = self.gru(self.embed(ids))
            bl, _ = self.bl(gs)
            r, _ = self.r(bl)
            return f.softmax(self.head(f.relu(self.norm(self.n(r[:, -1])))), -1)

    class ConvBN(nn.Module):
        def __init__(self, cin, cout, k, stride, pad):
            super().__init__()
            self.conv = nn.Conv2d(cin, cout, k, stride, pad, bias=False)
            self.bn = nn.BatchNorm2d(cout)

        def forward(self, x):
            return self.bn(self.conv(x))

    class Block(nn.Module):
        def __init__(self, cin, cout):
            super().__init__()
            down = cin != cout
            self.conv1 = ConvBN(cin, cout, 3, 2 if down else 1, 1)
            self.conv2 = ConvBN(cout, cout, 3, 1, 1)
            self.shortcut = ConvBN(cin, cout, 1, 2, 0) if down else None

        def forward(self, x):
            y = self.conv2(f.relu(self.conv1(x)))
            return f.relu(y + (self.shortcut(x) if self.shortcut else x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = ConvBN(1, 16, 3, 1, 1)
            self.block1, self.block2, self.block3 = Block(16, 16), Block(16, 32), Block(32, 64)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            x = self.block3(self.block2(self.block1(f.relu(self.stem(x)))))
            return f.softmax(self.fc(x.mean((2, 3))), -1)

    class Attention(nn.Module):
        def __init__(self, d, nh):
            super().__init__()
            self.nh, self.qkv, self.proj = nh, nn.Linear(d, 3 * d), nn.Linear(d, d)

        def forward(self, x):
            b, t, d = x.shape
            q, k, v = (a.reshape(b, t, self.nh, d // self.nh).transpose(1, 2)
                       for a in self.qkv(x).split(d, -1))
            s = (q @ k.transpose(-1, -2)) / (d // self.nh) ** 0.5
            s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
            return self.proj((f.softmax(s, -1) @ v).transpose(1, 2).reshape(b, t, d))

    class MLPBlock(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

        def forward(self, x):
            return self.proj(f.gelu(self.fc(x), approximate="tanh"))

    class GPTBlock(nn.Module):
        def __init__(self, d, nh):
            super().__init__()
            self.ln1, self.attn = nn.LayerNorm(d), Attention(d, nh)
            self.ln2, self.ff = nn.LayerNorm(d), MLPBlock(d)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.ff(self.ln2(x))

    class GPT(nn.Module):
        def __init__(self, v=256, t=64, d=128, nh=4, n=4):
            super().__init__()
            self.wte, self.wpe = nn.Parameter(torch.zeros(v, d)), nn.Parameter(torch.zeros(t, d))
            self.h = nn.ModuleList(GPTBlock(d, nh) for _ in range(n))
            self.ln_f = nn.LayerNorm(d)

        def forward(self, ids):
            x = self.wte[ids] + self.wpe[:ids.shape[1]]
            for block in self.h:
                x = block(x)
            return f.softmax(self.ln_f(x) @ self.wte.T, -1)

    return {"mnist_mlp": MLP, "lenet": LeNet, "charlstm": CharLSTM, "seq": Seq,
            "resnet": ResNet, "gpt": GPT}


def torch_check(model, sd_path, fwd_path):
    try:
        import torch
        from torch import nn
        from torch.nn import functional as f
    except ImportError:
        print("check.py: no torch: skipped")
        sys.exit(77)
    sd, _ = dt.read_safetensors(sd_path)
    fwd, _ = dt.read_safetensors(fwd_path)
    net = torch_models(torch, nn, f)[model]().double().eval()
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in sd.items()}, strict=True)
    x = torch.from_numpy(fwd[INPUT[model]].copy())
    x = x.double() if x.is_floating_point() else x.long()
    with torch.no_grad():
        want = net(x).numpy()
    compare(model, fwd["probs"].astype(np.float64), want.reshape(fwd["probs"].shape), 1e-6)


def main(argv):
    cmd, args = argv[0], argv[1:]
    if cmd == "same":
        same(*args)
    elif cmd == "randomize":
        randomize(args[0], args[1], int(args[2]))
    elif cmd == "edit":
        edit(*args)
    elif cmd == "has":
        has(*args)
    elif cmd == "reference":
        reference(*args)
    elif cmd == "torch":
        torch_check(*args)
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except dt.Fail as e:
        fail(str(e))
