/* Drives mlp.o: outputs at batch 1, 7 and the maximum against a naive f64
 * reference computed from the instance's own parameters; bad arguments. */
#include <stdlib.h>

#include "check.h"
#include "mlp.h"

static void reference(const float *p, const float *x, int batch, double *out)
{
    const float *w1 = p, *b1 = p + 40, *w2 = p + 48, *b2 = p + 72;
    for (int b = 0; b < batch; b++) {
        double h[8], z[3], mx = -INFINITY, s = 0;
        for (int j = 0; j < 8; j++) {
            double a = b1[j];
            for (int k = 0; k < 5; k++)
                a += (double)x[b * 5 + k] * w1[k * 8 + j];
            h[j] = a > 0 ? a : 0;
        }
        for (int j = 0; j < 3; j++) {
            double a = b2[j];
            for (int k = 0; k < 8; k++)
                a += h[k] * w2[k * 3 + j];
            z[j] = a;
            mx = a > mx ? a : mx;
        }
        for (int j = 0; j < 3; j++)
            s += exp(z[j] - mx);
        for (int j = 0; j < 3; j++)
            out[b * 3 + j] = exp(z[j] - mx) / s;
    }
}

int main(void)
{
    expect("max batch", mlp_MAX_BATCH == 16);
    expect("num params", mlp_NUM_PARAMS == 5 * 8 + 8 + 8 * 3 + 3);
    mlp *m = mlp_create(7);
    expect("create", m != NULL);
    if (!m)
        return 1;
    const dlrt_model_info *info = mlp_info();
    expect("info", info->forward != NULL && info->num_params == 4 && info->num_outputs == 1 &&
                       info->max_batch == 16 && info->state_bytes == mlp_STATE_BYTES);
    float x[16 * 5], out[16 * 3 + 1];
    double want[16 * 3];
    for (int i = 0; i < 16 * 5; i++)
        x[i] = (float)sin(i * 0.7) * 2;
    const int batches[] = {1, 7, 16};
    for (int k = 0; k < 3; k++) {
        int b = batches[k];
        out[b * 3] = 12345;
        expect("forward", mlp_forward(m, b, x, out) == 0);
        expect("no write past the batch", out[b * 3] == 12345);
        reference(mlp_params(m), x, b, want);
        for (int i = 0; i < b * 3; i++)
            near("probs", i, out[i], want[i], 1e-5);
        /* the generic entry point computes the same */
        float out2[16 * 3];
        const void *ins[] = {x};
        void *outs[] = {out2};
        expect("generic", info->forward(m, b, ins, outs) == 0);
        for (int i = 0; i < b * 3; i++)
            near("generic", i, out2[i], out[i], 0);
    }
    /* bad arguments: DLRT_EINVAL and nothing written */
    out[0] = 99;
    expect("null m", mlp_forward(NULL, 1, x, out) == DLRT_EINVAL);
    expect("null x", mlp_forward(m, 1, NULL, out) == DLRT_EINVAL);
    expect("null out", mlp_forward(m, 1, x, NULL) == DLRT_EINVAL);
    expect("batch 0", mlp_forward(m, 0, x, out) == DLRT_EINVAL);
    expect("batch 17", mlp_forward(m, 17, x, out) == DLRT_EINVAL);
    expect("batch -1", mlp_forward(m, -1, x, out) == DLRT_EINVAL);
    expect("untouched", out[0] == 99);
    const void *ins[] = {NULL};
    void *outs[] = {out};
    expect("generic null input", info->forward(m, 1, ins, outs) == DLRT_EINVAL);
    expect("generic null m", info->forward(NULL, 1, ins, outs) == DLRT_EINVAL);
    mlp_destroy(m);
    /* caller-owned memory */
    void *mem = aligned_alloc(64, mlp_STATE_BYTES);
    expect("init", mlp_init((mlp *)mem, mem, mlp_STATE_BYTES, 7) == 0);
    expect("init forward", mlp_forward((mlp *)mem, 2, x, out) == 0);
    reference(mlp_params((mlp *)mem), x, 2, want);
    for (int i = 0; i < 6; i++)
        near("init probs", i, out[i], want[i], 1e-5);
    free(mem);
    if (failures)
        fprintf(stderr, "mlp: %d failures\n", failures);
    return failures != 0;
}
