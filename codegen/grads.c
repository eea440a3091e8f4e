/*
 * The passes over every trainable parameter: the check that every
 * gradient sum (the instance's + this batch's) is finite before anything
 * is written (docs/API.md, "Checked inputs"), the addition of the batch's
 * gradients to the instance's, and the optimizer's update (train.c).
 *
 * They only stream memory -- together they read the gradients four
 * times -- and they all run as tasks on the thread pool over one
 * partition of the parameters of each element type: the parameters laid
 * end to end, cut into equal pieces (PASS_TASKS at most, each a multiple
 * of PASS_ALIGN scalars and at least PASS_MIN). A constant table
 * (`NAME.grads.T`) lists each task's segments (a piece of one parameter),
 * so a model of thousands of small parameters makes a few tasks, not
 * thousands, and one loop's code whatever its size. The pool gives
 * thread k of n the k-th block of the tasks (runtime/pool.c): with one
 * partition for the three passes, a thread updates the very gradients it
 * checked and summed, and the blocks are even. (The update had pieces of
 * its own, 2^16 scalars a run: the MNIST MLP's 203,530 parameters made 4
 * tasks, 131,072 scalars for one thread and 72,458 for the other, and a
 * third of the first's had been summed by the second.)
 *
 * The table depends on the shapes alone; a task's additions and updates
 * are its own elements', and the check is an OR of the tasks' verdicts,
 * so the result is the same at any thread count.
 *
 * A failed check runs the one-parameter-at-a-time checks again to name
 * the first bad gradient (dlrt_last_error) and return its code. When some
 * gradient does not live in the plan's arena (a parameter whose gradient
 * is an input, say), the check and the sum run one parameter at a time.
 */
#include "cg.h"

enum { PASS_TASKS = 64, PASS_MIN = 1 << 12, PASS_ALIGN = 16 };

/* A segment: byte offsets of its gradient sum, this batch's gradient (in
 * the arena), the parameter and its optimizer slot 0 (in the instance),
 * and its scalar count. */
enum { SEG_GRAD, SEG_BATCH, SEG_PARAM, SEG_SLOT, SEG_COUNT, SEG_COLS };

typedef struct {
    int64_t *seg;   /* SEG_COLS per segment */
    int64_t *first; /* by task: its first segment; ntasks + 1 entries */
    int nseg, ntasks;
} GradTable;

/* The scalars of a parameter, -1 if its shape is not static. */
static int64_t param_numel(const Node *p)
{
    int64_t n = 1;
    for (int d = 0; d < p->shape.rank; d++) {
        if (p->shape.d[d].batch)
            return -1;
        n *= p->shape.d[d].n;
    }
    return n;
}

/* Whether every parameter's shape is static and, with batch, every
 * gradient of this batch lives in the plan's arena: the condition of
 * every table. */
static bool tables_possible(Cg *c, bool batch)
{
    const Train *tr = c->train;
    for (int i = 0; i < tr->params.n; i++)
        if (param_numel(tr->params.v[i]) < 0 || (batch && cg_arena_offset(c, tr->grads.v[i]) < 0))
            return false;
    return true;
}

/* The partition of the parameters of type t (nseg 0: there are none);
 * tables_possible(c, batch) must hold. */
static void grad_table(Cg *c, DType t, bool batch, GradTable *tb)
{
    const Train *tr = c->train;
    const Layout *l = c->layout;
    *tb = (GradTable){0};
    int64_t total = 0, es = cg_dtype_size(t);
    int nparams = 0;
    for (int i = 0; i < tr->params.n; i++)
        if (tr->params.v[i]->dtype == t) {
            total += param_numel(tr->params.v[i]);
            nparams++;
        }
    if (total == 0)
        return;
    int64_t piece = (total + PASS_TASKS - 1) / PASS_TASKS;
    piece = piece < PASS_MIN ? PASS_MIN : (piece + PASS_ALIGN - 1) / PASS_ALIGN * PASS_ALIGN;
    int64_t ntasks = (total + piece - 1) / piece, cap = nparams + ntasks;
    tb->seg = arena_alloc(c->g->arena, sizeof *tb->seg * SEG_COLS * (size_t)cap);
    tb->first = arena_alloc(c->g->arena, sizeof *tb->first * ((size_t)ntasks + 1));
    int64_t at = 0; /* scalars laid out before this parameter */
    for (int i = 0; i < tr->params.n; i++) {
        Node *p = tr->params.v[i];
        if (p->dtype != t)
            continue;
        int64_t n = param_numel(p), off = l->param_offset[p->id];
        int64_t slot =
            c->opt && c->opt->nslots ? l->opt_offset + l->obj[c->obj].opt_state_offset[p->id] : 0;
        int64_t src = batch ? cg_arena_offset(c, tr->grads.v[i]) : 0;
        for (int64_t lo = 0; lo < n;) {
            if ((at + lo) % piece == 0)
                tb->first[tb->ntasks++] = tb->nseg;
            int64_t k = piece - (at + lo) % piece;
            k = k < n - lo ? k : n - lo;
            int64_t *s = &tb->seg[SEG_COLS * tb->nseg++];
            s[SEG_GRAD] = l->grads_offset + off + lo * es;
            s[SEG_BATCH] = src + lo * es;
            s[SEG_PARAM] = l->params_offset + off + lo * es;
            s[SEG_SLOT] = slot + lo * es;
            s[SEG_COUNT] = k;
            lo += k;
        }
        at += n;
    }
    tb->first[tb->ntasks] = tb->nseg;
}

static LLVMValueRef load_i64(Cg *c, LLVMValueRef a, LLVMValueRef i)
{
    return LLVMBuildLoad2(c->b, c->i64, LLVMBuildInBoundsGEP2(c->b, c->i64, a, &i, 1, ""), "");
}

static LLVMValueRef i64_array(Cg *c, const int64_t *v, int n, const char *name)
{
    LLVMValueRef *k = arena_alloc(c->g->arena, sizeof *k * (size_t)n);
    for (int i = 0; i < n; i++)
        k[i] = cg_i64(c, v[i]);
    return cg_private_const(c, LLVMConstArray2(c->i64, k, (uint64_t)n), name, true);
}

bool cg_param_pass(Cg *c, const CgPass *ps, LLVMValueRef *bad)
{
    GradTable tb;
    *bad = LLVMConstInt(c->i1, 0, 0);
    if (!tables_possible(c, ps->arena != NULL))
        return false;
    grad_table(c, ps->t, ps->arena != NULL, &tb);
    if (!tb.nseg)
        return true;
    LLVMValueRef seg = i64_array(c, tb.seg, SEG_COLS * tb.nseg, "grads.seg");
    LLVMValueRef first = i64_array(c, tb.first, tb.ntasks + 1, "grads.task");
    LLVMValueRef flag = cg_alloca(c, c->i8, "pass.bad");
    LLVMBuildStore(c->b, LLVMConstInt(c->i8, 0, 0), flag);
    int nv = 3 + ps->nvals;
    LLVMValueRef *vals = arena_alloc(c->g->arena, sizeof *vals * (size_t)nv);
    vals[0] = ps->m;
    vals[1] = ps->arena ? ps->arena : LLVMConstNull(c->ptr);
    vals[2] = flag;
    for (int i = 0; i < ps->nvals; i++)
        vals[3 + i] = ps->vals[i];
    LLVMTypeRef sty;
    LLVMValueRef ctx = cg_task_pack(c, &sty, vals, nv);

    LLVMValueRef run = c->fn, outer_batch = c->batch;
    LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
    LLVMValueRef task = cg_task_begin(
        c, arena_printf(c->g->arena, "%s.%s.%s", c->g->name, ps->name, ir_dtype_name(ps->t)));
    LLVMValueRef tctx = LLVMGetParam(task, 0), ti = LLVMGetParam(task, 1);
    LLVMValueRef *tv = arena_alloc(c->g->arena, sizeof *tv * (size_t)nv);
    for (int i = 0; i < nv; i++)
        tv[i] = cg_task_get(c, sty, tctx, i);
    LLVMValueRef s0 = load_i64(c, first, ti), s1 = load_i64(c, first, cg_add(c, ti, cg_i64(c, 1)));
    LLVMValueRef tbad = cg_alloca(c, c->i1, "bad");
    LLVMBuildStore(c->b, LLVMConstInt(c->i1, 0, 0), tbad);
    CgLoop l;
    LLVMValueRef s = cg_add(c, s0, cg_loop_begin(c, LLVMBuildNSWSub(c->b, s1, s0, ""), &l));
    LLVMValueRef at[SEG_COLS];
    for (int k = 0; k < SEG_COLS; k++)
        at[k] = load_i64(c, seg, cg_add(c, cg_mul(c, s, cg_i64(c, SEG_COLS)), cg_i64(c, k)));
    CgSeg sg = {.grad = LLVMBuildInBoundsGEP2(c->b, c->i8, tv[0], &at[SEG_GRAD], 1, "grad"),
                .batch = ps->arena ? LLVMBuildInBoundsGEP2(c->b, c->i8, tv[1], &at[SEG_BATCH], 1,
                                                           "batch.grad")
                                   : NULL,
                .param = LLVMBuildInBoundsGEP2(c->b, c->i8, tv[0], &at[SEG_PARAM], 1, "param"),
                .slot = LLVMBuildInBoundsGEP2(c->b, c->i8, tv[0], &at[SEG_SLOT], 1, "slot"),
                .count = at[SEG_COUNT]};
    LLVMValueRef b = ps->body(c, &sg, tv + 3, ps->ctx);
    if (b)
        LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, c->i1, tbad, ""), b, ""), tbad);
    cg_loop_end(c, &l);
    if (b) {
        /* tasks may run at once: the flag is only ever or-ed, atomically */
        LLVMBuildAtomicRMW(c->b, LLVMAtomicRMWBinOpOr, tv[2],
                           LLVMBuildZExt(c->b, LLVMBuildLoad2(c->b, c->i1, tbad, ""), c->i8, ""),
                           LLVMAtomicOrderingMonotonic, false);
    }
    LLVMBuildRetVoid(c->b);
    c->fn = run;
    c->batch = outer_batch;
    LLVMPositionBuilderAtEnd(c->b, here);
    if (c->threads) {
        cg_parallel_for(c, cg_i64(c, tb.ntasks), task, ctx, 0);
    } else { /* no pool (a target without an OS): the tasks in order */
        CgLoop tl;
        LLVMValueRef args[] = {ctx, cg_loop_begin(c, cg_i64(c, tb.ntasks), &tl),
                               LLVMConstNull(c->ptr)};
        LLVMBuildCall2(c->b, LLVMGlobalGetValueType(task), task, args, 3, "");
        cg_loop_end(c, &tl);
    }
    if (b) {
        LLVMValueRef v = LLVMBuildLoad2(c->b, c->i8, flag, "");
        LLVMSetOrdering(v, LLVMAtomicOrderingMonotonic);
        LLVMSetAlignment(v, 1);
        *bad = LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->i8, 0, 0), "pass.nonfinite");
    }
    return true;
}

static LLVMValueRef add_seg(Cg *c, const CgSeg *s, LLVMValueRef *vals, void *ctx)
{
    (void)vals;
    LLVMValueRef fn = cg_add_fn(c, *(const DType *)ctx), args[] = {s->grad, s->batch, s->count};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 3, "");
    return NULL;
}

static LLVMValueRef check_seg(Cg *c, const CgSeg *s, LLVMValueRef *vals, void *ctx)
{
    (void)vals;
    return cg_nonfinite(c, *(const DType *)ctx, s->grad, s->batch, s->count);
}

/* Gradients summed or checked in one part of a long run function
 * (docs/CODEGEN.md, Parts), 0 for none: each is a call. */
static int part_size(const Cg *c)
{
    return c->train->params.n > c->part_size ? c->part_size : 0;
}

/* One parameter at a time: checks each gradient sum, returning the code
 * of the first that is not finite. */
static void check_each(Cg *c, CgFrame *f, bool batch)
{
    const Train *t = c->train;
    CgParts parts;
    cg_parts_begin(c, &parts, f, part_size(c), true);
    for (int i = 0; i < t->params.n; i++) {
        CgFrame *pf = cg_part_next(c, &parts, 1);
        Node *p = t->params.v[i];
        LLVMValueRef idx = cg_i64(c, c->layout->grads_offset + c->layout->param_offset[p->id]);
        cg_check_finite(c, p->dtype, LLVMBuildInBoundsGEP2(c->b, c->i8, pf->m, &idx, 1, "grad"),
                        batch ? cg_addr(c, pf, t->grads.v[i]) : NULL, cg_numel(c, &p->shape),
                        cg_i64(c, 0), arena_printf(c->g->arena, "gradient of '%s'", p->name));
    }
    cg_parts_end(c, &parts);
}

/* One parameter at a time: adds each of this batch's gradients. */
static void add_each(Cg *c, CgFrame *f)
{
    const Train *t = c->train;
    CgParts parts;
    cg_parts_begin(c, &parts, f, part_size(c), false);
    for (int i = 0; i < t->params.n; i++) {
        CgFrame *pf = cg_part_next(c, &parts, 1);
        Node *p = t->params.v[i], *d = t->grads.v[i];
        LLVMValueRef idx = cg_i64(c, c->layout->grads_offset + c->layout->param_offset[p->id]);
        LLVMValueRef add = cg_add_fn(c, p->dtype);
        LLVMValueRef args[] = {LLVMBuildInBoundsGEP2(c->b, c->i8, pf->m, &idx, 1, "grad"),
                               cg_addr(c, pf, d), cg_numel(c, &p->shape)};
        LLVMBuildCall2(c->b, LLVMGlobalGetValueType(add), add, args, 3, "");
    }
    cg_parts_end(c, &parts);
}

/* Runs body over every parameter (frame f: with this
 * batch's gradients when batch); false, with nothing emitted, when the
 * tables cannot be made. *bad: the or of the body's verdicts. */
static bool every_param(Cg *c, CgFrame *f, bool batch, const char *name, CgSegBody body,
                        LLVMValueRef *bad)
{
    if (!tables_possible(c, batch))
        return false;
    DType dt = cg_param_type(c);
    CgPass ps = {.name = name,
                 .t = dt,
                 .m = f->m,
                 .arena = batch ? f->arena : NULL,
                 .body = body,
                 .ctx = &dt};
    cg_param_pass(c, &ps, bad);
    return true;
}

DType cg_param_type(const Cg *c)
{
    return c->train->params.n ? c->train->params.v[0]->dtype : c->train->loss->dtype;
}

void cg_grads_check(Cg *c, CgFrame *f, bool batch)
{
    LLVMValueRef bad;
    if (!every_param(c, f, batch, "grads.check", check_seg, &bad)) {
        check_each(c, f, batch);
        return;
    }
    LLVMBasicBlockRef slow = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "grads.find");
    LLVMBasicBlockRef ok = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "grads.finite");
    LLVMBuildCondBr(c->b, bad, slow, ok);
    LLVMPositionBuilderAtEnd(c->b, slow);
    check_each(c, f, batch);
    LLVMBuildBr(c->b, ok);
    LLVMPositionBuilderAtEnd(c->b, ok);
}

void cg_grads_add(Cg *c, CgFrame *f)
{
    LLVMValueRef bad;
    if (!every_param(c, f, true, "grads.add", add_seg, &bad))
        add_each(c, f);
}

bool cg_grads_in_arena(Cg *c)
{
    return tables_possible(c, true);
}

/* ---- gradient reports (dlrt_model_set_grad_ready) ------------------------- */

/* The last step among n and its ancestors, -1 for none (memo: -2 unknown). */
static int last_step(const int *step_of, int *memo, Node *n)
{
    if (memo[n->id] != -2)
        return memo[n->id];
    int s = step_of[n->id];
    for (int j = 0; j < n->nin; j++) {
        int k = last_step(step_of, memo, n->in[j]);
        s = k > s ? k : s;
    }
    return memo[n->id] = s;
}

void cg_grads_ready_begin(Cg *c)
{
    const Train *t = c->train;
    const Graph *g = c->g;
    c->ready_plan = c->plan;
    c->ready_step = arena_alloc(g->arena, sizeof *c->ready_step * ((size_t)t->params.n + 1));
    c->ready_numel = arena_alloc(g->arena, sizeof *c->ready_numel * ((size_t)t->params.n + 1));
    int *step_of = arena_alloc(g->arena, sizeof *step_of * ((size_t)g->nodes.n + 1));
    int *memo = arena_alloc(g->arena, sizeof *memo * ((size_t)g->nodes.n + 1));
    for (int i = 0; i < g->nodes.n; i++) {
        step_of[i] = -1;
        memo[i] = -2;
    }
    for (int i = 0; i < c->plan->nsteps; i++)
        step_of[c->plan->steps[i]->id] = i;
    /* A gradient is final after the last step that computes it or any
     * node its storage belongs to: its fusion group's root (computed by
     * a later kernel) and what it aliases (a view, an in-place update),
     * and their ancestors. Nothing writes that storage later: the
     * gradient is live to the end, where the checks and sums read it. */
    for (int k = 0; k < t->params.n; k++) {
        Node *p = t->params.v[k], *n = t->grads.v[k];
        int s = -1;
        for (int guard = 0; n && guard < 1000; guard++) {
            int a = last_step(step_of, memo, n);
            Node *r = c->root[n->id];
            int b = last_step(step_of, memo, r);
            s = a > s ? a : s;
            s = b > s ? b : s;
            Node *next = c->plan->alias ? c->plan->alias[r->id] : NULL;
            n = next && next != r ? next : NULL;
        }
        c->ready_step[k] = param_numel(p) < 0 ? -1 : s;
        c->ready_numel[k] = param_numel(p);
    }
}

void cg_grads_ready_end(Cg *c)
{
    c->ready_plan = NULL;
    c->ready_step = NULL;
    c->ready_numel = NULL;
}
