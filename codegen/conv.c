/*
 * The convolution kernels (K_CONV in the op table; passes/shape_nn.c,
 * passes/grad_nn.c): conv1d/2d/3d, conv_transpose1d/2d, and the backward
 * primitives conv_grad_input and conv_grad_weight. Shapes are static
 * except the batch (dimension 0 of an image), so all geometry is constants
 * and only the outer loop runs to the run-time batch.
 *
 * Convolutions are GEMMs, one per image and group, through the runtime's
 * dlrt_gemm_f32/f64: conv2d/conv1d multiply the group's weights
 * [O/g, C/g*kh*kw] by the im2col matrix [C/g*kh*kw, OH*OW] that
 * dlrt_im2col builds in the step's scratch buffer (runtime/conv.c; a 1-d
 * convolution is a 2-d one of height 1; conv3d builds it one output
 * depth at a time, its section below); a 1x1, stride-1, unpadded kernel
 * multiplies by the input itself, which already is that matrix; one of
 * stride and dilation 1 in f32 reads the image in place instead (direct
 * convolutions, below). The plan
 * gives a step scratch exactly when it needs im2col (scratch.c), so its
 * presence picks the path. conv_transpose2d (and conv_transpose1d, of
 * height 1) is the adjoint: the column matrix W_g^T @ x_g, then
 * dlrt_col2im adds it into the output.
 * Depthwise convolution is the case groups == C of the same loop.
 * cg_emit_conv emits that loop into any kernel: an elementwise group whose
 * convolution pass_fuse fused with a bias and activation (eltwise.c) runs
 * it with its epilogue applied to each image right after the image's
 * GEMMs, while it is still in cache.
 */
#include <string.h>

#include "cg_kernels.h"

/* ---- convolutions -------------------------------------------------------- */

/* The fields of a dlrt_conv_geom (cg_conv_geom): channels ch of an
 * in[0] x in[1] image, kernel k, stride s, padding p and dilation d per
 * axis (height, width), out[0] x out[1] output positions. */
static void geom_of(int64_t *v, int64_t ch, const int64_t *in, const int64_t *k, const int64_t *s,
                    const int64_t *p, const int64_t *d, const int64_t *out)
{
    const int64_t f[CG_GEOM_COUNT] = {
        [CG_GEOM_c] = ch,     [CG_GEOM_h] = in[0], [CG_GEOM_w] = in[1], [CG_GEOM_kh] = k[0],
        [CG_GEOM_kw] = k[1],  [CG_GEOM_sh] = s[0], [CG_GEOM_sw] = s[1], [CG_GEOM_ph] = p[0],
        [CG_GEOM_pw] = p[1],  [CG_GEOM_dh] = d[0], [CG_GEOM_dw] = d[1], [CG_GEOM_oh] = out[0],
        [CG_GEOM_ow] = out[1]};
    memcpy(v, f, sizeof f);
}

/* ---- 3-d convolutions -----------------------------------------------------
 * conv3d and its two gradients build the column matrix one output depth
 * at a time from the runtime's 2-d im2col: for output depth od, the row
 * block (c, a) of [C/g * kd*kh*kw, OH*OW] (channel c, depth tap a) is the
 * one-channel im2col of the input slice x[c, od*sd - pd + a*dd], zeros
 * when that slice is in the padding. Then y[:, od] = W_g @ block, a GEMM
 * writing every OD-th block of y (ldc OD*OH*OW); conv_grad_input's
 * blocks W_g^T @ dy[:, od] go back to their slices through col2im (which
 * overwrites, so into a slice of scratch, then added); conv_grad_weight
 * adds dy[:, od] @ block^T. */

typedef struct {
    int64_t C, O, D, OD, KD, sd, pd, dd, groups, cg, og;
    int64_t hw, pq, kk; /* one slice's H*W, one depth's OH*OW, the kernel's kd*kh*kw */
    LLVMValueRef geom;  /* im2col of one channel's slice */
} Vol;

/* The geometry of image x, output (or dy) y and weight w */
static Vol vol_of(Cg *c, Node *n, const Shape *xs, const Shape *ys, const Shape *ws)
{
    int64_t in[3], on[3], k[3], s[3], p[3], d[3];
    for (int i = 0; i < 3; i++) {
        in[i] = xs->d[2 + i].n;
        on[i] = ys->d[2 + i].n;
        k[i] = ws->d[2 + i].n;
        s[i] = cg_ints_at(attr_stride(n), i);
        p[i] = ir_pad(attr_padding(n), 3, i, false); /* the end's shows in on[] */
        d[i] = cg_ints_at(attr_dilation(n), i);
    }
    Vol v = {.C = xs->d[1].n,
             .O = ys->d[1].n,
             .D = in[0],
             .OD = on[0],
             .KD = k[0],
             .sd = s[0],
             .pd = p[0],
             .dd = d[0],
             .groups = attr_groups(n)};
    v.cg = v.C / v.groups;
    v.og = v.O / v.groups;
    v.hw = in[1] * in[2];
    v.pq = on[1] * on[2];
    v.kk = k[0] * k[1] * k[2];
    int64_t gv[CG_GEOM_COUNT];
    geom_of(gv, 1, in + 1, k + 1, s + 1, p + 1, d + 1, on + 1);
    v.geom = cg_conv_geom(c, gv);
    return v;
}

/* For output depth od: im2col of every slice inside the input of the
 * group's image xg into the block blk, or (tmp given) col2im of the
 * block's rows into tmp, added to their slices. */
static void vol_slices(Cg *c, const Vol *v, DType t, LLVMValueRef xg, LLVMValueRef blk,
                       LLVMValueRef od, LLVMValueRef tmp)
{
    CgLoop lc, la;
    LLVMValueRef ch = cg_loop_begin(c, cg_i64(c, v->cg), &lc);
    LLVMValueRef a = cg_loop_begin(c, cg_i64(c, v->KD), &la);
    LLVMValueRef id = cg_add(c, cg_mul(c, od, cg_i64(c, v->sd)),
                             cg_add(c, cg_mul(c, a, cg_i64(c, v->dd)), cg_i64(c, -v->pd)));
    LLVMBasicBlockRef join = cg_if_begin(c, cg_in_range(c, id, v->D));
    LLVMValueRef slice = cg_gep(
        c, t, xg, cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, v->D)), id), cg_i64(c, v->hw)));
    LLVMValueRef rows = cg_gep(
        c, t, blk,
        cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, v->KD)), a), cg_i64(c, v->kk / v->KD * v->pq)));
    if (tmp) {
        cg_im2col(c, "col2im", t, v->geom, rows, tmp);
        CgLoop li;
        LLVMValueRef i = cg_loop_begin(c, cg_i64(c, v->hw), &li);
        cg_store(c, t, LLVMBuildFAdd(c->b, cg_load(c, t, slice, i), cg_load(c, t, tmp, i), ""),
                 slice, i);
        cg_loop_end(c, &li);
    } else {
        cg_im2col(c, "im2col", t, v->geom, slice, rows);
    }
    cg_if_end(c, join);
    cg_loop_end(c, &la);
    cg_loop_end(c, &lc);
}

/* Image b, group g of conv3d (op OP_CONV3D: xp, wp to out), conv_grad_input
 * (dy, w to the zeroed out) or conv_grad_weight (x, dy added into out);
 * scratch: the block, then (conv_grad_input) one slice. */
static void vol_group(Cg *c, Op op, DType t, const Vol *v, LLVMValueRef b, LLVMValueRef g,
                      LLVMValueRef xp, LLVMValueRef yp, LLVMValueRef wp, LLVMValueRef scratch)
{
    int64_t rows = v->cg * v->kk, ldy = v->OD * v->pq;
    LLVMValueRef xg =
        cg_gep(c, t, xp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, v->C)), cg_mul(c, g, cg_i64(c, v->cg))),
                      cg_i64(c, v->D * v->hw)));
    LLVMValueRef yg =
        cg_gep(c, t, yp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, v->O)), cg_mul(c, g, cg_i64(c, v->og))),
                      cg_i64(c, ldy)));
    LLVMValueRef wg = cg_gep(c, t, wp, cg_mul(c, g, cg_i64(c, v->og * rows)));
    LLVMValueRef one = cg_fconst(c, t, 1);
    CgLoop ld;
    LLVMValueRef od = cg_loop_begin(c, cg_i64(c, v->OD), &ld);
    LLVMValueRef yd = cg_gep(c, t, yg, cg_mul(c, od, cg_i64(c, v->pq)));
    if (op == OP_CONV_GRAD_INPUT) {
        cg_gemm(c, t, true, false, cg_i64(c, rows), cg_i64(c, v->pq), cg_i64(c, v->og), one, wg,
                cg_i64(c, rows), yd, cg_i64(c, ldy), 0, scratch, cg_i64(c, v->pq));
        vol_slices(c, v, t, xg, scratch, od, cg_gep(c, t, scratch, cg_i64(c, rows * v->pq)));
    } else {
        cg_zero(c, t, scratch, cg_i64(c, rows * v->pq));
        vol_slices(c, v, t, xg, scratch, od, NULL);
        if (op == OP_CONV3D)
            cg_gemm(c, t, false, false, cg_i64(c, v->og), cg_i64(c, v->pq), cg_i64(c, rows), one,
                    wg, cg_i64(c, rows), scratch, cg_i64(c, v->pq), 0, yd, cg_i64(c, ldy));
        else
            cg_gemm(c, t, false, true, cg_i64(c, v->og), cg_i64(c, rows), cg_i64(c, v->pq), one, yd,
                    cg_i64(c, ldy), scratch, cg_i64(c, v->pq), 1, wg, cg_i64(c, rows));
    }
    cg_loop_end(c, &ld);
}

/* ---- direct convolutions ------------------------------------------------
 * With f32 and dilation 1 (cg_conv_window), a convolution needs
 * no column matrix: row (ch, i, j) of im2col(x) is the image x[ch] read
 * from row i, column j on, at the output positions' pitch, if the outputs
 * are laid out as rows of the image's width. So the product reads the
 * image in place as its b (a CgWindow, gemm.c): the outputs come out as
 * oh rows wp apart, of which the first ow of each are the convolution's
 * (the others wrap around into the next image row and are dropped). The
 * image is x itself, or a copy with the padding as zeros. The weight
 * gradient is the transposed product dy @ window^T, its dy laid out at
 * the same pitch with zeros in the columns dropped; the input gradient
 * the adjoint convolution, of dy padded by k - 1 - p with the weights
 * flipped and their channels swapped (of stride 1 only: a strided
 * convolution's adjoint spreads dy over the image, W^T @ dy and col2im).
 * Strided, the window reads each channel's phases (place_phases), in
 * which a tap's pixels again lie at one pitch. LeNet-5 spent a third of
 * its training step building column matrices and adding them back. */

/* Whether n runs directly (its window in *v): it qualifies, has scratch
 * (a pointwise kernel has none and needs no window) and generated
 * products are on (--gemm-rows=0 keeps im2col and BLAS). */
static bool runs_direct(Cg *c, const Node *n, bool scratch, CgConvWin *v)
{
    *v = cg_conv_window(n);
    return scratch && v->ok && c->gemm_rows;
}

/* dst[ch, r, s] = src[ch, r - oy, s - ox] for C channels of rows x cols,
 * src's channels srows x scols dense; 0 where that is outside src. Only
 * the border is zeroed (constant lengths, inlined stores): zeroing the
 * whole copy first wrote it twice. */
static void place(Cg *c, LLVMValueRef dst, int64_t C, int64_t rows, int64_t cols, LLVMValueRef src,
                  int64_t srows, int64_t scols, int64_t oy, int64_t ox)
{
    int64_t r0 = oy > 0 ? oy : 0, r1 = oy + srows < rows ? oy + srows : rows;
    int64_t s0 = ox > 0 ? ox : 0, s1 = ox + scols < cols ? ox + scols : cols;
    if (r1 <= r0 || s1 <= s0) {
        cg_zero(c, DT_F32, dst, cg_i64(c, C * rows * cols));
        return;
    }
    CgLoop lc, lr;
    LLVMValueRef ch = cg_loop_begin(c, cg_i64(c, C), &lc);
    LLVMValueRef plane = cg_mul(c, ch, cg_i64(c, rows * cols));
    if (r0 > 0)
        cg_zero(c, DT_F32, cg_gep(c, DT_F32, dst, plane), cg_i64(c, r0 * cols));
    if (r1 < rows)
        cg_zero(c, DT_F32, cg_gep(c, DT_F32, dst, cg_add(c, plane, cg_i64(c, r1 * cols))),
                cg_i64(c, (rows - r1) * cols));
    LLVMValueRef r = cg_add(c, cg_loop_begin(c, cg_i64(c, r1 - r0), &lr), cg_i64(c, r0));
    LLVMValueRef line = cg_add(c, plane, cg_mul(c, r, cg_i64(c, cols)));
    if (s0 > 0)
        cg_zero(c, DT_F32, cg_gep(c, DT_F32, dst, line), cg_i64(c, s0));
    if (s1 < cols)
        cg_zero(c, DT_F32, cg_gep(c, DT_F32, dst, cg_add(c, line, cg_i64(c, s1))),
                cg_i64(c, cols - s1));
    LLVMValueRef sr =
        cg_add(c, cg_mul(c, ch, cg_i64(c, srows)), LLVMBuildSub(c->b, r, cg_i64(c, oy), ""));
    LLVMValueRef sv = cg_add(c, cg_mul(c, sr, cg_i64(c, scols)), cg_i64(c, s0 - ox));
    cg_memcpy(c, DT_F32, cg_gep(c, DT_F32, dst, cg_add(c, line, cg_i64(c, s0))),
              cg_gep(c, DT_F32, src, sv), cg_i64(c, s1 - s0));
    cg_loop_end(c, &lr);
    cg_loop_end(c, &lc);
}

/* The rows r < n of phase a's plane (or its columns) whose pixel
 * r*s + a - o lies in x's [0, len): [*r0, *r1), empty when *r0 >= *r1 */
static void phase_range(int64_t n, int64_t s, int64_t a, int64_t o, int64_t len, int64_t *r0,
                        int64_t *r1)
{
    int64_t lo = o - a, hi = len - 1 + o - a; /* r*s in [lo, hi] */
    *r0 = lo > 0 ? (lo + s - 1) / s : 0;
    *r1 = hi < 0 ? 0 : hi / s + 1 < n ? hi / s + 1 : n;
}

/* dst[ch, a, b, r, t] = x[ch, r*sh + a - oy, t*sw + b - ox], 0 outside
 * x: each channel's phases (a, b) of v's strided window, planes of h x w
 * (a tap's pixels, strided in x, at one pitch in its plane) */
static void place_phases(Cg *c, const CgConvWin *v, LLVMValueRef dst, LLVMValueRef x)
{
    int64_t pa = cg_win_phases(v->kh, v->sh), pb = cg_win_phases(v->kw, v->sw);
    int64_t ps = v->h * v->w, r0, r1, t0, t1;
    bool gaps = false;
    for (int64_t a = 0; a < pa; a++) {
        phase_range(v->h, v->sh, a, v->oy, v->H, &r0, &r1);
        gaps |= r0 > 0 || r1 < v->h;
    }
    for (int64_t b = 0; b < pb; b++) {
        phase_range(v->w, v->sw, b, v->ox, v->W, &t0, &t1);
        gaps |= t0 > 0 || t1 < v->w;
    }
    if (gaps)
        cg_zero(c, DT_F32, dst, cg_i64(c, v->C * pa * pb * ps));
    for (int64_t a = 0; a < pa; a++)
        for (int64_t b = 0; b < pb; b++) {
            phase_range(v->h, v->sh, a, v->oy, v->H, &r0, &r1);
            phase_range(v->w, v->sw, b, v->ox, v->W, &t0, &t1);
            int64_t rows = r1 - r0, cols = t1 - t0;
            if (rows <= 0 || cols <= 0)
                continue;
            CgLoop lc, lr, lt;
            LLVMValueRef ch = cg_loop_begin(c, cg_i64(c, v->C), &lc);
            LLVMValueRef row = cg_add(c, cg_loop_begin(c, cg_i64(c, rows), &lr), cg_i64(c, r0));
            LLVMValueRef to = cg_add(
                c,
                cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, pa * pb)), cg_i64(c, a * pb + b)),
                       cg_i64(c, ps)),
                cg_add(c, cg_mul(c, row, cg_i64(c, v->w)), cg_i64(c, t0)));
            LLVMValueRef xr = cg_add(c, cg_mul(c, row, cg_i64(c, v->sh)), cg_i64(c, a - v->oy));
            LLVMValueRef from =
                cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, v->H)), xr), cg_i64(c, v->W)),
                       cg_i64(c, t0 * v->sw + b - v->ox));
            LLVMValueRef j = cg_loop_begin(c, cg_i64(c, cols), &lt);
            cg_store(c, DT_F32,
                     cg_load(c, DT_F32, x, cg_add(c, from, cg_mul(c, j, cg_i64(c, v->sw)))), dst,
                     cg_add(c, to, j));
            cg_loop_end(c, &lt);
            cg_loop_end(c, &lr);
            cg_loop_end(c, &lc);
        }
}

/* The image the window of v reads: x, or its padded copy (its phases,
 * strided) at *scratch (which moves past it); *win is set to the window. */
static LLVMValueRef window_image(Cg *c, const CgConvWin *v, LLVMValueRef x, LLVMValueRef *scratch,
                                 CgWindow *win)
{
    bool strided = cg_conv_strided(v);
    int64_t planes = cg_win_phases(v->kh, v->sh) * cg_win_phases(v->kw, v->sw);
    *win = (CgWindow){.c = v->C,
                      .kh = v->kh,
                      .kw = v->kw,
                      .cs = v->copy ? planes * v->h * v->w : v->H * v->W,
                      .wp = v->wp,
                      .sh = v->sh,
                      .sw = v->sw,
                      .ps = strided ? v->h * v->w : 0};
    if (!v->copy)
        return x;
    LLVMValueRef img = *scratch;
    if (strided)
        place_phases(c, v, img, x);
    else
        place(c, img, v->C, v->h, v->w, x, v->H, v->W, v->oy, v->ox);
    *scratch = cg_gep(c, DT_F32, img, cg_i64(c, v->C * win->cs));
    return img;
}

/* y[O, oh, ow] = a[O, C*kh*kw] @ im2col(x), through the window: a's
 * rows lda apart, read along k as aw says (0s: dense) */
static void direct_conv(Cg *c, const CgConvWin *v, LLVMValueRef a, int64_t lda, CgAWalk aw,
                        LLVMValueRef x, LLVMValueRef y, LLVMValueRef scratch)
{
    CgWindow win;
    LLVMValueRef img = window_image(c, v, x, &scratch, &win);
    win.keep = v->wp == v->ow ? 0 : v->ow; /* the wrapped columns dropped */
    int64_t K = v->C * v->kh * v->kw;
    CgProduct p = {.M = cg_i64(c, v->O),
                   .K = cg_i64(c, K),
                   .N = (v->oh - 1) * v->wp + v->ow,
                   .a = a,
                   .lda = cg_i64(c, lda),
                   .b = img,
                   .out = y,
                   .ldo = cg_i64(c, v->oh * v->ow),
                   .win = &win,
                   .aw = aw};
    cg_product(c, DT_F32, &p);
}

/* dst[p, o] = dy[o, i, j] for the positions p = i*wp + j at the
 * window's pitch, zeros in the columns j >= ow */
static void transpose_pitched(Cg *c, const CgConvWin *v, LLVMValueRef dy, LLVMValueRef dst)
{
    int64_t P = v->oh * v->ow;
    cg_transpose(c, &(CgRows){dst, cg_i64(c, v->O), v->ow, v->wp}, dy, cg_i64(c, P), cg_i64(c, P),
                 cg_i64(c, v->O));
    if (v->wp == v->ow)
        return;
    CgLoop li;
    LLVMValueRef i = cg_loop_begin(c, cg_i64(c, v->oh), &li);
    LLVMValueRef col = cg_add(c, cg_mul(c, i, cg_i64(c, v->wp)), cg_i64(c, v->ow));
    cg_zero(c, DT_F32, cg_gep(c, DT_F32, dst, cg_mul(c, col, cg_i64(c, v->O))),
            cg_i64(c, (v->wp - v->ow) * v->O));
    cg_loop_end(c, &li);
}

/* dw[O, C*kh*kw] += dy[O, oh, ow] @ im2col(x)^T, through the window; with
 * v->wt, dw is the transposed sum [C*kh*kw, O] += window @ dy^T instead
 * (sum_weights turns it around) */
static void direct_weight(Cg *c, const CgConvWin *v, LLVMValueRef dy, LLVMValueRef x,
                          LLVMValueRef dw, LLVMValueRef scratch)
{
    CgWindow win;
    LLVMValueRef img = window_image(c, v, x, &scratch, &win);
    int64_t K = v->C * v->kh * v->kw, P = (v->oh - 1) * v->wp + v->ow;
    if (v->wt) {
        transpose_pitched(c, v, dy, scratch);
        CgProduct p = {.M = cg_i64(c, K),
                       .K = cg_i64(c, P),
                       .N = v->O,
                       .a = img,
                       .b = scratch,
                       .out = dw,
                       .ldo = cg_i64(c, v->O),
                       .acc = true,
                       .win = &win,
                       .wa = true};
        cg_product(c, DT_F32, &p);
        return;
    }
    LLVMValueRef d = dy;
    if (v->wp != v->ow) { /* at the window's pitch, zeros in the columns past ow */
        d = scratch;
        place(c, d, v->O, v->oh, v->wp, dy, v->oh, v->ow, 0, 0);
    }
    CgProduct p = {.M = cg_i64(c, v->O),
                   .K = cg_i64(c, P),
                   .N = K,
                   .a = d,
                   .lda = cg_i64(c, v->oh * v->wp),
                   .b = img,
                   .out = dw,
                   .ldo = cg_i64(c, K),
                   .acc = true,
                   .tb = true,
                   .win = &win};
    cg_product(c, DT_F32, &p);
}

/* The weight gradient's sum over images: dw itself, or with a direct
 * convolution's v->wt its transposed form at the start of scratch (then
 * *scratch moves past it); zeroed. */
static LLVMValueRef weight_sum(Cg *c, DType t, const CgConvWin *v, int64_t wn, LLVMValueRef dw,
                               LLVMValueRef *scratch)
{
    LLVMValueRef sum = dw;
    if (v && v->wt) {
        sum = *scratch;
        *scratch = cg_gep(c, t, sum, cg_i64(c, wn));
    }
    cg_zero(c, t, sum, cg_i64(c, wn));
    return sum;
}

/* dw[g, o, k] = sum[g, k, o] for the transposed sum of weight_sum (groups
 * of O outputs by K taps), else nothing to do */
static void sum_weights(Cg *c, const CgConvWin *v, int64_t groups, LLVMValueRef sum,
                        LLVMValueRef dw)
{
    if (sum == dw)
        return;
    int64_t O = v->O, K = v->C * v->kh * v->kw;
    CgLoop lg;
    LLVMValueRef g = cg_mul(c, cg_loop_begin(c, cg_i64(c, groups), &lg), cg_i64(c, O * K));
    cg_transpose(c, &(CgRows){.p = cg_gep(c, DT_F32, dw, g), .ld = cg_i64(c, K)},
                 cg_gep(c, DT_F32, sum, g), cg_i64(c, O), cg_i64(c, O), cg_i64(c, K));
    cg_loop_end(c, &lg);
}

/* The weights of taps (ch, q, r) of the adjoint convolution's output o,
 * for the taps of pr (rows, s = sh) and pc (columns, s = sw): w[ch, o,
 * first + (taps-1-q)*s, ...], read in place (w the group's [C, O, kh,
 * kw]: dy's channels, x's) by the walk *aw from the pointer returned.
 * Copying them, flipped and transposed, for every image took a third of
 * the ResNet's last input gradient (64 x 64 x 9 weights an image). */
static LLVMValueRef flipped(Cg *c, const CgConvWin *v, LLVMValueRef w, CgAdjointPhase pr,
                            CgAdjointPhase pc, CgAWalk *aw)
{
    int64_t kk = v->kh * v->kw;
    *aw = (CgAWalk){.k = v->O * kk, .i = -v->sh * v->kw, .j = -v->sw};
    int64_t last = (pr.first + (pr.taps - 1) * v->sh) * v->kw + pc.first + (pc.taps - 1) * v->sw;
    return cg_gep(c, DT_F32, w, cg_i64(c, last));
}

/* dx[C_in, H, W] = the adjoint of the forward convolution: v is its
 * window (cg_conv_window of conv_grad_input); w the group's weights
 * [C (dy's channels), O (x's), kh, kw] */
static void direct_grad_input(Cg *c, const CgConvWin *v, LLVMValueRef w, LLVMValueRef dy,
                              LLVMValueRef dx, LLVMValueRef scratch)
{
    CgAWalk aw;
    LLVMValueRef a =
        flipped(c, v, w, (CgAdjointPhase){.taps = v->kh}, (CgAdjointPhase){.taps = v->kw}, &aw);
    direct_conv(c, v, a, v->kh * v->kw, aw, dy, dx, scratch);
}

/* Whether conv_grad_input runs tap by tap (tap_grad_input): stride 1
 * and no padding (the input k - 1 larger than dy: every tap puts all of
 * dy inside it), and the adjoint convolution's columns (dy padded by
 * k - 1 on every side, at its pitch) outnumber dy's at the input's
 * pitch by a quarter or more */
static bool by_taps(const CgConvWin *v)
{
    if (cg_conv_strided(v) || v->H + v->kh - 1 != v->oh || v->W + v->kw - 1 != v->ow)
        return false;
    int64_t adjoint = (v->oh - 1) * v->wp + v->ow, taps = (v->H - 1) * v->ow + v->W;
    return 4 * adjoint >= 5 * taps;
}

/* dx[C_in, H, W] of an unpadded stride-1 convolution as a sum over the
 * kernel's taps: tap (i, j) adds w[:, :, i, j]^T @ dy to dx from pixel
 * (i, j) on, dy laid out at the input's pitch (zeros in the columns past
 * its own width, which add 0 to the pixels they land on), so that the
 * product's columns are dx's. The adjoint convolution
 * (direct_grad_input) multiplies dy padded by k - 1 on every side,
 * zeros and all: LeNet-5's second convolution's input gradient took 248
 * columns at a pitch of 18 there, here 136 at a pitch of 14. Each
 * output sums the taps in order, each tap's over dy's channels in
 * order. v: the adjoint window (v->C dy's channels, v->O x's, v->oh x
 * v->ow the input's pixels, v->H x v->W dy's); w the group's [C, O, kh,
 * kw], tap t's [O, C] read in place (rows kh*kw apart, k O*kh*kw);
 * scratch: dy at the pitch. */
static void tap_grad_input(Cg *c, const CgConvWin *v, LLVMValueRef w, LLVMValueRef dy,
                           LLVMValueRef dx, LLVMValueRef scratch)
{
    int64_t kk = v->kh * v->kw, P = v->ow, N = (v->H - 1) * P + v->W;
    check(v->C * N <= v->elems);
    LLVMValueRef dyp = scratch;
    CgLoop lc, lt, lr;
    LLVMValueRef ch = cg_loop_begin(c, cg_i64(c, v->C), &lc);
    /* dyp[ch, r * P + s] = dy[ch, r, s], and 0 in the columns s >= v->W
     * of every row but the last: planes N apart, a dense b */
    LLVMValueRef r = cg_loop_begin(c, cg_i64(c, v->H), &lr);
    LLVMValueRef row =
        cg_gep(c, DT_F32, dyp, cg_add(c, cg_mul(c, ch, cg_i64(c, N)), cg_mul(c, r, cg_i64(c, P))));
    LLVMValueRef from = cg_gep(
        c, DT_F32, dy, cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, v->H)), r), cg_i64(c, v->W)));
    cg_copy(c, DT_F32, row, from, cg_i64(c, v->W), false);
    LLVMBasicBlockRef join =
        cg_if_begin(c, LLVMBuildICmp(c->b, LLVMIntSLT, r, cg_i64(c, v->H - 1), ""));
    cg_zero(c, DT_F32, cg_gep(c, DT_F32, row, cg_i64(c, v->W)), cg_i64(c, P - v->W));
    cg_if_end(c, join);
    cg_loop_end(c, &lr);
    cg_loop_end(c, &lc);
    cg_zero(c, DT_F32, dx, cg_i64(c, v->O * v->oh * P));
    /* dx[:, i*P + j + n] += wt[t] @ dyp[:, n] for tap t = (i, j) */
    LLVMValueRef tap = cg_loop_begin(c, cg_i64(c, kk), &lt);
    LLVMValueRef i = LLVMBuildUDiv(c->b, tap, cg_i64(c, v->kw), "");
    LLVMValueRef j = LLVMBuildURem(c->b, tap, cg_i64(c, v->kw), "");
    CgProduct p = {.M = cg_i64(c, v->O),
                   .K = cg_i64(c, v->C),
                   .N = N,
                   .a = cg_gep(c, DT_F32, w, tap),
                   .lda = cg_i64(c, kk),
                   .b = dyp,
                   .out = cg_gep(c, DT_F32, dx, cg_add(c, cg_mul(c, i, cg_i64(c, P)), j)),
                   .ldo = cg_i64(c, v->oh * P),
                   .acc = true,
                   .aw = {.k = v->O * kk}};
    cg_product(c, DT_F32, &p);
    cg_loop_end(c, &lt);
}

/* dx[C_in, H, W] of a strided convolution, phase by phase: the input's
 * pixels (a + m*sh, b + n*sw) are a stride-1 convolution of dy, padded
 * as v says, with the phase's taps (cg_adjoint_phase) flipped; its
 * outputs come at the copy's pitch and are spread to their pixels. A
 * phase no tap reaches is zero. w: the group's weights [C (dy's
 * channels), O (x's), kh, kw]. */
static void strided_grad_input(Cg *c, const CgConvWin *v, LLVMValueRef w, LLVMValueRef dy,
                               LLVMValueRef dx, LLVMValueRef scratch)
{
    LLVMValueRef img = scratch;
    place(c, img, v->C, v->h, v->w, dy, v->H, v->W, v->oy, v->ox);
    LLVMValueRef out = cg_gep(c, DT_F32, img, cg_i64(c, v->C * v->h * v->w));
    for (int64_t a = 0; a < v->sh; a++)
        for (int64_t b = 0; b < v->sw; b++) {
            CgAdjointPhase pr = cg_adjoint_phase(a, v->kh, v->sh, v->ph, v->oh);
            CgAdjointPhase pc = cg_adjoint_phase(b, v->kw, v->sw, v->pw, v->ow);
            if (!pr.count || !pc.count)
                continue;
            bool taps = pr.taps && pc.taps;
            int64_t K = v->C * pr.taps * pc.taps;
            if (taps) {
                CgAWalk aw;
                LLVMValueRef wa = flipped(c, v, w, pr, pc, &aw);
                /* the phase's pixel (m, n) reads dy from (m + shift - (taps - 1), ...) */
                CgWindow win = {.c = v->C,
                                .kh = pr.taps,
                                .kw = pc.taps,
                                .cs = v->h * v->w,
                                .wp = v->wp,
                                .sh = 1,
                                .sw = 1};
                int64_t y0 = v->oy + pr.shift - (pr.taps - 1),
                        x0 = v->ox + pc.shift - (pc.taps - 1);
                CgProduct p = {.M = cg_i64(c, v->O),
                               .K = cg_i64(c, K),
                               .N = (pr.count - 1) * v->wp + pc.count,
                               .a = wa,
                               .lda = cg_i64(c, v->kh * v->kw),
                               .b = cg_gep(c, DT_F32, img, cg_i64(c, y0 * v->wp + x0)),
                               .out = out,
                               .ldo = cg_i64(c, pr.count * v->wp),
                               .win = &win,
                               .aw = aw};
                cg_product(c, DT_F32, &p);
            }
            /* dx[o, a + m*sh, b + n*sw] = out[o, m, n] at the pitch, or 0 */
            CgLoop lo, lm, ln;
            LLVMValueRef o = cg_loop_begin(c, cg_i64(c, v->O), &lo);
            LLVMValueRef m = cg_loop_begin(c, cg_i64(c, pr.count), &lm);
            LLVMValueRef from =
                cg_mul(c, cg_add(c, cg_mul(c, o, cg_i64(c, pr.count)), m), cg_i64(c, v->wp));
            LLVMValueRef to =
                cg_add(c,
                       cg_mul(c,
                              cg_add(c, cg_mul(c, o, cg_i64(c, v->oh)),
                                     cg_add(c, cg_mul(c, m, cg_i64(c, v->sh)), cg_i64(c, a))),
                              cg_i64(c, v->ow)),
                       cg_i64(c, b));
            LLVMValueRef nn = cg_loop_begin(c, cg_i64(c, pc.count), &ln);
            LLVMValueRef val =
                taps ? cg_load(c, DT_F32, out, cg_add(c, from, nn)) : LLVMConstNull(c->f32);
            cg_store(c, DT_F32, val, dx, cg_add(c, to, cg_mul(c, nn, cg_i64(c, v->sw))));
            cg_loop_end(c, &ln);
            cg_loop_end(c, &lm);
            cg_loop_end(c, &lo);
        }
}

void cg_emit_conv(Cg *c, Node *n, LLVMValueRef xp, LLVMValueRef wp, LLVMValueRef out,
                  LLVMValueRef col, CgImageFn epilogue, void *ctx)
{
    Node *x = n->in[0], *w = n->in[1];
    DType t = n->dtype;
    bool transposed = n->op == OP_CONV_TRANSPOSE2D || n->op == OP_CONV_TRANSPOSE1D;
    bool scratch = col != NULL;
    /* per axis (height, width); a 1-d convolution has height 1 */
    int nsp = x->shape.rank - 2;
    if (nsp == 3) {
        Vol v = vol_of(c, n, &x->shape, &n->shape, &w->shape);
        CgLoop lb, lg;
        LLVMValueRef b = cg_loop_begin(c, cg_dim(c, x->shape.d[0]), &lb);
        LLVMValueRef g = cg_loop_begin(c, cg_i64(c, v.groups), &lg);
        vol_group(c, OP_CONV3D, t, &v, b, g, xp, out, wp, col);
        cg_loop_end(c, &lg);
        if (epilogue)
            epilogue(c, ctx, b);
        cg_loop_end(c, &lb);
        return;
    }
    int64_t in[2] = {1, 1}, on[2] = {1, 1}, k[2] = {1, 1}, s[2] = {1, 1}, p[2] = {0, 0},
            d[2] = {1, 1};
    for (int i = 0; i < nsp; i++) {
        int a = 2 - nsp + i;
        in[a] = x->shape.d[2 + i].n;
        on[a] = n->shape.d[2 + i].n;
        k[a] = w->shape.d[2 + i].n;
        s[a] = cg_ints_at(attr_stride(n), i);
        p[a] = ir_pad(attr_padding(n), nsp, i, false); /* the end's shows in on[] */
        d[a] = cg_ints_at(attr_dilation(n), i);
    }
    int64_t groups = attr_groups(n), C = x->shape.d[1].n, O = n->shape.d[1].n;
    int64_t cg = C / groups, og = O / groups, kk = k[0] * k[1];
    int64_t hw = in[0] * in[1], pq = on[0] * on[1];
    LLVMValueRef geom = NULL;
    if (transposed) {
        check(scratch);
        /* the adjoint convolution maps the output image to the input's size */
        int64_t gv[CG_GEOM_COUNT];
        geom_of(gv, og, on, k, s, p, d, in);
        geom = cg_conv_geom(c, gv);
    } else if (scratch) {
        int64_t gv[CG_GEOM_COUNT];
        geom_of(gv, cg, in, k, s, p, d, on);
        geom = cg_conv_geom(c, gv);
    } else {
        /* pointwise: the input image already is the column matrix */
        check(kk == 1 && s[0] == 1 && s[1] == 1 && p[0] == 0 && p[1] == 0 && hw == pq);
    }
    CgConvWin v;
    bool direct = runs_direct(c, n, scratch, &v);
    CgLoop lb, lg;
    LLVMValueRef b = cg_loop_begin(c, cg_dim(c, x->shape.d[0]), &lb);
    LLVMValueRef g = cg_loop_begin(c, cg_i64(c, groups), &lg);
    LLVMValueRef xg =
        cg_gep(c, t, xp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, C)), cg_mul(c, g, cg_i64(c, cg))),
                      cg_i64(c, hw)));
    LLVMValueRef yg =
        cg_gep(c, t, out,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, O)), cg_mul(c, g, cg_i64(c, og))),
                      cg_i64(c, pq)));
    LLVMValueRef wg = cg_gep(c, t, wp, cg_mul(c, g, cg_i64(c, og * cg * kk)));
    if (transposed) {
        /* w is [C, O/g, kh, kw]: the group's rows form [C/g, O/g*kh*kw] */
        cg_gemm_c(c, t, true, false, og * kk, hw, cg, wg, og * kk, xg, hw, 0, col);
        cg_im2col(c, "col2im", t, geom, col, yg);
    } else if (direct) {
        direct_conv(c, &v, wg, cg * kk, (CgAWalk){0}, xg, yg, col);
    } else if (scratch) {
        cg_im2col(c, "im2col", t, geom, xg, col);
        cg_product_c(c, t, false, false, og, pq, cg * kk, wg, cg * kk, col, false, yg);
    } else {
        cg_product_c(c, t, false, false, og, pq, cg, wg, cg, xg, false, yg); /* hw == pq */
    }
    cg_loop_end(c, &lg);
    if (epilogue) /* while the image is still in cache */
        epilogue(c, ctx, b);
    cg_loop_end(c, &lb);
}

static LLVMValueRef k_conv(Cg *c, Node *n)
{
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 2);
    bool scratch = c->plan->scratch_offset[n->id] >= 0;
    cg_emit_conv(c, n, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2), LLVMGetParam(fn, 0),
                 scratch ? cg_kernel_scratch(c, 2) : NULL, NULL, NULL);
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* ---- gradients --------------------------------------------------------------
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
 * it): the plan gives such a step no scratch (scratch.c) and the
 * absence of scratch picks that path, as for the forward convolution. */

/* ---- convolution gradients ------------------------------------------------ */

/* conv_grad_weight in chunks of images (cg_conv_weight_chunks): with n =
 * min(k, batch) chunks, chunk p sums images [batch*p/n, batch*(p+1)/n)
 * into its own partial sum, with its own column matrix, both in the
 * step's scratch; the chunks are tasks on the thread pool, and their sums
 * are then added in chunk order. The chunks depend on the batch alone, so
 * the result does not depend on the threads. */
typedef struct {
    DType t;
    int64_t k, groups, C, O, cg, og, kk, hw, pq, wn, cn;
    LLVMValueRef geom;
    const CgConvWin *direct; /* or NULL */
} WeightChunks;

static void weight_chunk(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const WeightChunks *w = ctx;
    DType t = w->t;
    LLVMValueRef xp = vals[0], dyp = vals[1], scratch = vals[2], batch = vals[3], n = vals[4];
    CgLoop lp, lb, lg;
    LLVMValueRef p = cg_add(c, lo, cg_loop_begin(c, LLVMBuildNSWSub(c->b, hi, lo, ""), &lp));
    LLVMValueRef part = cg_gep(c, t, scratch, cg_mul(c, p, cg_i64(c, w->wn + w->cn)));
    LLVMValueRef col = cg_gep(c, t, part, cg_i64(c, w->wn));
    LLVMValueRef sum = weight_sum(c, t, w->direct, w->wn, part, &col);
    LLVMValueRef b0 = LLVMBuildSDiv(c->b, cg_mul(c, batch, p), n, "");
    LLVMValueRef b1 = LLVMBuildSDiv(c->b, cg_mul(c, batch, cg_add(c, p, cg_i64(c, 1))), n, "");
    LLVMValueRef b = cg_add(c, b0, cg_loop_begin(c, LLVMBuildNSWSub(c->b, b1, b0, ""), &lb));
    LLVMValueRef g = cg_loop_begin(c, cg_i64(c, w->groups), &lg);
    LLVMValueRef xg =
        cg_gep(c, t, xp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, w->C)), cg_mul(c, g, cg_i64(c, w->cg))),
                      cg_i64(c, w->hw)));
    LLVMValueRef dyg =
        cg_gep(c, t, dyp,
               cg_mul(c, cg_add(c, cg_mul(c, b, cg_i64(c, w->O)), cg_mul(c, g, cg_i64(c, w->og))),
                      cg_i64(c, w->pq)));
    LLVMValueRef wg = cg_gep(c, t, sum, cg_mul(c, g, cg_i64(c, w->og * w->cg * w->kk)));
    if (w->direct) {
        direct_weight(c, w->direct, dyg, xg, wg, col);
    } else {
        cg_im2col(c, "im2col", t, w->geom, xg, col);
        cg_product_c(c, t, false, true, w->og, w->cg * w->kk, w->pq, dyg, w->pq, col, true, wg);
    }
    cg_loop_end(c, &lg);
    cg_loop_end(c, &lb);
    if (w->direct)
        sum_weights(c, w->direct, w->groups, sum, part);
    cg_loop_end(c, &lp);
}

static void weight_in_chunks(Cg *c, Node *n, WeightChunks *w, LLVMValueRef out, LLVMValueRef xp,
                             LLVMValueRef dyp, LLVMValueRef scratch)
{
    LLVMValueRef fn = c->fn, batch = c->batch;
    LLVMValueRef chunks = cg_smin(c, batch, cg_i64(c, w->k));
    LLVMValueRef vals[] = {xp, dyp, scratch, batch, chunks};
    size_t len;
    const char *name = LLVMGetValueName2(fn, &len);
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%.*s.chunk", (int)len, name), chunks, 1, vals,
                       countof(vals), weight_chunk, w);
    c->fn = fn;
    c->batch = batch;
    DType t = n->dtype;
    cg_memcpy(c, t, out, scratch, cg_i64(c, w->wn));
    CgLoop lp, li;
    LLVMValueRef p = cg_add(c, cg_i64(c, 1),
                            cg_loop_begin(c, LLVMBuildNSWSub(c->b, chunks, cg_i64(c, 1), ""), &lp));
    LLVMValueRef part = cg_gep(c, t, scratch, cg_mul(c, p, cg_i64(c, w->wn + w->cn)));
    LLVMValueRef i = cg_loop_begin(c, cg_i64(c, w->wn), &li);
    cg_store(c, t, LLVMBuildFAdd(c->b, cg_load(c, t, out, i), cg_load(c, t, part, i), ""), out, i);
    cg_loop_end(c, &li);
    cg_loop_end(c, &lp);
}

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
    if (nsp == 3) {
        Vol v = vol_of(c, n, xs, dys, ws);
        LLVMValueRef xp = gi ? out : a0, dyp = gi ? a0 : a1, wp = gi ? a1 : out;
        cg_zero(c, t, out, gi ? cg_numel(c, xs) : cg_i64(c, v.O * v.cg * v.kk));
        CgLoop lb, lg;
        LLVMValueRef b = cg_loop_begin(c, cg_dim(c, xs->d[0]), &lb);
        LLVMValueRef g = cg_loop_begin(c, cg_i64(c, v.groups), &lg);
        vol_group(c, n->op, t, &v, b, g, xp, dyp, wp, col);
        cg_loop_end(c, &lg);
        cg_loop_end(c, &lb);
        LLVMBuildRetVoid(c->b);
        return fn;
    }
    int64_t in[2] = {1, 1}, on[2] = {1, 1}, k[2] = {1, 1}, s[2] = {1, 1}, p[2] = {0, 0},
            d[2] = {1, 1};
    for (int i = 0; i < nsp; i++) {
        int ax = 2 - nsp + i;
        in[ax] = xs->d[2 + i].n;
        on[ax] = dys->d[2 + i].n;
        k[ax] = ws->d[2 + i].n;
        s[ax] = cg_ints_at(attr_stride(n), i);
        p[ax] = ir_pad(attr_padding(n), nsp, i, false);
        d[ax] = cg_ints_at(attr_dilation(n), i);
    }
    int64_t groups = attr_groups(n), C = xs->d[1].n, O = dys->d[1].n;
    int64_t cg = C / groups, og = O / groups, kk = k[0] * k[1];
    int64_t hw = in[0] * in[1], pq = on[0] * on[1];
    int64_t geom[CG_GEOM_COUNT];
    geom_of(geom, cg, in, k, s, p, d, on);
    if (!scratch) /* pointwise: the image is its own column matrix */
        check(kk == 1 && s[0] == 1 && s[1] == 1 && p[0] == 0 && p[1] == 0 && hw == pq);
    int64_t chunks = gi ? 1 : cg_conv_weight_chunks(c->g, n);
    CgConvWin v;
    bool direct = runs_direct(c, n, scratch, &v);
    if (chunks > 1) {
        WeightChunks w = {.t = t,
                          .k = chunks,
                          .groups = groups,
                          .C = C,
                          .O = O,
                          .cg = cg,
                          .og = og,
                          .kk = kk,
                          .hw = hw,
                          .pq = pq,
                          .wn = O * cg * kk,
                          .cn = cg_conv_chunk_elems(n),
                          .geom = cg_conv_geom(c, geom),
                          .direct = direct ? &v : NULL};
        weight_in_chunks(c, n, &w, out, a0, a1, col);
        LLVMBuildRetVoid(c->b);
        return fn;
    }
    LLVMValueRef wsum = NULL; /* the weight gradient accumulates over the images */
    if (!gi)
        wsum = weight_sum(c, t, direct ? &v : NULL, O * cg * kk, out, &col);
    LLVMValueRef dyp = gi ? a0 : a1, xp = gi ? out : a0, wp = gi ? a1 : wsum;
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
    if (direct && gi && cg_conv_strided(&v)) {
        strided_grad_input(c, &v, wg, dyg, xg, col);
    } else if (direct && gi && by_taps(&v)) {
        tap_grad_input(c, &v, wg, dyg, xg, col);
    } else if (direct && gi) {
        direct_grad_input(c, &v, wg, dyg, xg, col);
    } else if (direct) {
        direct_weight(c, &v, dyg, xg, wg, col);
    } else if (gi && scratch) {
        cg_product_c(c, t, true, false, cg * kk, pq, og, wg, cg * kk, dyg, false, col);
        cg_im2col(c, "col2im", t, cg_conv_geom(c, geom), col, xg);
    } else if (gi) {
        cg_product_c(c, t, true, false, cg, hw, og, wg, cg, dyg, false, xg); /* hw == pq */
    } else if (scratch) {
        cg_im2col(c, "im2col", t, cg_conv_geom(c, geom), xg, col);
        cg_product_c(c, t, false, true, og, cg * kk, pq, dyg, pq, col, true, wg);
    } else {
        cg_product_c(c, t, false, true, og, cg, hw, dyg, pq, xg, true, wg);
    }
    cg_loop_end(c, &lg);
    cg_loop_end(c, &lb);
    if (direct && !gi)
        sum_weights(c, &v, groups, wsum, out);
    LLVMBuildRetVoid(c->b);
    return fn;
}

LLVMValueRef cg_kernel_conv(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_CONV2D:
    case OP_CONV1D:
    case OP_CONV3D:
    case OP_CONV_TRANSPOSE2D:
    case OP_CONV_TRANSPOSE1D: return k_conv(c, step);
    case OP_CONV_GRAD_INPUT:
    case OP_CONV_GRAD_WEIGHT: return k_conv_grad(c, step);
    default: die("codegen: %s is not a convolution", op_info[step->op].text);
    }
}
