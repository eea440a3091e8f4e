"""The character-level language models of bench/ in PyTorch, timed like
bench_NAME (bench/text.c): training steps and no-grad forward passes on one
random batch of ids [B, T], rounds of STEPS steps after a warm-up, median
tokens/s (B * T per step).

    --model charlstm   examples/charlstm/charlstm.dl: embedding 128x64,
                       one LSTM layer of 256, dense head to 128 characters;
                       Adam(lr=2e-3), clip_grad_norm_ 5
    --model gpt        examples/gpt/gpt.dl: byte and position embeddings
                       (256, 64 positions, width 128), 4 pre-norm blocks of
                       causal 4-head attention and a 4x GELU (tanh) MLP,
                       final layer norm, head tied to the byte embedding;
                       AdamW(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
                       on every parameter (as the .dl), warmup-cosine,
                       clip_grad_norm_ 1

Both train on softmax cross-entropy over all B * T positions; forward ends
in a softmax, as the compiled models' probs output does. --threads sets
torch.set_num_threads (default: torch's own choice).

    python3 torch_text.py --model NAME [--threads N] [BATCH [STEPS [ROUNDS]]]
"""
import argparse
import math

import torch
from torch import nn
from torch.nn import functional as F

from torch_timing import measure, sizes


class CharLSTM(nn.Module):
    T, V = 64, 128

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(128, 64)
        self.lstm = nn.LSTM(64, 256, batch_first=True)
        self.out = nn.Linear(256, 128)

    def forward(self, ids):
        hs, _ = self.lstm(self.embed(ids))
        return self.out(hs)


class Block(nn.Module):
    def __init__(self, d, nh):
        super().__init__()
        self.nh = nh
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.fc_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x, mask):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.nh, d // self.nh).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-2, -1)) / math.sqrt(d // self.nh)
        y = torch.softmax(s.masked_fill(mask, float("-inf")), dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    T, V = 64, 256

    def __init__(self, d=128, nh=4, layers=4):
        super().__init__()
        self.wte = nn.Parameter(torch.randn(256, d) * 0.02)
        self.wpe = nn.Parameter(torch.randn(64, d) * 0.02)
        self.h = nn.ModuleList(Block(d, nh) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.register_buffer("mask", torch.triu(torch.ones(64, 64, dtype=torch.bool), 1))

    def forward(self, ids):
        x = F.embedding(ids, self.wte) + self.wpe
        for block in self.h:
            x = block(x, self.mask)
        return self.ln_f(x) @ self.wte.t()


def optimizer(name, model):
    if name == "charlstm":
        return torch.optim.Adam(model.parameters(), lr=2e-3), None, 5.0
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)

    def rate(t, warmup=100, total=1000, base=1e-3, low=1e-4):
        if t < warmup:
            return (t + 1) / warmup
        p = min(1.0, (t - warmup) / (total - warmup))
        return (low + (base - low) * (1 + math.cos(math.pi * p)) / 2) / base

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, rate), 1.0


MODELS = {"charlstm": CharLSTM, "gpt": GPT}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS, required=True)
    ap.add_argument("--threads", type=int)
    ap.add_argument("sizes", type=int, nargs="*", help="BATCH STEPS ROUNDS (max batch, 20, 5)")
    a = ap.parse_args()
    default_batch = 64 if a.model == "charlstm" else 32
    batch, steps, rounds = sizes(ap, a.sizes, [default_batch, 20, 5])
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    model = MODELS[a.model]()
    opt, sched, clip = optimizer(a.model, model)
    T, V = model.T, model.V
    ids = torch.randint(0, V, (batch, T))
    targets = torch.randint(0, V, (batch, T))

    def train():
        opt.zero_grad(set_to_none=False)
        loss = F.cross_entropy(model(ids).reshape(batch * T, V), targets.reshape(batch * T))
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        if sched:
            sched.step()
        return loss.item()

    def forward():
        with torch.no_grad():
            torch.softmax(model(ids), dim=-1)
        return 0.0

    rates = {name: measure(name, fn, steps, rounds, batch * T, "tokens")
             for name, fn in (("train", train), ("forward", forward))}
    print(f"torch {a.model} batch {batch} context {T}: train {rates['train']:.0f} tokens/s, "
          f"forward {rates['forward']:.0f} tokens/s, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
