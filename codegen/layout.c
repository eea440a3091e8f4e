/*
 * The layout family's kernels (passes/shape_layout.c): data movement --
 * copies of reshape and flatten when they cannot be views, transpose,
 * concat and stack, zeros and ones, one_hot, slice and slice_update --
 * as loop nests of strided copies over run-time extents.
 */
#include "cg_kernels.h"

typedef struct {
    DType t;
    LLVMValueRef dst, src;
} CopyCtx;

static void copy_body(Cg *c, CgNest *n, LLVMValueRef *offs)
{
    CopyCtx *k = n->ctx;
    cg_store(c, k->t, cg_load(c, k->t, k->src, offs[1]), k->dst, offs[0]);
}

/* dst[offs0 + sum i*dst_st] = src[offs1 + sum i*src_st] over ext. */
static void copy_strided(Cg *c, DType t, int rank, const LLVMValueRef *ext, LLVMValueRef dst,
                         LLVMValueRef dst_off, const LLVMValueRef *dst_st, LLVMValueRef src,
                         LLVMValueRef src_off, const LLVMValueRef *src_st)
{
    CgNest *n = cg_nest_new(c, rank, 2);
    for (int d = 0; d < rank; d++) {
        n->ext[d] = ext[d];
        n->st[d] = dst_st[d];
        n->st[IR_MAX_RANK + d] = src_st[d];
    }
    CopyCtx k = {t, dst, src};
    n->body = copy_body;
    n->ctx = &k;
    LLVMValueRef base[2] = {dst_off, src_off};
    cg_nest_start(c, n, base);
}

static void memcpy_elems(Cg *c, DType t, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef count)
{
    LLVMValueRef bytes = LLVMBuildNSWMul(c->b, count, cg_i64(c, cg_dtype_size(t)), "");
    LLVMBuildMemMove(c->b, dst, (unsigned)cg_dtype_size(t), src, (unsigned)cg_dtype_size(t), bytes);
}

static LLVMValueRef k_copy(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    memcpy_elems(c, n->dtype, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), cg_numel(c, &n->shape));
    cg_kernel_end(c);
    return fn;
}

static LLVMValueRef k_transpose(Cg *c, Node *n)
{
    Node *x = n->in[0];
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    AttrInts perm = attr_perm(n);
    LLVMValueRef xs[IR_MAX_RANK], os[IR_MAX_RANK], ss[IR_MAX_RANK], ext[IR_MAX_RANK];
    cg_strides(c, &x->shape, xs);
    cg_strides(c, &n->shape, os);
    for (int d = 0; d < n->shape.rank; d++) {
        ss[d] = xs[perm.v[d].n];
        ext[d] = cg_dim(c, n->shape.d[d]);
    }
    copy_strided(c, n->dtype, n->shape.rank, ext, LLVMGetParam(fn, 0), cg_i64(c, 0), os,
                 LLVMGetParam(fn, 1), cg_i64(c, 0), ss);
    cg_kernel_end(c);
    return fn;
}

static LLVMValueRef k_concat(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
    int axis = (int)attr_axis(n);
    bool stack = n->op == OP_STACK;
    LLVMValueRef os[IR_MAX_RANK];
    cg_strides(c, &n->shape, os);
    LLVMValueRef at = cg_i64(c, 0);
    for (int k = 0; k < n->nin; k++) {
        Node *x = n->in[k];
        LLVMValueRef xs[IR_MAX_RANK], ss[IR_MAX_RANK], ext[IR_MAX_RANK];
        cg_strides(c, &x->shape, xs);
        for (int d = 0, s = 0; d < n->shape.rank; d++) {
            if (stack && d == axis) {
                ext[d] = cg_i64(c, 1);
                ss[d] = cg_i64(c, 0);
                continue;
            }
            ext[d] = cg_dim(c, x->shape.d[s]);
            ss[d] = xs[s++];
        }
        LLVMValueRef dst_off = LLVMBuildNSWMul(c->b, at, os[axis], "");
        copy_strided(c, n->dtype, n->shape.rank, ext, LLVMGetParam(fn, 0), dst_off, os,
                     LLVMGetParam(fn, (unsigned)k + 1), cg_i64(c, 0), ss);
        at = LLVMBuildNSWAdd(c->b, at, stack ? cg_i64(c, 1) : ext[axis], "");
    }
    cg_kernel_end(c);
    return fn;
}

static LLVMValueRef k_fill(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, NULL, 0);
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, cg_numel(c, &n->shape), &l);
    cg_store(c, n->dtype, cg_fconst(c, n->dtype, n->op == OP_ONES ? 1 : 0), LLVMGetParam(fn, 0), i);
    cg_loop_end(c, &l);
    cg_kernel_end(c);
    return fn;
}

static LLVMValueRef k_one_hot(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    int64_t depth = attr_n(n);
    CgLoop li, lj;
    LLVMValueRef i = cg_loop_begin(c, cg_numel(c, &n->in[0]->shape), &li);
    LLVMValueRef lab = LLVMBuildSExt(c->b, cg_load(c, DT_I32, LLVMGetParam(fn, 1), i), c->i64, "");
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, depth), &lj);
    LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, lab, j, "");
    LLVMValueRef v =
        LLVMBuildSelect(c->b, hit, cg_fconst(c, n->dtype, 1), cg_fconst(c, n->dtype, 0), "");
    cg_store(c, n->dtype, v, LLVMGetParam(fn, 0),
             LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, i, cg_i64(c, depth), ""), j, ""));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);
    cg_kernel_end(c);
    return fn;
}

/* Per input dimension of a slice: element count, first index and step. */
static void slice_geometry(Cg *c, const Node *n, const Node *x, LLVMValueRef *count,
                           LLVMValueRef *begin, int64_t *step)
{
    AttrInts b = attr_begin(n), e = attr_end(n), s = attr_step(n);
    for (int d = 0; d < x->shape.rank; d++) {
        check(d < b.n && d < e.n && d < s.n);
        int64_t st = s.v[d].n;
        step[d] = st;
        begin[d] = cg_dim(c, b.v[d]);
        Dim ed = e.v[d];
        LLVMValueRef end = ed.n == IR_NONE ? cg_i64(c, -1) : cg_dim(c, ed);
        LLVMValueRef span = st > 0 ? LLVMBuildNSWSub(c->b, end, begin[d], "")
                                   : LLVMBuildNSWSub(c->b, begin[d], end, "");
        int64_t as = st > 0 ? st : -st;
        LLVMValueRef cnt = LLVMBuildSDiv(c->b, LLVMBuildNSWAdd(c->b, span, cg_i64(c, as - 1), ""),
                                         cg_i64(c, as), "");
        count[d] = cnt;
    }
}

static LLVMValueRef k_slice(Cg *c, Node *n)
{
    Node *x = n->in[0];
    bool update = n->op == OP_SLICE_UPDATE;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    int r = x->shape.rank;
    LLVMValueRef count[IR_MAX_RANK], begin[IR_MAX_RANK], xs[IR_MAX_RANK], view[IR_MAX_RANK];
    int64_t step[IR_MAX_RANK];
    slice_geometry(c, n, x, count, begin, step);
    cg_strides(c, &x->shape, xs);
    LLVMValueRef base = cg_i64(c, 0);
    for (int d = 0; d < r; d++) {
        base = LLVMBuildNSWAdd(c->b, base, LLVMBuildNSWMul(c->b, begin[d], xs[d], ""), "");
        view[d] = LLVMBuildNSWMul(c->b, xs[d], cg_i64(c, step[d]), "");
    }
    if (!update) {
        /* the result, contiguous, at full rank (squeezed dims have count 1) */
        LLVMValueRef os[IR_MAX_RANK], acc = cg_i64(c, 1);
        for (int d = r - 1; d >= 0; d--) {
            os[d] = acc;
            acc = LLVMBuildNSWMul(c->b, acc, count[d], "");
        }
        copy_strided(c, n->dtype, r, count, out, cg_i64(c, 0), os, src, base, view);
        cg_kernel_end(c);
        return fn;
    }
    if (cg_storage(c, n) != cg_storage(c, x))
        memcpy_elems(c, n->dtype, out, src, cg_numel(c, &x->shape));
    /* the value broadcasts against the slice without its squeezed dims */
    Node *v = n->in[1];
    AttrInts sq = attr_squeeze(n);
    bool squeezed[IR_MAX_RANK] = {0};
    for (int k = 0; k < sq.n; k++)
        squeezed[sq.v[k].n] = true;
    int kept[IR_MAX_RANK], nk = 0;
    for (int d = 0; d < r; d++)
        if (!squeezed[d])
            kept[nk++] = d;
    LLVMValueRef vs_full[IR_MAX_RANK], vst[IR_MAX_RANK];
    cg_strides(c, &v->shape, vs_full);
    for (int d = 0; d < r; d++)
        vst[d] = cg_i64(c, 0);
    for (int j = 0; j < v->shape.rank; j++) {
        int d = kept[nk - v->shape.rank + j];
        Dim vd = v->shape.d[j];
        bool bc = vd.n == 1 && !vd.batch;
        vst[d] = bc ? cg_i64(c, 0) : vs_full[j];
    }
    copy_strided(c, n->dtype, r, count, out, base, view, LLVMGetParam(fn, 2), cg_i64(c, 0), vst);
    cg_kernel_end(c);
    return fn;
}

LLVMValueRef cg_kernel_layout(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_RESHAPE:
    case OP_FLATTEN: return k_copy(c, step);
    case OP_TRANSPOSE: return k_transpose(c, step);
    case OP_CONCAT:
    case OP_STACK: return k_concat(c, step);
    case OP_ZEROS:
    case OP_ONES: return k_fill(c, step);
    case OP_ONE_HOT: return k_one_hot(c, step);
    case OP_SLICE:
    case OP_SLICE_UPDATE: return k_slice(c, step);
    default: die("codegen: %s is not a layout op", op_info[step->op].text);
    }
}
