/* bench_NAME — training and inference throughput of a compiled MNIST
 * classifier: the MLP of examples/mnist (bench_mnist_mlp) or LeNet-5 of
 * examples/lenet (bench_lenet). The model is chosen when this file is
 * compiled, as in examples/common/train_mnist.c: -DMODEL=lenet includes
 * lenet.h and calls lenet_create, lenet_train_step, ... Sizes come from the
 * model's info: the input x (any shape, e.g. [B, 784] or [B, 1, 28, 28]),
 * the labels y [B] and the output probs [B, classes].
 *
 * train_step runs on one batch of random inputs with labels drawn afresh
 * for each step (from LABEL_SETS sets made before), in rounds of STEPS
 * steps after a warm-up. Fixed labels would be memorized: the loss goes
 * to 0, the gradients and Adam's second moments to denormal floats, and
 * Intel's cores take those in microcode, a quarter of LeNet-5's step
 * (AMD's barely slow down): that is no training a user runs. The
 * arithmetic does not depend on the values otherwise;
 * it prints each round and the median samples/s, then inference (forward)
 * throughput the same way. bench/run.sh puts PyTorch's numbers for the same
 * model (bench/torch_mnist.py) next to these.
 *
 *   bench_NAME [--threads N] [BATCH [STEPS [ROUNDS]]]     default 64 300 5 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "model.h" /* MODEL's generated API: M(create) is lenet_create */
#define PROG "bench_" STR(MODEL)

/* Scalars of one sample of a tensor: its extent with the batch dimensions
 * left out. */
static int64_t per_sample(const dlrt_tensor_info *t, int max_batch)
{
    int64_t n = 1;
    for (int i = 0; i < t->desc.rank; i++)
        n *= t->batch_dims >> i & 1 ? t->desc.shape[i] / max_batch : t->desc.shape[i];
    return n;
}

enum { LABEL_SETS = 64 };

typedef struct {
    Model *m;
    int batch;
    const float *x;
    const int32_t *y; /* LABEL_SETS sets of batch labels */
    float *probs;
    int step;
} Run;

static int train(void *ctx, float *loss)
{
    Run *r = ctx;
    const int32_t *y = r->y + (size_t)(r->step++ % LABEL_SETS) * (size_t)r->batch;
    return M(train_step)(r->m, r->batch, r->x, y, loss);
}

static int forward(void *ctx, float *loss)
{
    Run *r = ctx;
    *loss = 0;
    return M(forward)(r->m, r->batch, r->x, r->probs);
}

int main(int argc, char **argv)
{
    const dlrt_model_info *info = M(info)();
    if (info->num_inputs != 2 || info->inputs[0].desc.dtype != DLRT_F32 ||
        info->inputs[1].desc.dtype != DLRT_I32 || info->num_outputs != 1) {
        fprintf(stderr, PROG ": the model must take x (f32), y (i32) and output probs\n");
        return 1;
    }
    int threads = bench_threads(PROG, &argc, argv);
    int batch = bench_arg(PROG, argc, argv, 1, 64, CAT(MODEL, _MAX_BATCH));
    int steps = bench_arg(PROG, argc, argv, 2, 300, 1000000);
    int rounds = bench_arg(PROG, argc, argv, 3, 5, 64);
    int64_t dim = per_sample(&info->inputs[0], info->max_batch);
    int64_t classes = per_sample(&info->outputs[0], info->max_batch);
    float *x = malloc(sizeof *x * (size_t)(batch * dim));
    int32_t *y = malloc(sizeof *y * (size_t)(LABEL_SETS * batch));
    float *probs = malloc(sizeof *probs * (size_t)(batch * classes));
    Model *m = M(create)(1);
    if (!x || !y || !probs || !m) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    dlrt_rng r;
    dlrt_rng_seed(&r, 7, 0);
    for (int64_t i = 0; i < batch * dim; i++)
        x[i] = (float)dlrt_rng_normal(&r);
    for (int i = 0; i < LABEL_SETS * batch; i++)
        y[i] = (int32_t)(dlrt_rng_next(&r) % (uint64_t)classes);

    Run run = {m, batch, x, y, probs, 0};
    double train_rate = bench_measure(PROG, "train", train, &run, steps, rounds, batch, "samples");
    double infer = bench_measure(PROG, "forward", forward, &run, steps, rounds, batch, "samples");
    printf("dlc %s batch %d threads %d: train %.0f samples/s, forward %.0f samples/s, "
           "instance %.2f MiB\n",
           STR(MODEL), batch, threads, train_rate, infer, (double)info->state_bytes / (1 << 20));
    M(destroy)(m);
    free(x);
    free(y);
    free(probs);
    return 0;
}
