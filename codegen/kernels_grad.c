/*
 * Kernels of the convolution and pooling backward primitives that
 * autodiff builds (ops.def): conv_grad_input, conv_grad_weight,
 * max_pool2d_grad, avg_pool2d_grad and stochastic_pool2d_grad, called
 * through cg_kernel_nn. Like
 * the forward kernels (kernels_nn.c), the geometry is static and only the
 * loop over images runs to the run-time batch; a 1-d convolution is a 2-d
 * one of height 1.
 *
 * Both convolution gradients work one image and one group at a time with
 * the runtime's GEMM and im2col/col2im (runtime/conv.c), using the forward
 * convolution's geometry (C/g input channels of H x W, the kernel, OH x OW
 * output positions):
 *  - conv_grad_input(dy, w) is the adjoint of the forward product
 *    y_g = W_g @ col(x_g): the column matrix W_g^T @ dy_g [C/g*kh*kw, OH*OW]
 *    (the GEMM reads W_g transposed in place) goes to the step's scratch
 *    and dlrt_col2im adds each entry back into the pixel it came from.
 *  - conv_grad_weight(x, dy) = sum over images of dy_g @ col(x_g)^T: im2col
 *    of the image into scratch, then a GEMM with beta = 1 accumulating into
 *    the zeroed output, so the batch sums inside the GEMMs.
 * A 1x1, stride-1, unpadded kernel needs no column matrix (the image is
 * it): the plan gives such a step no scratch (passes/scratch.c) and the
 * absence of scratch picks that path, as for the forward convolution.
 *
 * Pooling gradients scatter each window's dy into the zeroed output, so
 * overlapping windows add up (disjoint windows store instead, k_pool_grad):
 * max to the window's arg-max as PyTorch
 * picks it (the first element greater than all before it, a NaN taking
 * over), avg as dy / (kh * kw) to each position inside the image
 * (count_include_pad: the padding takes its share and drops it),
 * stochastic to the input the training forward sampled (the same draw,
 * cg_pool_sample).
 */
#include <math.h>

#include "cg.h"

/* Zeroes count elements of type t at p. */
static void zero(Cg *c, DType t, LLVMValueRef p, LLVMValueRef count)
{
    LLVMBuildMemSet(c->b, p, LLVMConstInt(c->i8, 0, 0),
                    cg_mul(c, count, cg_i64(c, cg_dtype_size(t))), (unsigned)cg_dtype_size(t));
}

/* ---- convolution gradients ------------------------------------------------ */

/* dlrt_im2col_fXX / dlrt_col2im_fXX(geom, src, dst) with a private constant
 * dlrt_conv_geom (13 int64_t in its field order). */
static LLVMValueRef k_conv_grad(Cg *c, Node *n)
{
    bool gi = n->op == OP_CONV_GRAD_INPUT;
    /* the forward convolution's image x, output gradient dy and weight w */
    const Shape *xs = gi ? &n->shape : &n->in[0]->shape;
    const Shape *dys = gi ? &n->in[0]->shape : &n->in[1]->shape;
    const Shape *ws = gi ? &n->in[1]->shape : &n->shape;
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 2);
    bool scratch = c->plan->scratch_offset[n->id] >= 0;
    LLVMValueRef out = LLVMGetParam(fn, 0), a0 = LLVMGetParam(fn, 1), a1 = LLVMGetParam(fn, 2);
    LLVMValueRef col = scratch ? cg_kernel_scratch(c, 2) : NULL;
    int nsp = xs->rank - 2;
    int64_t in[2] = {1, 1}, on[2] = {1, 1}, k[2] = {1, 1}, s[2] = {1, 1}, p[2] = {0, 0},
            d[2] = {1, 1};
    for (int i = 0; i < nsp; i++) {
        int ax = 2 - nsp + i;
        in[ax] = xs->d[2 + i].n;
        on[ax] = dys->d[2 + i].n;
        k[ax] = ws->d[2 + i].n;
        s[ax] = cg_ints_at(n, "stride", i);
        p[ax] = cg_ints_at(n, "padding", i);
        d[ax] = cg_ints_at(n, "dilation", i);
    }
    int64_t groups = ir_attr_int(n, "groups"), C = xs->d[1].n, O = dys->d[1].n;
    int64_t cg = C / groups, og = O / groups, kk = k[0] * k[1];
    int64_t hw = in[0] * in[1], pq = on[0] * on[1];
    int64_t geom[13] = {cg,   in[0], in[1], k[0], k[1],  s[0], s[1],
                        p[0], p[1],  d[0],  d[1], on[0], on[1]};
    if (!scratch) /* pointwise: the image is its own column matrix */
        check(kk == 1 && s[0] == 1 && s[1] == 1 && p[0] == 0 && p[1] == 0 && hw == pq);
    if (!gi) /* the weight gradient accumulates over the images */
        zero(c, t, out, cg_i64(c, O * cg * kk));
    LLVMValueRef dyp = gi ? a0 : a1, xp = gi ? out : a0, wp = gi ? a1 : out;
    CgLoop lb, lg;
    LLVMValueRef b = cg_loop_begin(c, cg_dim(c, xs->d[0]), &lb);
    LLVMValueRef g = cg_loop_begin(c, cg_i64(c, groups), &lg);
    LLVMValueRef xg =
        cg_gep(c, t, xp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, C)), cg_mul(c, g, cg_i64(c, cg))),
                      cg_i64(c, hw)));
    LLVMValueRef dyg =
        cg_gep(c, t, dyp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, O)), cg_mul(c, g, cg_i64(c, og))),
                      cg_i64(c, pq)));
    LLVMValueRef wg = cg_gep(c, t, wp, cg_mul(c, g, cg_i64(c, og * cg * kk)));
    if (gi && scratch) {
        cg_gemm_c(c, t, true, false, cg * kk, pq, og, wg, cg * kk, dyg, pq, 0, col);
        cg_im2col(c, "col2im", t, cg_conv_geom(c, geom), col, xg);
    } else if (gi) {
        cg_gemm_c(c, t, true, false, cg, hw, og, wg, cg, dyg, pq, 0, xg);
    } else if (scratch) {
        cg_im2col(c, "im2col", t, cg_conv_geom(c, geom), xg, col);
        cg_gemm_c(c, t, false, true, og, cg * kk, pq, dyg, pq, col, pq, 1, wg);
    } else {
        cg_gemm_c(c, t, false, true, og, cg, hw, dyg, pq, xg, hw, 1, wg);
    }
    cg_loop_end(c, &lg);
    cg_loop_end(c, &lb);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* ---- pooling gradients ----------------------------------------------------- */

/* A loop over the kh x kw window at (y, xo) of a plane of W columns: k is
 * the input's index in the plane, the body runs only for the window's
 * elements inside the image (all of them when unpadded). */
typedef struct {
    CgLoop li, lj;
    LLVMBasicBlockRef join; /* past the body, NULL when unchecked */
    LLVMValueRef k;
} Window;

static void window_begin(Cg *c, Window *w, Node *n, LLVMValueRef y, LLVMValueRef xo, int64_t H,
                         int64_t W)
{
    int64_t kh = cg_ints_at(n, "kernel", 0), kw = cg_ints_at(n, "kernel", 1);
    int64_t sh = cg_ints_at(n, "stride", 0), sw = cg_ints_at(n, "stride", 1);
    int64_t ph = cg_ints_at(n, "padding", 0), pw = cg_ints_at(n, "padding", 1);
    LLVMValueRef i = cg_loop_begin(c, cg_i64(c, kh), &w->li);
    LLVMValueRef iy = cg_add(c, cg_add(c, cg_mul(c, y, cg_i64(c, sh)), cg_i64(c, -ph)), i);
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, kw), &w->lj);
    LLVMValueRef ix = cg_add(c, cg_add(c, cg_mul(c, xo, cg_i64(c, sw)), cg_i64(c, -pw)), j);
    w->join = NULL;
    if (ph > 0 || pw > 0) {
        LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "inside");
        w->join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "next");
        LLVMValueRef inside =
            LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntULT, iy, cg_i64(c, H), ""),
                         LLVMBuildICmp(c->b, LLVMIntULT, ix, cg_i64(c, W), ""), "");
        LLVMBuildCondBr(c->b, inside, body, w->join);
        LLVMPositionBuilderAtEnd(c->b, body);
    }
    w->k = cg_add(c, cg_mul(c, iy, cg_i64(c, W)), ix);
}

static void window_end(Cg *c, Window *w)
{
    if (w->join) {
        LLVMBuildBr(c->b, w->join);
        LLVMPositionBuilderAtEnd(c->b, w->join);
    }
    cg_loop_end(c, &w->lj);
    cg_loop_end(c, &w->li);
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
    const Shape *dys = &n->in[1]->shape;
    int64_t H = x->shape.d[2].n, W = x->shape.d[3].n, OH = dys->d[2].n, OW = dys->d[3].n;
    int64_t kh = cg_ints_at(n, "kernel", 0), kw = cg_ints_at(n, "kernel", 1);
    int64_t sh = cg_ints_at(n, "stride", 0), sw = cg_ints_at(n, "stride", 1);
    int64_t ph = cg_ints_at(n, "padding", 0), pw = cg_ints_at(n, "padding", 1);
    bool disjoint = sh >= kh && sw >= kw;
    bool covered =
        disjoint && ph == 0 && pw == 0 && sh == kh && sw == kw && OH * kh == H && OW * kw == W;
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    if (!covered)
        zero(c, t, out, cg_mul(c, planes, cg_i64(c, H * W)));
    LLVMValueRef best = cg_alloca(c, ty, "best"), at = cg_alloca(c, c->i64, "at");
    LLVMValueRef share = cg_fconst(c, t, 1.0 / (double)(kh * kw));
    CgLoop lq, ly, lx;
    Window w;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef xq = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef oq = cg_gep(c, t, out, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    LLVMValueRef g = LLVMBuildLoad2(
        c->b, ty,
        cg_gep(c, t, dy,
               cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, q, cg_i64(c, OH)), y), cg_i64(c, OW)), xo)),
        "");
    LLVMValueRef part = mx ? NULL : LLVMBuildFMul(c->b, g, share, "");
    LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), best);
    LLVMBuildStore(c->b, cg_i64(c, -1), at);
    window_begin(c, &w, n, y, xo, H, W);
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
        window_begin(c, &w, n, y, xo, H, W);
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
    cg_loop_end(c, &lq);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* stochastic_pool2d_grad(y, x, dy): each window's dy at the input y's
 * training kernel sampled (cg_pool_sample, the same draw again) */
static LLVMValueRef k_stochastic_pool_grad(Cg *c, Node *n)
{
    Node *pool = n->in[0], *x = n->in[1];
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), src = LLVMGetParam(fn, 2), dy = LLVMGetParam(fn, 3);
    int64_t H = x->shape.d[2].n, W = x->shape.d[3].n;
    int64_t OH = pool->shape.d[2].n, OW = pool->shape.d[3].n;
    LLVMValueRef planes = cg_dim(c, (Dim){x->shape.d[1].n * x->shape.d[0].n, x->shape.d[0].batch});
    zero(c, t, out, cg_mul(c, planes, cg_i64(c, H * W)));
    CgLoop lq, ly, lx;
    LLVMValueRef q = cg_loop_begin(c, planes, &lq);
    LLVMValueRef xq = cg_gep(c, t, src, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef oq = cg_gep(c, t, out, cg_mul(c, q, cg_i64(c, H * W)));
    LLVMValueRef y = cg_loop_begin(c, cg_i64(c, OH), &ly);
    LLVMValueRef xo = cg_loop_begin(c, cg_i64(c, OW), &lx);
    LLVMValueRef at =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, q, cg_i64(c, OH)), y), cg_i64(c, OW)), xo);
    CgPoolPick pick = cg_pool_sample(c, pool, xq, y, xo, at);
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

LLVMValueRef cg_kernel_grad(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_CONV_GRAD_INPUT:
    case OP_CONV_GRAD_WEIGHT: return k_conv_grad(c, step);
    case OP_MAX_POOL2D_GRAD:
    case OP_AVG_POOL2D_GRAD: return k_pool_grad(c, step);
    case OP_STOCHASTIC_POOL2D_GRAD: return k_stochastic_pool_grad(c, step);
    default: die("codegen: %s is not a convolution or pooling gradient", op_info[step->op].text);
    }
}
