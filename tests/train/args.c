/* Bad arguments and evaluate (model args, args.dl). NULL model, input or
 * loss pointers and a batch outside 1..MAX_BATCH make train_step,
 * compute_gradients and evaluate (and the generic entries of the info)
 * return DLRT_EINVAL and change nothing: parameters, gradients, optimizer
 * and model state, step, rate, *loss. evaluate computes the loss in
 * inference mode (batch norm with the running statistics) and changes
 * nothing either, not even the gradients a compute_gradients left;
 * compute_gradients uses batch statistics and updates the running ones
 * (PyTorch: momentum 0.1, unbiased variance). Losses are checked against
 * a forward pass computed here in f64. */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "check.h"

enum { NIN = 3, NH = 4, NOUT = 2, MAXB = args_MAX_BATCH };

static const dlrt_model_info *info;

static const float *param(const args *m, const char *name)
{
    for (int i = 0; i < info->num_params; i++)
        if (strcmp(info->params[i].desc.name, name) == 0)
            return (const float *)((const char *)m + info->params[i].offset);
    fprintf(stderr, "no parameter %s\n", name);
    exit(1);
}

static float *state(args *m, const char *name)
{
    for (int i = 0; i < info->num_states; i++)
        if (strcmp(info->states[i].desc.name, name) == 0)
            return (float *)((char *)m + info->states[i].offset);
    fprintf(stderr, "no state %s\n", name);
    exit(1);
}

/* The loss in f64; training mode uses (and returns in mean/var) the batch
 * statistics, inference mode the running ones. */
static double forward(args *m, int n, const float *x, const int32_t *y, int training, double *mean,
                      double *var)
{
    const float *w1 = param(m, "w1"), *b1 = param(m, "b1"), *g = param(m, "g");
    const float *be = param(m, "be"), *w2 = param(m, "w2"), *b2 = param(m, "b2");
    const float *rm = state(m, "running_mean"), *rv = state(m, "running_var");
    double h[MAXB][NH];
    for (int r = 0; r < n; r++)
        for (int j = 0; j < NH; j++) {
            h[r][j] = b1[j];
            for (int k = 0; k < NIN; k++)
                h[r][j] += (double)x[r * NIN + k] * w1[k * NH + j];
        }
    for (int j = 0; j < NH; j++) {
        double mu = 0, v = 0;
        for (int r = 0; r < n; r++)
            mu += h[r][j] / n;
        for (int r = 0; r < n; r++)
            v += (h[r][j] - mu) * (h[r][j] - mu) / n;
        if (!training) {
            mu = rm[j];
            v = rv[j];
        } else {
            mean[j] = mu;
            var[j] = v;
        }
        for (int r = 0; r < n; r++) {
            double z = (h[r][j] - mu) / sqrt(v + 1e-5) * g[j] + be[j];
            h[r][j] = z > 0 ? z : 0;
        }
    }
    double loss = 0;
    for (int r = 0; r < n; r++) {
        double z[NOUT], mx = -INFINITY, s = 0;
        for (int o = 0; o < NOUT; o++) {
            z[o] = b2[o];
            for (int j = 0; j < NH; j++)
                z[o] += h[r][j] * w2[j * NOUT + o];
            mx = z[o] > mx ? z[o] : mx;
        }
        for (int o = 0; o < NOUT; o++)
            s += exp(z[o] - mx);
        loss += (log(s) + mx - z[y[r]]) / n;
    }
    return loss;
}

/* everything a call may change but the arena: params, grads, optimizer
 * and model state (contiguous), step and rate */
typedef struct {
    char *bytes;
    int64_t step;
    float lr;
} Snapshot;

static Snapshot snap(args *m)
{
    size_t n = info->states_offset + info->states_bytes - info->params_offset;
    Snapshot s = {malloc(n), args_step(m), args_learning_rate(m)};
    memcpy(s.bytes, (char *)m + info->params_offset, n);
    return s;
}

static int unchanged(args *m, Snapshot *s)
{
    size_t n = info->states_offset + info->states_bytes - info->params_offset;
    int same = memcmp(s->bytes, (char *)m + info->params_offset, n) == 0 &&
               s->step == args_step(m) && s->lr == args_learning_rate(m);
    free(s->bytes);
    return same;
}

typedef int (*loss_fn)(args *, int, const float *, const int32_t *, float *);

static void bad_arguments(args *m, const float *x, const int32_t *y)
{
    static const struct {
        const char *name;
        loss_fn fn;
    } fns[3] = {{"train_step", args_train_step},
                {"compute_gradients", args_compute_gradients},
                {"evaluate", args_evaluate}};
    dlrt_loss_fn generic[3] = {NULL, info->compute_gradients, info->evaluate};
    for (int f = 0; f < 3; f++) {
        Snapshot s = snap(m);
        float loss = -7;
        char what[128];
#define BAD(cond, label)                                                                           \
    do {                                                                                           \
        snprintf(what, sizeof what, "%s: %s gives DLRT_EINVAL", fns[f].name, label);               \
        expect(what, (cond) == DLRT_EINVAL);                                                       \
    } while (0)
        BAD(fns[f].fn(NULL, 2, x, y, &loss), "NULL model");
        BAD(fns[f].fn(m, 2, NULL, y, &loss), "NULL x");
        BAD(fns[f].fn(m, 2, x, NULL, &loss), "NULL y");
        BAD(fns[f].fn(m, 2, x, y, NULL), "NULL loss");
        BAD(fns[f].fn(m, 0, x, y, &loss), "batch 0");
        BAD(fns[f].fn(m, -1, x, y, &loss), "batch -1");
        BAD(fns[f].fn(m, MAXB + 1, x, y, &loss), "batch MAX_BATCH + 1");
        if (generic[f]) {
            const void *ins[2] = {x, y}, *null_x[2] = {NULL, y}, *null_y[2] = {x, NULL};
            BAD(generic[f](NULL, 2, ins, &loss), "generic NULL model");
            BAD(generic[f](m, 2, NULL, &loss), "generic NULL inputs");
            BAD(generic[f](m, 2, null_x, &loss), "generic NULL x");
            BAD(generic[f](m, 2, null_y, &loss), "generic NULL y");
            BAD(generic[f](m, 2, ins, NULL), "generic NULL loss");
            BAD(generic[f](m, 0, ins, &loss), "generic batch 0");
            BAD(generic[f](m, MAXB + 1, ins, &loss), "generic batch MAX_BATCH + 1");
        }
#undef BAD
        snprintf(what, sizeof what, "%s: failed calls change nothing", fns[f].name);
        expect(what, unchanged(m, &s) && loss == -7);
    }
    Snapshot s = snap(m);
    expect("apply_gradients(NULL)", args_apply_gradients(NULL) == DLRT_EINVAL);
    expect("generic apply_gradients(NULL)", info->apply_gradients(NULL) == DLRT_EINVAL);
    expect("apply_gradients(NULL) changes nothing", unchanged(m, &s));
}

int main(void)
{
    info = args_info();
    expect("generic entries", info->compute_gradients && info->evaluate && info->apply_gradients);
    expect("f32 loss", info->loss_dtype == DLRT_F32);
    args *m = args_create(2);
    expect("create", m != NULL);
    if (!m)
        return 1;
    float x[MAXB * NIN];
    int32_t y[MAXB] = {0, 1, 1, 0};
    for (int i = 0; i < MAXB * NIN; i++)
        x[i] = (float)(2 * data_value(3, (uint64_t)i));
    double mean[NH], var[NH];

    expect("fresh step", args_step(m) == 0);
    expect("fresh rate", args_learning_rate(m) == 0.1f);
    bad_arguments(m, x, y);

    /* evaluate on a fresh instance: running statistics 0 and 1 */
    float loss;
    Snapshot s = snap(m);
    expect("evaluate", args_evaluate(m, 3, x, y, &loss) == 0);
    near("inference-mode loss", 0, loss, forward(m, 3, x, y, 0, mean, var), 1e-5);
    expect("evaluate changes nothing", unchanged(m, &s));

    /* compute_gradients: batch statistics, running statistics updated */
    float rm0[NH], rv0[NH];
    memcpy(rm0, state(m, "running_mean"), sizeof rm0);
    memcpy(rv0, state(m, "running_var"), sizeof rv0);
    double want = forward(m, 4, x, y, 1, mean, var);
    expect("compute_gradients", args_compute_gradients(m, 4, x, y, &loss) == 0);
    near("training-mode loss", 1, loss, want, 1e-5);
    for (int j = 0; j < NH; j++) {
        near("running_mean", j, state(m, "running_mean")[j], 0.9 * rm0[j] + 0.1 * mean[j], 1e-5);
        near("running_var (unbiased)", j, state(m, "running_var")[j],
             0.9 * rv0[j] + 0.1 * var[j] * 4 / 3, 1e-5);
    }
    float *gr = args_grads(m);
    size_t np = info->params_bytes / sizeof(float);
    int nonzero = 0;
    for (size_t i = 0; i < np; i++)
        nonzero += gr[i] != 0;
    expect("gradients after compute_gradients", nonzero > (int)np / 2);

    /* now with gradients pending: evaluate and failed calls keep them */
    s = snap(m);
    float l1, l2;
    expect("evaluate", args_evaluate(m, 4, x, y, &l1) == 0);
    near("inference-mode loss, updated running statistics", 2, l1,
         forward(m, 4, x, y, 0, mean, var), 1e-5);
    expect("inference loss differs from the training loss", fabsf(l1 - loss) > 1e-4f);
    const void *ins[2] = {x, y};
    expect("generic evaluate", info->evaluate(m, 4, ins, &l2) == 0);
    expect("generic evaluate = evaluate", l1 == l2);
    expect("evaluate batch 1", args_evaluate(m, 1, x, y, &l2) == 0);
    near("inference loss of batch 1", 3, l2, forward(m, 1, x, y, 0, mean, var), 1e-5);
    expect("evaluate changes nothing (gradients, state)", unchanged(m, &s));
    bad_arguments(m, x, y);

    /* the pending gradients are applied: p -= 0.1 g */
    float *p = args_params(m), before[64], g[64];
    expect("small model", np <= 64);
    memcpy(before, p, np * sizeof(float));
    memcpy(g, gr, np * sizeof(float));
    expect("apply_gradients", args_apply_gradients(m) == 0);
    for (size_t i = 0; i < np; i++) {
        near("sgd update", (int)i, p[i], before[i] - 0.1 * g[i], 1e-6);
        near("gradients zeroed", (int)i, gr[i], 0, 0);
    }
    expect("step 1", args_step(m) == 1);
    args_destroy(m);
    return failures != 0;
}
