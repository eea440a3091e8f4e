#!/usr/bin/env python3
"""The shrinker (difftest.py) on planted bugs, without a compiler: a fake
check fails when the model has a matrix product over more than one
element, or a reduction at a batch above 1. The shrunk model must still
fail, keep three ops at most, and have every size at its smallest but the
one the bug needs (the generator's smallest: 1, or 2 for images and
sequences). Run by CTest (difftest_shrink)."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import difftest  # noqa: E402
import gen  # noqa: E402


def products(nodes):
    """The contraction size of each matrix product x @ w in nodes."""
    by = {n.name: n for n in nodes}
    return [by[n.args[0]].shape[-1] for n in nodes
            if n.kind == "op" and "@" in n.expr + n.prelude]


def long_product(nodes, batch):
    return any(k != 1 for k in products(nodes))


def batch_reduction(nodes, batch):
    return batch != 1 and any(re.search(r"\b(sum|mean|max|min|var)\(", n.expr + n.prelude)
                              for n in nodes if n.kind == "op")


def fixed_dims(nodes):
    return [d for n in nodes for d in n.shape if d != gen.BATCH]


def shrunk(bug, seed):
    nodes = gen.generate(seed)
    if not bug(nodes, None):
        return None
    case, small, tries = difftest.shrink(bug, difftest.Case(seed), 400)
    assert bug(small, case.batch), (seed, "the shrunk model must still fail")
    again, _ = case.build()
    assert gen.render(again, "m", seed) == gen.render(small, "m", seed), "a Case rebuilds"
    ops = [n for n in small if n.kind == "op"]
    print(f"seed {seed}: {sum(n.kind == 'op' for n in nodes)} ops -> {len(ops)} in {tries} "
          f"checks, batch {case.batch}, sizes {case.over}")
    print(gen.render(small, "m", seed, difftest.settings(small, seed, False, case.batch)))
    return case, small, ops


def main():
    done = 0
    for seed in range(1, 200):
        r = shrunk(long_product, seed)
        if r is None:
            continue
        case, small, ops = r
        # one product, over 2 elements (1 would not fail), at batch 1,
        # every other size 1 where the product allows; an op that changes
        # shapes before it (a convolution, a pool) stays
        assert len(ops) <= 3, len(ops)
        assert case.batch == 1, case.batch
        assert max(products(small)) == 2, products(small)
        # an image and its kernel that only shrink together may stay
        # (seed 23 of the eighth generator: a 3x3 conv2d of a 4x4 image,
        # upsampled, then the product)
        if not any(re.search(r"\b(conv\w*|\w*pool\w*|upsample)\(", n.expr) for n in ops):
            assert max(fixed_dims(small)) == 2, fixed_dims(small)
        done += 1
        if done == 4:
            break
    assert done == 4
    done = 0
    for seed in range(1, 200):
        r = shrunk(batch_reduction, seed)
        if r is None:
            continue
        case, small, ops = r
        # images and sequences are 2 long at least (gen.py); a reshape
        # between two ops may stay when neither operand has its shape (seed
        # 6 of the ninth generator: mean(reshape(x @ w, [B, 1])) of a
        # matrix-vector product's [B])
        assert len(ops) <= 3 and case.batch == 2, (len(ops), case.batch)
        assert max(fixed_dims(small), default=1) <= 2, fixed_dims(small)
        done += 1
        if done == 3:
            break
    assert done == 3
    print("shrink selftest: ok")


if __name__ == "__main__":
    main()
