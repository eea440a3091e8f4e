/* Drives mathfn.o: exp, sigmoid and tanh of f32, which the generated code
 * computes inline without libm calls (cg_exp, cg_tanh in
 * codegen/build.c), against libm's exp and tanh in f64 over the whole
 * float range: every STRIDE-th bit pattern, every float within 4096 ulp of
 * the edges of the ranges (overflow, the subnormal results, exp's clamp,
 * tanh's switch points), and the special values. With MATH_EXHAUSTIVE=1
 * in the environment, every float (a minute or so; run by hand), printing
 * the largest errors found.
 *
 * The bounds (build.c's comments give the measured figures):
 *  - exp: 2 ulp relative (2.4e-7) where e^x is a normal float; below
 *    FLT_MIN, one subnormal step (2^-149) absolute; +inf where e^x
 *    exceeds FLT_MAX (or within 2 ulp of it), 0 below -104.
 *  - sigmoid = 1 / (1 + e^-x): 3e-7 relative (one more rounding in the
 *    sum and one in the division); a result under FLT_MIN may be 0 (e^-x
 *    overflows first, as with libm's expf).
 *  - tanh: 1.1e-7 absolute and 2.9e-7 relative.
 * NaN gives NaN; +-inf give e^x's, 1/0 and +-1. */
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mathfn.h"

enum { N = 4096, STRIDE = 2039 };

static float xs[N], e[N], s[N], th[N];
static int nx;
static double worst_exp, worst_sig, worst_tanh_abs, worst_tanh_rel;

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void bad(const char *what, float x, float got, double want)
{
    if (failures++ < 20)
        fprintf(stderr, "%s(%.9g = 0x%08x): got %.9g, want %.9g\n", what, (double)x, to_bits(x),
                (double)got, want);
}

/* got against want (f64): relative bound rel where |want| >= FLT_MIN,
 * absolute bound tiny below; the worst relative error seen into *worst. */
static void check_rel(const char *what, float x, float got, double want, double rel, double tiny,
                      double *worst)
{
    if (isnan(want)) {
        if (!isnan(got))
            bad(what, x, got, want);
        return;
    }
    if (fabs(want) < FLT_MIN) {
        if (!(fabs(got - want) <= tiny))
            bad(what, x, got, want);
        return;
    }
    if (fabs(want) > FLT_MAX * (1 - 2.4e-7)) { /* overflows, or all but */
        if (!(isinf(got) && got > 0) && !(fabs(got - want) <= rel * fabs(want)))
            bad(what, x, got, want);
        return;
    }
    double err = fabs(got - want) / fabs(want);
    if (err > *worst)
        *worst = err;
    if (!(err <= rel))
        bad(what, x, got, want);
}

static void flush(mathfn *m)
{
    if (nx == 0)
        return;
    for (int i = nx; i < N; i++)
        xs[i] = 0;
    expect("forward", mathfn_forward(m, xs, e, s, th) == 0);
    for (int i = 0; i < nx; i++) {
        double x = xs[i];
        check_rel("exp", xs[i], e[i], exp(x), 2.4e-7, 0x1p-149, &worst_exp);
        check_rel("sigmoid", xs[i], s[i], 1 / (1 + exp(-x)), 3e-7, FLT_MIN, &worst_sig);
        double t = tanh(x), abs_err = fabs(th[i] - t), rel = t != 0 ? abs_err / fabs(t) : abs_err;
        if (isnan(t) ? !isnan(th[i]) : !(abs_err <= 1.1e-7 && rel <= 2.9e-7))
            bad("tanh", xs[i], th[i], t);
        if (!isnan(t)) {
            worst_tanh_abs = fmax(worst_tanh_abs, abs_err);
            worst_tanh_rel = fmax(worst_tanh_rel, rel);
        }
    }
    nx = 0;
}

static void add(mathfn *m, float x)
{
    xs[nx++] = x;
    if (nx == N)
        flush(m);
}

/* Every float within k ulp of x, on both sides. */
static void around(mathfn *m, float x, int k)
{
    uint32_t u = to_bits(x);
    for (int i = -k; i <= k; i++)
        add(m, from_bits(u + (uint32_t)i));
}

int main(void)
{
    mathfn *m = mathfn_create(1);
    expect("create", m != NULL);
    if (!m)
        return 1;
    const char *ex = getenv("MATH_EXHAUSTIVE");
    uint64_t stride = ex && strcmp(ex, "1") == 0 ? 1 : STRIDE;
    for (uint64_t u = 0; u <= UINT32_MAX; u += stride)
        add(m, from_bits((uint32_t)u));
    static const float edges[] = {
        88.7228394f,           /* the largest x with e^x below FLT_MAX */
        88.8f,                 /* exp's clamp */
        -87.3365479f,          /* e^x = FLT_MIN */
        -103.278931f,          /* e^x = the smallest subnormal */
        -103.972084f,          /* half of it: rounds to 0 */
        -104.0f,               /* exp's lower clamp */
        0.625f,                /* tanh: rational approximation below, exp above */
        4e-4f,                 /* tanh(x) = x below */
        9.5f,                  /* tanh's cap */
        0x1p-126f,             /* the smallest normal */
        1.0f,         0.3466f, /* ln2 / 2: the reduced argument's edge */
    };
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        around(m, edges[i], 4096);
        around(m, -edges[i], 4096);
    }
    static const float special[] = {0.0f,    -0.0f,    INFINITY,  -INFINITY, NAN,
                                    FLT_MAX, -FLT_MAX, 0x1p-149f, -0x1p-149f};
    for (size_t i = 0; i < sizeof special / sizeof *special; i++)
        add(m, special[i]);
    flush(m);
    /* the special values exactly */
    float sp[5] = {INFINITY, -INFINITY, 0.0f, -200.0f, 1.0f};
    for (int i = 0; i < 5; i++)
        xs[i] = sp[i];
    expect("forward", mathfn_forward(m, xs, e, s, th) == 0);
    expect("exp(inf) = inf", isinf(e[0]) && e[0] > 0);
    expect("exp(-inf) = 0", e[1] == 0);
    expect("exp(0) = 1", e[2] == 1);
    expect("exp(-200) = 0", e[3] == 0);
    expect("sigmoid(inf) = 1", s[0] == 1);
    expect("sigmoid(-inf) = 0", s[1] == 0);
    expect("tanh(+-inf) = +-1", th[0] == 1 && th[1] == -1);
    near("exp(1)", 0, e[4], exp(1.0), 2.4e-7);
    printf(
        "mathfn: max relative error exp %.3g, sigmoid %.3g; tanh %.3g absolute, %.3g relative%s\n",
        worst_exp, worst_sig, worst_tanh_abs, worst_tanh_rel, stride == 1 ? " (every float)" : "");
    mathfn_destroy(m);
    if (failures)
        fprintf(stderr, "mathfn: %d failures\n", failures);
    return failures != 0;
}
