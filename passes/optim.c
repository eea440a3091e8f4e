/*
 * pass_optim: lowers `train LOSS with OPT(...), clip_norm = C, schedule =
 * S(...)` to the recipe the code generator turns into the update loop of
 * NAME_apply_gradients: which state slots every trainable scalar keeps
 * (named as PyTorch names its optimizer state, so checkpoints read
 * naturally), the update's constants with the defaults filled in, and the
 * schedule's. docs/TRAINING.md has the formulas.
 *
 * Slots that an option makes dead are not allocated: sgd without momentum
 * keeps nothing, rmsprop keeps its momentum buffer only with momentum > 0.
 */
#include <string.h>

#include "passes.h"

static double arg(const AttrList *l, const char *name)
{
    const Attr *a = ir_attrs_get(l, name);
    check(a);
    switch (a->kind) {
    case AK_STR: return 0; /* an enum: see choice() */
    case AK_FLOAT: return a->f;
    case AK_INT: return (double)a->i;
    case AK_BOOL: return a->b;
    default: die("optimizer argument '%s' is not a number", name);
    }
}

/* The index of an enum argument's value in its choices, given in order. */
static int choice(const AttrList *l, const char *name, const char *const *choices, int n)
{
    const Attr *a = ir_attrs_get(l, name);
    check(a && a->kind == AK_STR);
    for (int i = 0; i < n; i++)
        if (strcmp(a->s, choices[i]) == 0)
            return i;
    die("pass_optim: '%s' is not a choice of '%s'", a->s, name);
}

static bool has(const AttrList *l, const char *name)
{
    return ir_attrs_get(l, name) != NULL;
}

static void slot(OptPlan *p, const char *name)
{
    check(p->nslots < OPT_MAX_SLOTS);
    p->slot[p->nslots++] = name;
}

OptPlan *pass_optim(const Graph *g, const Train *t)
{
    OptPlan *p = arena_alloc(g->arena, sizeof *p);
    const AttrList *a = &t->optim_args;
    p->optim = t->optim;
    p->lr = arg(a, "lr");
    p->weight_decay = has(a, "weight_decay") ? arg(a, "weight_decay") : 0;
    p->eps = has(a, "eps") ? arg(a, "eps") : 0;
    p->l1 = has(a, "l1") ? arg(a, "l1") : 0;
    switch (t->optim) {
    case OPTIM_SGD:
        p->momentum = arg(a, "momentum");
        p->nesterov = arg(a, "nesterov") != 0;
        p->dampening = has(a, "dampening") ? arg(a, "dampening") : 0;
        if (p->momentum > 0)
            slot(p, "momentum_buffer");
        break;
    case OPTIM_ADAGRAD: slot(p, "sum"); break;
    case OPTIM_RMSPROP:
        p->alpha = arg(a, "alpha");
        p->momentum = arg(a, "momentum");
        slot(p, "square_avg");
        if (p->momentum > 0)
            slot(p, "momentum_buffer");
        break;
    case OPTIM_ADAM:
    case OPTIM_ADAMW:
        p->beta1 = arg(a, "beta1");
        p->beta2 = arg(a, "beta2");
        p->decoupled = t->optim == OPTIM_ADAMW;
        slot(p, "exp_avg");
        slot(p, "exp_avg_sq");
        break;
    default: die("pass_optim: unknown optimizer %d", (int)t->optim);
    }
    p->has_clip = t->has_clip;
    p->clip_norm = t->clip_norm;
    p->has_clip_value = t->has_clip_value;
    p->clip_value = t->clip_value;

    const AttrList *s = &t->sched_args;
    p->sched = t->sched;
    p->base_lr = p->lr;
    switch (t->sched) {
    case SCHED_CONSTANT: break;
    case SCHED_STEP:
        p->s_every = (int64_t)arg(s, "every");
        p->s_gamma = arg(s, "gamma");
        break;
    case SCHED_EXPONENTIAL: p->s_gamma = arg(s, "gamma"); break;
    case SCHED_COSINE:
        p->s_total = (int64_t)arg(s, "total");
        p->s_min_lr = arg(s, "min_lr");
        break;
    case SCHED_WARMUP_COSINE:
        p->s_warmup = (int64_t)arg(s, "warmup");
        p->s_total = (int64_t)arg(s, "total");
        p->s_min_lr = arg(s, "min_lr");
        check(p->s_warmup < p->s_total);
        break;
    case SCHED_CYCLIC: {
        /* the instance's base rate is the cycle's peak */
        static const char *const modes[] = {"triangular", "triangular2", "exp_range"};
        p->s_min_lr = arg(s, "base_lr");
        p->base_lr = arg(s, "max_lr");
        p->s_every = (int64_t)arg(s, "step_size");
        p->s_mode = choice(s, "mode", modes, 3);
        p->s_gamma = arg(s, "gamma");
        break;
    }
    case SCHED_MULTISTEP: {
        const Attr *m = ir_attrs_get(s, "milestones");
        check(m && m->kind == AK_INTS);
        p->s_milestones = m->ints.v;
        p->s_nmilestones = m->ints.n;
        p->s_gamma = arg(s, "gamma");
        break;
    }
    case SCHED_LINEAR_WARMUP:
        p->s_warmup = (int64_t)arg(s, "warmup");
        p->s_start = arg(s, "start_factor");
        p->s_end = arg(s, "end_factor");
        check(p->s_warmup >= 1);
        break;
    case SCHED_ONE_CYCLE: {
        static const char *const anneal[] = {"cos", "linear"};
        p->s_total = (int64_t)arg(s, "total");
        p->s_pct = arg(s, "pct_start");
        p->s_mode = choice(s, "anneal_strategy", anneal, 2);
        p->s_div = arg(s, "div_factor");
        p->s_final_div = arg(s, "final_div_factor");
        p->s_three_phase = arg(s, "three_phase") != 0;
        break;
    }
    case SCHED_COSINE_RESTARTS:
        p->s_every = (int64_t)arg(s, "T_0");
        p->s_mult = (int64_t)arg(s, "T_mult");
        p->s_min_lr = arg(s, "min_lr");
        check(p->s_every >= 1 && p->s_mult >= 1);
        break;
    case SCHED_INVERSE_SQRT:
        p->s_d_model = arg(s, "d_model");
        p->s_warmup = (int64_t)arg(s, "warmup");
        check(p->s_warmup >= 1);
        break;
    case SCHED_REDUCE_ON_PLATEAU: {
        static const char *const modes[] = {"min", "max"}, *const th[] = {"rel", "abs"};
        p->s_mode = choice(s, "mode", modes, 2);
        p->p_factor = arg(s, "factor");
        p->p_patience = (int64_t)arg(s, "patience");
        p->p_threshold = arg(s, "threshold");
        p->p_abs = choice(s, "threshold_mode", th, 2) == 1;
        p->p_cooldown = (int64_t)arg(s, "cooldown");
        p->s_min_lr = arg(s, "min_lr");
        p->p_eps = arg(s, "eps");
        break;
    }
    default: die("pass_optim: unknown schedule %d", (int)t->sched);
    }
    return p;
}
