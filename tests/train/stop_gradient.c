/* stop_gradient (stop_gradient.dl) against gradients derived by hand:
 *   q = x w, t = r + 0.9 x2 w + x v (not differentiated),
 *   loss = mean((q - t)^2) + sum(u * u)
 *   dloss/dw = 2/6 x^T (q - t)   (no term through t)
 *   dloss/dv = 0                 (v reaches the loss only through t)
 *   dloss/du = u                 (the stopped factor is a constant)
 * then one sgd step (lr 0.5) moves w and u by those and leaves v. The
 * forward output t is checked too: stop_gradient is the identity there. */
#include <string.h>

#include "check.h"
#include "stopgrad.h"

enum { N = 6, K = 3 };

int main(void)
{
    double x[N * K], x2[N * K], r[N], t[N], loss;
    for (int i = 0; i < N * K; i++) {
        x[i] = data_value(1, (uint64_t)i);
        x2[i] = data_value(2, (uint64_t)i);
    }
    for (int i = 0; i < N; i++)
        r[i] = data_value(3, (uint64_t)i);
    stopgrad *m = stopgrad_create(7);
    expect("create", m != NULL);
    if (!m)
        return 1;
    double *p = stopgrad_params(m), *g = stopgrad_grads(m);
    expect("params", stopgrad_NUM_PARAMS == 3 * K);
    double w[K], v[K], u[K];
    memcpy(w, p, sizeof w);
    memcpy(v, p + K, sizeof v);
    memcpy(u, p + 2 * K, sizeof u);

    /* the hand computation */
    double want_t[N], diff[N], want_loss = 0, gw[K] = {0};
    for (int i = 0; i < N; i++) {
        double q = 0, q2 = 0, xv = 0;
        for (int k = 0; k < K; k++) {
            q += x[i * K + k] * w[k];
            q2 += x2[i * K + k] * w[k];
            xv += x[i * K + k] * v[k];
        }
        want_t[i] = r[i] + 0.9 * q2 + xv;
        diff[i] = q - want_t[i];
        want_loss += diff[i] * diff[i] / N;
    }
    for (int k = 0; k < K; k++) {
        want_loss += u[k] * u[k];
        for (int i = 0; i < N; i++)
            gw[k] += 2.0 / N * x[i * K + k] * diff[i];
    }

    expect("forward", stopgrad_forward(m, x, x2, r, t) == 0);
    for (int i = 0; i < N; i++)
        near("target", i, t[i], want_t[i], 1e-12);

    memset(g, 0, sizeof(double) * stopgrad_NUM_PARAMS);
    expect("compute_gradients", stopgrad_compute_gradients(m, x, x2, r, &loss) == 0);
    near("loss", 0, loss, want_loss, 1e-12);
    for (int k = 0; k < K; k++) {
        near("grad w", k, g[k], gw[k], 1e-12);
        near("grad v", k, g[K + k], 0, 0);
        near("grad u", k, g[2 * K + k], u[k], 1e-12);
    }

    /* train_step adds to the gradients as compute_gradients does */
    memset(g, 0, sizeof(double) * stopgrad_NUM_PARAMS);
    expect("train_step", stopgrad_train_step(m, x, x2, r, &loss) == 0);
    near("step loss", 0, loss, want_loss, 1e-12);
    for (int k = 0; k < K; k++) {
        near("w after", k, p[k], w[k] - 0.5 * gw[k], 1e-12);
        near("v after", k, p[K + k], v[k], 0);
        near("u after", k, p[2 * K + k], u[k] - 0.5 * u[k], 1e-12);
    }
    stopgrad_destroy(m);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
