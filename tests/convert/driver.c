/* driver.c — the compiled model's side of the converter tests
 * (tests/convert/run.sh), built for one model with -DMODEL=NAME
 * (examples/common/model.h):
 *
 *   driver create SEED OUT     a new instance's checkpoint
 *   driver train IN OUT        load IN, take two training steps on fixed
 *                              inputs (biases, running statistics and
 *                              optimizer state become nonzero), save
 *   driver resave IN OUT       load IN (NAME_load), save it again
 *   driver forward CKPT OUT    load CKPT, run the forward pass at batch 2 on
 *                              fixed inputs; write the inputs and outputs,
 *                              under their names, as safetensors
 *
 * A refused load prints dlrt_last_error() and exits 1. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlrt.h" /* before dlrt_checkpoint.h, which needs it */
#include "dlrt_checkpoint.h"
#include "model.h"

enum { BATCH = 2 };

static Model *load(const char *path)
{
    Model *m = M(create)(0);
    if (!m) {
        fprintf(stderr, "driver: out of memory\n");
        exit(2);
    }
    if (M(load)(m, path) != 0) {
        fprintf(stderr, "driver: %s\n", dlrt_last_error());
        exit(1);
    }
    return m;
}

/* t's descriptor at batch BATCH, and its size in bytes */
static size_t at_batch(const dlrt_tensor_info *t, int max_batch, dlrt_tensor_desc *d)
{
    *d = t->desc;
    size_t n = dlrt_dtype_size(d->dtype);
    for (int i = 0; i < d->rank; i++) {
        if (t->batch_dims >> i & 1)
            d->shape[i] = d->shape[i] / max_batch * BATCH;
        n *= (size_t)d->shape[i];
    }
    return n;
}

/* xorshift64: the same inputs every run */
static uint64_t rng = 88172645463325252u;

/* Tensors for the inputs and outputs t[0..n) at batch BATCH: the first
 * nin filled with numbers in [0, 1) (f32, f64) or 0..2 (i32: ids and
 * labels that fit every model here, seq's 3 classes the fewest; the
 * entry points refuse labels out of range), the rest zeros. */
static void **tensors(const dlrt_tensor_info *const *t, int n, int nin, int max_batch,
                      dlrt_tensor_desc *descs)
{
    void **data = calloc((size_t)n, sizeof *data);
    for (int k = 0; k < n; k++) {
        size_t bytes = at_batch(t[k], max_batch, &descs[k]);
        data[k] = calloc(bytes ? bytes : 1, 1);
        if (k >= nin)
            continue;
        size_t count = bytes / dlrt_dtype_size(descs[k].dtype);
        for (size_t i = 0; i < count; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            double u = (double)(rng >> 11) / 9007199254740992.0;
            if (descs[k].dtype == DLRT_F32)
                ((float *)data[k])[i] = (float)u;
            else if (descs[k].dtype == DLRT_F64)
                ((double *)data[k])[i] = u;
            else
                ((int32_t *)data[k])[i] = (int32_t)(rng % 3);
        }
    }
    return data;
}

static void tensors_free(void **data, int n)
{
    for (int k = 0; k < n; k++)
        free(data[k]);
    free(data);
}

static int forward(const char *ckpt, const char *out)
{
    Model *m = load(ckpt);
    const dlrt_model_info *info = M(info)();
    int ni = info->num_forward_inputs, n = ni + info->num_outputs;
    const dlrt_tensor_info **t = calloc((size_t)n, sizeof *t);
    for (int k = 0; k < n; k++)
        t[k] = k < ni ? &info->inputs[info->forward_inputs[k]] : &info->outputs[k - ni];
    dlrt_tensor_desc *descs = calloc((size_t)n, sizeof *descs);
    void **data = tensors(t, n, ni, info->max_batch, descs);
    int rc = info->forward(m, BATCH, (const void *const *)data, data + ni);
    if (rc == 0)
        rc = dlrt_checkpoint_save(out, descs, (const void *const *)data, n, NULL, NULL, 0);
    if (rc != 0)
        fprintf(stderr, "driver: forward: %s\n", dlrt_strerror(rc));
    tensors_free(data, n);
    free(descs);
    free(t);
    M(destroy)(m);
    return rc != 0;
}

static int train(const char *in, const char *out)
{
    Model *m = load(in);
    const dlrt_model_info *info = M(info)();
    int n = info->num_inputs;
    const dlrt_tensor_info **t = calloc((size_t)n, sizeof *t);
    for (int k = 0; k < n; k++)
        t[k] = &info->inputs[k];
    dlrt_tensor_desc *descs = calloc((size_t)n, sizeof *descs);
    int rc = 0;
    for (int step = 0; step < 2 && rc == 0; step++) {
        void **data = tensors(t, n, n, info->max_batch, descs);
        double loss[1];
        rc = info->compute_gradients(m, BATCH, (const void *const *)data, loss);
        if (rc == 0)
            rc = info->apply_gradients(m);
        tensors_free(data, n);
    }
    if (rc == 0)
        rc = M(save)(m, out);
    if (rc != 0)
        fprintf(stderr, "driver: train: %s\n", dlrt_strerror(rc));
    free(descs);
    free(t);
    M(destroy)(m);
    return rc != 0;
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "create") == 0) {
        Model *m = M(create)(strtoull(argv[2], NULL, 10));
        int rc = m ? M(save)(m, argv[3]) : 1;
        M(destroy)(m);
        return rc != 0;
    }
    if (argc == 4 && strcmp(argv[1], "resave") == 0) {
        Model *m = load(argv[2]);
        int rc = M(save)(m, argv[3]);
        M(destroy)(m);
        return rc != 0;
    }
    if (argc == 4 && strcmp(argv[1], "train") == 0)
        return train(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "forward") == 0)
        return forward(argv[2], argv[3]);
    fprintf(stderr, "usage: driver create SEED OUT | train IN OUT | resave IN OUT | "
                    "forward CKPT OUT\n");
    return 2;
}
