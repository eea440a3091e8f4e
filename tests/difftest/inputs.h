/*
 * inputs.h: the inputs the two training harnesses of the differential
 * tester (train_harness.c, objectives_harness.c) draw and spoil, and the
 * per-input settings they read for them (input=NAME range=LO,HI hi=N).
 * Include it after harness_util.h (its rng_next, count_at, fatal and
 * HARNESS_TAG); both harnesses use every function here.
 */
#ifndef TESTS_DIFFTEST_INPUTS_H
#define TESTS_DIFFTEST_INPUTS_H

#include <math.h>

/* An input the settings name: its range, and for a checked i32 input
 * the bound its entries check (valid in 0..valid-1; 0: unchecked). */
typedef struct {
    char name[64];
    double lo, hi;
    int64_t valid;
} named_input;

/* The settings' entry for the input called name, or NULL. */
static const named_input *named_of(const named_input *named, int n, const char *name)
{
    const named_input *found = NULL;
    for (int j = 0; j < n; j++)
        if (strcmp(named[j].name, name) == 0)
            found = &named[j]; /* the last one, as the settings read */
    return found;
}

/* Every input of info at a batch size, drawn fresh: floating ones in
 * [lo, hi) or their named range, i32 ones whole in their named range
 * (which each needs). One more slot, NULL, so that none is empty. */
static void **draw_all_inputs(const dlrt_model_info *info, int batch, double lo, double hi,
                              const named_input *named, int nnamed)
{
    void **in = calloc((size_t)info->num_inputs + 1, sizeof *in);
    for (int i = 0; i < info->num_inputs; i++) {
        const dlrt_tensor_info *t = &info->inputs[i];
        const named_input *nm = named_of(named, nnamed, t->desc.name);
        double l = nm ? nm->lo : lo, h = nm ? nm->hi : hi;
        int64_t c = count_at(t, info->max_batch, batch);
        unsigned char *buf = malloc((size_t)c * elem_size(t->desc.dtype) + 1);
        for (int64_t k = 0; k < c; k++) {
            if (t->desc.dtype == DLRT_I32) {
                if (!nm)
                    fatal("i32 input %s needs a range (" HARNESS_TAG ": input=%s range=LO,HI)",
                          t->desc.name, t->desc.name);
                ((int32_t *)(void *)buf)[k] =
                    (int32_t)l + (int32_t)(rng_next() % (uint64_t)(h - l + 1));
            } else if (t->desc.dtype == DLRT_F64) {
                ((double *)(void *)buf)[k] = rng_uniform(l, h);
            } else if (t->desc.dtype == DLRT_F32) {
                ((float *)(void *)buf)[k] = (float)rng_uniform(l, h);
            } else {
                fatal("input %s: a type this harness does not draw", t->desc.name);
            }
        }
        in[i] = buf;
    }
    return in;
}

static void free_all_inputs(const dlrt_model_info *info, void **in)
{
    for (int i = 0; i < info->num_inputs; i++)
        free(in[i]);
    free(in);
}

/* Spoils element e of input t's buffer for the refusal probes (API.md,
 * Checked inputs): NaN, Inf or -Inf in a floating input, -1 or the bound
 * in a checked i32 one, chosen by turn. Returns the value written; the
 * caller has saved the element. */
static double spoil_input(const dlrt_tensor_info *t, void *buf, int64_t e, int turn,
                          int64_t valid)
{
    const double bad[] = {NAN, INFINITY, -INFINITY};
    double f = bad[turn % 3];
    float f32 = (float)f;
    int32_t id = turn % 2 ? -1 : (int32_t)valid;
    size_t es = elem_size(t->desc.dtype);
    memcpy((unsigned char *)buf + (size_t)e * es,
           t->desc.dtype == DLRT_F64   ? (void *)&f
           : t->desc.dtype == DLRT_F32 ? (void *)&f32
                                       : (void *)&id,
           es);
    return t->desc.dtype == DLRT_I32 ? (double)id : f;
}

#endif
