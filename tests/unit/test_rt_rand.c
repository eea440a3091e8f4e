/* libdlrt's generator and initializers: known answers, determinism, stream
 * independence, the moments of the uniform and normal deviates, the bound
 * or spread of every initializer for dense and conv shapes, bad arguments. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checklib.h"
#include "dlrt.h"

#define N_SAMPLES 1000000

SUITE("runtime-rand");
GROUP(core, NULL, NULL, 60);

TEST(core, xoshiro_known_answers)
{
    /* the reference implementation's outputs from state {1, 2, 3, 4} */
    dlrt_rng r = {.s = {1, 2, 3, 4}};
    ck_assert_uint_eq(dlrt_rng_next(&r), 11520u);
    ck_assert_uint_eq(dlrt_rng_next(&r), 0u);
    ck_assert_uint_eq(dlrt_rng_next(&r), 1509978240u);
    ck_assert_uint_eq(dlrt_rng_next(&r), 1215971899390074240u);
}
END_TEST

TEST(core, seeding_is_pinned)
{
    /* Reproducible runs depend on this never changing; the values were
     * computed independently (a Python transcription of the algorithm). */
    dlrt_rng c;
    dlrt_rng_seed(&c, 2024, 3);
    ck_assert_uint_eq(dlrt_rng_next(&c), 0x4c449bb03eca7a66ULL);
    dlrt_rng a, b;
    dlrt_rng_seed(&a, 0, 0);
    dlrt_rng_seed(&b, 0, 0);
    uint64_t first = dlrt_rng_next(&a);
    ck_assert_uint_eq(first, 0xfb5405f7bd79c540ULL);
    ck_assert_uint_eq(first, dlrt_rng_next(&b));
    ck_assert(a.s[0] | a.s[1] | a.s[2] | a.s[3]);
    ck_assert_int_eq(a.has_spare, 0);
}
END_TEST

TEST(core, determinism_and_streams)
{
    enum { N = 4096 };
    static uint64_t x[N], y[N];
    dlrt_rng a, b;
    dlrt_rng_seed(&a, 42, 7);
    dlrt_rng_seed(&b, 42, 7);
    for (int i = 0; i < N; i++) {
        x[i] = dlrt_rng_next(&a);
        y[i] = dlrt_rng_next(&b);
    }
    ck_assert_int_eq(memcmp(x, y, sizeof x), 0);

    /* neighbouring streams and seeds: no shared outputs, ~half the bits differ */
    const uint64_t other[][2] = {{42, 8}, {42, 6}, {43, 7}, {41, 7}, {7, 42}, {42, 0}};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++) {
        dlrt_rng_seed(&b, other[k][0], other[k][1]);
        long bits = 0, equal = 0;
        for (int i = 0; i < N; i++) {
            y[i] = dlrt_rng_next(&b);
            bits += __builtin_popcountll(x[i] ^ y[i]);
            equal += x[i] == y[i];
        }
        ck_assert_int_eq(equal, 0);
        double frac = (double)bits / (64.0 * N);
        ck_assert_msg(fabs(frac - 0.5) < 0.01, "stream %zu: %.4f of bits differ", k, frac);
    }
}
END_TEST

static void moments(const double *v, long n, double *mean, double *var)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += v[i];
    double m = s / n, q = 0;
    for (long i = 0; i < n; i++)
        q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *var = q / (n - 1);
}

/* N_SAMPLES draws from U[0, 1) have its mean and variance; frees v. */
static void check_uniform_moments(double *v)
{
    double m, var;
    moments(v, N_SAMPLES, &m, &var);
    /* 5 standard errors: sd(mean) = 2.9e-4, sd(var) = 7.5e-5 */
    ck_assert_msg(fabs(m - 0.5) < 1.5e-3, "mean %g", m);
    ck_assert_msg(fabs(var - 1.0 / 12) < 4e-4, "variance %g", var);
    free(v);
}

TEST(core, uniform_double)
{
    double *v = malloc(N_SAMPLES * sizeof *v);
    ck_assert_ptr_nonnull(v);
    dlrt_rng r;
    dlrt_rng_seed(&r, 1, 2);
    /* (ck_assert in a hot loop costs a pipe write each; count instead) */
    long odd = 0, bad = 0;
    double lo = 1, hi = 0;
    for (long i = 0; i < N_SAMPLES; i++) {
        v[i] = dlrt_rng_double(&r);
        double scaled = v[i] * 0x1.0p53;
        bad += !(v[i] >= 0.0 && v[i] < 1.0) || scaled != floor(scaled); /* multiples of 2^-53 */
        odd += fmod(scaled, 2.0) == 1.0; /* ... using the last bit too */
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    ck_assert_int_eq(bad, 0);
    ck_assert(odd > N_SAMPLES / 3 && odd < 2 * N_SAMPLES / 3);
    ck_assert(lo < 1e-5 && hi > 1 - 1e-5);
    check_uniform_moments(v);
}
END_TEST

TEST(core, uniform_float)
{
    double *v = malloc(N_SAMPLES * sizeof *v);
    ck_assert_ptr_nonnull(v);
    dlrt_rng r;
    dlrt_rng_seed(&r, 3, 0);
    long odd = 0, bad = 0;
    for (long i = 0; i < N_SAMPLES; i++) {
        float f = dlrt_rng_float(&r);
        double scaled = (double)f * 0x1.0p24;
        bad += !(f >= 0.0f && f < 1.0f) || scaled != floor(scaled);
        odd += fmod(scaled, 2.0) == 1.0;
        v[i] = f;
    }
    ck_assert_int_eq(bad, 0);
    ck_assert(odd > N_SAMPLES / 3 && odd < 2 * N_SAMPLES / 3);
    check_uniform_moments(v);
}
END_TEST

TEST(core, normal_moments)
{
    double *v = malloc(N_SAMPLES * sizeof *v);
    ck_assert_ptr_nonnull(v);
    dlrt_rng r;
    dlrt_rng_seed(&r, 12345, 99);
    long within1 = 0, infinite = 0;
    double m4 = 0, m3 = 0;
    for (long i = 0; i < N_SAMPLES; i++) {
        v[i] = dlrt_rng_normal(&r);
        infinite += !isfinite(v[i]);
        within1 += fabs(v[i]) < 1.0;
        m3 += v[i] * v[i] * v[i];
        m4 += v[i] * v[i] * v[i] * v[i];
    }
    ck_assert_int_eq(infinite, 0);
    double m, var;
    moments(v, N_SAMPLES, &m, &var);
    /* 5 standard errors: sd(mean) = 1e-3, sd(var) = 1.4e-3, sd(skew) = 2.4e-3,
     * sd(kurtosis) = 4.9e-3, sd(P(|x| < 1)) = 4.7e-4 */
    ck_assert_msg(fabs(m) < 5e-3, "mean %g", m);
    ck_assert_msg(fabs(var - 1) < 7e-3, "variance %g", var);
    ck_assert_msg(fabs(m3 / N_SAMPLES) < 1.5e-2, "third moment %g", m3 / N_SAMPLES);
    ck_assert_msg(fabs(m4 / N_SAMPLES - 3) < 4e-2, "fourth moment %g", m4 / N_SAMPLES);
    double p = (double)within1 / N_SAMPLES;
    ck_assert_msg(fabs(p - 0.682689492) < 2.5e-3, "P(|x|<1) = %g", p);
    free(v);
}
END_TEST

/* The multiplicative inverse of an odd number modulo 2^64 (Newton). */
static uint64_t inverse(uint64_t a)
{
    uint64_t x = a;
    for (int i = 0; i < 6; i++)
        x *= 2 - a * x;
    return x;
}

TEST(core, normal_extremes_are_finite)
{
    /* Force the first output to 2^64-1 (uniform 1-2^-53, so 1-u = 2^-53, the
     * smallest argument log() can get) and then to 0 (1-u = 1, log = 0).
     * output = rotl(s1*5, 7)*9, so s1 = rotr(out/9, 7)/5 modulo 2^64. */
    const uint64_t outs[2] = {~0ULL, 0};
    for (int k = 0; k < 2; k++) {
        uint64_t w = outs[k] * inverse(9);
        w = (w >> 7) | (w << 57);
        dlrt_rng r = {.s = {1, w * inverse(5), 3, 4}};
        double z1 = dlrt_rng_normal(&r), z2 = dlrt_rng_normal(&r);
        ck_assert(isfinite(z1) && isfinite(z2));
        double radius = sqrt(z1 * z1 + z2 * z2);
        if (k == 0)
            ck_assert_msg(fabs(radius - sqrt(-2 * log(0x1.0p-53))) < 1e-9, "r %g", radius);
        else
            ck_assert_msg(radius == 0.0, "r %g", radius);
    }
}
END_TEST

TEST(core, fans)
{
    int64_t in, out;
    const int64_t dense[2] = {784, 256}, conv[4] = {64, 3, 5, 7}, vec[1] = {10};
    ck_assert_int_eq(dlrt_init_fans(2, dense, &in, &out), 0);
    ck_assert_int_eq(in, 784);
    ck_assert_int_eq(out, 256);
    ck_assert_int_eq(dlrt_init_fans(4, conv, &in, &out), 0);
    ck_assert_int_eq(in, 3 * 5 * 7);
    ck_assert_int_eq(out, 64 * 5 * 7);
    ck_assert_int_eq(dlrt_init_fans(1, vec, &in, &out), 0);
    ck_assert_int_eq(in, 10);
    ck_assert_int_eq(out, 10);
    ck_assert_int_eq(dlrt_init_fans(0, NULL, &in, &out), 0);
    ck_assert_int_eq(in, 1);
    ck_assert_int_eq(out, 1);
    const int64_t neg[2] = {3, -1}, huge[4] = {1, INT64_MAX, 2, 2};
    ck_assert_int_eq(dlrt_init_fans(2, neg, &in, &out), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_init_fans(4, huge, &in, &out), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_init_fans(9, conv, &in, &out), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_init_fans(-1, conv, &in, &out), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_init_fans(2, NULL, &in, &out), DLRT_EINVAL);
    ck_assert_int_eq(dlrt_init_fans(2, dense, NULL, &out), DLRT_EINVAL);
}
END_TEST

/* Initializes a tensor of each type and returns its elements as doubles,
 * after checking that the f32 values are the f64 ones rounded. */
static double *init_both(int rank, const int64_t *shape, int kind, const double *args, int nargs,
                         uint64_t stream, long *count)
{
    long n = 1;
    for (int i = 0; i < rank; i++)
        n *= shape[i];
    double *d = malloc(n * sizeof *d);
    float *f = malloc(n * sizeof *f);
    ck_assert(d && f);
    ck_assert_int_eq(dlrt_init_tensor(d, DLRT_F64, rank, shape, kind, args, nargs, 2024, stream),
                     0);
    ck_assert_int_eq(dlrt_init_tensor(f, DLRT_F32, rank, shape, kind, args, nargs, 2024, stream),
                     0);
    long differ = 0;
    for (long i = 0; i < n; i++)
        differ += f[i] != (float)d[i];
    ck_assert_int_eq(differ, 0);
    free(f);
    *count = n;
    return d;
}

static void check_uniform(int rank, const int64_t *shape, int kind, const double *args, int nargs,
                          double bound)
{
    long n;
    double *v = init_both(rank, shape, kind, args, nargs, 5, &n);
    double maxabs = 0, m, var;
    for (long i = 0; i < n; i++)
        maxabs = fmax(maxabs, fabs(v[i]));
    moments(v, n, &m, &var);
    ck_assert_msg(maxabs <= bound, "kind %d: max %.17g > bound %.17g", kind, maxabs, bound);
    ck_assert_msg(maxabs > 0.995 * bound, "kind %d: max %g, bound %g", kind, maxabs, bound);
    double sd = sqrt(var), want = bound / sqrt(3.0);
    ck_assert_msg(fabs(sd - want) < 0.03 * want, "kind %d: sd %g, want %g", kind, sd, want);
    ck_assert_msg(fabs(m) < 5 * want / sqrt((double)n), "kind %d: mean %g", kind, m);
    free(v);
}

static void check_normal(int rank, const int64_t *shape, int kind, const double *args, int nargs,
                         double mean, double std)
{
    long n;
    double *v = init_both(rank, shape, kind, args, nargs, 6, &n);
    double m, var;
    moments(v, n, &m, &var);
    double sd = sqrt(var);
    ck_assert_msg(fabs(sd - std) < 0.04 * std, "kind %d: sd %g, want %g", kind, sd, std);
    ck_assert_msg(fabs(m - mean) < 5 * std / sqrt((double)n), "kind %d: mean %g", kind, m);
    free(v);
}

static const int64_t DENSE[2] = {300, 100}, CONV[4] = {32, 16, 3, 3};

TEST(core, xavier_and_kaiming)
{
    const double gain = 1.5;
    /* dense [in=300, out=100]; conv fan_in = 16*9 = 144, fan_out = 32*9 = 288 */
    check_uniform(2, DENSE, DLRT_INIT_XAVIER_UNIFORM, NULL, 0, sqrt(6.0 / 400));
    check_uniform(2, DENSE, DLRT_INIT_XAVIER_UNIFORM, &gain, 1, gain * sqrt(6.0 / 400));
    check_uniform(4, CONV, DLRT_INIT_XAVIER_UNIFORM, &gain, 1, gain * sqrt(6.0 / 432));
    check_uniform(2, DENSE, DLRT_INIT_KAIMING_UNIFORM, NULL, 0, sqrt(2.0) * sqrt(3.0 / 300));
    check_uniform(4, CONV, DLRT_INIT_KAIMING_UNIFORM, NULL, 0, sqrt(2.0) * sqrt(3.0 / 144));
    check_normal(2, DENSE, DLRT_INIT_XAVIER_NORMAL, NULL, 0, 0, sqrt(2.0 / 400));
    check_normal(4, CONV, DLRT_INIT_XAVIER_NORMAL, &gain, 1, 0, gain * sqrt(2.0 / 432));
    check_normal(2, DENSE, DLRT_INIT_KAIMING_NORMAL, NULL, 0, 0, sqrt(2.0) / sqrt(300.0));
    check_normal(4, CONV, DLRT_INIT_KAIMING_NORMAL, NULL, 0, 0, sqrt(2.0) / sqrt(144.0));
    /* rank 1: fan_in = fan_out = n */
    const int64_t vec[1] = {5000};
    check_uniform(1, vec, DLRT_INIT_XAVIER_UNIFORM, NULL, 0, sqrt(6.0 / 10000));
    check_normal(1, vec, DLRT_INIT_KAIMING_NORMAL, NULL, 0, 0, sqrt(2.0 / 5000));
}
END_TEST

/* kaiming_*(a, mode, nonlinearity): PyTorch's calculate_gain, over the
 * fan the mode picks */
TEST(core, kaiming_modes_and_gains)
{
    static const struct {
        double nl, a, gain;
    } gains[] = {
        {0, 0, 1},
        {1, 0, 1},
        {2, 0, 5.0 / 3},
        {3, 0, 1.4142135623730951},
        {4, 0.2, 1.386750490563073},
        {5, 0, 0.75},
        {4, 0, 1.4142135623730951},
        {3, 5, 1.4142135623730951}, /* a only for leaky_relu */
    };
    for (size_t k = 0; k < sizeof gains / sizeof *gains; k++)
        for (int mode = 0; mode < 2; mode++) {
            double args[3] = {gains[k].a, mode, gains[k].nl};
            /* dense [300, 100]: fan_in 300, fan_out 100; conv: 144, 288 */
            double dense = mode ? 100 : 300, conv = mode ? 288 : 144;
            check_uniform(2, DENSE, DLRT_INIT_KAIMING_UNIFORM, args, 3,
                          gains[k].gain * sqrt(3.0 / dense));
            check_normal(4, CONV, DLRT_INIT_KAIMING_NORMAL, args, 3, 0, gains[k].gain / sqrt(conv));
        }
    /* the defaults are the old ReLU gain over fan_in */
    const double defaults[3] = {0, 0, 4};
    long n;
    double *a = init_both(2, DENSE, DLRT_INIT_KAIMING_UNIFORM, NULL, 0, 3, &n);
    double *b = init_both(2, DENSE, DLRT_INIT_KAIMING_UNIFORM, defaults, 3, 3, &n);
    ck_assert(memcmp(a, b, (size_t)n * sizeof *a) == 0);
    free(a);
    free(b);
}
END_TEST

static double upper_tail(double x)
{
    return 0.5 * erfc(x / sqrt(2.0));
}

static double pdf(double x)
{
    return exp(-x * x / 2) / 2.5066282746310002;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* truncated_normal(mean, std, a, b): every value in [a, b], the mean and
 * variance of the truncated normal (closed forms), and a Kolmogorov-
 * Smirnov distance to its CDF below the 0.1% critical value */
TEST(core, truncated_normal)
{
    static const double cases[][4] = {
        {0, 1, -2, 2},            /* PyTorch's defaults: normal proposal */
        {1, 2, 0, 5},             /* asymmetric around the mean */
        {0, 1, -0.5, 0.7},        /* narrow around 0: uniform proposal */
        {0, 1, 3, 4},             /* a tail: exponential proposal */
        {0, 1, 6, 40},            /* far tail */
        {0, 1, 8, 8.01},          /* far and narrow: uniform proposal */
        {0, 1, -5, -4.5},         /* left tail, mirrored */
        {3, 0.5, 2.9, 3.05},      /* scaled */
        {0, 1e-3, -1e306, 1e306}, /* bounds so far out they overflow to infinities */
    };
    enum { N = 20000 };
    const int64_t shape[1] = {N};
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const double *c = cases[k];
        long n;
        double *v = init_both(1, shape, DLRT_INIT_TRUNCATED_NORMAL, c, 4, k, &n);
        double lo = (c[2] - c[0]) / c[1], hi = (c[3] - c[0]) / c[1];
        double z = upper_tail(lo) - upper_tail(hi);
        double pl = isinf(lo) ? 0 : pdf(lo), ph = isinf(hi) ? 0 : pdf(hi);
        double want_m = c[0] + c[1] * (pl - ph) / z;
        double want_v = c[1] * c[1] *
                        (1 + ((isinf(lo) ? 0 : lo * pl) - (isinf(hi) ? 0 : hi * ph)) / z -
                         ((pl - ph) / z) * ((pl - ph) / z));
        double m, var;
        moments(v, n, &m, &var);
        for (long i = 0; i < n; i++)
            ck_assert_msg(v[i] >= c[2] && v[i] <= c[3], "case %zu: %g outside", k, v[i]);
        ck_assert_msg(fabs(m - want_m) < 5 * sqrt(want_v / n), "case %zu: mean %.9g, want %.9g", k,
                      m, want_m);
        ck_assert_msg(fabs(var - want_v) < 0.05 * want_v, "case %zu: var %.9g, want %.9g", k, var,
                      want_v);
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        double d = 0;
        for (long i = 0; i < n; i++) {
            double f = (upper_tail(lo) - upper_tail((v[i] - c[0]) / c[1])) / z;
            d = fmax(d, fmax(fabs(f - (double)i / n), fabs(f - (double)(i + 1) / n)));
        }
        ck_assert_msg(d < 1.95 / sqrt((double)n), "case %zu: KS distance %g", k, d);
        free(v);
    }
}
END_TEST

TEST(core, f32_respects_bound)
{
    /* rounding to float may only reach the bound rounded to float */
    float f[4096];
    const int64_t shape[2] = {64, 64};
    ck_assert_int_eq(
        dlrt_init_tensor(f, DLRT_F32, 2, shape, DLRT_INIT_KAIMING_UNIFORM, NULL, 0, 9, 1), 0);
    float bound = (float)(sqrt(2.0) * sqrt(3.0 / 64));
    int over = 0;
    for (int i = 0; i < 4096; i++)
        over += fabsf(f[i]) > bound;
    ck_assert_int_eq(over, 0);
}
END_TEST

TEST(core, simple_initializers)
{
    const int64_t shape[3] = {4, 5, 6};
    double d[120];
    float f[120];
    ck_assert_int_eq(dlrt_init_tensor(d, DLRT_F64, 3, shape, DLRT_INIT_ONES, NULL, 0, 1, 1), 0);
    for (int i = 0; i < 120; i++)
        ck_assert(d[i] == 1.0);
    ck_assert_int_eq(dlrt_init_tensor(d, DLRT_F64, 3, shape, DLRT_INIT_ZEROS, NULL, 0, 1, 1), 0);
    for (int i = 0; i < 120; i++)
        ck_assert(d[i] == 0.0 && !signbit(d[i]));
    const double c = -0.25;
    ck_assert_int_eq(dlrt_init_tensor(f, DLRT_F32, 3, shape, DLRT_INIT_CONSTANT, &c, 1, 1, 1), 0);
    for (int i = 0; i < 120; i++)
        ck_assert(f[i] == -0.25f);
    /* a scalar */
    double s = 7;
    ck_assert_int_eq(dlrt_init_tensor(&s, DLRT_F64, 0, NULL, DLRT_INIT_ZEROS, NULL, 0, 1, 1), 0);
    ck_assert(s == 0.0);
    ck_assert_int_eq(
        dlrt_init_tensor(&s, DLRT_F64, 0, NULL, DLRT_INIT_XAVIER_UNIFORM, NULL, 0, 1, 1), 0);
    ck_assert(fabs(s) <= sqrt(3.0) && s != 0.0);
    /* an empty tensor writes nothing, even through NULL */
    const int64_t empty[2] = {0, 5};
    ck_assert_int_eq(
        dlrt_init_tensor(NULL, DLRT_F32, 2, empty, DLRT_INIT_KAIMING_NORMAL, NULL, 0, 1, 1), 0);
}
END_TEST

TEST(core, uniform_and_normal)
{
    const int64_t shape[1] = {200000};
    const double ab[2] = {-3, 5};
    long n;
    double *v = init_both(1, shape, DLRT_INIT_UNIFORM, ab, 2, 1, &n);
    double lo = 1e9, hi = -1e9, m, var;
    for (long i = 0; i < n; i++) {
        lo = fmin(lo, v[i]);
        hi = fmax(hi, v[i]);
    }
    moments(v, n, &m, &var);
    ck_assert(lo >= -3 && lo < -2.999);
    ck_assert(hi < 5 && hi > 4.999);
    ck_assert_msg(fabs(m - 1) < 5 * 8 / sqrt(12.0 * n), "mean %g", m);
    ck_assert_msg(fabs(var - 64 / 12.0) < 0.03 * 64 / 12.0, "variance %g", var);
    free(v);
    /* defaults: uniform() is U(0, 1), normal() is N(0, 1) */
    v = init_both(1, shape, DLRT_INIT_UNIFORM, NULL, 0, 1, &n);
    moments(v, n, &m, &var);
    ck_assert(fabs(m - 0.5) < 0.005 && fabs(var - 1 / 12.0) < 0.002);
    free(v);
    const double ms[2] = {2, 0.5};
    check_normal(1, shape, DLRT_INIT_NORMAL, ms, 2, 2, 0.5);
    check_normal(1, shape, DLRT_INIT_NORMAL, NULL, 0, 0, 1);
    const double mean_only = -1;
    check_normal(1, shape, DLRT_INIT_NORMAL, &mean_only, 1, -1, 1);
}
END_TEST

TEST(core, streams_give_different_tensors)
{
    const int64_t shape[2] = {16, 16};
    double a[256], b[256], c[256];
    ck_assert_int_eq(dlrt_init_tensor(a, DLRT_F64, 2, shape, DLRT_INIT_NORMAL, NULL, 0, 1, 0), 0);
    ck_assert_int_eq(dlrt_init_tensor(b, DLRT_F64, 2, shape, DLRT_INIT_NORMAL, NULL, 0, 1, 0), 0);
    ck_assert_int_eq(dlrt_init_tensor(c, DLRT_F64, 2, shape, DLRT_INIT_NORMAL, NULL, 0, 1, 1), 0);
    ck_assert_int_eq(memcmp(a, b, sizeof a), 0);
    int same = 0;
    for (int i = 0; i < 256; i++)
        same += a[i] == c[i];
    ck_assert_int_eq(same, 0);
    ck_assert_int_eq(dlrt_init_tensor(c, DLRT_F64, 2, shape, DLRT_INIT_NORMAL, NULL, 0, 2, 0), 0);
    for (int i = 0; i < 256; i++)
        same += a[i] == c[i];
    ck_assert_int_eq(same, 0);
}
END_TEST

TEST(core, bad_arguments)
{
    const int64_t shape[2] = {3, 4}, neg[2] = {3, -4}, huge[2] = {INT64_MAX, 4};
    double buf[12];
    for (int i = 0; i < 12; i++)
        buf[i] = 1234.5;
    const double nan2[2] = {NAN, 1}, inf1[1] = {INFINITY}, swapped[2] = {1, 0}, negstd[2] = {0, -1};
    const double three[3] = {0, 1, 2}, wide[2] = {-1.5e308, 1.5e308};
    const double bad_mode[3] = {0, 2, 4}, bad_nl[3] = {0, 0, 6}, half_nl[3] = {0, 0, 2.5};
    const double four[4] = {0, 0, 4, 0}, five[5] = {0, 1, -2, 2, 0};
    const double tn_swapped[4] = {0, 1, 2, -2}, tn_empty[4] = {0, 1, 1, 1};
    const double tn_zero_std[4] = {0, 0, -1, 1};
    struct {
        void *data;
        dlrt_dtype t;
        int rank;
        const int64_t *shape;
        int kind;
        const double *args;
        int nargs;
    } bad[] = {
        {NULL, DLRT_F64, 2, shape, DLRT_INIT_ONES, NULL, 0},
        {buf, DLRT_I32, 2, shape, DLRT_INIT_ZEROS, NULL, 0},
        {buf, (dlrt_dtype)7, 2, shape, DLRT_INIT_ZEROS, NULL, 0},
        {buf, DLRT_F64, 2, shape, -1, NULL, 0},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_COUNT, NULL, 0},
        {buf, DLRT_F64, -1, shape, DLRT_INIT_ONES, NULL, 0},
        {buf, DLRT_F64, DLRT_MAX_RANK + 1, shape, DLRT_INIT_ONES, NULL, 0},
        {buf, DLRT_F64, 2, NULL, DLRT_INIT_ONES, NULL, 0},
        {buf, DLRT_F64, 2, neg, DLRT_INIT_ONES, NULL, 0},
        {buf, DLRT_F64, 2, huge, DLRT_INIT_ONES, NULL, 0},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_CONSTANT, NULL, 0},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_CONSTANT, NULL, 1},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_ONES, three, 1},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_UNIFORM, three, 3},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_UNIFORM, nan2, 2},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_UNIFORM, swapped, 2},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_UNIFORM, wide, 2},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_NORMAL, negstd, 2},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_NORMAL, inf1, 1},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_XAVIER_UNIFORM, inf1, 1},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_XAVIER_NORMAL, three, 2},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_KAIMING_UNIFORM, bad_mode, 3},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_KAIMING_NORMAL, bad_nl, 3},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_KAIMING_NORMAL, half_nl, 3},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_KAIMING_UNIFORM, four, 4},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_TRUNCATED_NORMAL, tn_swapped, 4},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_TRUNCATED_NORMAL, tn_empty, 4},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_TRUNCATED_NORMAL, tn_zero_std, 4},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_TRUNCATED_NORMAL, five, 5},
        {buf, DLRT_F64, 2, shape, DLRT_INIT_ZEROS, NULL, -1},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int rc = dlrt_init_tensor(bad[k].data, bad[k].t, bad[k].rank, bad[k].shape, bad[k].kind,
                                  bad[k].args, bad[k].nargs, 1, 1);
        ck_assert_msg(rc == DLRT_EINVAL, "case %zu: %d", k, rc);
        for (int i = 0; i < 12; i++)
            ck_assert_msg(buf[i] == 1234.5, "case %zu wrote the buffer", k);
    }
}
END_TEST
