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
    double *list; /* where a list value goes (multistep's milestones) */
    int *nlist;
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

/* value = number | "true" | "false" | STRING | "[" number {"," number} "]";
 * a string is the index of its choice in docs/TRAINING.md's list for the
 * argument (every choice's index is the same in all its lists) */
static int value(Reader *r, double *v)
{
    static const struct {
        const char *text;
        int index;
    } choices[] = {{"triangular", 0}, {"triangular2", 1}, {"exp_range", 2},
                   {"cos", 0},        {"linear", 1},      {"min", 0},
                   {"max", 1},        {"rel", 0},         {"abs", 1}};
    skip_space(r);
    if (*r->p == '"') {
        const char *end = strchr(r->p + 1, '"');
        if (!end)
            return error(r, "unterminated string");
        for (size_t i = 0; i < sizeof choices / sizeof *choices; i++)
            if (strlen(choices[i].text) == (size_t)(end - r->p - 1) &&
                strncmp(choices[i].text, r->p + 1, (size_t)(end - r->p - 1)) == 0) {
                *v = choices[i].index;
                r->p = end + 1;
                return 0;
            }
        return error(r, "unknown choice %.*s", (int)(end - r->p + 1), r->p);
    }
    if (*r->p == '[') {
        r->p++;
        if (!r->list)
            return error(r, "a list where none is expected");
        *r->nlist = 0;
        do {
            if (*r->nlist == REF_MAX_MILESTONES)
                return error(r, "too long a list");
            if (value(r, &r->list[(*r->nlist)++]) != 0)
                return -1;
        } while (accept(r, ','));
        if (!accept(r, ']'))
            return error(r, "expected ']'");
        *v = *r->nlist;
        return 0;
    }
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
    static const char *const names[] = {"lr",    "momentum", "nesterov", "weight_decay", "eps",
                                        "alpha", "beta1",    "beta2",    "dampening",    "l1"};
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
    double v[10] = {NAN, 0, 0, 0, 1e-8, 0.99, 0.9, 0.999, 0, 0};
    if (s->opt == OPT_ADAGRAD)
        v[4] = 1e-10;
    if (s->opt == OPT_ADAMW)
        v[3] = 0.01;
    if (call_args(r, names, 10, v) != 0)
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
    s->dampening = v[8];
    s->l1 = v[9];
    return 0;
}

static int schedule(Reader *r, TrainSpec *s)
{
    static const char *const step_args[] = {"every", "gamma"};
    static const char *const exp_args[] = {"gamma"};
    static const char *const cos_args[] = {"total", "min_lr"};
    static const char *const warm_args[] = {"warmup", "total", "min_lr"};
    static const char *const cyc_args[] = {"base_lr", "max_lr", "step_size", "mode", "gamma"};
    static const char *const ms_args[] = {"milestones", "gamma"};
    static const char *const lw_args[] = {"warmup", "start_factor", "end_factor"};
    static const char *const oc_args[] = {"total",      "pct_start",        "anneal_strategy",
                                          "div_factor", "final_div_factor", "three_phase"};
    static const char *const cr_args[] = {"T_0", "T_mult", "min_lr"};
    static const char *const is_args[] = {"d_model", "warmup"};
    static const char *const rp_args[] = {"mode",           "factor",   "patience", "threshold",
                                          "threshold_mode", "cooldown", "min_lr",   "eps"};
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
        {"cyclic", SCHED_CYCLIC, cyc_args, 5, 3},
        {"multistep", SCHED_MULTISTEP, ms_args, 2, 1},
        {"linear_warmup", SCHED_LINEAR_WARMUP, lw_args, 3, 1},
        {"one_cycle", SCHED_ONE_CYCLE, oc_args, 6, 1},
        {"cosine_restarts", SCHED_COSINE_RESTARTS, cr_args, 3, 1},
        {"inverse_sqrt", SCHED_INVERSE_SQRT, is_args, 2, 1},
        {"reduce_on_plateau", SCHED_REDUCE_ON_PLATEAU, rp_args, 8, 0},
    };
    /* the defaults of docs/TRAINING.md, NAN where an argument is required */
    static const double defaults[][REF_MAX_SCHED_ARGS] = {
        [SCHED_CONSTANT] = {0},
        [SCHED_STEP] = {NAN, 0.1},
        [SCHED_EXPONENTIAL] = {NAN},
        [SCHED_COSINE] = {NAN, 0},
        [SCHED_WARMUP_COSINE] = {NAN, NAN, 0},
        [SCHED_CYCLIC] = {NAN, NAN, NAN, 0, 1},
        [SCHED_MULTISTEP] = {NAN, 0.1},
        [SCHED_LINEAR_WARMUP] = {NAN, 1.0 / 3, 1},
        [SCHED_ONE_CYCLE] = {NAN, 0.3, 0, 25, 1e4, 0},
        [SCHED_COSINE_RESTARTS] = {NAN, 1, 0},
        [SCHED_INVERSE_SQRT] = {NAN, 4000},
        [SCHED_REDUCE_ON_PLATEAU] = {0, 0.1, 10, 1e-4, 0, 0, 0, 1e-8},
    };
    char name[32];
    if (!ident(r, name, sizeof name))
        return error(r, "expected a schedule");
    int k;
    int nkinds = (int)(sizeof kinds / sizeof *kinds);
    for (k = 0; k < nkinds && strcmp(kinds[k].name, name) != 0; k++)
        ;
    if (k == nkinds)
        return error(r, "unknown schedule '%s'", name);
    s->sched = kinds[k].kind;
    double v[REF_MAX_SCHED_ARGS];
    memcpy(v, defaults[s->sched], sizeof v);
    r->list = s->milestones;
    r->nlist = &s->nmilestones;
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
    Reader r = {text, err, errsize, NULL, NULL};
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
        } else if (strcmp(name, "clip_value") == 0) {
            if (value(&r, &s->clip_value) != 0)
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
        double scale = a[3] == 1 ? 1 / pow(2, c - 1) : a[3] == 2 ? pow(a[4], td) : 1;
        return a[0] + (base - a[0]) * fmax(0, 1 - x) * scale;
    }
    case SCHED_MULTISTEP: {
        /* MultiStepLR: one factor of gamma per milestone reached */
        double r = base;
        for (int i = 0; i < s->nmilestones; i++)
            if (td >= s->milestones[i])
                r *= a[1];
        return r;
    }
    case SCHED_LINEAR_WARMUP: /* LinearLR's closed form */
        return base * (a[1] + (a[2] - a[1]) * fmin(td, a[0]) / a[0]);
    case SCHED_ONE_CYCLE: {
        /* OneCycleLR.get_lr(), with the step clamped to the last phase */
        double total = a[0], pct = a[1], initial = base / a[3], lowest = initial / a[4];
        typedef struct {
            double end, from, to;
        } Phase;
        Phase ph[3] = {{pct * total - 1, initial, base}, {total - 1, base, lowest}, {0, 0, 0}};
        int n = 2;
        if (a[5] != 0) {
            ph[1] = (Phase){2 * pct * total - 2, base, initial};
            ph[2] = (Phase){total - 1, initial, lowest};
            n = 3;
        }
        double start = 0;
        for (int i = 0; i < n; i++) {
            if (td <= ph[i].end || i == n - 1) {
                double p = fmin(1, (td - start) / (ph[i].end - start));
                if (a[2] == 0)
                    return ph[i].to + (ph[i].from - ph[i].to) / 2 * (cos(pi * p) + 1);
                return (ph[i].to - ph[i].from) * p + ph[i].from;
            }
            start = ph[i].end;
        }
        return NAN;
    }
    case SCHED_COSINE_RESTARTS: {
        /* CosineAnnealingWarmRestarts.step(): T_cur counts up, a restart
         * when it reaches T_i, which then grows by T_mult */
        double cur = td, len = a[0];
        while (cur >= len) {
            cur -= len;
            len *= a[1];
        }
        return cosine(a[2], base, cur / len);
    }
    case SCHED_INVERSE_SQRT: {
        double st = td + 1;
        return base * pow(a[0], -0.5) * fmin(pow(st, -0.5), st * pow(a[1], -1.5));
    }
    case SCHED_REDUCE_ON_PLATEAU: return base;
    }
    return NAN;
}

void ref_plateau_init(const TrainSpec *s, RefPlateau *p)
{
    p->best = s->sched_args[0] == 0 ? INFINITY : -INFINITY;
    p->bad = 0;
    p->cooldown = 0;
}

double ref_plateau_report(const TrainSpec *s, RefPlateau *p, double base, double metric)
{
    const double *a = s->sched_args; /* mode, factor, patience, threshold, threshold_mode,
                                        cooldown, min_lr, eps */
    int better;
    if (a[0] == 0)
        better = a[4] == 0 ? metric < p->best * (1 - a[3]) : metric < p->best - a[3];
    else
        better = a[4] == 0 ? metric > p->best * (1 + a[3]) : metric > p->best + a[3];
    if (better) {
        p->best = metric;
        p->bad = 0;
    } else {
        p->bad++;
    }
    if (p->cooldown > 0) {
        p->cooldown--;
        p->bad = 0;
    }
    if (p->bad > a[2]) {
        double lr = fmax(base * a[1], a[6]);
        if (base - lr > a[7])
            base = lr;
        p->cooldown = (int64_t)a[5];
        p->bad = 0;
    }
    return base;
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
    if (s->clip_value > 0)
        for (int i = 0; i < n; i++)
            g[i] = fmax(-s->clip_value, fmin(s->clip_value, g[i]));
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
        g[i] += wd * p[i] + s->l1 * (p[i] > 0 ? 1 : p[i] < 0 ? -1 : 0);
    switch (s->opt) {
    case OPT_SGD:
        for (int i = 0; i < n; i++) {
            double d = g[i];
            if (s->momentum > 0) {
                double *b = &slot[0][i];
                *b = t == 0 ? g[i] : s->momentum * *b + (1 - s->dampening) * g[i];
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

void ref_step_spread(const TrainSpec *s, double lr, int64_t t, int n, const double *p,
                     const double *g, double *const *slot, double u, double *spread)
{
    int ns = ref_nslots(s);
    size_t sz = sizeof(double) * (size_t)n + 1;
    double *base = malloc(sz), *q = malloc(sz), *h = malloc(sz);
    double *copy[REF_MAX_SLOTS];
    for (int k = 0; k < ns; k++)
        copy[k] = malloc(sz);
    for (int i = 0; i < n; i++)
        spread[i] = 0;
    for (int round = 0; round < 3; round++) {
        /* round 0: the step as it is; 1 and 2: the gradient moved by +-d */
        for (int i = 0; i < n; i++) {
            double d = u * (fabs(g[i]) + fabs(s->weight_decay * p[i]) + s->l1);
            q[i] = p[i];
            h[i] = g[i] + (round == 0 ? 0 : round == 1 ? d : -d);
        }
        for (int k = 0; k < ns; k++)
            memcpy(copy[k], slot[k], sz - 1);
        ref_step(s, lr, t, n, q, h, copy);
        for (int i = 0; i < n; i++) {
            if (round == 0)
                base[i] = q[i];
            else
                spread[i] = fmax(spread[i], fabs(q[i] - base[i]));
        }
    }
    for (int k = 0; k < ns; k++)
        free(copy[k]);
    free(base);
    free(q);
    free(h);
}
