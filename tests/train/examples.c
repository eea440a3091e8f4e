/* Any compiled model trains (examples.test): through NAME_info() and the
 * generic entry points only, so one driver serves every example. Build
 * with -DINFO=NAME_info. Random inputs at batch min(max batch, 4): floats
 * uniform in [0, 1) (valid pixels, probabilities and targets), int32 0 or
 * 1 (valid token ids and class labels for any vocabulary or class count).
 * STEPS training steps on one batch; every loss, every parameter after
 * training, the evaluated loss and every float output must be finite, the
 * step counter must advance, training must change the parameters, and
 * the evaluated loss after training must be below the first step's (the
 * run is seeded: this is deterministic).
 * Prints the first loss and the evaluated loss after training; with a
 * file argument, also writes every loss, the parameters after training
 * and the outputs to it, for a bit-for-bit comparison of two builds
 * (loops.test: loops against --unroll-loops). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlrt.h"

#ifndef INFO
#error "build with -DINFO=NAME_info"
#endif

const dlrt_model_info *INFO(void);

enum { STEPS = 4, MAX_TEST_BATCH = 4 };

static int failures;

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static uint64_t rng = 0x9E3779B97F4A7C15u;

static double uniform01(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

static void *random_tensor(const dlrt_tensor_info *t, size_t n)
{
    void *p = calloc(n ? n : 1, dlrt_dtype_size(t->desc.dtype));
    if (!p)
        abort();
    for (size_t i = 0; i < n; i++) {
        double u = uniform01();
        if (t->desc.dtype == DLRT_F32)
            ((float *)p)[i] = (float)u;
        else if (t->desc.dtype == DLRT_F64)
            ((double *)p)[i] = u;
        else
            ((int32_t *)p)[i] = u < 0.5 ? 0 : 1;
    }
    return p;
}

/* Index of the first non-finite float among n of type t, or -1. */
static long first_nonfinite(dlrt_dtype t, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = t == DLRT_F64   ? ((const double *)p)[i]
                   : t == DLRT_F32 ? ((const float *)p)[i]
                                   : 0;
        if (!isfinite(v))
            return (long)i;
    }
    return -1;
}

static double loss_value(dlrt_dtype t, const double *buf)
{
    return t == DLRT_F64 ? buf[0] : (double)*(const float *)buf;
}

static void dump(FILE *f, const void *p, size_t n)
{
    if (f && fwrite(p, 1, n, f) != n)
        failures++;
}

int main(int argc, char **argv)
{
    const dlrt_model_info *info = INFO();
    FILE *df = argc > 1 ? fopen(argv[1], "wb") : NULL;
    if (argc > 1 && !df) {
        perror(argv[1]);
        return 1;
    }
    const char *name = info->name;
    if (!info->compute_gradients || !info->apply_gradients || !info->evaluate) {
        fprintf(stderr, "FAIL: %s has no training code\n", name);
        return 1;
    }
    int maxb = info->max_batch;
    int batch = maxb == 0 ? 1 : maxb < MAX_TEST_BATCH ? maxb : MAX_TEST_BATCH;
    int nb = maxb ? maxb : 1;

    const void **ins = calloc((size_t)info->num_inputs + 1, sizeof *ins);
    for (int i = 0; i < info->num_inputs; i++)
        ins[i] =
            random_tensor(&info->inputs[i], (size_t)dlrt_tensor_count(&info->inputs[i], nb, batch));

    unsigned char *m = dlrt_model_create(info, 1);
    EXPECT(m, "%s: dlrt_model_create failed", name);
    if (!m)
        return 1;
    dlrt_dtype pt = info->param_dtype;
    size_t nparams = info->params_bytes / dlrt_dtype_size(pt);
    unsigned char *before = malloc(info->params_bytes + 1);
    memcpy(before, m + info->params_offset, info->params_bytes);

    /* every objective in turn, each given the inputs it takes */
    int nobj = info->num_objectives;
    EXPECT(nobj >= 1 && info->objectives[0].compute_gradients == info->compute_gradients,
           "%s: %d objectives, the first not the info's", name, nobj);
    const void **oins = calloc((size_t)info->num_inputs + 1, sizeof *oins);
    double first = 0, loss[1] = {0};
    for (int s = 0; s < STEPS; s++)
        for (int k = 0; k < nobj; k++) {
            const dlrt_objective_info *o = &info->objectives[k];
            for (int i = 0; i < o->num_inputs; i++)
                oins[i] = ins[o->inputs[i]];
            int rc = o->compute_gradients(m, batch, oins, loss);
            EXPECT(rc == 0, "%s: compute_gradients returned %d at step %d", name, rc, s);
            double l = loss_value(pt, loss);
            if (k == 0)
                dump(df, &l, sizeof l);
            EXPECT(isfinite(l), "%s: loss %g at step %d", name, l, s);
            if (s == 0 && k == 0)
                first = l;
            rc = o->apply_gradients(m);
            EXPECT(rc == 0, "%s: apply_gradients returned %d at step %d", name, rc, s);
        }
    free(oins);
    EXPECT(((const dlrt_instance *)m)->step == STEPS, "%s: step counter %lld after %d steps", name,
           (long long)((const dlrt_instance *)m)->step, STEPS);
    long bad = first_nonfinite(pt, m + info->params_offset, nparams);
    EXPECT(bad < 0, "%s: parameter scalar %ld is not finite after training", name, bad);
    EXPECT(memcmp(before, m + info->params_offset, info->params_bytes) != 0,
           "%s: training changed no parameter", name);
    dump(df, m + info->params_offset, info->params_bytes);

    int rc = info->evaluate(m, batch, ins, loss);
    double last = loss_value(pt, loss);
    EXPECT(rc == 0 && isfinite(last), "%s: evaluate returned %d, loss %g", name, rc, last);
    EXPECT(last < first, "%s: loss %g after training, %g at the first step", name, last, first);

    const void **fins = calloc((size_t)info->num_forward_inputs + 1, sizeof *fins);
    for (int i = 0; i < info->num_forward_inputs; i++)
        fins[i] = ins[info->forward_inputs[i]];
    void **outs = calloc((size_t)info->num_outputs + 1, sizeof *outs);
    for (int i = 0; i < info->num_outputs; i++) {
        const dlrt_tensor_info *o = &info->outputs[i];
        outs[i] =
            calloc((size_t)dlrt_tensor_count(o, nb, batch) + 1, dlrt_dtype_size(o->desc.dtype));
    }
    rc = info->forward(m, batch, fins, outs);
    EXPECT(rc == 0, "%s: forward returned %d", name, rc);
    for (int i = 0; i < info->num_outputs; i++) {
        const dlrt_tensor_info *o = &info->outputs[i];
        size_t count = (size_t)dlrt_tensor_count(o, nb, batch);
        dump(df, outs[i], count * dlrt_dtype_size(o->desc.dtype));
        bad = first_nonfinite(o->desc.dtype, outs[i], count);
        EXPECT(bad < 0, "%s: output %s element %ld is not finite", name, o->desc.name, bad);
        free(outs[i]);
    }
    printf("%s: batch %d, %zu parameters, loss %.6g at the first step, %.6g after %d\n", name,
           batch, nparams, first, last, STEPS);

    for (int i = 0; i < info->num_inputs; i++)
        free((void *)ins[i]);
    free(ins);
    free(fins);
    free(outs);
    free(before);
    dlrt_model_destroy(m);
    if (df && fclose(df) != 0)
        failures++;
    return failures ? 1 : 0;
}
