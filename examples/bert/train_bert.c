/* train_bert — pre-trains the BERT-mini of bert.dl with the masked
 * language model on a text file, and measures it on the text's held-out
 * tail against a baseline.
 *
 *   train_bert [--text FILE] [--steps N] [--eval-every N] [--seed N]
 *              [--threads N] [--checkpoint FILE] [--log FILE] [--min-accuracy X]
 *
 * The text (default the GPL-3 that Debian ships) is read as bytes with
 * dlrt_text_load, ASCII ids 0..127 (other bytes become 26, ASCII's SUB),
 * and its last 10% held out (dlrt_text_split). A row is a span of n
 * characters, n uniform in T/2..T, padded with PAD to T. Step s trains
 * on the windows dlrt_text_random_windows draws for (--seed, s), each cut
 * to its n. The masking is that of BERT's pre-training, done here as a
 * PyTorch data collator would: k = round(15% of n) positions of each row
 * are chosen at random; of them 80% read MASK, 10% a random character of
 * the training text and 10% are left as they are; the model gets the
 * chosen positions and their original characters (the labels), and
 * predicts and is scored there only. Lengths and masks come from a stream
 * of their own for (--seed, s).
 *
 * The held-out rows are the held-out text's consecutive windows
 * (dlrt_text_windows), each masked REPEATS times with lengths and masks
 * from a fixed stream, the same at every seed. Every --eval-every steps
 * the program prints the held-out MLM loss and accuracy (the chosen
 * positions predicted right), next to two baselines measured on the same
 * positions from the training text's character frequencies: the most
 * frequent character as the guess every time, and the unigram
 * cross-entropy; and writes a checkpoint. At the end it shows the middle
 * held-out row, masked and filled in. --log writes a CSV log (dlrt_log) that
 * scripts/plot-log.sh draws.
 *
 * Then the held-out rows are predicted again with random characters in
 * their padding: the attention's padding mask must hide them, so the exit
 * status is 1 if any prediction changes. --min-accuracy makes it 1 too
 * unless the final held-out accuracy (percent) is at least X. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bert.h"
#include "trainer.h"

enum {
    T = 32,     /* the model's T */
    P = 5,      /* its prediction slots: round(15% of T) */
    V = 128,    /* characters: ASCII */
    MASK = 128, /* the model's ids past them */
    PAD = 129,
    UNKNOWN = 26, /* for bytes >= V */
    MIN_LEN = T / 2,
    REPEATS = 8, /* maskings of each held-out window */
    BATCH = bert_MAX_BATCH,
    LOG_EVERY = 10,
};
#define HELDOUT 0.1              /* the text's last 10% */
#define HELD_SEED 20261204u      /* the held-out rows' masks, whatever --seed is */
#define MASK_STREAM (1ull << 62) /* + s: the masks of step s (the windows use stream s) */
#define PROG "train_bert"
#define USAGE                                                                                      \
    "usage: " PROG " [--text FILE] [--steps N] [--eval-every N] [--seed N]\n"                      \
    "                  [--threads N] [--checkpoint FILE] [--log FILE] [--min-accuracy X]\n"

/* Rows as the model reads them, and the original characters */
typedef struct {
    int rows;
    int32_t *ids, *n, *pos, *labels; /* [rows, T], [rows], [rows, P], [rows, P] */
    int32_t *orig;                   /* [rows, T]: the text before masking */
} Rows;

typedef struct {
    bert *m;
    const TrainerOptions *o;
    dlrt_text train;
    Rows batch, held;
    int32_t *pred, *noisy_pred; /* [held.rows, P] */
    int32_t chars[V];           /* the characters of the training text, */
    int nchars;                 /* for the 10% random replacements */
    int32_t top;                /* the most frequent of them */
    double logp[V];             /* log of their frequencies, add-one smoothed */
    double accuracy, loss;
} Run;

static int rows_alloc(Rows *r, int rows)
{
    r->rows = rows;
    r->ids = malloc(sizeof *r->ids * (size_t)rows * T);
    r->orig = malloc(sizeof *r->orig * (size_t)rows * T);
    r->n = malloc(sizeof *r->n * (size_t)rows);
    r->pos = malloc(sizeof *r->pos * (size_t)rows * P);
    r->labels = malloc(sizeof *r->labels * (size_t)rows * P);
    return r->ids && r->orig && r->n && r->pos && r->labels ? 0 : DLRT_ENOMEM;
}

static void rows_free(Rows *r)
{
    free(r->ids);
    free(r->orig);
    free(r->n);
    free(r->pos);
    free(r->labels);
}

/* Row b of r from the T characters in r->orig: a length, and the masking
 * of BERT's pre-training. */
static void mask_row(const Run *run, Rows *r, int b, dlrt_rng *rng)
{
    int32_t *orig = r->orig + (size_t)b * T, *ids = r->ids + (size_t)b * T;
    int32_t *pos = r->pos + (size_t)b * P, *labels = r->labels + (size_t)b * P;
    int n = r->n[b] = MIN_LEN + (int)(dlrt_rng_next(rng) % (T - MIN_LEN + 1));
    int k = (int)lround(0.15 * n), order[T];
    for (int t = 0; t < T; t++) {
        ids[t] = t < n ? orig[t] : PAD;
        order[t] = t;
    }
    for (int j = 0; j < k; j++) { /* k distinct positions: a partial Fisher-Yates shuffle */
        int i = j + (int)(dlrt_rng_next(rng) % (uint64_t)(n - j)), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (int j = 0; j < P; j++) {
        pos[j] = j < k ? order[j] : 0;
        labels[j] = j < k ? orig[order[j]] : PAD;
        if (j >= k)
            continue;
        double u = dlrt_rng_double(rng);
        if (u < 0.8)
            ids[order[j]] = MASK;
        else if (u < 0.9)
            ids[order[j]] = run->chars[dlrt_rng_next(rng) % (uint64_t)run->nchars];
    }
}

static int train_step(void *ctx, long step, float *loss, long *tokens, double *lr)
{
    Run *run = ctx;
    Rows *r = &run->batch;
    static int32_t targets[BATCH * T];
    int rc = dlrt_text_random_windows(&run->train, T, BATCH, run->o->seed, (uint64_t)step, r->orig,
                                      targets);
    if (rc)
        return rc;
    dlrt_rng rng;
    dlrt_rng_seed(&rng, run->o->seed, MASK_STREAM + (uint64_t)step);
    *tokens = 0;
    for (int b = 0; b < BATCH; b++) {
        mask_row(run, r, b, &rng);
        *tokens += r->n[b];
    }
    *lr = bert_learning_rate(run->m);
    return bert_train_step(run->m, BATCH, r->ids, r->n, r->pos, r->labels, loss);
}

/* Predictions pred [rows, P] for the rows of r, and the mean loss over
 * their chosen positions. */
static int predict(bert *m, const Rows *r, int32_t *pred, double *loss)
{
    double sum = 0;
    long chosen = 0;
    for (int b = 0; b < r->rows; b += BATCH) {
        int rows = r->rows - b < BATCH ? r->rows - b : BATCH;
        size_t bt = (size_t)b * T, bp = (size_t)b * P;
        float l;
        int rc = bert_forward(m, rows, r->ids + bt, r->n + b, r->pos + bp, pred + bp);
        if (rc ||
            (rc = bert_evaluate(m, rows, r->ids + bt, r->n + b, r->pos + bp, r->labels + bp, &l)))
            return rc;
        long k = 0;
        for (size_t i = bp; i < bp + (size_t)rows * P; i++)
            k += r->labels[i] != PAD;
        sum += (double)l * (double)k; /* the model's loss is a mean over chosen positions */
        chosen += k;
    }
    *loss = sum / (double)chosen;
    return 0;
}

/* Percent of r's chosen positions that pred gets right, or where pred is
 * NULL the guess `guess`. */
static double accuracy(const Rows *r, const int32_t *pred, int32_t guess)
{
    long right = 0, all = 0;
    for (size_t i = 0; i < (size_t)r->rows * P; i++)
        if (r->labels[i] != PAD) {
            right += (pred ? pred[i] : guess) == r->labels[i];
            all++;
        }
    return 100.0 * (double)right / (double)all;
}

static int evaluate(void *ctx, long step, dlrt_log *log, const char **what)
{
    Run *run = ctx;
    *what = "held-out forward";
    int rc = predict(run->m, &run->held, run->pred, &run->loss);
    if (rc)
        return rc;
    run->accuracy = accuracy(&run->held, run->pred, 0);
    printf("step %ld: held-out MLM loss %.4f nats, accuracy %.2f%%\n", step, run->loss,
           run->accuracy);
    *what = run->o->log;
    return log ? dlrt_log_eval(log, step, NAN, "valid", run->loss, run->accuracy) : 0;
}

static int save(void *ctx, const char *path)
{
    return bert_save(((Run *)ctx)->m, path);
}

/* The training text's characters, the most frequent and the unigram
 * log-probabilities */
static void count_chars(Run *run)
{
    long count[V] = {0};
    for (int64_t i = 0; i < run->train.n; i++)
        count[run->train.ids[i]]++;
    run->top = 0;
    for (int c = 0; c < V; c++) {
        if (count[c])
            run->chars[run->nchars++] = c;
        if (count[c] > count[run->top])
            run->top = c;
        run->logp[c] = log((double)(count[c] + 1) / (double)(run->train.n + V));
    }
}

/* The unigram baseline's loss on r's chosen positions */
static double unigram_loss(const Run *run, const Rows *r)
{
    double sum = 0;
    long all = 0;
    for (size_t i = 0; i < (size_t)r->rows * P; i++)
        if (r->labels[i] != PAD) {
            sum -= run->logp[r->labels[i]];
            all++;
        }
    return sum / (double)all;
}

static char shown(int32_t c)
{
    return c >= ' ' && c < 127 ? (char)c : c == '\n' ? '|' : '?';
}

/* Held-out row b: its text, the model's input (MASK as '_'), and the text
 * with the chosen positions filled in by the model, in brackets where it
 * is wrong ('|' is a newline) */
static void show(const Rows *r, const int32_t *pred, int b)
{
    char in[T + 1], text[T + 1], out[4 * T + 1];
    int32_t fill[T];
    int k = 0;
    for (int t = 0; t < T; t++)
        fill[t] = -1;
    for (int j = 0; j < P; j++)
        if (r->labels[(size_t)b * P + (size_t)j] != PAD)
            fill[r->pos[(size_t)b * P + (size_t)j]] = pred[(size_t)b * P + (size_t)j];
    for (int t = 0; t < r->n[b]; t++) {
        int32_t id = r->ids[(size_t)b * T + (size_t)t], c = r->orig[(size_t)b * T + (size_t)t];
        in[t] = id == MASK ? '_' : shown(id);
        text[t] = shown(c);
        if (fill[t] >= 0 && fill[t] != c)
            k += sprintf(out + k, "[%c]", shown(fill[t]));
        else
            out[k++] = shown(c);
    }
    in[r->n[b]] = text[r->n[b]] = 0;
    out[k] = 0;
    printf("  text:  %s\n  input: %s\n  model: %s\n", text, in, out);
}

int main(int argc, char **argv)
{
    TrainerOptions o = {
        "bert.safetensors", NULL, "/usr/share/common-licenses/GPL-3", 1000, 200, 1, -1};
    trainer_parse(PROG, USAGE, TRAINER_LOG | TRAINER_TEXT, argc, argv, &o);
    static Run run;
    run.o = &o;
    char err[256];
    dlrt_text text, held_text;
    int rc = dlrt_text_load(o.text, V, UNKNOWN, &text, err, sizeof err);
    if (!rc && (rc = dlrt_text_split(&text, HELDOUT, T, &run.train, &held_text, err, sizeof err)))
        dlrt_text_free(&text);
    if (rc) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    count_chars(&run);

    int64_t windows = dlrt_text_window_count(&held_text, T);
    int held_rows = (int)windows * REPEATS;
    if ((rc = rows_alloc(&run.batch, BATCH)) || (rc = rows_alloc(&run.held, held_rows)) ||
        !(run.pred = malloc(sizeof *run.pred * (size_t)held_rows * P)) ||
        !(run.noisy_pred = malloc(sizeof *run.noisy_pred * (size_t)held_rows * P)))
        return cli_fail(PROG, "buffers", DLRT_ENOMEM);
    dlrt_rng rng;
    dlrt_rng_seed(&rng, HELD_SEED, 0);
    static int32_t targets[T];
    for (int64_t w = 0; w < windows; w++)
        for (int k = 0; k < REPEATS; k++) {
            int b = (int)w * REPEATS + k;
            if ((rc = dlrt_text_windows(&held_text, T, w, 1, run.held.orig + (size_t)b * T,
                                        targets)) != 1)
                return cli_fail(PROG, "held-out windows", rc < 0 ? rc : DLRT_ERANGE);
            mask_row(&run, &run.held, b, &rng);
        }
    double top_accuracy = accuracy(&run.held, NULL, run.top);
    double unigram = unigram_loss(&run, &run.held);
    long chosen = 0;
    for (size_t i = 0; i < (size_t)held_rows * P; i++)
        chosen += run.held.labels[i] != PAD;

    const dlrt_model_info *info = bert_info();
    if (info->inputs[0].desc.shape[1] != T || info->inputs[2].desc.shape[1] != P) {
        fprintf(stderr, PROG ": bert.dl's T and P are not this program's %d and %d\n", T, P);
        return 1;
    }
    bert *m = run.m = bert_create(o.seed);
    if (!m)
        return cli_fail(PROG, "create", DLRT_ENOMEM);
    printf("bert: %lld parameters, T %d, batch %d\n", (long long)bert_NUM_PARAMS, T, BATCH);
    printf("text %s: %lld characters for training, %lld held out\n", o.text, (long long)run.train.n,
           (long long)held_text.n);
    printf("held out: %d rows (%lld windows, %d maskings each), %ld masked positions; baselines: "
           "'%c' every time %.2f%%, unigram loss %.4f nats\n",
           held_rows, (long long)windows, REPEATS, chosen, shown(run.top), top_accuracy, unigram);

    dlrt_log log = {0};
    if (o.log && (rc = dlrt_log_open(&log, o.log, LOG_EVERY, 0, NULL, NULL)))
        return cli_fail(PROG, o.log, rc);
    Trainer t = {PROG, &run, train_step, evaluate, save};
    if (trainer_run(&t, &o, o.log ? &log : NULL)) {
        bert_destroy(m);
        return 1;
    }
    if (o.log && (rc = dlrt_log_close(&log)))
        return cli_fail(PROG, o.log, rc);
    printf("final held-out MLM accuracy %.2f%% after %ld steps (loss %.4f nats); baselines: "
           "'%c' every time %.2f%%, unigram loss %.4f; checkpoint %s\n",
           run.accuracy, o.steps, run.loss, shown(run.top), top_accuracy, unigram, o.checkpoint);
    show(&run.held, run.pred, held_rows / 2);

    /* Random characters in the padding: no prediction may change. */
    dlrt_rng_seed(&rng, HELD_SEED, 1);
    for (int b = 0; b < held_rows; b++)
        for (int i = run.held.n[b]; i < T; i++)
            run.held.ids[(size_t)b * T + (size_t)i] = (int32_t)(dlrt_rng_next(&rng) % V);
    double noisy_loss;
    if ((rc = predict(m, &run.held, run.noisy_pred, &noisy_loss)))
        return cli_fail(PROG, "padding check", rc);
    int changed = 0;
    for (size_t i = 0; i < (size_t)held_rows * P; i++)
        changed += run.held.labels[i] != PAD && run.pred[i] != run.noisy_pred[i];
    printf("random characters in the padding change %d predictions\n", changed);

    bert_destroy(m);
    rows_free(&run.batch);
    rows_free(&run.held);
    free(run.pred);
    free(run.noisy_pred);
    dlrt_text_free(&text);
    dlrt_text_free(&run.train);
    dlrt_text_free(&held_text);
    if (changed)
        return 1;
    return trainer_require(PROG, &o, "held-out MLM accuracy", run.accuracy);
}
