"""The MNIST classifiers of bench/ in PyTorch, timed like bench_NAME:
Adam(lr=1e-3) training steps and no-grad forward passes on one random
batch, rounds of STEPS steps after a warm-up, median samples/s.

    --model mnist_mlp   examples/mnist/mnist_mlp.dl: 784-256-10, ReLU
    --model lenet       examples/lenet/lenet.dl: LeNet-5, conv 5x5 pad 2
                        1->6, ReLU, 2x2 max-pool, conv 5x5 6->16, ReLU,
                        max-pool, flatten, dense 400-120-84-10 (ReLU)

Both train on softmax cross-entropy (mean over the batch); forward ends in
a softmax, as the compiled models' probs output does. --threads sets
torch.set_num_threads (default: torch's own choice).

    python3 torch_mnist.py --model NAME [--threads N] [BATCH [STEPS [ROUNDS]]]
"""
import argparse

import torch
from torch import nn

from torch_timing import measure, sizes

MODELS = {
    "mnist_mlp": ((784,), lambda: nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))),
    "lenet": ((1, 28, 28), lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=MODELS, required=True)
    ap.add_argument("--threads", type=int)
    ap.add_argument("sizes", type=int, nargs="*", help="BATCH STEPS ROUNDS (64 300 5)")
    a = ap.parse_args()
    batch, steps, rounds = sizes(ap, a.sizes, [64, 300, 5])
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    shape, build = MODELS[a.model]
    model = build()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    x = torch.randn(batch, *shape)
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

    rates = {name: measure(name, fn, steps, rounds, batch, "samples")
             for name, fn in (("train", train), ("forward", forward))}
    print(f"torch {a.model} batch {batch}: train {rates['train']:.0f} samples/s, "
          f"forward {rates['forward']:.0f} samples/s, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}")


if __name__ == "__main__":
    main()
