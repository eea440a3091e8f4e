/*
 * The reduce family's kernels (passes/shape_reduce.c): matrix products,
 * softmax and log_softmax along an axis, and reductions.
 *
 * Matrix products go through dlrt_gemm_f32/f64 (a loop over the broadcast
 * leading dimensions), transpose_a/b passed on as GEMM's flags; i32
 * products are naive loops. A matmul is always
 * the head of an elementwise group (eltwise.c), which calls
 * cg_emit_matmul. Softmax and reductions are loop nests with accumulators
 * in allocas (promoted to registers by the optimizer).
 */
#include <math.h>

#include "cg_kernels.h"

/* ---- matrix products ------------------------------------------------------- */

/* matmul_body's node, and the epilogue of a single product (lo 0) */
typedef struct {
    Node *m;
    const CgEpilogue *epi;
    bool applied;
} MatmulCtx;

static void matmul_body(Cg *c, CgNest *n, LLVMValueRef *offs)
{
    MatmulCtx *mc = n->ctx;
    Node *m = mc->m;
    DType t = m->dtype;
    LLVMValueRef *p = (LLVMValueRef *)n->st + n->nops * IR_MAX_RANK; /* a, b, out, M, N, K, part */
    LLVMValueRef a = cg_gep(c, t, p[0], offs[0]), bb = cg_gep(c, t, p[1], offs[1]),
                 o = cg_gep(c, t, p[2], offs[2]);
    LLVMValueRef M = p[3], N = p[4], K = p[5];
    bool ta = ir_matmul_trans(m, 0), tb = ir_matmul_trans(m, 1);
    if (t == DT_I32) {
        CgLoop li, lj, lk;
        LLVMValueRef i = cg_loop_begin(c, M, &li);
        LLVMValueRef j = cg_loop_begin(c, N, &lj);
        LLVMValueRef acc = cg_alloca(c, c->i32, "acc");
        LLVMBuildStore(c->b, LLVMConstInt(c->i32, 0, 0), acc);
        LLVMValueRef k = cg_loop_begin(c, K, &lk);
        LLVMValueRef x =
            cg_load(c, t, a,
                    ta ? LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, k, M, ""), i, "")
                       : LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, i, K, ""), k, ""));
        LLVMValueRef y =
            cg_load(c, t, bb,
                    tb ? LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, j, K, ""), k, "")
                       : LLVMBuildNSWAdd(c->b, LLVMBuildNSWMul(c->b, k, N, ""), j, ""));
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
    const Shape *sb = &m->in[1]->shape;
    Dim dk = ir_matmul_inner(m), dn = sb->rank == 1 ? (Dim){.n = 1} : sb->d[sb->rank - 1 - tb];
    if (cg_small_gemm_rows(c, t, ta, tb, dk, dn)) {
        CgProduct pr = {.M = M,
                        .K = K,
                        .N = dn.n,
                        .a = a,
                        .lda = ta ? M : K,
                        .b = bb,
                        .out = o,
                        .ldo = N,
                        .ta = ta,
                        .tb = tb,
                        .part = p[6],
                        .kmax = ir_dim_max(c->g, dk),
                        .epi = mc->epi};
        mc->applied = cg_product(c, t, &pr);
        return;
    }
    cg_gemm(c, t, ta, tb, M, N, K, cg_fconst(c, t, 1), a, ta ? M : K, bb, tb ? K : N, 0, o, N);
}

bool cg_emit_matmul(Cg *c, Node *m, LLVMValueRef a, LLVMValueRef b, LLVMValueRef out,
                    LLVMValueRef part, const CgEpilogue *epi)
{
    const Shape *sa = &m->in[0]->shape, *sb = &m->in[1]->shape, *so = &m->shape;
    bool a1 = sa->rank == 1, b1 = sb->rank == 1;
    int ta = ir_matmul_trans(m, 0), tb = ir_matmul_trans(m, 1);
    LLVMValueRef M = a1 ? cg_i64(c, 1) : cg_dim(c, sa->d[sa->rank - 2 + ta]);
    LLVMValueRef K = cg_dim(c, ir_matmul_inner(m));
    LLVMValueRef N = b1 ? cg_i64(c, 1) : cg_dim(c, sb->d[sb->rank - 1 - tb]);
    int la = a1 ? 0 : sa->rank - 2, lb = b1 ? 0 : sb->rank - 2;
    int lo = so->rank - (a1 ? 0 : 1) - (b1 ? 0 : 1);
    check(lo >= 0 && lo >= la && lo >= lb);
    if (!ta && lb == 0 && la == lo) {
        /* [..., M, K] @ [K, N]: a and the output hold their matrices row
         * after row, so the leading dimensions fold into M and the product
         * is one GEMM, which libdlrt tiles across the threads, instead of
         * a loop of small ones (a Transformer's [B, T, D] @ [D, N]) */
        for (int d = 0; d < lo; d++)
            M = LLVMBuildNSWMul(c->b, M, cg_dim(c, so->d[d]), "");
        lo = la = 0;
    }
    CgNest *n = cg_nest_new(c, lo, 3);
    /* room after the strides for the seven extra values matmul_body needs */
    LLVMValueRef *st = arena_alloc(c->g->arena, sizeof *st * (size_t)(3 * IR_MAX_RANK + 7));
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
    extra[6] = part;
    MatmulCtx mc = {.m = m, .epi = lo == 0 ? epi : NULL};
    n->body = matmul_body;
    n->ctx = &mc;
    cg_nest_start(c, n, NULL);
    return mc.applied;
}

/* ---- softmax ------------------------------------------------------------------ */

static LLVMValueRef k_softmax(Cg *c, Node *n)
{
    Node *x = n->in[0];
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    /* the exps in zmm where there are, 4 vectors an iteration
     * (CG_MATH_INTERLEAVE): the GPT's softmax over 256 classes 670 ->
     * 453 us a call (492 in zmm alone, 607 interleaved alone) */
    cg_prefer_widest(c, fn);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    int axis = (int)attr_axis(n);
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
    LLVMValueRef j, m;
    if (inner.rank == 0) { /* a contiguous row: its maximum in vectors */
        m = cg_row_max(c, t, cg_gep(c, t, src, base), N);
    } else {
        LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), mx);
        j = cg_loop_begin(c, N, &lj);
        LLVMBuildStore(
            c->b, cg_max(c, t, LLVMBuildLoad2(c->b, ty, mx, ""), cg_load(c, t, src, AT(j))), mx);
        cg_loop_end(c, &lj);
        m = LLVMBuildLoad2(c->b, ty, mx, "");
    }
    /* e^(x - max) into out (log_softmax overwrites it below), then its
     * sum: apart, the exp loop vectorizes (a float sum in the same loop
     * would not, its order being fixed). A contiguous row of known
     * length is summed in lanes (cg_sum_row), else in order: in order,
     * the GPT's rows of 256 classes were 256 dependent additions, most
     * of its softmax's 860 us. */
    j = cg_loop_begin(c, N, &lj);
    cg_store(c, t, cg_exp(c, t, LLVMBuildFSub(c->b, cg_load(c, t, src, AT(j)), m, "")), out, AT(j));
    cg_loop_end_interleaved(c, &lj, CG_MATH_INTERLEAVE);
    LLVMValueRef s;
    if (inner.rank == 0 && LLVMIsAConstantInt(N)) {
        CgSum lanes = cg_sum_new(c, ty, LLVMConstIntGetSExtValue(N));
        s = cg_sum_row(c, t, &lanes, cg_gep(c, t, out, base), N);
    } else {
        LLVMBuildStore(c->b, cg_fconst(c, t, 0), sum);
        j = cg_loop_begin(c, N, &lj);
        LLVMBuildStore(
            c->b,
            LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, sum, ""), cg_load(c, t, out, AT(j)), ""),
            sum);
        cg_loop_end(c, &lj);
        s = LLVMBuildLoad2(c->b, ty, sum, "");
    }
    if (n->op == OP_SOFTMAX) {
        LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), s, "");
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
    cg_kernel_end(c);
    return fn;
}

/* ---- reductions ---------------------------------------------------------------- */

typedef struct {
    Node *n;
    LLVMValueRef src, out, acc2, idx, count, mean;
    int pass;  /* var: 0 sums, 1 squared deviations */
    CgSum acc; /* its run > 0: the last reduced dimensions, run elements
                * in a row, summed in acc's lanes */
} RedCtx;

static void reduce_inner(Cg *c, CgNest *nest, LLVMValueRef *offs)
{
    RedCtx *r = nest->ctx;
    DType t = r->n->in[0]->dtype;
    if (r->acc.run) {
        cg_sum_add_run(c, &r->acc, t, cg_gep(c, t, r->src, offs[0]), r->pass == 1 ? r->mean : NULL);
        return;
    }
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef v = cg_load(c, t, r->src, offs[0]);
    LLVMValueRef a = LLVMBuildLoad2(c->b, ty, r->acc.at, "");
    bool i = t == DT_I32;
    switch (r->n->op) {
    case OP_SUM:
    case OP_MEAN:
        LLVMBuildStore(c->b, i ? LLVMBuildAdd(c->b, a, v, "") : LLVMBuildFAdd(c->b, a, v, ""),
                       r->acc.at);
        break;
    case OP_VAR:
        if (r->pass == 0) {
            LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, a, v, ""), r->acc.at);
        } else {
            LLVMValueRef d = LLVMBuildFSub(c->b, v, r->mean, "");
            LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, a, LLVMBuildFMul(c->b, d, d, ""), ""),
                           r->acc.at);
        }
        break;
    case OP_MAX:
    case OP_MIN: {
        bool mx = r->n->op == OP_MAX;
        LLVMValueRef better =
            i ? LLVMBuildICmp(c->b, mx ? LLVMIntSGT : LLVMIntSLT, v, a, "")
              : LLVMBuildFCmp(c->b, mx ? LLVMRealUGT : LLVMRealULT, v, a, ""); /* NaN wins */
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, v, a, ""), r->acc.at);
        break;
    }
    case OP_ARGMAX: {
        LLVMValueRef k = LLVMBuildLoad2(c->b, c->i64, r->count, "");
        LLVMValueRef better = i ? LLVMBuildICmp(c->b, LLVMIntSGT, v, a, "")
                                : LLVMBuildFCmp(c->b, LLVMRealUGT, v, a, "");
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, v, a, ""), r->acc.at);
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
        init =
            i ? LLVMConstInt(c->i32, (unsigned long long)INT32_MIN, 1) : cg_fconst(c, t, -INFINITY);
    else if (n->op == OP_MIN)
        init = i ? LLVMConstInt(c->i32, INT32_MAX, 1) : cg_fconst(c, t, INFINITY);
    else
        init = i ? LLVMConstInt(c->i32, 0, 0) : cg_fconst(c, t, 0);
    if (n->op == OP_ARGMAX) {
        LLVMBuildStore(c->b, cg_i64(c, 0), r->idx);
        LLVMBuildStore(c->b, cg_i64(c, 0), r->count);
        /* the first element wins ties and a first NaN stays */
        init = LLVMBuildLoad2(c->b, ty, cg_gep(c, t, r->src, offs[0]), "");
    }
    cg_sum_start(c, &r->acc, init);
    r->pass = 0;
    LLVMValueRef base[1] = {offs[0]};
    cg_nest_start(c, ro->inner, base);
    LLVMValueRef a = cg_sum_total(c, &r->acc);
    LLVMValueRef cnt = i ? NULL : LLVMBuildSIToFP(c->b, ro->count, ty, "");
    LLVMValueRef v = a;
    if (n->op == OP_MEAN) {
        v = LLVMBuildFDiv(c->b, a, cnt, "");
    } else if (n->op == OP_VAR) {
        r->mean = LLVMBuildFDiv(c->b, a, cnt, "");
        cg_sum_start(c, &r->acc, cg_fconst(c, t, 0));
        r->pass = 1;
        cg_nest_start(c, ro->inner, base);
        LLVMValueRef dof =
            LLVMBuildFSub(c->b, cnt, cg_fconst(c, t, (double)attr_correction(n)), "");
        dof = cg_max(c, t, dof, cg_fconst(c, t, 0)); /* 0 -> inf/nan as PyTorch */
        v = LLVMBuildFDiv(c->b, cg_sum_total(c, &r->acc), dof, "");
    } else if (n->op == OP_ARGMAX) {
        v = LLVMBuildTrunc(c->b, LLVMBuildLoad2(c->b, c->i64, r->idx, ""), c->i32, "");
    }
    cg_store(c, n->dtype, v, r->out, offs[1]);
}

/* A sum or mean over the leading p dimensions of x: rows of x added into
 * the output row one after another, so that the inner loop runs along
 * memory (the general nest below walks each output's column with a stride
 * of a whole row, a cache miss per element once the rows pass L1). Each
 * output sums its column in the same order, so the result is the same. */
static bool leading_sum(const Node *n, const bool *red, int *p)
{
    const Node *x = n->in[0];
    if (n->op != OP_SUM && n->op != OP_MEAN)
        return false;
    int k = 0;
    while (k < x->shape.rank && red[k])
        k++;
    for (int d = k; d < x->shape.rank; d++)
        if (red[d])
            return false;
    *p = k;
    return k > 0 && k < x->shape.rank;
}

static void k_leading_sum(Cg *c, Node *n, int p, LLVMValueRef out, LLVMValueRef src)
{
    const Shape *s = &n->in[0]->shape;
    DType t = n->in[0]->dtype;
    bool i = t == DT_I32;
    Shape rows = {.rank = p}, cols = {.rank = s->rank - p};
    for (int d = 0; d < s->rank; d++)
        if (d < p)
            rows.d[d] = s->d[d];
        else
            cols.d[d - p] = s->d[d];
    LLVMValueRef R = cg_numel(c, &rows), C = cg_numel(c, &cols);
    CgLoop lr, lj;
    LLVMValueRef j = cg_loop_begin(c, C, &lj);
    cg_store(c, t, i ? LLVMConstInt(c->i32, 0, 0) : cg_fconst(c, t, 0), out, j);
    cg_loop_end(c, &lj);
    LLVMValueRef r = cg_loop_begin(c, R, &lr);
    LLVMValueRef row = cg_mul(c, r, C);
    j = cg_loop_begin(c, C, &lj);
    LLVMValueRef a = cg_load(c, t, out, j), v = cg_load(c, t, src, cg_add(c, row, j));
    cg_store(c, t, i ? LLVMBuildAdd(c->b, a, v, "") : LLVMBuildFAdd(c->b, a, v, ""), out, j);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lr);
    if (n->op == OP_MEAN) {
        LLVMValueRef cnt = LLVMBuildSIToFP(c->b, R, cg_type(c, t), "");
        j = cg_loop_begin(c, C, &lj);
        cg_store(c, t, LLVMBuildFDiv(c->b, cg_load(c, t, out, j), cnt, ""), out, j);
        cg_loop_end(c, &lj);
    }
}

/* The reduction n of src into out, in the current function; c->batch is
 * the batch it sees. */
static void emit_reduce(Cg *c, Node *n, LLVMValueRef out, LLVMValueRef src)
{
    Node *x = n->in[0];
    RedCtx r = {.n = n, .out = out, .src = src};
    DType t = x->dtype;
    r.idx = cg_alloca(c, c->i64, "idx");
    r.count = cg_alloca(c, c->i64, "count");
    bool red[IR_MAX_RANK] = {0};
    if (n->op == OP_ARGMAX) {
        if (attr_has_axis(n))
            red[attr_axis(n)] = true;
        else
            for (int d = 0; d < x->shape.rank; d++)
                red[d] = true;
    } else {
        AttrInts ax = attr_axes(n);
        for (int k = 0; k < ax.n; k++)
            red[ax.v[k].n] = true;
    }
    int p;
    if (leading_sum(n, red, &p)) {
        k_leading_sum(c, n, p, r.out, r.src);
        return;
    }
    /* f32 sums, means and variances whose last dimensions are reduced
     * and known add those in lanes (f64 ones stay in order: they are the
     * gradient checks' reference) */
    int end = x->shape.rank;
    int64_t run = 0;
    if (t == DT_F32 && (n->op == OP_SUM || n->op == OP_MEAN || n->op == OP_VAR)) {
        run = 1;
        while (end > 0 && red[end - 1] && !x->shape.d[end - 1].batch)
            run *= x->shape.d[--end].n;
        if (run < CG_SUM_LANES) {
            run = 0;
            end = x->shape.rank;
        }
    }
    r.acc = cg_sum_new(c, cg_type(c, t), run);
    LLVMValueRef st[IR_MAX_RANK];
    cg_strides(c, &x->shape, st);
    CgNest *outer = cg_nest_new(c, 0, 2), *inner = cg_nest_new(c, 0, 1);
    Shape kept = {0}, gone = {0};
    for (int d = 0; d < end; d++) {
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
    cg_strides(c, &kept, ost);
    for (int d = 0; d < outer->rank; d++)
        outer->st[IR_MAX_RANK + d] = ost[d];
    LLVMValueRef count = cg_numel(c, &gone);
    RedOuter ro = {&r, inner, run ? cg_mul(c, count, cg_i64(c, run)) : count};
    inner->body = reduce_inner;
    inner->ctx = &r;
    outer->body = reduce_outer;
    outer->ctx = &ro;
    cg_nest_start(c, outer, NULL);
}

/* A sum over the batch in chunks of R rows (cg_sum_chunk_rows, a power of
 * two): chunk p sums rows [p R, p R + R) into its own partial sum in the
 * step's scratch, as tasks on the thread pool, and the partials are then
 * added pairwise, as a tree: 0 += 1, 2 += 3, ..., then 0 += 2, 4 += 6, ...
 * The chunks depend on the shapes alone, so the result does not depend on
 * the threads (nor on the target: they are the same without threads).
 * And it does not depend on how data-parallel training splits the batch:
 * with R rows a chunk, a rank's share of 2^k chunks sums to the subtree a
 * single process computes for the same rows, so N ranks' all-reduced
 * bias gradients are the bits of one process's (docs/DISTRIBUTED.md). */
typedef struct {
    Node *n;
    int64_t rows, row, out; /* rows a chunk; elements of an input row and of the output */
} SumChunks;

static void sum_chunk(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const SumChunks *s = ctx;
    DType t = s->n->dtype;
    LLVMValueRef src = vals[0], part = vals[1], batch = vals[2];
    CgLoop lp;
    LLVMValueRef p = cg_add(c, lo, cg_loop_begin(c, LLVMBuildNSWSub(c->b, hi, lo, ""), &lp));
    LLVMValueRef b0 = cg_mul(c, p, cg_i64(c, s->rows));
    c->batch = cg_smin(c, cg_i64(c, s->rows), LLVMBuildNSWSub(c->b, batch, b0, ""));
    emit_reduce(c, s->n, cg_gep(c, t, part, cg_mul(c, p, cg_i64(c, s->out))),
                cg_gep(c, t, src, cg_mul(c, b0, cg_i64(c, s->row))));
    cg_loop_end(c, &lp);
}

/* dst[i] += src[i] for i < n */
static void sum_in_chunks(Cg *c, Node *n, int64_t rows, LLVMValueRef out, LLVMValueRef src,
                          LLVMValueRef part)
{
    DType t = n->dtype;
    const Shape *xs = &n->in[0]->shape;
    SumChunks s = {n, rows, 1, 1};
    for (int d = 1; d < xs->rank; d++)
        s.row *= xs->d[d].n;
    for (int d = 0; d < n->shape.rank; d++)
        s.out *= n->shape.d[d].n;
    LLVMValueRef fn = c->fn, batch = c->batch;
    LLVMValueRef chunks = cg_ntasks(c, batch, rows);
    LLVMValueRef vals[] = {src, part, batch};
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%.*s.chunk", (int)len, name), chunks, 1, vals,
                       countof(vals), sum_chunk, &s);
    c->fn = fn;
    c->batch = batch;

    /* the tree: for s = 1, 2, 4, ... < chunks, part[p] += part[p + s] for
     * p = 0, 2s, 4s, ... with p + s < chunks */
    LLVMValueRef sp = cg_alloca(c, c->i64, "stride");
    LLVMBuildStore(c->b, cg_i64(c, 1), sp);
    LLVMBasicBlockRef cond = LLVMAppendBasicBlockInContext(c->ctx, fn, "tree.level");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, fn, "tree.pairs");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "tree.done");
    LLVMBuildBr(c->b, cond);
    LLVMPositionBuilderAtEnd(c->b, cond);
    LLVMValueRef st = LLVMBuildLoad2(c->b, c->i64, sp, "");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, st, chunks, ""), body, done);
    LLVMPositionBuilderAtEnd(c->b, body);
    LLVMValueRef st2 = cg_mul(c, st, cg_i64(c, 2));
    LLVMValueRef npairs = LLVMBuildSDiv(c->b,
                                        cg_add(c, LLVMBuildNSWSub(c->b, chunks, st, ""),
                                               LLVMBuildNSWSub(c->b, st2, cg_i64(c, 1), "")),
                                        st2, "");
    CgLoop lq;
    LLVMValueRef p = cg_mul(c, cg_loop_begin(c, npairs, &lq), st2);
    LLVMValueRef add = cg_add_fn(c, t);
    LLVMValueRef args[] = {cg_gep(c, t, part, cg_mul(c, p, cg_i64(c, s.out))),
                           cg_gep(c, t, part, cg_mul(c, cg_add(c, p, st), cg_i64(c, s.out))),
                           cg_i64(c, s.out)};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(add), add, args, 3, "");
    cg_loop_end(c, &lq);
    LLVMBuildStore(c->b, st2, sp);
    LLVMBuildBr(c->b, cond);
    LLVMPositionBuilderAtEnd(c->b, done);
    cg_memcpy(c, t, out, part, cg_i64(c, s.out));
}

static LLVMValueRef k_reduce(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    int64_t rows = cg_sum_chunk_rows(c->g, n);
    if (rows)
        sum_in_chunks(c, n, rows, out, src, cg_kernel_scratch(c, 1));
    else
        emit_reduce(c, n, out, src);
    cg_kernel_end(c);
    return fn;
}

LLVMValueRef cg_kernel_reduce(Cg *c, Node *step)
{
    switch (op_info[step->op].kind) {
    case K_ROWWISE: return k_softmax(c, step);
    case K_REDUCE: return k_reduce(c, step);
    default: die("codegen: %s is not a reduction", op_info[step->op].text);
    }
}
