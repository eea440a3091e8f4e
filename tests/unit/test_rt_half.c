/* libdlrt's half-precision conversions against the reference in double
 * (tests/common/half_ref.h): widening every one of the 65536 patterns of
 * each format; narrowing each pattern's value, the midpoints to its
 * neighbour (ties, to even) and the floats just either side of them,
 * subnormals, overflow and NaN; and a sweep of float bit patterns. */
#include <check.h>
#include <math.h>
#include <string.h>

#include "../common/half_ref.h"
#include "checklib.h"
#include "dlrt.h"

SUITE("runtime-half");
GROUP(half, NULL, NULL, 60);

static uint16_t narrow(bool bf, float f)
{
    return bf ? dlrt_bf16_from_f32(f) : dlrt_f16_from_f32(f);
}

static float widen(bool bf, uint16_t h)
{
    return bf ? dlrt_f32_from_bf16(h) : dlrt_f32_from_f16(h);
}

static uint32_t bits(float f)
{
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    return x;
}

static float from_bits(uint32_t x)
{
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* narrowing f agrees with the reference; NaNs: a quiet NaN of f's sign */
static void check_narrow(bool bf, float f)
{
    uint16_t got = narrow(bf, f), want = half_ref_round(bf, f);
    if (isnan(f)) {
        uint16_t quiet = bf ? 0x7fc0 : 0x7e00;
        ck_assert_msg((got & quiet) == quiet && (got & 0x8000) == (want & 0x8000),
                      "%s(NaN %08x) = %04x", bf ? "bf16" : "f16", bits(f), got);
        return;
    }
    ck_assert_msg(got == want, "%s(%a = %08x) = %04x, want %04x", bf ? "bf16" : "f16", (double)f,
                  bits(f), got, want);
}

static void widen_all(bool bf)
{
    for (uint32_t p = 0; p < 65536; p++) {
        double want = half_ref_value(bf, (uint16_t)p);
        float got = widen(bf, (uint16_t)p);
        if (isnan(want)) {
            ck_assert_msg(isnan(got) && (bits(got) & 0x400000) && !signbit(got) == !(p & 0x8000),
                          "%04x widens to %08x", p, bits(got));
        } else {
            ck_assert_msg((double)got == want && !signbit(got) == !signbit(want),
                          "%04x widens to %a, want %a", p, (double)got, want);
        }
    }
}

static void narrow_all(bool bf)
{
    uint16_t inf = bf ? 0x7f80 : 0x7c00;
    for (uint32_t p = 0; p < 65536; p++) {
        uint16_t h = (uint16_t)p;
        if ((h & 0x7fff) > inf) { /* a NaN pattern widened and back */
            check_narrow(bf, widen(bf, h));
            continue;
        }
        float v = widen(bf, h);
        check_narrow(bf, v);
        ck_assert_uint_eq(narrow(bf, v), h); /* the round trip is exact */
        check_narrow(bf, nextafterf(v, 0));
        check_narrow(bf, nextafterf(v, v < 0 ? -INFINITY : INFINITY));
        if ((h & 0x7fff) == inf)
            continue;
        /* the midpoint to the next pattern away from zero (past the
         * largest finite value: to 2^16 or 2^128, exactly a tie) */
        double next = (h & 0x7fff) + 1 == inf ? (bf ? ldexp(1, 128) : 65536)
                                              : fabs(half_ref_value(bf, (uint16_t)(h + 1)));
        double mid = (fabs((double)v) + next) / 2 * (signbit(v) ? -1 : 1);
        float m = (float)mid;
        if (isinf(m))
            continue; /* bf16's midpoint to 2^128 is not a float */
        ck_assert_msg((double)m == mid, "midpoint %a not a float", mid);
        check_narrow(bf, m);
        check_narrow(bf, nextafterf(m, 0));
        check_narrow(bf, nextafterf(m, INFINITY));
        check_narrow(bf, nextafterf(m, -INFINITY));
    }
}

TEST(half, f16_widen_every_pattern)
{
    widen_all(false);
}
END_TEST

TEST(half, bf16_widen_every_pattern)
{
    widen_all(true);
}
END_TEST

TEST(half, f16_narrow_every_pattern_and_tie)
{
    narrow_all(false);
}
END_TEST

TEST(half, bf16_narrow_every_pattern_and_tie)
{
    narrow_all(true);
}
END_TEST

TEST(half, narrow_known_values)
{
    /* ties to even: 1 + 2^-11 lies halfway between 1 and 1 + 2^-10 */
    ck_assert_uint_eq(dlrt_f16_from_f32(1 + 0x1p-11f), 0x3c00);
    ck_assert_uint_eq(dlrt_f16_from_f32(1 + 3 * 0x1p-11f), 0x3c02);
    ck_assert_uint_eq(dlrt_f16_from_f32(65504), 0x7bff);
    ck_assert_uint_eq(dlrt_f16_from_f32(65519.99f), 0x7bff);
    ck_assert_uint_eq(dlrt_f16_from_f32(65520), 0x7c00);
    ck_assert_uint_eq(dlrt_f16_from_f32(-INFINITY), 0xfc00);
    ck_assert_uint_eq(dlrt_f16_from_f32(0x1p-24f), 0x0001); /* least subnormal */
    ck_assert_uint_eq(dlrt_f16_from_f32(0x1p-25f), 0x0000); /* a tie, to even 0 */
    ck_assert_uint_eq(dlrt_f16_from_f32(-0x1.000002p-25f), 0x8001);
    ck_assert_uint_eq(dlrt_f16_from_f32(-0.0f), 0x8000);
    ck_assert_uint_eq(dlrt_bf16_from_f32(1 + 0x1p-8f), 0x3f80);
    ck_assert_uint_eq(dlrt_bf16_from_f32(1 + 3 * 0x1p-8f), 0x3f82);
    ck_assert_uint_eq(dlrt_bf16_from_f32(3.4028235e38f), 0x7f80);         /* FLT_MAX rounds up */
    ck_assert_uint_eq(dlrt_bf16_from_f32(from_bits(0x7f800001)), 0x7fc0); /* sNaN quieted */
    ck_assert_uint_eq(dlrt_bf16_from_f32(from_bits(0xff800001)), 0xffc0);
    ck_assert_uint_eq(dlrt_f16_from_f32(from_bits(0x7f800001)), 0x7e00);
    ck_assert(dlrt_f32_from_f16(0x3555) == 0x1.554p-2f);
    ck_assert(dlrt_f32_from_bf16(0xc049) == -3.140625f);
}
END_TEST

/* every 65521st float bit pattern (65521 is prime: every residue of the
 * low 16 bits, the ones rounding looks at, occurs), both formats */
TEST(half, float_sweep)
{
    for (uint64_t x = 0; x < (1ull << 32); x += 65521) {
        check_narrow(false, from_bits((uint32_t)x));
        check_narrow(true, from_bits((uint32_t)x));
    }
}
END_TEST
