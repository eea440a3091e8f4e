/* bench_mnist_mlp — training throughput of the compiled MNIST MLP
 * (examples/mnist/mnist_mlp.dl): train_step on batches of random inputs
 * and labels (the arithmetic does not depend on the values), in rounds of
 * STEPS steps after a warm-up; prints each round and the median samples/s,
 * then inference (forward) throughput the same way. bench/run.sh puts
 * PyTorch's numbers for the same model next to these.
 *
 *   bench_mnist_mlp [BATCH [STEPS [ROUNDS]]]      default 64 300 5 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mnist_mlp.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int arg(int argc, char **argv, int i, int def, int hi)
{
    if (argc <= i)
        return def;
    int v = atoi(argv[i]);
    if (v < 1 || v > hi) {
        fprintf(stderr, "bench_mnist_mlp: argument %d must be in 1..%d\n", i, hi);
        exit(2);
    }
    return v;
}

/* Runs ROUNDS rounds of STEPS calls of one function; returns the median
 * samples/s. */
static double measure(mnist_mlp *m, int training, int batch, int steps, int rounds,
                      const float *x, const int32_t *y, float *probs)
{
    double rate[64];
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        char label[32];
        snprintf(label, sizeof label, "%s %d/%d", training ? "train" : "forward", r + 1, rounds);
        dlrt_progress_begin(&p, steps, r < 0 ? "warm-up" : label);
        double t0 = now();
        for (int s = 0; s < steps; s++) {
            float loss = 0;
            int rc = training ? mnist_mlp_train_step(m, batch, x, y, &loss)
                              : mnist_mlp_forward(m, batch, x, probs);
            if (rc) {
                fprintf(stderr, "bench_mnist_mlp: %s\n", dlrt_strerror(rc));
                exit(1);
            }
            dlrt_progress_update(&p, s + 1, loss, batch);
        }
        double dt = now() - t0;
        dlrt_progress_end(&p);
        if (r >= 0)
            rate[r] = (double)steps * batch / dt;
    }
    qsort(rate, (size_t)rounds, sizeof *rate, cmp_double);
    return rate[rounds / 2];
}

int main(int argc, char **argv)
{
    int batch = arg(argc, argv, 1, 64, mnist_mlp_MAX_BATCH);
    int steps = arg(argc, argv, 2, 300, 1000000);
    int rounds = arg(argc, argv, 3, 5, 64);
    float *x = malloc(sizeof *x * (size_t)batch * 784);
    int32_t *y = malloc(sizeof *y * (size_t)batch);
    float *probs = malloc(sizeof *probs * (size_t)batch * 10);
    mnist_mlp *m = mnist_mlp_create(1);
    if (!x || !y || !probs || !m) {
        fprintf(stderr, "bench_mnist_mlp: out of memory\n");
        return 1;
    }
    dlrt_rng r;
    dlrt_rng_seed(&r, 7, 0);
    for (int i = 0; i < batch * 784; i++)
        x[i] = (float)dlrt_rng_normal(&r);
    for (int i = 0; i < batch; i++)
        y[i] = (int32_t)(dlrt_rng_next(&r) % 10);

    const dlrt_model_info *info = mnist_mlp_info();
    double train = measure(m, 1, batch, steps, rounds, x, y, probs);
    double infer = measure(m, 0, batch, steps, rounds, x, y, probs);
    printf("dlc mnist_mlp batch %d: train %.0f samples/s, forward %.0f samples/s, "
           "instance %.2f MiB\n",
           batch, train, infer, (double)info->state_bytes / (1 << 20));
    mnist_mlp_destroy(m);
    free(x);
    free(y);
    free(probs);
    return 0;
}
