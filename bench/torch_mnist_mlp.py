"""The MNIST MLP of examples/mnist/mnist_mlp.dl in PyTorch, timed like
bench_mnist_mlp: Adam(lr=1e-3) training steps and no-grad forward passes
on random batches, rounds of STEPS steps after a warm-up, median samples/s.

    python3 torch_mnist_mlp.py [BATCH [STEPS [ROUNDS]]]
"""
import sys
import time

import torch
from torch import nn


def main():
    args = [int(a) for a in sys.argv[1:]] + [64, 300, 5][len(sys.argv) - 1:]
    batch, steps, rounds = args[:3]
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    x = torch.randn(batch, 784)
    y = torch.randint(0, 10, (batch,))

    def train():
        opt.zero_grad(set_to_none=False)
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def forward():
        with torch.no_grad():
            torch.softmax(model(x), dim=1)
        return 0.0

    tty = sys.stderr.isatty()
    rates = {}
    for name, fn in (("train", train), ("forward", forward)):
        r = []
        for k in range(-1, rounds):
            t0 = time.perf_counter()
            for s in range(steps):
                fn()
                if tty and (s + 1) % max(1, steps // 10) == 0:
                    print(f"\rtorch {name} {k + 1}/{rounds} {s + 1}/{steps}", end="",
                          file=sys.stderr, flush=True)
            dt = time.perf_counter() - t0
            print(f"{'' if tty else chr(10)}\rtorch {name} {k + 1}/{rounds} {steps}/{steps} "
                  f"{steps * batch / dt:.0f} samples/s", end="", file=sys.stderr, flush=True)
            if k >= 0:
                r.append(steps * batch / dt)
        print(file=sys.stderr)
        rates[name] = sorted(r)[rounds // 2]
    print(f"torch mnist_mlp batch {batch}: train {rates['train']:.0f} samples/s, "
          f"forward {rates['forward']:.0f} samples/s, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
