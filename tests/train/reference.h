/* An independent f64 implementation of the training step's arithmetic as
 * docs/TRAINING.md publishes it: the options of a `train` statement (parsed
 * from the same text the model holds), the learning-rate schedules, global
 * gradient-norm clipping and the optimizer updates, over one flat vector
 * of trainable scalars. It shares no code with dlc. */
#ifndef TRAIN_REFERENCE_H
#define TRAIN_REFERENCE_H

#include <stdint.h>

typedef enum { OPT_SGD, OPT_ADAGRAD, OPT_RMSPROP, OPT_ADAM, OPT_ADAMW } OptKind;
typedef enum {
    SCHED_CONSTANT,
    SCHED_STEP,
    SCHED_EXPONENTIAL,
    SCHED_COSINE,
    SCHED_WARMUP_COSINE,
    SCHED_CYCLIC
} SchedKind;

enum { REF_MAX_SLOTS = 2 };

/* The options, with SPEC 1.6's defaults for those the text leaves out. */
typedef struct {
    OptKind opt;
    double lr, momentum, weight_decay, eps, alpha, beta1, beta2;
    int nesterov;
    double clip_norm; /* 0: no clipping */
    SchedKind sched;
    double sched_args[3]; /* in SPEC order, e.g. warmup, total, min_lr */
} TrainSpec;

/* Parses "adam(lr = 0.01, beta1 = 0.8), clip_norm = 1, schedule =
 * cosine(10, min_lr = 0.001)": what follows `with` in a train statement.
 * Returns 0, or -1 with a message in err. */
int ref_parse(const char *text, TrainSpec *s, char *err, int errsize);

/* The base learning rate a new instance starts with (lr; cyclic: max_lr). */
double ref_initial_base(const TrainSpec *s);
/* The rate of step t (0-based) for base rate `base`. */
double ref_rate(const TrainSpec *s, double base, int64_t t);

/* Optimizer state slots: how many, and their checkpoint names. */
int ref_nslots(const TrainSpec *s);
const char *ref_slot_name(const TrainSpec *s, int k);

/* One step over n trainable scalars: p (updated), g (the gradients;
 * clipped and decayed in place), slot[0..ref_nslots) (updated), at step
 * t with rate lr. Returns the clipping factor applied (1 when none). */
double ref_step(const TrainSpec *s, double lr, int64_t t, int n, double *p, double *g,
                double *const *slot);

#endif
