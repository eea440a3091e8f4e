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
#include "passes.h"

static double arg(const AttrList *l, const char *name)
{
    const Attr *a = ir_attrs_get(l, name);
    check(a);
    switch (a->kind) {
    case AK_FLOAT: return a->f;
    case AK_INT: return (double)a->i;
    case AK_BOOL: return a->b;
    default: die("optimizer argument '%s' is not a number", name);
    }
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

OptPlan *pass_optim(const Graph *g)
{
    const Train *t = g->train;
    if (!t)
        return NULL;
    OptPlan *p = arena_alloc(g->arena, sizeof *p);
    const AttrList *a = &t->optim_args;
    p->optim = t->optim;
    p->lr = arg(a, "lr");
    p->weight_decay = has(a, "weight_decay") ? arg(a, "weight_decay") : 0;
    p->eps = has(a, "eps") ? arg(a, "eps") : 0;
    switch (t->optim) {
    case OPTIM_SGD:
        p->momentum = arg(a, "momentum");
        p->nesterov = arg(a, "nesterov") != 0;
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
    case SCHED_CYCLIC:
        /* the instance's base rate is the cycle's peak */
        p->s_min_lr = arg(s, "base_lr");
        p->base_lr = arg(s, "max_lr");
        p->s_every = (int64_t)arg(s, "step_size");
        break;
    default: die("pass_optim: unknown schedule %d", (int)t->sched);
    }
    return p;
}
