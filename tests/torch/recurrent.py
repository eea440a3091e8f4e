"""dlc's recurrent layers against torch.nn in f64: compiles recurrent.dl,
links it into a shared library with libdlrt, runs its forward function
on random inputs and weights (lengths 1..T: PyTorch refuses 0), and
compares every output with torch.nn.LSTM and GRU (bidirectional; the LSTM
over pack_padded_sequence) and torch.nn.RNN(nonlinearity='relu') over
packed sequences: hidden states, h_n and c_n within 1e-12.

    python3 recurrent.py DLC CC "DLRT_LIBS" WORKDIR

Exit status 0 when all agree, 1 otherwise. Needs python3-torch."""
import ctypes
import os
import subprocess
import sys

import numpy as np
import torch

B, T, F, H = 5, 6, 3, 4


def build(dlc, cc, libs, work):
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recurrent.dl")
    obj, so = os.path.join(work, "recurrent.o"), os.path.join(work, "recurrent.so")
    subprocess.run([dlc, src, "--inference-only", "-o", obj], check=True)
    subprocess.run([cc, "-shared", "-o", so, obj, "-Wl,--whole-archive", libs.split()[0],
                    "-Wl,--no-whole-archive"] + libs.split()[1:], check=True)
    lib = ctypes.CDLL(so)
    lib.recurrent_create.restype = ctypes.c_void_p
    return lib


def set_weights(mod, w_ih, w_hh, b_ih, b_hh, sfx):
    getattr(mod, "weight_ih_l0" + sfx).copy_(torch.tensor(w_ih.T))
    getattr(mod, "weight_hh_l0" + sfx).copy_(torch.tensor(w_hh.T))
    getattr(mod, "bias_ih_l0" + sfx).copy_(torch.tensor(b_ih))
    getattr(mod, "bias_hh_l0" + sfx).copy_(torch.tensor(b_hh))


def main():
    dlc, cc, libs, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    lib = build(dlc, cc, libs, work)
    rng = np.random.default_rng(14)
    r = lambda *s: rng.uniform(-0.8, 0.8, size=s)
    ins = {"x": r(B, T, F), "n": np.array([6, 2, 1, 4, 3], dtype=np.int32),
           "h0": r(2, B, H), "c0": r(2, B, H),
           "lw_ih": r(2, F, 4 * H), "lw_hh": r(2, H, 4 * H), "lb": r(2, 4 * H),
           "gw_ih": r(2, F, 3 * H), "gw_hh": r(2, H, 3 * H), "gb_ih": r(2, 3 * H),
           "gb_hh": r(2, 3 * H), "rw_ih": r(F, H), "rw_hh": r(H, H), "rb": r(H)}
    outs = {"lstm_hs": (B, T, 2 * H), "lstm_h": (2, B, H), "lstm_c": (2, B, H),
            "gru_hs": (B, T, 2 * H), "gru_h": (2, B, H), "rnn_hs": (B, T, H), "rnn_h": (B, H)}
    ins = {k: np.ascontiguousarray(v) for k, v in ins.items()}
    got = {k: np.zeros(s) for k, s in outs.items()}
    m = lib.recurrent_create(ctypes.c_uint64(1))
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    rc = lib.recurrent_forward(ctypes.c_void_p(m), B, *[ptr(v) for v in ins.values()],
                               *[ptr(v) for v in got.values()])
    if rc != 0:
        print("recurrent_forward returned", rc)
        return 1

    want = {}
    x = torch.tensor(ins["x"])
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x, torch.tensor(ins["n"].astype(np.int64)), batch_first=True, enforce_sorted=False)
    unpack = lambda o: torch.nn.utils.rnn.pad_packed_sequence(o, batch_first=True,
                                                              total_length=T)[0].numpy()
    with torch.no_grad():
        lstm = torch.nn.LSTM(F, H, batch_first=True, bidirectional=True).double()
        gru = torch.nn.GRU(F, H, batch_first=True, bidirectional=True).double()
        rnn = torch.nn.RNN(F, H, batch_first=True, nonlinearity="relu").double()
        for d, sfx in ((0, ""), (1, "_reverse")):
            # dlc's lstm has one bias: PyTorch's two add up to it
            set_weights(lstm, ins["lw_ih"][d], ins["lw_hh"][d], ins["lb"][d], np.zeros(4 * H), sfx)
            set_weights(gru, ins["gw_ih"][d], ins["gw_hh"][d], ins["gb_ih"][d], ins["gb_hh"][d], sfx)
        set_weights(rnn, ins["rw_ih"], ins["rw_hh"], ins["rb"], np.zeros(H), "")
        o, (h, c) = lstm(packed, (torch.tensor(ins["h0"]), torch.tensor(ins["c0"])))
        want.update(lstm_hs=unpack(o), lstm_h=h.numpy(), lstm_c=c.numpy())
        o, h = gru(x, torch.tensor(ins["h0"]))
        want.update(gru_hs=o.numpy(), gru_h=h.numpy())
        o, h = rnn(packed, torch.tensor(ins["h0"][:1]))
        want.update(rnn_hs=unpack(o), rnn_h=h[0].numpy())
    bad = 0
    for k in outs:
        err = float(np.abs(got[k] - want[k]).max())
        ok = err <= 1e-12
        bad += not ok
        print(f"{k:8s} max abs difference {err:.3g}{'' if ok else '  FAIL'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
