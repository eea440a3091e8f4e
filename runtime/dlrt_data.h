/* Part of libdlrt; include <dlrt.h> rather than this file.
 *
 * Data utilities for training programs: IDX files (the MNIST format) and
 * CSV files loaded into float matrices, text for language models,
 * shuffled mini-batches, accuracy, sampling, and a progress bar. Functions
 * that can fail return DLRT_OK or a negative DLRT_E* code; those that read
 * files also take an optional message buffer (err, errlen; NULL/0 for none)
 * that receives a one-line explanation such as "train.csv:12:7: expected a
 * number, found 'abc'". */
#ifndef DLRT_DATA_H
#define DLRT_DATA_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files ---------------------------------------------------------
 * Layout: two zero bytes, a type code, a rank byte, `rank` big-endian u32
 * dimensions, then the elements in row-major order, big-endian. Files must
 * be uncompressed (scripts/fetch-mnist.sh stores them that way). */
typedef enum {
    DLRT_IDX_U8 = 0x08,
    DLRT_IDX_I8 = 0x09,
    DLRT_IDX_I16 = 0x0B,
    DLRT_IDX_I32 = 0x0C,
    DLRT_IDX_F32 = 0x0D,
    DLRT_IDX_F64 = 0x0E,
} dlrt_idx_type;

typedef struct {
    dlrt_idx_type type;
    int rank;                    /* 1..DLRT_MAX_RANK */
    int64_t dims[DLRT_MAX_RANK]; /* dims[rank..] are 0 */
    int64_t count;               /* product of dims */
    void *data;                  /* count elements of `type`, host byte order */
} dlrt_idx;

/* Reads an IDX file into *out (free with dlrt_idx_free). Errors: DLRT_EIO
 * (cannot open or read), DLRT_EFORMAT (bad magic or type code, truncated
 * data, bytes after the data), DLRT_ERANGE (rank above DLRT_MAX_RANK or a
 * size that does not fit in memory), DLRT_ENOMEM, DLRT_EINVAL (NULL). */
int dlrt_idx_load(const char *path, dlrt_idx **out, char *err, size_t errlen);
/* The same from a buffer holding a whole file. */
int dlrt_idx_parse(const void *buf, size_t len, dlrt_idx **out, char *err, size_t errlen);
void dlrt_idx_free(dlrt_idx *x);
/* Element size in bytes of a type code; 0 for an unknown code. */
size_t dlrt_idx_type_size(int type);
/* Converts all x->count elements to float into out. */
int dlrt_idx_to_f32(const dlrt_idx *x, float *out);
/* Converts to int32; DLRT_ERANGE if a float element is not an integer
 * that int32 can hold. */
int dlrt_idx_to_i32(const dlrt_idx *x, int32_t *out);

/* ---- MNIST -------------------------------------------------------------
 * Images are u8 IDX files of shape [N, H, W], returned as float [N, H*W]
 * scaled to [0, 1], or, with DLRT_MNIST_NORMALIZE, further standardized
 * with PyTorch's MNIST mean 0.1307 and std 0.3081. Labels are u8 [N] with
 * values 0..9, returned as int32. A file of another type or rank gives
 * DLRT_EMISMATCH; a label above 9 gives DLRT_ERANGE. */
#define DLRT_MNIST_NORMALIZE 1u
#define DLRT_MNIST_MEAN 0.1307f
#define DLRT_MNIST_STD 0.3081f

/* *images is malloc'd (free()); *n samples of *dim = H*W floats each. */
int dlrt_mnist_images(const char *path, unsigned flags, float **images, int64_t *n, int64_t *dim,
                      char *err, size_t errlen);
/* *labels is malloc'd (free()). */
int dlrt_mnist_labels(const char *path, int32_t **labels, int64_t *n, char *err, size_t errlen);

/* A labelled data set held in memory: x is [n, dim], y is [n]. */
typedef struct {
    int64_t n, dim;
    float *x;
    int32_t *y;
} dlrt_dataset;

/* Loads DIR/train-{images-idx3,labels-idx1}-ubyte (split "train") or
 * DIR/t10k-... (split "test" or "t10k") and checks that the counts agree
 * (DLRT_EMISMATCH otherwise). Free with dlrt_dataset_free. */
int dlrt_mnist_load(const char *dir, const char *split, unsigned flags, dlrt_dataset *out,
                    char *err, size_t errlen);
void dlrt_dataset_free(dlrt_dataset *d);

/* ---- CSV ---------------------------------------------------------------
 * Comma-separated decimal numbers, one record per line; \n or \r\n line
 * ends; the last line may lack its newline. Blank lines, a UTF-8 byte order
 * mark at the start, and spaces and tabs around a field are ignored. The
 * optional header line gives column names. Every record must have as many
 * fields as the first (or as the header). Quoted fields, other separators,
 * empty fields, nan and inf are not supported and are reported as errors
 * (DLRT_EFORMAT, with file:line:column in err); a number beyond the float
 * range gives DLRT_ERANGE. Parsing does not depend on the C locale. */
typedef struct {
    int64_t rows, cols;
    float *data;  /* rows x cols, row-major */
    char **names; /* cols column names when the file had a header, else NULL */
} dlrt_csv;

int dlrt_csv_load(const char *path, int has_header, dlrt_csv **out, char *err, size_t errlen);
/* The same from text in memory; `name` is used in messages (NULL: "<csv>"). */
int dlrt_csv_parse(const char *text, size_t len, int has_header, const char *name, dlrt_csv **out,
                   char *err, size_t errlen);
void dlrt_csv_free(dlrt_csv *c);
/* Column index of a header name; DLRT_EINVAL if absent or no header. */
int64_t dlrt_csv_column(const dlrt_csv *c, const char *name);
/* Removes column col from c (the remaining columns keep their order) and
 * stores it into out[rows]. take_labels requires integer values that fit
 * int32 (DLRT_ERANGE otherwise; c is left unchanged). */
int dlrt_csv_take_column(dlrt_csv *c, int64_t col, float *out);
int dlrt_csv_take_labels(dlrt_csv *c, int64_t col, int32_t *out, char *err, size_t errlen);

/* ---- text --------------------------------------------------------------
 * Text for character-level language models: a file's bytes as token ids
 * below a vocabulary size V (byte b is id b; a byte >= V, e.g. a non-ASCII
 * byte when V = 128, becomes the id `unknown`), split into a training part
 * and a held-out tail, cut into windows of T + 1 ids: ids[0..T) are a
 * model's inputs, ids[1..T] its next-character targets. */
typedef struct {
    int64_t n;    /* ids */
    int vocab;    /* every id is in 0..vocab-1 */
    int32_t *ids; /* malloc'd */
} dlrt_text;

/* Reads a whole file (DLRT_EIO when it cannot be read, DLRT_EFORMAT when it
 * is empty). vocab is 1..65536 and unknown in 0..vocab-1 (DLRT_EINVAL). */
int dlrt_text_load(const char *path, int vocab, int32_t unknown, dlrt_text *out, char *err,
                   size_t errlen);
/* The same from bytes in memory; `name` is used in messages. */
int dlrt_text_parse(const void *bytes, size_t len, int vocab, int32_t unknown, const char *name,
                    dlrt_text *out, char *err, size_t errlen);
void dlrt_text_free(dlrt_text *t);
/* Copies the first n - h ids into *train and the last h = floor(n *
 * heldout) into *held (each a new text to free). Both must hold a window,
 * window + 1 ids or more (DLRT_ERANGE otherwise, with a message);
 * heldout is in (0, 1) (DLRT_EINVAL). */
int dlrt_text_split(const dlrt_text *t, double heldout, int64_t window, dlrt_text *train,
                    dlrt_text *held, char *err, size_t errlen);
/* Training batch `step`: `batch` windows at starts drawn uniformly from
 * 0..n-T-1 with the dlrt_rng stream `step` of `seed`, so the batch depends
 * only on (seed, step) and a resumed run continues with the batches of an
 * uninterrupted one. ids and targets are [batch, T]. DLRT_ERANGE when the
 * text holds fewer than T + 1 ids, DLRT_EINVAL for bad arguments. */
int dlrt_text_random_windows(const dlrt_text *t, int64_t T, int batch, uint64_t seed, uint64_t step,
                             int32_t *ids, int32_t *targets);
/* Evaluation: consecutive windows, window i starting at i * T, covering the
 * text once; there are (n - 1) / T of them. Fills windows first.. (at most
 * batch) and returns how many, 0 past the last; negative on errors. */
int64_t dlrt_text_window_count(const dlrt_text *t, int64_t T);
int dlrt_text_windows(const dlrt_text *t, int64_t T, int64_t first, int batch, int32_t *ids,
                      int32_t *targets);
/* The unigram baseline in nats: the mean of -log p(c) over the targets of
 * eval's dlrt_text_windows (ids 1 .. count * T), p the id frequencies of
 * train with add-one smoothing over the vocabulary (so an id unseen in
 * training costs log of a finite number). A negative DLRT_E* code (as a
 * double): DLRT_EINVAL for NULL or different vocabularies, DLRT_ERANGE for
 * an eval text without a window or an id outside the vocabulary. */
double dlrt_text_unigram_loss(const dlrt_text *train, const dlrt_text *eval, int64_t T);
/* Draws an index from the distribution probs[0..n) sharpened or flattened
 * by temperature: p_i^(1/temperature), renormalized (softmax(logits /
 * temperature) when probs = softmax(logits)); temperature 0 is the argmax.
 * Negative and non-finite entries count as 0; all zero gives the argmax
 * (index 0). Returns a negative DLRT_E* code for NULL, n < 1 or a negative
 * or NaN temperature. */
int dlrt_sample(const float *probs, int n, double temperature, dlrt_rng *rng);

/* ---- mini-batches ------------------------------------------------------
 * Visits n samples in batches. Each epoch's order is a Fisher-Yates
 * permutation determined by (seed, epoch) alone, so a resumed run sees the
 * same batches as one that never stopped. Usage:
 *
 *     dlrt_batches b;
 *     dlrt_batches_init(&b, n, 64, seed, 0);
 *     for (int e = 0; e < epochs; e++) {
 *         dlrt_batches_start(&b, e);
 *         int m;
 *         while ((m = dlrt_batches_next(&b, x, dim, xb, y, DLRT_I32, 1, yb)) > 0)
 *             ... train on m samples of xb / yb ...
 *     }
 *     dlrt_batches_free(&b);
 */
#define DLRT_BATCH_DROP_LAST 1u  /* skip the final batch when it is partial */
#define DLRT_BATCH_SEQUENTIAL 2u /* no shuffling (evaluation) */

typedef struct {
    int64_t n, batch;
    uint64_t seed;
    unsigned flags;
    int64_t epoch; /* the epoch started last; -1 before the first start */
    int64_t pos;   /* index into order of the next sample */
    int64_t last;  /* samples in the batch returned last */
    int64_t *order;
} dlrt_batches;

/* n >= 1, batch >= 1 (DLRT_EINVAL otherwise). */
int dlrt_batches_init(dlrt_batches *b, int64_t n, int64_t batch, uint64_t seed, unsigned flags);
void dlrt_batches_free(dlrt_batches *b);
/* Batches per epoch, counting a partial last one unless dropped. */
int64_t dlrt_batches_count(const dlrt_batches *b);
/* Begins an epoch (epoch >= 0): computes its order and rewinds. */
int dlrt_batches_start(dlrt_batches *b, int64_t epoch);
/* Gathers the next batch: rows of x [n, d] into xb [batch, d] and, unless
 * y is NULL, the matching targets into yb: y is int32 [n] (ytype DLRT_I32,
 * k = 1) or float [n, k] (ytype DLRT_F32). x may be NULL too (then only
 * indices are produced). Returns the batch's size (1..batch), 0 when the
 * epoch is done, DLRT_ESTATE before dlrt_batches_start, DLRT_EINVAL on bad
 * arguments. */
int dlrt_batches_next(dlrt_batches *b, const float *x, int64_t d, float *xb, const void *y,
                      dlrt_dtype ytype, int64_t k, void *yb);
/* The sample indices of the batch returned last (b->last of them). */
const int64_t *dlrt_batches_indices(const dlrt_batches *b);

/* ---- accuracy ----------------------------------------------------------
 * The row-wise argmax of scores [n, classes]: the lowest index among equal
 * maxima; a NaN counts as larger than any number (as in PyTorch). */
int dlrt_argmax_rows(const float *scores, int n, int classes, int32_t *out);
/* The fraction of rows whose argmax equals the label, in [0, 1]; a
 * negative DLRT_E* code (as a double) for NULL pointers, n < 1 or
 * classes < 1 (DLRT_EINVAL) or a label outside 0..classes-1 (DLRT_ERANGE). */
double dlrt_accuracy(const float *scores, int n, int classes, const int32_t *labels);

/* ---- progress bar ------------------------------------------------------
 *     epoch 1/3 [=========>        ] 612/938  loss 0.2134  4120 samples/s  ETA 0:07
 * (the rate's unit is p->unit: a language model counts tokens).
 * On a terminal the line is redrawn in place at most 10 times a second;
 * otherwise (CI logs) a plain line is printed each time another tenth of
 * the steps is done. The loss shown is an exponential moving average
 * (factor 0.98, bias-corrected as in fastai). */
typedef double (*dlrt_clock_fn)(void *ctx); /* seconds, monotonic */

typedef struct {
    FILE *out;
    int tty;          /* redraw in place; set by init from isatty, may be overridden */
    const char *unit; /* what the rate counts: "samples" from init, may be set ("tokens") */
    dlrt_clock_fn clock;
    void *clock_ctx;
    char label[64];
    int64_t total;   /* steps in the run; 0 if unknown */
    int64_t step;    /* steps completed, as last reported */
    int64_t samples; /* samples processed since begin */
    double start;    /* clock at begin */
    double now;      /* clock at the last update or end: what render uses */
    double last_draw;
    double loss_raw, loss_decay; /* EMA before bias correction; 0.98^updates */
    int last_tenth;              /* non-terminal output: tenths of total already printed */
    int drawn;                   /* an unfinished in-place line is on the terminal */
    int width; /* columns the line must fit in, 0: any; on a terminal, its width at each redraw */
} dlrt_progress;

/* out NULL means stderr; clock NULL means CLOCK_MONOTONIC. */
void dlrt_progress_init(dlrt_progress *p, FILE *out, dlrt_clock_fn clock, void *clock_ctx);
/* Starts a run of `total` steps (0 if unknown) named label (may be NULL). */
void dlrt_progress_begin(dlrt_progress *p, int64_t total, const char *label);
/* step: steps completed so far (1..total); loss: this step's loss;
 * samples: samples processed by this step. */
void dlrt_progress_update(dlrt_progress *p, int64_t step, double loss, int64_t samples);
/* Prints the final line, with the elapsed time instead of the ETA. */
void dlrt_progress_end(dlrt_progress *p);
/* Renders the current line (no \r or \n) into buf; returns its length as
 * snprintf does. final selects the elapsed-time form. A line wider than
 * p->width loses, in turn, bar width (down to 10), the bar, the rate, the
 * loss, and is cut at last. */
int dlrt_progress_render(const dlrt_progress *p, int final, char *buf, size_t len);
/* The default clock: CLOCK_MONOTONIC in seconds. */
double dlrt_clock_monotonic(void *ctx);

/* ---- training log ------------------------------------------------------
 * A CSV file that plots and spreadsheets read (scripts/plot-log.sh draws
 * it), one row per record, flushed as written so a plot can follow a run:
 *     step,epoch,split,loss,accuracy,lr,rate,elapsed
 *     100,0.107,train,0.412345,,0.001,25400,0.252
 *     938,1,test,0.101234,96.92,,,2.61
 * A "train" row every `every` steps holds the mean loss of those steps, the
 * learning rate and the rate (samples, or the progress bar's unit, per
 * second) over them; an evaluation row (split "test", "valid", ...) holds
 * its loss and accuracy (percent). Empty cells: not measured (NAN). */
typedef struct {
    FILE *f;
    dlrt_clock_fn clock;
    void *clock_ctx;
    int every;          /* steps per train row */
    double start;       /* clock at open */
    double since;       /* clock at the last train row */
    double loss_sum;    /* losses of the steps since the last train row */
    int64_t steps;      /* ... how many */
    int64_t samples;    /* ... their samples */
} dlrt_log;

#define DLRT_LOG_APPEND 1 /* continue an existing log (a resumed run): no new header */

/* Opens path (truncated, or appended to with DLRT_LOG_APPEND) and writes
 * the header unless appending to a non-empty file. clock NULL means
 * CLOCK_MONOTONIC. DLRT_EINVAL (NULL, every < 1), DLRT_EIO (with
 * dlrt_last_error saying why). */
int dlrt_log_open(dlrt_log *log, const char *path, int every, unsigned flags, dlrt_clock_fn clock,
                  void *clock_ctx);
/* One training step's loss and samples; writes a train row when `every`
 * steps have gathered (step: steps done in the whole run; epoch: epochs
 * done, fractional; lr: the step's learning rate). DLRT_EIO on a write error. */
int dlrt_log_step(dlrt_log *log, int64_t step, double epoch, double loss, int64_t samples,
                  double lr);
/* An evaluation row; loss or accuracy NAN when not measured. */
int dlrt_log_eval(dlrt_log *log, int64_t step, double epoch, const char *split, double loss,
                  double accuracy);
/* Closes the file; DLRT_EIO if a write failed. */
int dlrt_log_close(dlrt_log *log);

#ifdef __cplusplus
}
#endif

#endif
