/*
 * The training-step harness of the differential tester (README.md),
 * compiled once per model with training code:
 *
 *   cc -DMODEL=m -DMODEL_HEADER='"m.h"' -DTYPED_HEADER='"typed.h"' \
 *      train_harness.c m.o libdlrt.a -lopenblas -lpthread -lm
 *   ./harness m.dl
 *
 * It runs a few optimizer steps through the generic entries of
 * NAME_info() (compute_gradients, then apply_gradients) and checks every
 * parameter after each step against the update PyTorch's optimizer makes
 * from the same gradients, and the rate against the schedule's: the f64
 * reference of docs/TRAINING.md (tests/train/reference.c, which reads the
 * model's own `train difftest_loss with ...;` line), with its own
 * optimizer state carried from step to step. The gradients are the
 * compiled ones (tests/gradcheck checks those against finite
 * differences), so this checks the update, its state, the schedule and
 * the step counter, in the model's parameter type whatever the types of
 * its inputs and loss (mixed-type models included).
 *
 * Beside it a second instance of the same seed takes the same steps
 * through the typed NAME_train_step (TYPED_HEADER's typed_train_step, which
 * difftest.py writes for the model's inputs): the same loss and parameter
 * bits. After step `save` the first instance is saved with NAME_save and
 * the file loaded into a third instance of the same seed that has trained
 * on other inputs (another step count, parameters and optimizer state:
 * the seed, which keys dropout's masks, is not in a checkpoint); it replaces the
 * second, so every later step checks that the checkpoint restored the
 * optimizer state and the step to the bit. `setlr` sets the rate
 * (NAME_set_learning_rate) before that step; the reference reads it back.
 * Under `reduce_on_plateau` both instances report two values drawn in
 * [0, 1) (NAME_report_metric) after each step, the reference's plateau
 * state following (ref_plateau_report); the state the third instance
 * loads must lead to the same rates, and a NaN report must be refused
 * with the rate kept.
 *
 * Before the first step and the one after the load, bad inputs are
 * probed (check_refusals): a NaN or infinite element of each floating
 * input, a checked i32 input (hi= below) at -1 or its bound, a NaN
 * gradient for apply_gradients; each must be refused with its code
 * (DLRT_ENONFINITE, DLRT_ERANGE), the loss unwritten and the instance
 * unchanged bit for bit but for its arena (docs/API.md, Checked inputs).
 *
 * Settings, words of "# TRAINCHECK:" lines (key=value):
 *
 *   steps=N (default 3), save=K (save after step K, 0: never), setlr=K
 *   (half the rate as the new base before step K, 0: never),
 *   batch=N, seed=N, range=LO,HI (floating inputs, default -1,1) and
 *   input=NAME range=LO,HI (every i32 input needs one) hi=N (an input
 *   the entry points check, valid in 0..N-1);
 *   fault=F scales the reference's rate by F (the tester's self-test).
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

#define HARNESS_TAG "TRAINCHECK"
#include "harness_util.h"
#include "inputs.h"

enum { MAX_NAMED = 64 };

static struct {
    double fault;
    int steps, save, setlr, batch;
    uint64_t seed;
    double lo, hi;
    named_input named[MAX_NAMED];
    int nnamed;
} cfg = {.steps = 3, .seed = 1, .lo = -1, .hi = 1, .fault = 1};

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
    } else if (strcmp(k, "setlr") == 0) {
        cfg.setlr = (int)parse_num(k, v);
    } else if (strcmp(k, "batch") == 0) {
        cfg.batch = (int)parse_num(k, v);
    } else if (strcmp(k, "seed") == 0) {
        cfg.seed = (uint64_t)parse_num(k, v);
    } else if (strcmp(k, "input") == 0) {
        if (cfg.nnamed == MAX_NAMED)
            fatal("TRAINCHECK: too many inputs named");
        cur = cfg.nnamed++;
        snprintf(cfg.named[cur].name, sizeof cfg.named[cur].name, "%s", v);
        cfg.named[cur].lo = cfg.lo;
        cfg.named[cur].hi = cfg.hi;
    } else if (strcmp(k, "hi") == 0 && cur >= 0) {
        cfg.named[cur].valid = (int64_t)parse_num(k, v);
    } else if (strcmp(k, "range") == 0) {
        double lo, hi;
        if (!parse_pair(v, &lo, &hi) || !(lo <= hi))
            fatal("TRAINCHECK: range=%s: expected LO,HI with LO <= HI", v);
        if (cur >= 0) {
            cfg.named[cur].lo = lo;
            cfg.named[cur].hi = hi;
        } else {
            cfg.lo = lo;
            cfg.hi = hi;
        }
    } else {
        fatal("TRAINCHECK: unknown setting '%s'", k);
    }
}

static const dlrt_model_info *info;
static int64_t nscalars;

/* Scalar k of a parameter-typed array (the parameters or the gradients). */
static double get(const void *a, int64_t k)
{
    return info->param_dtype == DLRT_F64 ? ((const double *)a)[k] : (double)((const float *)a)[k];
}

static void *params_of(MODEL *m)
{
    return (unsigned char *)m + info->params_offset;
}

static void *grads_of(MODEL *m)
{
    return (unsigned char *)m + info->grads_offset;
}

/* One step's inputs, drawn fresh. */
static const void **draw_inputs(int batch)
{
    return (const void **)draw_all_inputs(info, batch, cfg.lo, cfg.hi, cfg.named, cfg.nnamed);
}

static void free_inputs(const void **in)
{
    free_all_inputs(info, (void **)(uintptr_t)in);
}

/* The reference (tests/train/reference.c, docs/TRAINING.md in f64): the
 * model's `train ... with` text parsed, its optimizer state slots, the
 * base rate. */
static TrainSpec spec;
static double *slots[REF_MAX_SLOTS];
static double base_rate;

/* The `train difftest_loss with ...;` line's options, parsed. */
static void read_train(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        fatal("cannot read %s", path);
    char line[1024], err[256];
    const char *key = "train difftest_loss with ";
    bool found = false;
    while (!found && fgets(line, sizeof line, f)) {
        char *at = strstr(line, key), *end = strrchr(line, ';');
        if (at && end) {
            *end = 0;
            if (ref_parse(at + strlen(key), &spec, err, sizeof err) != 0)
                fatal("the train statement: %s", err);
            found = true;
        }
    }
    fclose(f);
    if (!found)
        fatal("%s has no 'train difftest_loss with ...;' line", path);
}

/* The parameters after one update of p with gradients g (both copied to
 * double) at 0-based step t and rate lr, over the trained scalars; spread:
 * how far the rounding of the decayed gradient in the parameters' type
 * (unit roundoff u) may move each (ref_step_spread, 0 for the others). */
static void reference_update(double *p, const double *gin, int64_t t, double lr, double u,
                             double *spread)
{
    int64_t n = 0;
    double *tp = malloc(sizeof *tp * (size_t)nscalars + 1);
    double *tg = malloc(sizeof *tg * (size_t)nscalars + 1);
    int64_t *at = malloc(sizeof *at * (size_t)nscalars + 1);
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *pi = &info->params[i];
        int64_t off = (int64_t)((pi->offset - info->params_offset) / elem_size(info->param_dtype));
        for (int64_t k = 0; k < count_at(pi, info->max_batch, info->max_batch) && !pi->frozen;
             k++) {
            at[n] = off + k;
            tp[n] = p[off + k];
            tg[n++] = gin[off + k];
        }
    }
    double *sp = malloc(sizeof *sp * (size_t)nscalars + 1);
    ref_step_spread(&spec, lr * cfg.fault, t, (int)n, tp, tg, slots, u, sp);
    ref_step(&spec, lr * cfg.fault, t, (int)n, tp, tg, slots);
    for (int64_t k = 0; k < nscalars; k++)
        spread[k] = 0;
    for (int64_t k = 0; k < n; k++) {
        p[at[k]] = tp[k];
        spread[at[k]] = sp[k];
    }
    free(sp);
    free(tp);
    free(tg);
    free(at);
}

/* Bad inputs (API.md, Checked inputs): one element of a floating input
 * made NaN or infinite, a checked i32 input (labels, ids, lengths) made
 * -1 or its bound, and a NaN gradient handed to apply_gradients are each
 * refused with their code, the loss not written and the instance block
 * unchanged bit for bit but for the arena. */
static void check_refusals(MODEL *m, int step, int batch, const void **in)
{
    size_t keep = info->arena_offset;
    unsigned char *before = malloc(keep + 1);
    memcpy(before, m, keep);
    for (int i = 0; i < info->num_inputs; i++) {
        const dlrt_tensor_info *t = &info->inputs[i];
        int64_t c = count_at(t, info->max_batch, batch);
        const named_input *nm = named_of(cfg.named, cfg.nnamed, t->desc.name);
        int64_t valid = nm ? nm->valid : 0;
        bool isf = t->desc.dtype == DLRT_F32 || t->desc.dtype == DLRT_F64;
        if (c == 0 || (!isf && !(t->desc.dtype == DLRT_I32 && valid > 0)))
            continue;
        int64_t k = (int64_t)(rng_next() % (uint64_t)c);
        unsigned char *buf = (unsigned char *)(uintptr_t)in[i];
        size_t es = elem_size(t->desc.dtype);
        unsigned char saved[8];
        memcpy(saved, buf + (size_t)k * es, es);
        double bad = spoil_input(t, buf, k, step + i, valid);
        int want = isf ? DLRT_ENONFINITE : DLRT_ERANGE;
        double loss[2] = {1234.5, 1234.5}; /* a sentinel that must stay */
        int rc = info->compute_gradients(m, batch, in, loss);
        if (rc != want)
            fail("step %d: compute_gradients with %s[%" PRId64 "] = %g returned %d, want %d",
                 step, t->desc.name, k, bad, rc, want);
        else if (memcmp(before, m, keep) != 0)
            fail("step %d: compute_gradients refused %s[%" PRId64 "] = %g but changed the instance",
                 step, t->desc.name, k, bad);
        if (loss[0] != 1234.5)
            fail("step %d: a refused compute_gradients wrote the loss", step);
        rc = info->evaluate(m, batch, in, loss);
        if (rc != want || memcmp(before, m, keep) != 0)
            fail("step %d: evaluate with %s[%" PRId64 "] = %g returned %d (want %d)%s", step,
                 t->desc.name, k, bad, rc, want,
                 memcmp(before, m, keep) ? " and changed the instance" : "");
        memcpy(buf + (size_t)k * es, saved, es);
    }
    /* a NaN gradient of a trained parameter */
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *p = &info->params[i];
        if (p->frozen)
            continue;
        unsigned char *gp = (unsigned char *)grads_of(m) + (p->offset - info->params_offset);
        size_t es = elem_size(info->param_dtype);
        unsigned char zero[8];
        memcpy(zero, gp, es);
        double f = NAN;
        float f32 = NAN;
        memcpy(gp, info->param_dtype == DLRT_F64 ? (void *)&f : (void *)&f32, es);
        memcpy(before, m, keep);
        int rc = info->apply_gradients(m);
        if (rc != DLRT_ENONFINITE || memcmp(before, m, keep) != 0)
            fail("step %d: apply_gradients with a NaN gradient of %s returned %d (want %d)%s",
                 step, p->desc.name, rc, DLRT_ENONFINITE,
                 memcmp(before, m, keep) ? " and changed the instance" : "");
        memcpy(gp, zero, es);
        break;
    }
    free(before);
}

/* The parameters of a and b have the same bits. */
static bool same_params(MODEL *a, MODEL *b)
{
    return memcmp(params_of(a), params_of(b), info->params_bytes) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        fatal("usage: %s MODEL.dl", argv[0]);
    read_settings(argv[1], parse_setting);
    read_train(argv[1]);
    info = MODEL_FN(_info)();
    if (!info->compute_gradients || !info->apply_gradients)
        fatal("%s: no training code", info->name);
    if (info->param_dtype != DLRT_F32 && info->param_dtype != DLRT_F64)
        fatal("%s: parameters of a type this harness does not check", info->name);
    dlrt_set_num_threads(1);
    int batch = info->max_batch == 0 ? 1 : cfg.batch ? cfg.batch : info->max_batch < 3 ? info->max_batch : 3;
    nscalars = (int64_t)(info->params_bytes / elem_size(info->param_dtype));
    bool f64 = info->param_dtype == DLRT_F64;
    /* per element: the update's own rounding in the parameters' type, a
     * few of its ulps (rtol of the update), and p's rounding (an ulp of
     * p) */
    double rtol = f64 ? 1e-10 : 1e-4, ulp = f64 ? 0x1p-51 : 0x1p-22;
    printf("%s: %d steps at batch %d, %" PRId64 " parameter scalars\n", info->name, cfg.steps,
           batch, nscalars);
    rng_state = cfg.seed * 0x2545F4914F6CDD1Du + 11;

    MODEL *a = MODEL_FN(_create)(cfg.seed), *b = MODEL_FN(_create)(cfg.seed);
    if (!a || !b)
        fatal("%s_create failed", info->name);
    for (int k = 0; k < REF_MAX_SLOTS; k++)
        slots[k] = calloc((size_t)nscalars + 1, sizeof(double));
    base_rate = ref_initial_base(&spec);
    double *p = malloc(sizeof *p * (size_t)nscalars + 1);
    double *g = malloc(sizeof *g * (size_t)nscalars + 1);
    double *p0 = malloc(sizeof *p0 * (size_t)nscalars + 1);
    double *spread = malloc(sizeof *spread * (size_t)nscalars + 1);
    char path[64];
    snprintf(path, sizeof path, "train-%ld.safetensors", (long)getpid());
    bool plateau = spec.sched == SCHED_REDUCE_ON_PLATEAU;
    RefPlateau plat;
    ref_plateau_init(&spec, &plat);

    for (int step = 1; step <= cfg.steps; step++) {
        const void **in = draw_inputs(batch);
        if (step == cfg.setlr) {
            /* a rate that is not finite or below 0 is refused, the rate
             * kept (API.md) */
            double was = (double)MODEL_FN(_learning_rate)(a);
            const double badrates[] = {-1, NAN, INFINITY};
            for (int i = 0; i < 3; i++)
                if (MODEL_FN(_set_learning_rate)(a, badrates[i]) != DLRT_EINVAL ||
                    (double)MODEL_FN(_learning_rate)(a) != was)
                    fail("set_learning_rate(%g) was not refused with the rate kept", badrates[i]);
            /* a new base rate, in the type the function takes */
            base_rate = 0.5 * was;
            base_rate = f64 ? base_rate : (double)(float)base_rate;
            int rc1 = MODEL_FN(_set_learning_rate)(a, base_rate);
            int rc2 = MODEL_FN(_set_learning_rate)(b, base_rate);
            if (rc1 || rc2)
                fail("step %d: set_learning_rate returned %d, %d", step, rc1, rc2);
        }
        int64_t t = MODEL_FN(_step)(a);
        /* the schedule's rate of this step, as NAME_learning_rate says */
        double lr = ref_rate(&spec, base_rate, t), got_lr = (double)MODEL_FN(_learning_rate)(a);
        if (!(fabs(got_lr - lr) <= (f64 ? 1e-12 : 1e-6) * fabs(lr)))
            fail("step %d: the rate is %.17g, the schedule's %.17g", step, got_lr, lr);
        if (t != step - 1)
            fail("step %d: the step counter is %" PRId64 " before it", step, t);
        for (int64_t k = 0; k < nscalars; k++) {
            p[k] = p0[k] = get(params_of(a), k);
            if (get(grads_of(a), k) != 0) {
                fail("step %d: gradient scalar %" PRId64 " is %g before it", step, k,
                     get(grads_of(a), k));
                break;
            }
        }
        if (step == 1 || step == cfg.save + 1)
            check_refusals(a, step, batch, in);
        double loss_a = 0, loss_b = 0;
        float la32 = 0, lb32 = 0;
        bool loss64 = info->loss_dtype == DLRT_F64;
        int rc = info->compute_gradients(a, batch, in, loss64 ? (void *)&loss_a : (void *)&la32);
        if (rc != 0)
            fatal("step %d: compute_gradients returned %d (%s)", step, rc, dlrt_strerror(rc));
        for (int64_t k = 0; k < nscalars; k++)
            g[k] = get(grads_of(a), k);
        if ((rc = info->apply_gradients(a)) != 0)
            fatal("step %d: apply_gradients returned %d (%s)", step, rc, dlrt_strerror(rc));
        reference_update(p, g, t, lr, f64 ? 0x1p-52 : 0x1p-23, spread);
        int bad = 0;
        double worst = 0;
        for (int64_t k = 0; k < nscalars; k++) {
            double got = get(params_of(a), k), want = p[k];
            double err = fabs(got - want);
            double tol = rtol * fabs(want - p0[k]) + ulp * fmax(fabs(want), 1e-300) + spread[k];
            if (!(err <= tol)) {
                if (bad++ < 5)
                    fail("step %d: parameter scalar %" PRId64 " is %.17g, PyTorch's update gives "
                         "%.17g (from %.17g, gradient %.17g, rate %g)",
                         step, k, got, want, p0[k], g[k], lr);
            }
            worst = fmax(worst, err / fmax(fabs(want), 1e-300));
        }
        if (bad > 5)
            fail("step %d: %d more parameter scalars differ", step, bad - 5);
        if (MODEL_FN(_step)(a) != t + 1)
            fail("step %d: the counter is %" PRId64 " after it, want %" PRId64, step,
                 MODEL_FN(_step)(a), t + 1);
        for (int64_t k = 0; k < nscalars; k++)
            if (get(grads_of(a), k) != 0) {
                fail("step %d: apply_gradients left gradient scalar %" PRId64 " at %g", step, k,
                     get(grads_of(a), k));
                break;
            }

        /* the typed entry on the second instance: the same bits */
        rc = typed_train_step(b, batch, in, loss64 ? (void *)&loss_b : (void *)&lb32);
        if (rc != 0)
            fatal("step %d: %s_train_step returned %d (%s)", step, info->name, rc,
                  dlrt_strerror(rc));
        if (loss64 ? memcmp(&loss_a, &loss_b, sizeof loss_a) != 0
                   : memcmp(&la32, &lb32, sizeof la32) != 0)
            fail("step %d: train_step's loss %.17g, compute_gradients' %.17g", step,
                 loss64 ? loss_b : (double)lb32, loss64 ? loss_a : (double)la32);
        if (!same_params(a, b))
            fail("step %d: train_step's parameters differ from compute_gradients and "
                 "apply_gradients'%s",
                 step, step > cfg.save && cfg.save ? " (after the checkpoint's load)" : "");
        printf("  step %d: loss %.17g, rate %g, max rel. difference from the reference %.3g\n",
               step, loss64 ? loss_a : (double)la32, lr, worst);
        if (plateau) {
            if (step == 1) {
                double was = (double)MODEL_FN(_learning_rate)(a);
                if (MODEL_FN(_report_metric)(a, NAN) != DLRT_ENONFINITE ||
                    (double)MODEL_FN(_learning_rate)(a) != was)
                    fail("report_metric(NaN) was not refused with the rate kept");
            }
            /* drawn, not the loss: validation values that improve or not at
             * random, two after each step, so that over the few steps some
             * reports reduce the rate, whatever the mode */
            for (int k = 0; k < 2; k++) {
                double metric = rng_uniform(0, 1);
                base_rate = ref_plateau_report(&spec, &plat, base_rate, metric);
                base_rate = f64 ? base_rate : (double)(float)base_rate;
                int rc1 = MODEL_FN(_report_metric)(a, metric);
                int rc2 = MODEL_FN(_report_metric)(b, metric);
                if (rc1 || rc2)
                    fail("step %d: report_metric returned %d, %d", step, rc1, rc2);
            }
        }
        free_inputs(in);

        if (step == cfg.save) {
            /* a third instance, trained elsewhere, loads a's checkpoint and
             * takes b's place; of the same seed, which keys dropout's and
             * stochastic pools' draws and is not in a checkpoint
             * (docs/TRAINING.md: resume with the same seed) */
            MODEL *c = MODEL_FN(_create)(cfg.seed);
            if (!c)
                fatal("%s_create failed", info->name);
            const void **other = draw_inputs(batch);
            float lc32;
            double lc;
            if ((rc = info->compute_gradients(c, batch, other, loss64 ? (void *)&lc : (void *)&lc32)) ||
                (rc = info->apply_gradients(c)))
                fatal("training the third instance: %d (%s)", rc, dlrt_strerror(rc));
            free_inputs(other);
            if ((rc = MODEL_FN(_save)(a, path)) != 0)
                fatal("%s_save: %d (%s)", info->name, rc, dlrt_strerror(rc));
            unsigned status = 99;
            if ((rc = dlrt_model_load_ex(c, path, &status)) != 0)
                fail("loading the checkpoint of step %d: %d (%s: %s)", step, rc,
                     dlrt_strerror(rc), dlrt_last_error());
            else if (status != 0)
                fail("loading the checkpoint of step %d: status %u, want 0 (it has the "
                     "optimizer state)",
                     step, status);
            if (MODEL_FN(_step)(c) != MODEL_FN(_step)(a))
                fail("after the load the step is %" PRId64 ", saved at %" PRId64,
                     MODEL_FN(_step)(c), MODEL_FN(_step)(a));
            if (!same_params(a, c))
                fail("after the load the parameters differ from the saved ones");
            if (memcmp((unsigned char *)a + info->opt_offset, (unsigned char *)c + info->opt_offset,
                       info->opt_bytes) != 0)
                fail("after the load the optimizer state differs from the saved one");
            if ((double)MODEL_FN(_learning_rate)(c) != (double)MODEL_FN(_learning_rate)(a))
                fail("after the load the rate is %g, saved at %g",
                     (double)MODEL_FN(_learning_rate)(c), (double)MODEL_FN(_learning_rate)(a));
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
    for (int k = 0; k < REF_MAX_SLOTS; k++)
        free(slots[k]);
    printf("%s: %s\n", info->name, failures ? "FAILED" : "ok");
    return failures ? 1 : 0;
}
