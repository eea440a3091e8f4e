/* bench_NAME — training and inference throughput, in tokens/s, of a
 * compiled character-level language model: the LSTM of examples/charlstm
 * (bench_charlstm) or the Transformer of examples/gpt (bench_gpt). The
 * model is chosen when this file is compiled, as in
 * examples/common/train_text.c: -DMODEL=gpt includes gpt.h and calls
 * gpt_create, gpt_train_step, ... The model takes ids and targets, i32
 * [B, T], and outputs probabilities [B*T, V] or [B, T, V].
 *
 * train_step runs on one batch of random ids and targets (the arithmetic
 * does not depend on the values) in rounds of STEPS steps after a warm-up;
 * it prints the median tokens/s (B * T per step), then inference (forward)
 * throughput the same way. bench/run.sh puts PyTorch's numbers for the same
 * model (bench/torch_text.py) next to these.
 *
 *   bench_NAME [--threads N] [BATCH [STEPS [ROUNDS]]]     default: the largest batch, 20 5 */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "model.h" /* MODEL's generated API: M(create) is gpt_create */
#define PROG "bench_" STR(MODEL)

typedef struct {
    Model *m;
    int batch;
    const int32_t *ids, *targets;
    float *probs;
} Run;

static int train(void *ctx, float *loss)
{
    Run *r = ctx;
    return M(train_step)(r->m, r->batch, r->ids, r->targets, loss);
}

static int forward(void *ctx, float *loss)
{
    Run *r = ctx;
    *loss = 0;
    return M(forward)(r->m, r->batch, r->ids, r->probs);
}

int main(int argc, char **argv)
{
    const dlrt_model_info *info = M(info)();
    if (info->num_inputs != 2 || info->inputs[0].desc.rank != 2 ||
        info->inputs[0].desc.dtype != DLRT_I32 || info->num_outputs != 1) {
        fprintf(stderr, PROG ": the model must take ids and targets, i32 [B, T]\n");
        return 1;
    }
    int64_t T = info->inputs[0].desc.shape[1];
    const dlrt_tensor_desc *out = &info->outputs[0].desc;
    int64_t V = out->shape[out->rank - 1];
    int threads = bench_threads(PROG, &argc, argv);
    int batch = bench_arg(PROG, argc, argv, 1, info->max_batch, info->max_batch);
    int steps = bench_arg(PROG, argc, argv, 2, 20, 1000000);
    int rounds = bench_arg(PROG, argc, argv, 3, 5, 64);
    size_t n = (size_t)batch * (size_t)T;
    int32_t *ids = malloc(sizeof *ids * n), *targets = malloc(sizeof *targets * n);
    float *probs = malloc(sizeof *probs * n * (size_t)V);
    Model *m = M(create)(1);
    if (!ids || !targets || !probs || !m) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    dlrt_rng r;
    dlrt_rng_seed(&r, 7, 0);
    for (size_t i = 0; i < n; i++) {
        ids[i] = (int32_t)(dlrt_rng_next(&r) % (uint64_t)V);
        targets[i] = (int32_t)(dlrt_rng_next(&r) % (uint64_t)V);
    }

    Run run = {m, batch, ids, targets, probs};
    int64_t tokens = (int64_t)batch * T;
    double train_rate = bench_measure(PROG, "train", train, &run, steps, rounds, tokens, "tokens");
    double infer = bench_measure(PROG, "forward", forward, &run, steps, rounds, tokens, "tokens");
    printf("dlc %s batch %d context %lld threads %d: train %.0f tokens/s, forward %.0f tokens/s, "
           "instance %.2f MiB\n",
           STR(MODEL), batch, (long long)T, threads, train_rate, infer,
           (double)info->state_bytes / (1 << 20));
    M(destroy)(m);
    free(ids);
    free(targets);
    free(probs);
    return 0;
}
