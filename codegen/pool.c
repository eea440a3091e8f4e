/*
 * The pooling and resampling kernels (K_POOL in the op table;
 * passes/shape_nn.c, passes/grad_nn.c): max, average and lp pooling in
 * 1, 2 and 3 dimensions, stochastic pooling (its training kernel samples),
 * global and adaptive pooling, upsampling, and their backward primitives.
 * Shapes are static except the batch (dimension 0 of an image), so all
 * geometry is constants and only the outer loop runs to the run-time
 * batch. Pooling is loop nests; global pooling sums a whole image in
 * double.
 *
 * Pooling gradients scatter each window's dy into the zeroed output, so
 * overlapping windows add up (disjoint windows store instead, k_pool_grad):
 * max to the window's arg-max as PyTorch
 * picks it (the first element greater than all before it, a NaN taking
 * over), avg as dy over the window's divisor (kd * kh * kw, depth 1 but
 * for the 3-d pools, with count_include_pad) to each position inside the
 * input (the padding takes its share and drops it),
 * stochastic to the input the training forward sampled (the same draw,
 * pool_sample).
 */
#include <math.h>
#include <string.h>

#include "cg_kernels.h"

/* ---- pooling --------------------------------------------------------------- */

/* A windowed pooling's geometry (or its gradient's), read once from the
 * node: a D x H x W input pooled into OD x OH x OW by a kd x kh x kw
 * window moving by (sd, sh, sw) from (pd, ph, pw) before the volume; a
 * 2-d pooling has depth 1, a 1-d one height 1 too. */
typedef struct {
    int64_t D, H, W, OD, OH, OW, kd, kh, kw, sd, sh, sw, pd, ph, pw;
    bool clips;    /* some window reaches outside the input: padding, or
                      with ceil_mode a last window past the end */
    bool with_pad; /* avg: count_include_pad (the default) */
    bool fixed;    /* avg: every window divides by kd * kh * kw */
} PoolGeom;

/* n's geometry for the input x and the pooled output y. PyTorch's
 * count_include_pad counts the padding in the divisor, but never what a
 * ceil_mode window holds past it, nor anything without it. */
static PoolGeom pool_geom(const Node *n, const Shape *x, const Shape *y)
{
    int nsp = x->rank - 2;
    int64_t in[3] = {1, 1, 1}, on[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            p[3] = {0, 0, 0};
    for (int i = 0; i < nsp; i++) {
        int a = 3 - nsp + i;
        in[a] = x->d[2 + i].n;
        on[a] = y->d[2 + i].n;
        k[a] = cg_ints_at(attr_kernel(n), i);
        s[a] = cg_ints_at(attr_stride(n), i);
        p[a] = attr_has_padding(n) ? cg_ints_at(attr_padding(n), i) : 0;
    }
    PoolGeom g = {.D = in[0],
                  .H = in[1],
                  .W = in[2],
                  .OD = on[0],
                  .OH = on[1],
                  .OW = on[2],
                  .kd = k[0],
                  .kh = k[1],
                  .kw = k[2],
                  .sd = s[0],
                  .sh = s[1],
                  .sw = s[2],
                  .pd = p[0],
                  .ph = p[1],
                  .pw = p[2]};
    bool past = false, within = true; /* a window past the input, or past its padding */
    for (int a = 0; a < 3; a++) {
        past |= p[a] > 0 || (on[a] - 1) * s[a] + k[a] > in[a];
        within &= (on[a] - 1) * s[a] + k[a] <= in[a] + 2 * p[a];
    }
    g.clips = past;
    g.with_pad = !attr_has_count_include_pad(n) || attr_count_include_pad(n);
    g.fixed = g.with_pad ? within : !g.clips;
    return g;
}

/* The count avg_pool divides window (z, y, xo) by, as a value of type ty:
 * per dimension, the window [y*s - p, y*s - p + k) cut at the padded end
 * (in + p), then, without count_include_pad, at the input's bounds. */
static LLVMValueRef pool_divisor(Cg *c, const PoolGeom *g, LLVMTypeRef ty, LLVMValueRef z,
                                 LLVMValueRef y, LLVMValueRef xo)
{
    LLVMValueRef o[3] = {z, y, xo}, count = cg_i64(c, 1);
    const int64_t in[3] = {g->D, g->H, g->W}, k[3] = {g->kd, g->kh, g->kw},
                  s[3] = {g->sd, g->sh, g->sw}, p[3] = {g->pd, g->ph, g->pw};
    for (int d = 0; d < 3; d++) {
        LLVMValueRef lo = cg_add(c, cg_mul(c, o[d], cg_i64(c, s[d])), cg_i64(c, -p[d]));
        LLVMValueRef hi = cg_smin(c, cg_add(c, lo, cg_i64(c, k[d])), cg_i64(c, in[d] + p[d]));
        if (!g->with_pad) {
            lo = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, lo, cg_i64(c, 0), ""),
                                 cg_i64(c, 0), lo, "");
            hi = cg_smin(c, hi, cg_i64(c, in[d]));
        }
        count = cg_mul(c, count, LLVMBuildSub(c->b, hi, lo, ""));
    }
    return LLVMBuildSIToFP(c->b, count, ty, "");
}

/* ---- 2 x 2 windows of stride 2 in vectors ----------------------------------
 * The commonest pooling (LeNet-5's, VGG's), f32 and unpadded, runs a row
 * of outputs at a time in the target's widest vectors: 2V inputs of each
 * of the window's two rows loaded and split into even and odd columns,
 * so that each of V outputs has its window's 4 elements in 4 vectors.
 * The gradient finds each window's maximum the same way and writes dy or
 * 0 to the 4 elements, interleaved back. The scalar loops ran a quarter
 * of LeNet-5's training step (and LLVM vectorized them with gathers). */
static bool pool2(Cg *c, const Node *n, const PoolGeom *g)
{
    return n->dtype == DT_F32 && c->vector_bytes >= 16 && g->D == 1 && g->kh == 2 && g->kw == 2 &&
           g->sh == 2 && g->sw == 2 && !g->clips;
}

/* lanes lo, lo+step, ... of the 2V lanes of a then b */
static LLVMValueRef pick(Cg *c, LLVMValueRef a, LLVMValueRef b, int V, int lo, int step)
{
    LLVMValueRef idx[64];
    for (int i = 0; i < V; i++)
        idx[i] = LLVMConstInt(c->i32, (unsigned long long)(lo + i * step), 0);
    return LLVMBuildShuffleVector(c->b, a, b, LLVMConstVector(idx, (unsigned)V), "");
}

/* lanes lo .. lo+V/2 of a and b interleaved: a[lo], b[lo], a[lo+1], ... */
static LLVMValueRef zip(Cg *c, LLVMValueRef a, LLVMValueRef b, int V, int lo)
{
    LLVMValueRef idx[64];
    for (int i = 0; i < V; i++)
        idx[i] = LLVMConstInt(c->i32, (unsigned long long)(lo + i / 2 + (i % 2) * V), 0);
    return LLVMBuildShuffleVector(c->b, a, b, LLVMConstVector(idx, (unsigned)V), "");
}

/* One window row's even and odd columns for the n outputs from p (2n
 * inputs) */
static void split_row(Cg *c, LLVMTypeRef vt, int V, LLVMValueRef p, int n, LLVMValueRef *even,
                      LLVMValueRef *odd)
{
    LLVMValueRef a = cg_load_lanes(c, vt, p, 2 * n);
    LLVMValueRef b = 2 * n > V ? cg_load_lanes(c, vt, cg_gep(c, DT_F32, p, cg_i64(c, V)), 2 * n - V)
                               : LLVMConstNull(vt);
    *even = pick(c, a, b, V, 0, 2);
    *odd = pick(c, a, b, V, 1, 2);
}

typedef struct {
    Op op;
    int64_t W, OW;
    LLVMTypeRef vt;
    int V;
    LLVMValueRef in, out, dy; /* the plane's input rows 2y, its output row y (dy's row y) */
} Pool2Row;

/* the n outputs from xo of a row: pooled, or (dy given) their gradient */
static void pool2_vectors(Cg *c, const Pool2Row *r, LLVMValueRef xo, int n)
{
    int V = r->V;
    LLVMValueRef p0 = cg_gep(c, DT_F32, r->in, cg_mul(c, xo, cg_i64(c, 2)));
    LLVMValueRef x[4]; /* the window's elements in its order */
    split_row(c, r->vt, V, p0, n, &x[0], &x[1]);
    split_row(c, r->vt, V, cg_gep(c, DT_F32, p0, cg_i64(c, r->W)), n, &x[2], &x[3]);
    if (r->op == OP_MAX_POOL2D) {
        LLVMValueRef m = x[0];
        for (int i = 1; i < 4; i++) {
            LLVMValueRef args[] = {m, x[i]};
            m = cg_intrinsic(c, "llvm.maximum", r->vt, args, 2);
        }
        cg_store_lanes(c, m, cg_gep(c, DT_F32, r->out, xo), n);
        return;
    }
    if (r->op == OP_AVG_POOL2D) { /* 0 + x00 + x01 + x10 + x11, as the loop */
        LLVMValueRef s = LLVMConstNull(r->vt);
        for (int i = 0; i < 4; i++)
            s = LLVMBuildFAdd(c->b, s, x[i], "");
        LLVMValueRef four[64];
        for (int i = 0; i < V; i++)
            four[i] = LLVMConstReal(c->f32, 4);
        s = LLVMBuildFDiv(c->b, s, LLVMConstVector(four, (unsigned)V), "");
        cg_store_lanes(c, s, cg_gep(c, DT_F32, r->out, xo), n);
        return;
    }
    /* the gradient: the first maximum, or a NaN after it (PyTorch's rule) */
    LLVMValueRef best = x[0], take[4] = {NULL};
    for (int i = 1; i < 4; i++) {
        take[i] = LLVMBuildOr(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, x[i], best, ""),
                              LLVMBuildFCmp(c->b, LLVMRealUNO, x[i], x[i], ""), "");
        best = LLVMBuildSelect(c->b, take[i], x[i], best, "");
    }
    LLVMValueRef g = cg_load_lanes(c, r->vt, cg_gep(c, DT_F32, r->dy, xo), n);
    LLVMValueRef zero = LLVMConstNull(r->vt), o[4], later = NULL;
    for (int i = 3; i >= 0; i--) { /* element i wins when taken and none after it is */
        LLVMValueRef wins = i ? take[i] : NULL;
        if (later)
            wins = wins ? LLVMBuildAnd(c->b, wins, LLVMBuildNot(c->b, later, ""), "")
                        : LLVMBuildNot(c->b, later, "");
        o[i] = wins ? LLVMBuildSelect(c->b, wins, g, zero, "") : g;
        if (i)
            later = later ? LLVMBuildOr(c->b, later, take[i], "") : take[i];
    }
    for (int row = 0; row < 2; row++) {
        LLVMValueRef q = cg_gep(c, DT_F32, r->out,
                                cg_add(c, cg_mul(c, xo, cg_i64(c, 2)), cg_i64(c, row * r->W)));
        cg_store_lanes(c, zip(c, o[2 * row], o[2 * row + 1], V, 0), q, 2 * n);
        if (2 * n > V)
            cg_store_lanes(c, zip(c, o[2 * row], o[2 * row + 1], V, V / 2),
                           cg_gep(c, DT_F32, q, cg_i64(c, V)), 2 * n - V);
    }
}

/* every output row of the plane at in (out, dy: the plane's output or
 * input gradient, and dy) */
static void pool2_plane(Cg *c, Op op, const PoolGeom *g, LLVMValueRef in, LLVMValueRef out,
                        LLVMValueRef dy)
{
    int V = c->vector_bytes / 4;
    Pool2Row r = {
        .op = op, .W = g->W, .OW = g->OW, .vt = LLVMVectorType(c->f32, (unsigned)V), .V = V};
    CgLoop ly, lx;
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, g->OH), &ly);
    r.in = cg_gep(c, DT_F32, in, cg_mul(c, y, cg_i64(c, 2 * g->W)));
    r.out = dy ? cg_gep(c, DT_F32, out, cg_mul(c, y, cg_i64(c, 2 * g->W)))
               : cg_gep(c, DT_F32, out, cg_mul(c, y, cg_i64(c, g->OW)));
    r.dy = dy ? cg_gep(c, DT_F32, dy, cg_mul(c, y, cg_i64(c, g->OW))) : NULL;
    int64_t whole = g->OW / V, left = g->OW % V;
    if (whole) {
        LLVMValueRef xo = cg_mul(c, cg_loop_begin(c, cg_i64(c, whole), &lx), cg_i64(c, V));
        pool2_vectors(c, &r, xo, V);
        cg_loop_end(c, &lx);
    }
    if (left)
        pool2_vectors(c, &r, cg_i64(c, whole * V), (int)left);
    cg_loop_end(c, &ly);
}

static LLVMValueRef k_pool(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    PoolGeom gm = pool_geom(n, &x->shape, &n->shape);
    int64_t D = gm.D, H = gm.H, W = gm.W, OD = gm.OD, OH = gm.OH, OW = gm.OW;
    double p = n->op == OP_LP_POOL2D ? attr_p(n) : 0;
    LLVMValueRef acc = cg_alloca(c, ty, "acc"), acc2 = cg_alloca(c, ty, "acc2");
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    CgLoop lq, lz, ly, lx, la, li, lj;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef plane = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, D * H * W)));
    if ((n->op == OP_MAX_POOL2D || (n->op == OP_AVG_POOL2D && gm.fixed)) && pool2(c, n, &gm)) {
        pool2_plane(c, n->op, &gm, plane, cg_gep(c, t, out, cg_mul(c, q, cg_i64(c, OH * OW))),
                    NULL);
        cg_loop_end(c, &lq);
        LLVMBuildRetVoid(c->b);
        return fn;
    }
    LLVMValueRef z = cg_loop_begin(c, cg_i64(c, OD), &lz);
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    bool mx = n->op == OP_MAX_POOL2D || n->op == OP_MAX_POOL1D || n->op == OP_MAX_POOL3D;
    LLVMBuildStore(c->b, cg_fconst(c, t, mx ? -INFINITY : 0), acc);
    LLVMBuildStore(c->b, cg_fconst(c, t, 0), acc2);
    LLVMValueRef a0 = cg_loop_begin(c, cg_i64(c, gm.kd), &la);
    LLVMValueRef iz = cg_add(c, cg_add(c, cg_mul(c, z, cg_i64(c, gm.sd)), cg_i64(c, -gm.pd)), a0);
    LLVMValueRef i = cg_loop_begin(c, cg_i64(c, gm.kh), &li);
    LLVMValueRef iy = cg_add(c, cg_add(c, cg_mul(c, y, cg_i64(c, gm.sh)), cg_i64(c, -gm.ph)), i);
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, gm.kw), &lj);
    LLVMValueRef ix = cg_add(c, cg_add(c, cg_mul(c, xo, cg_i64(c, gm.sw)), cg_i64(c, -gm.pw)), j);
    /* padding adds nothing: -inf for the max, 0 for the sum */
    LLVMBasicBlockRef join = NULL;
    if (gm.clips)
        join = cg_if_begin(
            c,
            LLVMBuildAnd(c->b, cg_in_range(c, iz, D),
                         LLVMBuildAnd(c->b, cg_in_range(c, iy, H), cg_in_range(c, ix, W), ""), ""));
    LLVMValueRef v =
        cg_load(c, t, plane,
                cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, iz, cg_i64(c, H)), iy), cg_i64(c, W)), ix));
    LLVMValueRef a = cg_get(c, ty, acc), r;
    switch (n->op) {
    case OP_MAX_POOL1D:
    case OP_MAX_POOL2D:
    case OP_MAX_POOL3D: {
        LLVMValueRef args[] = {a, v};
        r = cg_intrinsic(c, "llvm.maximum", ty, args, 2);
        break;
    }
    case OP_LP_POOL2D:
        if (p == 1) {
            r = LLVMBuildFAdd(c->b, a, v, "");
        } else if (p == 2) {
            r = LLVMBuildFAdd(c->b, a, LLVMBuildFMul(c->b, v, v, ""), "");
        } else {
            LLVMValueRef args[] = {v, cg_fconst(c, t, p)};
            r = LLVMBuildFAdd(c->b, a, cg_intrinsic(c, "llvm.pow", ty, args, 2), "");
        }
        break;
    case OP_STOCHASTIC_POOL2D:
        LLVMBuildStore(c->b,
                       LLVMBuildFAdd(c->b, cg_get(c, ty, acc2), LLVMBuildFMul(c->b, v, v, ""), ""),
                       acc2);
        r = LLVMBuildFAdd(c->b, a, v, "");
        break;
    default: r = LLVMBuildFAdd(c->b, a, v, ""); break;
    }
    LLVMBuildStore(c->b, r, acc);
    if (gm.clips)
        cg_if_end(c, join);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);
    cg_loop_end(c, &la);
    LLVMValueRef res = cg_get(c, ty, acc);
    switch (n->op) {
    case OP_AVG_POOL1D:
    case OP_AVG_POOL2D:
    case OP_AVG_POOL3D: /* count_include_pad: the padding counts as zeros */
        res = LLVMBuildFDiv(c->b, res,
                            gm.fixed ? cg_fconst(c, t, (double)(gm.kd * gm.kh * gm.kw))
                                     : pool_divisor(c, &gm, ty, z, y, xo),
                            "");
        break;
    case OP_LP_POOL2D:
        if (p == 2) {
            res = cg_intrinsic(c, "llvm.sqrt", ty, &res, 1);
        } else if (p != 1) {
            LLVMValueRef args[] = {res, cg_fconst(c, t, 1 / p)};
            res = cg_intrinsic(c, "llvm.pow", ty, args, 2);
        }
        break;
    case OP_STOCHASTIC_POOL2D: {
        /* the expectation: sum a^2 / sum a, 0 for a window summing to 0 */
        LLVMValueRef zero = LLVMBuildFCmp(c->b, LLVMRealOEQ, res, cg_fconst(c, t, 0), "");
        LLVMValueRef e = LLVMBuildFDiv(c->b, cg_get(c, ty, acc2), res, "");
        res = LLVMBuildSelect(c->b, zero, cg_fconst(c, t, 0), e, "");
        break;
    }
    default: break;
    }
    LLVMValueRef qz = cg_add(c, cg_mul(c, q, cg_i64(c, OD)), z);
    LLVMValueRef at =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, qz, cg_i64(c, OH)), y), cg_i64(c, OW)), xo);
    cg_store(c, t, res, out, at);
    cg_loop_end(c, &lx);
    cg_loop_end(c, &ly);
    cg_loop_end(c, &lz);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* ---- adaptive pooling ------------------------------------------------------
 * Output row y of OH pools input rows [floor(y*H/OH), ceil((y+1)*H/OH)),
 * columns likewise: windows of varying size, so their bounds are computed
 * per output position and the window loops run to them. Max takes NaN
 * over everything (llvm.maximum, as max_pool2d), avg divides by the
 * window's size. The gradient scatters each window's dy into the zeroed
 * output: max to the first element greater than all before it (or a
 * NaN), as PyTorch; avg, dy / size to every element. */

/* The window [*lo, *hi) of output index o (i64) of on for an input of n. */
static void adaptive_window(Cg *c, LLVMValueRef o, int64_t n, int64_t on, LLVMValueRef *lo,
                            LLVMValueRef *hi)
{
    *lo = LLVMBuildUDiv(c->b, cg_mul(c, o, cg_i64(c, n)), cg_i64(c, on), "");
    LLVMValueRef end = cg_mul(c, cg_add(c, o, cg_i64(c, 1)), cg_i64(c, n));
    *hi = LLVMBuildUDiv(c->b, cg_add(c, end, cg_i64(c, on - 1)), cg_i64(c, on), "");
}

static LLVMValueRef k_adaptive_pool(Cg *c, Node *n)
{
    bool grad = n->op == OP_ADAPTIVE_MAX_POOL2D_GRAD || n->op == OP_ADAPTIVE_AVG_POOL2D_GRAD;
    bool mx = n->op == OP_ADAPTIVE_MAX_POOL2D || n->op == OP_ADAPTIVE_MAX_POOL2D_GRAD;
    Node *x = n->in[0];
    const Shape *ys = grad ? &n->in[1]->shape : &n->shape;
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, grad ? 2 : 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    LLVMValueRef dy = grad ? LLVMGetParam(fn, 2) : NULL;
    int64_t H = x->shape.d[2].n, W = x->shape.d[3].n, OH = ys->d[2].n, OW = ys->d[3].n;
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    if (grad)
        cg_zero(c, t, out, cg_mul(c, planes, cg_i64(c, H * W)));
    LLVMValueRef acc = cg_alloca(c, ty, "acc"), at = cg_alloca(c, c->i64, "at");
    CgLoop lq, ly, lx, li, lj;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef plane = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef oplane = cg_gep(c, t, out, cg_mul(c, q, cg_i64(c, grad ? H * W : OH * OW)));
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef h0, h1, w0, w1;
    adaptive_window(c, y, H, OH, &h0, &h1);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    adaptive_window(c, xo, W, OW, &w0, &w1);
    LLVMValueRef yat =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, q, cg_i64(c, OH)), y), cg_i64(c, OW)), xo);
    LLVMValueRef size = LLVMBuildUIToFP(
        c->b, cg_mul(c, LLVMBuildSub(c->b, h1, h0, ""), LLVMBuildSub(c->b, w1, w0, "")), ty, "");
    LLVMValueRef g = grad ? cg_load(c, t, dy, yat) : NULL;
    LLVMValueRef share = grad && !mx ? LLVMBuildFDiv(c->b, g, size, "") : NULL;
    LLVMBuildStore(c->b, cg_fconst(c, t, mx ? -INFINITY : 0), acc);
    LLVMBuildStore(c->b, cg_i64(c, -1), at);
    LLVMValueRef i = cg_add(c, h0, cg_loop_begin(c, LLVMBuildSub(c->b, h1, h0, ""), &li));
    LLVMValueRef j = cg_add(c, w0, cg_loop_begin(c, LLVMBuildSub(c->b, w1, w0, ""), &lj));
    LLVMValueRef k = cg_add(c, cg_mul(c, i, cg_i64(c, W)), j);
    LLVMValueRef a = cg_get(c, ty, acc);
    if (grad && !mx) {
        cg_store(c, t, LLVMBuildFAdd(c->b, cg_load(c, t, oplane, k), share, ""), oplane, k);
    } else if (grad) {
        /* PyTorch's v > best || isnan(v), and the window's first element */
        LLVMValueRef v = cg_load(c, t, plane, k);
        LLVMValueRef take = LLVMBuildOr(
            c->b, LLVMBuildICmp(c->b, LLVMIntSLT, cg_get(c, c->i64, at), cg_i64(c, 0), ""),
            LLVMBuildOr(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, v, a, ""),
                        LLVMBuildFCmp(c->b, LLVMRealUNO, v, v, ""), ""),
            "");
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, take, v, a, ""), acc);
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, take, k, cg_get(c, c->i64, at), ""), at);
    } else {
        LLVMValueRef args[] = {a, cg_load(c, t, plane, k)};
        LLVMBuildStore(c->b,
                       mx ? cg_intrinsic(c, "llvm.maximum", ty, args, 2)
                          : LLVMBuildFAdd(c->b, a, args[1], ""),
                       acc);
    }
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);
    if (grad && mx) { /* every window has at least one element */
        LLVMValueRef p = cg_get(c, c->i64, at);
        cg_store(c, t, LLVMBuildFAdd(c->b, cg_load(c, t, oplane, p), g, ""), oplane, p);
    } else if (!grad) {
        LLVMValueRef r = cg_get(c, ty, acc);
        cg_store(c, t, mx ? r : LLVMBuildFDiv(c->b, r, size, ""), out, yat);
    }
    cg_loop_end(c, &lx);
    cg_loop_end(c, &ly);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* ---- stochastic pooling in training ---------------------------------------
 * Output element i of stochastic_pool2d node P (its flat index in
 * [N, C, OH, OW]) draws u = u(key, P, i) in f64 (cg_uniform) and takes the
 * first input of its window, in row-major order, whose running sum
 * exceeds u * S, S the window's sum, both summed in f64 in the same order:
 * input k with probability a_k / S (Zeiler and Fergus). Reaching S also
 * takes (u * S can round up to S), so a window with S > 0 always takes an
 * input with a_k > 0. A window with S = 0 takes nothing (nor does one with
 * S < 0 or NaN, outside the op's domain of non-negative inputs): its
 * output is S * 0 (0, or NaN for NaN) and it passes no gradient.
 * stochastic_pool2d_grad makes the same choice again from the same key,
 * node and index (its gradient below). */

/* The input that training-mode stochastic_pool2d node pool samples for its
 * output element index (i64, flat in [N, C, OH, OW]) at window row y and
 * column xo, plane the input image's channel: its offset in the plane
 * (i64), -1 for none, and the window's sum (f64). Needs the step's key
 * (cg_step_draws). */
typedef struct {
    LLVMValueRef at, sum;
} PoolPick;

static PoolPick pool_sample(Cg *c, Node *pool, LLVMValueRef plane, LLVMValueRef y, LLVMValueRef xo,
                            LLVMValueRef index)
{
    Node *x = pool->in[0];
    DType t = x->dtype;
    PoolGeom g = pool_geom(pool, &x->shape, &pool->shape);
    int64_t W = g.W, kh = g.kh, kw = g.kw, sh = g.sh, sw = g.sw;
    LLVMValueRef run = cg_alloca(c, c->f64, "run"), pick = cg_alloca(c, c->i64, "pick");
    LLVMValueRef origin = cg_add(c, cg_mul(c, y, cg_i64(c, sh * W)), cg_mul(c, xo, cg_i64(c, sw)));
    LLVMValueRef sum = NULL, thr = NULL, some = NULL;
    for (int pass = 0; pass < 2; pass++) {
        LLVMBuildStore(c->b, LLVMConstReal(c->f64, 0), run);
        CgLoop li, lj;
        LLVMValueRef i = cg_loop_begin(c, cg_i64(c, kh), &li);
        LLVMValueRef j = cg_loop_begin(c, cg_i64(c, kw), &lj);
        LLVMValueRef k = cg_add(c, origin, cg_add(c, cg_mul(c, i, cg_i64(c, W)), j));
        LLVMValueRef r = LLVMBuildFAdd(c->b, cg_get(c, c->f64, run),
                                       cg_to_f64(c, t, cg_load(c, t, plane, k)), "");
        LLVMBuildStore(c->b, r, run);
        if (pass == 1) {
            LLVMValueRef open =
                LLVMBuildICmp(c->b, LLVMIntSLT, cg_get(c, c->i64, pick), cg_i64(c, 0), "");
            LLVMValueRef past = LLVMBuildOr(c->b, LLVMBuildFCmp(c->b, LLVMRealOGT, r, thr, ""),
                                            LLVMBuildFCmp(c->b, LLVMRealOGE, r, sum, ""), "");
            LLVMValueRef take = LLVMBuildAnd(c->b, some, LLVMBuildAnd(c->b, open, past, ""), "");
            LLVMBuildStore(c->b, LLVMBuildSelect(c->b, take, k, cg_get(c, c->i64, pick), ""), pick);
        }
        cg_loop_end(c, &lj);
        cg_loop_end(c, &li);
        if (pass == 0) {
            sum = cg_get(c, c->f64, run);
            thr = LLVMBuildFMul(c->b, cg_uniform(c, pool, index, DT_F64), sum, "");
            some = LLVMBuildFCmp(c->b, LLVMRealOGT, sum, LLVMConstReal(c->f64, 0), "");
            LLVMBuildStore(c->b, cg_i64(c, -1), pick);
        }
    }
    return (PoolPick){cg_get(c, c->i64, pick), sum};
}

static LLVMValueRef k_stochastic_pool_train(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    PoolGeom g = pool_geom(n, &x->shape, &n->shape);
    int64_t OH = g.OH, OW = g.OW;
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    CgLoop lq, ly, lx;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef plane = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, g.H * g.W)));
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    LLVMValueRef at =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, q, cg_i64(c, OH)), y), cg_i64(c, OW)), xo);
    PoolPick p = pool_sample(c, n, plane, y, xo, at);
    LLVMValueRef found = LLVMBuildICmp(c->b, LLVMIntSGE, p.at, cg_i64(c, 0), "");
    /* without a pick, load the (in-bounds) first element and discard it */
    LLVMValueRef v = cg_load(c, t, plane, LLVMBuildSelect(c->b, found, p.at, cg_i64(c, 0), ""));
    LLVMValueRef none = cg_from_f64(c, t, LLVMBuildFMul(c->b, p.sum, LLVMConstReal(c->f64, 0), ""));
    cg_store(c, t, LLVMBuildSelect(c->b, found, v, none, ""), out, at);
    cg_loop_end(c, &lx);
    cg_loop_end(c, &ly);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

static LLVMValueRef k_global_pool(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    bool mx = n->op == OP_GLOBAL_MAX_POOL;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    LLVMValueRef S = cg_tail_numel(c, &x->shape, 2);
    LLVMTypeRef at = mx ? cg_type(c, t) : c->f64;
    LLVMValueRef acc = cg_alloca(c, at, "acc");
    CgLoop lq, ls;
    LLVMValueRef q = cg_loop_begin(c, cg_numel(c, &n->shape), &lq);
    LLVMValueRef base = cg_mul(c, q, S);
    LLVMBuildStore(c->b, mx ? cg_fconst(c, t, -INFINITY) : LLVMConstReal(c->f64, 0), acc);
    LLVMValueRef s = cg_loop_begin(c, S, &ls);
    LLVMValueRef v = cg_load(c, t, src, cg_add(c, base, s));
    if (mx) {
        LLVMValueRef args[] = {cg_get(c, at, acc), v};
        LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.maximum", at, args, 2), acc);
    } else {
        LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, cg_get(c, at, acc), cg_to_f64(c, t, v), ""), acc);
    }
    cg_loop_end(c, &ls);
    LLVMValueRef r = cg_get(c, at, acc);
    if (!mx)
        r = cg_from_f64(c, t, LLVMBuildFDiv(c->b, r, LLVMBuildSIToFP(c->b, S, c->f64, ""), ""));
    cg_store(c, t, r, out, q);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* ---- pooling gradients ----------------------------------------------------- */

/* A loop over the kd x kh x kw window at (z, y, xo) of a D x H x W
 * volume: k is the input's index in it, the body runs only for the
 * window's elements inside the input (all of them when unpadded). */
typedef struct {
    CgLoop la, li, lj;
    LLVMBasicBlockRef join; /* past the body, NULL when unchecked */
    LLVMValueRef k;
} Window;

static void window_begin(Cg *c, Window *w, const PoolGeom *g, LLVMValueRef z, LLVMValueRef y,
                         LLVMValueRef xo)
{
    int64_t D = g->D, H = g->H, W = g->W;
    LLVMValueRef a = cg_loop_begin(c, cg_i64(c, g->kd), &w->la);
    LLVMValueRef iz = cg_add(c, cg_add(c, cg_mul(c, z, cg_i64(c, g->sd)), cg_i64(c, -g->pd)), a);
    LLVMValueRef i = cg_loop_begin(c, cg_i64(c, g->kh), &w->li);
    LLVMValueRef iy = cg_add(c, cg_add(c, cg_mul(c, y, cg_i64(c, g->sh)), cg_i64(c, -g->ph)), i);
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, g->kw), &w->lj);
    LLVMValueRef ix = cg_add(c, cg_add(c, cg_mul(c, xo, cg_i64(c, g->sw)), cg_i64(c, -g->pw)), j);
    w->join = NULL;
    if (g->clips) {
        LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "inside");
        w->join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "next");
        LLVMValueRef inside =
            LLVMBuildAnd(c->b, cg_in_range(c, iz, D),
                         LLVMBuildAnd(c->b, cg_in_range(c, iy, H), cg_in_range(c, ix, W), ""), "");
        LLVMBuildCondBr(c->b, inside, body, w->join);
        LLVMPositionBuilderAtEnd(c->b, body);
    }
    w->k = cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, iz, cg_i64(c, H)), iy), cg_i64(c, W)), ix);
}

static void window_end(Cg *c, Window *w)
{
    if (w->join) {
        LLVMBuildBr(c->b, w->join);
        LLVMPositionBuilderAtEnd(c->b, w->join);
    }
    cg_loop_end(c, &w->lj);
    cg_loop_end(c, &w->li);
    cg_loop_end(c, &w->la);
}

/* When windows do not overlap (stride >= kernel on both axes) each input
 * gets at most one contribution, so it is stored, not added: max writes
 * dy or 0 to every element of its window, avg its share. The output is
 * zeroed first only where windows leave inputs uncovered (padding, gaps,
 * edges they do not reach). */
static LLVMValueRef k_pool_grad(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    bool mx = n->op == OP_MAX_POOL2D_GRAD;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1), dy = LLVMGetParam(fn, 2);
    PoolGeom gm = pool_geom(n, &x->shape, &n->in[1]->shape);
    int64_t D = gm.D, H = gm.H, W = gm.W, OD = gm.OD, OH = gm.OH, OW = gm.OW, kd = gm.kd,
            kh = gm.kh, kw = gm.kw, sd = gm.sd, sh = gm.sh, sw = gm.sw;
    bool disjoint = sd >= kd && sh >= kh && sw >= kw;
    bool covered = disjoint && gm.pd == 0 && gm.ph == 0 && gm.pw == 0 && sd == kd && sh == kh &&
                   sw == kw && OD * kd == D && OH * kh == H && OW * kw == W;
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    if (!covered)
        cg_zero(c, t, out, cg_mul(c, planes, cg_i64(c, D * H * W)));
    LLVMValueRef best = cg_alloca(c, ty, "best"), at = cg_alloca(c, c->i64, "at");
    LLVMValueRef share = cg_fconst(c, t, 1.0 / (double)(kd * kh * kw));
    bool fixed = mx || gm.fixed;
    CgLoop lq, lz, ly, lx;
    Window w;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef xq = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, D * H * W)));
    LLVMValueRef oq = cg_gep(c, t, out, cg_mul(c, q, cg_i64(c, D * H * W)));
    if (mx && pool2(c, n, &gm)) {
        pool2_plane(c, n->op, &gm, xq, oq, cg_gep(c, t, dy, cg_mul(c, q, cg_i64(c, OD * OH * OW))));
        cg_loop_end(c, &lq);
        LLVMBuildRetVoid(c->b);
        return fn;
    }
    LLVMValueRef z = cg_loop_begin(c, cg_i64(c, OD), &lz);
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    LLVMValueRef qz = cg_add(c, cg_mul(c, q, cg_i64(c, OD)), z);
    LLVMValueRef g = LLVMBuildLoad2(
        c->b, ty,
        cg_gep(c, t, dy,
               cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, qz, cg_i64(c, OH)), y), cg_i64(c, OW)), xo)),
        "");
    LLVMValueRef part = mx      ? NULL
                        : fixed ? LLVMBuildFMul(c->b, g, share, "")
                                : LLVMBuildFDiv(c->b, g, pool_divisor(c, &gm, ty, z, y, xo), "");
    LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), best);
    LLVMBuildStore(c->b, cg_i64(c, -1), at);
    window_begin(c, &w, &gm, z, y, xo);
    if (mx) {
        LLVMValueRef v = LLVMBuildLoad2(c->b, ty, cg_gep(c, t, xq, w.k), "");
        /* PyTorch's v > best || isnan(v), and the first element inside */
        LLVMValueRef take = LLVMBuildOr(
            c->b,
            LLVMBuildICmp(c->b, LLVMIntSLT, LLVMBuildLoad2(c->b, c->i64, at, ""), cg_i64(c, 0), ""),
            LLVMBuildOr(c->b,
                        LLVMBuildFCmp(c->b, LLVMRealOGT, v, LLVMBuildLoad2(c->b, ty, best, ""), ""),
                        LLVMBuildFCmp(c->b, LLVMRealUNO, v, v, ""), ""),
            "");
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, take, v, LLVMBuildLoad2(c->b, ty, best, ""), ""),
                       best);
        LLVMBuildStore(
            c->b, LLVMBuildSelect(c->b, take, w.k, LLVMBuildLoad2(c->b, c->i64, at, ""), ""), at);
    } else {
        LLVMValueRef p = cg_gep(c, t, oq, w.k);
        LLVMBuildStore(
            c->b, disjoint ? part : LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, p, ""), part, ""),
            p);
    }
    window_end(c, &w);
    if (mx && disjoint) {
        LLVMValueRef a = LLVMBuildLoad2(c->b, c->i64, at, "");
        window_begin(c, &w, &gm, z, y, xo);
        LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, w.k, a, "");
        LLVMBuildStore(c->b, LLVMBuildSelect(c->b, hit, g, cg_fconst(c, t, 0), ""),
                       cg_gep(c, t, oq, w.k));
        window_end(c, &w);
    } else if (mx) {
        /* a window wholly in the padding has no element to take dy */
        LLVMValueRef a = LLVMBuildLoad2(c->b, c->i64, at, "");
        LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "found");
        LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "done");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, a, cg_i64(c, 0), ""), then, done);
        LLVMPositionBuilderAtEnd(c->b, then);
        LLVMValueRef p = cg_gep(c, t, oq, a);
        LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, p, ""), g, ""), p);
        LLVMBuildBr(c->b, done);
        LLVMPositionBuilderAtEnd(c->b, done);
    }
    cg_loop_end(c, &lx);
    cg_loop_end(c, &ly);
    cg_loop_end(c, &lz);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* stochastic_pool2d_grad(y, x, dy): each window's dy at the input y's
 * training kernel sampled (pool_sample, the same draw again) */
static LLVMValueRef k_stochastic_pool_grad(Cg *c, Node *n)
{
    Node *pool = n->in[0], *x = n->in[1];
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 2), dy = LLVMGetParam(fn, 3);
    PoolGeom gm = pool_geom(pool, &x->shape, &pool->shape);
    int64_t H = gm.H, W = gm.W, OH = gm.OH, OW = gm.OW;
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    cg_zero(c, t, out, cg_mul(c, planes, cg_i64(c, H * W)));
    CgLoop lq, ly, lx;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef xq = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef oq = cg_gep(c, t, out, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    LLVMValueRef at =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, q, cg_i64(c, OH)), y), cg_i64(c, OW)), xo);
    PoolPick pick = pool_sample(c, pool, xq, y, xo, at);
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "picked");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, pick.at, cg_i64(c, 0), ""), then, done);
    LLVMPositionBuilderAtEnd(c->b, then);
    LLVMValueRef p = cg_gep(c, t, oq, pick.at);
    LLVMBuildStore(
        c->b, LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, ty, p, ""), cg_load(c, t, dy, at), ""), p);
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    cg_loop_end(c, &lx);
    cg_loop_end(c, &ly);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* ---- upsampling -------------------------------------------------------------
 * upsample and upsample_grad (ops.def). The shapes are static, so each
 * output row's and column's source rows or columns and weights are
 * computed here, in double, into constant tables: nearest reads one input
 * (floor(o * in / out)); bilinear blends two rows and two columns at
 * PyTorch's source coordinate. The gradient zeroes its output and adds
 * each dy times the weights back to the inputs it was read from. */

/* the first and second source index and the second's weight of output o */
static void resample_at(Node *n, int64_t o, int64_t in, int64_t out, int64_t *i0, int64_t *i1,
                        double *l1)
{
    if (strcmp(attr_mode(n), "nearest") == 0) {
        *i0 = *i1 = o * in / out;
        *l1 = 0;
        return;
    }
    double s;
    if (attr_align_corners(n))
        s = out > 1 ? (double)(o * (in - 1)) / (double)(out - 1) : 0;
    else
        s = fmax(0, ((double)o + 0.5) * (double)in / (double)out - 0.5);
    *i0 = (int64_t)s < in - 1 ? (int64_t)s : in - 1;
    *i1 = *i0 + (*i0 < in - 1);
    *l1 = s - (double)*i0;
}

typedef struct {
    LLVMValueRef i0, i1, w0, w1; /* constant tables of 'out' entries */
} Resample;

static Resample resample_tables(Cg *c, Node *n, DType t, int64_t in, int64_t out)
{
    LLVMValueRef *i0 = arena_alloc(c->g->arena, sizeof *i0 * (size_t)out * 4);
    LLVMValueRef *i1 = i0 + out, *w0 = i1 + out, *w1 = w0 + out;
    for (int64_t o = 0; o < out; o++) {
        int64_t a, b;
        double l;
        resample_at(n, o, in, out, &a, &b, &l);
        i0[o] = cg_i64(c, a);
        i1[o] = cg_i64(c, b);
        w0[o] = cg_fconst(c, t, 1 - l);
        w1[o] = cg_fconst(c, t, l);
    }
    LLVMTypeRef ft = cg_type(c, t);
    return (Resample){
        cg_private_const(c, LLVMConstArray2(c->i64, i0, (uint64_t)out), "resample.i0", true),
        cg_private_const(c, LLVMConstArray2(c->i64, i1, (uint64_t)out), "resample.i1", true),
        cg_private_const(c, LLVMConstArray2(ft, w0, (uint64_t)out), "resample.w0", true),
        cg_private_const(c, LLVMConstArray2(ft, w1, (uint64_t)out), "resample.w1", true)};
}

static LLVMValueRef load_i64(Cg *c, LLVMValueRef table, LLVMValueRef i)
{
    return LLVMBuildLoad2(c->b, c->i64, LLVMBuildInBoundsGEP2(c->b, c->i64, table, &i, 1, ""), "");
}

static LLVMValueRef k_upsample(Cg *c, Node *n)
{
    bool grad = n->op == OP_UPSAMPLE_GRAD, nearest = strcmp(attr_mode(n), "nearest") == 0;
    Node *x = n->in[0];
    const Shape *ys = grad ? &n->in[1]->shape : &n->shape;
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, grad ? 2 : 1);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    LLVMValueRef dy = grad ? LLVMGetParam(fn, 2) : NULL;
    int64_t H = x->shape.d[2].n, W = x->shape.d[3].n, OH = ys->d[2].n, OW = ys->d[3].n;
    Resample rows = resample_tables(c, n, t, H, OH), cols = resample_tables(c, n, t, W, OW);
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    if (grad)
        cg_zero(c, t, out, cg_mul(c, planes, cg_i64(c, H * W)));
    CgLoop lq, ly, lx;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef plane = cg_gep(c, t, grad ? out : src, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef r[2] = {cg_mul(c, load_i64(c, rows.i0, y), cg_i64(c, W)),
                         cg_mul(c, load_i64(c, rows.i1, y), cg_i64(c, W))};
    LLVMValueRef wy[2] = {cg_load(c, t, rows.w0, y), cg_load(c, t, rows.w1, y)};
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    LLVMValueRef k[2] = {load_i64(c, cols.i0, xo), load_i64(c, cols.i1, xo)};
    LLVMValueRef wx[2] = {cg_load(c, t, cols.w0, xo), cg_load(c, t, cols.w1, xo)};
    LLVMValueRef at =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, q, cg_i64(c, OH)), y), cg_i64(c, OW)), xo);
    LLVMValueRef g = grad ? cg_load(c, t, dy, at) : NULL, sum = NULL;
    for (int i = 0; i < (nearest ? 1 : 2); i++)
        for (int j = 0; j < (nearest ? 1 : 2); j++) {
            LLVMValueRef idx = cg_add(c, r[i], k[j]);
            LLVMValueRef w = nearest ? NULL : LLVMBuildFMul(c->b, wy[i], wx[j], "");
            if (grad) {
                LLVMValueRef d = w ? LLVMBuildFMul(c->b, g, w, "") : g;
                cg_store(c, t, LLVMBuildFAdd(c->b, cg_load(c, t, plane, idx), d, ""), plane, idx);
            } else {
                LLVMValueRef v = cg_load(c, t, plane, idx);
                v = w ? LLVMBuildFMul(c->b, v, w, "") : v;
                sum = sum ? LLVMBuildFAdd(c->b, sum, v, "") : v;
            }
        }
    if (!grad)
        cg_store(c, t, sum, out, at);
    cg_loop_end(c, &lx);
    cg_loop_end(c, &ly);
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

LLVMValueRef cg_kernel_pool(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_MAX_POOL1D:
    case OP_AVG_POOL1D:
    case OP_MAX_POOL3D:
    case OP_AVG_POOL3D:
    case OP_MAX_POOL2D:
    case OP_AVG_POOL2D:
    case OP_LP_POOL2D: return k_pool(c, step);
    case OP_STOCHASTIC_POOL2D:
        return c->training ? k_stochastic_pool_train(c, step) : k_pool(c, step);
    case OP_GLOBAL_AVG_POOL:
    case OP_GLOBAL_MAX_POOL: return k_global_pool(c, step);
    case OP_ADAPTIVE_AVG_POOL2D:
    case OP_ADAPTIVE_MAX_POOL2D:
    case OP_ADAPTIVE_AVG_POOL2D_GRAD:
    case OP_ADAPTIVE_MAX_POOL2D_GRAD: return k_adaptive_pool(c, step);
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D_GRAD: return k_pool_grad(c, step);
    case OP_STOCHASTIC_POOL2D_GRAD: return k_stochastic_pool_grad(c, step);
    case OP_UPSAMPLE:
    case OP_UPSAMPLE_GRAD: return k_upsample(c, step);
    default: die("codegen: %s is not a pooling or resampling op", op_info[step->op].text);
    }
}
