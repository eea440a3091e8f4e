/* loss_f64.dl: three Adam steps of f32 parameters under an f64 loss
 * (train_step, compute_gradients + apply_gradients, train_step), each
 * against the update computed here in f64 from the hand gradient of the
 * mse at the model's own parameters. */
#include <math.h>

#include "check.h"
#include "loss_f64.h"

enum { B = 4, K = 3, O = 2, STEPS = 3 };

int main(void)
{
    loss_f64 *m = loss_f64_create(1);
    expect("create", m != NULL);
    if (!m)
        return 1;
    float *w = loss_f64_params(m);
    float x[B * K];
    double y[B * O], m1[K * O] = {0}, v[K * O] = {0};
    for (int i = 0; i < B * K; i++)
        x[i] = (float)((i * 7 % 5) - 2) / 4;
    for (int i = 0; i < B * O; i++)
        y[i] = (i % 3) - 1.0;
    for (int t = 0; t < STEPS; t++) {
        double g[K * O] = {0}, want_loss = 0, p[K * O];
        for (int i = 0; i < K * O; i++)
            p[i] = w[i];
        for (int r = 0; r < B; r++)
            for (int o = 0; o < O; o++) {
                double pred = 0;
                for (int k = 0; k < K; k++)
                    pred += (double)(x[r * K + k] * w[k * O + o]);
                double d = pred - y[r * O + o];
                want_loss += d * d / (B * O);
                for (int k = 0; k < K; k++)
                    g[k * O + o] += 2 * d * x[r * K + k] / (B * O);
            }
        double loss = 0;
        if (t == 1) {
            expect("compute_gradients", loss_f64_compute_gradients(m, B, x, y, &loss) == 0);
            expect("apply_gradients", loss_f64_apply_gradients(m) == 0);
        } else {
            expect("train_step", loss_f64_train_step(m, B, x, y, &loss) == 0);
        }
        near("loss", t, loss, want_loss, 1e-6);
        for (int i = 0; i < K * O; i++) {
            m1[i] = 0.9 * m1[i] + 0.1 * g[i];
            v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i];
            double mh = m1[i] / (1 - pow(0.9, t + 1)), vh = v[i] / (1 - pow(0.999, t + 1));
            p[i] -= 0.01 * mh / (sqrt(vh) + 1e-8);
            near("parameter after the step", t * 100 + i, w[i], p[i], 2e-6);
        }
    }
    loss_f64_destroy(m);
    return failures != 0;
}
