/* Determinism of the training step (model det: det.dl, det_dropout.dl):
 *
 *   det --dump FILE      (the -O0 build) writes the run's losses and final
 *                        parameters to FILE
 *   det --against FILE   (the -O2 build) compares its own with them: losses
 *                        rel 1e-5, parameters 1e-4
 *
 * Either way, two instances created with one seed and trained on the same
 * STEPS batches (of varying sizes) must agree bit for bit in every loss,
 * the parameters and the gradients of one more compute_gradients; an
 * instance from another seed must start elsewhere. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "det.h"

enum { STEPS = 30, MAXB = 8, NIN = 6 };

static void batch_data(int t, int *rows, float *x, int32_t *y)
{
    static const int sizes[] = {8, 5, 8, 3, 7, 1};
    *rows = sizes[t % 6];
    for (int i = 0; i < *rows * NIN; i++)
        x[i] = (float)(2 * data_value(10 + (uint64_t)t, (uint64_t)i));
    for (int i = 0; i < *rows; i++) {
        /* a learnable rule: the label is the sign pattern of two features */
        y[i] = (x[i * NIN] > 0) + (x[i * NIN + 1] > x[i * NIN + 2]);
    }
}

static void train(det *m, float *losses)
{
    for (int t = 0; t < STEPS; t++) {
        float x[MAXB * NIN];
        int32_t y[MAXB];
        int rows;
        batch_data(t, &rows, x, y);
        expect("train_step", det_train_step(m, rows, x, y, &losses[t]) == 0);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "--dump") != 0 && strcmp(argv[1], "--against") != 0)) {
        fprintf(stderr, "usage: %s --dump|--against FILE\n", argv[0]);
        return 2;
    }
    const dlrt_model_info *info = det_info();
    size_t np = info->params_bytes / sizeof(float);
    det *a = det_create(3), *b = det_create(3), *c = det_create(4);
    expect("create", a && b && c);
    if (!a || !b || !c)
        return 1;
    expect("another seed, other parameters",
           memcmp(det_params(a), det_params(c), info->params_bytes) != 0);
    float la[STEPS], lb[STEPS];
    train(a, la);
    train(b, lb);
    expect("same seed: same losses", memcmp(la, lb, sizeof la) == 0);
    expect("same seed: same parameters",
           memcmp(det_params(a), det_params(b), info->params_bytes) == 0);
    expect("the loss went down", la[STEPS - 1] < 0.7f * la[0]);
    float x[MAXB * NIN], loss_a, loss_b;
    int32_t y[MAXB];
    int rows;
    batch_data(STEPS, &rows, x, y);
    expect("compute_gradients", det_compute_gradients(a, rows, x, y, &loss_a) == 0 &&
                                    det_compute_gradients(b, rows, x, y, &loss_b) == 0);
    expect("same seed: same gradients",
           memcmp(det_grads(a), det_grads(b), info->grads_bytes) == 0 && loss_a == loss_b);

    const float *p = det_params(a);
    if (strcmp(argv[1], "--dump") == 0) {
        FILE *f = fopen(argv[2], "w");
        expect("open dump", f != NULL);
        if (!f)
            return 1;
        for (int t = 0; t < STEPS; t++)
            fprintf(f, "%.9g\n", la[t]);
        for (size_t i = 0; i < np; i++)
            fprintf(f, "%.9g\n", p[i]);
        fclose(f);
    } else {
        FILE *f = fopen(argv[2], "r");
        expect("open dump", f != NULL);
        if (!f)
            return 1;
        double v;
        for (int t = 0; t < STEPS; t++) {
            expect("read loss", fscanf(f, "%lf", &v) == 1);
            near("loss against -O0", t, la[t], v, 1e-5);
        }
        for (size_t i = 0; i < np; i++) {
            expect("read param", fscanf(f, "%lf", &v) == 1);
            near("param against -O0", (int)i, p[i], v, 1e-4);
        }
        expect("dump fully read", fscanf(f, "%lf", &v) == EOF);
        fclose(f);
    }
    det_destroy(a);
    det_destroy(b);
    det_destroy(c);
    return failures != 0;
}
