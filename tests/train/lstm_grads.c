/* The built-in lstm's gradients against autodiff through the same LSTM
 * unrolled by hand (model lstm_grads, lstm_grads.dl): with the hand
 * weights (set b) copied from the built-in's (set a), compute_gradients
 * must give each of w_ih, w_hh and b the same gradient in both sets, to
 * f64 rounding, at batch 1 and at the maximum batch. */
#include <string.h>

#include "check.h"
#include "lstm_grads.h"

enum { MAXB = lstm_grads_MAX_BATCH, T = 21, F = 3, H = 6 };
static const dlrt_model_info *info;

static const dlrt_tensor_info *param(const char *name)
{
    for (int i = 0; i < info->num_params; i++)
        if (strcmp(info->params[i].desc.name, name) == 0)
            return &info->params[i];
    fprintf(stderr, "no parameter %s\n", name);
    return NULL;
}

static size_t count(const dlrt_tensor_info *t)
{
    size_t n = 1;
    for (int d = 0; d < t->desc.rank; d++)
        n *= (size_t)t->desc.shape[d];
    return n;
}

int main(void)
{
    static const char *names[] = {"w_ih", "w_hh", "b"};
    info = lstm_grads_info();
    expect("f64 loss", info->loss_dtype == DLRT_F64);
    lstm_grads *m = lstm_grads_create(7);
    expect("create", m != NULL);
    if (!m)
        return 1;
    char *base = (char *)m;
    for (int k = 0; k < 3; k++) {
        char a[16], b[16];
        snprintf(a, sizeof a, "%s_a", names[k]);
        snprintf(b, sizeof b, "%s_b", names[k]);
        const dlrt_tensor_info *pa = param(a), *pb = param(b);
        if (!pa || !pb)
            return 1;
        memcpy(base + pb->offset, base + pa->offset, count(pa) * sizeof(double));
    }
    static double x[MAXB * T * F], h0[MAXB * H], c0[MAXB * H], r[MAXB * T * H];
    for (int i = 0; i < MAXB * T * F; i++)
        x[i] = data_value(1, (uint64_t)i);
    for (int i = 0; i < MAXB * H; i++)
        h0[i] = 0.5 * data_value(2, (uint64_t)i), c0[i] = 0.5 * data_value(3, (uint64_t)i);
    for (int i = 0; i < MAXB * T * H; i++)
        r[i] = data_value(4, (uint64_t)i);

    const int batches[] = {1, MAXB};
    for (int bi = 0; bi < 2; bi++) {
        double loss;
        expect("compute_gradients",
               lstm_grads_compute_gradients(m, batches[bi], x, h0, c0, r, &loss) == 0);
        const char *g = (const char *)lstm_grads_grads(m);
        for (int k = 0; k < 3; k++) {
            char a[16], b[16];
            snprintf(a, sizeof a, "%s_a", names[k]);
            snprintf(b, sizeof b, "%s_b", names[k]);
            const dlrt_tensor_info *pa = param(a), *pb = param(b);
            const double *ga = (const double *)(g + pa->offset - info->params_offset);
            const double *gb = (const double *)(g + pb->offset - info->params_offset);
            double norm = 0;
            for (size_t i = 0; i < count(pa); i++) {
                near(names[k], (int)i, ga[i], gb[i], 1e-12);
                norm += ga[i] * ga[i];
            }
            expect("gradients are not zero", norm > 1e-6);
        }
        memset((char *)m + info->grads_offset, 0, info->grads_bytes);
    }
    lstm_grads_destroy(m);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
