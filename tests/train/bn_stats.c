/* Batch norm's running statistics (model bn_stats, bn_stats.dl) against
 * PyTorch's update, computed here in f64 from the instance's weights
 * before every step:
 *
 *   running_mean = (1 - momentum) running_mean + momentum mean
 *   running_var  = (1 - momentum) running_var  + momentum var n / (n - 1)
 *
 * over n = N H W values per channel (var is the biased batch variance the
 * step normalizes with, var n / (n - 1) the unbiased one). The reference
 * statistics start from 0 and 1 and are carried in f64 across the steps,
 * never copied back from the instance, so an error in any step shows.
 * Batches vary in size (down to 1). After the steps, forward in inference
 * mode must normalize with the running statistics (probabilities against
 * an f64 forward), and a checkpoint loaded into an instance with another
 * seed must reproduce the statistics and the probabilities exactly. */
#include <stdlib.h>
#include <string.h>

#include "bn_stats.h"
#include "check.h"

/* S: 61x61 images make batch norm two tasks of channels (codegen/norm.c,
 * BN_CHANNEL_WORK): [0, 2) and [2, 3); 3721 = 232 x 16 + 9 */
enum { MAXB = bn_stats_MAX_BATCH, CI = 2, CO = 3, S = 61, K = 3, NOUT = 4, STEPS = 7 };
static const double momentum = 0.3, eps = 1e-3;

static const dlrt_model_info *info;

static const float *find(const bn_stats *m, const char *name, int state)
{
    int n = state ? info->num_states : info->num_params;
    const dlrt_tensor_info *t = state ? info->states : info->params;
    for (int i = 0; i < n; i++)
        if (strcmp(t[i].desc.name, name) == 0)
            return (const float *)((const char *)m + t[i].offset);
    fprintf(stderr, "no %s %s\n", state ? "state" : "parameter", name);
    exit(1);
}

static void batch_data(int t, int *rows, float *x, int32_t *y)
{
    static const int sizes[] = {6, 4, 1, 5, 6, 3, 2};
    *rows = sizes[t % 7];
    for (int i = 0; i < *rows * CI * S * S; i++)
        x[i] = (float)(2 * data_value(10 + (uint64_t)t, (uint64_t)i));
    for (int i = 0; i < *rows; i++)
        y[i] = (int32_t)((data_value(50 + (uint64_t)t, (uint64_t)i) + 1) * 2);
}

/* conv2d(x, w, padding = 1) in f64: h[r][c][i][j] */
static void conv(const bn_stats *m, int rows, const float *x, double h[MAXB][CO][S][S])
{
    const float *w = find(m, "w", 0);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < CO; c++)
            for (int i = 0; i < S; i++)
                for (int j = 0; j < S; j++) {
                    double s = 0;
                    for (int ci = 0; ci < CI; ci++)
                        for (int a = 0; a < K; a++)
                            for (int b = 0; b < K; b++) {
                                int ii = i + a - 1, jj = j + b - 1;
                                if (ii >= 0 && ii < S && jj >= 0 && jj < S)
                                    s += (double)x[((r * CI + ci) * S + ii) * S + jj] *
                                         w[((c * CI + ci) * K + a) * K + b];
                            }
                    h[r][c][i][j] = s;
                }
}

/* the channel means and biased variances of a batch */
static void batch_stats(int rows, double h[MAXB][CO][S][S], double mean[CO], double var[CO])
{
    int n = rows * S * S;
    for (int c = 0; c < CO; c++) {
        double mu = 0, v = 0;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < S * S; i++)
                mu += h[r][c][i / S][i % S] / n;
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < S * S; i++)
                v += (h[r][c][i / S][i % S] - mu) * (h[r][c][i / S][i % S] - mu) / n;
        mean[c] = mu;
        var[c] = v;
    }
}

/* inference-mode probabilities in f64, normalizing with rm and rv */
static void forward(const bn_stats *m, int rows, const float *x, const double rm[CO],
                    const double rv[CO], double probs[MAXB][NOUT])
{
    static double h[MAXB][CO][S][S];
    conv(m, rows, x, h);
    const float *g = find(m, "g", 0), *be = find(m, "be", 0);
    const float *wd = find(m, "wd", 0), *bd = find(m, "bd", 0);
    for (int r = 0; r < rows; r++) {
        double pooled[CO], z[NOUT], zmax = -INFINITY, sum = 0;
        for (int c = 0; c < CO; c++) {
            pooled[c] = 0;
            for (int i = 0; i < S * S; i++) {
                double v = (h[r][c][i / S][i % S] - rm[c]) / sqrt(rv[c] + eps) * g[c] + be[c];
                pooled[c] += (v > 0 ? v : 0) / (S * S);
            }
        }
        for (int o = 0; o < NOUT; o++) {
            z[o] = bd[o];
            for (int c = 0; c < CO; c++)
                z[o] += pooled[c] * wd[c * NOUT + o];
            zmax = z[o] > zmax ? z[o] : zmax;
        }
        for (int o = 0; o < NOUT; o++)
            sum += exp(z[o] - zmax);
        for (int o = 0; o < NOUT; o++)
            probs[r][o] = exp(z[o] - zmax) / sum;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CHECKPOINT\n", argv[0]);
        return 2;
    }
    info = bn_stats_info();
    bn_stats *m = bn_stats_create(3);
    expect("create", m != NULL);
    if (!m)
        return 1;
    double rm[CO], rv[CO];
    for (int c = 0; c < CO; c++)
        rm[c] = 0, rv[c] = 1;

    static float x[MAXB * CI * S * S];
    static double h[MAXB][CO][S][S];
    int32_t y[MAXB];
    int rows;
    for (int t = 0; t < STEPS; t++) {
        batch_data(t, &rows, x, y);
        double mean[CO], var[CO];
        conv(m, rows, x, h); /* the weights this step normalizes with */
        batch_stats(rows, h, mean, var);
        int n = rows * S * S;
        for (int c = 0; c < CO; c++) {
            rm[c] = (1 - momentum) * rm[c] + momentum * mean[c];
            rv[c] = (1 - momentum) * rv[c] + momentum * var[c] * n / (n - 1);
        }
        float loss;
        expect("train_step", bn_stats_train_step(m, rows, x, y, &loss) == 0);
        const float *srm = find(m, "running_mean", 1), *srv = find(m, "running_var", 1);
        for (int c = 0; c < CO; c++) {
            near("running_mean", t * CO + c, srm[c], rm[c], 1e-5);
            near("running_var", t * CO + c, srv[c], rv[c], 1e-5);
        }
    }
    expect("the weights trained", bn_stats_step(m) == STEPS);

    /* inference mode normalizes with the running statistics */
    batch_data(100, &rows, x, y);
    float probs[MAXB * NOUT];
    double want[MAXB][NOUT];
    expect("forward", bn_stats_forward(m, rows, x, probs) == 0);
    forward(m, rows, x, rm, rv, want);
    for (int i = 0; i < rows * NOUT; i++)
        near("inference probabilities", i, probs[i], want[i / NOUT][i % NOUT], 1e-5);

    /* the statistics are model state: they go through the checkpoint */
    expect("save", bn_stats_save(m, argv[1]) == 0);
    bn_stats *c = bn_stats_create(99);
    expect("create", c != NULL);
    if (!c)
        return 1;
    expect("load", bn_stats_load(c, argv[1]) == 0);
    expect("running statistics restored",
           memcmp((const char *)m + info->states_offset, (const char *)c + info->states_offset,
                  info->states_bytes) == 0);
    float probs2[MAXB * NOUT];
    expect("forward after load", bn_stats_forward(c, rows, x, probs2) == 0);
    /* the forward writes rows * NOUT values; the rest of both arrays is
     * uninitialised */
    expect("same probabilities after load",
           memcmp(probs, probs2, (size_t)rows * NOUT * sizeof *probs) == 0);
    bn_stats_destroy(c);
    bn_stats_destroy(m);
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
