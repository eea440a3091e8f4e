/* Drives ops.o (f64): broadcasting, reductions and losses against naive
 * loops, at batch 1, 5 and the maximum. */
#include <stdlib.h>

#include "check.h"
#include "ops.h"

enum { N = 16 };

static double x[N][3][4], t[N][3][4], s[4];
static int32_t y[N];

static void run(ops *m, int b)
{
    static double bc[N][3][4], red[3], mx[N][4], v[N][3], ce, mse_sum, bce[N][3][4];
    expect("forward", ops_forward(m, b, &x[0][0][0], s, &t[0][0][0], y, &bc[0][0][0], red,
                                  &mx[0][0], &v[0][0], &ce, &mse_sum, &bce[0][0][0]) == 0);
    double want_ce = 0, want_mse = 0;
    for (int j = 0; j < 3; j++) {
        double acc = 0;
        for (int i = 0; i < b; i++)
            for (int k = 0; k < 4; k++)
                acc += x[i][j][k];
        near("red", j, red[j], acc, 1e-12);
    }
    for (int i = 0; i < b; i++) {
        double logits[3], m2 = -INFINITY, se = 0;
        for (int j = 0; j < 3; j++) {
            double mean = 0, var = 0, row = 0;
            for (int k = 0; k < 4; k++) {
                near("bc", (i * 3 + j) * 4 + k, bc[i][j][k], x[i][j][k] * s[k] + 1.5, 1e-12);
                double xv = x[i][j][k], tv = t[i][j][k];
                double want_bce = fmax(xv, 0) - xv * tv + log1p(exp(-fabs(xv)));
                near("bce", (i * 3 + j) * 4 + k, bce[i][j][k], want_bce, 1e-12);
                want_mse += (xv - tv) * (xv - tv);
                mean += xv / 4;
                row += xv;
            }
            for (int k = 0; k < 4; k++)
                var += (x[i][j][k] - mean) * (x[i][j][k] - mean) / 3;
            near("var", i * 3 + j, v[i][j], var, 1e-12);
            logits[j] = row;
            m2 = fmax(m2, row);
        }
        for (int k = 0; k < 4; k++) {
            double best = -INFINITY;
            for (int j = 0; j < 3; j++)
                best = fmax(best, x[i][j][k]);
            near("max", i * 4 + k, mx[i][k], best, 0);
        }
        for (int j = 0; j < 3; j++)
            se += exp(logits[j] - m2);
        want_ce += m2 + log(se) - logits[y[i]];
    }
    near("ce", 0, ce, want_ce / b, 1e-12);
    near("mse_sum", 0, mse_sum, want_mse, 1e-12);
}

int main(void)
{
    for (int i = 0; i < N; i++) {
        y[i] = i % 3;
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++) {
                x[i][j][k] = sin(i * 1.3 + j * 0.7 + k * 0.11) * 3;
                t[i][j][k] = cos(i * 0.5 + j + k * 2.1) * 0.5 + 0.5;
            }
    }
    for (int k = 0; k < 4; k++)
        s[k] = k - 1.5;
    ops *m = ops_create(1);
    expect("create", m != NULL);
    if (!m)
        return 1;
    run(m, 1);
    run(m, 5);
    run(m, N);
    double out[N * 12];
    expect("batch 0", ops_forward(m, 0, &x[0][0][0], s, &t[0][0][0], y, out, out, out, out, out,
                                  out, out) == DLRT_EINVAL);
    expect("null y", ops_forward(m, 1, &x[0][0][0], s, &t[0][0][0], NULL, out, out, out, out, out,
                                 out, out) == DLRT_EINVAL);
    ops_destroy(m);
    if (failures)
        fprintf(stderr, "ops: %d failures\n", failures);
    return failures != 0;
}
