/* The f64 reference of docs/TRAINING.md (see reference.h): a small
 * recursive-descent reader of the train options, and the formulas of the
 * schedule, clipping and optimizer tables written out one by one. */
#include "reference.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double pi = 3.14159265358979323846;

typedef struct {
    const char *p;
    char *err;
    int errsize;
} Reader;

static int error(Reader *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, (size_t)r->errsize, fmt, ap);
    va_end(ap);
    return -1;
}

static void skip_space(Reader *r)
{
    while (isspace((unsigned char)*r->p))
        r->p++;
}

static int accept(Reader *r, char c)
{
    skip_space(r);
    if (*r->p != c)
        return 0;
    r->p++;
    return 1;
}

/* ident = [A-Za-z_][A-Za-z0-9_]* ; returns its length (0: none) */
static int ident(Reader *r, char *buf, int size)
{
    skip_space(r);
    int n = 0;
    if (!isalpha((unsigned char)*r->p) && *r->p != '_')
        return 0;
    while (isalnum((unsigned char)r->p[n]) || r->p[n] == '_')
        n++;
    if (n >= size)
        return 0;
    memcpy(buf, r->p, (size_t)n);
    buf[n] = 0;
    r->p += n;
    return n;
}

/* value = number | "true" | "false" */
static int value(Reader *r, double *v)
{
    skip_space(r);
    if (strncmp(r->p, "true", 4) == 0) {
        r->p += 4;
        *v = 1;
        return 0;
    }
    if (strncmp(r->p, "false", 5) == 0) {
        r->p += 5;
        *v = 0;
        return 0;
    }
    char *end;
    *v = strtod(r->p, &end);
    if (end == r->p)
        return error(r, "expected a value at '%s'", r->p);
    r->p = end;
    return 0;
}

/* call = ident "(" [arg ("," arg)*] ")" ; arg = [ident "="] value.
 * names[] lists the arguments in positional order; values go to out[]. */
static int call_args(Reader *r, const char *const *names, int nnames, double *out)
{
    if (!accept(r, '('))
        return error(r, "expected '('");
    if (accept(r, ')'))
        return 0;
    int pos = 0;
    do {
        const char *save = r->p;
        char name[32];
        int k = pos++;
        if (ident(r, name, sizeof name) && accept(r, '=')) {
            for (k = 0; k < nnames && strcmp(names[k], name) != 0; k++)
                ;
            if (k == nnames)
                return error(r, "unknown argument '%s'", name);
        } else {
            r->p = save;
            if (k >= nnames)
                return error(r, "too many arguments");
        }
        if (value(r, &out[k]) != 0)
            return -1;
    } while (accept(r, ','));
    if (!accept(r, ')'))
        return error(r, "expected ')' at '%s'", r->p);
    return 0;
}

static int optimizer(Reader *r, TrainSpec *s)
{
    static const struct {
        const char *name;
        OptKind kind;
    } kinds[] = {{"sgd", OPT_SGD},
                 {"adagrad", OPT_ADAGRAD},
                 {"rmsprop", OPT_RMSPROP},
                 {"adam", OPT_ADAM},
                 {"adamw", OPT_ADAMW}};
    static const char *const names[] = {"lr",  "momentum", "nesterov", "weight_decay",
                                        "eps", "alpha",    "beta1",    "beta2"};
    char name[32];
    if (!ident(r, name, sizeof name))
        return error(r, "expected an optimizer");
    int k;
    for (k = 0; k < 5 && strcmp(kinds[k].name, name) != 0; k++)
        ;
    if (k == 5)
        return error(r, "unknown optimizer '%s'", name);
    s->opt = kinds[k].kind;
    /* SPEC 1.6's defaults */
    double v[8] = {NAN, 0, 0, 0, 1e-8, 0.99, 0.9, 0.999};
    if (s->opt == OPT_ADAGRAD)
        v[4] = 1e-10;
    if (s->opt == OPT_ADAMW)
        v[3] = 0.01;
    if (call_args(r, names, 8, v) != 0)
        return -1;
    if (isnan(v[0]))
        return error(r, "no lr");
    s->lr = v[0];
    s->momentum = v[1];
    s->nesterov = v[2] != 0;
    s->weight_decay = v[3];
    s->eps = v[4];
    s->alpha = v[5];
    s->beta1 = v[6];
    s->beta2 = v[7];
    return 0;
}

static int schedule(Reader *r, TrainSpec *s)
{
    static const char *const step_args[] = {"every", "gamma"};
    static const char *const exp_args[] = {"gamma"};
    static const char *const cos_args[] = {"total", "min_lr"};
    static const char *const warm_args[] = {"warmup", "total", "min_lr"};
    static const char *const cyc_args[] = {"base_lr", "max_lr", "step_size"};
    static const struct {
        const char *name;
        SchedKind kind;
        const char *const *args;
        int nargs, required;
    } kinds[] = {
        {"constant", SCHED_CONSTANT, NULL, 0, 0},
        {"step", SCHED_STEP, step_args, 2, 2},
        {"exponential", SCHED_EXPONENTIAL, exp_args, 1, 1},
        {"cosine", SCHED_COSINE, cos_args, 2, 1},
        {"warmup_cosine", SCHED_WARMUP_COSINE, warm_args, 3, 2},
        {"cyclic", SCHED_CYCLIC, cyc_args, 3, 3},
    };
    char name[32];
    if (!ident(r, name, sizeof name))
        return error(r, "expected a schedule");
    int k;
    for (k = 0; k < 6 && strcmp(kinds[k].name, name) != 0; k++)
        ;
    if (k == 6)
        return error(r, "unknown schedule '%s'", name);
    s->sched = kinds[k].kind;
    double v[3] = {NAN, NAN, 0}; /* min_lr defaults to 0 */
    if (s->sched == SCHED_COSINE)
        v[1] = 0;
    if (s->sched == SCHED_CYCLIC)
        v[2] = NAN;
    if (call_args(r, kinds[k].args, kinds[k].nargs, v) != 0)
        return -1;
    for (int i = 0; i < kinds[k].required; i++)
        if (isnan(v[i]))
            return error(r, "%s: argument %d missing", name, i + 1);
    memcpy(s->sched_args, v, sizeof v);
    return 0;
}

int ref_parse(const char *text, TrainSpec *s, char *err, int errsize)
{
    Reader r = {text, err, errsize};
    memset(s, 0, sizeof *s);
    s->sched = SCHED_CONSTANT;
    if (optimizer(&r, s) != 0)
        return -1;
    while (accept(&r, ',')) {
        char name[32];
        if (!ident(&r, name, sizeof name) || !accept(&r, '='))
            return error(&r, "expected 'option =' at '%s'", r.p);
        if (strcmp(name, "clip_norm") == 0) {
            if (value(&r, &s->clip_norm) != 0)
                return -1;
        } else if (strcmp(name, "schedule") == 0) {
            if (schedule(&r, s) != 0)
                return -1;
        } else {
            return error(&r, "unknown option '%s'", name);
        }
    }
    skip_space(&r);
    if (*r.p)
        return error(&r, "trailing text '%s'", r.p);
    return 0;
}

double ref_initial_base(const TrainSpec *s)
{
    return s->sched == SCHED_CYCLIC ? s->sched_args[1] : s->lr;
}

/* lo + (hi - lo) * (1 + cos(pi * progress)) / 2 */
static double cosine(double lo, double hi, double progress)
{
    return lo + (hi - lo) * (1 + cos(pi * progress)) / 2;
}

double ref_rate(const TrainSpec *s, double base, int64_t t)
{
    const double *a = s->sched_args;
    double td = (double)t;
    switch (s->sched) {
    case SCHED_CONSTANT: return base;
    case SCHED_STEP: return base * pow(a[1], floor(td / a[0]));
    case SCHED_EXPONENTIAL: return base * pow(a[0], td);
    case SCHED_COSINE: return cosine(a[1], base, fmin(td, a[0]) / a[0]);
    case SCHED_WARMUP_COSINE:
        if (td < a[0])
            return base * (td + 1) / a[0];
        return cosine(a[2], base, fmin(1, (td - a[0]) / (a[1] - a[0])));
    case SCHED_CYCLIC: {
        double c = floor(1 + td / (2 * a[2]));
        double x = fabs(td / a[2] - 2 * c + 1);
        return a[0] + (base - a[0]) * fmax(0, 1 - x);
    }
    }
    return NAN;
}

int ref_nslots(const TrainSpec *s)
{
    switch (s->opt) {
    case OPT_SGD: return s->momentum > 0 ? 1 : 0;
    case OPT_ADAGRAD: return 1;
    case OPT_RMSPROP: return s->momentum > 0 ? 2 : 1;
    case OPT_ADAM:
    case OPT_ADAMW: return 2;
    }
    return 0;
}

const char *ref_slot_name(const TrainSpec *s, int k)
{
    switch (s->opt) {
    case OPT_SGD: return "momentum_buffer";
    case OPT_ADAGRAD: return "sum";
    case OPT_RMSPROP: return k == 0 ? "square_avg" : "momentum_buffer";
    case OPT_ADAM:
    case OPT_ADAMW: return k == 0 ? "exp_avg" : "exp_avg_sq";
    }
    return "?";
}

double ref_step(const TrainSpec *s, double lr, int64_t t, int n, double *p, double *g,
                double *const *slot)
{
    double factor = 1;
    if (s->clip_norm > 0) {
        double sq = 0;
        for (int i = 0; i < n; i++)
            sq += g[i] * g[i];
        double c = s->clip_norm / (sqrt(sq) + 1e-6);
        if (c < 1) {
            factor = c;
            for (int i = 0; i < n; i++)
                g[i] *= c;
        }
    }
    double wd = s->weight_decay;
    if (s->opt == OPT_ADAMW) {
        for (int i = 0; i < n; i++)
            p[i] *= 1 - lr * wd;
        wd = 0;
    }
    for (int i = 0; i < n; i++)
        g[i] += wd * p[i];
    switch (s->opt) {
    case OPT_SGD:
        for (int i = 0; i < n; i++) {
            double d = g[i];
            if (s->momentum > 0) {
                double *b = &slot[0][i];
                *b = t == 0 ? g[i] : s->momentum * *b + g[i];
                d = s->nesterov ? g[i] + s->momentum * *b : *b;
            }
            p[i] -= lr * d;
        }
        break;
    case OPT_ADAGRAD:
        for (int i = 0; i < n; i++) {
            slot[0][i] += g[i] * g[i];
            p[i] -= lr * g[i] / (sqrt(slot[0][i]) + s->eps);
        }
        break;
    case OPT_RMSPROP:
        for (int i = 0; i < n; i++) {
            double *v = &slot[0][i];
            *v = s->alpha * *v + (1 - s->alpha) * g[i] * g[i];
            double d = sqrt(*v) + s->eps;
            if (s->momentum > 0) {
                double *b = &slot[1][i];
                *b = s->momentum * *b + g[i] / d;
                p[i] -= lr * *b;
            } else {
                p[i] -= lr * g[i] / d;
            }
        }
        break;
    case OPT_ADAM:
    case OPT_ADAMW: {
        double bc1 = 1 - pow(s->beta1, (double)(t + 1));
        double bc2 = 1 - pow(s->beta2, (double)(t + 1));
        for (int i = 0; i < n; i++) {
            double *m = &slot[0][i], *v = &slot[1][i];
            *m = s->beta1 * *m + (1 - s->beta1) * g[i];
            *v = s->beta2 * *v + (1 - s->beta2) * g[i] * g[i];
            p[i] -= (lr / bc1) * *m / (sqrt(*v) / sqrt(bc2) + s->eps);
        }
        break;
    }
    }
    return factor;
}
