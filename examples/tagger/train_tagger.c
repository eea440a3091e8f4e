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

#include "tagger.h"
#include "trainer.h"

enum { T = 24, TOKENS = 4, MIN_LEN = 4, BATCH = tagger_MAX_BATCH, HELD = 2048, GAP = 2 };
#define HELD_SEED 20261204u /* the held-out rows' generator, whatever --seed is */
#define PROG "train_tagger"

#define USAGE                                                                                      \
    "usage: " PROG " [--steps N] [--eval-every N] [--seed N] [--threads N]\n"                      \
    "                    [--checkpoint FILE] [--min-accuracy X]\n"

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

/* The held-out rows and a batch's, for the trainer's callbacks */
typedef struct {
    tagger *m;
    const TrainerOptions *o;
    int32_t held_ids[HELD * T], held_n[HELD], held_tags[HELD * T], pred[HELD * T];
    int32_t ids[BATCH * T], n[BATCH], tags[BATCH * T];
    double accuracy, left;
} Run;

static int train_step(void *ctx, long step, float *loss, long *tokens, double *lr)
{
    Run *r = ctx;
    dlrt_rng rng;
    dlrt_rng_seed(&rng, r->o->seed, (uint64_t)step);
    generate(&rng, BATCH, r->ids, r->n, r->tags);
    *tokens = 0;
    for (int b = 0; b < BATCH; b++)
        *tokens += r->n[b];
    *lr = NAN;
    return tagger_train_step(r->m, BATCH, r->ids, r->n, r->tags, loss);
}

static int evaluate(void *ctx, long step, dlrt_log *log, const char **what)
{
    Run *r = ctx;
    (void)log;
    *what = "held-out accuracy";
    int rc = heldout_accuracy(r->m, r->held_ids, r->held_n, r->held_tags, r->pred, &r->accuracy);
    if (!rc)
        printf("step %ld: held-out token accuracy %.2f%% (left-to-right bound %.2f%%)\n", step,
               r->accuracy, r->left);
    return rc;
}

static int save(void *ctx, const char *path)
{
    return tagger_save(((Run *)ctx)->m, path);
}

int main(int argc, char **argv)
{
    TrainerOptions o = {"tagger.safetensors", NULL, NULL, 400, 100, 1, -1};
    trainer_parse(PROG, USAGE, 0, argc, argv, &o);
    static Run r;
    static int32_t noisy[HELD * T], noisy_pred[HELD * T];
    r.o = &o;
    dlrt_rng rng;
    dlrt_rng_seed(&rng, HELD_SEED, 0);
    generate(&rng, HELD, r.held_ids, r.held_n, r.held_tags);
    long held_tokens = 0;
    for (int b = 0; b < HELD; b++)
        held_tokens += r.held_n[b];
    double majority = score(r.held_ids, r.held_n, r.held_tags, NULL, 0, HELD);
    double ones = score(r.held_ids, r.held_n, r.held_tags, NULL, 1, HELD);
    if (ones > majority)
        majority = ones;
    r.left = score(r.held_ids, r.held_n, r.held_tags, NULL, -1, HELD);

    tagger *m = r.m = tagger_create(o.seed);
    if (!m)
        return fail("create", DLRT_ENOMEM);
    printf("tagger: %lld parameters, T %d, batch %d, lr %g\n", (long long)tagger_NUM_PARAMS, T,
           BATCH, (double)tagger_learning_rate(m));
    printf("held out: %d rows, %ld tokens; majority tag %.2f%%, left-to-right bound %.2f%%\n", HELD,
           held_tokens, majority, r.left);

    Trainer t = {PROG, &r, train_step, evaluate, save};
    if (trainer_run(&t, &o, NULL)) {
        tagger_destroy(m);
        return 1;
    }
    printf("final held-out token accuracy %.2f%% after %ld steps; majority %.2f%%, "
           "left-to-right bound %.2f%%; checkpoint %s\n",
           r.accuracy, o.steps, majority, r.left, o.checkpoint);
    int rc, changed = padding_changes(m, r.held_ids, r.held_n, r.held_tags, r.pred, noisy,
                                      noisy_pred, &rc);
    if (rc)
        return fail("padding check", rc);
    printf("random tokens in the padding change %d predictions\n", changed);
    tagger_destroy(m);
    if (changed)
        return 1;
    return trainer_require(PROG, &o, "accuracy", r.accuracy);
}
