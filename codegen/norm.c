/*
 * The normalization kernels (K_NORM in the op table; passes/shape_nn.c,
 * passes/grad_nn.c): batch norm, in inference and in training (batch
 * statistics, the running statistics updated in place), and layer norm.
 * Loop nests; the statistics of a channel or a row accumulate in double
 * (in lanes, cg_sum_add_run, for f32 data in runs of a known length).
 * Their gradients are graph nodes of other families (grad_nn.c).
 */
#include "cg_kernels.h"

/* ---- normalization ----------------------------------------------------------- */

/* A statistic's f64 sum over runs of S elements: with f32 data and S
 * known, in lanes (cg_sum_add_run), else one element after another. */
typedef struct {
    DType t;
    LLVMValueRef S;
    CgSum sum; /* its run: S when in lanes, else 0 */
} Sums;

static Sums sums_new(Cg *c, DType t, LLVMValueRef S)
{
    bool lanes =
        t == DT_F32 && LLVMIsAConstantInt(S) && LLVMConstIntGetSExtValue(S) >= CG_SUM_LANES;
    return (Sums){t, S, cg_sum_new(c, c->f64, lanes ? LLVMConstIntGetSExtValue(S) : 0)};
}

static void sums_start(Cg *c, Sums *s)
{
    cg_sum_start(c, &s->sum, cg_fconst(c, DT_F64, 0));
}

/* the S elements at src + base, or with center their squared deviations */
static void sums_add(Cg *c, Sums *s, LLVMValueRef src, LLVMValueRef base, LLVMValueRef center)
{
    if (s->sum.run) {
        cg_sum_add_run(c, &s->sum, s->t, cg_gep(c, s->t, src, base), center);
        return;
    }
    CgLoop ls;
    LLVMValueRef j = cg_loop_begin(c, s->S, &ls);
    LLVMValueRef e = cg_to_f64(c, s->t, cg_load(c, s->t, src, cg_add(c, base, j)));
    if (center) {
        e = LLVMBuildFSub(c->b, e, center, "");
        e = LLVMBuildFMul(c->b, e, e, "");
    }
    LLVMBuildStore(c->b, LLVMBuildFAdd(c->b, cg_get(c, c->f64, s->sum.at), e, ""), s->sum.at);
    cg_loop_end(c, &ls);
}

/* Training: per channel, the batch mean and biased variance over every
 * other dimension (accumulated in f64), then the running statistics,
 * state the kernel updates in place with PyTorch's momentum:
 * r = (1 - momentum) r + momentum s, the variance unbiased (n / (n - 1),
 * n the values per channel; the biased one when n is 1). */
static void batch_stats(Cg *c, Node *n, LLVMValueRef src, LLVMValueRef mean, LLVMValueRef var,
                        LLVMValueRef ch, LLVMValueRef *m, LLVMValueRef *v)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    int64_t C = x->shape.d[1].n;
    LLVMValueRef N = cg_dim(c, x->shape.d[0]), S = cg_tail_numel(c, &x->shape, 2);
    LLVMValueRef cnt = LLVMBuildSIToFP(c->b, cg_mul(c, N, S), c->f64, "");
    Sums acc = sums_new(c, t, S);
    LLVMValueRef mu = NULL;
    for (int pass = 0; pass < 2; pass++) {
        sums_start(c, &acc);
        CgLoop lb;
        LLVMValueRef b = cg_loop_begin(c, N, &lb);
        LLVMValueRef base = cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, C)), ch), S);
        sums_add(c, &acc, src, base, mu);
        cg_loop_end(c, &lb);
        LLVMValueRef r = LLVMBuildFDiv(c->b, cg_sum_total(c, &acc.sum), cnt, "");
        if (pass == 0)
            mu = r;
        else
            *v = r;
    }
    *m = mu;
    double mom = attr_momentum(n);
    LLVMValueRef keep = LLVMConstReal(c->f64, 1 - mom), take = LLVMConstReal(c->f64, mom);
    LLVMValueRef one = LLVMConstReal(c->f64, 1);
    LLVMValueRef many = LLVMBuildFCmp(c->b, LLVMRealOGT, cnt, one, "");
    LLVMValueRef unbiased = LLVMBuildSelect(c->b, many,
                                            LLVMBuildFDiv(c->b, LLVMBuildFMul(c->b, *v, cnt, ""),
                                                          LLVMBuildFSub(c->b, cnt, one, ""), ""),
                                            *v, "");
    LLVMValueRef stats[2][2] = {{mean, mu}, {var, unbiased}};
    for (int i = 0; i < 2; i++) {
        LLVMValueRef old = cg_to_f64(c, t, cg_load(c, t, stats[i][0], ch));
        LLVMValueRef r = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, keep, old, ""),
                                       LLVMBuildFMul(c->b, take, stats[i][1], ""), "");
        cg_store(c, t, cg_from_f64(c, t, r), stats[i][0], ch);
    }
}

/* (x - mean) * gamma / sqrt(var + eps) + beta per channel: in inference
 * with the running statistics (inputs 3 and 4), in training with the
 * batch's (batch_stats). Channel-major, so training computes each
 * channel's statistics once; a channel's values, statistics and running
 * statistics are its own, so in training ranges of channels run as tasks
 * on the thread pool (BN_CHANNEL_WORK elements a task at the largest
 * batch) and the bits do not depend on who ran them. vals: out, src,
 * gamma, beta, mean, var, batch. */
enum { BN_CHANNEL_WORK = 1 << 15 };

static void bn_channels(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    Node *n = ctx, *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef out = vals[0], src = vals[1], gamma = vals[2], beta = vals[3], mean = vals[4],
                 var = vals[5];
    c->batch = vals[6];
    int64_t C = x->shape.d[1].n;
    LLVMValueRef S = cg_tail_numel(c, &x->shape, 2);
    double eps = attr_eps(n);
    CgLoop lb, lc, ls;
    LLVMValueRef ch = cg_add(c, lo, cg_loop_begin(c, LLVMBuildNSWSub(c->b, hi, lo, ""), &lc));
    LLVMValueRef m, vr;
    if (c->training) {
        batch_stats(c, n, src, mean, var, ch, &m, &vr);
        m = cg_from_f64(c, t, m);
        vr = cg_from_f64(c, t, vr);
    } else {
        m = cg_load(c, t, mean, ch);
        vr = cg_load(c, t, var, ch);
    }
    LLVMValueRef sd = LLVMBuildFAdd(c->b, vr, cg_fconst(c, t, eps), "");
    sd = cg_intrinsic(c, "llvm.sqrt", cg_type(c, t), &sd, 1);
    LLVMValueRef scale = LLVMBuildFDiv(c->b, cg_load(c, t, gamma, ch), sd, "");
    LLVMValueRef shift = cg_load(c, t, beta, ch);
    LLVMValueRef b = cg_loop_begin(c, cg_dim(c, x->shape.d[0]), &lb);
    LLVMValueRef base = cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, C)), ch), S);
    LLVMValueRef s = cg_loop_begin(c, S, &ls);
    LLVMValueRef at = cg_add(c, base, s);
    LLVMValueRef v = LLVMBuildFSub(c->b, cg_load(c, t, src, at), m, "");
    cg_store(c, t, LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, v, scale, ""), shift, ""), out, at);
    cg_loop_end(c, &ls);
    cg_loop_end(c, &lb);
    cg_loop_end(c, &lc);
}

static LLVMValueRef k_batch_norm(Cg *c, Node *n)
{
    const Shape *xs = &n->in[0]->shape;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 5), batch = c->batch;
    LLVMValueRef vals[7];
    for (int i = 0; i < 6; i++)
        vals[i] = LLVMGetParam(fn, (unsigned)i);
    vals[6] = batch;
    int64_t per = 1; /* elements of a channel at the largest batch */
    for (int d = 0; d < xs->rank; d++)
        if (d != 1)
            per *= ir_dim_max(c->g, xs->d[d]);
    /* in inference, one pass: the call site cuts it into batch rows
     * instead (parallel.c), as the convolution before it */
    int64_t chunk = !c->training             ? xs->d[1].n
                    : per >= BN_CHANNEL_WORK ? 1
                                             : (BN_CHANNEL_WORK + per - 1) / per;
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%.*s.channels", (int)len, name),
                       cg_i64(c, xs->d[1].n), chunk, vals, countof(vals), bn_channels, n);
    c->fn = fn;
    c->batch = batch;
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* Each row of the dimensions axis.. normalized with its mean and biased
 * variance, then scaled by gamma and shifted by beta of the row's shape. */
static LLVMValueRef k_layer_norm(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    LLVMValueRef gamma = LLVMGetParam(fn, 2), beta = LLVMGetParam(fn, 3);
    int axis = (int)attr_axis(n);
    Shape outer = {0}, row = {0};
    for (int d = 0; d < x->shape.rank; d++) {
        Shape *s = d < axis ? &outer : &row;
        s->d[s->rank++] = x->shape.d[d];
    }
    LLVMValueRef I = cg_numel(c, &row);
    Sums acc = sums_new(c, t, I);
    LLVMValueRef fi = LLVMBuildSIToFP(c->b, I, c->f64, "");
    CgLoop lo, lj;
    LLVMValueRef o = cg_loop_begin(c, cg_numel(c, &outer), &lo);
    LLVMValueRef base = cg_mul(c, o, I);
    sums_start(c, &acc);
    sums_add(c, &acc, src, base, NULL);
    LLVMValueRef mean = LLVMBuildFDiv(c->b, cg_sum_total(c, &acc.sum), fi, "");
    sums_start(c, &acc);
    sums_add(c, &acc, src, base, mean);
    LLVMValueRef var = LLVMBuildFDiv(c->b, cg_sum_total(c, &acc.sum), fi, "");
    LLVMValueRef sd = LLVMBuildFAdd(c->b, var, LLVMConstReal(c->f64, attr_eps(n)), "");
    sd = cg_intrinsic(c, "llvm.sqrt", c->f64, &sd, 1);
    LLVMValueRef rstd = cg_from_f64(c, t, LLVMBuildFDiv(c->b, LLVMConstReal(c->f64, 1), sd, ""));
    LLVMValueRef m = cg_from_f64(c, t, mean);
    LLVMValueRef j = cg_loop_begin(c, I, &lj);
    LLVMValueRef at = cg_add(c, base, j);
    LLVMValueRef v =
        LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, cg_load(c, t, src, at), m, ""), rstd, "");
    v = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, v, cg_load(c, t, gamma, j), ""),
                      cg_load(c, t, beta, j), "");
    cg_store(c, t, v, out, at);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lo);
    LLVMBuildRetVoid(c->b);
    return fn;
}

LLVMValueRef cg_kernel_norm(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_BATCH_NORM: return k_batch_norm(c, step);
    case OP_LAYER_NORM: return k_layer_norm(c, step);
    default: die("codegen: %s is not a normalization op", op_info[step->op].text);
    }
}
