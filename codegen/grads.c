/*
 * The gradient sums of a training function: the check that every
 * parameter's gradient sum (the instance's + this batch's) is finite
 * before anything is written (docs/API.md, "Checked inputs"), and the
 * addition of the batch's gradients to the instance's.
 *
 * Both are elementwise over every parameter: together they read the
 * gradients three times, as much memory traffic as the optimizer's
 * update, and on one thread they were the largest serial part of a
 * training step on two threads (the MNIST MLP: 4% of its time). They run
 * as tasks on the thread pool over a constant table (`NAME.grads.T`,
 * one per element type): the parameters cut into segments of at most
 * GRAD_CHUNK scalars, consecutive segments grouped into tasks of at most
 * GRAD_CHUNK, so a model of thousands of small parameters makes a few
 * tasks, not thousands, and one loop's code whatever its size. The
 * table depends on the shapes alone; a task's additions are its own
 * elements', and the check is an OR of the tasks' verdicts, so the
 * result is the same at any thread count.
 *
 * A failed check runs the one-parameter-at-a-time checks again to name
 * the first bad gradient (dlrt_last_error) and return its code. Without
 * a thread pool (a target without an OS), or when some gradient does not
 * live in the plan's arena, both run one parameter at a time.
 */
#include "cg.h"

enum { GRAD_CHUNK = 1 << 14 };

/* The segments of every parameter of type t and the tasks grouping them
 * (nseg 0: there are none); false when a gradient is outside the arena
 * or a shape is not static. */
typedef struct {
    int64_t *seg; /* dst (from the instance), src (from the arena), count: three per segment */
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

static bool grad_table(Cg *c, DType t, bool batch, GradTable *tb)
{
    const Train *tr = c->train;
    *tb = (GradTable){0};
    int64_t cap = 0;
    for (int i = 0; i < tr->params.n; i++) {
        Node *p = tr->params.v[i];
        int64_t n = param_numel(p);
        if (p->dtype != t)
            continue;
        if (n < 0)
            return false;
        cap += (n + GRAD_CHUNK - 1) / GRAD_CHUNK;
    }
    if (cap == 0)
        return true;
    if (cap > INT32_MAX / 4)
        return false;
    tb->seg = arena_alloc(c->g->arena, sizeof *tb->seg * 3 * (size_t)cap);
    tb->first = arena_alloc(c->g->arena, sizeof *tb->first * ((size_t)cap + 1));
    int64_t in_task = GRAD_CHUNK; /* scalars of the current task: none open */
    for (int i = 0; i < tr->params.n; i++) {
        Node *p = tr->params.v[i];
        if (p->dtype != t)
            continue;
        int64_t src = batch ? cg_arena_offset(c, tr->grads.v[i]) : 0;
        if (src < 0)
            return false;
        int64_t dst = c->layout->grads_offset + c->layout->param_offset[p->id];
        int64_t n = param_numel(p), es = cg_dtype_size(t);
        for (int64_t lo = 0; lo < n; lo += GRAD_CHUNK) {
            int64_t k = n - lo < GRAD_CHUNK ? n - lo : GRAD_CHUNK;
            if (in_task + k > GRAD_CHUNK) {
                tb->first[tb->ntasks++] = tb->nseg;
                in_task = 0;
            }
            in_task += k;
            int64_t *s = &tb->seg[3 * tb->nseg++];
            s[0] = dst + lo * es;
            s[1] = src + lo * es;
            s[2] = k;
        }
    }
    tb->first[tb->ntasks] = tb->nseg;
    return true;
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

/* `void NAME.add.T(ptr noalias dst, ptr noalias src, i64 n)`: dst[i] +=
 * src[i], the one function that adds gradients of type t to the
 * instance's. Inline at each, the sums of a model of thousands of
 * parameters would be as many loops, each vectorized behind a check
 * that its buffers do not overlap (they never do). */
static LLVMValueRef add_fn(Cg *c, DType t)
{
    const char *name = arena_printf(c->g->arena, "%s.add.%s", c->g->name, ir_dtype_name(t));
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (fn)
        return fn;
    LLVMValueRef outer = c->fn, batch = c->batch;
    LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->i64};
    fn = LLVMAddFunction(c->mod, name, LLVMFunctionType(c->voidt, pt, 3, false));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    const char *fattrs[] = {"nounwind", "noinline"};
    cg_fn_attrs(c, fn, fattrs, countof(fattrs));
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned i = 1; i <= 2; i++)
        LLVMAddAttributeAtIndex(fn, i, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    cg_copy(c, t, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), true);
    LLVMBuildRetVoid(c->b);
    c->fn = outer;
    c->batch = batch;
    LLVMPositionBuilderAtEnd(c->b, at);
    return fn;
}

/* Runs the table's tasks on the pool: each adds its segments (add), or
 * scans them (with this batch's, when batch) and sets *flag when one is
 * not finite. Returns the flag's verdict (i1) when scanning. */
static LLVMValueRef run_table(Cg *c, CgFrame *f, DType t, const GradTable *tb, bool add,
                              bool batch)
{
    const char *tag = add ? "add" : "check";
    LLVMValueRef seg = i64_array(c, tb->seg, 3 * tb->nseg, "grads.seg");
    LLVMValueRef first = i64_array(c, tb->first, tb->ntasks + 1, "grads.task");
    LLVMValueRef flag = cg_alloca(c, c->i8, "grads.bad");
    LLVMBuildStore(c->b, LLVMConstInt(c->i8, 0, 0), flag);
    LLVMValueRef vals[] = {f->m, f->arena, flag};
    LLVMTypeRef sty;
    LLVMValueRef ctx = cg_task_pack(c, &sty, vals, 3);

    LLVMValueRef run = c->fn, outer_batch = c->batch;
    LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
    LLVMValueRef task = cg_task_begin(
        c, arena_printf(c->g->arena, "%s.grads.%s.%s", c->g->name, tag, ir_dtype_name(t)));
    LLVMValueRef tctx = LLVMGetParam(task, 0), ti = LLVMGetParam(task, 1);
    LLVMValueRef m = cg_task_get(c, sty, tctx, 0), arena = cg_task_get(c, sty, tctx, 1),
                 tflag = cg_task_get(c, sty, tctx, 2);
    LLVMValueRef s0 = load_i64(c, first, ti), s1 = load_i64(c, first, cg_add(c, ti, cg_i64(c, 1)));
    LLVMValueRef bad = cg_alloca(c, c->i1, "bad");
    LLVMBuildStore(c->b, LLVMConstInt(c->i1, 0, 0), bad);
    CgLoop l;
    LLVMValueRef s = cg_add(c, s0, cg_loop_begin(c, LLVMBuildNSWSub(c->b, s1, s0, ""), &l));
    LLVMValueRef at[3];
    for (int k = 0; k < 3; k++)
        at[k] = load_i64(c, seg, cg_add(c, cg_mul(c, s, cg_i64(c, 3)), cg_i64(c, k)));
    LLVMValueRef dst = LLVMBuildInBoundsGEP2(c->b, c->i8, m, &at[0], 1, "grad");
    LLVMValueRef src = LLVMBuildInBoundsGEP2(c->b, c->i8, arena, &at[1], 1, "batch.grad");
    if (add) {
        LLVMValueRef fn = add_fn(c, t), args[] = {dst, src, at[2]};
        LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 3, "");
    } else {
        LLVMValueRef b = cg_nonfinite(c, t, dst, batch ? src : NULL, at[2]);
        LLVMBuildStore(c->b, LLVMBuildOr(c->b, LLVMBuildLoad2(c->b, c->i1, bad, ""), b, ""), bad);
    }
    cg_loop_end(c, &l);
    if (!add) {
        /* tasks may run at once: the flag is only ever or-ed, atomically */
        LLVMBuildAtomicRMW(c->b, LLVMAtomicRMWBinOpOr, tflag,
                           LLVMBuildZExt(c->b, LLVMBuildLoad2(c->b, c->i1, bad, ""), c->i8, ""),
                           LLVMAtomicOrderingMonotonic, false);
    }
    LLVMBuildRetVoid(c->b);
    c->fn = run;
    c->batch = outer_batch;
    LLVMPositionBuilderAtEnd(c->b, here);
    cg_parallel_for(c, cg_i64(c, tb->ntasks), task, ctx, 0);
    if (add)
        return NULL;
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->i8, flag, "");
    LLVMSetOrdering(v, LLVMAtomicOrderingMonotonic);
    LLVMSetAlignment(v, 1);
    return LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->i8, 0, 0), "grads.nonfinite");
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
        LLVMValueRef add = add_fn(c, p->dtype);
        LLVMValueRef args[] = {LLVMBuildInBoundsGEP2(c->b, c->i8, pf->m, &idx, 1, "grad"),
                               cg_addr(c, pf, d), cg_numel(c, &p->shape)};
        LLVMBuildCall2(c->b, LLVMGlobalGetValueType(add), add, args, 3, "");
    }
    cg_parts_end(c, &parts);
}

/* The tables of every type, or false when one cannot be made. */
static bool grad_tables(Cg *c, bool batch, GradTable *tb)
{
    if (!c->threads)
        return false;
    for (int t = DT_F32; t <= DT_F64; t++)
        if (!grad_table(c, (DType)t, batch, &tb[t]))
            return false;
    return true;
}

void cg_grads_check(Cg *c, CgFrame *f, bool batch)
{
    GradTable tb[DT_COUNT];
    if (!grad_tables(c, batch, tb)) {
        check_each(c, f, batch);
        return;
    }
    LLVMValueRef bad = LLVMConstInt(c->i1, 0, 0);
    for (int t = DT_F32; t <= DT_F64; t++)
        if (tb[t].nseg)
            bad = LLVMBuildOr(c->b, bad, run_table(c, f, (DType)t, &tb[t], false, batch), "");
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
    GradTable tb[DT_COUNT];
    if (!grad_tables(c, true, tb)) {
        add_each(c, f);
        return;
    }
    for (int t = DT_F32; t <= DT_F64; t++)
        if (tb[t].nseg)
            run_table(c, f, (DType)t, &tb[t], true, true);
}
