/*
 * Parallel code (docs/CODEGEN.md, "Threads"): which plan steps run on
 * libdlrt's thread pool, cut into which tasks, and the task functions
 * that dlrt_parallel_for calls.
 *
 * The rule that keeps results independent of the thread count: a task is
 * decided by the shapes and the batch alone -- a compile-time number of
 * batch rows (images, sequences) per task, or of elements per chunk --
 * and no task's result depends on another's, so any thread may run any
 * task in any order. Per family:
 *
 *  - Steps whose every batch row is computed from that row alone
 *    (elementwise groups, softmax and reductions along a later axis,
 *    layer norm, convolutions and pooling and their input gradients,
 *    attention and its probabilities (every head of a batch row sees
 *    only that row), batched products whose both operands carry the
 *    batch, transposes that keep the batch first, slices that take the
 *    batch whole, concats along a later axis) are cut into ranges
 *    of batch rows: the task calls the step's own kernel on its rows, the pointers of the
 *    operands that carry the batch moved to the range and the batch
 *    argument set to its length. The batch must lead every shape that
 *    has it. A kernel with scratch memory (im2col) gets the worker's
 *    buffer from the pool, or its arena slot on the calling thread.
 *  - Matrix products over the whole batch (the dense layers and their
 *    gradients) are tiled by libdlrt's GEMM (runtime/gemm.c): a grid of
 *    tiles of the output, fixed by m, n and k.
 *  - The optimizer's update runs in chunks of the flat parameter array
 *    (train.c); each element is updated on its own, so chunks change
 *    nothing but who computes them.
 *  - Sums over the batch (bias gradients, batch norm's sums) run in
 *    chunks of a power of two of rows, each into a partial of its own,
 *    added as a tree after the tasks (reduce.c); the weight gradient of
 *    a convolution in chunks of images (conv.c); the other weight
 *    gradients' products are tiled by the GEMM. Batch norm in training
 *    cuts its channels (norm.c; in inference it is cut by batch rows, as
 *    above). A class loss computes its rows' losses in tasks and adds
 *    them in order after (loss.c); other losses and what draws random
 *    numbers stay one task.
 *
 * The cost model: a step's work per batch row is estimated from the
 * shapes (output elements times the work per element: the inner
 * dimension of a product, the kernel volume of a convolution or a
 * pooling window, a few operations for the rest); a task gets the least
 * power of two of rows with TASK_WORK, and a step whose largest batch
 * makes a single task stays a plain call. At batch 1 nothing is cut.
 */
#include "cg.h"

enum { TASK_WORK = CG_TASK_WORK };

static int64_t numel_static(const Shape *s, int from)
{
    int64_t n = 1;
    for (int d = from; d < s->rank; d++)
        n *= s->d[d].n;
    return n;
}

/* Elements per batch row (Dim.batch of dimension 0 scales by the batch). */
static int64_t row_elems(const Shape *s)
{
    return numel_static(s, 0);
}

/* Whether the batch, if s has it, is only in dimension 0. */
static bool batch_leads(const Shape *s)
{
    for (int d = 1; d < s->rank; d++)
        if (s->d[d].batch)
            return false;
    return true;
}

static bool has_batch(const Shape *s)
{
    for (int d = 0; d < s->rank; d++)
        if (s->d[d].batch)
            return true;
    return false;
}

static int norm_axis(int64_t a, int rank)
{
    return (int)(a < 0 ? a + rank : a);
}

/* Whether slice x takes dimension 0, the batch, whole (from 0 to its end
 * in steps of 1), so that row b of the result is cut from row b of the
 * input alone. */
static bool whole_rows_slice(const Node *x)
{
    if (x->op != OP_SLICE)
        return false;
    Dim d0 = x->in[0]->shape.d[0];
    AttrInts b = attr_begin(x), e = attr_end(x), st = attr_step(x);
    if (!d0.batch || b.n < 1 || e.n < 1 || st.n < 1)
        return false;
    Dim end = e.v[0], out = x->shape.d[0];
    return !b.v[0].batch && b.v[0].n == 0 && st.v[0].n == 1 && end.batch && end.n == d0.n &&
           out.batch && out.n == d0.n;
}

/* Work per batch row of member x, or -1 when x does not compute each
 * batch row from that row alone (training: whether batch norm uses the
 * batch's statistics). */
static int64_t member_work(const Node *x, bool training)
{
    const Shape *s = &x->shape;
    int64_t out = row_elems(s);
    unsigned flags = op_info[x->op].flags;
    /* batch norm in inference normalizes with the running statistics;
     * in training its kernel cuts the channels itself (norm.c) */
    if (x->op == OP_BATCH_NORM)
        return training ? -1 : 2 * out;
    if (flags & (OPF_RANDOM | OPF_REPLAY | OPF_MODE))
        return -1;
    switch (op_info[x->op].kind) {
    case K_ELTWISE: return out;
    case K_GEMM: {
        /* batched products only: a product over the whole batch is one
         * GEMM that libdlrt tiles. The batch must be a leading dimension of
         * both, not a matrix one (a transposed [B, K] contracts over it). */
        if (!has_batch(&x->in[0]->shape) || !has_batch(&x->in[1]->shape) ||
            x->in[0]->shape.rank < 3 || x->in[1]->shape.rank < 3)
            return -1;
        return out * ir_matmul_inner(x).n;
    }
    case K_ROWWISE:
        return norm_axis(attr_axis(x), s->rank) == 0 ? -1 : 4 * out;
    case K_REDUCE: {
        const Shape *in = &x->in[0]->shape;
        if (x->op == OP_ARGMAX) {
            if (!attr_has_axis(x) || norm_axis(attr_axis(x), in->rank) == 0)
                return -1;
        } else {
            if (!attr_has_axes(x))
                return -1;
            AttrInts ax = attr_axes(x);
            for (int k = 0; k < ax.n; k++)
                if (norm_axis(ax.v[k].n, in->rank) == 0)
                    return -1;
        }
        return 2 * row_elems(in);
    }
    case K_CONV:
        if (x->op == OP_CONV_GRAD_WEIGHT)
            return -1;
        /* per output element: the weights of one output channel */
        return out * (numel_static(&x->in[1]->shape, 0) / (s->d[1].n > 0 ? s->d[1].n : 1));
    case K_POOL:
        if (x->op == OP_STOCHASTIC_POOL2D || x->op == OP_STOCHASTIC_POOL2D_GRAD)
            return -1;
        return 4 * row_elems(&x->in[0]->shape) + out;
    case K_NORM:
        /* layer norm and its gradients: rows after the batch */
        if ((x->op != OP_LAYER_NORM && x->op != OP_LAYER_NORM_STATS &&
             x->op != OP_LAYER_NORM_GRAD) ||
            norm_axis(attr_axis(x), x->in[0]->shape.rank) == 0)
            return -1;
        return 8 * row_elems(&x->in[0]->shape);
    case K_SEQ: {
        /* attention: each batch row's heads see only that row. Per output
         * element, the scores' and the weighted sum's S multiply-adds
         * (attention), or the d of one score (the probabilities) */
        const Shape *k = &x->in[1]->shape;
        if (k->rank != 4)
            return -1;
        switch (x->op) {
        case OP_ATTENTION:
        case OP_ATTENTION_MASKED: return out * 2 * k->d[2].n;
        case OP_ATTENTION_PROBS:
        case OP_ATTENTION_PROBS_MASKED: return out * k->d[3].n;
        default: return -1;
        }
    }
    case K_SHAPE:
        if (x->op == OP_BROADCAST_TO)
            return out;
        if (x->op == OP_TRANSPOSE && attr_has_perm(x) && attr_perm(x).v[0].n == 0)
            return out;
        if (whole_rows_slice(x))
            return out;
        if (x->op == OP_CONCAT && norm_axis(attr_axis(x), s->rank) != 0)
            return out;
        return -1;
    default: return -1;
    }
}

static bool overlap(const Cg *c, Node *a, Node *b)
{
    const MemPlan *p = c->plan;
    int64_t oa = p->offset[a->id], ob = p->offset[b->id];
    if (a == b)
        return true;
    if (oa < 0 || ob < 0)
        return false;
    return oa < ob + p->bytes[b->id] && ob < oa + p->bytes[a->id];
}

int64_t cg_step_rows(Cg *c, Node *step, Node **ins, int nin)
{
    const Graph *g = c->g;
    if (!c->threads || !g->batch || cg_step_draws(c, step))
        return 0;
    const Shape *s = &step->shape;
    if (s->rank == 0 || !s->d[0].batch || !batch_leads(s))
        return 0;
    int64_t work = 0;
    CG_FOR_MEMBERS(c, step, x)
    {
        int64_t w = member_work(x, c->training);
        if (w < 0 || !batch_leads(&x->shape) || (x != step && !x->shape.d[0].batch))
            return 0;
        for (int j = 0; j < x->nin; j++)
            if (!batch_leads(&x->in[j]->shape))
                return 0;
        work += w;
    }
    /* an input sharing the output's bytes must be cut the same way */
    Node *out = cg_storage(c, step);
    for (int j = 0; j < nin; j++) {
        if (!batch_leads(&ins[j]->shape))
            return 0;
        if (overlap(c, out, cg_storage(c, ins[j])) &&
            (!has_batch(&ins[j]->shape) || row_elems(&ins[j]->shape) * cg_dtype_size(ins[j]->dtype) !=
                                               row_elems(s) * cg_dtype_size(step->dtype)))
            return 0;
    }
    /* a power of two of rows: a batch of a power of two then cuts into
     * a power of two of tasks, and thread k of 2 takes the same rows in
     * every step (runtime/pool.c gives it the k-th block of tasks) */
    int64_t rows = 1;
    while (rows * (work > 0 ? work : 1) < TASK_WORK) /* (rows of no elements) */
        rows *= 2;
    return rows < g->max_batch ? rows : 0;
}

/* ---- task functions -------------------------------------------------------- */

void cg_call_step(Cg *c, Node *step, LLVMValueRef kfn, Node **ins, int nin, LLVMValueRef *args,
                  int nargs)
{
    LLVMTypeRef kty = LLVMGlobalGetValueType(kfn);
    int64_t rows = cg_step_rows(c, step, ins, nin);
    if (!rows) {
        LLVMBuildCall2(c->b, kty, kfn, args, (unsigned)nargs, "");
        return;
    }
    /* the run function: the kernel's arguments in a context, then the pool */
    LLVMValueRef run = c->fn, batch = c->batch;
    LLVMBasicBlockRef here = LLVMGetInsertBlock(c->b);
    LLVMTypeRef sty;
    LLVMValueRef ctx = cg_task_pack(c, &sty, args, nargs);
    LLVMValueRef ntasks = cg_ntasks(c, batch, rows);

    size_t len;
    const char *kname = LLVMGetValueName2(kfn, &len);
    LLVMValueRef task =
        cg_task_begin(c, arena_printf(c->g->arena, "%.*s.task", (int)len, kname));
    LLVMValueRef tctx = LLVMGetParam(task, 0), t = LLVMGetParam(task, 1),
                 wscratch = LLVMGetParam(task, 2);
    LLVMValueRef all = cg_task_get(c, sty, tctx, nin + 1);
    LLVMValueRef lo = cg_mul(c, t, cg_i64(c, rows));
    LLVMValueRef count = cg_smin(c, cg_i64(c, rows), LLVMBuildNSWSub(c->b, all, lo, ""));
    LLVMValueRef *targs = arena_alloc(c->g->arena, sizeof *targs * (size_t)(nargs + 1));
    for (int j = 0; j <= nin; j++) {
        Node *x = j == 0 ? step : ins[j - 1];
        LLVMValueRef p = cg_task_get(c, sty, tctx, j);
        if (has_batch(&x->shape)) {
            int64_t row = row_elems(&x->shape) * cg_dtype_size(x->dtype);
            LLVMValueRef off = cg_mul(c, lo, cg_i64(c, row));
            p = LLVMBuildInBoundsGEP2(c->b, c->i8, p, &off, 1, "");
        }
        targs[j] = p;
    }
    targs[nin + 1] = count;
    int64_t scratch = c->plan->scratch_offset[step->id] >= 0 ? cg_scratch_bytes(c->g, step) : 0;
    for (int j = nin + 2; j < nargs; j++) {
        LLVMValueRef v = cg_task_get(c, sty, tctx, j);
        if (j == nin + 2 && scratch > 0) /* the worker's, or the arena's on the caller */
            v = LLVMBuildSelect(c->b, LLVMBuildIsNull(c->b, wscratch, ""), v, wscratch, "");
        targs[j] = v;
    }
    LLVMBuildCall2(c->b, kty, kfn, targs, (unsigned)nargs, "");
    LLVMBuildRetVoid(c->b);

    c->fn = run;
    c->batch = batch;
    LLVMPositionBuilderAtEnd(c->b, here);
    cg_parallel_for(c, ntasks, task, ctx, scratch);
}
