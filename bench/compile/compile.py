#!/usr/bin/python3
"""Compile-time benchmark (run by hand; bench/run.sh runs it as "compile").

Compiles every example model (each examples/**/*.dl that declares a model)
with its training code at -O2, and the character LSTM (the built-in lstm)
and the Elman RNN (a hand-written for loop) at T=512 as well,
RUNS times each (default 3), and prints a table of medians: the wall time
of each compiler phase (dlc --stats=json: parse, lower, the passes,
memplan, llvm-ir, dedup, llvm-opt, llvm-emit), the whole process's wall
time and peak memory (the operating system's accounting of the child),
the object's size, and the kernels built for the plan steps and emitted.

With --baseline OLD_DLC, each compilation is also run with OLD_DLC (another
build of dlc, say main's before a change), alternating with the new one so
that both see the same machine, and the table adds its total time, peak
memory and object size and the ratios new/old. The last lines give the
T=512 figures as ratios of the shipped lengths' (T=64 and T=16; the goal
of issue 11: compile time independent of the sequence length).

usage: bench/compile/compile.py [--dlc DLC] [--baseline OLD_DLC] [--runs N]
                                [--only NAME,...] [--no-long]
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PHASES = ["parse", "lower", "shape", "autodiff", "simplify", "fuse", "memplan",
          "llvm-ir", "dedup", "llvm-opt", "llvm-emit"]
# columns: the front end and the passes together, then codegen's phases
FRONT = PHASES[:7]
# models also compiled at T=512, with their shipped sequence length
LONG = {"charlstm": 64, "elman": 16}


def examples():
    """(label, path, extra dlc args) of every example model."""
    found = []
    for d, _, files in sorted(os.walk(os.path.join(ROOT, "examples"))):
        for f in sorted(files):
            if not f.endswith(".dl"):
                continue
            path = os.path.join(d, f)
            with open(path) as fh:
                m = re.search(r"^\s*model\s+(\w+)", fh.read(), re.M)
            if m:
                label = m.group(1) + {"charlstm": " T=64", "elman": " T=16"}.get(m.group(1), "")
                found.append((label, path, []))
    return found


def run(dlc, path, args, out):
    """One compilation: (wall s, peak MiB, stats dict or None, object bytes)."""
    cmd = [dlc, path, "-O2", "--stats=json", "-o", out] + args
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"compile.py: {' '.join(cmd)} failed:\n{err.decode(errors='replace')}")
    text = err.decode(errors="replace")
    stats = None
    start = text.find("{")
    if start >= 0:
        try:
            stats = json.loads(text[start:])
        except json.JSONDecodeError:
            stats = None  # an older dlc's --stats: only the totals are used
    return wall, ru.ru_maxrss / 1024.0, stats, os.path.getsize(out)


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def phase_ms(stats, names):
    if not stats:
        return float("nan")
    return sum(t["ms"] for t in stats["times_ms"] if t["step"] in names)


def measure(dlc, base, label, path, args, runs, tmp):
    new, old = [], []
    for _ in range(runs):
        new.append(run(dlc, path, args, os.path.join(tmp, "new.o")))
        if base:
            old.append(run(base, path, args, os.path.join(tmp, "old.o")))
    row = {"label": label}
    row["phases"] = {p: median([phase_ms(s, [p]) for _, _, s, _ in new]) for p in PHASES}
    row["front"] = median([phase_ms(s, FRONT) for _, _, s, _ in new])
    row["wall"] = median([w for w, _, _, _ in new])
    row["peak"] = median([m for _, m, _, _ in new])
    row["obj"] = new[-1][3]
    k = new[-1][2].get("kernels") if new[-1][2] else None
    row["kernels"] = f"{k['graph']}/{k['emitted']}" if k else "-"
    if base:
        row["old_wall"] = median([w for w, _, _, _ in old])
        row["old_peak"] = median([m for _, m, _, _ in old])
        row["old_obj"] = old[-1][3]
    return row


def print_table(rows, base):
    head = ["model", "front", "llvm-ir", "dedup", "llvm-opt", "llvm-emit", "total s",
            "peak MB", "object KB", "kernels"]
    if base:
        head += ["old s", "old MB", "old KB", "time", "memory", "object"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|")
    for r in rows:
        p = r["phases"]
        cells = [r["label"], f"{r['front']:.0f} ms", f"{p['llvm-ir']:.0f} ms",
                 f"{p['dedup']:.0f} ms", f"{p['llvm-opt']:.0f} ms", f"{p['llvm-emit']:.0f} ms",
                 f"{r['wall']:.2f}", f"{r['peak']:.0f}", f"{r['obj'] / 1024:.0f}", r["kernels"]]
        if base:
            cells += [f"{r['old_wall']:.2f}", f"{r['old_peak']:.0f}", f"{r['old_obj'] / 1024:.0f}",
                      f"{r['wall'] / r['old_wall']:.2f}x", f"{r['peak'] / r['old_peak']:.2f}x",
                      f"{r['obj'] / r['old_obj']:.2f}x"]
        print("| " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dlc", default=os.path.join(ROOT, "build/release/dlc"))
    ap.add_argument("--baseline", help="another dlc to compare with, run alternately")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", help="comma-separated labels' first words (charlstm, gpt, ...)")
    ap.add_argument("--no-long", action="store_true", help="leave out the T=512 models")
    o = ap.parse_args()
    todo = examples()
    for name in LONG:
        found = [t for t in todo if t[0].split()[0] == name]
        if found and not o.no_long:
            todo.append((f"{name} T=512", found[0][1], ["-D", "T=512"]))
    if o.only:
        keep = o.only.split(",")
        todo = [t for t in todo if t[0].split()[0] in keep]
    print(f"compile time at -O2 with training code, median of {o.runs} runs; "
          f"dlc: {o.dlc}" + (f", baseline: {o.baseline}" if o.baseline else ""))
    print("front: parse, lower and the passes up to memplan; llvm-ir: building the module; "
          "dedup: merging identical kernels; llvm-opt: LLVM's default<O2>; llvm-emit: "
          "instruction selection and the object; total and peak: the whole process")
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlc-compile-bench.") as tmp:
        for label, path, args in todo:
            rows.append(measure(o.dlc, o.baseline, label, path, args, o.runs, tmp))
            print(f"  {label}: {rows[-1]['wall']:.2f} s", file=sys.stderr, flush=True)
    print_table(rows, o.baseline)
    by = {r["label"]: r for r in rows}
    for name, t in LONG.items():
        short, long = by.get(f"{name} T={t}"), by.get(f"{name} T=512")
        if short and long:
            print(f"{name} T=512 / T={t}: time {long['wall'] / short['wall']:.2f}x, "
                  f"peak memory {long['peak'] / short['peak']:.2f}x, "
                  f"object {long['obj'] / short['obj']:.2f}x")


if __name__ == "__main__":
    main()
