#!/usr/bin/env python3
"""Achieved GFLOP/s of a bench line and its fraction of the one-thread peak
(bench/run.sh; docs/BENCHMARKS.md, "Roofline").

  roofline.py STATS.json PEAK_GFLOPS 'BENCH LINE'

STATS.json is `dlc --stats=json` of the benchmarked model: its "work"
gives each generated function's flops at the maximum batch and at batch 1
(codegen/cost.c), and every formula there is affine in the batch, so the
flops of one call at the bench's batch follow by interpolation. A
training step is compute_gradients plus apply_gradients. The bench line
(bench/mnist.c, bench/text.c) gives the batch, the context (text models),
the threads and the rates in samples/s or tokens/s; the roof is the
one-thread peak times the threads."""
import json
import re
import sys


def flops_at(fn, batch, max_batch):
    if max_batch <= 1:
        return fn["flops"]
    return fn["flops_b1"] + (fn["flops"] - fn["flops_b1"]) * (batch - 1) / (max_batch - 1)


def main():
    stats_path, peak, line = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    text = open(stats_path).read()
    work = json.loads(text[text.index("{"):])["work"]
    fns = {f["name"]: f for f in work["functions"]}
    batch = int(re.search(r"batch (\d+)", line).group(1))
    ctx = re.search(r"context (\d+)", line)
    per_step = batch * (int(ctx.group(1)) if ctx else 1)  # samples or tokens per call
    threads = int(re.search(r"threads (\d+)", line).group(1))
    roof = peak * threads
    out = []
    for what, names in (("train", ["compute_gradients", "apply_gradients"]), ("forward", ["forward"])):
        m = re.search(what + r" (\d+) (samples|tokens)/s", line)
        if not m or not all(n in fns for n in names):
            continue
        flops = sum(flops_at(fns[n], batch, work["batch"]) for n in names)
        gflops = float(m.group(1)) / per_step * flops * 1e-9
        out.append("%s %.2f GFLOP/s (%.1f%% of %.1f; %.1f MFLOP a call)"
                   % (what, gflops, 100 * gflops / roof, roof, flops * 1e-6))
    print("roofline, %d thread%s: %s" % (threads, "" if threads == 1 else "s", ", ".join(out)))


main()
