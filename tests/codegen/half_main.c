/* Drives half.o: the generated f16 and bf16 conversions (codegen/half.c)
 * against the reference in f64 (tests/common/half_ref.h). Widening: all
 * 65536 patterns of each format, values and signs exact, NaNs quiet NaNs
 * of their sign. Narrowing: for every pattern, its value, the floats next
 * to it, the midpoint to the next pattern away from zero (a tie: to even)
 * and the floats next to that, which covers subnormals, overflow (the
 * midpoint past the largest finite value) and NaN. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/half_ref.h"
#include "half.h"

enum { P = 65536, K = 8 };

static int failures;
static uint16_t h[P], hb[P], nf[P * K], nb[P * K];
static float wf[P], wb[P], xf[P * K], xb[P * K];

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* K floats around pattern p's value in format bf */
static void around(bool bf, uint16_t p, float *x)
{
    double v = half_ref_value(bf, p), a = fabs(v), s = p & 0x8000 ? -1 : 1;
    uint16_t mag = p & 0x7fff, inf = bf ? 0x7f80 : 0x7c00;
    double next = mag + 1 == inf ? (bf ? ldexp(1, 128) : 65536)
                  : mag >= inf   ? a
                                 : fabs(half_ref_value(bf, (uint16_t)(p + 1)));
    float m = (float)(s * (a + next) / 2);
    x[0] = isnan(v) ? copysignf(NAN, (float)s) : (float)v;
    x[1] = nextafterf(x[0], 0);
    x[2] = nextafterf(x[0], x[0] < 0 ? -INFINITY : INFINITY);
    x[3] = m;
    x[4] = nextafterf(m, 0);
    x[5] = nextafterf(m, m < 0 ? -INFINITY : INFINITY);
    x[6] = -x[3];
    x[7] = -x[0];
}

static void check_narrow(const char *what, bool bf, const float *x, const uint16_t *got)
{
    uint16_t quiet = bf ? 0x7fc0 : 0x7e00;
    for (int i = 0; i < P * K; i++) {
        uint16_t want = half_ref_round(bf, x[i]);
        int ok = isnan(x[i]) ? (got[i] & quiet) == quiet && (got[i] >> 15) == (want >> 15)
                             : got[i] == want;
        if (!ok && failures++ < 20)
            fprintf(stderr, "%s(%a = %08x): got %04x, want %04x\n", what, (double)x[i], bits(x[i]),
                    got[i], want);
    }
}

static void check_widen(const char *what, bool bf, const uint16_t *p, const float *got)
{
    for (int i = 0; i < P; i++) {
        double want = half_ref_value(bf, p[i]);
        int ok = isnan(want) ? isnan(got[i]) && (bits(got[i]) & 0x400000) &&
                                   !signbit(got[i]) == !(p[i] & 0x8000)
                             : (double)got[i] == want && !signbit(got[i]) == !signbit(want);
        if (!ok && failures++ < 20)
            fprintf(stderr, "%s(%04x): got %a, want %a\n", what, p[i], (double)got[i], want);
    }
}

int main(void)
{
    for (int p = 0; p < P; p++) {
        h[p] = hb[p] = (uint16_t)p;
        around(false, (uint16_t)p, xf + p * K);
        around(true, (uint16_t)p, xb + p * K);
    }
    half *m = half_create(1);
    if (!m || half_forward(m, h, hb, xf, xb, wf, wb, nf, nb) != 0) {
        fprintf(stderr, "half: create or forward failed\n");
        return 1;
    }
    check_widen("f16 to f32", false, h, wf);
    check_widen("bf16 to f32", true, hb, wb);
    check_narrow("f32 to f16", false, xf, nf);
    check_narrow("f32 to bf16", true, xb, nb);
    half_destroy(m);
    if (failures)
        fprintf(stderr, "half: %d failures\n", failures);
    return failures != 0;
}
