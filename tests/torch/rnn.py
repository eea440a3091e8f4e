"""The recurrent layers' gradients against PyTorch in f64 (rnn.dl): the
forms recurrent.py checks forward (lstm bidirectional over
pack_padded_sequence with h_n and c_n, gru bidirectional, rnn with relu
over packed sequences), here with a loss on every result, so that each
weight's gradient is compared with torch.autograd's through time
(replay.py), within 1e-12 relative to the magnitude. dlc's weights are
torch's transposed, both directions stacked; dlc's lstm and rnn have one
bias, which gets what torch's bias_ih gets (torch's bias_hh is 0 here and
gets the same, up to rounding).

    python3 rnn.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import sys

import numpy as np
import torch

import replay

B, T, F, H = 5, 6, 3, 4
# the parameters in declaration order: NAME_params(m) is them, flat
PARAMS = {"lw_ih": (2, F, 4 * H), "lw_hh": (2, H, 4 * H), "lb": (2, 4 * H),
          "gw_ih": (2, F, 3 * H), "gw_hh": (2, H, 3 * H), "gb_ih": (2, 3 * H),
          "gb_hh": (2, 3 * H), "rw_ih": (F, H), "rw_hh": (H, H), "rb": (H,)}
DIRS = ((0, ""), (1, "_reverse"))


def set_weights(mod, w_ih, w_hh, b_ih, b_hh, sfx):
    getattr(mod, "weight_ih_l0" + sfx).copy_(torch.tensor(w_ih.T))
    getattr(mod, "weight_hh_l0" + sfx).copy_(torch.tensor(w_hh.T))
    getattr(mod, "bias_ih_l0" + sfx).copy_(torch.tensor(b_ih))
    getattr(mod, "bias_hh_l0" + sfx).copy_(torch.tensor(b_hh))


def grads(mod, sfx):
    g = lambda n: getattr(mod, n + "_l0" + sfx).grad.numpy()  # noqa: E731
    return g("weight_ih").T, g("weight_hh").T, g("bias_ih"), g("bias_hh")


def torch_side(ins, p):
    lstm = torch.nn.LSTM(F, H, batch_first=True, bidirectional=True).double()
    gru = torch.nn.GRU(F, H, batch_first=True, bidirectional=True).double()
    rnn = torch.nn.RNN(F, H, batch_first=True, nonlinearity="relu").double()
    with torch.no_grad():
        for d, sfx in DIRS:
            set_weights(lstm, p["lw_ih"][d], p["lw_hh"][d], p["lb"][d], np.zeros(4 * H), sfx)
            set_weights(gru, p["gw_ih"][d], p["gw_hh"][d], p["gb_ih"][d], p["gb_hh"][d], sfx)
        set_weights(rnn, p["rw_ih"], p["rw_hh"], p["rb"], np.zeros(H), "")
    x = torch.tensor(ins["x"])
    h0, c0 = torch.tensor(ins["h0"]), torch.tensor(ins["c0"])
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(ins["n"].astype(np.int64)), batch_first=True, enforce_sorted=False)
    unpack = lambda o: torch.nn.utils.rnn.pad_packed_sequence(  # noqa: E731
        o, batch_first=True, total_length=T)[0]
    o, (lh, lc) = lstm(packed, (h0, c0))
    out = {"lstm_hs": unpack(o), "lstm_h": lh, "lstm_c": lc}
    o, gh = gru(x, h0)
    out.update(gru_hs=o, gru_h=gh)
    o, rh = rnn(packed, h0[:1])
    out.update(rnn_hs=unpack(o), rnn_h=rh[0])
    sq = lambda v: (v * v).sum()  # noqa: E731
    loss = (sq(out["lstm_hs"]) + out["lstm_h"].sum() + sq(out["lstm_c"]) + sq(out["gru_hs"])
            + sq(out["gru_h"]) + sq(out["rnn_hs"]) + out["rnn_h"].sum())
    loss.backward()
    lg = [grads(lstm, sfx) for _, sfx in DIRS]
    gg = [grads(gru, sfx) for _, sfx in DIRS]
    rg = grads(rnn, "")
    # the one bias gets what bias_ih gets, and so does torch's bias_hh
    for a, b in ((lg[0][2], lg[0][3]), (lg[1][2], lg[1][3]), (rg[2], rg[3])):
        assert np.allclose(a, b, rtol=1e-12, atol=1e-12)
    return replay.results(out, loss, {
        "lw_ih": np.stack([g[0] for g in lg]), "lw_hh": np.stack([g[1] for g in lg]),
        "lb": np.stack([g[2] for g in lg]),
        "gw_ih": np.stack([g[0] for g in gg]), "gw_hh": np.stack([g[1] for g in gg]),
        "gb_ih": np.stack([g[2] for g in gg]), "gb_hh": np.stack([g[3] for g in gg]),
        "rw_ih": rg[0], "rw_hh": rg[1], "rb": rg[2],
    })


def data(rng):
    r = lambda *s: rng.uniform(-0.8, 0.8, size=s)  # noqa: E731
    # lengths 1..T: PyTorch refuses 0
    ins = {"x": r(B, T, F), "n": np.array([6, 2, 1, 4, 3], dtype=np.int32),
           "h0": r(2, B, H), "c0": r(2, B, H)}
    return ins, {k: r(*s) for k, s in PARAMS.items()}


if __name__ == "__main__":
    sys.exit(replay.main("rnn", data, torch_side))
