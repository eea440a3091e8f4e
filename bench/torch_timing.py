"""What bench/torch_mnist.py and bench/torch_text.py share: their size
arguments and the timing of bench/bench.h (rounds of STEPS calls after a
warm-up round, the median rate), with a progress line on stderr."""
import sys
import time


def sizes(ap, args, defaults):
    """BATCH STEPS ROUNDS from the positional arguments, defaults filling in."""
    if len(args) > 3 or any(v < 1 for v in args):
        ap.error("BATCH, STEPS and ROUNDS are positive integers")
    return args + defaults[len(args):]


def measure(name, fn, steps, rounds, per_step, unit):
    """The median rate in units/s of rounds of `steps` calls of fn, each
    worth per_step units."""
    tty = sys.stderr.isatty()
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
              f"{steps * per_step / dt:.0f} {unit}/s", end="", file=sys.stderr, flush=True)
        if k >= 0:
            r.append(steps * per_step / dt)
    print(file=sys.stderr)
    return sorted(r)[rounds // 2]
