/*
 * The deterministic generator (xoshiro256**, seeded through splitmix64) and
 * the parameter initializers built on it.
 *
 * Seeding: h = mix(mix(seed) ^ (stream + GOLDEN)), where mix is the
 * splitmix64 finalizer (a bijection of 64-bit words); the four state words
 * are the next four outputs of a splitmix64 sequence started at h. For a
 * fixed seed the map stream -> h is a bijection, so two streams never share
 * a starting point, and splitmix64's avalanche makes neighbouring streams
 * look unrelated. Initializers validate every argument before writing one
 * element, so a rejected call leaves the buffer as it was.
 */
#include "dlrt.h"

#include <math.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL
#define TWO_PI 6.283185307179586476925286766559

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t splitmix64(uint64_t *x)
{
    *x += GOLDEN;
    return mix64(*x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void dlrt_rng_seed(dlrt_rng *rng, uint64_t seed, uint64_t stream)
{
    if (!rng)
        return;
    uint64_t x = mix64(mix64(seed) ^ (stream + GOLDEN));
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
    /* xoshiro's one forbidden state; splitmix64 essentially never yields it */
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0)
        rng->s[0] = GOLDEN;
    rng->spare = 0;
    rng->has_spare = 0;
}

uint64_t dlrt_rng_next(dlrt_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double dlrt_rng_double(dlrt_rng *rng)
{
    return (double)(dlrt_rng_next(rng) >> 11) * 0x1.0p-53;
}

float dlrt_rng_float(dlrt_rng *rng)
{
    return (float)(dlrt_rng_next(rng) >> 40) * 0x1.0p-24f;
}

double dlrt_rng_normal(dlrt_rng *rng)
{
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare;
    }
    /* u1 in (0, 1]: log(u1) is finite and -2 log(u1) <= 2*53*log(2) */
    double u1 = 1.0 - dlrt_rng_double(rng);
    double u2 = dlrt_rng_double(rng);
    double r = sqrt(-2.0 * log(u1));
    double theta = TWO_PI * u2;
    rng->spare = r * sin(theta);
    rng->has_spare = 1;
    return r * cos(theta);
}

int dlrt_init_fans(int rank, const int64_t *shape, int64_t *fan_in, int64_t *fan_out)
{
    if (!fan_in || !fan_out || rank < 0 || rank > DLRT_MAX_RANK || (rank > 0 && !shape))
        return DLRT_EINVAL;
    for (int i = 0; i < rank; i++)
        if (shape[i] < 0)
            return DLRT_EINVAL;
    int64_t in = 1, out = 1;
    if (rank == 1) {
        in = out = shape[0];
    } else if (rank == 2) {
        in = shape[0];
        out = shape[1];
    } else if (rank >= 3) {
        int64_t field = 1;
        for (int i = 2; i < rank; i++)
            if (__builtin_mul_overflow(field, shape[i], &field))
                return DLRT_EINVAL;
        if (__builtin_mul_overflow(shape[1], field, &in) ||
            __builtin_mul_overflow(shape[0], field, &out))
            return DLRT_EINVAL;
    }
    *fan_in = in;
    *fan_out = out;
    return DLRT_OK;
}

/* How many arguments each initializer takes (at most) and requires. */
static const struct {
    int max, min;
    double defaults[4];
} init_args[DLRT_INIT_COUNT] = {
    /* clang-format off */
    [DLRT_INIT_ZEROS] = {0, 0, {0}},
    [DLRT_INIT_ONES] = {0, 0, {0}},
    [DLRT_INIT_CONSTANT] = {1, 1, {0}},
    [DLRT_INIT_UNIFORM] = {2, 0, {0, 1}},
    [DLRT_INIT_NORMAL] = {2, 0, {0, 1}},
    [DLRT_INIT_XAVIER_UNIFORM] = {1, 0, {1}},
    [DLRT_INIT_XAVIER_NORMAL] = {1, 0, {1}},
    [DLRT_INIT_KAIMING_UNIFORM] = {3, 0, {0, 0, 4}},
    [DLRT_INIT_KAIMING_NORMAL] = {3, 0, {0, 0, 4}},
    [DLRT_INIT_TRUNCATED_NORMAL] = {4, 0, {0, 1, -2, 2}},
    /* clang-format on */
};

/* PyTorch's torch.nn.init.calculate_gain; NAN for an unknown one */
static double kaiming_gain(double nonlinearity, double a)
{
    switch ((int)nonlinearity == nonlinearity ? (int)nonlinearity : -1) {
    case 0:           /* linear */
    case 1: return 1; /* sigmoid */
    case 2: return 5.0 / 3;
    case 3: return sqrt(2.0);
    case 4: return sqrt(2.0 / (1 + a * a));
    case 5: return 0.75;
    default: return NAN;
    }
}

/* A standard normal conditioned on [lo, hi], lo < hi (Robert, "Simulation
 * of truncated normal variables", 1995): a normal proposal when the
 * interval holds 0 and is wide, an exponential one for a wide tail, a
 * uniform one otherwise; each accepts often enough (over 1/2 or so) that
 * the loops end quickly whatever the interval. */
static double truncated_normal(dlrt_rng *rng, double lo, double hi)
{
    if (hi <= 0) /* the left tail: mirror it */
        return -truncated_normal(rng, -hi, -lo);
    if (lo <= 0 && hi - lo >= 2.5066282746310002) { /* sqrt(2 pi) */
        for (;;) {
            double x = dlrt_rng_normal(rng);
            if (x >= lo && x <= hi)
                return x;
        }
    }
    if (lo > 0) {
        double lambda = (lo + sqrt(lo * lo + 4)) / 2;
        double limit =
            2 / (lo + sqrt(lo * lo + 4)) * exp((lo * lo - lo * sqrt(lo * lo + 4)) / 4 + 0.5);
        if (hi - lo > limit) {
            for (;;) {
                /* 1 - u in (0, 1]: log is finite */
                double x = lo - log(1.0 - dlrt_rng_double(rng)) / lambda;
                double d = x - lambda;
                if (x <= hi && dlrt_rng_double(rng) <= exp(-d * d / 2))
                    return x;
            }
        }
    }
    /* uniform proposal; m2 the least x^2 on the interval */
    double m2 = lo > 0 ? lo * lo : 0;
    for (;;) {
        double x = lo + (hi - lo) * dlrt_rng_double(rng);
        if (dlrt_rng_double(rng) <= exp((m2 - x * x) / 2))
            return x;
    }
}

/* Half-precision tensors get the f32 value rounded again: the parameters
 * of an f32 model of the same seed, converted as by model.half(). */
static void store(void *data, dlrt_dtype t, size_t i, double v)
{
    if (t == DLRT_F32)
        ((float *)data)[i] = (float)v;
    else if (t == DLRT_F16)
        ((uint16_t *)data)[i] = dlrt_f16_from_f32((float)v);
    else if (t == DLRT_BF16)
        ((uint16_t *)data)[i] = dlrt_bf16_from_f32((float)v);
    else
        ((double *)data)[i] = v;
}

int dlrt_init_tensor(void *data, dlrt_dtype t, int rank, const int64_t *shape, int kind,
                     const double *args, int nargs, uint64_t seed, uint64_t stream)
{
    if (t != DLRT_F32 && t != DLRT_F64 && t != DLRT_F16 && t != DLRT_BF16)
        return DLRT_EINVAL;
    if (kind < 0 || kind >= DLRT_INIT_COUNT)
        return DLRT_EINVAL;
    if (nargs < init_args[kind].min || nargs > init_args[kind].max || (nargs > 0 && !args))
        return DLRT_EINVAL;
    int64_t fan_in, fan_out;
    int rc = dlrt_init_fans(rank, shape, &fan_in, &fan_out);
    if (rc)
        return rc;
    size_t count = 1;
    for (int i = 0; i < rank; i++)
        if ((uint64_t)shape[i] > SIZE_MAX ||
            __builtin_mul_overflow(count, (size_t)shape[i], &count))
            return DLRT_EINVAL;
    if (count > SIZE_MAX / dlrt_dtype_size(t))
        return DLRT_EINVAL;
    double a[4];
    for (int i = 0; i < 4; i++)
        a[i] = init_args[kind].defaults[i];
    for (int i = 0; i < nargs; i++) {
        if (!isfinite(args[i]))
            return DLRT_EINVAL;
        a[i] = args[i];
    }
    if (kind == DLRT_INIT_UNIFORM && a[0] > a[1])
        return DLRT_EINVAL;
    if (kind == DLRT_INIT_NORMAL && a[1] < 0)
        return DLRT_EINVAL;
    int kaiming = kind == DLRT_INIT_KAIMING_UNIFORM || kind == DLRT_INIT_KAIMING_NORMAL;
    if (kaiming && ((a[1] != 0 && a[1] != 1) || isnan(kaiming_gain(a[2], a[0]))))
        return DLRT_EINVAL;
    if (kind == DLRT_INIT_TRUNCATED_NORMAL && !(a[2] < a[3] && a[1] > 0))
        return DLRT_EINVAL;
    if (!data && count > 0)
        return DLRT_EINVAL;
    if (count == 0)
        return DLRT_OK;

    /* count > 0 implies every dimension, hence both fans, is positive */
    double fi = (double)fan_in, fo = (double)fan_out;
    double lo = 0, width = 0, mean = 0, std = 0;
    double fan = kaiming && a[1] == 1 ? fo : fi, gain = kaiming ? kaiming_gain(a[2], a[0]) : 0;
    int normal = 0;
    switch ((dlrt_init_kind)kind) {
    case DLRT_INIT_ZEROS: lo = 0; break;
    case DLRT_INIT_ONES: lo = 1; break;
    case DLRT_INIT_CONSTANT: lo = a[0]; break;
    case DLRT_INIT_UNIFORM:
        lo = a[0];
        width = a[1] - a[0];
        break;
    case DLRT_INIT_NORMAL:
        normal = 1;
        mean = a[0];
        std = a[1];
        break;
    case DLRT_INIT_XAVIER_UNIFORM: {
        double b = a[0] * sqrt(6.0 / (fi + fo));
        lo = -b;
        width = 2 * b;
        break;
    }
    case DLRT_INIT_XAVIER_NORMAL:
        normal = 1;
        std = a[0] * sqrt(2.0 / (fi + fo));
        break;
    case DLRT_INIT_KAIMING_UNIFORM: {
        double b = gain * sqrt(3.0 / fan);
        lo = -b;
        width = 2 * b;
        break;
    }
    case DLRT_INIT_KAIMING_NORMAL:
        normal = 1;
        std = gain / sqrt(fan);
        break;
    case DLRT_INIT_TRUNCATED_NORMAL: {
        /* bounds in standard deviations; one that overflows to an
         * infinity (a huge bound over a tiny std) works as no bound */
        double slo = (a[2] - a[0]) / a[1], shi = (a[3] - a[0]) / a[1];
        if (!(slo < shi))
            return DLRT_EINVAL;
        dlrt_rng rng;
        dlrt_rng_seed(&rng, seed, stream);
        for (size_t i = 0; i < count; i++) {
            double x = a[0] + a[1] * truncated_normal(&rng, slo, shi);
            store(data, t, i, fmin(fmax(x, a[2]), a[3]));
        }
        return DLRT_OK;
    }
    case DLRT_INIT_COUNT: return DLRT_EINVAL;
    }
    if (!isfinite(width) || !isfinite(std))
        return DLRT_EINVAL; /* e.g. uniform(-DBL_MAX, DBL_MAX) */

    dlrt_rng rng;
    dlrt_rng_seed(&rng, seed, stream);
    if (normal) {
        for (size_t i = 0; i < count; i++)
            store(data, t, i, mean + std * dlrt_rng_normal(&rng));
    } else if (width > 0) {
        for (size_t i = 0; i < count; i++)
            store(data, t, i, lo + width * dlrt_rng_double(&rng));
    } else {
        for (size_t i = 0; i < count; i++)
            store(data, t, i, lo);
    }
    return DLRT_OK;
}
