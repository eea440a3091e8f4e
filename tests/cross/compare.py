#!/usr/bin/env python3
"""Compares two printouts of tests/cross/driver.c, line by line.

usage: compare.py [--exact] [--rtol R] [--atol A] EXPECTED ACTUAL

Each line is "WHAT NAME VALUE" with VALUE a hex float or an integer. The
labels must match; the values must be the same bits (--exact) or within
atol + rtol * max(|e|, |a|) of each other, except that values printed
after the training steps ("trained", and each step's "loss") get ten times
the tolerance: the steps feed each earlier difference back into the
parameters. Prints how many values agree to the bit and the largest
relative difference; exits 1 on the first mismatch it reports.
"""
import sys


def values(path):
    out = []
    with open(path) as f:
        for line in f:
            what, name, v = line.split()
            out.append((what, name, float.fromhex(v) if "0x" in v else int(v)))
    return out


def main(argv):
    exact, rtol, atol = False, 1e-5, 1e-7
    args = []
    i = 1
    while i < len(argv):
        if argv[i] == "--exact":
            exact = True
        elif argv[i] == "--rtol":
            i += 1
            rtol = float(argv[i])
        elif argv[i] == "--atol":
            i += 1
            atol = float(argv[i])
        else:
            args.append(argv[i])
        i += 1
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    want, got = values(args[0]), values(args[1])
    if len(want) != len(got) or not want:
        print(f"FAIL: {len(want)} values expected, {len(got)} printed", file=sys.stderr)
        return 1
    same, worst = 0, 0.0
    for k, ((w1, n1, e), (w2, n2, a)) in enumerate(zip(want, got)):
        if (w1, n1) != (w2, n2):
            print(f"FAIL: line {k + 1}: {w2} {n2}, expected {w1} {n1}", file=sys.stderr)
            return 1
        if e == a:
            same += 1
            continue
        scale = 10 if w1 in ("trained", "loss") else 1
        rel = abs(e - a) / max(abs(e), abs(a))
        worst = max(worst, rel)
        if exact or abs(e - a) > scale * (atol + rtol * max(abs(e), abs(a))):
            print(f"FAIL: line {k + 1} ({w1} {n1}): {a!r}, expected {e!r}"
                  f"{' exactly' if exact else ''}", file=sys.stderr)
            return 1
    print(f"{args[1]}: {same} of {len(want)} values the same bits, "
          f"largest relative difference {worst:.3g}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
