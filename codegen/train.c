/*
 * The optimizer step of the training step: `void NAME.apply(ptr m)`, called
 * by NAME_apply_gradients and NAME_train_step, from pass_optim's recipe
 * (docs/TRAINING.md has the formulas, PyTorch's).
 *
 * The step's scalars (the scheduled rate, bias corrections, the clipping
 * factor) are computed once in f64 from the instance header's step counter
 * and base rate. The update itself runs over the parameters' partition
 * that grads.c's passes share, as tasks on the pool: per segment, a call
 * of one loop (NAME.update.T) reading parameter, gradient sum and
 * optimizer slots at the same index (slot k of a parameter lies
 * opt_slot_bytes after slot k-1), in the parameters' type, and zeroing
 * the gradient it consumed. NAME_train_step's variant (NAME.apply.sum)
 * also reads the batch's gradients where the training function left them,
 * in its arena, and adds them to the sums as it goes: the same value the
 * instance's sum would hold after NAME_compute_gradients, one pass over
 * the gradients fewer.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "cg.h"

static LLVMValueRef f64c(Cg *c, double v)
{
    return LLVMConstReal(c->f64, v);
}

static LLVMValueRef intr(Cg *c, const char *name, LLVMValueRef x)
{
    return cg_intrinsic(c, name, c->f64, &x, 1);
}

static LLVMValueRef intr2(Cg *c, const char *name, LLVMValueRef x, LLVMValueRef y)
{
    LLVMValueRef a[] = {x, y};
    return cg_intrinsic(c, name, c->f64, a, 2);
}

static LLVMValueRef fadd_(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFAdd(c->b, a, b, "");
}

static LLVMValueRef fsub_(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFSub(c->b, a, b, "");
}

static LLVMValueRef fmul_(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(c->b, a, b, "");
}

static LLVMValueRef fdiv_(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFDiv(c->b, a, b, "");
}

/* lo + (hi - lo) * (1 + cos(pi * progress)) / 2 */
static LLVMValueRef cosine(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef progress)
{
    LLVMValueRef k = intr(c, "llvm.cos", fmul_(c, f64c(c, M_PI), progress));
    return fadd_(c, lo,
                 fmul_(c, fsub_(c, hi, lo), fmul_(c, fadd_(c, f64c(c, 1), k), f64c(c, 0.5))));
}

static LLVMValueRef sel(Cg *c, LLVMValueRef cond, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(c->b, cond, a, b, "");
}

static LLVMValueRef flt(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(c->b, LLVMRealOLT, a, b, "");
}

/* one_cycle: OneCycleLR's phases, ends at fractional steps; the rate
 * stays at the last phase's end after `total` steps */
static LLVMValueRef one_cycle(Cg *c, const OptPlan *o, LLVMValueRef base, LLVMValueRef t)
{
    double total = (double)o->s_total, up = o->s_pct * total - 1;
    LLVMValueRef init = fdiv_(c, base, f64c(c, o->s_div));
    LLVMValueRef lows = fdiv_(c, init, f64c(c, o->s_final_div));
    double end[3] = {up, 2 * o->s_pct * total - 2, total - 1};
    LLVMValueRef from[3] = {init, base, init}, to[3] = {base, init, lows};
    if (!o->s_three_phase) {
        end[1] = total - 1;
        to[1] = lows;
    }
    int n = o->s_three_phase ? 3 : 2;
    LLVMValueRef rate = NULL;
    for (int k = n - 1; k >= 0; k--) {
        double start = k ? end[k - 1] : 0;
        LLVMValueRef pct = fdiv_(c, fsub_(c, t, f64c(c, start)), f64c(c, end[k] - start));
        pct = intr2(c, "llvm.minnum", pct, f64c(c, 1));
        LLVMValueRef r = o->s_mode == 0
                             ? cosine(c, to[k], from[k], pct)
                             : fadd_(c, from[k], fmul_(c, fsub_(c, to[k], from[k]), pct));
        /* PyTorch's test: the first phase whose end is not before t */
        rate = k == n - 1
                   ? r
                   : sel(c, LLVMBuildFCmp(c->b, LLVMRealOLE, t, f64c(c, end[k]), ""), r, rate);
    }
    return rate;
}

/* cosine_restarts: SGDR's cycle of step t, in integers: cycle k starts at
 * T_0 (T_mult^k - 1) / (T_mult - 1) and lasts T_0 T_mult^k steps */
static LLVMValueRef restarts(Cg *c, const OptPlan *o, LLVMValueRef base, LLVMValueRef step)
{
    LLVMValueRef cur, len = cg_i64(c, o->s_every);
    if (o->s_mult == 1) {
        cur = LLVMBuildSRem(c->b, step, len, "");
    } else {
        cur = step;
        int64_t start = 0, n = o->s_every;
        for (;;) {
            if (__builtin_add_overflow(start, n, &start))
                break;
            if (__builtin_mul_overflow(n, o->s_mult, &n))
                n = INT64_MAX;
            LLVMValueRef in = LLVMBuildICmp(c->b, LLVMIntSGE, step, cg_i64(c, start), "");
            cur = sel(c, in, LLVMBuildSub(c->b, step, cg_i64(c, start), ""), cur);
            len = sel(c, in, cg_i64(c, n), len);
        }
    }
    LLVMValueRef progress =
        fdiv_(c, LLVMBuildSIToFP(c->b, cur, c->f64, ""), LLVMBuildSIToFP(c->b, len, c->f64, ""));
    return cosine(c, f64c(c, o->s_min_lr), base, progress);
}

LLVMValueRef cg_schedule_lr(Cg *c, LLVMValueRef m)
{
    const OptPlan *o = c->opt;
    check(o);
    LLVMValueRef base = LLVMBuildLoad2(c->b, c->f64, cg_objective_field(c, m, CG_INST_lr), "base");
    LLVMValueRef step = LLVMBuildLoad2(c->b, c->i64, cg_objective_field(c, m, CG_INST_step), "t");
    LLVMValueRef t = LLVMBuildSIToFP(c->b, step, c->f64, "");
    LLVMValueRef min_lr = f64c(c, o->s_min_lr);
    switch (o->sched) {
    case SCHED_CONSTANT:
    case SCHED_REDUCE_ON_PLATEAU: /* NAME_report_metric lowers the base rate */ return base;
    case SCHED_STEP: {
        LLVMValueRef k = LLVMBuildSDiv(c->b, step, cg_i64(c, o->s_every), "");
        k = LLVMBuildSIToFP(c->b, k, c->f64, "");
        return fmul_(c, base, intr2(c, "llvm.pow", f64c(c, o->s_gamma), k));
    }
    case SCHED_EXPONENTIAL: return fmul_(c, base, intr2(c, "llvm.pow", f64c(c, o->s_gamma), t));
    case SCHED_COSINE: {
        LLVMValueRef tc = intr2(c, "llvm.minnum", t, f64c(c, (double)o->s_total));
        return cosine(c, min_lr, base, fdiv_(c, tc, f64c(c, (double)o->s_total)));
    }
    case SCHED_WARMUP_COSINE: {
        double w = (double)o->s_warmup, span = (double)(o->s_total - o->s_warmup);
        LLVMValueRef warm =
            fdiv_(c, fmul_(c, base, fadd_(c, t, f64c(c, 1))), f64c(c, w > 0 ? w : 1));
        LLVMValueRef progress =
            intr2(c, "llvm.minnum", fdiv_(c, fsub_(c, t, f64c(c, w)), f64c(c, span)), f64c(c, 1));
        LLVMValueRef cos = cosine(c, min_lr, base, progress);
        LLVMValueRef in_warmup = LLVMBuildFCmp(c->b, LLVMRealOLT, t, f64c(c, w), "");
        return LLVMBuildSelect(c->b, in_warmup, warm, cos, "");
    }
    case SCHED_CYCLIC: {
        /* triangular: c = floor(1 + t / 2s), x = |t / s - 2c + 1| */
        double ss = (double)o->s_every;
        LLVMValueRef cyc =
            intr(c, "llvm.floor", fadd_(c, f64c(c, 1), fdiv_(c, t, f64c(c, 2 * ss))));
        LLVMValueRef x =
            fadd_(c, fsub_(c, fdiv_(c, t, f64c(c, ss)), fmul_(c, f64c(c, 2), cyc)), f64c(c, 1));
        x = intr(c, "llvm.fabs", x);
        LLVMValueRef h = intr2(c, "llvm.maxnum", f64c(c, 0), fsub_(c, f64c(c, 1), x));
        if (o->s_mode == 1) /* triangular2: 1 / 2^(c - 1) */
            h = fmul_(c, h, intr2(c, "llvm.pow", f64c(c, 0.5), fsub_(c, cyc, f64c(c, 1))));
        else if (o->s_mode == 2) /* exp_range: gamma^t */
            h = fmul_(c, h, intr2(c, "llvm.pow", f64c(c, o->s_gamma), t));
        return fadd_(c, min_lr, fmul_(c, fsub_(c, base, min_lr), h));
    }
    case SCHED_MULTISTEP: {
        /* milestones passed so far, counted as MultiStepLR counts them */
        LLVMValueRef k = cg_i64(c, 0);
        for (int i = 0; i < o->s_nmilestones; i++) {
            LLVMValueRef in =
                LLVMBuildICmp(c->b, LLVMIntSGE, step, cg_i64(c, o->s_milestones[i].n), "");
            k = cg_add(c, k, LLVMBuildZExt(c->b, in, c->i64, ""));
        }
        k = LLVMBuildSIToFP(c->b, k, c->f64, "");
        return fmul_(c, base, intr2(c, "llvm.pow", f64c(c, o->s_gamma), k));
    }
    case SCHED_LINEAR_WARMUP: {
        double w = (double)o->s_warmup;
        LLVMValueRef p = fdiv_(c, intr2(c, "llvm.minnum", t, f64c(c, w)), f64c(c, w));
        LLVMValueRef f = fadd_(c, f64c(c, o->s_start), fmul_(c, f64c(c, o->s_end - o->s_start), p));
        return fmul_(c, base, f);
    }
    case SCHED_ONE_CYCLE: return one_cycle(c, o, base, t);
    case SCHED_COSINE_RESTARTS: return restarts(c, o, base, step);
    case SCHED_INVERSE_SQRT: {
        LLVMValueRef s = fadd_(c, t, f64c(c, 1));
        LLVMValueRef decay = intr(c, "llvm.sqrt", s);
        decay = fdiv_(c, f64c(c, 1), decay);
        LLVMValueRef warm = fmul_(c, s, f64c(c, pow((double)o->s_warmup, -1.5)));
        LLVMValueRef f = intr2(c, "llvm.minnum", decay, warm);
        return fmul_(c, base, fmul_(c, f64c(c, 1 / sqrt(o->s_d_model)), f));
    }
    default: die("codegen: unknown schedule %d", (int)o->sched);
    }
}

/* A run of contiguous trainable parameters: byte offsets of its first
 * parameter and slot 0 in their regions, and its scalar count. */
typedef struct {
    int64_t param, slot, count;
} Run;

static int runs_of(Cg *c, Run *runs)
{
    const Train *t = c->train;
    const CgObjLayout *l = &c->layout->obj[c->obj];
    int n = 0;
    int64_t end = -1;
    for (int i = 0; i < t->params.n; i++) {
        Node *p = t->params.v[i];
        int64_t off = c->layout->param_offset[p->id], count = 1, bytes;
        for (int d = 0; d < p->shape.rank; d++)
            count *= p->shape.d[d].n;
        bytes = count * cg_dtype_size(p->dtype);
        if (n > 0 && off == end) {
            runs[n - 1].count += count;
        } else {
            runs[n++] = (Run){off, l->opt_state_offset[p->id], count};
        }
        end = off + bytes;
    }
    return n;
}

static LLVMValueRef region(Cg *c, LLVMValueRef m, int64_t offset)
{
    LLVMValueRef idx = cg_i64(c, offset);
    return LLVMBuildInBoundsGEP2(c->b, c->i8, m, &idx, 1, "");
}

/* The per-step scalars of the update, in the parameters' type. */
typedef struct {
    LLVMValueRef lr, scale;                  /* scale: the clipping factor, or NULL */
    LLVMValueRef step_size, bc2_sqrt, decay; /* adam: lr / bc1, sqrt(bc2); adamw: 1 - lr wd */
    LLVMValueRef mom, damp; /* sgd with dampening: b = mom b + damp g (0, 1 at step 0) */
} Scalars;

/* clip_value: g clamped to [-v, v]; NaN stays NaN (clamp's, not minnum's) */
static LLVMValueRef clip_value(Cg *c, DType t, LLVMValueRef g, double v)
{
    LLVMValueRef hi = cg_fconst(c, t, v), lo = cg_fconst(c, t, -v);
    g = sel(c, LLVMBuildFCmp(c->b, LLVMRealOGT, g, hi, ""), hi, g);
    return sel(c, flt(c, g, lo), lo, g);
}

/* A decaying optimizer state (a moment, a momentum buffer) below the
 * smallest normal float, as 0: a unit that stops getting gradient decays
 * its state into denormals for a hundred steps and more, which Intel's
 * cores compute in microcode, hundreds of cycles a vector (8% of LeNet-5's
 * step here); what it would still add to a parameter is below 1e-30 of
 * the rate. */
static LLVMValueRef flush_tiny(Cg *c, DType t, LLVMValueRef x)
{
    if (t != DT_F32 && t != DT_F64)
        return x;
    LLVMValueRef mag = cg_intrinsic(c, "llvm.fabs", cg_type(c, t), &x, 1);
    return sel(c, flt(c, mag, cg_fconst(c, t, t == DT_F32 ? FLT_MIN : DBL_MIN)), cg_fconst(c, t, 0),
               x);
}

static void update(Cg *c, DType t, const Scalars *k, LLVMValueRef pp, LLVMValueRef gp,
                   LLVMValueRef bp, LLVMValueRef *sp, LLVMValueRef i)
{
    const OptPlan *o = c->opt;
    LLVMValueRef g = cg_load(c, t, gp, i), p = cg_load(c, t, pp, i);
    if (bp) /* the sum NAME.add would have stored */
        g = fadd_(c, g, cg_load(c, t, bp, i));
    if (o->has_clip_value)
        g = clip_value(c, t, g, o->clip_value);
    if (k->scale)
        g = fmul_(c, g, k->scale);
    if (o->weight_decay > 0 && !o->decoupled)
        g = fadd_(c, g, fmul_(c, cg_fconst(c, t, o->weight_decay), p));
    if (o->l1 > 0) {
        /* l1 * sign(p), sign(0) = 0 */
        LLVMValueRef zero = cg_fconst(c, t, 0), l1 = cg_fconst(c, t, o->l1);
        LLVMValueRef d =
            sel(c, flt(c, zero, p), l1, sel(c, flt(c, p, zero), cg_fconst(c, t, -o->l1), zero));
        g = fadd_(c, g, d);
    }
    LLVMValueRef eps = cg_fconst(c, t, o->eps);
    switch (o->optim) {
    case OPTIM_SGD:
        if (o->nslots) {
            LLVMValueRef mom = cg_fconst(c, t, o->momentum), b;
            if (k->damp)
                b = fadd_(c, fmul_(c, k->mom, cg_load(c, t, sp[0], i)), fmul_(c, k->damp, g));
            else
                b = fadd_(c, fmul_(c, mom, cg_load(c, t, sp[0], i)), g);
            b = flush_tiny(c, t, b);
            cg_store(c, t, b, sp[0], i);
            g = o->nesterov ? fadd_(c, g, fmul_(c, mom, b)) : b;
        }
        p = fsub_(c, p, fmul_(c, k->lr, g));
        break;
    case OPTIM_ADAGRAD: {
        LLVMValueRef s = fadd_(c, cg_load(c, t, sp[0], i), fmul_(c, g, g));
        cg_store(c, t, s, sp[0], i);
        LLVMValueRef d = fadd_(c, cg_intrinsic(c, "llvm.sqrt", cg_type(c, t), &s, 1), eps);
        p = fsub_(c, p, fmul_(c, k->lr, fdiv_(c, g, d)));
        break;
    }
    case OPTIM_RMSPROP: {
        LLVMValueRef a = cg_fconst(c, t, o->alpha), a1 = cg_fconst(c, t, 1 - o->alpha);
        LLVMValueRef v =
            fadd_(c, fmul_(c, a, cg_load(c, t, sp[0], i)), fmul_(c, a1, fmul_(c, g, g)));
        v = flush_tiny(c, t, v);
        cg_store(c, t, v, sp[0], i);
        LLVMValueRef d = fadd_(c, cg_intrinsic(c, "llvm.sqrt", cg_type(c, t), &v, 1), eps);
        if (o->nslots > 1) {
            LLVMValueRef mom = cg_fconst(c, t, o->momentum);
            LLVMValueRef b =
                flush_tiny(c, t, fadd_(c, fmul_(c, mom, cg_load(c, t, sp[1], i)), fdiv_(c, g, d)));
            cg_store(c, t, b, sp[1], i);
            p = fsub_(c, p, fmul_(c, k->lr, b));
        } else {
            p = fsub_(c, p, fmul_(c, k->lr, fdiv_(c, g, d)));
        }
        break;
    }
    case OPTIM_ADAM:
    case OPTIM_ADAMW: {
        if (o->decoupled && o->weight_decay > 0)
            p = fmul_(c, p, k->decay);
        LLVMValueRef b1 = cg_fconst(c, t, o->beta1), b2 = cg_fconst(c, t, o->beta2);
        LLVMValueRef m1 = flush_tiny(c, t,
                                     fadd_(c, fmul_(c, b1, cg_load(c, t, sp[0], i)),
                                           fmul_(c, cg_fconst(c, t, 1 - o->beta1), g)));
        LLVMValueRef v = flush_tiny(c, t,
                                    fadd_(c, fmul_(c, b2, cg_load(c, t, sp[1], i)),
                                          fmul_(c, cg_fconst(c, t, 1 - o->beta2), fmul_(c, g, g))));
        cg_store(c, t, m1, sp[0], i);
        cg_store(c, t, v, sp[1], i);
        LLVMValueRef d = cg_intrinsic(c, "llvm.sqrt", cg_type(c, t), &v, 1);
        d = fadd_(c, fdiv_(c, d, k->bc2_sqrt), eps);
        p = fsub_(c, p, fmul_(c, k->step_size, fdiv_(c, m1, d)));
        break;
    }
    default: die("codegen: unknown optimizer %d", (int)o->optim);
    }
    cg_store(c, t, p, pp, i);
    cg_store(c, t, cg_fconst(c, t, 0), gp, i);
}

/* `void NAME.update[.sum]OBJ.T(ptr noalias p, ptr noalias g[, ptr
 * noalias batch], ptr noalias slot..., i64 n, T scalar...)`: the update
 * of n scalars of one segment (grads.c) of type t, its gradient sums
 * g[i] (+ batch[i]); the scalars are those of Scalars the optimizer has
 * (has[]), in order. A function of its own, with its pointers noalias,
 * so that its loop is vectorized without run-time overlap checks. */
typedef struct {
    DType t;
    bool sum;
    bool has[7]; /* lr, scale, step_size, bc2_sqrt, decay, mom, damp */
    int nscalars;
} UpdateSeg;

static LLVMValueRef update_fn(Cg *c, const UpdateSeg *u)
{
    const OptPlan *o = c->opt;
    const char *name = arena_printf(c->g->arena, "%s.update%s%s.%s", c->g->name, u->sum ? ".sum" : "",
                                    cg_obj_tag(c), ir_dtype_name(u->t));
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (fn)
        return fn;
    LLVMValueRef outer = c->fn, batch = c->batch;
    LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
    int nptr = 2 + u->sum + o->nslots, np = nptr + 1 + u->nscalars;
    LLVMTypeRef pt[16];
    check(np <= countof(pt));
    for (int i = 0; i < np; i++)
        pt[i] = i < nptr ? c->ptr : i == nptr ? c->i64 : cg_type(c, u->t);
    fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, pt, (unsigned)np, false));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    const char *fattrs[] = {"nounwind", "noinline"};
    cg_fn_attrs(c, fn, fattrs, countof(fattrs));
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned i = 1; i <= (unsigned)nptr; i++)
        LLVMAddAttributeAtIndex(fn, i, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    LLVMValueRef got[7] = {0}, sp[OPT_MAX_SLOTS];
    for (int i = 0, j = nptr + 1; i < 7; i++)
        if (u->has[i])
            got[i] = LLVMGetParam(fn, (unsigned)j++);
    Scalars k = {.lr = got[0], .scale = got[1], .step_size = got[2], .bc2_sqrt = got[3],
                 .decay = got[4], .mom = got[5], .damp = got[6]};
    for (int s = 0; s < o->nslots; s++)
        sp[s] = LLVMGetParam(fn, (unsigned)(2 + u->sum + s));
    CgLoop lp;
    LLVMValueRef i = cg_loop_begin(c, LLVMGetParam(fn, (unsigned)nptr), &lp);
    update(c, u->t, &k, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1),
           u->sum ? LLVMGetParam(fn, 2) : NULL, sp, i);
    cg_loop_end(c, &lp);
    LLVMBuildRetVoid(c->b);
    c->fn = outer;
    c->batch = batch;
    LLVMPositionBuilderAtEnd(c->b, at);
    return fn;
}

static LLVMValueRef update_seg(Cg *c, const CgSeg *s, LLVMValueRef *vals, void *ctx)
{
    const UpdateSeg *u = ctx;
    int nslots = c->opt->nslots;
    LLVMValueRef args[16];
    int n = 0;
    args[n++] = s->param;
    args[n++] = s->grad;
    if (u->sum)
        args[n++] = s->batch;
    for (int k = 0; k < nslots; k++)
        args[n++] = cg_byte_gep(c, s->slot, k * c->layout->obj[c->obj].opt_slot_bytes);
    args[n++] = s->count;
    for (int k = 0; k < u->nscalars; k++)
        args[n++] = vals[k];
    LLVMValueRef fn = update_fn(c, u);
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n, "");
    return NULL;
}

LLVMValueRef cg_build_apply(Cg *c, bool sum)
{
    const Graph *g = c->g;
    const OptPlan *o = c->opt;
    const Layout *l = c->layout;
    check(o && c->train);
    /* the global norm reads the sums before the update: with the batch's
     * still apart, it would have to add them in a pass of its own */
    if (sum && (o->has_clip || !cg_grads_in_arena(c)))
        return NULL;
    /* the parameters' type, which the loss need not have: an f64 loss of
     * f32 parameters updates f32 scalars */
    DType t = cg_param_type(c);
    LLVMTypeRef pt[] = {c->ptr};
    char *name = arena_printf(g->arena, "%s.apply%s%s", g->name, sum ? ".sum" : "", cg_obj_tag(c));
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, pt, 1, false));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    LLVMValueRef m = LLVMGetParam(fn, 0);

    Scalars k = {0};
    LLVMValueRef lr = cg_schedule_lr(c, m);
    k.lr = cg_from_f64(c, t, lr);
    if (o->has_clip) {
        /* the global norm of the gradients, accumulated in f64 */
        Run *runs = arena_alloc(g->arena, sizeof *runs * (size_t)(c->train->params.n + 1));
        int nruns = runs_of(c, runs);
        LLVMValueRef acc = cg_alloca(c, c->f64, "sumsq");
        LLVMBuildStore(c->b, f64c(c, 0), acc);
        for (int r = 0; r < nruns; r++) {
            LLVMValueRef gp = region(c, m, l->grads_offset + runs[r].param);
            CgLoop lp;
            LLVMValueRef i = cg_loop_begin(c, cg_i64(c, runs[r].count), &lp);
            LLVMValueRef v = cg_load(c, t, gp, i);
            if (o->has_clip_value) /* the norm of the value-clipped gradients */
                v = clip_value(c, t, v, o->clip_value);
            v = cg_to_f64(c, t, v);
            LLVMBuildStore(c->b, fadd_(c, cg_get(c, c->f64, acc), fmul_(c, v, v)), acc);
            cg_loop_end(c, &lp);
        }
        LLVMValueRef norm = intr(c, "llvm.sqrt", cg_get(c, c->f64, acc));
        LLVMValueRef coef = fdiv_(c, f64c(c, o->clip_norm), fadd_(c, norm, f64c(c, 1e-6)));
        k.scale = cg_from_f64(c, t, intr2(c, "llvm.minnum", coef, f64c(c, 1)));
    }
    if (o->optim == OPTIM_SGD && o->nslots && o->dampening != 0) {
        /* PyTorch's first step sets the buffer to g, undamped */
        LLVMValueRef step = LLVMBuildLoad2(c->b, c->i64, cg_objective_field(c, m, CG_INST_step), "");
        LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, step, cg_i64(c, 0), "");
        k.mom = sel(c, first, cg_fconst(c, t, 0), cg_fconst(c, t, o->momentum));
        k.damp = sel(c, first, cg_fconst(c, t, 1), cg_fconst(c, t, 1 - o->dampening));
    }
    if (o->optim == OPTIM_ADAM || o->optim == OPTIM_ADAMW) {
        LLVMValueRef step = LLVMBuildLoad2(c->b, c->i64, cg_objective_field(c, m, CG_INST_step), "");
        LLVMValueRef t1 = LLVMBuildSIToFP(c->b, cg_add(c, step, cg_i64(c, 1)), c->f64, "");
        LLVMValueRef bc1 = fsub_(c, f64c(c, 1), intr2(c, "llvm.pow", f64c(c, o->beta1), t1));
        LLVMValueRef bc2 = fsub_(c, f64c(c, 1), intr2(c, "llvm.pow", f64c(c, o->beta2), t1));
        k.step_size = cg_from_f64(c, t, fdiv_(c, lr, bc1));
        k.bc2_sqrt = cg_from_f64(c, t, intr(c, "llvm.sqrt", bc2));
        k.decay = cg_from_f64(c, t, fsub_(c, f64c(c, 1), fmul_(c, lr, f64c(c, o->weight_decay))));
    }
    LLVMValueRef all[] = {k.lr, k.scale, k.step_size, k.bc2_sqrt, k.decay, k.mom, k.damp};
    LLVMValueRef kept[countof(all)];
    UpdateSeg u = {.t = t, .sum = sum};
    for (int i = 0; i < countof(all); i++) /* the scalars this optimizer has */
        if ((u.has[i] = all[i] != NULL))
            kept[u.nscalars++] = all[i];
    CgPass ps = {.name = name + strlen(g->name) + 1, /* its tasks: NAME.apply[.sum][OBJ].T */
                 .t = t,
                 .m = m,
                 .arena = sum ? cg_byte_gep(c, m, l->arena_offset) : NULL,
                 .vals = kept,
                 .nvals = u.nscalars,
                 .body = update_seg,
                 .ctx = &u};
    LLVMValueRef bad;
    check(cg_param_pass(c, &ps, &bad));
    LLVMValueRef sf = cg_objective_field(c, m, CG_INST_step);
    LLVMBuildStore(c->b, cg_add(c, LLVMBuildLoad2(c->b, c->i64, sf, ""), cg_i64(c, 1)), sf);
    LLVMBuildRetVoid(c->b);
    return fn;
}
