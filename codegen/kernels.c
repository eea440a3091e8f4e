/*
 * Kernels: one internal LLVM function per plan step, `NAME.kID(out,
 * in..., batch)`, written as plain loop nests over run-time extents so
 * that LLVM's loop vectorizer can take them (out is noalias when the plan
 * keeps it apart from every input).
 *
 * Elementwise groups (a root and the nodes pass_fuse folded into it) are
 * one loop nest that evaluates the whole expression per element. Operands
 * broadcast with NumPy rules through per-dimension strides (0 along a
 * broadcast dimension); adjacent dimensions where every operand agrees on
 * broadcasting are merged first, so same-shape operands become one flat
 * loop and a bias add two loops with a contiguous inner one. A group that
 * contains a matrix product computes the product into the output first
 * and then applies the rest of the group in place (its epilogue); one that
 * contains a convolution runs the convolution's loop over images
 * (kernels_nn.c) and the same epilogue nest on each image right after it.
 *
 * Matrix products go through dlrt_gemm_f32/f64 (a loop over the broadcast
 * leading dimensions); i32 products are naive loops. Softmax, reductions,
 * losses and data movement are loop nests with accumulators in allocas
 * (promoted to registers by the optimizer).
 */
#include <math.h>
#include <string.h>

#include "cg.h"

/* ---- nests of loops over run-time extents ---------------------------------- */

/* Contiguous element strides of a shape. */
static void strides_of(Cg *c, const Shape *s, LLVMValueRef *st)
{
    LLVMValueRef acc = cg_i64(c, 1);
    for (int d = s->rank - 1; d >= 0; d--) {
        st[d] = acc;
        acc = LLVMBuildNSWMul(c->b, acc, cg_dim(c, s->d[d]), "");
    }
}

/* ---- kernel functions ------------------------------------------------------ */

static bool overlaps(const Cg *c, Node *a, Node *b)
{
    const MemPlan *p = c->plan;
    int64_t oa = p->offset[a->id], ob = p->offset[b->id];
    if (a == b)
        return true;
    if (oa < 0 || ob < 0)
        return false;
    return oa < ob + p->bytes[b->id] && ob < oa + p->bytes[a->id];
}

static LLVMValueRef kernel_begin(Cg *c, Node *step, Node **ins, int nin)
{
    /* a step with scratch memory takes its address next (cg_kernel_scratch),
     * one that draws random numbers the step's key last (cg_step_draws) */
    bool scratch = c->plan->scratch_offset[step->id] >= 0, draws = cg_step_draws(c, step);
    LLVMTypeRef *pt = arena_alloc(c->g->arena, sizeof *pt * (size_t)(nin + 4));
    for (int i = 0; i <= nin; i++)
        pt[i] = c->ptr;
    pt[nin + 1] = c->i64;
    pt[nin + 2] = c->ptr;
    pt[nin + 2 + scratch] = c->i64;
    char *name = arena_printf(c->g->arena, "%s.%sk%d.%s", c->g->name, c->tag, step->id,
                              op_info[step->op].text);
    LLVMValueRef fn = LLVMAddFunction(
        c->mod, name, LLVMFunctionType(c->voidt, pt, (unsigned)nin + 2 + scratch + draws, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    const char *fattrs[] = {"nounwind", "nofree", "nosync", "willreturn", "noinline"};
    for (int i = 0; i < countof(fattrs); i++)
        LLVMAddAttributeAtIndex(
            fn, LLVMAttributeFunctionIndex,
            LLVMCreateEnumAttribute(
                c->ctx, LLVMGetEnumAttributeKindForName(fattrs[i], strlen(fattrs[i])), 0));
    /* Distinct buffers: the output never shares bytes with an input, so
     * every pointer may be noalias (inputs are only read). */
    Node *out = cg_storage(c, step);
    bool apart = true;
    for (int i = 0; i < nin; i++)
        apart &= !overlaps(c, out, cg_storage(c, ins[i]));
    if (apart) {
        unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
        for (int i = 0; i <= nin; i++)
            LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(c->ctx, na, 0));
    }
    if (scratch) /* a slot of its own, live during this step only */
        LLVMAddAttributeAtIndex(
            fn, (unsigned)nin + 3,
            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
    c->fn = fn;
    c->batch = LLVMGetParam(fn, (unsigned)nin + 1);
    c->rng_key = draws ? LLVMGetParam(fn, (unsigned)nin + 2 + scratch) : NULL;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    return fn;
}

static void kernel_end(Cg *c)
{
    LLVMBuildRetVoid(c->b);
}

LLVMValueRef cg_kernel_begin(Cg *c, Node *step, Node **ins, int nin)
{
    return kernel_begin(c, step, ins, nin);
}

LLVMValueRef cg_kernel_scratch(Cg *c, int nin)
{
    check(LLVMCountParams(c->fn) >= (unsigned)nin + 3);
    return LLVMGetParam(c->fn, (unsigned)nin + 2);
}

/* ---- scalar math ------------------------------------------------------------- */

static LLVMValueRef fc(Cg *c, DType t, double v)
{
    return cg_fconst(c, t, v);
}

static LLVMValueRef sigmoid(Cg *c, DType t, LLVMValueRef x)
{
    LLVMValueRef e = cg_intr1(c, "llvm.exp", t, LLVMBuildFNeg(c->b, x, ""));
    return LLVMBuildFDiv(c->b, fc(c, t, 1), LLVMBuildFAdd(c->b, fc(c, t, 1), e, ""), "");
}

/* log(1 + exp(x)) without overflow: max(x, 0) + log1p(exp(-|x|)). */
static LLVMValueRef softplus(Cg *c, DType t, LLVMValueRef x)
{
    LLVMValueRef na = LLVMBuildFNeg(c->b, cg_intr1(c, "llvm.fabs", t, x), "");
    LLVMValueRef l = cg_libm(c, "log1p", t, cg_intr1(c, "llvm.exp", t, na));
    return LLVMBuildFAdd(c->b, cg_max(c, t, x, fc(c, t, 0)), l, "");
}

static LLVMValueRef fgt(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFCmp(c->b, LLVMRealOGT, a, b, "");
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
    case OP_MAXIMUM: return i ? cg_max(c, t, x, a[1]) : cg_intr2(c, "llvm.maximum", t, x, a[1]);
    case OP_MINIMUM: return i ? cg_min(c, t, x, a[1]) : cg_intr2(c, "llvm.minimum", t, x, a[1]);
    case OP_NEG: return i ? LLVMBuildNeg(b, x, "") : LLVMBuildFNeg(b, x, "");
    case OP_SQRT: return cg_intr1(c, "llvm.sqrt", t, x);
    case OP_RSQRT: return LLVMBuildFDiv(b, fc(c, t, 1), cg_intr1(c, "llvm.sqrt", t, x), "");
    case OP_EXP: return cg_intr1(c, "llvm.exp", t, x);
    case OP_LOG: return cg_intr1(c, "llvm.log", t, x);
    case OP_ABS:
        if (i) {
            LLVMValueRef args[] = {x, LLVMConstInt(c->i1, 0, 0)};
            return cg_intrinsic(c, "llvm.abs", c->i32, args, 2);
        }
        return cg_intr1(c, "llvm.fabs", t, x);
    case OP_SQUARE: return i ? LLVMBuildMul(b, x, x, "") : LLVMBuildFMul(b, x, x, "");
    case OP_CLAMP:
        return cg_min(c, t, cg_max(c, t, x, fc(c, t, ir_attr_float(n, "lo"))),
                      fc(c, t, ir_attr_float(n, "hi")));
    case OP_RELU: return LLVMBuildSelect(b, fgt(c, x, fc(c, t, 0)), x, fc(c, t, 0), "");
    case OP_LEAKY_RELU:
        return LLVMBuildSelect(b, fgt(c, x, fc(c, t, 0)), x,
                               LLVMBuildFMul(b, x, fc(c, t, ir_attr_float(n, "alpha")), ""), "");
    case OP_ELU:
        return LLVMBuildSelect(
            b, fgt(c, x, fc(c, t, 0)), x,
            LLVMBuildFMul(b, cg_libm(c, "expm1", t, x), fc(c, t, ir_attr_float(n, "alpha")), ""),
            "");
    case OP_SIGMOID: return sigmoid(c, t, x);
    case OP_TANH: return cg_tanh(c, t, x);
    case OP_GELU: {
        LLVMValueRef inner;
        if (strcmp(ir_attr_str(n, "approximate"), "tanh") == 0) {
            LLVMValueRef x3 = LLVMBuildFMul(b, LLVMBuildFMul(b, x, x, ""), x, "");
            LLVMValueRef u = LLVMBuildFAdd(b, x, LLVMBuildFMul(b, fc(c, t, 0.044715), x3, ""), "");
            inner = cg_tanh(c, t, LLVMBuildFMul(b, fc(c, t, 0.7978845608028654), u, ""));
        } else {
            inner = cg_libm(c, "erf", t, LLVMBuildFMul(b, x, fc(c, t, 0.7071067811865476), ""));
        }
        LLVMValueRef h = LLVMBuildFMul(b, fc(c, t, 0.5), x, "");
        return LLVMBuildFMul(b, h, LLVMBuildFAdd(b, fc(c, t, 1), inner, ""), "");
    }
    case OP_SILU: return LLVMBuildFMul(b, x, sigmoid(c, t, x), "");
    case OP_SOFTPLUS: return softplus(c, t, x);
    /* backward primitives */
    case OP_GT:
    case OP_GE:
    case OP_EQ: {
        static const LLVMIntPredicate ip[] = {LLVMIntSGT, LLVMIntSGE, LLVMIntEQ};
        static const LLVMRealPredicate rp[] = {LLVMRealOGT, LLVMRealOGE, LLVMRealOEQ};
        int k = n->op == OP_GT ? 0 : n->op == OP_GE ? 1 : 2;
        LLVMValueRef cmp = i ? LLVMBuildICmp(b, ip[k], x, a[1], "")
                             : LLVMBuildFCmp(b, rp[k], x, a[1], ""); /* NaN compares false */
        return LLVMBuildSelect(b, cmp, fc(c, t, 1), fc(c, t, 0), "");
    }
    case OP_SIGN: {
        /* (x > 0) - (x < 0): 0 for both zeros and for NaN */
        LLVMValueRef pos =
            i ? LLVMBuildICmp(b, LLVMIntSGT, x, fc(c, t, 0), "") : fgt(c, x, fc(c, t, 0));
        LLVMValueRef neg = i ? LLVMBuildICmp(b, LLVMIntSLT, x, fc(c, t, 0), "")
                             : LLVMBuildFCmp(b, LLVMRealOLT, x, fc(c, t, 0), "");
        return LLVMBuildSelect(b, pos, fc(c, t, 1),
                               LLVMBuildSelect(b, neg, fc(c, t, -1), fc(c, t, 0), ""), "");
    }
    case OP_CAST: {
        DType from = n->in[0]->dtype;
        if (from == t)
            return x;
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
    case OP_GELU_GRAD: {
        /* dy * gelu'(x) */
        LLVMValueRef d;
        if (strcmp(ir_attr_str(n, "approximate"), "tanh") == 0) {
            /* u = k (x + 0.044715 x^3), th = tanh(u):
             * 0.5 (1 + th) + 0.5 x (1 - th^2) k (1 + 3 * 0.044715 x^2) */
            LLVMValueRef x2 = LLVMBuildFMul(b, x, x, "");
            LLVMValueRef u = LLVMBuildFMul(
                b, fc(c, t, 0.7978845608028654),
                LLVMBuildFAdd(b, x,
                              LLVMBuildFMul(b, fc(c, t, 0.044715), LLVMBuildFMul(b, x2, x, ""), ""),
                              ""),
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
                    cg_libm(c, "erf", t, LLVMBuildFMul(b, x, fc(c, t, 0.7071067811865476), "")),
                    ""),
                "");
            LLVMValueRef e = cg_intr1(
                c, "llvm.exp", t, LLVMBuildFMul(b, fc(c, t, -0.5), LLVMBuildFMul(b, x, x, ""), ""));
            LLVMValueRef pdf = LLVMBuildFMul(b, e, fc(c, t, 0.3989422804014327), "");
            d = LLVMBuildFAdd(b, cdf, LLVMBuildFMul(b, x, pdf, ""), "");
        }
        return LLVMBuildFMul(b, a[1], d, "");
    }
    case OP_ELU_GRAD: {
        LLVMValueRef neg = LLVMBuildFMul(b, a[1],
                                         LLVMBuildFMul(b, fc(c, t, ir_attr_float(n, "alpha")),
                                                       cg_intr1(c, "llvm.exp", t, x), ""),
                                         "");
        return LLVMBuildSelect(b, fgt(c, x, fc(c, t, 0)), a[1], neg, "");
    }
    case OP_DROPOUT:
    case OP_BROADCAST_TO: return x; /* identity in inference; broadcasting is in the strides */
    default: die("codegen: %s is not elementwise", op_info[n->op].text);
    }
}

/* ---- matrix products ------------------------------------------------------ */

static void matmul_body(Cg *c, CgNest *n, LLVMValueRef *offs)
{
    Node *m = n->ctx;
    DType t = m->dtype;
    LLVMValueRef *p = (LLVMValueRef *)n->st + n->nops * IR_MAX_RANK; /* a, b, out, M, N, K */
    LLVMValueRef a = cg_gep(c, t, p[0], offs[0]), bb = cg_gep(c, t, p[1], offs[1]),
                 o = cg_gep(c, t, p[2], offs[2]);
    LLVMValueRef M = p[3], N = p[4], K = p[5];
    if (t == DT_I32) {
        CgLoop li, lj, lk;
        LLVMValueRef i = cg_loop_begin(c, M, &li);
        LLVMValueRef j = cg_loop_begin(c, N, &lj);
        LLVMValueRef acc = cg_alloca(c, c->i32, "acc");
        LLVMBuildStore(c->b, LLVMConstInt(c->i32, 0, 0), acc);
        LLVMValueRef k = cg_loop_begin(c, K, &lk);
        LLVMValueRef x =
            cg_load(c, t, a, LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, i, K, ""), k, ""));
        LLVMValueRef y =
            cg_load(c, t, bb, LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, k, N, ""), j, ""));
        LLVMBuildStore(c->b,
                       LLVMBuildAdd(c->b, LLVMBuildLoad2(c->b, c->i32, acc, ""),
                                    LLVMBuildMul(c->b, x, y, ""), ""),
                       acc);
        cg_loop_end(c, &lk);
        cg_store(c, t, LLVMBuildLoad2(c->b, c->i32, acc, ""), o,
                 LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, i, N, ""), j, ""));
        cg_loop_end(c, &lj);
        cg_loop_end(c, &li);
        return;
    }
    LLVMTypeRef ft = cg_type(c, t);
    LLVMTypeRef pt[] = {c->i32, c->i32, c->i64, c->i64, c->i64, ft,    c->ptr,
                        c->i64, c->ptr, c->i64, ft,     c->ptr, c->i64};
    LLVMValueRef z = LLVMConstInt(c->i32, 0, 0);
    LLVMValueRef args[] = {z, z, M, N, K, fc(c, t, 1), a, K, bb, N, fc(c, t, 0), o, N};
    cg_call(c, t == DT_F32 ? "dlrt_gemm_f32" : "dlrt_gemm_f64", c->voidt, pt, 13, args);
}

/* out = a @ b with NumPy's rules, in the current kernel function. */
static void emit_matmul(Cg *c, Node *m, LLVMValueRef a, LLVMValueRef b, LLVMValueRef out)
{
    const Shape *sa = &m->in[0]->shape, *sb = &m->in[1]->shape, *so = &m->shape;
    bool a1 = sa->rank == 1, b1 = sb->rank == 1;
    LLVMValueRef M = a1 ? cg_i64(c, 1) : cg_dim(c, sa->d[sa->rank - 2]);
    LLVMValueRef K = cg_dim(c, sa->d[sa->rank - 1]);
    LLVMValueRef N = b1 ? cg_i64(c, 1) : cg_dim(c, sb->d[sb->rank - 1]);
    int la = a1 ? 0 : sa->rank - 2, lb = b1 ? 0 : sb->rank - 2;
    int lo = so->rank - (a1 ? 0 : 1) - (b1 ? 0 : 1);
    check(lo >= 0 && lo >= la && lo >= lb);
    CgNest *n = cg_nest_new(c, lo, 3);
    /* room after the strides for the six extra values matmul_body needs */
    LLVMValueRef *st = arena_alloc(c->g->arena, sizeof *st * (size_t)(3 * IR_MAX_RANK + 6));
    n->st = st;
    LLVMValueRef MK = LLVMBuildNSWMul(c->b, M, K, ""), KN = LLVMBuildNSWMul(c->b, K, N, ""),
                 MN = LLVMBuildNSWMul(c->b, M, N, "");
    LLVMValueRef acc_a = MK, acc_b = KN, acc_o = MN;
    for (int d = lo - 1; d >= 0; d--) {
        Dim od = so->d[d];
        n->ext[d] = cg_dim(c, od);
        int da = d - (lo - la), db = d - (lo - lb);
        bool ba = da < 0 || (sa->d[da].n == 1 && !sa->d[da].batch && !(od.n == 1 && !od.batch));
        bool bbd = db < 0 || (sb->d[db].n == 1 && !sb->d[db].batch && !(od.n == 1 && !od.batch));
        st[0 * IR_MAX_RANK + d] = ba ? cg_i64(c, 0) : acc_a;
        st[1 * IR_MAX_RANK + d] = bbd ? cg_i64(c, 0) : acc_b;
        st[2 * IR_MAX_RANK + d] = acc_o;
        if (da >= 0)
            acc_a = LLVMBuildNSWMul(c->b, acc_a, cg_dim(c, sa->d[da]), "");
        if (db >= 0)
            acc_b = LLVMBuildNSWMul(c->b, acc_b, cg_dim(c, sb->d[db]), "");
        acc_o = LLVMBuildNSWMul(c->b, acc_o, n->ext[d], "");
    }
    LLVMValueRef *extra = st + 3 * IR_MAX_RANK;
    extra[0] = a;
    extra[1] = b;
    extra[2] = out;
    extra[3] = M;
    extra[4] = N;
    extra[5] = K;
    n->body = matmul_body;
    n->ctx = m;
    cg_nest_start(c, n, NULL);
}

/* ---- training-mode randomness -------------------------------------------
 * Training-mode dropout keeps element i of dropout node D when
 * u(key, D, i) >= p and scales it by 1 / (1 - p); dropout_grad(D, dy)
 * recomputes the same mask instead of saving it. Stochastic pooling draws
 * u(key, P, i) for output element i of pool node P in the same way
 * (kernels_nn.c). u is a counter-based uniform: splitmix64's finalizer of
 * a per-node key plus (i + 1) times the golden-ratio increment, its top 24
 * (f32) or 53 (f64) bits. The step's key (cg_step_key) mixes the
 * instance's seed with its step counter, so the draws depend on (seed,
 * step, node, element) only: reproducible, the same across resumes, the
 * same for every compute_gradients call within a step, and the same
 * element of a batch sees the same draw whatever the batch size. Member or
 * root, a dropout value's index is the group output's flat index (members
 * have the root's exact shape). */

LLVMValueRef cg_mix64(Cg *c, LLVMValueRef z)
{
    LLVMBuilderRef b = c->b;
    static const uint64_t mul[2] = {0xbf58476d1ce4e5b9u, 0x94d049bb133111ebu};
    static const int shift[3] = {30, 27, 31};
    for (int k = 0; k < 3; k++) {
        z = LLVMBuildXor(b, z, LLVMBuildLShr(b, z, cg_i64(c, shift[k]), ""), "");
        if (k < 2)
            z = LLVMBuildMul(b, z, LLVMConstInt(c->i64, mul[k], 0), "");
    }
    return z;
}

static const uint64_t golden = 0x9e3779b97f4a7c15u;

LLVMValueRef cg_uniform(Cg *c, const Node *site, LLVMValueRef index, DType t)
{
    check(c->rng_key);
    LLVMBuilderRef b = c->b;
    LLVMValueRef node_key = cg_mix64(
        c, LLVMBuildXor(b, c->rng_key, LLVMConstInt(c->i64, (uint64_t)site->id * golden, 0), ""));
    LLVMValueRef ctr = LLVMBuildMul(b, LLVMBuildAdd(b, index, cg_i64(c, 1), ""),
                                    LLVMConstInt(c->i64, golden, 0), "");
    LLVMValueRef h = cg_mix64(c, LLVMBuildAdd(b, node_key, ctr, ""));
    int bits = t == DT_F32 ? 24 : 53;
    return LLVMBuildFMul(
        b, LLVMBuildUIToFP(b, LLVMBuildLShr(b, h, cg_i64(c, 64 - bits), ""), cg_type(c, t), ""),
        cg_fconst(c, t, ldexp(1.0, -bits)), "");
}

static LLVMValueRef dropout_mask(Cg *c, Node *d, LLVMValueRef v, LLVMValueRef index)
{
    check(d->op == OP_DROPOUT);
    LLVMBuilderRef b = c->b;
    DType t = d->dtype;
    double p = ir_attr_float(d, "p");
    LLVMValueRef u = cg_uniform(c, d, index, t);
    LLVMValueRef keep = LLVMBuildFCmp(b, LLVMRealOGE, u, cg_fconst(c, t, p), "");
    return LLVMBuildSelect(b, keep, LLVMBuildFMul(b, v, cg_fconst(c, t, 1.0 / (1.0 - p)), ""),
                           cg_fconst(c, t, 0), "");
}

bool cg_step_draws(const Cg *c, const Node *step)
{
    if (!c->training)
        return false;
    for (int i = 0; i < c->g->nodes.n; i++) {
        int op = c->g->nodes.v[i]->op;
        if (c->root[i] == step && (op_info[op].flags & OPF_RANDOM || op == OP_DROPOUT_GRAD ||
                                   op == OP_STOCHASTIC_POOL2D_GRAD))
            return true;
    }
    return false;
}

LLVMValueRef cg_step_key(Cg *c, LLVMValueRef m)
{
    LLVMValueRef seed = LLVMBuildLoad2(c->b, c->i64, cg_instance_field(c, m, CG_INST_SEED), "");
    LLVMValueRef step = LLVMBuildLoad2(c->b, c->i64, cg_instance_field(c, m, CG_INST_STEP), "");
    return cg_mix64(c, LLVMBuildXor(c->b, seed, cg_mix64(c, step), ""));
}

/* ---- elementwise groups ------------------------------------------------------ */

typedef struct {
    Node *root, *gemm;
    int nleaves;
    Node **leaves;      /* distinct non-member, non-const inputs */
    LLVMValueRef *ptrs; /* by leaf */
    int *leaf_of;       /* by node id: leaf index, -1 */
    DType *ltype;
    LLVMValueRef out;
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
        return cg_fconst(c, x->dtype, ir_attr_float(x, "value"));
    if (x == gr->gemm)
        return cg_load(c, x->dtype, gr->out, out_off);
    if (!is_member(c, gr, x)) {
        int k = gr->leaf_of[x->id];
        return cg_load(c, x->dtype, gr->ptrs[k], offs[k]);
    }
    LLVMValueRef a[8];
    check(x->nin <= 8);
    for (int i = 0; i < x->nin; i++)
        a[i] = eval(c, gr, x->in[i], offs, out_off);
    if (c->training && x->op == OP_DROPOUT)
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

/* The loop nest that evaluates the group's value (sink) over its shape.
 * Adjacent dimensions where every operand broadcasts alike merge into one
 * loop; with split0, dimension 0 stays a loop of its own (level 0), so the
 * nest can run one index of it at a time (nest_image). */
static CgNest *eltwise_nest(Cg *c, Group *gr, Node *sink, bool split0, EltCtx *e)
{
    const Shape *r = &sink->shape;
    int nl = gr->nleaves;
    bool bc[64][IR_MAX_RANK], read[64] = {0};
    check(nl < 64);
    for (int k = 0; k < nl; k++)
        for (int d = 0; d < r->rank; d++)
            bc[k][d] = bcast_dim(&gr->leaves[k]->shape, r, d);
    /* the product's operands matter only where the epilogue reads them too */
    for (int i = 0; i < c->g->nodes.n; i++) {
        Node *x = c->g->nodes.v[i];
        if (x == sink || is_member(c, gr, x))
            for (int j = 0; j < x->nin; j++)
                if (x->in[j]->op != OP_CONST && gr->leaf_of[x->in[j]->id] >= 0)
                    read[gr->leaf_of[x->in[j]->id]] = true;
    }
    int rank = 0;
    int group_of[IR_MAX_RANK];
    for (int d = 0; d < r->rank; d++) {
        bool same = d > 0 && !(split0 && d == 1);
        for (int k = 0; k < nl && same; k++)
            same = !read[k] || bc[k][d] == bc[k][d - 1];
        group_of[d] = same ? rank - 1 : rank++;
    }
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

static LLVMValueRef k_eltwise(Cg *c, Node *step, Node ***in, int *nin)
{
    const Graph *g = c->g;
    Group gr = {.root = step};
    gr.leaf_of = arena_alloc(g->arena, sizeof(int) * (size_t)g->nodes.n);
    gr.leaves = arena_alloc(g->arena, sizeof(Node *) * (size_t)(g->nodes.n + 1));
    for (int i = 0; i < g->nodes.n; i++)
        gr.leaf_of[i] = -1;
    /* the group: members, its matrix product, and the sink (the value) */
    bool *used = arena_alloc(g->arena, (size_t)g->nodes.n);
    for (int i = 0; i < g->nodes.n; i++) {
        Node *x = g->nodes.v[i];
        if (c->root[i] != step || x->op == OP_CONST)
            continue;
        if (op_info[x->op].kind == K_GEMM || op_info[x->op].kind == K_CONV) {
            check(!gr.gemm);
            gr.gemm = x;
        } else if (op_info[x->op].kind != K_ELTWISE && x->op != OP_BROADCAST_TO) {
            die("codegen: cannot fuse %s into %s", op_info[x->op].text, op_info[step->op].text);
        }
        for (int j = 0; j < x->nin; j++)
            used[x->in[j]->id] = true;
    }
    Node *sink = NULL;
    for (int i = 0; i < g->nodes.n; i++)
        if (c->root[i] == step && g->nodes.v[i]->op != OP_CONST && !used[i]) {
            check(!sink);
            sink = g->nodes.v[i];
        }
    check(sink);
    if (gr.gemm) {
        for (int j = 0; j < 2; j++)
            if (gr.gemm->in[j]->op != OP_CONST && gr.leaf_of[gr.gemm->in[j]->id] < 0) {
                gr.leaf_of[gr.gemm->in[j]->id] = gr.nleaves;
                gr.leaves[gr.nleaves++] = gr.gemm->in[j];
            }
        check(gr.gemm == sink || ir_shape_eq(&gr.gemm->shape, &sink->shape));
    }
    if (sink != gr.gemm)
        collect_leaves(c, &gr, sink);
    *in = gr.leaves;
    *nin = gr.nleaves;
    LLVMValueRef fn = kernel_begin(c, step, gr.leaves, gr.nleaves);
    gr.out = LLVMGetParam(fn, 0);
    gr.ptrs = arena_alloc(g->arena, sizeof(LLVMValueRef) * (size_t)(gr.nleaves + 1));
    for (int i = 0; i < gr.nleaves; i++)
        gr.ptrs[i] = LLVMGetParam(fn, (unsigned)i + 1);
    EltCtx e;
    if (gr.gemm && op_info[gr.gemm->op].kind == K_CONV) {
        /* the epilogue per image, right after the image's convolution */
        check(sink != gr.gemm);
        CgNest *n = eltwise_nest(c, &gr, sink, true, &e);
        bool scratch = c->plan->scratch_offset[step->id] >= 0;
        cg_emit_conv(c, gr.gemm, gr.ptrs[gr.leaf_of[gr.gemm->in[0]->id]],
                     gr.ptrs[gr.leaf_of[gr.gemm->in[1]->id]], gr.out,
                     scratch ? cg_kernel_scratch(c, gr.nleaves) : NULL, nest_image, n);
    } else {
        if (gr.gemm)
            emit_matmul(c, gr.gemm, gr.ptrs[gr.leaf_of[gr.gemm->in[0]->id]],
                        gr.ptrs[gr.leaf_of[gr.gemm->in[1]->id]], gr.out);
        if (sink != gr.gemm)
            cg_nest_start(c, eltwise_nest(c, &gr, sink, false, &e), NULL);
    }
    kernel_end(c);
    return fn;
}

/* ---- softmax ------------------------------------------------------------------ */

static LLVMValueRef k_softmax(Cg *c, Node *n)
{
    Node *x = n->in[0];
    LLVMValueRef fn = kernel_begin(c, n, n->in, 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    int axis = (int)ir_attr_int(n, "axis");
    Shape outer = {0}, inner = {0};
    for (int d = 0; d < axis; d++)
        outer.d[outer.rank++] = x->shape.d[d];
    for (int d = axis + 1; d < x->shape.rank; d++)
        inner.d[inner.rank++] = x->shape.d[d];
    LLVMValueRef O = cg_numel(c, &outer), I = cg_numel(c, &inner), N = cg_dim(c, x->shape.d[axis]);
    LLVMValueRef mx = cg_alloca(c, ty, "max"), sum = cg_alloca(c, ty, "sum");
    CgLoop lo, li, lj;
    LLVMValueRef o = cg_loop_begin(c, O, &lo);
    LLVMValueRef i = cg_loop_begin(c, I, &li);
    LLVMValueRef base =
        LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, LLVMBuildNSWMul(c->b, o, N, ""), I, ""), i, "");
#define AT(j) LLVMBuildNSWAdd(c->b, base, LLVMBuildNSWMul(c->b, j, I, ""), "")
    LLVMBuildStore(c->b, fc(c, t, -INFINITY), mx);
    LLVMValueRef j = cg_loop_begin(c, N, &lj);
    LLVMBuildStore(c->b, cg_max(c, t, LLVMBuildLoad2(c->b, ty, mx, ""), cg_load(c, t, src, AT(j))),
                   mx);
    cg_loop_end(c, &lj);
    LLVMValueRef m = LLVMBuildLoad2(c->b, ty, mx, "");
    LLVMBuildStore(c->b, fc(c, t, 0), sum);
    j = cg_loop_begin(c, N, &lj);
    LLVMValueRef e =
        cg_intr1(c, "llvm.exp", t, LLVMBuildFSub(c->b, cg_load(c, t, src, AT(j)), m, ""));
    if (n->op == OP_SOFTMAX)
        cg_store(c, t, e, out, AT(j));
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, sum, ""), e, ""), sum);
    cg_loop_end(c, &lj);
    LLVMValueRef s = LLVMBuildLoad2(c->b, ty, sum, "");
    if (n->op == OP_SOFTMAX) {
        LLVMValueRef inv = LLVMBuildFDiv(c->b, fc(c, t, 1), s, "");
        j = cg_loop_begin(c, N, &lj);
        cg_store(c, t, LLVMBuildFMul(c->b, cg_load(c, t, out, AT(j)), inv, ""), out, AT(j));
        cg_loop_end(c, &lj);
    } else {
        LLVMValueRef lse = LLVMBuildFAdd(c->b, m, cg_intr1(c, "llvm.log", t, s), "");
        j = cg_loop_begin(c, N, &lj);
        cg_store(c, t, LLVMBuildFSub(c->b, cg_load(c, t, src, AT(j)), lse, ""), out, AT(j));
        cg_loop_end(c, &lj);
    }
#undef AT
    cg_loop_end(c, &li);
    cg_loop_end(c, &lo);
    kernel_end(c);
    return fn;
}

/* ---- reductions ---------------------------------------------------------------- */

typedef struct {
    Node *n;
    LLVMValueRef src, out, acc, acc2, idx, count, mean;
    int pass; /* var: 0 sums, 1 squared deviations */
} RedCtx;

static void reduce_inner(Cg *c, CgNest *nest, LLVMValueRef *offs)
{
    RedCtx *r = nest->ctx;
    DType t = r->n->in[0]->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef v = cg_load(c, t, r->src, offs[0]);
    LLVMValueRef a = LLVMBuildLoad2(c->b, ty, r->acc, "");
    bool i = t == DT_I32;
    switch (r->n->op) {
    case OP_SUM:
    case OP_MEAN:
        LLVMBuildStore(c->b, i ? LLVMBuildAdd(c->b, a, v, "") : LLVMBuildFAdd(c->b, a, v, ""),
                       r->acc);
        break;
    case OP_VAR:
        if (r->pass == 0) {
            LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, a, v, ""), r->acc);
        } else {
            LLVMValueRef d = LLVMBuildFSub(c->b, v, r->mean, "");
            LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, a, LLVMBuildFMul(c->b, d, d, ""), ""), r->acc);
        }
        break;
    case OP_MAX:
    case OP_MIN: {
        bool mx = r->n->op == OP_MAX;
        LLVMValueRef better =
            i ? LLVMBuildICmp(c->b, mx ? LLVMIntSGT : LLVMIntSLT, v, a, "")
              : LLVMBuildFCmp(c->b, mx ? LLVMRealUGT : LLVMRealULT, v, a, ""); /* NaN wins */
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, v, a, ""), r->acc);
        break;
    }
    case OP_ARGMAX: {
        LLVMValueRef k = LLVMBuildLoad2(c->b, c->i64, r->count, "");
        LLVMValueRef better = i ? LLVMBuildICmp(c->b, LLVMIntSGT, v, a, "")
                                : LLVMBuildFCmp(c->b, LLVMRealUGT, v, a, "");
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, v, a, ""), r->acc);
        LLVMBuildStore(
            c->b, LLVMBuildSelect(c->b, better, k, LLVMBuildLoad2(c->b, c->i64, r->idx, ""), ""),
            r->idx);
        LLVMBuildStore(c->b, LLVMBuildNSWAdd(c->b, k, cg_i64(c, 1), ""), r->count);
        break;
    }
    default: die("not a reduction");
    }
}

typedef struct {
    RedCtx *r;
    CgNest *inner;
    LLVMValueRef count; /* elements reduced into one output */
} RedOuter;

static void reduce_outer(Cg *c, CgNest *nest, LLVMValueRef *offs)
{
    RedOuter *ro = nest->ctx;
    RedCtx *r = ro->r;
    Node *n = r->n;
    DType t = n->in[0]->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef init;
    bool i = t == DT_I32;
    if (n->op == OP_MAX || n->op == OP_ARGMAX)
        init = i ? LLVMConstInt(c->i32, (unsigned long long)INT32_MIN, 1) : fc(c, t, -INFINITY);
    else if (n->op == OP_MIN)
        init = i ? LLVMConstInt(c->i32, INT32_MAX, 1) : fc(c, t, INFINITY);
    else
        init = i ? LLVMConstInt(c->i32, 0, 0) : fc(c, t, 0);
    if (n->op == OP_ARGMAX) {
        LLVMBuildStore(c->b, cg_i64(c, 0), r->idx);
        LLVMBuildStore(c->b, cg_i64(c, 0), r->count);
        /* the first element wins ties and a first NaN stays */
        init = LLVMBuildLoad2(c->b, ty, cg_gep(c, t, r->src, offs[0]), "");
    }
    LLVMBuildStore(c->b, init, r->acc);
    r->pass = 0;
    LLVMValueRef base[1] = {offs[0]};
    cg_nest_start(c, ro->inner, base);
    LLVMValueRef a = LLVMBuildLoad2(c->b, ty, r->acc, "");
    LLVMValueRef cnt = i ? NULL : LLVMBuildSIToFP(c->b, ro->count, ty, "");
    LLVMValueRef v = a;
    if (n->op == OP_MEAN) {
        v = LLVMBuildFDiv(c->b, a, cnt, "");
    } else if (n->op == OP_VAR) {
        r->mean = LLVMBuildFDiv(c->b, a, cnt, "");
        LLVMBuildStore(c->b, fc(c, t, 0), r->acc);
        r->pass = 1;
        cg_nest_start(c, ro->inner, base);
        LLVMValueRef dof =
            LLVMBuildFSub(c->b, cnt, fc(c, t, (double)ir_attr_int(n, "correction")), "");
        dof = cg_max(c, t, dof, fc(c, t, 0)); /* 0 -> inf/nan as PyTorch */
        v = LLVMBuildFDiv(c->b, LLVMBuildLoad2(c->b, ty, r->acc, ""), dof, "");
    } else if (n->op == OP_ARGMAX) {
        v = LLVMBuildTrunc(c->b, LLVMBuildLoad2(c->b, c->i64, r->idx, ""), c->i32, "");
    }
    cg_store(c, n->dtype, v, r->out, offs[1]);
}

static LLVMValueRef k_reduce(Cg *c, Node *n)
{
    Node *x = n->in[0];
    LLVMValueRef fn = kernel_begin(c, n, n->in, 1);
    RedCtx r = {.n = n, .out = LLVMGetParam(fn, 0), .src = LLVMGetParam(fn, 1)};
    DType t = x->dtype;
    r.acc = cg_alloca(c, cg_type(c, t), "acc");
    r.idx = cg_alloca(c, c->i64, "idx");
    r.count = cg_alloca(c, c->i64, "count");
    bool red[IR_MAX_RANK] = {0};
    const Attr *ax = ir_attr(n, "axis");
    if (n->op == OP_ARGMAX) {
        if (ax)
            red[ax->i] = true;
        else
            for (int d = 0; d < x->shape.rank; d++)
                red[d] = true;
    } else {
        check(ax);
        for (int k = 0; k < ax->ints.n; k++)
            red[ax->ints.v[k].n] = true;
    }
    LLVMValueRef st[IR_MAX_RANK];
    strides_of(c, &x->shape, st);
    CgNest *outer = cg_nest_new(c, 0, 2), *inner = cg_nest_new(c, 0, 1);
    Shape kept = {0}, gone = {0};
    for (int d = 0; d < x->shape.rank; d++) {
        if (red[d]) {
            inner->ext[inner->rank] = cg_dim(c, x->shape.d[d]);
            inner->st[inner->rank++] = st[d];
            gone.d[gone.rank++] = x->shape.d[d];
        } else {
            outer->ext[outer->rank] = cg_dim(c, x->shape.d[d]);
            outer->st[outer->rank++] = st[d];
            kept.d[kept.rank++] = x->shape.d[d];
        }
    }
    LLVMValueRef ost[IR_MAX_RANK];
    strides_of(c, &kept, ost);
    for (int d = 0; d < outer->rank; d++)
        outer->st[IR_MAX_RANK + d] = ost[d];
    RedOuter ro = {&r, inner, cg_numel(c, &gone)};
    inner->body = reduce_inner;
    inner->ctx = &r;
    outer->body = reduce_outer;
    outer->ctx = &ro;
    cg_nest_start(c, outer, NULL);
    kernel_end(c);
    return fn;
}

/* ---- data movement ------------------------------------------------------------- */

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
    LLVMValueRef fn = kernel_begin(c, n, n->in, 1);
    memcpy_elems(c, n->dtype, LLVMGetParam(fn, 0), LLVMGetParam(fn, 1), cg_numel(c, &n->shape));
    kernel_end(c);
    return fn;
}

static LLVMValueRef k_transpose(Cg *c, Node *n)
{
    Node *x = n->in[0];
    LLVMValueRef fn = kernel_begin(c, n, n->in, 1);
    const Attr *perm = ir_attr(n, "perm");
    LLVMValueRef xs[IR_MAX_RANK], os[IR_MAX_RANK], ss[IR_MAX_RANK], ext[IR_MAX_RANK];
    strides_of(c, &x->shape, xs);
    strides_of(c, &n->shape, os);
    for (int d = 0; d < n->shape.rank; d++) {
        ss[d] = xs[perm->ints.v[d].n];
        ext[d] = cg_dim(c, n->shape.d[d]);
    }
    copy_strided(c, n->dtype, n->shape.rank, ext, LLVMGetParam(fn, 0), cg_i64(c, 0), os,
                 LLVMGetParam(fn, 1), cg_i64(c, 0), ss);
    kernel_end(c);
    return fn;
}

static LLVMValueRef k_concat(Cg *c, Node *n)
{
    LLVMValueRef fn = kernel_begin(c, n, n->in, n->nin);
    int axis = (int)ir_attr_int(n, "axis");
    bool stack = n->op == OP_STACK;
    LLVMValueRef os[IR_MAX_RANK];
    strides_of(c, &n->shape, os);
    LLVMValueRef at = cg_i64(c, 0);
    for (int k = 0; k < n->nin; k++) {
        Node *x = n->in[k];
        LLVMValueRef xs[IR_MAX_RANK], ss[IR_MAX_RANK], ext[IR_MAX_RANK];
        strides_of(c, &x->shape, xs);
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
    kernel_end(c);
    return fn;
}

static LLVMValueRef k_fill(Cg *c, Node *n)
{
    LLVMValueRef fn = kernel_begin(c, n, NULL, 0);
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, cg_numel(c, &n->shape), &l);
    cg_store(c, n->dtype, fc(c, n->dtype, n->op == OP_ONES ? 1 : 0), LLVMGetParam(fn, 0), i);
    cg_loop_end(c, &l);
    kernel_end(c);
    return fn;
}

static LLVMValueRef k_one_hot(Cg *c, Node *n)
{
    LLVMValueRef fn = kernel_begin(c, n, n->in, 1);
    int64_t depth = ir_attr_int(n, "n");
    CgLoop li, lj;
    LLVMValueRef i = cg_loop_begin(c, cg_numel(c, &n->in[0]->shape), &li);
    LLVMValueRef lab = LLVMBuildSExt(c->b, cg_load(c, DT_I32, LLVMGetParam(fn, 1), i), c->i64, "");
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, depth), &lj);
    LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, lab, j, "");
    LLVMValueRef v = LLVMBuildSelect(c->b, hit, fc(c, n->dtype, 1), fc(c, n->dtype, 0), "");
    cg_store(c, n->dtype, v, LLVMGetParam(fn, 0),
             LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, i, cg_i64(c, depth), ""), j, ""));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);
    kernel_end(c);
    return fn;
}

/* Per input dimension of a slice: element count, first index and step. */
static void slice_geometry(Cg *c, const Node *n, const Node *x, LLVMValueRef *count,
                           LLVMValueRef *begin, int64_t *step)
{
    const Attr *b = ir_attr(n, "begin"), *e = ir_attr(n, "end"), *s = ir_attr(n, "step");
    for (int d = 0; d < x->shape.rank; d++) {
        check(d < b->ints.n && d < e->ints.n && d < s->ints.n);
        int64_t st = s->ints.v[d].n;
        step[d] = st;
        begin[d] = cg_dim(c, b->ints.v[d]);
        Dim ed = e->ints.v[d];
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
    LLVMValueRef fn = kernel_begin(c, n, n->in, n->nin);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    int r = x->shape.rank;
    LLVMValueRef count[IR_MAX_RANK], begin[IR_MAX_RANK], xs[IR_MAX_RANK], view[IR_MAX_RANK];
    int64_t step[IR_MAX_RANK];
    slice_geometry(c, n, x, count, begin, step);
    strides_of(c, &x->shape, xs);
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
        kernel_end(c);
        return fn;
    }
    if (cg_storage(c, n) != cg_storage(c, x))
        memcpy_elems(c, n->dtype, out, src, cg_numel(c, &x->shape));
    /* the value broadcasts against the slice without its squeezed dims */
    Node *v = n->in[1];
    const Attr *sq = ir_attr(n, "squeeze");
    bool squeezed[IR_MAX_RANK] = {0};
    for (int k = 0; sq && k < sq->ints.n; k++)
        squeezed[sq->ints.v[k].n] = true;
    int kept[IR_MAX_RANK], nk = 0;
    for (int d = 0; d < r; d++)
        if (!squeezed[d])
            kept[nk++] = d;
    LLVMValueRef vs_full[IR_MAX_RANK], vst[IR_MAX_RANK];
    strides_of(c, &v->shape, vs_full);
    for (int d = 0; d < r; d++)
        vst[d] = cg_i64(c, 0);
    for (int j = 0; j < v->shape.rank; j++) {
        int d = kept[nk - v->shape.rank + j];
        Dim vd = v->shape.d[j];
        bool bc = vd.n == 1 && !vd.batch;
        vst[d] = bc ? cg_i64(c, 0) : vs_full[j];
    }
    copy_strided(c, n->dtype, r, count, out, base, view, LLVMGetParam(fn, 2), cg_i64(c, 0), vst);
    kernel_end(c);
    return fn;
}

/* ---- losses ------------------------------------------------------------------ */

static LLVMValueRef pair_loss(Cg *c, const Node *n, LLVMValueRef p, LLVMValueRef t_)
{
    DType t = n->dtype;
    LLVMBuilderRef b = c->b;
    if (n->op == OP_BINARY_CROSS_ENTROPY) {
        /* max(x, 0) - x*t + log1p(exp(-|x|)) */
        LLVMValueRef na = LLVMBuildFNeg(b, cg_intr1(c, "llvm.fabs", t, p), "");
        LLVMValueRef l = cg_libm(c, "log1p", t, cg_intr1(c, "llvm.exp", t, na));
        return LLVMBuildFAdd(
            b, LLVMBuildFSub(b, cg_max(c, t, p, fc(c, t, 0)), LLVMBuildFMul(b, p, t_, ""), ""), l,
            "");
    }
    LLVMValueRef d = LLVMBuildFSub(b, p, t_, "");
    LLVMValueRef ad = cg_intr1(c, "llvm.fabs", t, d);
    LLVMValueRef sq = LLVMBuildFMul(b, fc(c, t, 0.5), LLVMBuildFMul(b, d, d, ""), "");
    switch (n->op) {
    case OP_MSE: return LLVMBuildFMul(b, d, d, "");
    case OP_L1_LOSS: return ad;
    case OP_SMOOTH_L1_LOSS: {
        double beta = ir_attr_float(n, "beta");
        if (beta <= 0)
            return ad;
        LLVMValueRef small = LLVMBuildFCmp(b, LLVMRealOLT, ad, fc(c, t, beta), "");
        return LLVMBuildSelect(b, small, LLVMBuildFDiv(b, sq, fc(c, t, beta), ""),
                               LLVMBuildFSub(b, ad, fc(c, t, 0.5 * beta), ""), "");
    }
    case OP_HUBER_LOSS: {
        double delta = ir_attr_float(n, "delta");
        LLVMValueRef small = LLVMBuildFCmp(b, LLVMRealOLE, ad, fc(c, t, delta), "");
        return LLVMBuildSelect(
            b, small, sq,
            LLVMBuildFMul(b, fc(c, t, delta), LLVMBuildFSub(b, ad, fc(c, t, 0.5 * delta), ""), ""),
            "");
    }
    default: die("not a pair loss");
    }
}

static LLVMValueRef k_loss(Cg *c, Node *n)
{
    LLVMValueRef fn = kernel_begin(c, n, n->in, 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1), y = LLVMGetParam(fn, 2);
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    const char *red = ir_attr_str(n, "reduction");
    bool none = strcmp(red, "none") == 0;
    LLVMValueRef acc = cg_alloca(c, c->f64, "acc");
    LLVMBuildStore(c->b, LLVMConstReal(c->f64, 0), acc);
    LLVMValueRef total;
    CgLoop lo, li, lj;
    LLVMValueRef val, at;
    if (n->op == OP_CROSS_ENTROPY || n->op == OP_NLL_LOSS) {
        const Shape *s = &n->in[0]->shape;
        Shape inner = {0};
        for (int d = 2; d < s->rank; d++)
            inner.d[inner.rank++] = s->d[d];
        LLVMValueRef O = s->rank == 1 ? cg_i64(c, 1) : cg_dim(c, s->d[0]);
        LLVMValueRef C = cg_dim(c, s->d[s->rank == 1 ? 0 : 1]);
        LLVMValueRef I = cg_numel(c, &inner);
        total = LLVMBuildNSWMul(c->b, O, I, "");
        LLVMValueRef mx = cg_alloca(c, ty, "max"), sum = cg_alloca(c, ty, "sum");
        LLVMValueRef o = cg_loop_begin(c, O, &lo);
        LLVMValueRef i = cg_loop_begin(c, I, &li);
        at = LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, o, I, ""), i, "");
        LLVMValueRef base = LLVMBuildNSWAdd(
            c->b, LLVMBuildNSWMul(c->b, LLVMBuildNSWMul(c->b, o, C, ""), I, ""), i, "");
#define AT(j) LLVMBuildNSWAdd(c->b, base, LLVMBuildNSWMul(c->b, j, I, ""), "")
        LLVMValueRef lab = LLVMBuildSExt(c->b, cg_load(c, DT_I32, y, at), c->i64, "");
        LLVMValueRef ok = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, lab, cg_i64(c, 0), ""),
                                       LLVMBuildICmp(c->b, LLVMIntSLT, lab, C, ""), "");
        LLVMValueRef picked =
            cg_load(c, t, x, AT(LLVMBuildSelect(c->b, ok, lab, cg_i64(c, 0), "")));
        if (n->op == OP_NLL_LOSS) {
            val = LLVMBuildFNeg(c->b, picked, "");
        } else {
            LLVMBuildStore(c->b, fc(c, t, -INFINITY), mx);
            LLVMValueRef j = cg_loop_begin(c, C, &lj);
            LLVMBuildStore(
                c->b, cg_max(c, t, LLVMBuildLoad2(c->b, ty, mx, ""), cg_load(c, t, x, AT(j))), mx);
            cg_loop_end(c, &lj);
            LLVMValueRef m = LLVMBuildLoad2(c->b, ty, mx, "");
            LLVMBuildStore(c->b, fc(c, t, 0), sum);
            j = cg_loop_begin(c, C, &lj);
            LLVMValueRef e =
                cg_intr1(c, "llvm.exp", t, LLVMBuildFSub(c->b, cg_load(c, t, x, AT(j)), m, ""));
            LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, sum, ""), e, ""),
                           sum);
            cg_loop_end(c, &lj);
            LLVMValueRef lse = LLVMBuildFAdd(
                c->b, m, cg_intr1(c, "llvm.log", t, LLVMBuildLoad2(c->b, ty, sum, "")), "");
            val = LLVMBuildFSub(c->b, lse, picked, "");
        }
#undef AT
        /* an out-of-range label has no defined loss */
        val = LLVMBuildSelect(c->b, ok, val, fc(c, t, NAN), "");
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
    if (n->op == OP_CROSS_ENTROPY || n->op == OP_NLL_LOSS)
        cg_loop_end(c, &li);
    cg_loop_end(c, &lo);
    if (!none) {
        LLVMValueRef s = LLVMBuildLoad2(c->b, c->f64, acc, "");
        if (strcmp(red, "mean") == 0)
            s = LLVMBuildFDiv(c->b, s, LLVMBuildSIToFP(c->b, total, c->f64, ""), "");
        if (t != DT_F64)
            s = LLVMBuildFPTrunc(c->b, s, ty, "");
        cg_store(c, t, s, out, cg_i64(c, 0));
    }
    kernel_end(c);
    return fn;
}

/* ---- dispatch ------------------------------------------------------------------ */

LLVMValueRef cg_kernel(Cg *c, Node *step, Node ***in, int *nin)
{
    /* views share their input's bytes and need no code */
    if ((step->op == OP_RESHAPE || step->op == OP_FLATTEN) && cg_storage(c, step) != step)
        return NULL;
    *in = step->in;
    *nin = step->nin;
    switch (op_info[step->op].kind) {
    case K_ELTWISE:
    case K_GEMM: return k_eltwise(c, step, in, nin);
    case K_ROWWISE: return k_softmax(c, step);
    case K_REDUCE: return k_reduce(c, step);
    case K_LOSS: return k_loss(c, step);
    case K_CONV:
    case K_POOL:
    case K_NORM: return cg_kernel_nn(c, step);
    case K_SEQ: return cg_kernel_seq(c, step);
    default: break;
    }
    switch (step->op) {
    case OP_RESHAPE:
    case OP_FLATTEN: return k_copy(c, step);
    case OP_TRANSPOSE: return k_transpose(c, step);
    case OP_BROADCAST_TO: return k_eltwise(c, step, in, nin);
    case OP_CONCAT:
    case OP_STACK: return k_concat(c, step);
    case OP_ZEROS:
    case OP_ONES: *nin = 0; return k_fill(c, step);
    case OP_ONE_HOT: return k_one_hot(c, step);
    case OP_SLICE:
    case OP_SLICE_UPDATE: return k_slice(c, step);
    default:
        die("codegen: %s is not supported by native code generation yet", op_info[step->op].text);
    }
}
