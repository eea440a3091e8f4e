/*
 * The cross-target driver, compiled once per model and target:
 *
 *   CC -DMODEL_HEADER='"m.h"' -DMODEL=m driver.c m.o libdlrt.a -lm
 *   ./driver BATCH STEPS > out.txt
 *
 * Through the generic entries of NAME_info() it makes an instance (seed
 * 1), gives every input values that depend only on their index (floats
 * in [0, 1), integers in 0..9, valid pixels, labels and characters for
 * the models it runs), and prints, one value a line as a C99 hex float
 * (exact), every output of the forward pass, the loss of STEPS training
 * steps, and the outputs again after them. compare.py holds the printouts
 * of two targets side by side.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include MODEL_HEADER

#define CAT(a, b) a##b
#define INFO(m) CAT(m, _info)

/* splitmix64 of the index: the same values on every target */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void *filled(const dlrt_tensor_info *t, size_t n, uint64_t salt)
{
    void *p = malloc(n * dlrt_dtype_size(t->desc.dtype) + 1);
    if (!p)
        exit(2);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = mix(salt << 32 ^ i);
        if (t->desc.dtype == DLRT_I32)
            ((int32_t *)p)[i] = (int32_t)(r % 10);
        else if (t->desc.dtype == DLRT_F32)
            ((float *)p)[i] = (float)(r >> 40) * 0x1p-24f;
        else
            ((double *)p)[i] = (double)(r >> 11) * 0x1p-53;
    }
    return p;
}

static void print(const char *what, const dlrt_tensor_info *t, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t->desc.dtype == DLRT_F32)
            printf("%s %s %a\n", what, t->desc.name, (double)((const float *)p)[i]);
        else if (t->desc.dtype == DLRT_F64)
            printf("%s %s %a\n", what, t->desc.name, ((const double *)p)[i]);
        else
            printf("%s %s %d\n", what, t->desc.name, (int)((const int32_t *)p)[i]);
}

static int forward(const dlrt_model_info *info, void *m, int batch, void **in, const char *what)
{
    const void *fin[64];
    void *out[64];
    size_t nout[64];
    if (info->num_forward_inputs > 64 || info->num_outputs > 64)
        return 1;
    for (int i = 0; i < info->num_forward_inputs; i++)
        fin[i] = in[info->forward_inputs[i]];
    for (int i = 0; i < info->num_outputs; i++) {
        nout[i] = (size_t)dlrt_tensor_count(&info->outputs[i], info->max_batch, batch);
        out[i] = malloc(nout[i] * dlrt_dtype_size(info->outputs[i].desc.dtype) + 1);
        if (!out[i])
            return 1;
    }
    int rc = info->forward(m, batch, fin, out);
    for (int i = 0; i < info->num_outputs; i++) {
        if (rc == DLRT_OK)
            print(what, &info->outputs[i], out[i], nout[i]);
        free(out[i]);
    }
    return rc != DLRT_OK;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s BATCH STEPS\n", argv[0]);
        return 2;
    }
    int batch = atoi(argv[1]), steps = atoi(argv[2]);
    const dlrt_model_info *info = INFO(MODEL)();
    void *m = dlrt_model_create(info, 1);
    if (!m || info->num_inputs > 64 || (steps > 0 && !info->compute_gradients)) {
        fprintf(stderr, "driver: cannot make an instance of %s\n", info->name);
        return 1;
    }
    void *in[64];
    for (int i = 0; i < info->num_inputs; i++)
        in[i] = filled(&info->inputs[i],
                       (size_t)dlrt_tensor_count(&info->inputs[i], info->max_batch, batch),
                       (uint64_t)i + 1);
    int bad = forward(info, m, batch, in, "forward");
    for (int s = 0; s < steps && !bad; s++) {
        double loss[1];
        bad = info->compute_gradients(m, batch, (const void *const *)in, loss) != DLRT_OK ||
              info->apply_gradients(m) != DLRT_OK;
        if (info->param_dtype == DLRT_F32)
            printf("loss %d %a\n", s, (double)*(float *)loss);
        else
            printf("loss %d %a\n", s, loss[0]);
    }
    bad = bad || forward(info, m, batch, in, "trained");
    for (int i = 0; i < info->num_inputs; i++)
        free(in[i]);
    dlrt_model_destroy(m);
    if (bad)
        fprintf(stderr, "driver: a call of %s failed\n", info->name);
    return bad;
}
