/*
 * half_ref.h: the half-precision formats in double, for the tests: the
 * value of an f16 or bf16 bit pattern from its definition, and rounding a
 * double to the nearest one by binary search over the ordered patterns
 * (ties to the even pattern; values past the largest finite one round
 * against 2^16 or 2^128, as if the exponent went on, and give infinity).
 * Independent of the bit manipulation in runtime/half.c and codegen/half.c.
 */
#ifndef TESTS_HALF_REF_H
#define TESTS_HALF_REF_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>

/* bf16 when bf, else f16: exponent bits, fraction bits */
static inline double half_ref_value(bool bf, uint16_t h)
{
    int fb = bf ? 7 : 10, eb = bf ? 8 : 5, bias = (1 << (eb - 1)) - 1;
    int e = h >> fb & ((1 << eb) - 1);
    double m = h & ((1 << fb) - 1), s = h >> 15 ? -1 : 1;
    if (e == (1 << eb) - 1)
        return m ? NAN : s * INFINITY;
    if (e == 0)
        return s * ldexp(m, 1 - bias - fb);
    return s * ldexp(1 + ldexp(m, -fb), e - bias);
}

/* the pattern nearest to v */
static inline uint16_t half_ref_round(bool bf, double v)
{
    uint16_t inf = bf ? 0x7f80 : 0x7c00, sign = signbit(v) ? 0x8000 : 0;
    if (isnan(v))
        return (uint16_t)(sign | inf | (bf ? 0x40 : 0x200));
    double a = fabs(v), top = bf ? ldexp(1, 128) : 65536;
    if (a >= top)
        return sign | inf;
    /* the largest p in [0, inf) with value(p) <= a; value(inf) taken as top */
    unsigned lo = 0, hi = inf;
    while (hi - lo > 1) {
        unsigned mid = (lo + hi) / 2;
        if (half_ref_value(bf, (uint16_t)mid) <= a)
            lo = mid;
        else
            hi = mid;
    }
    double below = half_ref_value(bf, (uint16_t)lo);
    double above = lo + 1 == inf ? top : half_ref_value(bf, (uint16_t)(lo + 1));
    unsigned p = lo;
    if (a - below > above - a || (a - below == above - a && (lo & 1)))
        p = lo + 1;
    return (uint16_t)(sign | p);
}

/* v rounded to the format, as a double (NaN stays NaN) */
static inline double half_ref_quantize(bool bf, double v)
{
    return half_ref_value(bf, half_ref_round(bf, v));
}

#endif
