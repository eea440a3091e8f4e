/* Shared by the training drivers: value comparisons that count failures
 * (and print the first few), and the data the drivers feed their models.
 * Tolerances are relative to max(1, |want|), so they are absolute for
 * small values. */
#ifndef TRAIN_CHECK_H
#define TRAIN_CHECK_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

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

#endif
