/* train_text — trains a character-level language model compiled by dlc (the
 * LSTM of examples/charlstm, the Transformer of examples/gpt) on a text
 * file, reports held-out loss and perplexity next to the unigram baseline,
 * and samples text from the trained model. The model is chosen when this
 * file is compiled, as in train_mnist.c: -DMODEL=gpt includes gpt.h and
 * calls gpt_create, gpt_train_step, ... The model takes ids and targets,
 * i32 [B, T] (targets: the ids shifted left by one), and outputs
 * probabilities over the next character at every position, [B*T, V] or
 * [B, T, V]; T and V come from its info.
 *
 *   train_NAME [--text FILE] [--steps N] [--batch N] [--seed N] [--threads N] [--eval-every N]
 *              [--checkpoint FILE] [--resume] [--max-loss X]
 *              [--sample N] [--temperature X] [--prompt TEXT] [--log FILE]
 *
 * The text (default the GPL-3 that Debian ships) is read as bytes: byte b is
 * character id b, and a byte >= V (non-ASCII when V = 128) becomes id 26,
 * ASCII's SUB. The last 10% is held out. Step s trains on --batch windows
 * of T + 1 characters at random starts drawn from (seed, s) alone, so
 * --resume from the checkpoint (written at every evaluation) continues bit
 * for bit. Every --eval-every steps the held-out text is scored in
 * consecutive windows: mean loss per character in nats, its perplexity,
 * and the unigram baseline (the training text's character frequencies,
 * add-one smoothed, scored on the same characters). --steps is the step to
 * train up to, counting the checkpoint's.
 *
 * Sampling runs the compiled forward on batch 1: the context (the prompt,
 * then what was drawn) is put at positions 0.. of the window, only its last
 * T characters when longer; the next character is drawn from the
 * probabilities at the context's last position (both models are causal, so
 * the positions after it do not matter), sharpened by --temperature, with
 * a generator seeded by --seed. Characters that are not printable ASCII
 * are printed as '?'. --max-loss makes the exit status 1 unless the final
 * held-out loss is below X. --log writes a CSV log (dlrt_log: the training
 * loss every LOG_EVERY steps, the held-out loss at each evaluation;
 * appended to on --resume) that scripts/plot-log.sh draws.
 *
 * Data-parallel (dist.h): `mpirun -np N train_NAME ...` trains on N ranks.
 * Every rank draws step s's --batch windows (the global batch) and trains
 * on its block of them; the gradients are averaged, so the run follows the
 * single-process one up to the order of sums, dropout aside (drawn per
 * rank). The held-out windows are split across the ranks; rank 0 prints,
 * logs, samples and writes the checkpoint. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dist.h"
#include "model.h" /* MODEL's generated API: M(create) is gpt_create */
#define PROG "train_" STR(MODEL)
#define MAX_BATCH CAT(MODEL, _MAX_BATCH)
#define UNKNOWN_ID 26         /* ASCII SUB, for bytes >= V */
#define HELDOUT 0.1           /* the text's last 10% */
#define SAMPLE_STREAM (~0ull) /* the sampler's dlrt_rng stream; steps use 0.. */
#define LOG_EVERY 10

typedef struct {
    const char *text, *checkpoint, *prompt, *log;
    long steps, eval_every, sample;
    int batch, resume;
    uint64_t seed;
    double max_loss, temperature; /* max_loss < 0: no requirement */
} Options;

static void usage(void)
{
    fprintf(stderr,
            "usage: " PROG " [--text FILE] [--steps N] [--batch N] [--seed N] [--threads N]\n"
            "       [--eval-every N]"
            " [--checkpoint FILE] [--resume] [--max-loss X]\n"
            "       [--sample N] [--temperature X] [--prompt TEXT] [--log FILE]\n");
    exit(2);
}

/* --batch may reach MAX_BATCH windows per rank */
static Options parse(int argc, char **argv, int ranks)
{
    Options o = {"/usr/share/common-licenses/GPL-3",
                 STR(MODEL) ".safetensors",
                 "This License",
                 NULL,
                 1000,
                 100,
                 400,
                 MAX_BATCH,
                 0,
                 1,
                 -1,
                 0.8};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--resume") == 0) {
            o.resume = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--text") == 0)
            o.text = v;
        else if (strcmp(a, "--checkpoint") == 0)
            o.checkpoint = v;
        else if (strcmp(a, "--log") == 0)
            o.log = v;
        else if (strcmp(a, "--prompt") == 0)
            o.prompt = v;
        else if (strcmp(a, "--steps") == 0)
            o.steps = cli_number(PROG, a, v, 0, 100000000);
        else if (strcmp(a, "--eval-every") == 0)
            o.eval_every = cli_number(PROG, a, v, 1, 100000000);
        else if (strcmp(a, "--sample") == 0)
            o.sample = cli_number(PROG, a, v, 0, 1000000);
        else if (strcmp(a, "--batch") == 0)
            o.batch = (int)cli_number(PROG, a, v, 1, (long)MAX_BATCH * ranks);
        else if (strcmp(a, "--threads") == 0) /* the same results at any count */
            dlrt_set_num_threads((int)cli_number(PROG, a, v, 1, 256));
        else if (strcmp(a, "--seed") == 0)
            o.seed = (uint64_t)cli_number(PROG, a, v, 0, 0x7fffffff);
        else if (strcmp(a, "--max-loss") == 0)
            o.max_loss = cli_real(PROG, a, v, 0, 1e9);
        else if (strcmp(a, "--temperature") == 0)
            o.temperature = cli_real(PROG, a, v, 0, 100);
        else
            usage();
    }
    return o;
}

/* A failure on one rank ends them all (the others would wait for it). */
static int fail(const char *what, int rc)
{
    cli_fail(PROG, what, rc);
    if (dist_size() > 1)
        dist_abort(1);
    return 1;
}

/* The held-out loss per character: evaluate over every window of t, each
 * rank over its block of them. */
static int heldout_loss(Model *m, const dlrt_text *t, int64_t T, int32_t *ids, int32_t *targets,
                        double *loss)
{
    double total = 0;
    int64_t count = dlrt_text_window_count(t, T), first, mine;
    dist_shard(count, &first, &mine);
    int rc = dist_average_states(m);
    if (rc)
        return rc;
    for (int64_t w = first; w < first + mine; w += MAX_BATCH) {
        int n = dlrt_text_windows(
            t, T, w, (int)(first + mine - w < MAX_BATCH ? first + mine - w : MAX_BATCH), ids,
            targets);
        float l;
        rc = n < 1 ? (n < 0 ? n : DLRT_ERANGE) : M(evaluate)(m, n, ids, targets, &l);
        if (rc)
            return rc;
        total += (double)l * n;
    }
    if ((rc = dist_sum(&total, 1)))
        return rc;
    *loss = total / (double)count;
    return 0;
}

/* Prints o->sample characters drawn after o->prompt. */
static int sample(Model *m, const Options *o, int64_t T, int V)
{
    size_t plen = strlen(o->prompt), n = plen + 1 + (size_t)o->sample; /* + 1: '\n' for "" */
    int32_t *ctx = malloc(sizeof *ctx * n), *ids = malloc(sizeof *ids * (size_t)T);
    float *probs = malloc(sizeof *probs * (size_t)T * (size_t)V);
    if (!ctx || !ids || !probs) {
        free(ctx);
        free(ids);
        free(probs);
        return DLRT_ENOMEM;
    }
    for (size_t i = 0; i < plen; i++) {
        unsigned char c = (unsigned char)o->prompt[i];
        ctx[i] = c < V ? c : UNKNOWN_ID;
    }
    if (plen == 0) /* an empty prompt starts at a line */
        ctx[plen++] = '\n';
    dlrt_rng rng;
    dlrt_rng_seed(&rng, o->seed, SAMPLE_STREAM);
    printf("--- %ld characters at temperature %g after \"%s\":\n%s", o->sample, o->temperature,
           o->prompt, o->prompt);
    int rc = 0;
    for (size_t len = plen; len < plen + (size_t)o->sample && !rc; len++) {
        int64_t c = len < (size_t)T ? (int64_t)len : T;
        for (int64_t i = 0; i < T; i++)
            ids[i] = i < c ? ctx[len - (size_t)c + (size_t)i] : ' ';
        if ((rc = M(forward)(m, 1, ids, probs)))
            break;
        int next = dlrt_sample(probs + (c - 1) * V, V, o->temperature, &rng);
        if (next < 0) {
            rc = next;
            break;
        }
        ctx[len] = next;
        putchar((next >= ' ' && next < 127) || next == '\n' || next == '\t' ? next : '?');
    }
    printf("\n---\n");
    free(ctx);
    free(ids);
    free(probs);
    return rc;
}

int main(int argc, char **argv)
{
    int rc = dist_init(&argc, &argv);
    if (rc)
        return fail("MPI", rc);
    Options o = parse(argc, argv, dist_size());
    int root = dist_rank() == 0;
    const dlrt_model_info *info = M(info)();
    if (info->num_inputs != 2 || info->inputs[0].desc.rank != 2 || info->num_outputs != 1) {
        fprintf(stderr, PROG ": the model does not take ids and targets [B, T]\n");
        return 1;
    }
    int64_t T = info->inputs[0].desc.shape[1];
    const dlrt_tensor_desc *out = &info->outputs[0].desc;
    int V = (int)out->shape[out->rank - 1];

    char err[256];
    dlrt_text text, train, held;
    rc = dlrt_text_load(o.text, V, UNKNOWN_ID, &text, err, sizeof err);
    if (!rc)
        rc = dlrt_text_split(&text, HELDOUT, T, &train, &held, err, sizeof err);
    if (rc) {
        fprintf(stderr, PROG ": %s\n", err);
        if (dist_size() > 1)
            dist_abort(1);
        return 1;
    }
    double unigram = dlrt_text_unigram_loss(&train, &held, T);
    if (unigram < 0)
        return fail("unigram baseline", (int)unigram);

    Model *m = M(create)(o.seed);
    if (!m)
        return fail("create", DLRT_ENOMEM);
    if ((rc = o.resume ? dist_load(m, o.checkpoint) : dist_sync(m)))
        return fail(o.resume ? o.checkpoint : "sync", rc);
    int64_t step = M(step)(m);
    if (!root && !freopen("/dev/null", "w", stdout)) /* only rank 0 prints */
        return fail("/dev/null", DLRT_EIO);
    if (dist_size() > 1)
        printf("%d ranks, %d windows of each batch per rank\n", dist_size(),
               (o.batch + dist_size() - 1) / dist_size());
    printf("%s: %lld parameters, context %lld, vocabulary %d, batch %d, lr %g%s\n", STR(MODEL),
           (long long)CAT(MODEL, _NUM_PARAMS), (long long)T, V, o.batch,
           (double)M(learning_rate)(m), o.resume ? " (resumed)" : "");
    printf("text %s: %lld characters for training, %lld held out; unigram baseline %.4f nats "
           "(perplexity %.2f)\n",
           o.text, (long long)train.n, (long long)held.n, unigram, exp(unigram));
    if (step >= o.steps)
        printf("the checkpoint is at step %lld: %ld steps are done already\n", (long long)step,
               o.steps);

    /* a global batch of windows for training, MAX_BATCH for evaluation */
    size_t window = (size_t)(o.batch > MAX_BATCH ? o.batch : MAX_BATCH) * (size_t)T;
    int32_t *ids = malloc(sizeof *ids * window), *targets = malloc(sizeof *targets * window);
    if (!ids || !targets)
        return fail("batch buffers", DLRT_ENOMEM);
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    p.unit = "tokens";
    dlrt_log log = {0};
    if (!root)
        o.log = NULL;
    int64_t first, mine; /* this rank's windows of each batch */
    dist_shard(o.batch, &first, &mine);
    if (o.log &&
        (rc = dlrt_log_open(&log, o.log, LOG_EVERY, o.resume ? DLRT_LOG_APPEND : 0, NULL, NULL)))
        return fail("log", rc);
    double loss = 0;
    int evaluated = 0;
    while (step < o.steps) {
        int64_t end = (step / o.eval_every + 1) * o.eval_every;
        if (end > o.steps)
            end = o.steps;
        char label[80];
        snprintf(label, sizeof label, "steps %lld-%lld/%ld", (long long)step + 1, (long long)end,
                 o.steps);
        if (root)
            dlrt_progress_begin(&p, end - step, label);
        for (int64_t k = 0; step < end; step++, k++) {
            double l;
            rc = dlrt_text_random_windows(&train, T, o.batch, o.seed, (uint64_t)step, ids, targets);
            if (rc || (rc = dist_train_step(
                           m, (int)mine, o.batch,
                           (const void *const[]){ids + first * T, targets + first * T}, &l)))
                return fail("train_step", rc);
            if (root)
                dlrt_progress_update(&p, k + 1, l, (int64_t)o.batch * T);
            if (o.log && (rc = dlrt_log_step(&log, step + 1, NAN, l, (int64_t)o.batch * T,
                                             M(learning_rate)(m))))
                return fail(o.log, rc);
        }
        if (root)
            dlrt_progress_end(&p);
        if ((rc = heldout_loss(m, &held, T, ids, targets, &loss)))
            return fail("held-out loss", rc);
        evaluated = 1;
        if (o.log && (rc = dlrt_log_eval(&log, step, NAN, "valid", loss, NAN)))
            return fail(o.log, rc);
        printf("step %lld: held-out loss %.4f nats (perplexity %.2f), unigram %.4f\n",
               (long long)step, loss, exp(loss), unigram);
        fflush(stdout);
        if ((rc = dist_save(m, o.checkpoint)))
            return fail(o.checkpoint, rc);
    }
    if (!evaluated && (rc = heldout_loss(m, &held, T, ids, targets, &loss)))
        return fail("held-out loss", rc);
    if (o.log && (rc = dlrt_log_close(&log)))
        return fail(o.log, rc);
    printf("final held-out loss %.4f nats (perplexity %.2f) after %lld steps; unigram %.4f; "
           "checkpoint %s\n",
           loss, exp(loss), (long long)M(step)(m), unigram, o.checkpoint);
    if (root && o.sample > 0 && (rc = sample(m, &o, T, V)))
        return fail("sample", rc);

    free(ids);
    free(targets);
    M(destroy)(m);
    dlrt_text_free(&text);
    dlrt_text_free(&train);
    dlrt_text_free(&held);
    if ((rc = dist_finalize()))
        return fail("MPI", rc);
    if (o.max_loss >= 0 && !(loss < o.max_loss)) {
        fprintf(stderr, PROG ": held-out loss %.4f is not below the required %.4f\n", loss,
                o.max_loss);
        return 1;
    }
    return 0;
}
