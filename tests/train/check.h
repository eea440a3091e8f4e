/* Shared by the training drivers: value comparisons that count failures
 * (and print the first few), the data the drivers feed their models, and
 * the frame of the drivers that run with and without input checks.
 * Tolerances are relative to max(1, |want|), so they are absolute for
 * small values. */
#ifndef TRAIN_CHECK_H
#define TRAIN_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlrt.h>

static int failures;

static inline void expect(const char *what, int cond)
{
    if (!cond) {
        if (failures < 30)
            fprintf(stderr, "failed: %s\n", what);
        failures++;
    }
}

static inline int near(const char *what, int i, double got, double want, double tol)
{
    double scale = fabs(want) > 1 ? fabs(want) : 1;
    if (!(fabs(got - want) <= tol * scale)) {
        if (failures < 30)
            fprintf(stderr, "%s[%d]: got %.17g, want %.17g (diff %.3g, tol %.3g)\n", what, i, got,
                    want, got - want, tol * scale);
        failures++;
        return 0;
    }
    return 1;
}

/* A reproducible value in [-1, 1) for (stream, index): a 64-bit mix, not
 * the runtime's RNG, so the data do not depend on the code under test. */
static inline double data_value(uint64_t stream, uint64_t i)
{
    uint64_t z = stream * 0x9E3779B97F4A7C15u + i * 0xBF58476D1CE4E5B9u + 0x94D049BB133111EBu;
    z ^= z >> 31;
    z *= 0xD6E9D3A1C4A7E5B5u;
    z ^= z >> 29;
    z *= 0x94D049BB133111EBu;
    z ^= z >> 32;
    return (double)(z >> 11) / 4503599627370496.0 - 1.0;
}

/* n values of stream (data_value) at p */
static inline void fill_data(float *p, int n, uint64_t stream)
{
    for (int i = 0; i < n; i++)
        p[i] = (float)data_value(stream, (uint64_t)i);
}

/* `run checks` (1) or `run no-checks` (0: the model was compiled with
 * --no-checks); -1, with the usage said, for anything else. */
static inline int check_mode(int argc, char **argv)
{
    if (argc != 2 || (strcmp(argv[1], "checks") && strcmp(argv[1], "no-checks"))) {
        fprintf(stderr, "usage: run checks|no-checks\n");
        return -1;
    }
    return strcmp(argv[1], "checks") == 0;
}

/* A copy of the instance's bytes (NAME_STATE_BYTES), to compare with
 * after a refused call; free it. */
static inline unsigned char *state_copy(const void *m, size_t bytes)
{
    unsigned char *s = malloc(bytes);
    if (!s)
        abort();
    memcpy(s, m, bytes);
    return s;
}

/* Whether the instance m is its copy s but for the arena of intermediate
 * values, which the kernels of a step refused at the loss may write. */
static inline int same_but_arena(const dlrt_model_info *info, const void *m, const unsigned char *s,
                                 size_t bytes)
{
    const unsigned char *b = m;
    size_t end = info->arena_offset + info->arena_bytes;
    return memcmp(b, s, info->arena_offset) == 0 && memcmp(b + end, s + end, bytes - end) == 0;
}

/* main's result: 0 when every check held, else 1 with the count said. */
static inline int report(void)
{
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}

#endif
