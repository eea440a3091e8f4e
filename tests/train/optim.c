/* Drives one case of optim.dl.in (model optim, parameters of type REAL):
 *
 *   optim 'TRAIN OPTIONS' CKPT [steps=N] [set=K:LR] [clip=all|none] [clipv=some]
 *
 * TRAIN OPTIONS is the text optim/CASE.test put after `with` in the model;
 * the reference (reference.c) reads the same text. Each step checks
 * NAME_learning_rate and NAME_step against the schedule, gets gradients
 * from the model in one of four ways (step % 4: one compute_gradients;
 * two accumulated ones, which must sum to those of each batch alone, taken
 * from a twin instance at the same parameters; train_step; train_step
 * after a compute_gradients, whose update adds the two), checks them
 * and the loss against a hand-computed mse gradient, updates an f64 copy
 * of the trainable parameters and optimizer state with the published
 * formulas from the model's own gradients, and after the update compares
 * the model's parameters with the copy; the gradients must be zero again
 * and the frozen parameter unchanged, its gradient entries 0 throughout.
 * set=K:LR calls NAME_set_learning_rate(LR) before step K; clip= asserts
 * that clipping acted on every step or on none; clipv=some that clip_value
 * clamped some gradients and left others as they were. At the end the checkpoint
 * must hold exactly the parameters and the optimizer's slots of the
 * trainable ones (opt.SLOT.w, opt.SLOT.b) with the reference's values, and
 * "step"/"lr" metadata; loading it into a fresh instance restores it. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "optim.h"
#include "reference.h"

enum { NW = 6, NS = 3, NB = 2, NT = NW + NB, NA_ROWS = 5, NB_ROWS = 3, MAXROWS = 8 };

#define IS_F64 (sizeof(REAL) == 8)
/* params vs the reference, gradients vs the hand gradient, rates */
#define TOL_P (IS_F64 ? 1e-12 : 2e-6)
#define TOL_G (IS_F64 ? 1e-13 : 2e-6)
#define TOL_LR (IS_F64 ? 1e-14 : 1.2e-7)

/* flat indices of w, s and b in NAME_params */
static int iw, is_, ib;

static int flat_index(const dlrt_model_info *info, const char *name, int numel, int frozen)
{
    for (int i = 0; i < info->num_params; i++) {
        const dlrt_tensor_info *t = &info->params[i];
        if (strcmp(t->desc.name, name) != 0)
            continue;
        int64_t n = 1;
        for (int d = 0; d < t->desc.rank; d++)
            n *= t->desc.shape[d];
        expect("param numel", n == numel);
        expect("param frozen flag", t->frozen == frozen);
        return (int)((t->offset - info->params_offset) / sizeof(REAL));
    }
    fprintf(stderr, "no parameter %s\n", name);
    failures++;
    return 0;
}

/* rows of batch k (0 or 1) of step t */
static void batch_data(int t, int k, int rows, REAL *x, REAL *y)
{
    for (int i = 0; i < rows * 3; i++)
        x[i] = (REAL)(2 * data_value(100 + 2 * (uint64_t)t + (uint64_t)k, (uint64_t)i));
    for (int i = 0; i < rows * 2; i++)
        y[i] = (REAL)data_value(500 + 2 * (uint64_t)t + (uint64_t)k, (uint64_t)i);
}

/* mse((x * s) @ w + b, y) at the parameters P; adds its gradient to
 * g[0..NW) (w) and g[NW..NT) (b) and returns the loss. */
static double hand(const REAL *P, int rows, const REAL *x, const REAL *y, double *g)
{
    double loss = 0;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < 2; o++) {
            double pred = P[ib + o];
            for (int k = 0; k < 3; k++)
                pred += (double)x[r * 3 + k] * P[is_ + k] * P[iw + k * 2 + o];
            double d = pred - y[r * 2 + o];
            loss += d * d / (rows * 2);
            for (int k = 0; k < 3; k++)
                g[k * 2 + o] += (double)x[r * 3 + k] * P[is_ + k] * d / rows;
            g[NW + o] += d / rows;
        }
    return loss;
}

static void trainable(const REAL *a, double *out)
{
    for (int i = 0; i < NW; i++)
        out[i] = a[iw + i];
    for (int i = 0; i < NB; i++)
        out[NW + i] = a[ib + i];
}

static void check_frozen_grads(const REAL *G, int t)
{
    for (int k = 0; k < NS; k++)
        near("frozen gradient", t * 10 + k, G[is_ + k], 0, 0);
}

/* checks the file's metadata and tensors against the model m and the
 * reference slots, then loads it into a fresh instance */
static void check_checkpoint(optim *m, const char *path, const TrainSpec *spec, int steps,
                             double base, double *const *slot)
{
    char buf[64];
    expect("meta step",
           dlrt_checkpoint_meta(path, "step", buf, sizeof buf) > 0 && atoll(buf) == steps);
    expect("meta lr",
           dlrt_checkpoint_meta(path, "lr", buf, sizeof buf) > 0 && strtod(buf, NULL) == base);
    expect("meta model",
           dlrt_checkpoint_meta(path, "model", buf, sizeof buf) > 0 && strcmp(buf, "optim") == 0);

    dlrt_dtype dt = IS_F64 ? DLRT_F64 : DLRT_F32;
    int nslots = ref_nslots(spec);
    dlrt_tensor_desc descs[3 + 2 * REF_MAX_SLOTS] = {
        {"w", dt, 2, {3, 2}}, {"s", dt, 1, {3}}, {"b", dt, 1, {2}}};
    REAL data[3 + 2 * REF_MAX_SLOTS][NW];
    void *ptrs[3 + 2 * REF_MAX_SLOTS];
    char names[2 * REF_MAX_SLOTS][64];
    int n = 3;
    for (int k = 0; k < nslots; k++)
        for (int j = 0; j < 2; j++, n++) {
            snprintf(names[n - 3], sizeof names[0], "opt.%s.%s", ref_slot_name(spec, k),
                     j == 0 ? "w" : "b");
            descs[n] = j == 0 ? descs[0] : descs[2];
            descs[n].name = names[n - 3];
        }
    for (int i = 0; i < n; i++)
        ptrs[i] = data[i];
    /* no flags: the file holds exactly these tensors */
    int rc = dlrt_checkpoint_load(path, descs, ptrs, n, 0, NULL, NULL);
    if (rc != 0)
        fprintf(stderr, "checkpoint load: %s\n", dlrt_strerror(rc));
    expect("checkpoint holds exactly the params and the optimizer slots", rc == 0);
    if (rc == 0) {
        const REAL *P = optim_params(m);
        expect("saved w", memcmp(data[0], P + iw, NW * sizeof(REAL)) == 0);
        expect("saved s", memcmp(data[1], P + is_, NS * sizeof(REAL)) == 0);
        expect("saved b", memcmp(data[2], P + ib, NB * sizeof(REAL)) == 0);
        for (int k = 0; k < nslots; k++) {
            for (int i = 0; i < NW; i++)
                near(names[2 * k], i, data[3 + 2 * k][i], slot[k][i], TOL_P);
            for (int i = 0; i < NB; i++)
                near(names[2 * k + 1], i, data[4 + 2 * k][i], slot[k][NW + i], TOL_P);
        }
    }
    /* the frozen parameter has no optimizer state */
    for (int k = 0; k < nslots; k++) {
        dlrt_tensor_desc d = descs[1];
        snprintf(names[0], sizeof names[0], "opt.%s.s", ref_slot_name(spec, k));
        d.name = names[0];
        void *p = data[0];
        expect("no optimizer state for the frozen parameter",
               dlrt_checkpoint_load(path, &d, &p, 1, DLRT_CKPT_ALLOW_EXTRA, NULL, NULL) ==
                   DLRT_EMISMATCH);
    }

    optim *fresh = optim_create(99);
    expect("create fresh", fresh != NULL);
    if (!fresh)
        return;
    expect("load", optim_load(fresh, path) == 0);
    expect("loaded params",
           memcmp(optim_params(fresh), optim_params(m), optim_info()->params_bytes) == 0);
    expect("loaded step", optim_step(fresh) == steps);
    expect("loaded learning rate", optim_learning_rate(fresh) == optim_learning_rate(m));
    expect("loaded optimizer state",
           memcmp((char *)fresh + optim_info()->opt_offset, (char *)m + optim_info()->opt_offset,
                  optim_info()->opt_bytes) == 0);
    optim_destroy(fresh);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr,
                "usage: %s 'TRAIN OPTIONS' CKPT [steps=N] [set=K:LR] [clip=all|none] "
                "[clipv=some]\n",
                argv[0]);
        return 2;
    }
    TrainSpec spec;
    char err[200];
    if (ref_parse(argv[1], &spec, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 2;
    }
    int steps = 5, set_step = -1;
    double set_lr = 0;
    const char *clip = "", *clipv = "";
    for (int i = 3; i < argc; i++) {
        if (strncmp(argv[i], "steps=", 6) == 0)
            steps = atoi(argv[i] + 6);
        else if (strncmp(argv[i], "set=", 4) == 0 &&
                 sscanf(argv[i] + 4, "%d:%lf", &set_step, &set_lr) == 2)
            ;
        else if (strncmp(argv[i], "clip=", 5) == 0)
            clip = argv[i] + 5;
        else if (strncmp(argv[i], "clipv=", 6) == 0)
            clipv = argv[i] + 6;
        else {
            fprintf(stderr, "bad argument %s\n", argv[i]);
            return 2;
        }
    }

    const dlrt_model_info *info = optim_info();
    iw = flat_index(info, "w", NW, 0);
    is_ = flat_index(info, "s", NS, 1);
    ib = flat_index(info, "b", NB, 0);
    expect("params bytes", info->params_bytes == (NW + NS + NB) * sizeof(REAL));
    expect("grads bytes", info->grads_bytes == info->params_bytes);
    expect("optimizer tensors", info->num_opt == 2 * ref_nslots(&spec));
    expect("info: the initial base rate", info->lr == ref_initial_base(&spec));
    expect("info entry points", info->compute_gradients && info->evaluate && info->apply_gradients);

    optim *m = optim_create(7), *twin = optim_create(8);
    expect("create", m && twin);
    if (!m || !twin)
        return 1;
    REAL *P = optim_params(m), *G = optim_grads(m);
    size_t nflat = info->params_bytes / sizeof(REAL);
    for (size_t i = 0; i < nflat; i++)
        expect("fresh gradients are zero", G[i] == 0);
    expect("fresh step", optim_step(m) == 0);

    double p[NT], slots[REF_MAX_SLOTS][NT] = {{0}};
    double *slot[REF_MAX_SLOTS] = {slots[0], slots[1]};
    trainable(P, p);
    REAL frozen[NS];
    memcpy(frozen, P + is_, sizeof frozen);
    double base = ref_initial_base(&spec);
    int clipped = 0, clamped = 0, kept = 0;

    for (int t = 0; t < steps; t++) {
        if (t == set_step) {
            optim_set_learning_rate(m, (REAL)set_lr);
            base = (double)(REAL)set_lr;
        }
        double lr = ref_rate(&spec, base, t);
        near("learning_rate", t, optim_learning_rate(m), (REAL)lr, TOL_LR);
        expect("step counter", optim_step(m) == t);

        REAL xa[MAXROWS * 3], ya[MAXROWS * 2], xb[MAXROWS * 3], yb[MAXROWS * 2], loss = 0;
        batch_data(t, 0, NA_ROWS, xa, ya);
        batch_data(t, 1, NB_ROWS, xb, yb);
        double g[NT] = {0};
        double want_loss = hand(P, NA_ROWS, xa, ya, g);
        int mode = t % 4;
        if (mode >= 2) {
            /* train_step: the reference works from the hand gradient,
             * with batch B's added when B was computed before */
            if (mode == 3) {
                REAL loss_b;
                expect("compute_gradients before train_step",
                       optim_compute_gradients(m, NB_ROWS, xb, yb, &loss_b) == 0);
                near("loss B", t, loss_b, hand(P, NB_ROWS, xb, yb, g), TOL_G);
            }
            expect("train_step", optim_train_step(m, NA_ROWS, xa, ya, &loss) == 0);
            near("train_step loss", t, loss, want_loss, TOL_G);
        } else {
            expect("compute_gradients", optim_compute_gradients(m, NA_ROWS, xa, ya, &loss) == 0);
            near("loss", t, loss, want_loss, TOL_G);
            double got[NT];
            trainable(G, got);
            for (int i = 0; i < NT; i++)
                near("gradient", t * 100 + i, got[i], g[i], TOL_G);
            check_frozen_grads(G, t);
            if (mode == 1) {
                /* accumulate a second batch: the sum of both batches' own */
                double ga[NT], gb[NT], both[NT];
                memcpy(ga, got, sizeof ga);
                memcpy(optim_params(twin), P, info->params_bytes);
                memset(optim_grads(twin), 0, info->grads_bytes);
                REAL loss_b;
                expect("twin compute_gradients",
                       optim_compute_gradients(twin, NB_ROWS, xb, yb, &loss_b) == 0);
                trainable(optim_grads(twin), gb);
                double want_b = hand(P, NB_ROWS, xb, yb, g);
                expect("compute_gradients B",
                       optim_compute_gradients(m, NB_ROWS, xb, yb, &loss) == 0);
                near("loss B", t, loss, want_b, TOL_G);
                near("twin loss B", t, loss_b, want_b, TOL_G);
                trainable(G, both);
                for (int i = 0; i < NT; i++) {
                    near("accumulated = sum of the two", t * 100 + i, both[i],
                         (REAL)(ga[i] + gb[i]), IS_F64 ? 1e-15 : 1.2e-7);
                    near("accumulated vs hand", t * 100 + i, both[i], g[i], TOL_G);
                }
                check_frozen_grads(G, t);
            }
            trainable(G, g);
        }
        for (int i = 0; i < NT && spec.clip_value > 0; i++) {
            clamped += fabs(g[i]) > spec.clip_value;
            kept += fabs(g[i]) < spec.clip_value;
        }
        double factor = ref_step(&spec, lr, t, NT, p, g, slot);
        clipped += factor < 1;
        if (mode < 2)
            expect("apply_gradients", optim_apply_gradients(m) == 0);
        for (size_t i = 0; i < nflat; i++)
            near("gradients zeroed by apply", (int)i, G[i], 0, 0);
        expect("step advanced", optim_step(m) == t + 1);
        double got[NT];
        trainable(P, got);
        for (int i = 0; i < NT; i++)
            near("param after step", t * 100 + i, got[i], p[i], TOL_P);
        expect("frozen parameter unchanged", memcmp(frozen, P + is_, sizeof frozen) == 0);
    }
    near("learning_rate after the last step", steps, optim_learning_rate(m),
         (REAL)ref_rate(&spec, base, steps), TOL_LR);
    if (strcmp(clip, "all") == 0)
        expect("clipping acted on every step", clipped == steps);
    else if (strcmp(clip, "none") == 0)
        expect("clipping never acted", spec.clip_norm > 0 && clipped == 0);
    if (strcmp(clipv, "some") == 0)
        expect("clip_value clamped some gradients, not all", clamped > 0 && kept > 0);

    expect("save", optim_save(m, argv[2]) == 0);
    check_checkpoint(m, argv[2], &spec, steps, base, slot);
    optim_destroy(m);
    optim_destroy(twin);
    if (failures)
        fprintf(stderr, "%s: %d failures\n", argv[1], failures);
    return failures != 0;
}
