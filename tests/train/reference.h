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
    SCHED_CYCLIC,
    SCHED_MULTISTEP,
    SCHED_LINEAR_WARMUP,
    SCHED_ONE_CYCLE,
    SCHED_COSINE_RESTARTS,
    SCHED_INVERSE_SQRT,
    SCHED_REDUCE_ON_PLATEAU
} SchedKind;

enum { REF_MAX_SLOTS = 2, REF_MAX_SCHED_ARGS = 8, REF_MAX_MILESTONES = 16 };

/* The options, with SPEC 1.6's defaults for those the text leaves out. */
typedef struct {
    OptKind opt;
    double lr, momentum, weight_decay, eps, alpha, beta1, beta2, dampening, l1;
    int nesterov;
    double clip_norm;  /* 0: no clipping */
    double clip_value; /* 0: no clipping */
    SchedKind sched;
    /* in the order of docs/TRAINING.md, e.g. warmup, total, min_lr; a
     * string argument is the index of its choice there */
    double sched_args[REF_MAX_SCHED_ARGS];
    int nmilestones; /* multistep's list */
    double milestones[REF_MAX_MILESTONES];
} TrainSpec;

/* Parses "adam(lr = 0.01, beta1 = 0.8), clip_norm = 1, clip_value = 0.5, schedule =
 * cosine(10, min_lr = 0.001)": what follows `with` in a train statement.
 * Returns 0, or -1 with a message in err. */
int ref_parse(const char *text, TrainSpec *s, char *err, int errsize);

/* The base learning rate a new instance starts with (lr; cyclic: max_lr). */
double ref_initial_base(const TrainSpec *s);
/* The rate of step t (0-based) for base rate `base`. */
double ref_rate(const TrainSpec *s, double base, int64_t t);

/* reduce_on_plateau: PyTorch's ReduceLROnPlateau.step(metric) as its
 * source reads, on this state; returns the new base rate. */
typedef struct {
    double best;
    int64_t bad, cooldown;
} RefPlateau;
void ref_plateau_init(const TrainSpec *s, RefPlateau *p);
double ref_plateau_report(const TrainSpec *s, RefPlateau *p, double base, double metric);

/* Optimizer state slots: how many, and their checkpoint names. */
int ref_nslots(const TrainSpec *s);
const char *ref_slot_name(const TrainSpec *s, int k);

/* One step over n trainable scalars: p (updated), g (the gradients;
 * clipped and decayed in place), slot[0..ref_nslots) (updated), at step
 * t with rate lr. Returns the clipping factor applied (1 when none). */
double ref_step(const TrainSpec *s, double lr, int64_t t, int n, double *p, double *g,
                double *const *slot);

/* How far each scalar's step moves when its decayed gradient g + wd p +
 * l1 sign(p) is off by its rounding to unit roundoff u: a compiled step
 * forms that sum in the parameters' type, and where its terms nearly
 * cancel the rounding is most of it (difftest seed 113898: rmsprop, whose
 * eps then weighs the rest). spread[i] = |step(g +- d) - step(g)|, d = u
 * (|g| + |wd p| + l1), on copies of p, g and the slots (ref_step's
 * arguments before the step; none of them changed). */
void ref_step_spread(const TrainSpec *s, double lr, int64_t t, int n, const double *p,
                     const double *g, double *const *slot, double u, double *spread);

#endif
