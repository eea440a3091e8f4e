/* train_seq2seq — trains the Transformer encoder-decoder of seq2seq.dl to
 * reverse variable-length token sequences, which this program generates,
 * and measures it on a held-out set by greedy decoding.
 *
 *   train_seq2seq [--steps N] [--eval-every N] [--seed N] [--threads N]
 *                 [--checkpoint FILE] [--log FILE] [--min-accuracy X]
 *
 * The task: a row holds n tokens drawn uniformly from ids 3..V-1 (10 of
 * them), n uniform in 1..T, padded with 0 to T. Its target is the tokens
 * in reverse order, then EOS: n + 1 positions of the decoder's T + 1.
 * Training is teacher-forced: the decoder reads BOS and the target shifted
 * right by one, and the loss counts the n + 1 valid positions only.
 *
 * Held-out rows (HELD, from a fixed stream of their own, the same at every
 * seed) are decoded greedily: the decoder starts from BOS alone, and the
 * token it predicts at position t is fed back as its input at t + 1, for
 * all T + 1 positions (a forward call per position; the causal mask keeps
 * what is not yet decoded out of sight). A row is exact when all its n + 1
 * positions are right (the n tokens reversed and EOS at n); token accuracy
 * counts the right ones among all of them. Every --eval-every steps the
 * held-out loss and teacher-forced token accuracy are printed (the
 * decoder's inputs always right: one call each) and a checkpoint written;
 * at the end the greedy accuracies, the claim, with the first long rows
 * decoded (tokens shown as the letters a-j). A random guess gets a token
 * right 1 time in 10 and a whole row about never. --log writes a CSV log
 * (dlrt_log: the training loss and learning rate every LOG_EVERY steps,
 * each evaluation's, the greedy exact-sequence accuracy as split
 * "greedy") that scripts/plot-log.sh draws.
 *
 * Then the held-out rows are decoded again with random tokens in the
 * source's padding and in the decoder positions not decoded yet: the
 * padding and causal masks must hide them, so the exit status is 1 if any
 * decoded position changes. --min-accuracy makes it 1 too unless the
 * final greedy exact-sequence accuracy (percent) is at least X. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seq2seq.h"
#include "trainer.h"

enum {
    T = 12,     /* longest source; the model's T */
    TD = T + 1, /* decoder positions */
    PAD = 0,
    BOS = 1,
    EOS = 2,
    FIRST = 3, /* tokens are FIRST..FIRST+TOKENS-1 */
    TOKENS = 10,
    MIN_LEN = 1,
    BATCH = seq2seq_MAX_BATCH,
    HELD = 1024,
    LOG_EVERY = 50,
    SHOWN = 3,     /* held-out rows printed with their decoding, */
    SHOWN_LEN = 9, /* the first ones at least this long */
};
#define HELD_SEED 20261204u /* the held-out rows' generator, whatever --seed is */
#define PROG "train_seq2seq"

/* Up to HELD rows of the task */
typedef struct {
    int32_t src[HELD * T], n[HELD], dec_in[HELD * TD], target[HELD * TD];
} Rows;

#define USAGE                                                                                      \
    "usage: " PROG " [--steps N] [--eval-every N] [--seed N] [--threads N]\n"                      \
    "                     [--checkpoint FILE] [--log FILE] [--min-accuracy X]\n"

/* Reports a failed call and frees the model: the exit status, 1 */
static int fail(seq2seq *m, const char *what, int rc)
{
    cli_fail(PROG, what, rc);
    seq2seq_destroy(m);
    return 1;
}

static int32_t random_token(dlrt_rng *rng)
{
    return FIRST + (int32_t)(dlrt_rng_next(rng) % TOKENS);
}

/* rows rows of the task, 0 at every padding position */
static void generate(dlrt_rng *rng, int rows, Rows *r)
{
    for (int b = 0; b < rows; b++) {
        int32_t *src = r->src + (size_t)b * T, *dec = r->dec_in + (size_t)b * TD;
        int32_t *tgt = r->target + (size_t)b * TD, n;
        n = r->n[b] = MIN_LEN + (int32_t)(dlrt_rng_next(rng) % (T - MIN_LEN + 1));
        for (int t = 0; t < T; t++)
            src[t] = t < n ? random_token(rng) : PAD;
        for (int t = 0; t < TD; t++)
            tgt[t] = t < n ? src[n - 1 - t] : t == n ? EOS : PAD;
        dec[0] = BOS;
        for (int t = 1; t < TD; t++)
            dec[t] = t <= n ? tgt[t - 1] : PAD;
    }
}

/* Predictions [HELD, TD] with the decoder's inputs taken from r (teacher
 * forcing), and the loss over all the valid positions. */
static int teacher_forced(seq2seq *m, const Rows *r, int32_t *pred, double *loss)
{
    double sum = 0;
    long tokens = 0;
    for (int b = 0; b < HELD; b += BATCH) {
        int rows = HELD - b < BATCH ? HELD - b : BATCH;
        const int32_t *src = r->src + (size_t)b * T, *dec = r->dec_in + (size_t)b * TD;
        const int32_t *tgt = r->target + (size_t)b * TD;
        float l;
        int rc = seq2seq_forward(m, rows, src, r->n + b, dec, pred + (size_t)b * TD);
        if (rc || (rc = seq2seq_evaluate(m, rows, src, r->n + b, dec, tgt, &l)))
            return rc;
        long valid = 0;
        for (int i = 0; i < rows; i++)
            valid += r->n[b + i] + 1;
        sum += (double)l * (double)valid; /* the model's loss is a mean over valid positions */
        tokens += valid;
    }
    *loss = sum / (double)tokens;
    return 0;
}

/* Greedy decoding of the HELD rows of src and n into out [HELD, TD]. The
 * decoder's inputs start as BOS and then those of fill [HELD, TD], or PAD
 * if fill is NULL (what the causal mask must hide); position t's
 * prediction becomes input t + 1. */
static int greedy(seq2seq *m, const Rows *r, const int32_t *fill, int32_t *out)
{
    static int32_t dec[BATCH * TD], pred[BATCH * TD];
    for (int b = 0; b < HELD; b += BATCH) {
        int rows = HELD - b < BATCH ? HELD - b : BATCH;
        for (int i = 0; i < rows * TD; i++)
            dec[i] = fill ? fill[(size_t)b * TD + (size_t)i] : PAD;
        for (int i = 0; i < rows; i++)
            dec[i * TD] = BOS;
        for (int t = 0; t < TD; t++) {
            int rc = seq2seq_forward(m, rows, r->src + (size_t)b * T, r->n + b, dec, pred);
            if (rc)
                return rc;
            for (int i = 0; i < rows; i++) {
                out[(size_t)(b + i) * TD + (size_t)t] = pred[i * TD + t];
                if (t + 1 < TD)
                    dec[i * TD + t + 1] = pred[i * TD + t];
            }
        }
    }
    return 0;
}

/* Percent of the valid target positions that pred gets right, and of the
 * rows it gets entirely right. */
static void score(const Rows *r, const int32_t *pred, double *tokens, double *exact)
{
    long right = 0, all = 0, rows_right = 0;
    for (int b = 0; b < HELD; b++) {
        int row_right = 1;
        for (int t = 0; t <= r->n[b]; t++) {
            size_t i = (size_t)b * TD + (size_t)t;
            int ok = pred[i] == r->target[i];
            right += ok;
            row_right &= ok;
            all++;
        }
        rows_right += row_right;
    }
    *tokens = 100.0 * (double)right / (double)all;
    *exact = 100.0 * (double)rows_right / HELD;
}

/* Prints row b of r and its decoding out (up to EOS) with tokens as letters */
static void show(const Rows *r, const int32_t *out, int b)
{
    char src[T + 1], dec[TD + 1];
    int k = 0, n = r->n[b] < T ? r->n[b] : T; /* n <= T always; says so to -O3 */
    for (int t = 0; t < n; t++)
        src[t] = (char)('a' + r->src[(size_t)b * T + (size_t)t] - FIRST);
    src[n] = 0;
    for (int t = 0; t < TD && out[(size_t)b * TD + (size_t)t] != EOS; t++) {
        int32_t id = out[(size_t)b * TD + (size_t)t];
        dec[k++] = id >= FIRST && id < FIRST + TOKENS ? (char)('a' + id - FIRST) : '?';
    }
    dec[k] = 0;
    printf("  %-*s -> %s%s\n", T, src, dec, k < TD ? "" : " (no EOS)");
}

/* Decodes the held-out rows again, as noisy with random tokens in the
 * source's padding and in the decoder's inputs, into noisy_out; returns
 * how many valid positions decode differently from out. */
static int padding_changes(seq2seq *m, const Rows *held, const int32_t *out, Rows *noisy,
                           int32_t *noisy_out, int *rc)
{
    dlrt_rng rng;
    dlrt_rng_seed(&rng, HELD_SEED, 1);
    for (int b = 0; b < HELD; b++) {
        noisy->n[b] = held->n[b];
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + (size_t)t;
            noisy->src[i] = t < held->n[b] ? held->src[i] : random_token(&rng);
        }
        for (int t = 0; t < TD; t++)
            noisy->dec_in[(size_t)b * TD + (size_t)t] = random_token(&rng);
    }
    int changed = 0;
    if (!(*rc = greedy(m, noisy, noisy->dec_in, noisy_out)))
        for (int b = 0; b < HELD; b++)
            for (int t = 0; t <= held->n[b]; t++)
                changed += out[(size_t)b * TD + (size_t)t] != noisy_out[(size_t)b * TD + (size_t)t];
    return changed;
}

/* The held-out rows and a batch's, for the trainer's callbacks */
typedef struct {
    seq2seq *m;
    const TrainerOptions *o;
    Rows held, batch;
    int32_t pred[HELD * TD];
} Run;

static int train_step(void *ctx, long step, float *loss, long *tokens, double *lr)
{
    Run *r = ctx;
    dlrt_rng rng;
    dlrt_rng_seed(&rng, r->o->seed, (uint64_t)step);
    generate(&rng, BATCH, &r->batch);
    *tokens = 0;
    for (int b = 0; b < BATCH; b++)
        *tokens += r->batch.n[b] + 1;
    *lr = seq2seq_learning_rate(r->m);
    return seq2seq_train_step(r->m, BATCH, r->batch.src, r->batch.n, r->batch.dec_in,
                              r->batch.target, loss);
}

static int evaluate(void *ctx, long step, dlrt_log *log, const char **what)
{
    Run *r = ctx;
    double loss, tokens, exact;
    int rc;
    *what = "held-out forward";
    if ((rc = teacher_forced(r->m, &r->held, r->pred, &loss)))
        return rc;
    score(&r->held, r->pred, &tokens, &exact);
    printf("step %ld: held-out loss %.4f, teacher-forced token accuracy %.2f%%\n", step, loss,
           tokens);
    *what = r->o->log;
    return log ? dlrt_log_eval(log, step, NAN, "valid", loss, tokens) : 0;
}

static int save(void *ctx, const char *path)
{
    return seq2seq_save(((Run *)ctx)->m, path);
}

int main(int argc, char **argv)
{
    TrainerOptions o = {"seq2seq.safetensors", NULL, NULL, 2000, 250, 1, -1};
    trainer_parse(PROG, USAGE, TRAINER_LOG, argc, argv, &o);
    static int32_t out[HELD * TD], noisy_out[HELD * TD];
    static Run r;
    static Rows noisy;
    const Rows *held = &r.held;
    r.o = &o;
    dlrt_rng rng;
    dlrt_rng_seed(&rng, HELD_SEED, 0);
    generate(&rng, HELD, &r.held);
    long held_tokens = 0;
    for (int b = 0; b < HELD; b++)
        held_tokens += held->n[b] + 1;

    seq2seq *m = r.m = seq2seq_create(o.seed);
    if (!m)
        return cli_fail(PROG, "create", DLRT_ENOMEM);
    printf("seq2seq: %lld parameters, T %d, batch %d\n", (long long)seq2seq_NUM_PARAMS, T, BATCH);
    printf("held out: %d rows, %ld target tokens (with EOS); chance 10%% of tokens\n", HELD,
           held_tokens);

    dlrt_log log = {0};
    int rc;
    if (o.log && (rc = dlrt_log_open(&log, o.log, LOG_EVERY, 0, NULL, NULL)))
        return fail(m, o.log, rc);
    Trainer t = {PROG, &r, train_step, evaluate, save};
    if (trainer_run(&t, &o, o.log ? &log : NULL)) {
        seq2seq_destroy(m);
        return 1;
    }
    if ((rc = greedy(m, held, NULL, out)))
        return fail(m, "greedy decoding", rc);
    double tokens, exact;
    score(held, out, &tokens, &exact);
    if (o.log && ((rc = dlrt_log_eval(&log, o.steps, NAN, "greedy", NAN, exact)) ||
                  (rc = dlrt_log_close(&log))))
        return fail(m, o.log, rc);
    printf("final greedy decoding after %ld steps: %.2f%% of held-out rows exact, "
           "token accuracy %.2f%%; checkpoint %s\n",
           o.steps, exact, tokens, o.checkpoint);
    for (int b = 0, shown = 0; b < HELD && shown < SHOWN; b++)
        if (held->n[b] >= SHOWN_LEN) {
            show(held, out, b);
            shown++;
        }
    int changed = padding_changes(m, held, out, &noisy, noisy_out, &rc);
    if (rc)
        return fail(m, "padding check", rc);
    printf("random tokens in the padding change %d decoded tokens\n", changed);
    seq2seq_destroy(m);
    if (changed)
        return 1;
    return trainer_require(PROG, &o, "exact-sequence accuracy", exact);
}
