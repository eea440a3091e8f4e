/*
 * A hand-written stand-in for a compiled model, for selftest.test to check
 * the harness itself: with GRADCHECK_FAULT unset the harness must pass it;
 * with each fault it must fail (a check that cannot fail says nothing).
 *
 *   loss = sum_b sum_i sin(w_i x_bi) + f_0 w_0 w_1 + f_1 + cos(v_0) v_1
 *
 * with w[4] and v[2] trainable, f[2] frozen, x[B, 4] the one input. Faults:
 *   grad       d/dw_2 is off by 1e-5 relative
 *   frozen     the frozen f gets a gradient
 *   overwrite  the gradients are assigned, not added
 *   flat       the loss does not depend on v (its check would be vacuous)
 *   noise      the loss changes from call to call
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "selftest.h"

enum { MAXB = 4, PARAMS = 64, GRADS = 128, BYTES = 192, NP = 8 };

struct gc_selftest {
    dlrt_instance h;
};

static int compute(void *m, int batch, const void *const *inputs, void *loss);
static int evaluate(void *m, int batch, const void *const *inputs, void *loss);

static const dlrt_tensor_info params[] = {
    {.desc = {.name = "w", .dtype = DLRT_F64, .rank = 1, .shape = {4}}, .offset = PARAMS},
    {.desc = {.name = "f", .dtype = DLRT_F64, .rank = 1, .shape = {2}},
     .offset = PARAMS + 32,
     .frozen = 1},
    {.desc = {.name = "v", .dtype = DLRT_F64, .rank = 1, .shape = {2}}, .offset = PARAMS + 48},
};
static const dlrt_tensor_info inputs[] = {
    {.desc = {.name = "x", .dtype = DLRT_F64, .rank = 2, .shape = {MAXB, 4}}, .batch_dims = 1},
};
static const int forward_inputs[] = {0};
static const dlrt_model_info info = {
    .name = "gc_selftest",
    .max_batch = MAXB,
    .param_dtype = DLRT_F64,
    .num_param_scalars = NP,
    .state_bytes = BYTES,
    .num_inputs = 1,
    .num_params = 3,
    .inputs = inputs,
    .params = params,
    .num_forward_inputs = 1,
    .forward_inputs = forward_inputs,
    .params_offset = PARAMS,
    .params_bytes = NP * 8,
    .grads_offset = GRADS,
    .grads_bytes = NP * 8,
    .opt_offset = BYTES,
    .states_offset = BYTES,
    .arena_offset = BYTES,
    .compute_gradients = compute,
    .evaluate = evaluate,
};

static int fault(const char *name)
{
    const char *f = getenv("GRADCHECK_FAULT");
    return f && strcmp(f, name) == 0;
}

static double run(void *m, int batch, const double *x, double *g)
{
    unsigned char *base = m;
    const double *w = (const double *)(void *)(base + PARAMS), *f = w + 4, *v = w + 6;
    static int calls;
    double loss = f[0] * w[0] * w[1] + f[1];
    double d[NP] = {f[0] * w[1], f[0] * w[0]};
    for (int b = 0; b < batch; b++)
        for (int i = 0; i < 4; i++) {
            loss += sin(w[i] * x[b * 4 + i]);
            d[i] += x[b * 4 + i] * cos(w[i] * x[b * 4 + i]);
        }
    if (!fault("flat")) {
        loss += cos(v[0]) * v[1];
        d[6] = -sin(v[0]) * v[1];
        d[7] = cos(v[0]);
    }
    if (fault("grad"))
        d[2] *= 1 + 1e-5;
    if (fault("frozen"))
        d[4] = 0.5;
    if (fault("noise"))
        loss += 1e-9 * calls++;
    for (int k = 0; g && k < NP; k++)
        g[k] = fault("overwrite") ? d[k] : g[k] + d[k];
    return loss;
}

static int compute(void *m, int batch, const void *const *in, void *loss)
{
    if (!m || batch < 1 || batch > MAXB || !in || !loss)
        return DLRT_EINVAL;
    *(double *)loss = run(m, batch, in[0], (double *)(void *)((unsigned char *)m + GRADS));
    return 0;
}

static int evaluate(void *m, int batch, const void *const *in, void *loss)
{
    if (!m || batch < 1 || batch > MAXB || !in || !loss)
        return DLRT_EINVAL;
    *(double *)loss = run(m, batch, in[0], NULL);
    return 0;
}

gc_selftest *gc_selftest_create(uint64_t seed)
{
    gc_selftest *m = aligned_alloc(64, BYTES);
    if (!m)
        return NULL;
    memset(m, 0, BYTES);
    m->h.info = &info;
    m->h.seed = seed;
    m->h.owned = m;
    double *f = gc_selftest_params(m) + 4;
    f[0] = 0.75;
    f[1] = -0.25;
    return m;
}

void gc_selftest_destroy(gc_selftest *m)
{
    free(m);
}

double *gc_selftest_params(gc_selftest *m)
{
    return (double *)(void *)((unsigned char *)m + PARAMS);
}

double *gc_selftest_grads(gc_selftest *m)
{
    return (double *)(void *)((unsigned char *)m + GRADS);
}

int64_t gc_selftest_step(const gc_selftest *m)
{
    return m->h.step;
}

const dlrt_model_info *gc_selftest_info(void)
{
    return &info;
}
