/*
 * The gradient-check harness, compiled once per model:
 *
 *   cc -DMODEL_HEADER='"m.h"' -DMODEL=m harness.c m.o libdlrt.a -lopenblas -lpthread -lm
 *   ./harness m.dl
 *
 * It checks the compiled training code of an f64 model against central
 * finite differences of the compiled code itself, through the generic
 * entries of NAME_info(): parameters and inputs get seeded random values,
 * one info->compute_gradients call on zeroed NAME_grads gives the analytic
 * gradient, and for every element of every trainable parameter (or a
 * random sample of a big one) the loss of compute_gradients at p + eps and
 * p - eps gives the numeric one, (L(p + eps) - L(p - eps)) / (2 eps) with
 * the step actually taken in floating point. An element passes when
 *
 *   |analytic - numeric| <= tol * max(|analytic|, |numeric|, floor * max(1, |L|))
 *
 * (defaults tol 1e-6, floor 1e-3, eps 1e-6): relative for gradients above
 * the floor, absolute below it, where the difference quotient's rounding
 * error (about 1e-16 |L| / eps = 1e-10 |L|) drowns a relative comparison;
 * the floor grows with the loss L for that reason. That error also grows
 * with the size of the terms the loss sums, which the harness cannot see:
 * an element beyond the tolerance is measured again with the fourth-order
 * difference (4 D(h/2) - D(h)) / 3 at h = 1e-4 (truncation error ~h^4,
 * rounding ~1e-12 |L|), and passes if that one agrees within the same
 * tolerance; a wrong gradient disagrees with both. The model must be
 * smooth at the sample point: the .dl picks input and parameter ranges
 * away from kinks (relu at 0, ties of max, clamp bounds).
 *
 * Besides the values it checks what docs/TRAINING.md promises about
 * compute_gradients: a fresh instance has zero gradients; a second call
 * without zeroing adds the same gradients again (2x) and gives the same
 * loss bits; frozen parameters' gradients stay 0; inputs are never
 * written; the step counter does not move; after all the perturbed calls
 * (parameters restored bit for bit) the loss is the first one's bits.
 * evaluate (inference mode) gives the same loss as compute_gradients for a
 * model without batch norm or dropout, and changes neither parameters
 * nor gradients. A parameter whose checked gradient is zero everywhere
 * (at every batch size) fails: its check would say nothing.
 *
 * Settings come from "# GRADCHECK:" comment lines in m.dl, words of the
 * form key=value (later words override earlier ones):
 *
 *   batches=3,1        the batch sizes to check at, each with its own
 *                      inputs (default min(3, max batch), then 1)
 *   range=LO,HI        uniform range of floating inputs and parameters
 *                      (default -1,1); for i32 inputs integers LO..HI,
 *                      which every i32 input must set (class labels must
 *                      be in range)
 *   seed=N             the random seed (default 1; the environment variable
 *                      GRADCHECK_SEED overrides it, to try other points)
 *   eps=E tol=T floor=F  as above
 *   sample=N           elements checked per parameter (default 60; all of
 *                      a parameter with at most N; else N random ones
 *                      including the first and the last)
 *   params=init        keep the parameters the model initialized
 *   evaluate=differs   the inference-mode loss differs (batch norm, dropout)
 *   input=NAME ...     the words after it on the line apply to that input
 *                      (range)
 *   param=NAME ...     ... to that parameter (range, sample, tol, floor)
 */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

#define HARNESS_TAG "GRADCHECK"
#include "harness_util.h"

enum { MAX_NAMED = 64 };

/* Settings for one input or parameter, or the defaults. */
typedef struct {
    char name[64];
    char kind; /* 'i'nput, 'p'aram, 0 for the defaults */
    bool has_range, has_sample, has_tol, has_floor;
    double lo, hi, tol, floor;
    long sample;
} Setting;

enum { MAX_BATCHES = 8 };

static struct {
    int batches[MAX_BATCHES];
    int nbatches;
    uint64_t seed;
    double eps;
    bool keep_params, evaluate_differs;
    Setting def;
    Setting named[MAX_NAMED];
    int nnamed;
} cfg = {
    .seed = 1, .eps = 1e-6, .def = {.lo = -1, .hi = 1, .tol = 1e-6, .floor = 1e-3, .sample = 60}};

/* Settings */

/* One key=value of the settings; a line starts with the defaults. */
static void parse_setting(const char *k, char *v, bool line_start)
{
    static Setting *cur;
    if (line_start)
        cur = &cfg.def;
    Setting *s = cur;
    if (strcmp(k, "input") == 0 || strcmp(k, "param") == 0) {
        if (cfg.nnamed == MAX_NAMED)
            fatal("GRADCHECK: too many named settings");
        s = &cfg.named[cfg.nnamed++];
        memset(s, 0, sizeof *s);
        snprintf(s->name, sizeof s->name, "%s", v);
        s->kind = k[0];
        cur = s;
    } else if (strcmp(k, "range") == 0) {
        if (!parse_pair(v, &s->lo, &s->hi))
            fatal("GRADCHECK: range=%s: expected LO,HI", v);
        if (!(s->lo <= s->hi))
            fatal("GRADCHECK: range=%s: LO > HI", v);
        s->has_range = true;
    } else if (strcmp(k, "tol") == 0 && s->kind != 'i') {
        s->tol = parse_num(k, v);
        s->has_tol = true;
    } else if (strcmp(k, "floor") == 0 && s->kind != 'i') {
        s->floor = parse_num(k, v);
        s->has_floor = true;
    } else if (strcmp(k, "sample") == 0 && s->kind != 'i') {
        s->sample = (long)parse_num(k, v);
        s->has_sample = true;
        if (s->sample < 2)
            fatal("GRADCHECK: sample=%s: at least 2", v);
    } else if (s != &cfg.def) {
        fatal("GRADCHECK: '%s' cannot be set for one %s", k, s->kind == 'i' ? "input" : "param");
    } else if (strcmp(k, "batches") == 0) {
        cfg.nbatches = 0;
        char *save;
        for (char *t = strtok_r(v, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (cfg.nbatches == MAX_BATCHES)
                fatal("GRADCHECK: too many batch sizes");
            cfg.batches[cfg.nbatches++] = (int)parse_num(k, t);
        }
    } else if (strcmp(k, "seed") == 0) {
        cfg.seed = (uint64_t)parse_num(k, v);
    } else if (strcmp(k, "eps") == 0) {
        cfg.eps = parse_num(k, v);
    } else if (strcmp(k, "params") == 0) {
        if (strcmp(v, "init") != 0)
            fatal("GRADCHECK: params=%s: only 'init' is known", v);
        cfg.keep_params = true;
    } else if (strcmp(k, "evaluate") == 0) {
        if (strcmp(v, "differs") != 0)
            fatal("GRADCHECK: evaluate=%s: only 'differs' is known", v);
        cfg.evaluate_differs = true;
    } else {
        fatal("GRADCHECK: unknown setting '%s'", k);
    }
}

/* The setting for tensor `name` of kind that holds one field: the last
 * named setting whose flag at has_offset (offsetof(Setting, has_FIELD))
 * is set, else the defaults. */
static const Setting *setting_for(char kind, const char *name, size_t has_offset)
{
    const Setting *found = &cfg.def;
    for (int i = 0; i < cfg.nnamed; i++) {
        const Setting *s = &cfg.named[i];
        if (s->kind == kind && strcmp(s->name, name) == 0 &&
            *(const bool *)(const void *)((const char *)s + has_offset))
            found = s;
    }
    return found;
}

#define SETTING(kind, name, field) (setting_for(kind, name, offsetof(Setting, has_##field))->field)

/* Every named setting names a tensor of the model. */
static void check_names(const dlrt_model_info *info)
{
    for (int i = 0; i < cfg.nnamed; i++) {
        const Setting *s = &cfg.named[i];
        int n = s->kind == 'i' ? info->num_inputs : info->num_params;
        const dlrt_tensor_info *t = s->kind == 'i' ? info->inputs : info->params;
        bool found = false;
        for (int k = 0; k < n && !found; k++)
            found = strcmp(t[k].desc.name, s->name) == 0;
        if (!found)
            fatal("GRADCHECK: %s=%s is not a %s of the model", s->kind == 'i' ? "input" : "param",
                  s->name, s->kind == 'i' ? "input" : "parameter");
    }
}

/* Tensors */

/* "name[i,j,...]" for flat element k of parameter t. */
static const char *elem_name(const dlrt_tensor_info *t, int64_t k)
{
    static char buf[256];
    int64_t idx[DLRT_MAX_RANK];
    for (int i = t->desc.rank - 1; i >= 0; i--) {
        idx[i] = k % t->desc.shape[i];
        k /= t->desc.shape[i];
    }
    int at = snprintf(buf, sizeof buf, "%s[", t->desc.name);
    for (int i = 0; i < t->desc.rank && at < (int)sizeof buf; i++)
        at += snprintf(buf + at, sizeof buf - (size_t)at, "%s%" PRId64, i ? "," : "", idx[i]);
    if (at < (int)sizeof buf)
        snprintf(buf + at, sizeof buf - (size_t)at, "]");
    return buf;
}

/* The model under test */

static const dlrt_model_info *info;
static MODEL *model;
static unsigned char *base;
static int run_batch;
static const void **inputs;

static double *grads(void)
{
    return (double *)(void *)(base + info->grads_offset);
}

static void zero_grads(void)
{
    memset(base + info->grads_offset, 0, info->grads_bytes);
}

/* The training-mode loss of compute_gradients (which also adds to the
 * gradients). */
static double train_loss(const char *what)
{
    double loss = NAN;
    int rc = info->compute_gradients(model, run_batch, inputs, &loss);
    if (rc != 0)
        fatal("compute_gradients (%s) returned %d (%s)", what, rc, dlrt_strerror(rc));
    return loss;
}

/* The central difference of the loss in element k of val with step h,
 * divided by the step actually taken; val[k] is restored bit for bit. */
static double central(double *val, int64_t k, double h)
{
    double x = val[k], xp = x + h, xm = x - h;
    val[k] = xp;
    zero_grads();
    double lp = train_loss("at p + h");
    val[k] = xm;
    zero_grads();
    double lm = train_loss("at p - h");
    val[k] = x;
    return (lp - lm) / (xp - xm);
}

/* The largest |gradient| seen of each parameter, over all batches. */
static double *param_biggest;

/* Checks parameter p at its sampled elements; returns the number checked. */
static int64_t check_param(const dlrt_tensor_info *p, const double *analytic, double loss)
{
    const char *name = p->desc.name;
    int64_t count = count_at(p, info->max_batch, info->max_batch);
    long sample = SETTING('p', name, sample);
    double tol = SETTING('p', name, tol);
    double least = SETTING('p', name, floor) * fmax(1, fabs(loss));
    double eps = cfg.eps;
    double *val = (double *)(void *)(base + p->offset);
    const double *ana = analytic + (p->offset - info->params_offset) / sizeof(double);

    /* which elements: all, or the first, the last and random others */
    int64_t n = count <= sample ? count : sample;
    int64_t *pick = malloc(sizeof *pick * (size_t)n + 1);
    if (count <= sample) {
        for (int64_t k = 0; k < n; k++)
            pick[k] = k;
    } else {
        char *taken = calloc((size_t)count, 1);
        pick[0] = 0;
        pick[1] = count - 1;
        taken[0] = taken[count - 1] = 1;
        for (int64_t k = 2; k < n; k++) {
            int64_t e;
            do
                e = (int64_t)(rng_next() % (uint64_t)count);
            while (taken[e]);
            taken[e] = 1;
            pick[k] = e;
        }
        free(taken);
    }

    double worst = 0, biggest = 0;
    int64_t worst_at = pick[0], bad = 0, remeasured = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t k = pick[j];
        double a = ana[k], num = central(val, k, eps);
        double scale = fmax(fmax(fabs(a), fabs(num)), least);
        double err = fabs(a - num) / scale;
        if (!(err <= tol)) {
            /* rounding noise or a wrong gradient: ask a more accurate
             * difference */
            double num4 = (4 * central(val, k, 0.5e-4) - central(val, k, 1e-4)) / 3;
            double err4 = fabs(a - num4) / fmax(fmax(fabs(a), fabs(num4)), least);
            if (err4 <= tol) {
                remeasured++;
                num = num4;
                err = err4;
            } else {
                if (bad < 5)
                    fail("d loss / d %s: compiled %.15g, central difference %.15g (rel. error "
                         "%.3g > %g), fourth-order difference %.15g (%.3g)",
                         elem_name(p, k), a, num, err, tol, num4, err4);
                bad++;
            }
        }
        if (!(err <= worst) || isnan(err)) {
            worst = isnan(err) ? INFINITY : err;
            worst_at = k;
        }
        biggest = fmax(biggest, fmax(fabs(a), fabs(num)));
    }
    double *most = &param_biggest[p - info->params];
    *most = fmax(*most, biggest);
    if (bad > 5)
        fail("%s: %" PRId64 " more elements beyond tolerance", name, bad - 5);
    printf("  %-24s %6" PRId64 " of %6" PRId64 " elements, max |grad| %-10.3g max rel. error %.3g "
           "at %s",
           name, n, count, biggest, worst, elem_name(p, worst_at));
    if (remeasured)
        printf(" (%" PRId64 " by the fourth-order difference)", remeasured);
    printf("\n");
    free(pick);
    return n;
}

/* Everything at one batch size, with fresh inputs. */
static void check_at(int batch)
{
    int maxb = info->max_batch;
    if (batch < 1 || (maxb > 0 && batch > maxb))
        fatal("batch %d is outside 1..%d", batch, maxb);
    run_batch = maxb > 0 ? batch : 1;
    printf(" batch %d\n", maxb > 0 ? batch : 0);
    int64_t nscalars = (int64_t)(info->params_bytes / sizeof(double));
    int nin = info->num_inputs;
    inputs = calloc((size_t)nin + 1, sizeof *inputs);
    unsigned char **copy = calloc((size_t)nin + 1, sizeof *copy);
    size_t *in_bytes = calloc((size_t)nin + 1, sizeof *in_bytes);
    for (int i = 0; i < nin; i++) {
        const dlrt_tensor_info *t = &info->inputs[i];
        const Setting *s = setting_for('i', t->desc.name, offsetof(Setting, has_range));
        int64_t c = count_at(t, maxb, batch);
        in_bytes[i] = (size_t)c * elem_size(t->desc.dtype);
        unsigned char *buf = malloc(in_bytes[i] + 1);
        if (t->desc.dtype == DLRT_I32) {
            if (s == &cfg.def)
                fatal("i32 input %s needs a range (GRADCHECK: input=%s range=LO,HI)", t->desc.name,
                      t->desc.name);
            for (int64_t k = 0; k < c; k++)
                ((int32_t *)(void *)buf)[k] =
                    (int32_t)s->lo + (int32_t)(rng_next() % (uint64_t)(s->hi - s->lo + 1));
        } else {
            for (int64_t k = 0; k < c; k++) {
                double v = rng_uniform(s->lo, s->hi);
                if (t->desc.dtype == DLRT_F64)
                    ((double *)(void *)buf)[k] = v;
                else
                    ((float *)(void *)buf)[k] = (float)v;
            }
        }
        inputs[i] = buf;
        copy[i] = malloc(in_bytes[i] + 1);
        memcpy(copy[i], buf, in_bytes[i]);
    }

    /* the analytic gradient, and what compute_gradients promises */
    size_t gbytes = info->grads_bytes;
    double *analytic = malloc(gbytes + 1);
    zero_grads();
    double loss0 = train_loss("first call");
    memcpy(analytic, grads(), gbytes);
    printf("  loss %.17g\n", loss0);
    if (!isfinite(loss0))
        fail("the loss is %g", loss0);
    for (int64_t k = 0; k < nscalars; k++)
        if (!isfinite(analytic[k])) {
            fail("gradient scalar %" PRId64 " is %g", k, analytic[k]);
            break;
        }
    double loss1 = train_loss("second call");
    if (memcmp(&loss0, &loss1, sizeof loss0) != 0)
        fail("a second call gives loss %.17g, the first %.17g", loss1, loss0);
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        int64_t off = (int64_t)((p->offset - info->params_offset) / sizeof(double));
        int64_t c = count_at(p, maxb, maxb);
        double scale = 0;
        for (int64_t k = 0; k < c; k++)
            scale = fmax(scale, fabs(analytic[off + k]));
        for (int64_t k = 0; k < c; k++) {
            double a = analytic[off + k], g = grads()[off + k];
            if (p->frozen && (a != 0 || g != 0)) {
                fail("frozen %s has gradient %g", elem_name(p, k), a != 0 ? a : g);
                break;
            }
            if (!(fabs(g - 2 * a) <= 1e-12 * (fabs(a) + scale))) {
                fail("a second call without zeroing gives %s gradient %.17g, want 2 x %.17g",
                     elem_name(p, k), g, a);
                break;
            }
        }
    }
    for (int i = 0; i < nin; i++)
        if (memcmp(inputs[i], copy[i], in_bytes[i]) != 0)
            fail("compute_gradients wrote to input %s", info->inputs[i].desc.name);
    if (MODEL_FN(_step)(model) != 0)
        fail("compute_gradients moved the step counter to %" PRId64, MODEL_FN(_step)(model));

    /* evaluate: the same loss (without batch norm or dropout), no changes */
    if (!info->evaluate) {
        fail("the info has no evaluate");
    } else {
        unsigned char *before = malloc(info->params_bytes + gbytes + 1);
        memcpy(before, base + info->params_offset, info->params_bytes);
        memcpy(before + info->params_bytes, grads(), gbytes);
        double le = NAN;
        int rc = info->evaluate(model, run_batch, inputs, &le);
        if (rc != 0)
            fail("evaluate returned %d (%s)", rc, dlrt_strerror(rc));
        else if (!cfg.evaluate_differs && !(fabs(le - loss0) <= 1e-12 * fmax(1, fabs(loss0))))
            fail("evaluate gives loss %.17g, compute_gradients %.17g", le, loss0);
        if (memcmp(before, base + info->params_offset, info->params_bytes) != 0)
            fail("evaluate changed the parameters");
        if (memcmp(before + info->params_bytes, grads(), gbytes) != 0)
            fail("evaluate changed the gradients");
        free(before);
    }

    /* central differences */
    int64_t checked = 0;
    int trainable = 0;
    for (int i = 0; i < info->num_params; i++) {
        if (info->params[i].frozen)
            continue;
        trainable++;
        checked += check_param(&info->params[i], analytic, loss0);
    }
    if (trainable == 0)
        fail("the model has no trainable parameters");
    zero_grads();
    double loss2 = train_loss("last call");
    if (memcmp(&loss0, &loss2, sizeof loss0) != 0)
        fail("after the checks the loss is %.17g, at first %.17g", loss2, loss0);
    printf("  %" PRId64 " elements checked\n", checked);

    for (int i = 0; i < nin; i++) {
        free((void *)inputs[i]);
        free(copy[i]);
    }
    free(inputs);
    free(copy);
    free(in_bytes);
    free(analytic);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal("usage: %s MODEL.dl", argv[0]);
    read_settings(argv[1], parse_setting);
    const char *seed = getenv("GRADCHECK_SEED");
    if (seed && *seed)
        cfg.seed = (uint64_t)parse_num("GRADCHECK_SEED", seed);
    info = MODEL_FN(_info)();
    check_names(info);
    if (info->param_dtype != DLRT_F64)
        fatal("%s: gradient checks need f64 parameters", info->name);
    if (!info->compute_gradients)
        fatal("%s: the info has no compute_gradients (no training code)", info->name);
    if (info->grads_bytes != info->params_bytes)
        fail("grads_bytes %zu, params_bytes %zu: not the same layout", info->grads_bytes,
             info->params_bytes);
    dlrt_set_num_threads(1);

    int maxb = info->max_batch;
    if (cfg.nbatches == 0) {
        cfg.batches[cfg.nbatches++] = maxb < 3 ? maxb : 3;
        if (maxb > 1)
            cfg.batches[cfg.nbatches++] = 1;
    }
    if (maxb == 0) {
        cfg.nbatches = 1;
        cfg.batches[0] = 1;
    }
    printf("%s: %d inputs, %d params, seed %" PRIu64 "\n", info->name, info->num_inputs,
           info->num_params, cfg.seed);

    model = MODEL_FN(_create)(cfg.seed);
    if (!model)
        fatal("%s_create failed", info->name);
    base = (unsigned char *)model;
    if ((void *)MODEL_FN(_params)(model) != (void *)(base + info->params_offset))
        fail("NAME_params is not the instance base + params_offset");
    if ((void *)MODEL_FN(_grads)(model) != (void *)(base + info->grads_offset))
        fail("NAME_grads is not the instance base + grads_offset");
    int64_t nscalars = (int64_t)(info->params_bytes / sizeof(double));
    for (int64_t k = 0; k < nscalars; k++)
        if (grads()[k] != 0) {
            fail("a fresh instance has gradient %g at scalar %" PRId64, grads()[k], k);
            break;
        }

    /* parameters, then each batch with its inputs */
    rng_state = cfg.seed * 0x2545F4914F6CDD1Du + 7;
    for (int i = 0; i < info->num_params && !cfg.keep_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        if (p->desc.dtype != DLRT_F64)
            fatal("param %s is not f64", p->desc.name);
        const Setting *s = setting_for('p', p->desc.name, offsetof(Setting, has_range));
        double *v = (double *)(void *)(base + p->offset);
        for (int64_t k = 0; k < count_at(p, maxb, maxb); k++)
            v[k] = rng_uniform(s->lo, s->hi);
    }
    param_biggest = calloc((size_t)info->num_params + 1, sizeof *param_biggest);
    for (int i = 0; i < cfg.nbatches; i++)
        check_at(cfg.batches[i]);
    for (int i = 0; i < info->num_params; i++)
        if (!info->params[i].frozen && !(param_biggest[i] > 1e-8))
            fail("%s: the loss does not depend on it at any checked element (max |gradient| "
                 "%.3g): the check says nothing",
                 info->params[i].desc.name, param_biggest[i]);
    free(param_biggest);
    MODEL_FN(_destroy)(model);
    printf("%s: %s\n", info->name, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
