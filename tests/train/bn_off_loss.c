/* The running statistics of a batch norm off the loss's path (model
 * bn_off_loss, bn_off_loss.dl) after three training steps, against the
 * update computed here in f64 from the batches alone:
 *   mean <- (1 - m) mean + m batch_mean, var <- (1 - m) var + m var_n/(n-1)
 * from 0 and 1; then forward normalizes with them. */
#include <string.h>

#include "bn_off_loss.h"
#include "check.h"

enum { C = 3, STEPS = 3 };
static const double momentum = 0.25;

static const float *state(const bn_off_loss *m, const dlrt_model_info *info, const char *suffix)
{
    for (int i = 0; i < info->num_states; i++) {
        const char *n = info->states[i].desc.name;
        size_t ln = strlen(n), ls = strlen(suffix);
        if (ln >= ls && strcmp(n + ln - ls, suffix) == 0)
            return (const float *)((const char *)m + info->states[i].offset);
    }
    fprintf(stderr, "no state *%s\n", suffix);
    return NULL;
}

int main(void)
{
    const dlrt_model_info *info = bn_off_loss_info();
    bn_off_loss *m = bn_off_loss_create(5);
    expect("create", m != NULL);
    expect("two running statistics", info->num_states == 2);
    if (!m || info->num_states != 2)
        return 1;
    double mean[C] = {0, 0, 0}, var[C] = {1, 1, 1};
    static const int rows[STEPS] = {5, 2, 4};
    float x[5 * C], t[5 * 2];
    for (int s = 0; s < STEPS; s++) {
        int n = rows[s];
        for (int i = 0; i < n * C; i++)
            x[i] = (float)(2 * data_value(7 + (uint64_t)s, (uint64_t)i));
        for (int i = 0; i < n * 2; i++)
            t[i] = (float)data_value(70 + (uint64_t)s, (uint64_t)i);
        float loss;
        expect("train_step", bn_off_loss_train_step(m, n, x, t, &loss) == 0);
        for (int c = 0; c < C; c++) {
            double mu = 0, v = 0;
            for (int r = 0; r < n; r++)
                mu += x[r * C + c];
            mu /= n;
            for (int r = 0; r < n; r++)
                v += (x[r * C + c] - mu) * (x[r * C + c] - mu);
            mean[c] = (1 - momentum) * mean[c] + momentum * mu;
            var[c] = (1 - momentum) * var[c] + momentum * v / (n - 1);
        }
    }
    const float *rm = state(m, info, "mean"), *rv = state(m, info, "var");
    if (!rm || !rv)
        return 1;
    for (int c = 0; c < C; c++) {
        near("running mean", c, rm[c], mean[c], 1e-6);
        near("running var", c, rv[c], var[c], 1e-6);
    }
    float y[5 * C];
    expect("forward", bn_off_loss_forward(m, 4, x, y) == 0);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < C; c++)
            near("forward", r * C + c, y[r * C + c], (x[r * C + c] - mean[c]) / sqrt(var[c] + 1e-5),
                 1e-5);
    bn_off_loss_destroy(m);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
