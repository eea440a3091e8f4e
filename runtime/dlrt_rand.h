/* Part of libdlrt; include <dlrt.h> rather than this file.
 *
 * A deterministic random number generator and the parameter initializers.
 *
 * The generator is xoshiro256** (Blackman & Vigna, 2018): 256 bits of state,
 * period 2^256 - 1, one 64-bit output per step. dlrt_rng_seed() hashes
 * (seed, stream) with the splitmix64 finalizer and expands the result into
 * the four state words with splitmix64, so every parameter or dropout site
 * gets its own reproducible stream from (model seed, index): for a fixed
 * seed, distinct streams give distinct, uncorrelated states. The outputs are
 * the same on every platform.
 */
#ifndef DLRT_RAND_H
#define DLRT_RAND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Caller-owned generator state; set it with dlrt_rng_seed before use. */
typedef struct {
    uint64_t s[4]; /* xoshiro256** state, never all zero */
    double spare;  /* the second normal deviate of the last Box-Muller pair */
    int has_spare; /* whether spare is valid */
} dlrt_rng;

/* Seeds rng for stream `stream` of the model seed `seed`. */
void dlrt_rng_seed(dlrt_rng *rng, uint64_t seed, uint64_t stream);

/* The next 64 random bits. */
uint64_t dlrt_rng_next(dlrt_rng *rng);

/* Uniform in [0, 1): 53 random bits (double) or 24 random bits (float),
 * i.e. every representable multiple of 2^-53 (2^-24) equally likely. */
double dlrt_rng_double(dlrt_rng *rng);
float dlrt_rng_float(dlrt_rng *rng);

/* A standard normal deviate (Box-Muller; the uniform fed to log() lies in
 * (0, 1], so the result is always finite, |x| < 8.6). */
double dlrt_rng_normal(dlrt_rng *rng);

/* Initializers, in the order of ir/optim.def's INIT table (the code
 * generator passes the table index). Arguments (args[0..nargs)) and their
 * defaults when left out:
 *   ZEROS, ONES            none
 *   CONSTANT               value (required)
 *   UNIFORM                lo = 0, hi = 1          uniform in [lo, hi)
 *   NORMAL                 mean = 0, std = 1
 *   XAVIER_UNIFORM         gain = 1   U(-b, b), b = gain*sqrt(6/(fan_in+fan_out))
 *   XAVIER_NORMAL          gain = 1   N(0, s),  s = gain*sqrt(2/(fan_in+fan_out))
 *   KAIMING_UNIFORM        a = 0, mode = 0, nonlinearity = 4
 *                                     U(-b, b), b = gain*sqrt(3/fan)
 *   KAIMING_NORMAL         the same   N(0, s),  s = gain/sqrt(fan)
 *       fan is fan_in for mode 0, fan_out for mode 1; gain is PyTorch's
 *       calculate_gain(nonlinearity, a) for nonlinearity 0 linear, 1
 *       sigmoid (1), 2 tanh (5/3), 3 relu (sqrt(2)), 4 leaky_relu
 *       (sqrt(2/(1+a^2))), 5 selu (3/4): the defaults give sqrt(2)
 *   TRUNCATED_NORMAL       mean = 0, std = 1, a = -2, b = 2
 *                                     N(mean, std) conditioned on [a, b]
 *                                     (a < b and std > 0; exact, by
 *                                     rejection: Robert 1995)
 * Values are drawn in double and rounded to the tensor's type, so an f32
 * and an f64 tensor initialized with the same seed and stream agree up to
 * that rounding. */
typedef enum {
    DLRT_INIT_ZEROS = 0,
    DLRT_INIT_ONES = 1,
    DLRT_INIT_CONSTANT = 2,
    DLRT_INIT_UNIFORM = 3,
    DLRT_INIT_NORMAL = 4,
    DLRT_INIT_XAVIER_UNIFORM = 5,
    DLRT_INIT_XAVIER_NORMAL = 6,
    DLRT_INIT_KAIMING_UNIFORM = 7,
    DLRT_INIT_KAIMING_NORMAL = 8,
    DLRT_INIT_TRUNCATED_NORMAL = 9,
    DLRT_INIT_COUNT
} dlrt_init_kind;

/* Fans of a weight of the given shape (SPEC 1.5): rank 0 -> 1, 1;
 * rank 1 [n] -> n, n; rank 2 dense [in, out] -> in, out; rank >= 3
 * conv [o, i, k...] -> i*prod(k), o*prod(k). DLRT_EINVAL for a NULL pointer,
 * a rank outside 0..DLRT_MAX_RANK, a negative dimension or an overflow. */
int dlrt_init_fans(int rank, const int64_t *shape, int64_t *fan_in, int64_t *fan_out);

/* Fills the row-major tensor `data` (dtype DLRT_F32 or DLRT_F64, the given
 * rank and shape) with initializer `kind` (a dlrt_init_kind), drawing from
 * stream `stream` of seed `seed`. DLRT_EINVAL (and data untouched) for a
 * NULL pointer, an integer dtype, a bad rank or dimension, an unknown kind,
 * too many or missing arguments, non-finite arguments, lo > hi or std < 0,
 * a kaiming mode or nonlinearity out of range, a truncated normal with
 * a >= b or std <= 0. */
int dlrt_init_tensor(void *data, dlrt_dtype t, int rank, const int64_t *shape, int kind,
                     const double *args, int nargs, uint64_t seed, uint64_t stream);

#ifdef __cplusplus
}
#endif

#endif
