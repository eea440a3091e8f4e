/*
 * The selection family's kernels (passes/shape_select.c): gather and take
 * and their scatter-add gradients, tril and triu, reverse_sequence, arange
 * and eye. (where is elementwise: eltwise.c.)
 *
 * gather and gather_grad walk the result (gather's shape) with one loop
 * nest and three running offsets: the result's, the indices' and x's,
 * where a broadcast dimension has stride 0 and x's offset leaves out the
 * axis, whose index is read from idx. An index outside 0..n-1 reads 0 and
 * scatters nothing (the entry points also refuse such i32 inputs,
 * check.c); the load is made safe by selecting index 0 first, so the loop
 * has no branch.
 */
#include <string.h>

#include "cg_kernels.h"

typedef struct {
    DType t;
    bool scatter;    /* gather_grad: out[x offset] += src */
    LLVMValueRef fn; /* the kernel */
    LLVMValueRef out, idx, src, x;
    LLVMValueRef n_axis, st_axis; /* x's extent and stride along the axis */
} GatherCtx;

/* offsets: 0 the result (dy for scatter), 1 idx, 2 x without the axis */
static void gather_body(Cg *c, CgNest *n, LLVMValueRef *offs)
{
    GatherCtx *k = n->ctx;
    LLVMBuilderRef b = c->b;
    LLVMValueRef j = LLVMBuildSExt(b, cg_load(c, DT_I32, k->idx, offs[1]), c->i64, "");
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntULT, j, k->n_axis, "");
    LLVMValueRef at =
        cg_add(c, offs[2], cg_mul(c, LLVMBuildSelect(b, ok, j, cg_i64(c, 0), ""), k->st_axis));
    if (!k->scatter) {
        LLVMValueRef v = cg_load(c, k->t, k->x, at);
        cg_store(c, k->t, LLVMBuildSelect(b, ok, v, cg_fconst(c, k->t, 0), ""), k->out, offs[0]);
        return;
    }
    LLVMBasicBlockRef join = cg_if_begin(c, ok);
    LLVMValueRef sum =
        k->t == DT_I32
            ? LLVMBuildAdd(b, cg_load(c, k->t, k->out, at), cg_load(c, k->t, k->src, offs[0]), "")
            : LLVMBuildFAdd(b, cg_load(c, k->t, k->out, at), cg_load(c, k->t, k->src, offs[0]), "");
    cg_store(c, k->t, sum, k->out, at);
    cg_if_end(c, join);
}

/* Strides of s over the result shape r (same rank), 0 where s is 1 and r
 * is not, and 0 along skip (-1: none). */
static void bcast_strides(Cg *c, const Shape *s, const Shape *r, int skip, LLVMValueRef *st)
{
    LLVMValueRef full[IR_MAX_RANK];
    cg_strides(c, s, full);
    for (int d = 0; d < r->rank; d++) {
        bool bc = s->d[d].n == 1 && !s->d[d].batch && !(r->d[d].n == 1 && !r->d[d].batch);
        st[d] = bc || d == skip ? cg_i64(c, 0) : full[d];
    }
}

/* The result the nest walks: gather's or take's, for a gradient the
 * forward's (its third input). */
static const Shape *gather_result(Node *n)
{
    return n->op == OP_GATHER_GRAD || n->op == OP_TAKE_GRAD ? &n->in[2]->shape : &n->shape;
}

/* What gather, take and their gradients share: the kernel k->fn, its
 * context, a gradient's output zeroed, x's strides xs, and the nest of
 * three offsets over the result with its extents and the result's
 * strides set; the caller sets the strides of idx and x. */
static CgNest *gather_begin(Cg *c, Node *n, GatherCtx *k, LLVMValueRef *xs)
{
    bool scatter = n->op == OP_GATHER_GRAD || n->op == OP_TAKE_GRAD;
    const Shape *xsh = &n->in[0]->shape, *r = gather_result(n);
    int axis = (int)attr_axis(n);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
    *k = (GatherCtx){.t = n->dtype,
                     .scatter = scatter,
                     .fn = fn,
                     .out = LLVMGetParam(fn, 0),
                     .x = LLVMGetParam(fn, 1),
                     .idx = LLVMGetParam(fn, 2),
                     .src = scatter ? LLVMGetParam(fn, 3) : NULL};
    if (scatter)
        cg_zero(c, n->dtype, k->out, cg_numel(c, xsh));
    cg_strides(c, xsh, xs);
    k->n_axis = cg_dim(c, xsh->d[axis]);
    k->st_axis = xs[axis];
    CgNest *nest = cg_nest_new(c, r->rank, 3);
    LLVMValueRef rs[IR_MAX_RANK];
    cg_strides(c, r, rs);
    for (int d = 0; d < r->rank; d++) {
        nest->ext[d] = cg_dim(c, r->d[d]);
        nest->st[0 * IR_MAX_RANK + d] = rs[d];
    }
    nest->body = gather_body;
    nest->ctx = k;
    return nest;
}

static LLVMValueRef gather_end(Cg *c, CgNest *nest)
{
    cg_nest_start(c, nest, NULL);
    cg_kernel_end(c);
    return ((GatherCtx *)nest->ctx)->fn;
}

static LLVMValueRef k_gather(Cg *c, Node *n)
{
    const Shape *r = gather_result(n);
    int axis = (int)attr_axis(n);
    GatherCtx k;
    LLVMValueRef xs[IR_MAX_RANK], st[2][IR_MAX_RANK];
    CgNest *nest = gather_begin(c, n, &k, xs);
    bcast_strides(c, &n->in[1]->shape, r, -1, st[0]);
    bcast_strides(c, &n->in[0]->shape, r, axis, st[1]);
    for (int d = 0; d < r->rank; d++) {
        nest->st[1 * IR_MAX_RANK + d] = st[0][d];
        nest->st[2 * IR_MAX_RANK + d] = st[1][d];
    }
    return gather_end(c, nest);
}

/* take and take_grad: gather's loop body over take's result, whose
 * dimensions are x's before the axis, the ids', then x's after it: the
 * ids' offset moves along the middle ones only, x's along the others. */
static LLVMValueRef k_take(Cg *c, Node *n)
{
    int axis = (int)attr_axis(n), ri = n->in[1]->shape.rank;
    GatherCtx k;
    LLVMValueRef xs[IR_MAX_RANK], is[IR_MAX_RANK];
    CgNest *nest = gather_begin(c, n, &k, xs);
    cg_strides(c, &n->in[1]->shape, is);
    LLVMValueRef zero = cg_i64(c, 0);
    for (int d = 0; d < nest->rank; d++) {
        bool mid = d >= axis && d < axis + ri;
        nest->st[1 * IR_MAX_RANK + d] = mid ? is[d - axis] : zero;
        nest->st[2 * IR_MAX_RANK + d] = mid ? zero : xs[d < axis ? d : d - ri + 1];
    }
    return gather_end(c, nest);
}

/* tril keeps column j of row i where j - i <= diagonal, triu where >= */
static LLVMValueRef k_tril(Cg *c, Node *n)
{
    const Shape *s = &n->shape;
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1);
    LLVMValueRef R = cg_dim(c, s->d[s->rank - 2]), C = cg_dim(c, s->d[s->rank - 1]);
    int64_t diag = attr_diagonal(n);
    Shape lead = *s;
    lead.rank -= 2;
    CgLoop lm, li, lj;
    LLVMValueRef m = cg_loop_begin(c, cg_numel(c, &lead), &lm);
    LLVMValueRef i = cg_loop_begin(c, R, &li);
    LLVMValueRef row = cg_mul(c, cg_add(c, cg_mul(c, m, R), i), C);
    LLVMValueRef j = cg_loop_begin(c, C, &lj);
    LLVMValueRef off = LLVMBuildNSWSub(c->b, j, i, "");
    LLVMValueRef keep =
        LLVMBuildICmp(c->b, n->op == OP_TRIL ? LLVMIntSLE : LLVMIntSGE, off, cg_i64(c, diag), "");
    LLVMValueRef at = cg_add(c, row, j);
    cg_store(c, t, LLVMBuildSelect(c->b, keep, cg_load(c, t, x, at), cg_fconst(c, t, 0), ""), out,
             at);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lm);
    cg_kernel_end(c);
    return fn;
}

/* reverse_sequence: per row b and step t, the inner block of step
 * src = t < n ? n - 1 - t : t copied, n clamped to 0..T (an input's
 * lengths are checked, computed ones are not) */
static LLVMValueRef k_reverse_sequence(Cg *c, Node *n)
{
    const Shape *s = &n->shape;
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1), lens = LLVMGetParam(fn, 2);
    Shape inner = *s;
    inner.rank -= 2;
    memmove(inner.d, s->d + 2, sizeof inner.d[0] * (size_t)inner.rank);
    LLVMValueRef T = cg_i64(c, s->d[1].n), K = cg_numel(c, &inner);
    CgLoop lb, lt;
    LLVMValueRef b = cg_loop_begin(c, cg_dim(c, s->d[0]), &lb);
    LLVMValueRef len = LLVMBuildSExt(c->b, cg_load(c, DT_I32, lens, b), c->i64, "");
    LLVMValueRef a[] = {len, cg_i64(c, 0)};
    len = cg_intrinsic(c, "llvm.smax", c->i64, a, 2);
    LLVMValueRef m[] = {len, T};
    len = cg_intrinsic(c, "llvm.smin", c->i64, m, 2);
    LLVMValueRef ti = cg_loop_begin(c, T, &lt);
    LLVMValueRef rev = LLVMBuildNSWSub(c->b, LLVMBuildNSWSub(c->b, len, cg_i64(c, 1), ""), ti, "");
    LLVMValueRef src =
        LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, ti, len, ""), rev, ti, "src");
    LLVMValueRef row = cg_mul(c, b, T);
    LLVMValueRef dst = cg_gep(c, t, out, cg_mul(c, cg_add(c, row, ti), K));
    LLVMValueRef from = cg_gep(c, t, x, cg_mul(c, cg_add(c, row, src), K));
    cg_memcpy(c, t, dst, from, K);
    cg_loop_end(c, &lt);
    cg_loop_end(c, &lb);
    cg_kernel_end(c);
    return fn;
}

/* arange: start + i * step, computed in f64 and converted (exact for the
 * integers an i32 arange holds); eye: 1 where row == column */
static LLVMValueRef k_constant(Cg *c, Node *n)
{
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, NULL, 0);
    LLVMValueRef out = LLVMGetParam(fn, 0);
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, cg_numel(c, &n->shape), &l);
    LLVMValueRef v;
    if (n->op == OP_ARANGE) {
        double start = attr_has_end_f(n) ? attr_start(n) : 0;
        LLVMValueRef fi = LLVMBuildSIToFP(c->b, i, c->f64, "");
        v = LLVMBuildFAdd(c->b, cg_fconst(c, DT_F64, start),
                          LLVMBuildFMul(c->b, fi, cg_fconst(c, DT_F64, attr_step_f(n)), ""), "");
        v = t == DT_I32 ? LLVMBuildFPToSI(c->b, v, c->i32, "") : cg_from_f64(c, t, v);
    } else {
        LLVMValueRef cols = cg_i64(c, n->shape.d[1].n);
        LLVMValueRef diag = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSDiv(c->b, i, cols, ""),
                                          LLVMBuildSRem(c->b, i, cols, ""), "");
        v = LLVMBuildSelect(c->b, diag, cg_fconst(c, t, 1), cg_fconst(c, t, 0), "");
    }
    cg_store(c, t, v, out, i);
    cg_loop_end(c, &l);
    cg_kernel_end(c);
    return fn;
}

LLVMValueRef cg_kernel_select(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_GATHER:
    case OP_GATHER_GRAD: return k_gather(c, step);
    case OP_TAKE:
    case OP_TAKE_GRAD: return k_take(c, step);
    case OP_TRIL:
    case OP_TRIU: return k_tril(c, step);
    case OP_REVERSE_SEQUENCE: return k_reverse_sequence(c, step);
    case OP_ARANGE:
    case OP_EYE: return k_constant(c, step);
    default: die("codegen: %s is not a selection op", op_info[step->op].text);
    }
}
