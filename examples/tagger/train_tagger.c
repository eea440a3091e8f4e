/* train_tagger — trains the bidirectional GRU tagger of tagger.dl on a
 * synthetic sequence-labelling task that this program generates, and
 * reports its token accuracy on a held-out set.
 *
 *   train_tagger [--steps N] [--eval-every N] [--seed N] [--threads N]
 *                [--checkpoint FILE] [--min-accuracy X]
 *
 * The task: a row holds n tokens drawn uniformly from 1..4, n uniform in
 * MIN_LEN..T, padded with 0 to T. Token t's tag is 1 when it equals token
 * t - 2 or token t + 2 (those inside the row), else 0. Knowing the tokens
 * on both sides, a model can be exact; one that reads left to right cannot
 * know token t + 2, so the best it can do is to tag by t - 2 alone (a right
 * match is 1 chance in 4, never the likelier guess), which this program
 * scores on the held-out set as the "left-to-right bound" (83.1%), next
 * to the majority tag (61.7%). Only the n valid positions of a
 * row count, in the loss (tagger.dl masks it) and in the accuracy.
 *
 * Step s trains on a fresh batch drawn from (--seed, s); the held-out set
 * (HELD rows) comes from a fixed stream of its own, the same at every
 * seed. A progress bar shows the loss, tokens per second and the time
 * left; every --eval-every steps the held-out accuracy is printed and a
 * checkpoint written. At the end, the held-out rows are tagged again with
 * random tokens in their padding: the packed GRU must not read it, so the
 * exit status is 1 if any valid position's tag changes. --min-accuracy
 * makes it 1 too unless the final held-out accuracy (percent) is at
 * least X. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tagger.h"

enum { T = 24, TOKENS = 4, MIN_LEN = 4, BATCH = tagger_MAX_BATCH, HELD = 2048, GAP = 2 };
#define HELD_SEED 20261204u /* the held-out rows' generator, whatever --seed is */
#define PROG "train_tagger"

typedef struct {
    const char *checkpoint;
    long steps, eval_every;
    uint64_t seed;
    double min_accuracy;
} Options;

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " [--steps N] [--eval-every N] [--seed N] [--threads N]\n"
                    "                    [--checkpoint FILE] [--min-accuracy X]\n");
    exit(2);
}

static Options parse(int argc, char **argv)
{
    Options o = {"tagger.safetensors", 400, 100, 1, -1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--steps") == 0)
            o.steps = cli_number(PROG, a, v, 1, 100000000);
        else if (strcmp(a, "--eval-every") == 0)
            o.eval_every = cli_number(PROG, a, v, 1, 100000000);
        else if (strcmp(a, "--seed") == 0)
            o.seed = (uint64_t)cli_number(PROG, a, v, 0, 0x7fffffff);
        else if (strcmp(a, "--threads") == 0)
            dlrt_set_num_threads((int)cli_number(PROG, a, v, 1, 256));
        else if (strcmp(a, "--checkpoint") == 0)
            o.checkpoint = v;
        else if (strcmp(a, "--min-accuracy") == 0)
            o.min_accuracy = cli_real(PROG, a, v, 0, 100);
        else
            usage();
    }
    return o;
}

static int fail(const char *what, int rc)
{
    return cli_fail(PROG, what, rc);
}

/* rows rows of the task: ids and tags [rows, T] (0 at the padding), n [rows] */
static void generate(dlrt_rng *rng, int rows, int32_t *ids, int32_t *n, int32_t *tags)
{
    for (int b = 0; b < rows; b++) {
        int32_t *id = ids + (size_t)b * T, *tag = tags + (size_t)b * T;
        n[b] = MIN_LEN + (int32_t)(dlrt_rng_next(rng) % (T - MIN_LEN + 1));
        for (int t = 0; t < T; t++)
            id[t] = t < n[b] ? 1 + (int32_t)(dlrt_rng_next(rng) % TOKENS) : 0;
        for (int t = 0; t < T; t++)
            tag[t] = t < n[b] && ((t >= GAP && id[t] == id[t - GAP]) ||
                                  (t + GAP < n[b] && id[t] == id[t + GAP]));
    }
}

/* Percent of the valid positions of rows tagged right by pred, or where
 * pred is NULL by the constant tag `constant`, or for constant -1 by the
 * left-to-right rule (equal to the token GAP steps before). */
static double score(const int32_t *ids, const int32_t *n, const int32_t *tags, const int32_t *pred,
                    int constant, int rows)
{
    long right = 0, all = 0;
    for (int b = 0; b < rows; b++)
        for (int t = 0; t < n[b]; t++) {
            size_t i = (size_t)b * T + (size_t)t;
            int guess = constant;
            if (pred)
                guess = pred[i];
            else if (constant < 0)
                guess = t >= GAP && ids[i] == ids[i - GAP];
            right += guess == tags[i];
            all++;
        }
    return 100.0 * (double)right / (double)all;
}

static int heldout_accuracy(tagger *m, const int32_t *ids, const int32_t *n, const int32_t *tags,
                            int32_t *pred, double *accuracy)
{
    for (int b = 0; b < HELD; b += BATCH) {
        int rows = HELD - b < BATCH ? HELD - b : BATCH;
        int rc = tagger_forward(m, rows, ids + (size_t)b * T, n + b, pred + (size_t)b * T);
        if (rc)
            return rc;
    }
    *accuracy = score(ids, n, tags, pred, 0, HELD);
    return 0;
}

/* The packed GRU never reads the padding: with random tokens in place of
 * it, no prediction at a valid position may change. Returns how many do. */
static int padding_changes(tagger *m, const int32_t *ids, const int32_t *n, const int32_t *tags,
                           const int32_t *pred, int32_t *noisy, int32_t *noisy_pred, int *rc)
{
    dlrt_rng rng;
    dlrt_rng_seed(&rng, HELD_SEED, 1);
    for (int b = 0; b < HELD; b++)
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + (size_t)t;
            noisy[i] = t < n[b] ? ids[i] : 1 + (int32_t)(dlrt_rng_next(&rng) % TOKENS);
        }
    double unused;
    if ((*rc = heldout_accuracy(m, noisy, n, tags, noisy_pred, &unused)))
        return 0;
    int changed = 0;
    for (int b = 0; b < HELD; b++)
        for (int t = 0; t < n[b]; t++)
            changed += pred[(size_t)b * T + (size_t)t] != noisy_pred[(size_t)b * T + (size_t)t];
    return changed;
}

int main(int argc, char **argv)
{
    Options o = parse(argc, argv);
    static int32_t held_ids[HELD * T], held_n[HELD], held_tags[HELD * T], pred[HELD * T];
    static int32_t noisy[HELD * T], noisy_pred[HELD * T];
    static int32_t ids[BATCH * T], n[BATCH], tags[BATCH * T];
    dlrt_rng rng;
    dlrt_rng_seed(&rng, HELD_SEED, 0);
    generate(&rng, HELD, held_ids, held_n, held_tags);
    long held_tokens = 0;
    for (int b = 0; b < HELD; b++)
        held_tokens += held_n[b];
    double majority = score(held_ids, held_n, held_tags, NULL, 0, HELD);
    double ones = score(held_ids, held_n, held_tags, NULL, 1, HELD);
    if (ones > majority)
        majority = ones;
    double left = score(held_ids, held_n, held_tags, NULL, -1, HELD);

    tagger *m = tagger_create(o.seed);
    if (!m)
        return fail("create", DLRT_ENOMEM);
    printf("tagger: %lld parameters, T %d, batch %d, lr %g\n", (long long)tagger_NUM_PARAMS, T,
           BATCH, (double)tagger_learning_rate(m));
    printf("held out: %d rows, %ld tokens; majority tag %.2f%%, left-to-right bound %.2f%%\n", HELD,
           held_tokens, majority, left);

    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    p.unit = "tokens";
    double accuracy = 0;
    for (long step = 0; step < o.steps;) {
        long end = step + o.eval_every < o.steps ? step + o.eval_every : o.steps;
        char label[64];
        snprintf(label, sizeof label, "steps %ld-%ld/%ld", step + 1, end, o.steps);
        dlrt_progress_begin(&p, end - step, label);
        for (long k = 0; step < end; step++, k++) {
            dlrt_rng_seed(&rng, o.seed, (uint64_t)step);
            generate(&rng, BATCH, ids, n, tags);
            long tokens = 0;
            for (int b = 0; b < BATCH; b++)
                tokens += n[b];
            float loss;
            int rc = tagger_train_step(m, BATCH, ids, n, tags, &loss);
            if (rc)
                return fail("train_step", rc);
            dlrt_progress_update(&p, k + 1, loss, tokens);
        }
        dlrt_progress_end(&p);
        int rc = heldout_accuracy(m, held_ids, held_n, held_tags, pred, &accuracy);
        if (rc)
            return fail("held-out accuracy", rc);
        printf("step %ld: held-out token accuracy %.2f%% (left-to-right bound %.2f%%)\n", step,
               accuracy, left);
        fflush(stdout);
        if ((rc = tagger_save(m, o.checkpoint)))
            return fail(o.checkpoint, rc);
    }
    printf("final held-out token accuracy %.2f%% after %ld steps; majority %.2f%%, "
           "left-to-right bound %.2f%%; checkpoint %s\n",
           accuracy, o.steps, majority, left, o.checkpoint);
    int rc, changed = padding_changes(m, held_ids, held_n, held_tags, pred, noisy, noisy_pred, &rc);
    if (rc)
        return fail("padding check", rc);
    printf("random tokens in the padding change %d predictions\n", changed);
    tagger_destroy(m);
    if (changed)
        return 1;
    if (o.min_accuracy >= 0 && !(accuracy >= o.min_accuracy)) {
        fprintf(stderr, PROG ": accuracy %.2f%% is below %.2f%%\n", accuracy, o.min_accuracy);
        return 1;
    }
    return 0;
}
