/* Least squares converges to the closed form: y = x @ w* + b* + noise on
 * 64 rows; the normal equations [x 1]^T [x 1] theta = [x 1]^T y, solved
 * here by Gaussian elimination with partial pivoting in f64, give theta;
 * STEPS full-batch train_steps must reach it (1e-9) and the training loss
 * the residual mse of theta. Also the no-batch signatures' NULL checks. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "lsq.h"

enum { N = 64, K = 3, D = K + 1, STEPS = 300 };

/* solves a x = r in place (a is D x D); the solution replaces r */
static void solve(double a[D][D], double r[D])
{
    for (int c = 0; c < D; c++) {
        int piv = c;
        for (int i = c + 1; i < D; i++)
            if (fabs(a[i][c]) > fabs(a[piv][c]))
                piv = i;
        for (int j = 0; j < D; j++) {
            double t = a[c][j];
            a[c][j] = a[piv][j];
            a[piv][j] = t;
        }
        double t = r[c];
        r[c] = r[piv];
        r[piv] = t;
        for (int i = c + 1; i < D; i++) {
            double f = a[i][c] / a[c][c];
            for (int j = c; j < D; j++)
                a[i][j] -= f * a[c][j];
            r[i] -= f * r[c];
        }
    }
    for (int c = D - 1; c >= 0; c--) {
        for (int j = c + 1; j < D; j++)
            r[c] -= a[c][j] * r[j];
        r[c] /= a[c][c];
    }
}

int main(void)
{
    static double x[N * K], y[N];
    const double w_true[K] = {1.5, -2, 0.25}, b_true = -0.7;
    for (int i = 0; i < N; i++) {
        y[i] = b_true + 0.1 * data_value(2, (uint64_t)i);
        for (int k = 0; k < K; k++) {
            x[i * K + k] = data_value(1, (uint64_t)(i * K + k));
            y[i] += x[i * K + k] * w_true[k];
        }
    }
    /* the normal equations, with the bias as a column of ones */
    double a[D][D] = {{0}}, theta[D] = {0};
    for (int i = 0; i < N; i++) {
        double row[D] = {x[i * K], x[i * K + 1], x[i * K + 2], 1};
        for (int r = 0; r < D; r++) {
            theta[r] += row[r] * y[i];
            for (int c = 0; c < D; c++)
                a[r][c] += row[r] * row[c];
        }
    }
    solve(a, theta);
    double residual = 0;
    for (int i = 0; i < N; i++) {
        double e = theta[K] - y[i];
        for (int k = 0; k < K; k++)
            e += x[i * K + k] * theta[k];
        residual += e * e / N;
    }

    lsq *m = lsq_create(5);
    expect("create", m != NULL);
    if (!m)
        return 1;
    double first = 0, loss = 0;
    for (int s = 0; s < STEPS; s++) {
        expect("train_step", lsq_train_step(m, x, y, &loss) == 0);
        if (s == 0)
            first = loss;
    }
    expect("the first loss is far from the optimum", first > 10 * residual + 1);
    /* train_step reports the loss before its update: one more evaluate */
    expect("evaluate", lsq_evaluate(m, x, y, &loss) == 0);
    near("loss = the residual of the normal equations", 0, loss, residual, 1e-12);
    const double *p = lsq_params(m);
    for (int k = 0; k < K; k++)
        near("w = the least-squares solution", k, p[k], theta[k], 1e-9);
    near("b = the least-squares solution", 0, p[K], theta[K], 1e-9);

    /* NULL arguments of the no-batch signatures */
    double before[D], l2 = -1;
    memcpy(before, p, sizeof before);
    expect("train_step NULL m", lsq_train_step(NULL, x, y, &l2) == DLRT_EINVAL);
    expect("train_step NULL x", lsq_train_step(m, NULL, y, &l2) == DLRT_EINVAL);
    expect("compute_gradients NULL y", lsq_compute_gradients(m, x, NULL, &l2) == DLRT_EINVAL);
    expect("evaluate NULL loss", lsq_evaluate(m, x, y, NULL) == DLRT_EINVAL);
    expect("apply_gradients NULL", lsq_apply_gradients(NULL) == DLRT_EINVAL);
    expect("untouched loss", l2 == -1);
    expect("untouched params", memcmp(before, p, sizeof before) == 0);
    expect("step counter", lsq_step(m) == STEPS);
    lsq_destroy(m);
    return failures != 0;
}
