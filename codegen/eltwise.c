/*
 * The elementwise family's kernels (passes/shape_eltwise.c): one loop
 * nest per group -- a root and the nodes pass_fuse folded into it -- that
 * evaluates the whole expression per element.
 *
 * Operands broadcast with NumPy rules through per-dimension strides (0
 * along a broadcast dimension); adjacent dimensions where every operand
 * agrees on broadcasting are merged first, so same-shape operands become
 * one flat loop and a bias add two loops with a contiguous inner one. A
 * group that contains a matrix product computes the product into the
 * output first (reduce.c) and then applies the rest of the group in place
 * (its epilogue), in the product's tasks where it can (tail_epilogue: on
 * the part of the output each task has just made, in its core's cache);
 * one that contains a convolution runs the convolution's
 * loop over images (conv.c) and the same epilogue nest on each image right
 * after it; one that contains a batch norm, the norm (norm.c), which
 * applies the group's unary chain to each value it makes. Training-mode
 * dropout and dropout_grad draw their masks here
 * (rng.c says how).
 */
#include <math.h>
#include <string.h>

#include "cg_kernels.h"

/* ---- one element ---------------------------------------------------------- */

static LLVMValueRef fc(Cg *c, DType t, double v)
{
    return cg_fconst(c, t, v);
}

static LLVMValueRef sigmoid(Cg *c, DType t, LLVMValueRef x)
{
    LLVMValueRef e = cg_exp(c, t, LLVMBuildFNeg(c->b, x, ""));
    return LLVMBuildFDiv(c->b, fc(c, t, 1), LLVMBuildFAdd(c->b, fc(c, t, 1), e, ""), "");
}

/* log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)). */
static LLVMValueRef softplus(Cg *c, DType t, LLVMValueRef x)
{
    LLVMValueRef na = LLVMBuildFNeg(c->b, cg_intr1(c, "llvm.fabs", t, x), "");
    LLVMValueRef l = cg_libm(c, "log1p", t, cg_exp(c, t, na));
    return LLVMBuildFAdd(c->b, cg_max(c, t, x, fc(c, t, 0)), l, "");
}

static LLVMValueRef fgt(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, "");
}

static LLVMValueRef gelu(Cg *c, const Node *n, DType t, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef inner;
    if (strcmp(attr_approximate(n), "tanh") == 0) {
        LLVMValueRef x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x, x, ""), x, "");
        LLVMValueRef u = LLVMBuildFAdd(b, x, LLVMBuildFMul(b, fc(c, t, 0.044715), x3, ""), "");
        inner = cg_tanh(c, t, LLVMBuildFMul(b, fc(c, t, 0.7978845608028654), u, ""));
    } else {
        inner = cg_libm(c, "erf", t, LLVMBuildFMul(b, x, fc(c, t, 0.7071067811865476), ""));
    }
    LLVMValueRef h = LLVMBuildFMul(b, fc(c, t, 0.5), x, "");
    return LLVMBuildFMul(b, h, LLVMBuildFAdd(b, fc(c, t, 1), inner, ""), "");
}

/* comparisons: 1 or 0 in the operands' type; NaN compares false, but
 * unequal */
static LLVMValueRef compare(Cg *c, const Node *n, DType t, LLVMValueRef x, LLVMValueRef y)
{
    LLVMBuilderRef b = c->b;
    bool i = t == DT_I32;
    static const LLVMIntPredicate ip[] = {LLVMIntSGT, LLVMIntSGE, LLVMIntSLT,
                                          LLVMIntSLE, LLVMIntEQ,  LLVMIntNE};
    static const LLVMRealPredicate rp[] = {LLVMRealOGT, LLVMRealOGE, LLVMRealOLT,
                                           LLVMRealOLE, LLVMRealOEQ, LLVMRealUNE};
    int k = n->op - OP_GT;
    check(k >= 0 && k < 6 && OP_NE - OP_GT == 5);
    LLVMValueRef cmp = i ? LLVMBuildICmp(b, ip[k], x, y, "") : LLVMBuildFCmp(b, rp[k], x, y, "");
    return LLVMBuildSelect(b, cmp, fc(c, t, 1), fc(c, t, 0), "");
}

/* where: a where cond (of its own type) is nonzero, NaN counting as true */
static LLVMValueRef where(Cg *c, const Node *n, const LLVMValueRef *a)
{
    DType ct = n->in[0]->dtype;
    LLVMValueRef z = fc(c, ct, 0);
    LLVMValueRef t = ct == DT_I32 ? LLVMBuildICmp(c->b, LLVMIntNE, a[0], z, "")
                                  : LLVMBuildFCmp(c->b, LLVMRealUNE, a[0], z, "");
    return LLVMBuildSelect(c->b, t, a[1], a[2], "");
}

static LLVMValueRef sign(Cg *c, DType t, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    bool i = t == DT_I32;
    /* (x > 0) - (x < 0): 0 for both zeros and for NaN */
    LLVMValueRef pos =
        i ? LLVMBuildICmp(b, LLVMIntSGT, x, fc(c, t, 0), "") : fgt(c, x, fc(c, t, 0));
    LLVMValueRef neg = i ? LLVMBuildICmp(b, LLVMIntSLT, x, fc(c, t, 0), "")
                         : LLVMBuildFCmp(b, LLVMRealOLT, x, fc(c, t, 0), "");
    return LLVMBuildSelect(b, pos, fc(c, t, 1),
                           LLVMBuildSelect(b, neg, fc(c, t, -1), fc(c, t, 0), ""), "");
}

static LLVMValueRef cast(Cg *c, const Node *n, DType t, LLVMValueRef x)
{
    LLVMBuilderRef b = c->b;
    bool i = t == DT_I32;
    DType from = n->in[0]->dtype;
    if (from == t)
        return x;
    if (ir_dtype_is_half(from)) {
        x = cg_half_widen(c, from, x);
        from = DT_F32;
        if (t == DT_F32)
            return x;
    }
    if (ir_dtype_is_half(t)) /* from f32 only (shape_cast) */
        return cg_half_narrow(c, t, x);
    if (from == DT_I32)
        return LLVMBuildSIToFP(b, x, cg_type(c, t), "");
    if (i) {
        /* saturating: out-of-range values clamp, NaN gives 0 (fptosi would be poison) */
        LLVMTypeRef ft = cg_type(c, from);
        char name[40];
        snprintf(name, sizeof name, "llvm.fptosi.sat.i32.%s", from == DT_F32 ? "f32" : "f64");
        return cg_call(c, name, c->i32, &ft, 1, &x);
    }
    return t == DT_F64 ? LLVMBuildFPExt(b, x, c->f64, "") : LLVMBuildFPTrunc(b, x, c->f32, "");
}

/* dy * gelu'(x) */
static LLVMValueRef gelu_grad(Cg *c, const Node *n, DType t, LLVMValueRef x, LLVMValueRef dy)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef d;
    if (strcmp(attr_approximate(n), "tanh") == 0) {
        /* u = k (x + 0.044715 x^3), th = tanh(u):
         * 0.5 (1 + th) + 0.5 x (1 - th^2) k (1 + 3 * 0.044715 x^2) */
        LLVMValueRef x2 = LLVMBuildFMul(b, x, x, "");
        LLVMValueRef u = LLVMBuildFMul(
            b, fc(c, t, 0.7978845608028654),
            LLVMBuildFAdd(
                b, x, LLVMBuildFMul(b, fc(c, t, 0.044715), LLVMBuildFMul(b, x2, x, ""), ""), ""),
            "");
        LLVMValueRef th = cg_tanh(c, t, u);
        LLVMValueRef du = LLVMBuildFMul(
            b, fc(c, t, 0.7978845608028654),
            LLVMBuildFAdd(b, fc(c, t, 1), LLVMBuildFMul(b, fc(c, t, 3 * 0.044715), x2, ""), ""),
            "");
        LLVMValueRef sech2 = LLVMBuildFSub(b, fc(c, t, 1), LLVMBuildFMul(b, th, th, ""), "");
        d = LLVMBuildFAdd(
            b, LLVMBuildFMul(b, fc(c, t, 0.5), LLVMBuildFAdd(b, fc(c, t, 1), th, ""), ""),
            LLVMBuildFMul(b, LLVMBuildFMul(b, fc(c, t, 0.5), x, ""),
                          LLVMBuildFMul(b, sech2, du, ""), ""),
            "");
    } else {
        /* Phi(x) + x phi(x) */
        LLVMValueRef cdf = LLVMBuildFMul(
            b, fc(c, t, 0.5),
            LLVMBuildFAdd(
                b, fc(c, t, 1),
                cg_libm(c, "erf", t, LLVMBuildFMul(b, x, fc(c, t, 0.7071067811865476), "")), ""),
            "");
        LLVMValueRef e =
            cg_exp(c, t, LLVMBuildFMul(b, fc(c, t, -0.5), LLVMBuildFMul(b, x, x, ""), ""));
        LLVMValueRef pdf = LLVMBuildFMul(b, e, fc(c, t, 0.3989422804014327), "");
        d = LLVMBuildFAdd(b, cdf, LLVMBuildFMul(b, x, pdf, ""), "");
    }
    return LLVMBuildFMul(b, dy, d, "");
}

static LLVMValueRef elu_grad(Cg *c, const Node *n, DType t, LLVMValueRef x, LLVMValueRef dy)
{
    LLVMBuilderRef b = c->b;
    LLVMValueRef neg =
        LLVMBuildFMul(b, dy, LLVMBuildFMul(b, fc(c, t, attr_alpha(n)), cg_exp(c, t, x), ""), "");
    return LLVMBuildSelect(b, fgt(c, x, fc(c, t, 0)), dy, neg, "");
}

/* Python's x // y or x % y. Floats: floor(x / y), and fmod(x, y) moved to
 * y's sign. i32: sdiv and srem adjusted to floor; a zero divisor gives 0,
 * and INT32_MIN / -1 (which sdiv leaves undefined) INT32_MIN. */
static LLVMValueRef floor_divmod(Cg *c, Op op, DType t, LLVMValueRef x, LLVMValueRef y)
{
    LLVMBuilderRef b = c->b;
    if (t != DT_I32) {
        if (op == OP_FLOOR_DIVIDE)
            return cg_intr1(c, "llvm.floor", t, LLVMBuildFDiv(b, x, y, ""));
        LLVMValueRef m = LLVMBuildFRem(b, x, y, ""), z = fc(c, t, 0);
        LLVMValueRef fix =
            LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealONE, m, z, ""),
                         LLVMBuildXor(b, LLVMBuildFCmp(b, LLVMRealOLT, m, z, ""),
                                      LLVMBuildFCmp(b, LLVMRealOLT, y, z, ""), ""),
                         "");
        return LLVMBuildSelect(b, fix, LLVMBuildFAdd(b, m, y, ""), m, "");
    }
    LLVMTypeRef i32 = c->i32;
    LLVMValueRef zero = LLVMConstInt(i32, 0, 0), one = LLVMConstInt(i32, 1, 0);
    LLVMValueRef by0 = LLVMBuildICmp(b, LLVMIntEQ, y, zero, "");
    LLVMValueRef ovf =
        LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, x, LLVMConstInt(i32, (unsigned)INT32_MIN, 1), ""),
                     LLVMBuildICmp(b, LLVMIntEQ, y, LLVMConstInt(i32, (unsigned long long)-1, 1), ""),
                     "");
    /* a divisor that sdiv and srem accept: 1 in place of 0 and of -1 at INT32_MIN */
    LLVMValueRef d = LLVMBuildSelect(b, LLVMBuildOr(b, by0, ovf, ""), one, y, "");
    LLVMValueRef q = LLVMBuildSDiv(b, x, d, ""), r = LLVMBuildSRem(b, x, d, "");
    LLVMValueRef fix =
        LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, r, zero, ""),
                     LLVMBuildXor(b, LLVMBuildICmp(b, LLVMIntSLT, r, zero, ""),
                                  LLVMBuildICmp(b, LLVMIntSLT, d, zero, ""), ""),
                     "");
    LLVMValueRef v = op == OP_FLOOR_DIVIDE
                         ? LLVMBuildSelect(b, fix, LLVMBuildSub(b, q, one, ""), q, "")
                         : LLVMBuildSelect(b, fix, LLVMBuildAdd(b, r, d, ""), r, "");
    return LLVMBuildSelect(b, by0, zero, v, "");
}

/* One element of an elementwise op. */
static LLVMValueRef scalar_op(Cg *c, const Node *n, LLVMValueRef *a)
{
    DType t = n->dtype;
    bool i = t == DT_I32;
    LLVMBuilderRef b = c->b;
    LLVMValueRef x = a[0];
    switch (n->op) {
    case OP_ADD: return i ? LLVMBuildAdd(b, x, a[1], "") : LLVMBuildFAdd(b, x, a[1], "");
    case OP_SUB: return i ? LLVMBuildSub(b, x, a[1], "") : LLVMBuildFSub(b, x, a[1], "");
    case OP_MUL: return i ? LLVMBuildMul(b, x, a[1], "") : LLVMBuildFMul(b, x, a[1], "");
    case OP_DIV: return LLVMBuildFDiv(b, x, a[1], "");
    case OP_POW: return cg_intr2(c, "llvm.pow", t, x, a[1]);
    case OP_FLOOR_DIVIDE:
    case OP_REMAINDER: return floor_divmod(c, n->op, t, x, a[1]);
    case OP_MAXIMUM: return i ? cg_max(c, t, x, a[1]) : cg_intr2(c, "llvm.maximum", t, x, a[1]);
    case OP_MINIMUM: return i ? cg_min(c, t, x, a[1]) : cg_intr2(c, "llvm.minimum", t, x, a[1]);
    case OP_NEG: return i ? LLVMBuildNeg(b, x, "") : LLVMBuildFNeg(b, x, "");
    case OP_SQRT: return cg_intr1(c, "llvm.sqrt", t, x);
    case OP_RSQRT: return LLVMBuildFDiv(b, fc(c, t, 1), cg_intr1(c, "llvm.sqrt", t, x), "");
    case OP_EXP: return cg_exp(c, t, x);
    case OP_LOG: return cg_intr1(c, "llvm.log", t, x);
    case OP_SIN: return cg_intr1(c, "llvm.sin", t, x);
    case OP_COS: return cg_intr1(c, "llvm.cos", t, x);
    case OP_ABS:
        if (i) {
            LLVMValueRef args[] = {x, LLVMConstInt(c->i1, 0, 0)};
            return cg_intrinsic(c, "llvm.abs", c->i32, args, 2);
        }
        return cg_intr1(c, "llvm.fabs", t, x);
    case OP_SQUARE: return i ? LLVMBuildMul(b, x, x, "") : LLVMBuildFMul(b, x, x, "");
    case OP_CLAMP: return cg_min(c, t, cg_max(c, t, x, fc(c, t, attr_lo(n))), fc(c, t, attr_hi(n)));
    /* unordered-or-greater: NaN passes through, as in PyTorch */
    case OP_RELU:
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealUGT, x, fc(c, t, 0), ""), x, fc(c, t, 0),
                               "");
    case OP_LEAKY_RELU:
        return LLVMBuildSelect(b, fgt(c, x, fc(c, t, 0)), x,
                               LLVMBuildFMul(b, x, fc(c, t, attr_alpha(n)), ""), "");
    case OP_ELU:
        return LLVMBuildSelect(
            b, fgt(c, x, fc(c, t, 0)), x,
            LLVMBuildFMul(b, cg_libm(c, "expm1", t, x), fc(c, t, attr_alpha(n)), ""), "");
    case OP_SIGMOID: return sigmoid(c, t, x);
    case OP_TANH: return cg_tanh(c, t, x);
    case OP_GELU: return gelu(c, n, t, x);
    case OP_SILU: return LLVMBuildFMul(b, x, sigmoid(c, t, x), "");
    case OP_SOFTPLUS: return softplus(c, t, x);
    case OP_SIGN: return sign(c, t, x);
    case OP_STEP:
        return LLVMBuildSelect(
            b, i ? LLVMBuildICmp(b, LLVMIntSGT, x, fc(c, t, 0), "") : fgt(c, x, fc(c, t, 0)),
            fc(c, t, 1), fc(c, t, 0), "");
    case OP_CAST: return cast(c, n, t, x);
    case OP_GT:
    case OP_GE:
    case OP_LT:
    case OP_LE:
    case OP_EQ:
    case OP_NE: return compare(c, n, t, x, a[1]);
    case OP_WHERE: return where(c, n, a);
    /* backward primitives */
    case OP_GELU_GRAD: return gelu_grad(c, n, t, x, a[1]);
    case OP_ELU_GRAD: return elu_grad(c, n, t, x, a[1]);
    case OP_STOP_GRADIENT: return x; /* blocks gradients only: autodiff builds none */
    case OP_DROPOUT:
    case OP_DROPOUT2D:
    case OP_BROADCAST_TO: return x; /* identity in inference; broadcasting is in the strides */
    default: die("codegen: %s is not elementwise", op_info[n->op].text);
    }
}

/* ---- dropout in training -------------------------------------------------- */

/* v kept (scaled by 1 / (1 - p)) or dropped by the draw for element index
 * of dropout d; dropout2d draws once per sample and channel, so its
 * elements share the draw of index / (the channel's size). */
static LLVMValueRef dropout_mask(Cg *c, Node *d, LLVMValueRef v, LLVMValueRef index)
{
    check(d->op == OP_DROPOUT || d->op == OP_DROPOUT2D);
    LLVMBuilderRef b = c->b;
    if (d->op == OP_DROPOUT2D) {
        int64_t plane = 1;
        for (int i = 2; i < d->shape.rank; i++)
            plane *= d->shape.d[i].n;
        index = LLVMBuildUDiv(b, index, cg_i64(c, plane), "");
    }
    DType t = d->dtype;
    double p = attr_p(d);
    LLVMValueRef u = cg_uniform(c, d, index, t);
    LLVMValueRef keep = LLVMBuildFCmp(b, LLVMRealOGE, u, cg_fconst(c, t, p), "");
    return LLVMBuildSelect(b, keep, LLVMBuildFMul(b, v, cg_fconst(c, t, 1.0 / (1.0 - p)), ""),
                           cg_fconst(c, t, 0), "");
}

/* ---- groups --------------------------------------------------------------- */

typedef struct {
    Node *root, *gemm;
    int nleaves;
    Node **leaves;      /* distinct non-member, non-const inputs */
    LLVMValueRef *ptrs; /* by leaf */
    int *leaf_of;       /* by node id: leaf index, -1 */
    DType *ltype;
    LLVMValueRef out;
    LLVMValueRef value; /* the product's or norm's value in hand, or NULL:
                         * eval loads it from out */
} Group;

static bool is_member(const Cg *c, const Group *gr, const Node *x)
{
    return c->root[x->id] == gr->root && x != gr->gemm && x->op != OP_CONST;
}

static void collect_leaves(Cg *c, Group *gr, Node *x)
{
    for (int i = 0; i < x->nin; i++) {
        Node *y = x->in[i];
        if (y->op == OP_CONST)
            continue;
        if (is_member(c, gr, y)) {
            collect_leaves(c, gr, y);
        } else if (y != gr->gemm && gr->leaf_of[y->id] < 0) {
            gr->leaf_of[y->id] = gr->nleaves;
            gr->leaves[gr->nleaves++] = y;
        }
    }
}

static LLVMValueRef eval(Cg *c, Group *gr, Node *x, LLVMValueRef *offs, LLVMValueRef out_off)
{
    if (x->op == OP_CONST)
        return cg_fconst(c, x->dtype, attr_value(x));
    if (x == gr->gemm)
        return gr->value ? gr->value : cg_load(c, x->dtype, gr->out, out_off);
    if (!is_member(c, gr, x)) {
        int k = gr->leaf_of[x->id];
        return cg_load(c, x->dtype, gr->ptrs[k], offs[k]);
    }
    LLVMValueRef a[8];
    check(x->nin <= 8);
    for (int i = 0; i < x->nin; i++)
        a[i] = eval(c, gr, x->in[i], offs, out_off);
    if (c->training && (x->op == OP_DROPOUT || x->op == OP_DROPOUT2D))
        return dropout_mask(c, x, a[0], out_off);
    if (x->op == OP_DROPOUT_GRAD)
        return dropout_mask(c, x->in[0], a[1], out_off);
    return scalar_op(c, x, a);
}

typedef struct {
    Group *gr;
    Node *sink;
} EltCtx;

static void eltwise_body(Cg *c, CgNest *n, LLVMValueRef *offs)
{
    EltCtx *e = n->ctx;
    LLVMValueRef out_off = offs[n->nops - 1];
    LLVMValueRef v = eval(c, e->gr, e->sink, offs, out_off);
    cg_store(c, e->sink->dtype, v, e->gr->out, out_off);
}

/* Broadcast flag of operand shape s against result shape r, per r dim. */
static bool bcast_dim(const Shape *s, const Shape *r, int d)
{
    int k = d - (r->rank - s->rank);
    if (k < 0)
        return true;
    Dim sd = s->d[k], rd = r->d[d];
    return sd.n == 1 && !sd.batch && !(rd.n == 1 && !rd.batch);
}

/* Which dimensions of the sink's shape merge into which loop of its nest
 * (group_of), and how many loops: adjacent dimensions where every operand
 * the group reads broadcasts alike merge; with split0, dimension 0 stays
 * a loop of its own, with split_last the last dimension. bc: broadcast
 * flags by leaf and dimension. */
static int nest_levels(Cg *c, Group *gr, Node *sink, bool split0, bool split_last,
                       bool bc[][IR_MAX_RANK], int *group_of)
{
    const Shape *r = &sink->shape;
    int nl = gr->nleaves;
    bool read[64] = {0};
    check(nl < 64);
    for (int k = 0; k < nl; k++)
        for (int d = 0; d < r->rank; d++)
            bc[k][d] = bcast_dim(&gr->leaves[k]->shape, r, d);
    /* the product's operands matter only where the epilogue reads them too */
    CG_FOR_MEMBERS(c, gr->root, x)
    {
        if (x == sink || is_member(c, gr, x))
            for (int j = 0; j < x->nin; j++)
                if (x->in[j]->op != OP_CONST && gr->leaf_of[x->in[j]->id] >= 0)
                    read[gr->leaf_of[x->in[j]->id]] = true;
    }
    int rank = 0;
    bool group_batch = false; /* the current group holds a batch dim: a Dim has one factor */
    for (int d = 0; d < r->rank; d++) {
        bool same = d > 0 && !(split0 && d == 1) && !(split_last && d == r->rank - 1) &&
                    !(group_batch && r->d[d].batch);
        for (int k = 0; k < nl && same; k++)
            same = !read[k] || bc[k][d] == bc[k][d - 1];
        group_of[d] = same ? rank - 1 : rank++;
        group_batch = (same && group_batch) || r->d[d].batch;
    }
    return rank;
}

/* The loop nest that evaluates the group's value (sink) over its shape,
 * in nest_levels' loops; with split0, level 0 can run one index at a
 * time (nest_image). */
static CgNest *eltwise_nest(Cg *c, Group *gr, Node *sink, bool split0, bool split_last, EltCtx *e)
{
    const Shape *r = &sink->shape;
    int nl = gr->nleaves;
    bool bc[64][IR_MAX_RANK];
    int group_of[IR_MAX_RANK];
    int rank = nest_levels(c, gr, sink, split0, split_last, bc, group_of);
    CgNest *n = cg_nest_new(c, rank, nl + 1);
    Dim ext[IR_MAX_RANK];
    bool mbc[64][IR_MAX_RANK];
    for (int j = 0; j < rank; j++)
        ext[j] = (Dim){1, false};
    for (int d = 0; d < r->rank; d++) {
        Dim *x = &ext[group_of[d]];
        x->n *= r->d[d].n;
        x->batch |= r->d[d].batch;
        for (int k = 0; k < nl; k++)
            mbc[k][group_of[d]] = bc[k][d];
    }
    for (int j = 0; j < rank; j++)
        n->ext[j] = cg_dim(c, ext[j]);
    for (int k = 0; k <= nl; k++) {
        LLVMValueRef acc = cg_i64(c, 1);
        for (int j = rank - 1; j >= 0; j--) {
            bool b = k < nl && mbc[k][j];
            n->st[k * IR_MAX_RANK + j] = b ? cg_i64(c, 0) : acc;
            if (!b)
                acc = LLVMBuildNSWMul(c->b, acc, n->ext[j], "");
        }
    }
    e->gr = gr;
    e->sink = sink;
    n->body = eltwise_body;
    n->ctx = e;
    return n;
}

/* Runs the levels below 0 of a split0 nest for index b of dimension 0:
 * a convolution group's epilogue over one image (cg_emit_conv). */
static void nest_image(Cg *c, void *ctx, LLVMValueRef b)
{
    CgNest *n = ctx;
    LLVMValueRef offs[64];
    check(n->nops <= 64 && n->rank >= 1);
    for (int k = 0; k < n->nops; k++)
        offs[k] = LLVMBuildNSWMul(c->b, b, n->st[k * IR_MAX_RANK + 0], "");
    cg_nest_run(c, n, 1, offs);
}

/* A product group's epilogue as its tasks run it (CgEpilogue): the
 * group, its sink, and the kernel's values the task gets copies of */
typedef struct {
    Group *gr;
    Node *sink;
} TailCtx;

/* rows [r0, r1) by columns [c0, c1) of the sink, as a 2-loop nest of its
 * leading dimensions by its last, built in the task from v: the batch,
 * out, then the leaves' pointers */
static void run_tail(Cg *c, const CgEpilogue *ep, LLVMValueRef *v, LLVMValueRef r0, LLVMValueRef r1,
                     LLVMValueRef c0, LLVMValueRef c1)
{
    const TailCtx *t = ep->ctx;
    Group g = *t->gr;
    g.out = v[1];
    g.ptrs = v + 2;
    LLVMValueRef batch = c->batch;
    c->batch = v[0];
    EltCtx e;
    CgNest blk = *eltwise_nest(c, &g, t->sink, false, true, &e);
    check(blk.rank == 2);
    blk.ext[0] = LLVMBuildSub(c->b, r1, r0, "");
    blk.ext[1] = LLVMBuildSub(c->b, c1, c0, "");
    LLVMValueRef offs[64];
    for (int k = 0; k < blk.nops; k++)
        offs[k] = cg_add(c, cg_mul(c, r0, blk.st[k * IR_MAX_RANK]),
                         cg_mul(c, c0, blk.st[k * IR_MAX_RANK + 1]));
    cg_nest_run(c, &blk, 0, offs);
    c->batch = batch;
}

/* The epilogue of step's product for its tasks to run (*epi filled), or
 * NULL when the sink's leading dimensions do not make one loop (an
 * operand broadcast over some of them only) or the group draws random
 * numbers (dropout's stream follows the kernel's call). */
static const CgEpilogue *tail_epilogue(Cg *c, Node *step, TailCtx *tc, CgEpilogue *epi)
{
    Group *gr = tc->gr;
    const Shape *r = &tc->sink->shape;
    bool bc[64][IR_MAX_RANK];
    int group_of[IR_MAX_RANK];
    /* (a vector operand leaves out a dimension: the rows would not be M) */
    if (tc->sink == gr->gemm || r->rank < 2 || gr->gemm->in[0]->shape.rank < 2 ||
        gr->gemm->in[1]->shape.rank < 2 || cg_step_draws(c, step) ||
        nest_levels(c, gr, tc->sink, false, true, bc, group_of) != 2)
        return NULL;
    LLVMValueRef *v = arena_alloc(c->g->arena, sizeof *v * (size_t)(gr->nleaves + 2));
    v[0] = c->batch ? c->batch : cg_i64(c, 0);
    v[1] = gr->out;
    for (int k = 0; k < gr->nleaves; k++)
        v[2 + k] = gr->ptrs[k];
    *epi = (CgEpilogue){.run = run_tail, .vals = v, .nvals = gr->nleaves + 2, .ctx = tc};
    return epi;
}

/* A batch norm group's chain (CgChain) at the norm's value v: the sink
 * evaluated with the task's copies vals of the leaves' pointers, every
 * leaf read at the value's offset at (pass_fuse: of the sink's shape,
 * the norm's own inputs aside) */
static LLVMValueRef chain_apply(Cg *c, const CgChain *ch, LLVMValueRef *vals, LLVMValueRef v,
                                LLVMValueRef at)
{
    const TailCtx *t = ch->ctx;
    Group g = *t->gr;
    g.ptrs = vals;
    g.value = v;
    LLVMValueRef *offs = arena_alloc(c->g->arena, sizeof *offs * (size_t)(g.nleaves + 1));
    for (int k = 0; k < g.nleaves; k++)
        offs[k] = at;
    return eval(c, &g, t->sink, offs, at);
}

LLVMValueRef cg_kernel_eltwise(Cg *c, Node *step)
{
    const Graph *g = c->g;
    Group gr = {.root = step, .leaf_of = c->leaf_of};
    int nin = 0;
    CG_FOR_MEMBERS(c, step, x)
    {
        nin += x->nin;
    }
    gr.leaves = arena_alloc(g->arena, sizeof(Node *) * (size_t)(nin + 1));
    /* the group: members, its matrix product, and the sink (the value) */
    bool *used = c->used;
    CG_FOR_MEMBERS(c, step, x)
    {
        if (x->op == OP_CONST)
            continue;
        if (op_info[x->op].kind == K_GEMM || op_info[x->op].kind == K_CONV ||
            x->op == OP_BATCH_NORM) {
            check(!gr.gemm);
            gr.gemm = x;
        } else if (op_info[x->op].kind != K_ELTWISE && x->op != OP_BROADCAST_TO) {
            die("codegen: cannot fuse %s into %s", op_info[x->op].text, op_info[step->op].text);
        }
        for (int j = 0; j < x->nin; j++)
            used[x->in[j]->id] = true;
    }
    Node *sink = NULL;
    CG_FOR_MEMBERS(c, step, x)
    {
        if (x->op != OP_CONST && !used[x->id]) {
            check(!sink);
            sink = x;
        }
    }
    CG_FOR_MEMBERS(c, step, x)
    {
        for (int j = 0; j < x->nin; j++)
            used[x->in[j]->id] = false;
    }
    check(sink);
    if (gr.gemm) {
        for (int j = 0; j < gr.gemm->nin; j++)
            if (gr.gemm->in[j]->op != OP_CONST && gr.leaf_of[gr.gemm->in[j]->id] < 0) {
                gr.leaf_of[gr.gemm->in[j]->id] = gr.nleaves;
                gr.leaves[gr.nleaves++] = gr.gemm->in[j];
            }
        check(gr.gemm == sink || ir_shape_eq(&gr.gemm->shape, &sink->shape));
    }
    if (sink != gr.gemm)
        collect_leaves(c, &gr, sink);
    LLVMValueRef fn = cg_kernel_begin(c, step, gr.leaves, gr.nleaves);
    gr.out = LLVMGetParam(fn, 0);
    gr.ptrs = arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)(gr.nleaves + 1));
    for (int i = 0; i < gr.nleaves; i++)
        gr.ptrs[i] = LLVMGetParam(fn, (unsigned)i + 1);
    EltCtx e;
    if (gr.gemm && gr.gemm->op == OP_BATCH_NORM) {
        /* the activation on each value before it is stored */
        TailCtx tc = {.gr = &gr, .sink = sink};
        CgChain chain = {.apply = chain_apply, .vals = gr.ptrs, .nvals = gr.nleaves, .ctx = &tc};
        LLVMValueRef ins[5];
        check(gr.gemm->nin == 5);
        for (int j = 0; j < 5; j++)
            ins[j] = gr.ptrs[gr.leaf_of[gr.gemm->in[j]->id]];
        cg_emit_batch_norm(c, gr.gemm, gr.out, ins, &chain);
    } else if (gr.gemm && op_info[gr.gemm->op].kind == K_CONV) {
        /* the epilogue per image, right after the image's convolution */
        check(sink != gr.gemm);
        CgNest *n = eltwise_nest(c, &gr, sink, true, false, &e);
        bool scratch = c->plan->scratch_offset[step->id] >= 0;
        cg_emit_conv(c, gr.gemm, gr.ptrs[gr.leaf_of[gr.gemm->in[0]->id]],
                     gr.ptrs[gr.leaf_of[gr.gemm->in[1]->id]], gr.out,
                     scratch ? cg_kernel_scratch(c, gr.nleaves) : NULL, nest_image, n);
    } else {
        bool done = sink == gr.gemm;
        if (gr.gemm) {
            /* cut along k (cg_gemm_splits_k) in the training step only:
             * there it keeps each core's half of the weights its own
             * from the update to the next step's forward; inference
             * updates nothing, and a cut into rows needs no add of the
             * halves (the MNIST MLP's forward at 2 threads: 84 -> 80 us) */
            bool part = c->training && c->plan->scratch_offset[step->id] >= 0;
            TailCtx tc = {.gr = &gr, .sink = sink};
            CgEpilogue epi;
            done |= cg_emit_matmul(c, gr.gemm, gr.ptrs[gr.leaf_of[gr.gemm->in[0]->id]],
                                   gr.ptrs[gr.leaf_of[gr.gemm->in[1]->id]], gr.out,
                                   part ? cg_kernel_scratch(c, gr.nleaves) : NULL,
                                   tail_epilogue(c, step, &tc, &epi));
        }
        if (!done)
            cg_nest_start(c, eltwise_nest(c, &gr, sink, false, false, &e), NULL);
    }
    cg_kernel_end(c);
    for (int i = 0; i < gr.nleaves; i++)
        gr.leaf_of[gr.leaves[i]->id] = -1;
    return fn;
}
