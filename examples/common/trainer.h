/* trainer.h — what the demos that make their own batches share
 * (train_tagger, train_seq2seq, train_bert): their command line and their
 * training loop. The loop trains --steps steps in blocks of --eval-every,
 * each block under a progress bar (loss, tokens per second, time left),
 * and after each block evaluates and writes a checkpoint; the program
 * supplies a step, an evaluation and a save as callbacks. */
#ifndef DLC_EXAMPLES_TRAINER_H
#define DLC_EXAMPLES_TRAINER_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* Options beyond the common ones that a program accepts */
enum { TRAINER_LOG = 1, TRAINER_TEXT = 2 };

typedef struct {
    const char *checkpoint, *log, *text; /* log, text: NULL unless given */
    long steps, eval_every;
    uint64_t seed;
    double min_accuracy; /* percent; < 0: no requirement */
} TrainerOptions;

/* Reads --steps N, --eval-every N, --seed N, --threads N, --checkpoint FILE,
 * --min-accuracy X and those of `accepts` (--log FILE, --text FILE) into
 * *o, which holds the program's defaults. Anything else prints usage and
 * exits with status 2, as a bad number does. */
static inline void trainer_parse(const char *prog, const char *usage, unsigned accepts, int argc,
                                 char **argv, TrainerOptions *o)
{
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--steps") == 0)
            o->steps = cli_number(prog, a, v, 1, 100000000);
        else if (strcmp(a, "--eval-every") == 0)
            o->eval_every = cli_number(prog, a, v, 1, 100000000);
        else if (strcmp(a, "--seed") == 0)
            o->seed = (uint64_t)cli_number(prog, a, v, 0, 0x7fffffff);
        else if (strcmp(a, "--threads") == 0)
            dlrt_set_num_threads((int)cli_number(prog, a, v, 1, 256));
        else if (strcmp(a, "--checkpoint") == 0)
            o->checkpoint = v;
        else if (strcmp(a, "--min-accuracy") == 0)
            o->min_accuracy = cli_real(prog, a, v, 0, 100);
        else if (strcmp(a, "--log") == 0 && (accepts & TRAINER_LOG))
            o->log = v;
        else if (strcmp(a, "--text") == 0 && (accepts & TRAINER_TEXT))
            o->text = v;
        else
            break;
    }
    if (i < argc) { /* an unknown option, or one without its value */
        fputs(usage, stderr);
        exit(2);
    }
}

typedef struct {
    const char *prog;
    void *ctx; /* the program's state, passed to the callbacks */
    /* Trains step `step` (0-based); its loss, the tokens it read (for the
     * rate) and its learning rate (NAN if not logged). A DLRT_E* code. */
    int (*step)(void *ctx, long step, float *loss, long *tokens, double *lr);
    /* Evaluates after `step` steps: prints and logs (log NULL: no log).
     * On failure, a DLRT_E* code and *what names what failed. */
    int (*evaluate)(void *ctx, long step, dlrt_log *log, const char **what);
    int (*save)(void *ctx, const char *path);
} Trainer;

/* Trains o->steps steps, evaluating and saving to o->checkpoint every
 * o->eval_every and at the end; log (NULL: none) gets a row per step.
 * Returns 0, or 1 after reporting what failed. */
static inline int trainer_run(const Trainer *t, const TrainerOptions *o, dlrt_log *log)
{
    dlrt_progress p;
    dlrt_progress_init(&p, stderr, NULL, NULL);
    p.unit = "tokens";
    int rc;
    for (long step = 0; step < o->steps;) {
        long end = step + o->eval_every < o->steps ? step + o->eval_every : o->steps;
        char label[64];
        snprintf(label, sizeof label, "steps %ld-%ld/%ld", step + 1, end, o->steps);
        dlrt_progress_begin(&p, end - step, label);
        for (long k = 0; step < end; step++, k++) {
            float loss;
            long tokens;
            double lr;
            if ((rc = t->step(t->ctx, step, &loss, &tokens, &lr)))
                return cli_fail(t->prog, "train_step", rc);
            dlrt_progress_update(&p, k + 1, loss, tokens);
            if (log && (rc = dlrt_log_step(log, step + 1, NAN, loss, tokens, lr)))
                return cli_fail(t->prog, o->log, rc);
        }
        dlrt_progress_end(&p);
        const char *what = "evaluation";
        if ((rc = t->evaluate(t->ctx, step, log, &what)))
            return cli_fail(t->prog, what, rc);
        fflush(stdout);
        if ((rc = t->save(t->ctx, o->checkpoint)))
            return cli_fail(t->prog, o->checkpoint, rc);
    }
    return 0;
}

/* The exit status for --min-accuracy: 1 with a message when `what`
 * (percent) is below it. */
static inline int trainer_require(const char *prog, const TrainerOptions *o, const char *what,
                                  double accuracy)
{
    if (o->min_accuracy >= 0 && !(accuracy >= o->min_accuracy)) {
        fprintf(stderr, "%s: %s %.2f%% is below %.2f%%\n", prog, what, accuracy, o->min_accuracy);
        return 1;
    }
    return 0;
}

#endif
