/*
 * The several-objectives harness of the differential tester (README.md,
 * Several objectives), compiled per model whose training check drew more
 * than one objective:
 *
 *   cc -DMODEL=m -DMODEL_HEADER='"m.h"' -DTYPED_HEADER='"typed.h"' \
 *      objectives_harness.c m.o libdlrt.a -lopenblas -lpthread -lm
 *   ./harness m.dl
 *
 * The model holds one `train LOSS with OPT as oK;` line per objective
 * (docs/LANGUAGE.md, Several objectives), each loss its own linear
 * function of the outputs, each objective its own optimizer and maybe its
 * own `params = [...]`. Each step takes every objective in turn through
 * the generic entries of info->objectives[k] (its inputs only, picked by
 * objectives[k].inputs) and checks, against the f64 reference of
 * docs/TRAINING.md (tests/train/reference.c) with one optimizer state
 * per objective: the parameters of the objective's set (TRAINCHECK's
 * params=, from the generator) after PyTorch's update of the compiled
 * gradients, every other parameter and gradient untouched (an objective
 * touches no other's), its step counter moved by one and the others' not.
 * A second instance of the same seed takes the same steps through the
 * typed NAME_train_step_oK (TYPED_HEADER's typed_train_step): the same
 * loss and parameter bits, NAME_learning_rate_oK the schedule's. After
 * step `save` the first instance is saved and loaded into a third that
 * trained elsewhere, which takes the second's place: the same
 * parameters, optimizer state and every objective's counters.
 *
 * Before the first step and the one after the load each objective's
 * entries are given bad inputs (check_refusals); before step `setlr` one
 * objective's rate is set (bad rates refused), the others' kept. An
 * objective under reduce_on_plateau gets two drawn reports after each of
 * its steps, its reference plateau state following.
 *
 * Settings, words of "# OBJCHECK:" lines: steps=N, save=K (0: never),
 * setlr=K (objective (K-1) mod n's rate halved before step K, 0: never),
 * batch=N, seed=N, input=NAME range=LO,HI (every i32 input needs one)
 * hi=N (an input the entries check, valid in 0..N-1),
 * obj=NAME params=all|P,P,... (one per objective, in order), fault=F
 * (the reference's rates scaled by F: the tester's self-test).
 */
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include MODEL_HEADER
#include TYPED_HEADER
#include "reference.h"

#define HARNESS_TAG "OBJCHECK"
#include "harness_util.h"
#include "inputs.h"

enum { MAX_NAMED = 64, MAX_OBJ = 4 };

static struct {
    double fault;
    int steps, save, setlr, batch;
    uint64_t seed;
    named_input named[MAX_NAMED];
    int nnamed;
    struct {
        char name[64];
        char params[1024]; /* "all" or names separated by commas */
    } obj[MAX_OBJ];
    int nobj;
} cfg = {.steps = 3, .seed = 1, .fault = 1};

static void parse_setting(const char *k, char *v, bool line_start)
{
    static int cur = -1;
    if (line_start)
        cur = -1;
    if (strcmp(k, "fault") == 0) {
        cfg.fault = parse_num(k, v);
    } else if (strcmp(k, "steps") == 0) {
        cfg.steps = (int)parse_num(k, v);
    } else if (strcmp(k, "save") == 0) {
        cfg.save = (int)parse_num(k, v);
    } else if (strcmp(k, "batch") == 0) {
        cfg.batch = (int)parse_num(k, v);
    } else if (strcmp(k, "seed") == 0) {
        cfg.seed = (uint64_t)parse_num(k, v);
    } else if (strcmp(k, "input") == 0) {
        if (cfg.nnamed == MAX_NAMED)
            fatal("OBJCHECK: too many inputs named");
        cur = cfg.nnamed++;
        snprintf(cfg.named[cur].name, sizeof cfg.named[cur].name, "%s", v);
        cfg.named[cur].lo = -1;
        cfg.named[cur].hi = 1;
    } else if (strcmp(k, "range") == 0 && cur >= 0) {
        if (!parse_pair(v, &cfg.named[cur].lo, &cfg.named[cur].hi) ||
            !(cfg.named[cur].lo <= cfg.named[cur].hi))
            fatal("OBJCHECK: range=%s: expected LO,HI with LO <= HI", v);
    } else if (strcmp(k, "hi") == 0 && cur >= 0) {
        cfg.named[cur].valid = (int64_t)parse_num(k, v);
    } else if (strcmp(k, "setlr") == 0) {
        cfg.setlr = (int)parse_num(k, v);
    } else if (strcmp(k, "obj") == 0) {
        if (cfg.nobj == MAX_OBJ)
            fatal("OBJCHECK: too many objectives");
        snprintf(cfg.obj[cfg.nobj++].name, sizeof cfg.obj[0].name, "%s", v);
    } else if (strcmp(k, "params") == 0 && cfg.nobj > 0) {
        snprintf(cfg.obj[cfg.nobj - 1].params, sizeof cfg.obj[0].params, "%s", v);
    } else {
        fatal("OBJCHECK: unknown setting '%s'", k);
    }
}

static const dlrt_model_info *info;
static int64_t nscalars;

static double get(const void *a, int64_t k)
{
    return info->param_dtype == DLRT_F64 ? ((const double *)a)[k] : (double)((const float *)a)[k];
}

static void *params_of(void *m)
{
    return (unsigned char *)m + info->params_offset;
}

static void *grads_of(void *m)
{
    return (unsigned char *)m + info->grads_offset;
}

/* Objective k's counters: the header for the first, a record after the
 * optimizer state for the others (dlrt_abi.def). */
static dlrt_instance *counters(void *m, int k)
{
    return (dlrt_instance *)(void *)((unsigned char *)m + info->objectives[k].counters);
}

/* Every input, drawn fresh (i32 ones in their named range). */
static void **draw_inputs(int batch)
{
    return draw_all_inputs(info, batch, -1, 1, cfg.named, cfg.nnamed);
}

static void free_inputs(void **in)
{
    free_all_inputs(info, in);
}

/* Objective k's inputs of all of them. */
static const void **inputs_of(int k, void **all)
{
    const dlrt_objective_info *o = &info->objectives[k];
    const void **in = calloc((size_t)o->num_inputs + 1, sizeof *in);
    for (int i = 0; i < o->num_inputs; i++)
        in[i] = all[o->inputs[i]];
    return in;
}

/* Each objective's reference: its parsed train line, optimizer state,
 * base rate and trained scalars (trained[k][s]). */
static TrainSpec spec[MAX_OBJ];
static double *slots[MAX_OBJ][REF_MAX_SLOTS];
static double base_rate[MAX_OBJ];
static bool *trained[MAX_OBJ];
static RefPlateau plat[MAX_OBJ]; /* reduce_on_plateau's state, per objective */

/* The `train difftest_... with SPEC as NAME;` line of objective k. */
static void read_train(const char *path, int k)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fatal("cannot read %s", path);
    char line[1024], err[256], tail[80];
    snprintf(tail, sizeof tail, " as %s;", cfg.obj[k].name);
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *at = strstr(line, "train difftest_"), *end = strstr(line, tail);
        char *with = at ? strstr(at, " with ") : NULL;
        if (at && end && with && with < end) {
            *end = 0;
            /* the set is OBJCHECK's params=; the reference parses the rest */
            char *ps = strstr(with, ", params = ["), *pe = ps ? strchr(ps, ']') : NULL;
            if (pe)
                memmove(ps, pe + 1, strlen(pe + 1) + 1);
            if (ref_parse(with + strlen(" with "), &spec[k], err, sizeof err) != 0)
                fatal("objective %s's train statement: %s", cfg.obj[k].name, err);
            found = true;
        }
    }
    fclose(f);
    if (!found)
        fatal("%s has no 'train ... as %s;' line", path, cfg.obj[k].name);
}

/* Objective k's trained scalars: its params= set, less the frozen ones. */
static void read_set(int k)
{
    trained[k] = calloc((size_t)nscalars + 1, sizeof *trained[k]);
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        char list[1030];
        snprintf(list, sizeof list, ",%s,", cfg.obj[k].params);
        char name[80];
        snprintf(name, sizeof name, ",%s,", p->desc.name);
        if (p->frozen || (strcmp(cfg.obj[k].params, "all") != 0 && !strstr(list, name)))
            continue;
        int64_t off = (int64_t)((p->offset - info->params_offset) / elem_size(info->param_dtype));
        for (int64_t s = 0; s < count_at(p, info->max_batch, info->max_batch); s++)
            trained[k][off + s] = true;
    }
}

/* Objective k's reference update of p with gradients g at its step t;
 * spread as train_harness.c's reference_update gives it. */
static void reference_update(int k, double *p, const double *gin, int64_t t, double lr, double u,
                             double *spread)
{
    int64_t n = 0;
    double *tp = malloc(sizeof *tp * (size_t)nscalars + 1);
    double *tg = malloc(sizeof *tg * (size_t)nscalars + 1);
    int64_t *at = malloc(sizeof *at * (size_t)nscalars + 1);
    for (int64_t s = 0; s < nscalars; s++)
        if (trained[k][s]) {
            at[n] = s;
            tp[n] = p[s];
            tg[n++] = gin[s];
        }
    /* the slots are indexed by the trained scalars' rank, as the
     * objective's own optimizer state is laid out */
    double *sp = malloc(sizeof *sp * (size_t)nscalars + 1);
    ref_step_spread(&spec[k], lr * cfg.fault, t, (int)n, tp, tg, slots[k], u, sp);
    ref_step(&spec[k], lr * cfg.fault, t, (int)n, tp, tg, slots[k]);
    for (int64_t s = 0; s < nscalars; s++)
        spread[s] = 0;
    for (int64_t s = 0; s < n; s++) {
        p[at[s]] = tp[s];
        spread[at[s]] = sp[s];
    }
    free(sp);
    free(tp);
    free(tg);
    free(at);
}

/* Bad inputs to objective k's entries (API.md, Checked inputs), as
 * train_harness.c probes the first's: one element of a floating input
 * NaN or infinite, a checked i32 input -1 or its bound, a NaN gradient of
 * one of its parameters for its apply_gradients; each refused with its
 * code, the loss unwritten, the instance unchanged but for its arena. */
static void check_refusals(void *m, int step, int k, int batch, const void **in)
{
    const dlrt_objective_info *o = &info->objectives[k];
    size_t keep = info->arena_offset;
    unsigned char *before = malloc(keep + 1);
    memcpy(before, m, keep);
    for (int i = 0; i < o->num_inputs; i++) {
        const dlrt_tensor_info *t = &info->inputs[o->inputs[i]];
        int64_t c = count_at(t, info->max_batch, batch);
        const named_input *nm = named_of(cfg.named, cfg.nnamed, t->desc.name);
        int64_t valid = nm ? nm->valid : 0;
        bool isf = t->desc.dtype == DLRT_F32 || t->desc.dtype == DLRT_F64;
        if (c == 0 || (!isf && !(t->desc.dtype == DLRT_I32 && valid > 0)))
            continue;
        int64_t e = (int64_t)(rng_next() % (uint64_t)c);
        unsigned char *buf = (unsigned char *)(uintptr_t)in[i];
        size_t es = elem_size(t->desc.dtype);
        unsigned char saved[8];
        memcpy(saved, buf + (size_t)e * es, es);
        double bad = spoil_input(t, buf, e, step + i + k, valid);
        int want = isf ? DLRT_ENONFINITE : DLRT_ERANGE;
        double loss[2] = {1234.5, 1234.5};
        int rc = o->compute_gradients(m, batch, in, loss);
        if (rc != want || memcmp(before, m, keep) != 0 || loss[0] != 1234.5)
            fail("step %d: compute_gradients_%s with %s[%" PRId64 "] = %g returned %d (want %d)%s",
                 step, o->name, t->desc.name, e, bad, rc, want,
                 memcmp(before, m, keep) ? " and changed the instance"
                 : loss[0] != 1234.5    ? " and wrote the loss" : "");
        rc = o->evaluate(m, batch, in, loss);
        if (rc != want || memcmp(before, m, keep) != 0)
            fail("step %d: evaluate_%s with %s[%" PRId64 "] = %g returned %d (want %d)%s", step,
                 o->name, t->desc.name, e, bad, rc, want,
                 memcmp(before, m, keep) ? " and changed the instance" : "");
        memcpy(buf + (size_t)e * es, saved, es);
    }
    for (int64_t s = 0; s < nscalars; s++) {
        if (!trained[k][s])
            continue;
        size_t es = elem_size(info->param_dtype);
        unsigned char *gp = (unsigned char *)grads_of(m) + (size_t)s * es, zero[8];
        memcpy(zero, gp, es);
        double f = NAN;
        float f32 = NAN;
        memcpy(gp, info->param_dtype == DLRT_F64 ? (void *)&f : (void *)&f32, es);
        memcpy(before, m, keep);
        int rc = o->apply_gradients(m);
        if (rc != DLRT_ENONFINITE || memcmp(before, m, keep) != 0)
            fail("step %d: apply_gradients_%s with a NaN gradient scalar %" PRId64
                 " returned %d (want %d)%s",
                 step, o->name, s, rc, DLRT_ENONFINITE,
                 memcmp(before, m, keep) ? " and changed the instance" : "");
        memcpy(gp, zero, es);
        break;
    }
    free(before);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal("usage: %s MODEL.dl", argv[0]);
    read_settings(argv[1], parse_setting);
    info = MODEL_FN(_info)();
    if (info->num_objectives != cfg.nobj || cfg.nobj < 2)
        fatal("%s: %d objectives, OBJCHECK names %d", info->name, info->num_objectives, cfg.nobj);
    if (info->param_dtype != DLRT_F32 && info->param_dtype != DLRT_F64)
        fatal("%s: parameters of a type this harness does not check", info->name);
    dlrt_set_num_threads(1);
    int batch = info->max_batch == 0 ? 1 : cfg.batch ? cfg.batch : info->max_batch < 3 ? info->max_batch : 3;
    nscalars = (int64_t)(info->params_bytes / elem_size(info->param_dtype));
    bool f64 = info->param_dtype == DLRT_F64, loss64 = info->loss_dtype == DLRT_F64;
    double rtol = f64 ? 1e-10 : 1e-4, ulp = f64 ? 0x1p-51 : 0x1p-22;
    int nobj = cfg.nobj;
    for (int k = 0; k < nobj; k++) {
        if (!info->objectives[k].name || strcmp(info->objectives[k].name, cfg.obj[k].name) != 0)
            fail("objective %d is named %s, want %s", k,
                 info->objectives[k].name ? info->objectives[k].name : "(none)", cfg.obj[k].name);
        read_train(argv[1], k);
        read_set(k);
        for (int s = 0; s < REF_MAX_SLOTS; s++)
            slots[k][s] = calloc((size_t)nscalars + 1, sizeof(double));
        base_rate[k] = ref_initial_base(&spec[k]);
        ref_plateau_init(&spec[k], &plat[k]);
    }
    if (failures)
        return 1;
    printf("%s: %d objectives, %d steps at batch %d, %" PRId64 " parameter scalars\n", info->name,
           nobj, cfg.steps, batch, nscalars);
    rng_state = cfg.seed * 0x2545F4914F6CDD1Du + 13;

    void *a = MODEL_FN(_create)(cfg.seed), *b = MODEL_FN(_create)(cfg.seed);
    if (!a || !b)
        fatal("%s_create failed", info->name);
    double *p = malloc(sizeof *p * (size_t)nscalars + 1);
    double *g = malloc(sizeof *g * (size_t)nscalars + 1);
    double *p0 = malloc(sizeof *p0 * (size_t)nscalars + 1);
    double *spread = malloc(sizeof *spread * (size_t)nscalars + 1);
    char path[64];
    snprintf(path, sizeof path, "obj-%ld.safetensors", (long)getpid());

    for (int step = 1; step <= cfg.steps; step++) {
        for (int k = 0; k < nobj; k++) {
            const dlrt_objective_info *o = &info->objectives[k];
            void **all = draw_inputs(batch);
            const void **in = inputs_of(k, all);
            int64_t steps_before[MAX_OBJ];
            for (int j = 0; j < nobj; j++)
                steps_before[j] = counters(a, j)->step;
            int64_t t = steps_before[k];
            if (t != step - 1)
                fail("step %d, %s: its step counter is %" PRId64 " before it", step, o->name, t);
            if (step == cfg.setlr && k == (step - 1) % nobj) {
                /* one objective's rate set mid-run: bad ones refused with
                 * the rate kept, then half the rate as its new base */
                double was = typed_learning_rate(k, a), others[MAX_OBJ];
                for (int j = 0; j < nobj; j++)
                    others[j] = counters(a, j)->lr;
                const double badrates[] = {-1, NAN, INFINITY};
                for (int i = 0; i < 3; i++)
                    if (typed_set_learning_rate(k, a, badrates[i]) != DLRT_EINVAL ||
                        typed_learning_rate(k, a) != was)
                        fail("set_learning_rate_%s(%g) was not refused with the rate kept",
                             o->name, badrates[i]);
                base_rate[k] = 0.5 * was;
                base_rate[k] = f64 ? base_rate[k] : (double)(float)base_rate[k];
                int rc1 = typed_set_learning_rate(k, a, base_rate[k]);
                int rc2 = typed_set_learning_rate(k, b, base_rate[k]);
                if (rc1 || rc2)
                    fail("step %d: set_learning_rate_%s returned %d, %d", step, o->name, rc1, rc2);
                for (int j = 0; j < nobj; j++)
                    if (j != k && counters(a, j)->lr != others[j])
                        fail("set_learning_rate_%s changed %s's rate", o->name,
                             info->objectives[j].name);
            }
            double lr = ref_rate(&spec[k], base_rate[k], t);
            double got_lr = typed_learning_rate(k, b);
            if (!(fabs(got_lr - lr) <= (f64 ? 1e-12 : 1e-6) * fabs(lr)))
                fail("step %d, %s: the rate is %.17g, the schedule's %.17g", step, o->name,
                     got_lr, lr);
            if (step == 1 || step == cfg.save + 1)
                check_refusals(a, step, k, batch, in);
            for (int64_t s = 0; s < nscalars; s++)
                p[s] = p0[s] = get(params_of(a), s);
            double loss_a = 0, loss_b = 0;
            float la32 = 0, lb32 = 0;
            int rc = o->compute_gradients(a, batch, in, loss64 ? (void *)&loss_a : (void *)&la32);
            if (rc != 0)
                fatal("step %d, %s: compute_gradients returned %d (%s)", step, o->name, rc,
                      dlrt_strerror(rc));
            for (int64_t s = 0; s < nscalars; s++) {
                g[s] = get(grads_of(a), s);
                if (g[s] != 0 && !trained[k][s]) {
                    fail("step %d, %s: compute_gradients wrote gradient scalar %" PRId64
                         " (%g), not among its parameters",
                         step, o->name, s, g[s]);
                    break;
                }
            }
            if ((rc = o->apply_gradients(a)) != 0)
                fatal("step %d, %s: apply_gradients returned %d (%s)", step, o->name, rc,
                      dlrt_strerror(rc));
            reference_update(k, p, g, t, lr, f64 ? 0x1p-52 : 0x1p-23, spread);
            int bad = 0;
            double worst = 0;
            for (int64_t s = 0; s < nscalars; s++) {
                double got = get(params_of(a), s), want = p[s];
                double err = fabs(got - want);
                double tol = trained[k][s] ? rtol * fabs(want - p0[s]) +
                                                 ulp * fmax(fabs(want), 1e-300) + spread[s]
                                           : 0;
                if (!(err <= tol) && bad++ < 5)
                    fail("step %d, %s: parameter scalar %" PRId64 " is %.17g, %s %.17g (from "
                         "%.17g, gradient %.17g, rate %g)",
                         step, o->name, s, got,
                         trained[k][s] ? "PyTorch's update gives" : "not its own, it was", want,
                         p0[s], g[s], lr);
                if (trained[k][s])
                    worst = fmax(worst, err / fmax(fabs(want), 1e-300));
            }
            if (bad > 5)
                fail("step %d, %s: %d more parameter scalars differ", step, o->name, bad - 5);
            for (int j = 0; j < nobj; j++)
                if (counters(a, j)->step != steps_before[j] + (j == k))
                    fail("step %d, %s: objective %s's counter went from %" PRId64 " to %" PRId64,
                         step, o->name, info->objectives[j].name, steps_before[j],
                         counters(a, j)->step);
            for (int64_t s = 0; s < nscalars; s++)
                if (get(grads_of(a), s) != 0) {
                    fail("step %d, %s: apply_gradients left gradient scalar %" PRId64 " at %g",
                         step, o->name, s, get(grads_of(a), s));
                    break;
                }
            /* the typed NAME_train_step_oK on the second instance */
            rc = typed_train_step(k, b, batch, in, loss64 ? (void *)&loss_b : (void *)&lb32);
            if (rc != 0)
                fatal("step %d: %s_train_step_%s returned %d (%s)", step, info->name, o->name, rc,
                      dlrt_strerror(rc));
            if (loss64 ? memcmp(&loss_a, &loss_b, sizeof loss_a) != 0
                       : memcmp(&la32, &lb32, sizeof la32) != 0)
                fail("step %d: train_step_%s's loss %.17g, compute_gradients' %.17g", step,
                     o->name, loss64 ? loss_b : (double)lb32, loss64 ? loss_a : (double)la32);
            if (memcmp(params_of(a), params_of(b), info->params_bytes) != 0)
                fail("step %d: train_step_%s's parameters differ from the generic entries'%s",
                     step, o->name, step > cfg.save && cfg.save ? " (after the load)" : "");
            printf("  step %d, %s: loss %.17g, rate %g, max rel. difference from the reference "
                   "%.3g\n",
                   step, o->name, loss64 ? loss_a : (double)la32, lr, worst);
            if (spec[k].sched == SCHED_REDUCE_ON_PLATEAU) {
                /* two drawn reports after each of its steps, as
                 * train_harness.c makes: the generic
                 * dlrt_model_report_metric_objective on the first
                 * instance, NAME_report_metric_oK on the second; the other
                 * objectives' base rates kept */
                double was = counters(a, k)->lr, others[MAX_OBJ];
                for (int j = 0; j < nobj; j++)
                    others[j] = counters(a, j)->lr;
                if (dlrt_model_report_metric_objective(a, k, NAN) != DLRT_ENONFINITE ||
                    counters(a, k)->lr != was)
                    fail("report_metric_%s(NaN) was not refused with the rate kept", o->name);
                for (int r = 0; r < 2; r++) {
                    double metric = rng_uniform(0, 1);
                    base_rate[k] = ref_plateau_report(&spec[k], &plat[k], base_rate[k], metric);
                    base_rate[k] = f64 ? base_rate[k] : (double)(float)base_rate[k];
                    int rc1 = dlrt_model_report_metric_objective(a, k, metric);
                    int rc2 = typed_report_metric(k, b, metric);
                    if (rc1 || rc2)
                        fail("step %d: report_metric_%s returned %d, %d", step, o->name, rc1, rc2);
                }
                for (int j = 0; j < nobj; j++)
                    if (j != k && counters(a, j)->lr != others[j])
                        fail("report_metric_%s changed %s's rate", o->name,
                             info->objectives[j].name);
            }
            free(in);
            free_inputs(all);
        }
        if (step == cfg.save) {
            /* a third instance, trained a step of each objective on other
             * inputs, loads a's checkpoint and takes b's place */
            void *c = MODEL_FN(_create)(cfg.seed);
            if (!c)
                fatal("%s_create failed", info->name);
            for (int k = 0; k < nobj; k++) {
                void **all = draw_inputs(batch);
                const void **in = inputs_of(k, all);
                double lc;
                float lc32;
                int rc = info->objectives[k].compute_gradients(c, batch, in,
                                                               loss64 ? (void *)&lc : (void *)&lc32);
                if (rc || (rc = info->objectives[k].apply_gradients(c)))
                    fatal("training the third instance: %d (%s)", rc, dlrt_strerror(rc));
                free(in);
                free_inputs(all);
            }
            int rc = MODEL_FN(_save)(a, path);
            if (rc != 0)
                fatal("%s_save: %d (%s)", info->name, rc, dlrt_strerror(rc));
            unsigned status = 99;
            if ((rc = dlrt_model_load_ex(c, path, &status)) != 0 || status != 0)
                fail("loading the checkpoint of step %d: %d, status %u (%s)", step, rc, status,
                     rc ? dlrt_last_error() : "want 0: it has the optimizer state");
            if (memcmp(params_of(a), params_of(c), info->params_bytes) != 0)
                fail("after the load the parameters differ from the saved ones");
            if (memcmp((unsigned char *)a + info->opt_offset, (unsigned char *)c + info->opt_offset,
                       info->opt_bytes) != 0)
                fail("after the load the optimizer state differs from the saved one");
            for (int k = 0; k < nobj; k++)
                if (counters(c, k)->step != counters(a, k)->step ||
                    counters(c, k)->lr != counters(a, k)->lr)
                    fail("after the load %s's step and base rate are %" PRId64 ", %g; saved "
                         "%" PRId64 ", %g",
                         info->objectives[k].name, counters(c, k)->step, counters(c, k)->lr,
                         counters(a, k)->step, counters(a, k)->lr);
            remove(path);
            MODEL_FN(_destroy)(b);
            b = c;
        }
    }
    MODEL_FN(_destroy)(a);
    MODEL_FN(_destroy)(b);
    free(p);
    free(p0);
    free(spread);
    free(g);
    for (int k = 0; k < nobj; k++) {
        free(trained[k]);
        for (int s = 0; s < REF_MAX_SLOTS; s++)
            free(slots[k][s]);
    }
    printf("%s: %s\n", info->name, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
