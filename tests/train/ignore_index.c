/* cross_entropy(logits, y, ignore_index = -100) (ignore_index.dl) through
 * train_step, against the loss and the SGD update worked out here from the
 * forward logits: rows labelled -100 add nothing to the loss, to the
 * mean's count or to the gradient.
 *
 *   run checks     -100 passes the input check, 4 and -1 do not
 *                  (DLRT_ERANGE, naming the element, the instance
 *                  unchanged); every row ignored: the mean is NaN and
 *                  train_step refuses it (DLRT_ENONFINITE)
 *   run no-checks  every row ignored: train_step returns 0 with a NaN
 *                  loss and leaves w as it was (a zero gradient, as
 *                  PyTorch's), not NaN */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ignore_index.h"

enum { B = 4, F = 3, C = 4 };
static const float lr = 0.5f;

static float *param_w(ignore_index *m)
{
    const dlrt_model_info *info = ignore_index_info();
    return (float *)((char *)m + info->params[0].offset);
}

/* The mean loss over the rows not ignored and w after one SGD step. */
static double expected(const float *x, const int32_t *y, const float *logits, const float *w,
                       float *w_next)
{
    double loss = 0, g[F * C] = {0};
    int kept = 0;
    for (int b = 0; b < B; b++)
        kept += y[b] != -100;
    for (int b = 0; b < B; b++) {
        if (y[b] == -100)
            continue;
        const float *z = logits + b * C;
        double mx = z[0], s = 0;
        for (int j = 1; j < C; j++)
            mx = z[j] > mx ? z[j] : mx;
        for (int j = 0; j < C; j++)
            s += exp(z[j] - mx);
        loss += mx + log(s) - z[y[b]];
        for (int j = 0; j < C; j++) {
            double d = (exp(z[j] - mx) / s - (j == y[b])) / kept;
            for (int i = 0; i < F; i++)
                g[i * C + j] += x[b * F + i] * d;
        }
    }
    for (int k = 0; k < F * C; k++)
        w_next[k] = (float)(w[k] - lr * g[k]);
    return loss / kept;
}

int main(int argc, char **argv)
{
    int checks = check_mode(argc, argv);
    if (checks < 0)
        return 2;
    ignore_index *m = ignore_index_create(3);
    if (!m)
        return 1;
    float x[B * F], logits[B * C], w0[F * C], want_w[F * C], loss = 0;
    fill_data(x, B * F, 1);
    float *w = param_w(m);

    if (checks) {
        int32_t y[B] = {-100, 1, -100, 3};
        expect("forward", ignore_index_forward(m, B, x, logits) == 0);
        memcpy(w0, w, sizeof w0);
        double want = expected(x, y, logits, w0, want_w);
        expect("-100 is accepted: train_step", ignore_index_train_step(m, B, x, y, &loss) == 0);
        near("loss: the mean of rows 1 and 3", 0, loss, want, 1e-5);
        for (int k = 0; k < F * C; k++)
            near("w after the step (ignored rows add no gradient)", k, w[k], want_w[k], 1e-5);

        unsigned char *before = state_copy(m, ignore_index_STATE_BYTES);
        int32_t bad[B] = {0, 4, -100, 1};
        expect("label 4: train_step refused",
               ignore_index_train_step(m, B, x, bad, &loss) == DLRT_ERANGE);
        expect("the message names the element and the range",
               strstr(dlrt_last_error(),
                      "input 'y' (labels of cross_entropy): element [1] is 4, outside 0..3") !=
                   NULL);
        bad[1] = -1;
        expect("label -1 (not the ignored value): refused",
               ignore_index_train_step(m, B, x, bad, &loss) == DLRT_ERANGE);
        expect("the message names -1", strstr(dlrt_last_error(), "is -1") != NULL);
        int32_t all[B] = {-100, -100, -100, -100};
        expect("every row ignored: the NaN mean is refused",
               ignore_index_train_step(m, B, x, all, &loss) == DLRT_ENONFINITE);
        expect("instance unchanged",
               same_but_arena(ignore_index_info(), m, before, ignore_index_STATE_BYTES));
        free(before);
    } else {
        int32_t all[B] = {-100, -100, -100, -100};
        memcpy(w0, w, sizeof w0);
        expect("no checks: train_step runs", ignore_index_train_step(m, B, x, all, &loss) == 0);
        expect("every row ignored: the loss is NaN", isnan(loss));
        expect("w unchanged: a zero gradient", memcmp(w0, w, sizeof w0) == 0);
    }
    ignore_index_destroy(m);
    return report();
}
