"""The MNIST classifiers of bench/ in PyTorch, timed like bench_NAME:
Adam(lr=1e-3) training steps and no-grad forward passes on one random
batch (its labels drawn afresh for each training step), rounds of STEPS
steps after a warm-up, median samples/s.

    --model mnist_mlp   examples/mnist/mnist_mlp.dl: 784-256-10, ReLU
    --model lenet       examples/lenet/lenet.dl: LeNet-5, conv 5x5 pad 2
                        1->6, ReLU, 2x2 max-pool, conv 5x5 6->16, ReLU,
                        max-pool, flatten, dense 400-120-84-10 (ReLU)
    --model resnet      examples/resnet/resnet.dl: conv 3x3 1->16 + batch
                        norm + ReLU, residual blocks 16->16, 16->32 and
                        32->64 (stride 2, 1x1 shortcuts), global average
                        pool, dropout 0.2, dense 64-10; trained, as the
                        example is, with SGD (Nesterov momentum 0.9, weight
                        decay 5e-4) instead of Adam

Both train on softmax cross-entropy (mean over the batch); forward ends in
a softmax, as the compiled models' probs output does. --threads sets
torch.set_num_threads (default: torch's own choice).

    python3 torch_mnist.py --model NAME [--threads N] [BATCH [STEPS [ROUNDS]]]
"""
import argparse
import itertools

import torch
from torch import nn

from torch_timing import measure, sizes

def conv_bn(c_in, c_out, k, stride, relu):
    layers = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=False),
              nn.BatchNorm2d(c_out)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class Block(nn.Module):
    """resnet.dl's res_block (identity shortcut) and res_block_down."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, c_out, 3, stride, True),
                                  conv_bn(c_out, c_out, 3, 1, False))
        self.shortcut = (nn.Identity() if c_in == c_out and stride == 1
                         else conv_bn(c_in, c_out, 1, stride, False))

    def forward(self, x):
        return torch.relu(self.body(x) + self.shortcut(x))


MODELS = {
    "mnist_mlp": ((784,), lambda: nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))),
    "lenet": ((1, 28, 28), lambda: nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10))),
    "resnet": ((1, 28, 28), lambda: nn.Sequential(
        conv_bn(1, 16, 3, 1, True), Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 10))),
}


LABEL_SETS = 64


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
    if a.model == "resnet":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    lossf = nn.CrossEntropyLoss()
    x = torch.randn(batch, *shape)
    # labels drawn afresh each step, as bench/mnist.c does: a memorized
    # batch drives the gradients to denormal floats
    labels = itertools.cycle(torch.randint(0, 10, (LABEL_SETS, batch)))

    def train():
        model.train()
        opt.zero_grad(set_to_none=False)
        loss = lossf(model(x), next(labels))
        loss.backward()
        opt.step()
        return loss.item()

    def forward():
        model.eval()
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
