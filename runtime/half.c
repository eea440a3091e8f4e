/*
 * Conversions between float and the two half-precision storage types,
 * IEEE binary16 (f16: 5 exponent bits, 10 fraction bits) and bfloat16
 * (bf16: float's upper 16 bits). They work on the bits, so they give the
 * same results on every target and in every rounding mode; codegen/half.c
 * emits the same algorithms for generated code, and tests/unit/test_half.c
 * checks both against a reference in double over every bit pattern.
 */
#include "dlrt.h"

#include <string.h>

static uint32_t bits_of(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float float_of(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* q with the r low bits of m shifted out, rounded to nearest even */
static uint32_t shift_rne(uint32_t m, int r)
{
    uint32_t q = m >> r, rem = m & ((1u << r) - 1), half = 1u << (r - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t dlrt_f16_from_f32(float f)
{
    uint32_t x = bits_of(f), a = x & 0x7fffffff;
    uint16_t sign = (uint16_t)(x >> 16 & 0x8000);
    if (a > 0x7f800000) /* NaN: quiet, the payload's top bits kept */
        return (uint16_t)(sign | 0x7e00 | (a >> 13 & 0x3ff));
    if (a >= 0x477ff000) /* 65520, halfway from 65504 to 2^16, and above */
        return sign | 0x7c00;
    if (a >= 0x38800000) /* normal: rebias the exponent by 127 - 15 */
        return (uint16_t)(sign | shift_rne(a - 0x38000000, 13));
    int e = (int)(a >> 23); /* subnormal or zero: units of 2^-24 */
    if (e < 102)            /* below 2^-25, at most half the least subnormal */
        return sign;
    return (uint16_t)(sign | shift_rne((a & 0x7fffff) | 0x800000, 126 - e));
}

float dlrt_f32_from_f16(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h >> 10 & 0x1f, m = h & 0x3ff;
    if (e == 0x1f) /* infinity, or a NaN made quiet */
        return float_of(sign | 0x7f800000 | (m << 13) | (m ? 0x400000 : 0));
    if (e == 0) { /* m * 2^-24, exact in float */
        float v = (float)m * 0x1p-24f;
        return sign ? -v : v;
    }
    return float_of(sign | (e + 112) << 23 | m << 13);
}

uint16_t dlrt_bf16_from_f32(float f)
{
    uint32_t x = bits_of(f);
    if ((x & 0x7fffffff) > 0x7f800000)
        return (uint16_t)(x >> 16 | 0x40);
    /* overflow carries into the exponent and ends at infinity */
    return (uint16_t)((x + 0x7fff + (x >> 16 & 1)) >> 16);
}

float dlrt_f32_from_bf16(uint16_t h)
{
    uint32_t x = (uint32_t)h << 16;
    if ((x & 0x7fffffff) > 0x7f800000)
        x |= 0x400000;
    return float_of(x);
}
