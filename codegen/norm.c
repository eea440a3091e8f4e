/*
 * The normalization kernels (K_NORM in the op table; passes/shape_nn.c,
 * passes/grad_nn.c): batch norm, in inference and in training (batch
 * statistics, the running statistics updated in place), and layer norm.
 * Loop nests; the statistics of a channel or a row accumulate in double
 * (in lanes, cg_sum_add_run, for f32 data in runs of a known length).
 * Their gradients are graph nodes of other families (grad_nn.c).
 */
#include <string.h>

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

/* The S elements at src + base into s[0], or with center their squared
 * deviations; with dy (ns = 3) also, in the same pass, dy's S elements
 * at dy + base into s[1] and the deviations times them into s[2]. */
static void sums_add(Cg *c, Sums *s, int ns, LLVMValueRef src, LLVMValueRef dy, LLVMValueRef base,
                     LLVMValueRef center)
{
    DType t = s->t;
    LLVMValueRef x = cg_gep(c, t, src, base), g = dy ? cg_gep(c, t, dy, base) : NULL;
    CgSumTerm terms[3] = {{.s = &s[0].sum, .p = x, .center = center},
                          {.s = ns == 3 ? &s[1].sum : NULL, .p = g},
                          {.s = ns == 3 ? &s[2].sum : NULL, .p = x, .center = center, .q = g}};
    cg_sums_add(c, t, terms, ns, s->S);
}

/* 1 / sqrt(var + eps), in f64 */
static LLVMValueRef rstd_of(Cg *c, LLVMValueRef var, double eps)
{
    LLVMValueRef sd = LLVMBuildFAdd(c->b, var, LLVMConstReal(c->f64, eps), "");
    sd = cg_intrinsic(c, "llvm.sqrt", c->f64, &sd, 1);
    return LLVMBuildFDiv(c->b, LLVMConstReal(c->f64, 1), sd, "");
}

/* The loop over a task's channels [lo, hi): the channel */
static LLVMValueRef channels_begin(Cg *c, LLVMValueRef lo, LLVMValueRef hi, CgLoop *l)
{
    return cg_add(c, lo, cg_loop_begin(c, LLVMBuildNSWSub(c->b, hi, lo, ""), l));
}

/* Where channel ch of image b starts in x [N, C, ...] (S elements a
 * channel) */
static LLVMValueRef channel_base(Cg *c, int64_t C, LLVMValueRef b, LLVMValueRef ch, LLVMValueRef S)
{
    return cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, C)), ch), S);
}

/* Channel ch's run of image b + 1 (of image b, the last) in each of the
 * n tensors at p[] [N, C, ...], asked for while image b's runs are read
 * or written: a channel's runs are C runs apart, each a new stream the
 * hardware's prefetchers are slow to follow, and the kernels waited on
 * memory. In the ResNet example, batch norm in training 390 -> 250 us
 * at 64 channels of 14x14, 540 -> 470 at 16 of 28x28; its gradient's
 * statistics 595 -> 535, its input gradient 143 -> 96 at 7x7. The
 * output's runs are asked for too: writing them missed as reading did.
 * A run ahead is enough: more (images of 1024 elements and more) was
 * slower. */
static void prefetch_next_image(Cg *c, DType t, const LLVMValueRef *p, int n, int64_t C,
                                LLVMValueRef b, LLVMValueRef N, LLVMValueRef ch, LLVMValueRef S)
{
    LLVMValueRef nb =
        cg_smin(c, cg_add(c, b, cg_i64(c, 1)), LLVMBuildSub(c->b, N, cg_i64(c, 1), ""));
    LLVMValueRef base = channel_base(c, C, nb, ch, S), rows[3];
    check(n <= (int)countof(rows));
    for (int i = 0; i < n; i++)
        rows[i] = cg_gep(c, t, p[i], base);
    cg_prefetch_rows(c, t, rows, n, S);
}

/* Channel ch of x [N, C, ...] at src: the f64 mean *m (of the S-element
 * runs of the N images), then in a second pass the biased variance *v
 * and, with dy, sums[1] = sum(dy) and sums[2] = sum((x - mean) dy). *cnt:
 * the channel's values, N*S. */
static void channel_moments(Cg *c, const Node *x, LLVMValueRef src, LLVMValueRef dy,
                            LLVMValueRef ch, LLVMValueRef *m, LLVMValueRef *v, LLVMValueRef *cnt,
                            Sums *sums)
{
    int64_t C = x->shape.d[1].n;
    LLVMValueRef N = cg_dim(c, x->shape.d[0]), S = cg_tail_numel(c, &x->shape, 2);
    *cnt = LLVMBuildSIToFP(c->b, cg_mul(c, N, S), c->f64, "");
    int ns = dy ? 3 : 1;
    for (int k = 0; k < ns; k++)
        sums[k] = sums_new(c, x->dtype, S);
    *m = NULL;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < (pass ? ns : 1); k++)
            sums_start(c, &sums[k]);
        CgLoop lb;
        LLVMValueRef b = cg_loop_begin(c, N, &lb);
        if (!pass || dy) /* (the second pass reads x from the cache) */
            prefetch_next_image(c, x->dtype, pass ? &dy : &src, 1, C, b, N, ch, S);
        sums_add(c, sums, pass ? ns : 1, src, pass ? dy : NULL, channel_base(c, C, b, ch, S), *m);
        cg_loop_end(c, &lb);
        LLVMValueRef r = LLVMBuildFDiv(c->b, cg_sum_total(c, &sums[0].sum), *cnt, "");
        if (pass == 0)
            *m = r;
        else
            *v = r;
    }
}

/* Training: per channel, the batch mean and biased variance over every
 * other dimension (accumulated in f64), then the running statistics,
 * state the kernel updates in place with PyTorch's momentum:
 * r = (1 - momentum) r + momentum s, the variance unbiased (n / (n - 1),
 * n the values per channel; the biased one when n is 1). */
static void batch_stats(Cg *c, Node *n, LLVMValueRef src, LLVMValueRef mean, LLVMValueRef var,
                        LLVMValueRef ch, LLVMValueRef *m, LLVMValueRef *v)
{
    DType t = n->dtype;
    LLVMValueRef cnt;
    Sums sums[1];
    channel_moments(c, n->in[0], src, NULL, ch, m, v, &cnt, sums);
    double mom = attr_momentum(n);
    LLVMValueRef keep = LLVMConstReal(c->f64, 1 - mom), take = LLVMConstReal(c->f64, mom);
    LLVMValueRef one = LLVMConstReal(c->f64, 1);
    LLVMValueRef many = LLVMBuildFCmp(c->b, LLVMRealOGT, cnt, one, "");
    LLVMValueRef unbiased = LLVMBuildSelect(c->b, many,
                                            LLVMBuildFDiv(c->b, LLVMBuildFMul(c->b, *v, cnt, ""),
                                                          LLVMBuildFSub(c->b, cnt, one, ""), ""),
                                            *v, "");
    LLVMValueRef stats[2][2] = {{mean, *m}, {var, unbiased}};
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

typedef struct {
    Node *n;
    const CgChain *chain; /* applied to each value, or NULL */
} BnCtx;

static void bn_channels(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const BnCtx *bc = ctx;
    Node *n = bc->n, *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef out = vals[0], src = vals[1], gamma = vals[2], beta = vals[3], mean = vals[4],
                 var = vals[5];
    c->batch = vals[6];
    int64_t C = x->shape.d[1].n;
    LLVMValueRef S = cg_tail_numel(c, &x->shape, 2);
    double eps = attr_eps(n);
    CgLoop lb, lc, ls;
    LLVMValueRef ch = channels_begin(c, lo, hi, &lc);
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
    LLVMValueRef N = cg_dim(c, x->shape.d[0]), b = cg_loop_begin(c, N, &lb);
    prefetch_next_image(c, t, &out, 1, C, b, N, ch, S);
    LLVMValueRef base = channel_base(c, C, b, ch, S);
    LLVMValueRef s = cg_loop_begin(c, S, &ls);
    LLVMValueRef at = cg_add(c, base, s);
    LLVMValueRef v = LLVMBuildFSub(c->b, cg_load(c, t, src, at), m, "");
    v = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, v, scale, ""), shift, "");
    cg_store(c, t, bc->chain ? bc->chain->apply(c, bc->chain, vals + 7, v, at) : v, out, at);
    cg_loop_end(c, &ls);
    cg_loop_end(c, &lb);
    cg_loop_end(c, &lc);
}

/* Channels a task: enough for BN_CHANNEL_WORK values at the largest
 * batch. */
static int64_t channel_chunk(Cg *c, const Shape *xs)
{
    int64_t per = 1; /* elements of a channel at the largest batch */
    for (int d = 0; d < xs->rank; d++)
        if (d != 1)
            per *= ir_dim_max(c->g, xs->d[d]);
    return per >= BN_CHANNEL_WORK ? 1 : (BN_CHANNEL_WORK + per - 1) / per;
}

/* n over ranges of channels of its input 0, each range body(vals, ctx),
 * in the current kernel function; vals: the output, n's nin inputs
 * (ptrs), the batch, then chain's values (chain may be NULL). */
static void in_channels(Cg *c, Node *n, LLVMValueRef *ptrs, int nin, int64_t chunk,
                        CgChunkBody body, void *ctx, const CgChain *chain)
{
    LLVMValueRef fn = c->fn, batch = c->batch;
    int more = chain ? chain->nvals : 0;
    LLVMValueRef *vals = arena_alloc(c->g->arena, sizeof *vals * (size_t)(nin + 2 + more));
    memcpy(vals, ptrs, sizeof *vals * (size_t)(nin + 1));
    vals[nin + 1] = batch;
    for (int i = 0; i < more; i++)
        vals[nin + 2 + i] = chain->vals[i];
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%.*s.channels", (int)len, name),
                       cg_i64(c, n->in[0]->shape.d[1].n), chunk, vals, nin + 2 + more, body, ctx);
    c->fn = fn;
    c->batch = batch;
}

/* The kernel of n over ranges of channels (in_channels) */
static LLVMValueRef by_channels(Cg *c, Node *n, int nin, int64_t chunk, CgChunkBody body)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, nin), ptrs[8];
    check(nin + 1 <= (int)countof(ptrs));
    for (int i = 0; i <= nin; i++)
        ptrs[i] = LLVMGetParam(fn, (unsigned)i);
    in_channels(c, n, ptrs, nin, chunk, body, n, NULL);
    LLVMBuildRetVoid(c->b);
    return fn;
}

void cg_emit_batch_norm(Cg *c, Node *n, LLVMValueRef out, LLVMValueRef *ins, const CgChain *chain)
{
    const Shape *xs = &n->in[0]->shape;
    LLVMValueRef ptrs[6] = {out};
    memcpy(ptrs + 1, ins, sizeof *ptrs * 5);
    BnCtx bc = {n, chain};
    /* in inference, one pass: the call site cuts it into batch rows
     * instead (parallel.c), as the convolution before it */
    in_channels(c, n, ptrs, 5, c->training ? channel_chunk(c, xs) : xs->d[1].n, bn_channels, &bc,
                chain);
}

static LLVMValueRef k_batch_norm(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 5), ins[5];
    for (int i = 0; i < 5; i++)
        ins[i] = LLVMGetParam(fn, (unsigned)i + 1);
    cg_emit_batch_norm(c, n, LLVMGetParam(fn, 0), ins, NULL);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* The gradients of batch norm in training (grad_nn.c), channel by
 * channel as the forward. A channel's values are a few hundred KiB at
 * most in these models, so a pass after the first reads them from the
 * cache. */

/* batch_norm_grad_stats: the moments as the forward computes them, the
 * second pass also summing dy and dy (x - mean): gamma's adjoint is
 * sum(dy xhat) = rstd sum(dy (x - mean)), beta's sum(dy), all in f64.
 * vals: out, x, dy, batch. */
static void bn_grad_stats(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    Node *n = ctx, *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef out = vals[0];
    c->batch = vals[3];
    CgLoop lc;
    LLVMValueRef ch = channels_begin(c, lo, hi, &lc);
    LLVMValueRef m, v, cnt;
    Sums sums[3];
    channel_moments(c, x, vals[1], vals[2], ch, &m, &v, &cnt, sums);
    LLVMValueRef rstd = rstd_of(c, v, attr_eps(n));
    LLVMValueRef row[4] = {m, rstd, LLVMBuildFMul(c->b, rstd, cg_sum_total(c, &sums[2].sum), ""),
                           cg_sum_total(c, &sums[1].sum)};
    for (int r = 0; r < 4; r++)
        cg_store(c, t, cg_from_f64(c, t, row[r]), out,
                 cg_add(c, ch, cg_i64(c, r * x->shape.d[1].n)));
    cg_loop_end(c, &lc);
}

/* batch_norm_grad: dx = k (dy - b - q (x - mean)), with k = gamma rstd,
 * b = beta' / M, q = rstd gamma' / M (gamma', beta' the adjoints in the
 * statistics; M the channel's values): the terms that cancel (dy and
 * its mean, exactly for a channel of one value) are subtracted before
 * the scale. vals: out, x, gamma, dy, stats, batch. */
static void bn_grad_input(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    Node *n = ctx, *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef out = vals[0], src = vals[1], gamma = vals[2], dy = vals[3], st = vals[4];
    c->batch = vals[5];
    int64_t C = x->shape.d[1].n;
    LLVMValueRef N = cg_dim(c, x->shape.d[0]), S = cg_tail_numel(c, &x->shape, 2);
    CgLoop lc, lb, ls;
    LLVMValueRef ch = channels_begin(c, lo, hi, &lc);
    LLVMValueRef row[4];
    for (int r = 0; r < 4; r++)
        row[r] = cg_to_f64(c, t, cg_load(c, t, st, cg_add(c, ch, cg_i64(c, r * C))));
    LLVMValueRef cnt = LLVMBuildSIToFP(c->b, cg_mul(c, N, S), c->f64, "");
    LLVMValueRef k = LLVMBuildFMul(c->b, cg_to_f64(c, t, cg_load(c, t, gamma, ch)), row[1], "");
    LLVMValueRef b = LLVMBuildFDiv(c->b, row[3], cnt, "");
    LLVMValueRef q = LLVMBuildFDiv(c->b, LLVMBuildFMul(c->b, row[1], row[2], ""), cnt, "");
    LLVMValueRef kt = cg_from_f64(c, t, k), bt = cg_from_f64(c, t, b), qt = cg_from_f64(c, t, q),
                 mt = cg_from_f64(c, t, row[0]);
    LLVMValueRef img = cg_loop_begin(c, N, &lb), runs[] = {src, dy, out};
    prefetch_next_image(c, t, runs, countof(runs), C, img, N, ch, S);
    LLVMValueRef base = channel_base(c, C, img, ch, S);
    LLVMValueRef at = cg_add(c, base, cg_loop_begin(c, S, &ls));
    LLVMValueRef d = LLVMBuildFSub(c->b, cg_load(c, t, src, at), mt, "");
    LLVMValueRef u = LLVMBuildFSub(c->b, cg_load(c, t, dy, at), bt, "");
    u = LLVMBuildFSub(c->b, u, LLVMBuildFMul(c->b, qt, d, ""), "");
    cg_store(c, t, LLVMBuildFMul(c->b, kt, u, ""), out, at);
    cg_loop_end(c, &ls);
    cg_loop_end(c, &lb);
    cg_loop_end(c, &lc);
}

/* x's rows for layer norm and its gradients: *outer the dimensions
 * before axis, *I the elements of a row. */
static void ln_rows(Cg *c, const Node *x, int axis, Shape *outer, LLVMValueRef *I)
{
    Shape row = {0};
    *outer = (Shape){0};
    for (int d = 0; d < x->shape.rank; d++) {
        Shape *s = d < axis ? outer : &row;
        s->d[s->rank++] = x->shape.d[d];
    }
    *I = cg_numel(c, &row);
}

/* The f64 mean and 1 / sqrt(var + eps) of the I elements at src + base
 * (fi: I in f64), in two passes. */
static void row_moments(Cg *c, Sums *acc, LLVMValueRef src, LLVMValueRef base, LLVMValueRef fi,
                        double eps, LLVMValueRef *mean, LLVMValueRef *rstd)
{
    sums_start(c, acc);
    sums_add(c, acc, 1, src, NULL, base, NULL);
    *mean = LLVMBuildFDiv(c->b, cg_sum_total(c, &acc->sum), fi, "");
    sums_start(c, acc);
    sums_add(c, acc, 1, src, NULL, base, *mean);
    *rstd = rstd_of(c, LLVMBuildFDiv(c->b, cg_sum_total(c, &acc->sum), fi, ""), eps);
}

/* Each row of the dimensions axis.. normalized with its mean and biased
 * variance, then scaled by gamma and shifted by beta of the row's shape;
 * layer_norm_stats: each row's mean and rstd alone. */
static LLVMValueRef k_layer_norm(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    bool stats = n->op == OP_LAYER_NORM_STATS;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, stats ? 1 : 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1);
    Shape outer;
    LLVMValueRef I;
    ln_rows(c, x, (int)attr_axis(n), &outer, &I);
    Sums acc = sums_new(c, t, I);
    LLVMValueRef fi = LLVMBuildSIToFP(c->b, I, c->f64, "");
    CgLoop lo, lj;
    LLVMValueRef o = cg_loop_begin(c, cg_numel(c, &outer), &lo);
    LLVMValueRef base = cg_mul(c, o, I);
    LLVMValueRef mean, rstd;
    row_moments(c, &acc, src, base, fi, attr_eps(n), &mean, &rstd);
    rstd = cg_from_f64(c, t, rstd);
    LLVMValueRef m = cg_from_f64(c, t, mean);
    if (stats) {
        LLVMValueRef at = cg_mul(c, o, cg_i64(c, 2));
        cg_store(c, t, m, out, at);
        cg_store(c, t, rstd, out, cg_add(c, at, cg_i64(c, 1)));
    } else {
        LLVMValueRef gamma = LLVMGetParam(fn, 2), beta = LLVMGetParam(fn, 3);
        LLVMValueRef j = cg_loop_begin(c, I, &lj);
        LLVMValueRef at = cg_add(c, base, j);
        LLVMValueRef v =
            LLVMBuildFMul(c->b, LLVMBuildFSub(c->b, cg_load(c, t, src, at), m, ""), rstd, "");
        v = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, v, cg_load(c, t, gamma, j), ""),
                          cg_load(c, t, beta, j), "");
        cg_store(c, t, v, out, at);
        cg_loop_end(c, &lj);
    }
    cg_loop_end(c, &lo);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* layer_norm_grad, row by row: with g = dy gamma, the row's sums of g
 * and g (x - mean) in one pass (f64, in lanes as the statistics), then
 * dx = rstd (g - a - (x - mean) q), a = sum(g) / I,
 * q = rstd^2 sum(g (x - mean)) / I: xhat mean(g xhat) without xhat. */
static LLVMValueRef k_layer_norm_grad(Cg *c, Node *n)
{
    Node *x = n->in[0];
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 4);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 1), gamma = LLVMGetParam(fn, 2),
                 dy = LLVMGetParam(fn, 3), st = LLVMGetParam(fn, 4);
    Shape outer;
    LLVMValueRef I;
    ln_rows(c, x, (int)attr_axis(n), &outer, &I);
    Sums sg = sums_new(c, t, I), sgx = sums_new(c, t, I);
    LLVMValueRef fi = LLVMBuildSIToFP(c->b, I, c->f64, "");
    CgLoop lo, lj;
    LLVMValueRef o = cg_loop_begin(c, cg_numel(c, &outer), &lo);
    LLVMValueRef base = cg_mul(c, o, I), two = cg_mul(c, o, cg_i64(c, 2));
    LLVMValueRef mt = cg_load(c, t, st, two), rt = cg_load(c, t, st, cg_add(c, two, cg_i64(c, 1)));
    LLVMValueRef m = cg_to_f64(c, t, mt), r = cg_to_f64(c, t, rt);
    LLVMValueRef xr = cg_gep(c, t, src, base), dyr = cg_gep(c, t, dy, base);
    sums_start(c, &sg);
    sums_start(c, &sgx);
    CgSumTerm terms[2] = {{.s = &sg.sum, .p = dyr, .q = gamma},
                          {.s = &sgx.sum, .p = xr, .center = m, .q = dyr, .q2 = gamma}};
    cg_sums_add(c, t, terms, 2, I);
    LLVMValueRef a = LLVMBuildFDiv(c->b, cg_sum_total(c, &sg.sum), fi, "");
    LLVMValueRef q = LLVMBuildFDiv(
        c->b, LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, r, r, ""), cg_sum_total(c, &sgx.sum), ""), fi,
        "");
    LLVMValueRef at = cg_from_f64(c, t, a), qt = cg_from_f64(c, t, q);
    LLVMValueRef j = cg_loop_begin(c, I, &lj);
    LLVMValueRef g = LLVMBuildFMul(c->b, cg_load(c, t, dyr, j), cg_load(c, t, gamma, j), "");
    LLVMValueRef d = LLVMBuildFSub(c->b, cg_load(c, t, xr, j), mt, "");
    LLVMValueRef u =
        LLVMBuildFSub(c->b, LLVMBuildFSub(c->b, g, at, ""), LLVMBuildFMul(c->b, d, qt, ""), "");
    cg_store(c, t, LLVMBuildFMul(c->b, rt, u, ""), cg_gep(c, t, out, base), j);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lo);
    LLVMBuildRetVoid(c->b);
    return fn;
}

LLVMValueRef cg_kernel_norm(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_BATCH_NORM: return k_batch_norm(c, step);
    case OP_LAYER_NORM:
    case OP_LAYER_NORM_STATS: return k_layer_norm(c, step);
    case OP_LAYER_NORM_GRAD: return k_layer_norm_grad(c, step);
    case OP_BATCH_NORM_GRAD_STATS:
        return by_channels(c, step, 2, channel_chunk(c, &step->in[0]->shape), bn_grad_stats);
    case OP_BATCH_NORM_GRAD:
        return by_channels(c, step, 4, channel_chunk(c, &step->in[0]->shape), bn_grad_input);
    default: die("codegen: %s is not a normalization op", op_info[step->op].text);
    }
}
