/* bench.h — what the bench programs (mnist.c, text.c) share: a monotonic
 * clock, positional size arguments, --threads N, and timing: rounds of calls of one
 * step after a warm-up round, with a progress bar, reduced to the median
 * rate. Static functions: each program is one translation unit. */
#ifndef DLC_BENCH_H
#define DLC_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlrt.h>

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* argv[i] as an integer in 1..hi, def when absent; exit 2 otherwise. */
static int bench_arg(const char *prog, int argc, char **argv, int i, int def, int hi)
{
    if (argc <= i)
        return def;
    int v = atoi(argv[i]);
    if (v < 1 || v > hi) {
        fprintf(stderr, "%s: argument %d must be in 1..%d\n", prog, i, hi);
        exit(2);
    }
    return v;
}

/* Takes `--threads N` out of argv (anywhere) and sets the pool's threads
 * to N (dlrt_set_num_threads); without it, the runtime's default
 * (DLRT_NUM_THREADS, else the processors available). Returns the count. */
static int bench_threads(const char *prog, int *argc, char **argv)
{
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--threads") != 0)
            continue;
        int n = i + 1 < *argc ? atoi(argv[i + 1]) : 0;
        if (n < 1 || n > 256 || dlrt_set_num_threads(n) != 0) {
            fprintf(stderr, "%s: --threads must be in 1..256\n", prog);
            exit(2);
        }
        for (int j = i; j + 2 <= *argc; j++)
            argv[j] = argv[j + 2];
        *argc -= 2;
        break;
    }
    return dlrt_num_threads();
}

/* One call of what is timed; its loss into *loss, 0 or a DLRT_E* code. */
typedef int (*bench_step_fn)(void *ctx, float *loss);

/* Runs `rounds` rounds (1..64) of `steps` calls of fn after a warm-up
 * round, each call worth `per_step` units (samples, tokens; `unit` names
 * them on the bar); returns the median units/s. Exits 1 when fn fails. */
static double bench_measure(const char *prog, const char *name, bench_step_fn fn, void *ctx,
                            int steps, int rounds, int64_t per_step, const char *unit)
{
    double rate[64];
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    p.unit = unit;
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        char label[48];
        snprintf(label, sizeof label, "%s %d/%d", name, r + 1, rounds);
        dlrt_progress_begin(&p, steps, r < 0 ? "warm-up" : label);
        double t0 = bench_now();
        for (int s = 0; s < steps; s++) {
            float loss = 0;
            int rc = fn(ctx, &loss);
            if (rc) {
                fprintf(stderr, "%s: %s\n", prog, dlrt_strerror(rc));
                exit(1);
            }
            dlrt_progress_update(&p, s + 1, loss, per_step);
        }
        double dt = bench_now() - t0;
        dlrt_progress_end(&p);
        if (r >= 0)
            rate[r] = (double)steps * (double)per_step / dt;
    }
    qsort(rate, (size_t)rounds, sizeof *rate, bench_cmp_double);
    return rate[rounds / 2];
}

#endif
