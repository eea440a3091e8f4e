/*
 * The loss family's kernels (passes/shape_loss.c): cross_entropy,
 * nll_loss and multi_margin_loss over class scores [N, C, ...] with i32
 * labels (an out-of-range label gives NaN, one equal to ignore_index 0
 * and no count in the mean), cross_entropy with soft
 * targets, and the pair losses (kl_div among them) of predictions and
 * targets of one shape. The reduction ("mean", "sum") accumulates in double; "none"
 * stores each element's loss. A class loss over many rows (cg_loss_rows)
 * computes its rows' losses in tasks on the pool, into the step's
 * scratch, and then adds them in the same order as one pass would: the
 * same bits at any thread count, and the same as one pass.
 */
#include <math.h>
#include <string.h>

#include "cg_kernels.h"

static LLVMValueRef pair_loss(Cg *c, const Node *n, LLVMValueRef p, LLVMValueRef t_)
{
    DType t = n->dtype;
    LLVMBuilderRef b = c->b;
    if (n->op == OP_BINARY_CROSS_ENTROPY) {
        /* max(x, 0) - x*t + log1p(exp(-|x|)) */
        LLVMValueRef na = LLVMBuildFNeg(b, cg_intr1(c, "llvm.fabs", t, p), "");
        LLVMValueRef l = cg_libm(c, "log1p", t, cg_exp(c, t, na));
        return LLVMBuildFAdd(
            b,
            LLVMBuildFSub(b, cg_max(c, t, p, cg_fconst(c, t, 0)), LLVMBuildFMul(b, p, t_, ""), ""),
            l, "");
    }
    if (n->op == OP_KL_DIV) {
        if (attr_log_target(n)) /* e^t (t - x) */
            return LLVMBuildFMul(b, cg_exp(c, t, t_), LLVMBuildFSub(b, t_, p, ""), "");
        /* xlogy(t, t) - t x, xlogy(0, .) = 0 */
        LLVMValueRef z = LLVMBuildFCmp(b, LLVMRealOEQ, t_, cg_fconst(c, t, 0), "");
        LLVMValueRef tl = LLVMBuildSelect(
            b, z, cg_fconst(c, t, 0), LLVMBuildFMul(b, t_, cg_intr1(c, "llvm.log", t, t_), ""), "");
        return LLVMBuildFSub(b, tl, LLVMBuildFMul(b, t_, p, ""), "");
    }
    LLVMValueRef d = LLVMBuildFSub(b, p, t_, "");
    LLVMValueRef ad = cg_intr1(c, "llvm.fabs", t, d);
    LLVMValueRef sq = LLVMBuildFMul(b, cg_fconst(c, t, 0.5), LLVMBuildFMul(b, d, d, ""), "");
    switch (n->op) {
    case OP_MSE: return LLVMBuildFMul(b, d, d, "");
    case OP_L1_LOSS: return ad;
    case OP_SMOOTH_L1_LOSS: {
        double beta = attr_beta(n);
        if (beta <= 0)
            return ad;
        LLVMValueRef small = LLVMBuildFCmp(b, LLVMRealOLT, ad, cg_fconst(c, t, beta), "");
        return LLVMBuildSelect(b, small, LLVMBuildFDiv(b, sq, cg_fconst(c, t, beta), ""),
                               LLVMBuildFSub(b, ad, cg_fconst(c, t, 0.5 * beta), ""), "");
    }
    case OP_HUBER_LOSS: {
        double delta = attr_delta(n);
        LLVMValueRef small = LLVMBuildFCmp(b, LLVMRealOLE, ad, cg_fconst(c, t, delta), "");
        return LLVMBuildSelect(b, small, sq,
                               LLVMBuildFMul(b, cg_fconst(c, t, delta),
                                             LLVMBuildFSub(b, ad, cg_fconst(c, t, 0.5 * delta), ""),
                                             ""),
                               "");
    }
    default: die("not a pair loss");
    }
}

/* Element base + j I: class j of a row whose first score is at base, the
 * classes I apart (the inner positions between them). */
static LLVMValueRef class_at(Cg *c, LLVMValueRef base, LLVMValueRef I, LLVMValueRef j)
{
    return LLVMBuildNSWAdd(c->b, base, LLVMBuildNSWMul(c->b, j, I, ""), "");
}

/* sum over j < C of e^(x[base + j I] - m). With C known and at most
 * EXP_ROW, the exponentials go first into a row on the stack, in a loop
 * that vectorizes, and are added from there in lanes (cg_sum_row):
 * where one loop computed and added them it stayed scalar (its additions
 * must keep their order), and the char LSTM's loss over 4096 rows of
 * 128 classes took 3 ms a step; added in order from the row, a GPT row
 * of 256 classes was 256 dependent additions. The exps' loop runs in
 * zmm where there are, 4 vectors an iteration (CG_MATH_INTERLEAVE): the
 * GPT's loss 650 -> 436 us a call, the char LSTM's 805 -> 517. Else in
 * order of j. */
enum { EXP_ROW = 4096 };

static LLVMValueRef exp_sum(Cg *c, DType t, LLVMValueRef x, LLVMValueRef base, LLVMValueRef C,
                            LLVMValueRef I, LLVMValueRef m)
{
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef sum = cg_alloca(c, ty, "sum"), row = NULL;
    CgLoop lj;
    if (LLVMIsAConstantInt(C) && LLVMConstIntGetSExtValue(C) <= EXP_ROW) {
        row = cg_alloca(c, LLVMArrayType2(ty, (uint64_t)LLVMConstIntGetSExtValue(C)), "exps");
        LLVMValueRef j = cg_loop_begin(c, C, &lj);
        LLVMValueRef e = LLVMBuildFSub(c->b, cg_load(c, t, x, class_at(c, base, I, j)), m, "");
        cg_store(c, t, cg_exp(c, t, e), row, j);
        cg_loop_end_interleaved(c, &lj, CG_MATH_INTERLEAVE);
        cg_prefer_widest(c, c->fn);
    }
    if (row) { /* in lanes */
        CgSum lanes = cg_sum_new(c, ty, LLVMConstIntGetSExtValue(C));
        return cg_sum_row(c, t, &lanes, row, C);
    }
    LLVMBuildStore(c->b, cg_fconst(c, t, 0), sum);
    LLVMValueRef j = cg_loop_begin(c, C, &lj);
    LLVMValueRef e =
        cg_exp(c, t, LLVMBuildFSub(c->b, cg_load(c, t, x, class_at(c, base, I, j)), m, ""));
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, sum, ""), e, ""), sum);
    cg_loop_end(c, &lj);
    return LLVMBuildLoad2(c->b, ty, sum, "");
}

/* label lab is n's ignore_index */
static LLVMValueRef ignored(Cg *c, const Node *n, LLVMValueRef lab)
{
    return LLVMBuildICmp(c->b, LLVMIntEQ, lab, cg_i64(c, attr_ignore_index(n)), "");
}

/* The loss of class row (o, i) of cls loss n (scores x [O, C, I...],
 * labels or soft targets y), NaN for an out-of-range label and 0 for an
 * ignored one; *lab: the label (NULL with soft targets). */
static LLVMValueRef class_loss(Cg *c, const Node *n, LLVMValueRef x, LLVMValueRef y, LLVMValueRef o,
                               LLVMValueRef i, LLVMValueRef C, LLVMValueRef I, LLVMValueRef *lab)
{
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    bool contiguous = n->in[0]->shape.rank <= 2; /* a row's scores side by side */
    CgLoop lj;
    LLVMValueRef val, mx = cg_alloca(c, ty, "max"), sum = cg_alloca(c, ty, "sum");
    LLVMValueRef base =
        LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, LLVMBuildNSWMul(c->b, o, C, ""), I, ""), i, "");
    *lab = NULL;
    if (n->in[1]->dtype != DT_I32) {
        /* soft targets q: sum_j q_j (lse - x_j) = lse sum q - sum q x */
        LLVMValueRef qs = cg_alloca(c, ty, "qsum"), qx = cg_alloca(c, ty, "qx");
        LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), mx);
        LLVMBuildStore(c->b, cg_fconst(c, t, 0), qs);
        LLVMBuildStore(c->b, cg_fconst(c, t, 0), qx);
        LLVMValueRef j = cg_loop_begin(c, C, &lj);
        LLVMValueRef xj = cg_load(c, t, x, class_at(c, base, I, j)),
                     qj = cg_load(c, t, y, class_at(c, base, I, j));
        LLVMBuildStore(c->b, cg_max(c, t, LLVMBuildLoad2(c->b, ty, mx, ""), xj), mx);
        LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, qs, ""), qj, ""), qs);
        LLVMBuildStore(c->b,
                       LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, qx, ""),
                                     LLVMBuildFMul(c->b, qj, xj, ""), ""),
                       qx);
        cg_loop_end(c, &lj);
        LLVMValueRef m = LLVMBuildLoad2(c->b, ty, mx, "");
        LLVMValueRef lse =
            LLVMBuildFAdd(c->b, m, cg_intr1(c, "llvm.log", t, exp_sum(c, t, x, base, C, I, m)), "");
        return LLVMBuildFSub(c->b, LLVMBuildFMul(c->b, lse, LLVMBuildLoad2(c->b, ty, qs, ""), ""),
                             LLVMBuildLoad2(c->b, ty, qx, ""), "");
    }
    LLVMValueRef at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, o, I, ""), i, "");
    *lab = LLVMBuildSExt(c->b, cg_load(c, DT_I32, y, at), c->i64, "");
    LLVMValueRef ok = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, *lab, cg_i64(c, 0), ""),
                                   LLVMBuildICmp(c->b, LLVMIntSLT, *lab, C, ""), "");
    LLVMValueRef picked =
        cg_load(c, t, x, class_at(c, base, I, LLVMBuildSelect(c->b, ok, *lab, cg_i64(c, 0), "")));
    if (n->op == OP_NLL_LOSS) {
        val = LLVMBuildFNeg(c->b, picked, "");
    } else if (n->op == OP_MULTI_MARGIN_LOSS) {
        /* sum over j != y of max(0, margin - x_y + x_j)^p, / C */
        LLVMBuildStore(c->b, cg_fconst(c, t, 0), sum);
        LLVMValueRef j = cg_loop_begin(c, C, &lj);
        LLVMValueRef m = LLVMBuildFAdd(
            c->b, cg_fconst(c, t, attr_margin(n)),
            LLVMBuildFSub(c->b, cg_load(c, t, x, class_at(c, base, I, j)), picked, ""), "");
        m = cg_max(c, t, m, cg_fconst(c, t, 0));
        if (attr_p(n) == 2)
            m = LLVMBuildFMul(c->b, m, m, "");
        LLVMValueRef other = LLVMBuildICmp(c->b, LLVMIntNE, j, *lab, "");
        m = LLVMBuildSelect(c->b, other, m, cg_fconst(c, t, 0), "");
        LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, sum, ""), m, ""), sum);
        cg_loop_end(c, &lj);
        val = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, ty, sum, ""),
                            LLVMBuildSIToFP(c->b, C, ty, ""), "");
    } else {
        LLVMValueRef m;
        if (contiguous) { /* its maximum in vectors */
            m = cg_row_max(c, t, cg_gep(c, t, x, base), C);
        } else {
            LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), mx);
            LLVMValueRef j = cg_loop_begin(c, C, &lj);
            LLVMBuildStore(c->b,
                           cg_max(c, t, LLVMBuildLoad2(c->b, ty, mx, ""),
                                  cg_load(c, t, x, class_at(c, base, I, j))),
                           mx);
            cg_loop_end(c, &lj);
            m = LLVMBuildLoad2(c->b, ty, mx, "");
        }
        LLVMValueRef lse =
            LLVMBuildFAdd(c->b, m, cg_intr1(c, "llvm.log", t, exp_sum(c, t, x, base, C, I, m)), "");
        val = LLVMBuildFSub(c->b, lse, picked, "");
    }
    /* an out-of-range label has no defined loss */
    val = LLVMBuildSelect(c->b, ok, val, cg_fconst(c, t, NAN), "");
    if (attr_has_ignore_index(n)) /* an ignored label adds 0 */
        val = LLVMBuildSelect(c->b, ignored(c, n, *lab), cg_fconst(c, t, 0), val, "");
    return val;
}

/* A class loss's values by rows [lo, hi) of its O, each row's I values
 * into buf [O, I] (class_loss). */
typedef struct {
    const Node *n;
    LLVMValueRef C, I; /* constants */
} LossRows;

static void loss_rows(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const LossRows *lr = ctx;
    LLVMValueRef x = vals[0], y = vals[1], buf = vals[2], lab;
    CgLoop lo_, li;
    LLVMValueRef o = cg_add(c, lo, cg_loop_begin(c, LLVMBuildNSWSub(c->b, hi, lo, ""), &lo_));
    LLVMValueRef i = cg_loop_begin(c, lr->I, &li);
    LLVMValueRef val = class_loss(c, lr->n, x, y, o, i, lr->C, lr->I, &lab);
    cg_store(c, lr->n->dtype, val, buf,
             LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, o, lr->I, ""), i, ""));
    cg_loop_end(c, &li);
    cg_loop_end(c, &lo_);
}

LLVMValueRef cg_kernel_loss(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1), y = LLVMGetParam(fn, 2);
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    const char *red = attr_reduction(n);
    bool none = strcmp(red, "none") == 0;
    LLVMValueRef acc = cg_alloca(c, c->f64, "acc");
    LLVMBuildStore(c->b, LLVMConstReal(c->f64, 0), acc);
    LLVMValueRef total, kept = NULL; /* kept: the labels not ignored */
    CgLoop lo, li;
    LLVMValueRef val, at;
    bool cls = n->op == OP_CROSS_ENTROPY || n->op == OP_NLL_LOSS || n->op == OP_MULTI_MARGIN_LOSS;
    bool labels = cls && n->in[1]->dtype == DT_I32, inner_loop = false;
    if (attr_has_ignore_index(n)) {
        kept = cg_alloca(c, c->i64, "kept");
        LLVMBuildStore(c->b, cg_i64(c, 0), kept);
    }
    if (cls) {
        const Shape *s = &n->in[0]->shape;
        Shape inner = {0};
        for (int d = 2; d < s->rank; d++)
            inner.d[inner.rank++] = s->d[d];
        LLVMValueRef O = s->rank == 1 ? cg_i64(c, 1) : cg_dim(c, s->d[0]);
        LLVMValueRef C = cg_dim(c, s->d[s->rank == 1 ? 0 : 1]);
        LLVMValueRef I = cg_numel(c, &inner), lab;
        total = LLVMBuildNSWMul(c->b, O, I, "");
        if (c->plan->scratch_offset[n->id] >= 0) {
            /* cg_loss_rows: the rows' losses in tasks, then their sum in
             * order, as below */
            LLVMValueRef buf = cg_kernel_scratch(c, 2), vals[] = {x, y, buf};
            LossRows lr = {n, C, I};
            size_t len;
            const char *name = LLVMGetValueName2(fn, &len);
            cg_parallel_chunks(c, arena_printf(c->g->arena, "%.*s.rows", (int)len, name), O,
                               cg_loss_rows(c->g, n), vals, countof(vals), loss_rows, &lr);
            at = cg_loop_begin(c, total, &lo);
            val = cg_load(c, t, buf, at);
            if (labels)
                lab = LLVMBuildSExt(c->b, cg_load(c, DT_I32, y, at), c->i64, "");
        } else {
            inner_loop = true;
            LLVMValueRef o = cg_loop_begin(c, O, &lo);
            LLVMValueRef i = cg_loop_begin(c, I, &li);
            at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, o, I, ""), i, "");
            val = class_loss(c, n, x, y, o, i, C, I, &lab);
        }
        if (kept && labels) /* an ignored label: nothing to the mean's count */
            LLVMBuildStore(
                c->b,
                LLVMBuildAdd(
                    c->b, LLVMBuildLoad2(c->b, c->i64, kept, ""),
                    LLVMBuildZExt(c->b, LLVMBuildNot(c->b, ignored(c, n, lab), ""), c->i64, ""),
                    ""),
                kept);
    } else {
        total = cg_numel(c, &n->in[0]->shape);
        at = cg_loop_begin(c, total, &lo);
        val = pair_loss(c, n, cg_load(c, t, x, at), cg_load(c, t, y, at));
    }
    if (none) {
        cg_store(c, t, val, out, at);
    } else {
        LLVMValueRef v64 = t == DT_F64 ? val : LLVMBuildFPExt(c->b, val, c->f64, "");
        LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f64, acc, ""), v64, ""),
                       acc);
    }
    if (inner_loop)
        cg_loop_end(c, &li);
    cg_loop_end(c, &lo);
    if (!none) {
        LLVMValueRef s = LLVMBuildLoad2(c->b, c->f64, acc, "");
        if (strcmp(red, "mean") == 0)
            s = LLVMBuildFDiv(c->b, s,
                              LLVMBuildSIToFP(c->b,
                                              kept ? LLVMBuildLoad2(c->b, c->i64, kept, "") : total,
                                              c->f64, ""),
                              "");
        const Shape *xs = &n->in[0]->shape;
        if (strcmp(red, "batchmean") == 0 && xs->rank > 0)
            s = LLVMBuildFDiv(c->b, s, LLVMBuildSIToFP(c->b, cg_dim(c, xs->d[0]), c->f64, ""), "");
        if (t != DT_F64)
            s = LLVMBuildFPTrunc(c->b, s, ty, "");
        cg_store(c, t, s, out, cg_i64(c, 0));
    }
    cg_kernel_end(c);
    return fn;
}
