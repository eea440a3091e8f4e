/*
 * The reference interpreter's nn family (see ref.h): convolutions,
 * pooling, normalization (inference mode) and upsampling, and their
 * backward primitives, each straight from its definition as plain loops
 * over the output or the window. A 1-d op is read as a 2-d one of height 1.
 */
#include "ref_ops.h"

#include <string.h>

/* The geometry of a convolution or pooling window, 1-d read as height 1
 * and 1-d and 2-d as depth 1: output position (z, y, x) and tap (k, i, j)
 * meet the input pixel (z*sd - pd + k*dd, y*sh - ph + i*dh,
 * x*sw - pw + j*dw). */
typedef struct {
    int64_t N, C, D, H, W, O, OD, OH, OW, KD, KH, KW, sd, sh, sw, pd, ph, pw, dd, dh, dw, G;
} Window;

/* image x, output or gradient dy (both [N, ., (D,) (H,) W]); the taps
 * from 'kernel' or the weight's trailing dims; a pool has no dilation,
 * and lp and stochastic pools no padding */
static Window window_of(const Node *n, const RefTensor *x, const RefTensor *dy, const RefTensor *w)
{
    int nsp = x->rank - 2;
    bool pool = !attr_has_dilation(n), pad = attr_has_padding(n);
    int64_t in[3] = {1, 1, 1}, on[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1},
            p[3] = {0, 0, 0}, d[3] = {1, 1, 1};
    for (int i = 0; i < nsp; i++) {
        int a = 3 - nsp + i;
        in[a] = x->dim[2 + i];
        on[a] = dy->dim[2 + i];
        k[a] = w ? w->dim[2 + i] : attr_kernel(n).v[i].n;
        s[a] = attr_stride(n).v[i].n;
        p[a] = pad ? ir_pad(attr_padding(n), nsp, i, false) : 0;
        d[a] = pool ? 1 : attr_dilation(n).v[i].n;
    }
    return (Window){.N = x->dim[0], .C = x->dim[1], .D = in[0], .H = in[1], .W = in[2],
                    .O = dy->dim[1], .OD = on[0], .OH = on[1], .OW = on[2],
                    .KD = k[0], .KH = k[1], .KW = k[2], .sd = s[0], .sh = s[1], .sw = s[2],
                    .pd = p[0], .ph = p[1], .pw = p[2], .dd = d[0], .dh = d[1], .dw = d[2],
                    .G = pool ? 1 : attr_groups(n)};
}

/* Every product term of a convolution (PyTorch's cross-correlation):
 * y[b, o, z, y, x] = sum over the channels c of o's group and the taps
 * (k, i, j) of x[b, c, z*s - p + k*d, ...] * w[o, c - group start, k, i, j],
 * the padding being zeros. mode 0 adds x * w to y (the forward), 1 adds
 * y * w to x (conv_grad_input, y the gradient), 2 adds y * x to w
 * (conv_grad_weight). */
static void conv_terms(const Window *g, int mode, double *x, double *w, double *y)
{
    int64_t CG = g->C / g->G, OG = g->O / g->G;
    for (int64_t b = 0; b < g->N; b++)
        for (int64_t o = 0; o < g->O; o++)
            for (int64_t z = 0; z < g->OD; z++)
                for (int64_t yo = 0; yo < g->OH; yo++)
                    for (int64_t xo = 0; xo < g->OW; xo++) {
                        int64_t yi = (((b * g->O + o) * g->OD + z) * g->OH + yo) * g->OW + xo;
                        for (int64_t c = 0; c < CG; c++)
                            for (int64_t k = 0; k < g->KD; k++)
                                for (int64_t i = 0; i < g->KH; i++)
                                    for (int64_t j = 0; j < g->KW; j++) {
                                        int64_t iz = z * g->sd - g->pd + k * g->dd;
                                        int64_t iy = yo * g->sh - g->ph + i * g->dh;
                                        int64_t ix = xo * g->sw - g->pw + j * g->dw;
                                        if (iz < 0 || iz >= g->D || iy < 0 || iy >= g->H ||
                                            ix < 0 || ix >= g->W)
                                            continue;
                                        int64_t ci = o / OG * CG + c;
                                        int64_t xi =
                                            (((b * g->C + ci) * g->D + iz) * g->H + iy) * g->W + ix;
                                        int64_t wi =
                                            (((o * CG + c) * g->KD + k) * g->KH + i) * g->KW + j;
                                        if (mode == 0)
                                            y[yi] += x[xi] * w[wi];
                                        else if (mode == 1)
                                            x[xi] += y[yi] * w[wi];
                                        else
                                            w[wi] += y[yi] * x[xi];
                                    }
                    }
}

/* conv1d / conv2d / conv3d (conv_terms) into the zeroed out */
void ref_conv(const Node *n, const RefTensor *x, const RefTensor *w, RefTensor *out)
{
    Window g = window_of(n, x, out, w);
    conv_terms(&g, 0, x->v, w->v, out->v);
}

/* conv_transpose2d: every input pixel x[b, c, iy, ix] adds x * w[c, o, i, j]
 * to out[b, group start + o, iy*s - p + i*d, ix*s - p + j*d] (positions
 * outside the output dropped); conv_transpose1d read as height 1. */
void ref_conv_transpose(const Node *n, const RefTensor *x, const RefTensor *w, RefTensor *out)
{
    Window g = window_of(n, x, out, w);
    int64_t N = g.N, C = g.C, H = g.H, W = g.W, O = g.O, OH = g.OH, OW = g.OW, KH = g.KH,
            KW = g.KW;
    int64_t G = g.G, CG = C / G, OG = O / G;
    int64_t sh = g.sh, sw = g.sw, ph = g.ph, pw = g.pw, dh = g.dh, dw = g.dw;
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t iy = 0; iy < H; iy++)
                for (int64_t ix = 0; ix < W; ix++)
                    for (int64_t o = 0; o < OG; o++)
                        for (int64_t i = 0; i < KH; i++)
                            for (int64_t j = 0; j < KW; j++) {
                                int64_t y = iy * sh - ph + i * dh, xo = ix * sw - pw + j * dw;
                                if (y < 0 || y >= OH || xo < 0 || xo >= OW)
                                    continue;
                                int64_t oc = c / CG * OG + o;
                                out->v[((b * O + oc) * OH + y) * OW + xo] +=
                                    x->v[((b * C + c) * H + iy) * W + ix] *
                                    w->v[((c * OG + o) * KH + i) * KW + j];
                            }
}

/* avg_pool's divisor for the window starting at o0 (depth, row, column;
 * padding included): PyTorch's, per dimension the window cut at the
 * padded end and, without count_include_pad, at the input's bounds. */
static double pool_count(const Node *n, const Window *g, const int64_t *o0)
{
    bool with_pad = !attr_has_count_include_pad(n) || attr_count_include_pad(n);
    const int64_t in[3] = {g->D, g->H, g->W}, k[3] = {g->KD, g->KH, g->KW},
                  p[3] = {g->pd, g->ph, g->pw};
    double count = 1;
    for (int d = 0; d < 3; d++) {
        int64_t lo = o0[d], hi = lo + k[d] < in[d] + p[d] ? lo + k[d] : in[d] + p[d];
        if (!with_pad) {
            lo = lo < 0 ? 0 : lo;
            hi = hi < in[d] ? hi : in[d];
        }
        count *= (double)(hi - lo);
    }
    return count;
}

/* Window o (a flat output index) of pooling g: its plane (image and
 * channel) q and origin o0 (the input position of tap 0, padding
 * included). */
static void pool_window(const Window *g, int64_t o, int64_t *q, int64_t o0[3])
{
    int64_t xo = o % g->OW, y = o / g->OW % g->OH, z = o / g->OW / g->OH % g->OD;
    *q = o / g->OW / g->OH / g->OD;
    o0[0] = z * g->sd - g->pd;
    o0[1] = y * g->sh - g->ph;
    o0[2] = xo * g->sw - g->pw;
}

/* The flat input index of tap (a, i, j) of the window at plane q and
 * origin o0, or -1 outside the input. */
static int64_t pool_tap(const Window *g, int64_t q, const int64_t o0[3], int64_t a, int64_t i,
                        int64_t j)
{
    int64_t iz = o0[0] + a, iy = o0[1] + i, ix = o0[2] + j;
    if (iz < 0 || iz >= g->D || iy < 0 || iy >= g->H || ix < 0 || ix >= g->W)
        return -1;
    return ((q * g->D + iz) * g->H + iy) * g->W + ix;
}

/* Windowed pooling over [N, C, L], [N, C, H, W] or [N, C, D, H, W]. max:
 * padding is -inf, a NaN propagates (PyTorch's); avg: the window's sum
 * over pool_count; lp: (sum x^p)^(1/p); stochastic (inference): sum x^2 /
 * sum x, 0 when the window sums to 0. Windows past the input (padding,
 * ceil_mode) read nothing there. */
void ref_pool(const Node *n, const RefTensor *x, RefTensor *out)
{
    Window g = window_of(n, x, out, NULL);
    double p = n->op == OP_LP_POOL2D ? attr_p(n) : 0;
    for (int64_t o = 0; o < out->count; o++) {
        int64_t q, o0[3];
        pool_window(&g, o, &q, o0);
        double mx = -INFINITY, sum = 0, sum2 = 0, sump = 0;
        for (int64_t a = 0; a < g.KD; a++)
            for (int64_t i = 0; i < g.KH; i++)
                for (int64_t j = 0; j < g.KW; j++) {
                    int64_t k = pool_tap(&g, q, o0, a, i, j);
                    if (k < 0)
                        continue;
                    double v = x->v[k];
                    mx = v > mx || isnan(v) ? v : mx;
                    sum += v;
                    sum2 += v * v;
                    sump += pow(v, p);
                }
        switch (n->op) {
        case OP_MAX_POOL1D:
        case OP_MAX_POOL2D:
        case OP_MAX_POOL3D: out->v[o] = mx; break;
        case OP_AVG_POOL1D:
        case OP_AVG_POOL2D:
        case OP_AVG_POOL3D: out->v[o] = sum / pool_count(n, &g, o0); break;
        case OP_LP_POOL2D: out->v[o] = pow(sump, 1 / p); break;
        default: out->v[o] = sum == 0 ? 0 : sum2 / sum; break;
        }
    }
}

/* global_avg_pool / global_max_pool: over every spatial position. */
void ref_global_pool(const Node *n, const RefTensor *x, RefTensor *out)
{
    int64_t S = x->count / (x->dim[0] * x->dim[1]);
    for (int64_t q = 0; q < out->count; q++) {
        double mx = -INFINITY, sum = 0;
        for (int64_t s = 0; s < S; s++) {
            double v = x->v[q * S + s];
            mx = v > mx ? v : mx;
            sum += v;
        }
        out->v[q] = n->op == OP_GLOBAL_MAX_POOL ? mx : sum / (double)S;
    }
}

/* batch_norm in inference: the running statistics (inputs 3 and 4),
 * (x - mean[c]) / sqrt(var[c] + eps) * gamma[c] + beta[c]. */
void ref_batch_norm(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *gamma = in[1], *beta = in[2], *mean = in[3], *var = in[4];
    int64_t N = x->dim[0], C = x->dim[1], S = x->count / (N * C);
    double eps = attr_eps(n);
    for (int64_t b = 0; b < N; b++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t s = 0; s < S; s++) {
                int64_t k = (b * C + c) * S + s;
                out->v[k] =
                    (x->v[k] - mean->v[c]) / sqrt(var->v[c] + eps) * gamma->v[c] + beta->v[c];
            }
}

/* batch_norm's gradients in training, from their definitions:
 * batch_norm_grad_stats(x, dy) the batch mean and 1 / sqrt(var + eps) of
 * each channel, then sum(dy * xhat) and sum(dy); batch_norm_grad(x,
 * gamma, dy, s) the derivative of the training loss through the batch's
 * statistics: gamma rstd (dy - mean(dy) - xhat mean(dy * xhat)), with the
 * statistics and sums computed here again, not read from s (whose
 * correctness the stats test checks on its own). */
void ref_batch_norm_grad(const Node *n, RefTensor *const *in, RefTensor *out)
{
    bool stats = n->op == OP_BATCH_NORM_GRAD_STATS;
    const RefTensor *x = in[0], *dy = in[stats ? 1 : 2], *gamma = stats ? NULL : in[1];
    int64_t N = x->dim[0], C = x->dim[1], S = x->count / (N * C);
    double M = (double)(N * S), eps = attr_eps(n);
    for (int64_t c = 0; c < C; c++) {
        double mean = 0, var = 0, sdy = 0, sdyx = 0;
        for (int64_t b = 0; b < N; b++)
            for (int64_t s = 0; s < S; s++)
                mean += x->v[(b * C + c) * S + s];
        mean /= M;
        for (int64_t b = 0; b < N; b++)
            for (int64_t s = 0; s < S; s++) {
                double d = x->v[(b * C + c) * S + s] - mean;
                var += d * d;
            }
        double rstd = 1 / sqrt(var / M + eps);
        for (int64_t b = 0; b < N; b++)
            for (int64_t s = 0; s < S; s++) {
                int64_t k = (b * C + c) * S + s;
                sdy += dy->v[k];
                sdyx += dy->v[k] * (x->v[k] - mean) * rstd;
            }
        if (stats) {
            double row[4] = {mean, rstd, sdyx, sdy};
            for (int r = 0; r < 4; r++)
                out->v[r * C + c] = row[r];
            continue;
        }
        for (int64_t b = 0; b < N; b++)
            for (int64_t s = 0; s < S; s++) {
                int64_t k = (b * C + c) * S + s;
                double xhat = (x->v[k] - mean) * rstd;
                out->v[k] = gamma->v[c] * rstd * (dy->v[k] - sdy / M - xhat * sdyx / M);
            }
    }
}

/* layer_norm over the dimensions axis..rank-1: mean and biased variance of
 * each such row, then gamma and beta of the row's shape. */
void ref_layer_norm(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *gamma = in[1], *beta = in[2];
    int64_t axis = attr_axis(n), I = 1;
    for (int64_t d = axis; d < x->rank; d++)
        I *= x->dim[d];
    double eps = attr_eps(n);
    for (int64_t r = 0; r < x->count / I; r++) {
        double mean = 0, var = 0;
        for (int64_t j = 0; j < I; j++)
            mean += x->v[r * I + j];
        mean /= (double)I;
        for (int64_t j = 0; j < I; j++)
            var += (x->v[r * I + j] - mean) * (x->v[r * I + j] - mean);
        var /= (double)I;
        for (int64_t j = 0; j < I; j++)
            out->v[r * I + j] =
                (x->v[r * I + j] - mean) / sqrt(var + eps) * gamma->v[j] + beta->v[j];
    }
}

/* layer_norm's gradients from their definitions, row by row over the
 * dimensions axis..: layer_norm_stats(x) each row's mean and
 * 1 / sqrt(var + eps); layer_norm_grad(x, gamma, dy, s) the derivative
 * through the row's statistics, rstd (g - mean(g) - xhat mean(g xhat)),
 * g = dy gamma, with the statistics computed here again (not read from
 * s, which the stats test checks). */
void ref_layer_norm_grad(const Node *n, RefTensor *const *in, RefTensor *out)
{
    bool stats = n->op == OP_LAYER_NORM_STATS;
    const RefTensor *x = in[0];
    int64_t axis = attr_axis(n), I = 1;
    for (int64_t d = axis; d < x->rank; d++)
        I *= x->dim[d];
    double eps = attr_eps(n);
    for (int64_t r = 0; r < x->count / I; r++) {
        const double *xr = x->v + r * I;
        double mean = 0, var = 0;
        for (int64_t j = 0; j < I; j++)
            mean += xr[j];
        mean /= (double)I;
        for (int64_t j = 0; j < I; j++)
            var += (xr[j] - mean) * (xr[j] - mean);
        double rstd = 1 / sqrt(var / (double)I + eps);
        if (stats) {
            out->v[2 * r] = mean;
            out->v[2 * r + 1] = rstd;
            continue;
        }
        const double *gamma = in[1]->v, *dy = in[2]->v + r * I;
        double sg = 0, sgx = 0;
        for (int64_t j = 0; j < I; j++) {
            double g = dy[j] * gamma[j];
            sg += g;
            sgx += g * (xr[j] - mean) * rstd;
        }
        for (int64_t j = 0; j < I; j++) {
            double xhat = (xr[j] - mean) * rstd;
            out->v[r * I + j] = rstd * (dy[j] * gamma[j] - sg / (double)I - xhat * sgx / (double)I);
        }
    }
}

/* conv_grad_input(dy, w) into out (the input's shape) and
 * conv_grad_weight(x, dy) into out (the weight's shape): the adjoints of
 * the convolution's sum, each product term dy * w added to the input
 * pixel it read, each term dy * x to the weight it read. */
void ref_conv_grad(const Node *n, RefTensor *const *in, RefTensor *out)
{
    bool gi = n->op == OP_CONV_GRAD_INPUT;
    const RefTensor *dy = gi ? in[0] : in[1], *x = gi ? out : in[0];
    const RefTensor *w = gi ? in[1] : out;
    Window g = window_of(n, x, dy, w);
    conv_terms(&g, gi ? 1 : 2, x->v, w->v, dy->v);
}

/* max_pool2d_grad(x, dy) / avg_pool2d_grad(x, dy) into out (x's shape:
 * [N, C, H, W], or [N, C, L] and [N, C, D, H, W] for the 1-d and 3-d
 * pools).
 * max: each window's dy goes to its arg-max, PyTorch's: the first element
 * greater than all before it, a NaN taking it over (the last NaN wins);
 * avg: dy / pool_count to each position inside x.
 * Overlapping windows add up. */
void ref_pool_grad(const Node *n, RefTensor *const *in, RefTensor *out)
{
    const RefTensor *x = in[0], *dy = in[1];
    Window g = window_of(n, x, dy, NULL);
    for (int64_t o = 0; o < dy->count; o++) {
        int64_t q, o0[3], at = -1;
        pool_window(&g, o, &q, o0);
        double d = dy->v[o], best = -INFINITY;
        for (int64_t a = 0; a < g.KD; a++)
            for (int64_t i = 0; i < g.KH; i++)
                for (int64_t j = 0; j < g.KW; j++) {
                    int64_t k = pool_tap(&g, q, o0, a, i, j);
                    if (k < 0)
                        continue;
                    if (n->op == OP_AVG_POOL2D_GRAD) {
                        out->v[k] += d / pool_count(n, &g, o0);
                    } else if (at < 0 || x->v[k] > best || isnan(x->v[k])) {
                        best = x->v[k];
                        at = k;
                    }
                }
        if (at >= 0)
            out->v[at] += d;
    }
}

/* adaptive_{avg,max}_pool2d(x) and their gradients (x, dy): output row y
 * of OH pools input rows floor(y*H/OH) .. ceil((y+1)*H/OH) - 1, columns
 * likewise; the gradients as eval_pool_grad's, into a zeroed out. */
void ref_adaptive_pool(const Node *n, RefTensor *const *in, RefTensor *out)
{
    bool grad = n->op == OP_ADAPTIVE_MAX_POOL2D_GRAD || n->op == OP_ADAPTIVE_AVG_POOL2D_GRAD;
    bool mx = n->op == OP_ADAPTIVE_MAX_POOL2D || n->op == OP_ADAPTIVE_MAX_POOL2D_GRAD;
    const RefTensor *x = in[0], *y = grad ? in[1] : out;
    int64_t NC = x->dim[0] * x->dim[1], H = x->dim[2], W = x->dim[3];
    int64_t OH = y->dim[2], OW = y->dim[3];
    for (int64_t q = 0; q < NC; q++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t h0 = oy * H / OH, h1 = ((oy + 1) * H + OH - 1) / OH;
                int64_t w0 = ox * W / OW, w1 = ((ox + 1) * W + OW - 1) / OW;
                double size = (double)((h1 - h0) * (w1 - w0)), sum = 0, best = -INFINITY;
                int64_t at = -1, o = (q * OH + oy) * OW + ox;
                for (int64_t i = h0; i < h1; i++)
                    for (int64_t j = w0; j < w1; j++) {
                        int64_t k = (q * H + i) * W + j;
                        double v = x->v[k];
                        sum += v;
                        if (at < 0 || v > best || isnan(v)) {
                            best = v;
                            at = k;
                        }
                        if (grad && !mx)
                            out->v[k] += in[1]->v[o] / size;
                    }
                if (grad && mx)
                    out->v[at] += in[1]->v[o];
                else if (!grad)
                    out->v[o] = mx ? best : sum / size;
            }
}

/* The input rows (or columns) output index o of out reads from in, and
 * the weight of the second: nearest floor(o * in / out) alone; bilinear
 * PyTorch's source coordinate s, (o + 1/2) in / out - 1/2 but at least 0,
 * or o (in - 1) / (out - 1) with align_corners, between floor(s) and the
 * next row (the last row again at the end). */
static void resample_src(const Node *n, int64_t o, int64_t in, int64_t out, int64_t *i0,
                         int64_t *i1, double *l1)
{
    if (strcmp(attr_mode(n), "nearest") == 0) {
        *i0 = *i1 = o * in / out;
        *l1 = 0;
        return;
    }
    double s = attr_align_corners(n) ? (out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0)
                                     : ((double)o + 0.5) * (double)in / (double)out - 0.5;
    if (s < 0)
        s = 0;
    *i0 = (int64_t)floor(s);
    if (*i0 > in - 1)
        *i0 = in - 1;
    *i1 = *i0 < in - 1 ? *i0 + 1 : *i0;
    *l1 = s - (double)*i0;
}

/* upsample(x) and upsample_grad(x, dy): each output the weighted sum of
 * the (up to) four inputs it reads; the gradient adds dy times each
 * weight back to them. */
void ref_upsample(const Node *n, RefTensor *const *in, RefTensor *out)
{
    bool grad = n->op == OP_UPSAMPLE_GRAD;
    const RefTensor *x = in[0], *y = grad ? in[1] : out;
    int64_t NC = x->dim[0] * x->dim[1], H = x->dim[2], W = x->dim[3];
    int64_t OH = y->dim[2], OW = y->dim[3];
    for (int64_t q = 0; q < NC; q++)
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t r[2], c[2];
                double ly, lx;
                resample_src(n, oy, H, OH, &r[0], &r[1], &ly);
                resample_src(n, ox, W, OW, &c[0], &c[1], &lx);
                double wy[2] = {1 - ly, ly}, wx[2] = {1 - lx, lx}, sum = 0;
                int64_t o = (q * OH + oy) * OW + ox;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int64_t k = (q * H + r[i]) * W + c[j];
                        if (grad)
                            out->v[k] += in[1]->v[o] * wy[i] * wx[j];
                        else
                            sum += x->v[k] * wy[i] * wx[j];
                    }
                if (!grad)
                    out->v[o] = sum;
            }
}
