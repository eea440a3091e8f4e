/*
 * Shape rules of convolutions, pooling and normalization (PyTorch's
 * conventions: NCHW images, conv weights [O, C/groups, kh, kw], transposed
 * conv weights [C, O/groups, kh, kw]).
 *
 * Per-dimension attributes (stride, padding, dilation, output_padding,
 * kernel) accept one value or one per spatial dimension and are stored
 * back expanded, one per spatial dimension; a pool's missing stride is
 * stored as its kernel. Their values are bounded (2^20) so that output
 * sizes are computed without overflow. Only N, the first dimension, may
 * be the batch dimension of an image; channels and spatial sizes are
 * compared with weights, which never hold the batch.
 *
 * batch_norm also types its two running-statistics inputs (state nodes
 * the frontend leaves untyped): [C] with x's element type.
 */
#include <inttypes.h>
#include <string.h>

#include "shape.h"

#define ATTR_MAX ((int64_t)1 << 20)

/* Reads a per-spatial-dimension attribute (1 or nsp values, each in
 * min..ATTR_MAX), expands it to nsp values and stores it back. */
static bool spatial(Graph *g, Node *n, const AttrKey *k, int nsp, int64_t min, int64_t *out)
{
    const char *attr = k->text;
    int64_t v[IR_MAX_RANK];
    int nv;
    if (!shape_ints(n, k, v, IR_MAX_RANK, &nv))
        return false;
    check(nv >= 0);
    if (nv != 1 && nv != nsp) {
        if (nsp == 1)
            diag_error(n->loc, "%s: '%s' must be one integer, got %d", shape_op(n), attr, nv);
        else
            diag_error(n->loc, "%s: '%s' must have 1 or %d elements, got %d", shape_op(n), attr,
                       nsp, nv);
        return false;
    }
    for (int i = 0; i < nsp; i++) {
        out[i] = v[nv == 1 ? 0 : i];
        if (out[i] < min || out[i] > ATTR_MAX) {
            if (out[i] < min)
                diag_error(n->loc, "%s: '%s' must be at least %" PRId64 ", got %" PRId64,
                           shape_op(n), attr, min, out[i]);
            else
                diag_error(n->loc, "%s: '%s' value %" PRId64 " is too large", shape_op(n), attr,
                           out[i]);
            return false;
        }
    }
    shape_set_ints(g, n, k, out, nsp);
    return true;
}

static const char *spatial_name(int nsp, int i)
{
    static const char *const names[] = {"depth", "height", "width"};
    return nsp == 1 ? "length" : names[3 - nsp + i];
}

/* A convolution's padding (ops.def), before (pb) and after (pe) each of
 * the nsp spatial dimensions of input sizes in, for kernel k, stride st
 * and dilation dil: one value, one per dimension, [begin, end] pairs, or
 * "same" / "valid". Stored back canonical (ir_pad): one value per
 * dimension when every dimension is symmetric, else the pairs. */
static bool conv_padding(Graph *g, Node *n, int nsp, const int64_t *in, const int64_t *k,
                         const int64_t *st, const int64_t *dil, int64_t *pb, int64_t *pe)
{
    const Attr *a = ir_attr(n, "padding");
    if (a && a->kind == AK_STR) {
        bool same = strcmp(a->s, "same") == 0;
        check(same || strcmp(a->s, "valid") == 0);
        for (int i = 0; i < nsp; i++) {
            /* TensorFlow's rule, PyTorch's at stride 1: the output has
             * ceil(in / stride) positions */
            int64_t out = (in[i] + st[i] - 1) / st[i];
            int64_t total = (out - 1) * st[i] + dil[i] * (k[i] - 1) + 1 - in[i];
            total = same && total > 0 ? total : 0;
            pb[i] = total / 2;
            pe[i] = total - pb[i];
        }
    } else {
        int64_t v[2 * IR_MAX_RANK];
        int nv;
        const char *what = nsp == 1 ? "1 or 2" : nsp == 2 ? "1, 2 or 4" : "1, 3 or 6";
        if (!shape_ints(n, &attr_key_padding, v, 2 * IR_MAX_RANK, &nv))
            return false;
        check(nv >= 0);
        if (nv != 1 && nv != nsp && nv != 2 * nsp) {
            diag_error(n->loc,
                       "%s: 'padding' must have %s elements (one, one per dimension, or "
                       "[begin, end] for each), got %d",
                       shape_op(n), what, nv);
            return false;
        }
        for (int i = 0; i < nsp; i++) {
            bool pairs = nv == 2 * nsp && nv > 1;
            pb[i] = v[pairs ? 2 * i : nv == 1 ? 0 : i];
            pe[i] = v[pairs ? 2 * i + 1 : nv == 1 ? 0 : i];
            for (int e = 0; e < 2; e++) {
                int64_t p = e ? pe[i] : pb[i];
                if (p < 0 || p > ATTR_MAX) {
                    if (p < 0)
                        diag_error(n->loc, "%s: 'padding' must be at least 0, got %" PRId64,
                                   shape_op(n), p);
                    else
                        diag_error(n->loc, "%s: 'padding' value %" PRId64 " is too large",
                                   shape_op(n), p);
                    return false;
                }
            }
        }
    }
    int64_t c[2 * IR_MAX_RANK];
    bool sym = true;
    for (int i = 0; i < nsp; i++) {
        sym &= pb[i] == pe[i];
        c[2 * i] = pb[i];
        c[2 * i + 1] = pe[i];
    }
    if (sym)
        shape_set_ints(g, n, &attr_key_padding, pb, nsp);
    else
        shape_set_ints(g, n, &attr_key_padding, c, 2 * nsp);
    return true;
}

static bool want_same_dim(Graph *g, Node *n, const Node *a, const Node *b, int i);

/* x is [N, C, spatial...] with only N possibly the batch. */
static bool want_image(Graph *g, Node *n, const Node *x, int nsp)
{
    const char *layout = nsp == 1   ? "x of shape [N, C, L]"
                         : nsp == 2 ? "x of shape [N, C, H, W]"
                                    : "x of shape [N, C, D, H, W]";
    if (!shape_want_float(n, x, "") || !shape_want_rank(g, n, x, 2 + nsp, 2 + nsp, layout))
        return false;
    for (int i = 1; i < 2 + nsp; i++)
        if (!shape_want_static(g, n, x, i, i == 1 ? "the channel dimension" : "a spatial size"))
            return false;
    return true;
}

static bool want_weight(Graph *g, Node *n, const Node *x, const Node *w, int nsp,
                        const char *layout)
{
    if (!shape_want_same_dtype(g, n, x, w) || !shape_want_rank(g, n, w, 2 + nsp, 2 + nsp, layout))
        return false;
    for (int i = 0; i < 2 + nsp; i++)
        if (!shape_want_static(g, n, w, i, "a weight dimension"))
            return false;
    return true;
}

static bool want_groups(Graph *g, Node *n, int64_t groups, int64_t ch, const char *what,
                        const Node *t)
{
    if (groups < 1) {
        diag_error(n->loc, "%s: groups must be at least 1, got %" PRId64, shape_op(n), groups);
        return false;
    }
    if (ch % groups != 0) {
        diag_error(n->loc, "%s: %s channels (%" PRId64 ") are not divisible by groups (%" PRId64
                   ") in %s", shape_op(n), what, ch, groups, shape_fmt(g, &t->shape));
        return false;
    }
    return true;
}

bool shape_conv(Graph *g, Node *n)
{
    const Node *x = n->in[0], *w = n->in[1];
    int nsp = n->op == OP_CONV1D ? 1 : n->op == OP_CONV3D ? 3 : 2;
    const char *wl = nsp == 1   ? "a weight of shape [O, C/groups, k]"
                     : nsp == 2 ? "a weight of shape [O, C/groups, kh, kw]"
                                : "a weight of shape [O, C/groups, kd, kh, kw]";
    if (!want_image(g, n, x, nsp) || !want_weight(g, n, x, w, nsp, wl))
        return false;
    int64_t groups = attr_groups(n), C = x->shape.d[1].n, O = w->shape.d[0].n;
    if (!want_groups(g, n, groups, C, "input", x) || !want_groups(g, n, groups, O, "output", w))
        return false;
    if (w->shape.d[1].n != C / groups) {
        diag_error(n->loc, "%s: weight %s expects %" PRId64 " input channels per group, but x %s "
                   "has %" PRId64 " (groups = %" PRId64 ")", shape_op(n), shape_fmt(g, &w->shape),
                   w->shape.d[1].n, shape_fmt(g, &x->shape), C, groups);
        return false;
    }
    int64_t st[3], pb[3], pe[3], dil[3], ins[3], ks[3];
    for (int i = 0; i < nsp; i++) {
        ins[i] = x->shape.d[2 + i].n;
        ks[i] = w->shape.d[2 + i].n;
    }
    if (!spatial(g, n, &attr_key_stride, nsp, 1, st) ||
        !spatial(g, n, &attr_key_dilation, nsp, 1, dil) ||
        !conv_padding(g, n, nsp, ins, ks, st, dil, pb, pe))
        return false;
    Shape s = {.rank = 2 + nsp};
    s.d[0] = x->shape.d[0];
    s.d[1] = (Dim){O, false};
    for (int i = 0; i < nsp; i++) {
        int64_t in = ins[i], k = ks[i];
        int64_t span = in + pb[i] + pe[i] - dil[i] * (k - 1) - 1;
        if (span < 0) {
            const char *pad = pb[i] == pe[i]
                                  ? arena_printf(g->arena, "%" PRId64, pb[i])
                                  : arena_printf(g->arena, "%" PRId64 "+%" PRId64, pb[i], pe[i]);
            diag_error(n->loc, "%s: output %s would be empty: input %s %" PRId64 ", kernel %" PRId64
                       ", padding %s, dilation %" PRId64 " (x %s, weight %s)",
                       shape_op(n), spatial_name(nsp, i), spatial_name(nsp, i), in, k, pad,
                       dil[i], shape_fmt(g, &x->shape), shape_fmt(g, &w->shape));
            return false;
        }
        s.d[2 + i] = (Dim){span / st[i] + 1, false};
    }
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

bool shape_conv_transpose(Graph *g, Node *n)
{
    const Node *x = n->in[0], *w = n->in[1];
    int nsp = n->op == OP_CONV_TRANSPOSE1D ? 1 : 2;
    const char *wl = nsp == 1 ? "a weight of shape [C, O/groups, k]"
                              : "a weight of shape [C, O/groups, kh, kw]";
    if (!want_image(g, n, x, nsp) || !want_weight(g, n, x, w, nsp, wl))
        return false;
    int64_t groups = attr_groups(n), C = x->shape.d[1].n;
    if (!want_groups(g, n, groups, C, "input", x))
        return false;
    if (w->shape.d[0].n != C) {
        diag_error(n->loc, "%s: weight %s expects %" PRId64 " input channels, but x %s has %" PRId64,
                   shape_op(n), shape_fmt(g, &w->shape), w->shape.d[0].n,
                   shape_fmt(g, &x->shape), C);
        return false;
    }
    int64_t st[2], pad[2], dil[2], opad[2];
    if (!spatial(g, n, &attr_key_stride, nsp, 1, st) ||
        !spatial(g, n, &attr_key_padding, nsp, 0, pad) ||
        !spatial(g, n, &attr_key_output_padding, nsp, 0, opad) ||
        !spatial(g, n, &attr_key_dilation, nsp, 1, dil))
        return false;
    Shape s = {.rank = 2 + nsp};
    s.d[0] = x->shape.d[0];
    s.d[1] = (Dim){w->shape.d[1].n * groups, false};
    for (int i = 0; i < nsp; i++) {
        if (opad[i] >= st[i] && opad[i] >= dil[i]) {
            diag_error(n->loc, "%s: output_padding (%" PRId64 ") must be smaller than either "
                       "stride (%" PRId64 ") or dilation (%" PRId64 ")", shape_op(n), opad[i],
                       st[i], dil[i]);
            return false;
        }
        int64_t in = x->shape.d[2 + i].n, k = w->shape.d[2 + i].n;
        int64_t out = (in - 1) * st[i] - 2 * pad[i] + dil[i] * (k - 1) + opad[i] + 1;
        if (out < 1) {
            diag_error(n->loc, "%s: output %s would be %" PRId64 ": input %s %" PRId64
                       ", kernel %" PRId64 ", padding %" PRId64 ", stride %" PRId64,
                       shape_op(n), spatial_name(nsp, i), out, spatial_name(nsp, i), in, k,
                       pad[i], st[i]);
            return false;
        }
        s.d[2 + i] = (Dim){out, false};
    }
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

/* The pooled size of one dimension, PyTorch's: floor((in + 2p - k) / s)
 * + 1, or with ceil_mode the ceiling, less one when the last window would
 * start past the input and its leading padding (so every window holds an
 * input element). in + 2p >= k. */
static int64_t pooled(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode)
{
    int64_t span = in + 2 * p - k;
    int64_t o = (ceil_mode ? span + s - 1 : span) / s + 1;
    if (ceil_mode && (o - 1) * s >= in + p)
        o--;
    return o;
}

static bool ceil_mode_of(const Node *n)
{
    return attr_has_ceil_mode(n) && attr_ceil_mode(n);
}

bool shape_pool(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    int nsp = n->op == OP_MAX_POOL1D || n->op == OP_AVG_POOL1D   ? 1
              : n->op == OP_MAX_POOL3D || n->op == OP_AVG_POOL3D ? 3
                                                                 : 2;
    if (!want_image(g, n, x, nsp))
        return false;
    int64_t k[3], st[3], pad[3] = {0, 0, 0};
    if (!spatial(g, n, &attr_key_kernel, nsp, 1, k))
        return false;
    if (!attr_has_stride(n))
        shape_set_ints(g, n, &attr_key_stride, k, nsp);
    if (!spatial(g, n, &attr_key_stride, nsp, 1, st))
        return false;
    if (ir_schema_find(ir_op_schema(n->op), "padding") >= 0) {
        if (!spatial(g, n, &attr_key_padding, nsp, 0, pad))
            return false;
        for (int i = 0; i < nsp; i++) {
            if (pad[i] > k[i] / 2) {
                diag_error(n->loc, "%s: padding (%" PRId64 ") must be at most half the kernel "
                           "size (%" PRId64 ")", shape_op(n), pad[i], k[i]);
                return false;
            }
        }
    }
    if (n->op == OP_LP_POOL2D && !(attr_p(n) > 0)) {
        diag_error(n->loc, "lp_pool2d: p must be positive, got %g", attr_p(n));
        return false;
    }
    Shape s = x->shape;
    for (int i = 0; i < nsp; i++) {
        int64_t in = x->shape.d[2 + i].n;
        if (in + 2 * pad[i] < k[i]) {
            diag_error(n->loc, "%s: kernel %s %" PRId64 " is larger than the %sinput %s %" PRId64
                       " of %s", shape_op(n), spatial_name(nsp, i), k[i], pad[i] ? "padded " : "",
                       spatial_name(nsp, i), in + 2 * pad[i], shape_fmt(g, &x->shape));
            return false;
        }
        s.d[2 + i] = (Dim){pooled(in, k[i], st[i], pad[i], ceil_mode_of(n)), false};
    }
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

/* [N, C, H, W] -> [N, C, OH, OW], output_size one value or [OH, OW], each
 * at least 1 (PyTorch also allows an output above the input: windows then
 * repeat input positions) */
bool shape_adaptive_pool(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    int64_t os[2];
    if (!want_image(g, n, x, 2) || !spatial(g, n, &attr_key_output_size, 2, 1, os))
        return false;
    n->dtype = x->dtype;
    n->shape = x->shape;
    n->shape.d[2] = (Dim){os[0], false};
    n->shape.d[3] = (Dim){os[1], false};
    return true;
}

/* adaptive_*_pool2d_grad(x, dy): x and dy images of one type, batch and
 * channels; the result is shaped like x. */
bool shape_adaptive_pool_grad(Graph *g, Node *n)
{
    const Node *x = n->in[0], *dy = n->in[1];
    if (!want_image(g, n, x, 2) || !want_image(g, n, dy, 2) ||
        !shape_want_same_dtype(g, n, x, dy) || !want_same_dim(g, n, x, dy, 0) ||
        !want_same_dim(g, n, x, dy, 1))
        return false;
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

/* upsample's output height and width: codegen resolves each output row's
 * and column's sources and weights at compile time into constant tables
 * (codegen/nn.c), which at 2^20 entries took LLVM 600 MB, so they are
 * bounded well below ATTR_MAX. */
#define UPSAMPLE_MAX ((int64_t)1 << 16)

static bool want_upsample_size(Graph *g, Node *n, const Node *y)
{
    for (int i = 0; i < 2; i++) {
        int64_t o = y->shape.d[2 + i].n;
        if (o > UPSAMPLE_MAX) {
            diag_error(n->loc, "%s: output %s %" PRId64 " is more than the %" PRId64
                       " supported (%s)", shape_op(n), spatial_name(2, i), o, UPSAMPLE_MAX,
                       shape_fmt(g, &y->shape));
            return false;
        }
    }
    return true;
}

/* [N, C, H, W] -> [N, C, OH, OW]: exactly one of scale (one or two
 * integers, each at least 1: OH = scale * H) and size (one or two, at
 * least 1), OH and OW at most UPSAMPLE_MAX; align_corners only with
 * bilinear, as in PyTorch. */
bool shape_upsample(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    if (!want_image(g, n, x, 2))
        return false;
    bool has_scale = attr_has_scale(n), has_size = attr_has_size(n);
    if (has_scale == has_size) {
        diag_error(n->loc, "upsample: give either 'scale' or 'size'%s",
                   has_scale ? ", not both" : "");
        return false;
    }
    bool nearest = strcmp(attr_mode(n), "nearest") == 0;
    if (nearest && attr_align_corners(n)) {
        diag_error(n->loc, "upsample: align_corners needs mode = \"bilinear\"");
        return false;
    }
    int64_t v[2];
    if (!spatial(g, n, has_scale ? &attr_key_scale : &attr_key_size, 2, 1, v))
        return false;
    n->dtype = x->dtype;
    n->shape = x->shape;
    for (int i = 0; i < 2; i++)
        n->shape.d[2 + i] = (Dim){has_scale ? v[i] * x->shape.d[2 + i].n : v[i], false};
    return want_upsample_size(g, n, n);
}

/* upsample_grad(x, dy): as shape_adaptive_pool_grad, dy within upsample's
 * bounds */
bool shape_upsample_grad(Graph *g, Node *n)
{
    return shape_adaptive_pool_grad(g, n) && want_upsample_size(g, n, n->in[1]);
}

/* [N, C, L] or [N, C, H, W] -> [N, C] */
bool shape_global_pool(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    if (!shape_want_float(n, x, "") ||
        !shape_want_rank(g, n, x, 3, 4, "x of shape [N, C, H, W] or [N, C, L]"))
        return false;
    n->dtype = x->dtype;
    n->shape = (Shape){.rank = 2, .d = {x->shape.d[0], x->shape.d[1]}};
    return true;
}

static bool want_eps(Node *n)
{
    double eps = attr_eps(n);
    if (eps > 0)
        return true;
    diag_error(n->loc, "%s: eps must be positive, got %g", shape_op(n), eps);
    return false;
}

/* gamma and beta: x's element type and exactly shape s. */
static bool want_affine(Graph *g, Node *n, const Node *x, const Shape *s)
{
    for (int i = 1; i <= 2; i++) {
        const Node *p = n->in[i];
        if (!shape_want_same_dtype(g, n, x, p))
            return false;
        if (!ir_shape_eq(&p->shape, s)) {
            diag_error(n->loc, "%s: %s must have shape %s for x %s, got %s", shape_op(n),
                       i == 1 ? "gamma" : "beta", shape_fmt(g, s), shape_fmt(g, &x->shape),
                       shape_fmt(g, &p->shape));
            return false;
        }
    }
    return true;
}

bool shape_batch_norm(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    if (!shape_want_float(n, x, "") ||
        !shape_want_rank(g, n, x, 2, 4, "x of shape [N, C], [N, C, L] or [N, C, H, W]") ||
        !shape_want_static(g, n, x, 1, "the channel dimension"))
        return false;
    Shape c = {.rank = 1, .d = {x->shape.d[1]}};
    if (!want_affine(g, n, x, &c))
        return false;
    double m = attr_momentum(n);
    if (!(m >= 0 && m <= 1)) {
        diag_error(n->loc, "batch_norm: momentum must be in [0, 1], got %g", m);
        return false;
    }
    if (!want_eps(n))
        return false;
    for (int i = 3; i <= 4; i++) {
        Node *st = n->in[i];
        check(st->op == OP_STATE);
        if (st->dtype == DT_UNKNOWN) {
            st->dtype = x->dtype;
            st->shape = c;
        } else if (st->dtype != x->dtype || !ir_shape_eq(&st->shape, &c)) {
            diag_error(n->loc, "batch_norm: running statistics '%s' are %s%s, expected %s%s",
                       st->name, ir_dtype_name(st->dtype), shape_fmt(g, &st->shape),
                       ir_dtype_name(x->dtype), shape_fmt(g, &c));
            return false;
        }
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

/* batch_norm's x, [N, C, ...] of rank 2 to 4, C known (*c: [C]), and
 * operand i of n that must have x's type and shape (what names it). */
static bool want_bn_pair(Graph *g, Node *n, const Node *x, int i, const char *what, Shape *c)
{
    const Node *y = n->in[i];
    if (!shape_want_float(n, x, "x") ||
        !shape_want_rank(g, n, x, 2, 4, "x of shape [N, C], [N, C, L] or [N, C, H, W]") ||
        !shape_want_static(g, n, x, 1, "the channel dimension") ||
        !shape_want_same_dtype(g, n, x, y))
        return false;
    if (!ir_shape_eq(&x->shape, &y->shape)) {
        diag_error(n->loc, "%s: %s %s must have the shape of x %s", shape_op(n), what,
                   shape_fmt(g, &y->shape), shape_fmt(g, &x->shape));
        return false;
    }
    *c = (Shape){.rank = 1, .d = {x->shape.d[1]}};
    return want_eps(n);
}

bool shape_batch_norm_grad_stats(Graph *g, Node *n)
{
    Shape c;
    if (!want_bn_pair(g, n, n->in[0], 1, "dy", &c))
        return false;
    n->dtype = n->in[0]->dtype;
    n->shape = (Shape){.rank = 2, .d = {{4, false}, c.d[0]}};
    return true;
}

bool shape_batch_norm_grad(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    Shape c;
    if (!want_bn_pair(g, n, x, 2, "dy", &c))
        return false;
    const Node *gamma = n->in[1], *st = n->in[3];
    Shape four = {.rank = 2, .d = {{4, false}, c.d[0]}};
    for (int i = 0; i < 2; i++) {
        const Node *p = i ? st : gamma;
        const Shape *want = i ? &four : &c;
        if (!shape_want_same_dtype(g, n, x, p))
            return false;
        if (!ir_shape_eq(&p->shape, want)) {
            diag_error(n->loc, "%s: %s must have shape %s for x %s, got %s", shape_op(n),
                       i ? "the statistics" : "gamma", shape_fmt(g, want), shape_fmt(g, &x->shape),
                       shape_fmt(g, &p->shape));
            return false;
        }
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

bool shape_layer_norm(Graph *g, Node *n)
{
    const Node *x = n->in[0], *gamma = n->in[1];
    int64_t axis;
    if (!shape_want_float(n, x, "") ||
        !shape_want_rank(g, n, x, 1, IR_MAX_RANK, "a tensor of rank >= 1"))
        return false;
    if (!attr_has_axis(n) && (gamma->shape.rank < 1 || gamma->shape.rank > x->shape.rank)) {
        diag_error(n->loc,
                   "layer_norm: gamma %s must have 1 to %d dimensions, the trailing "
                   "ones of x %s",
                   shape_fmt(g, &gamma->shape), x->shape.rank, shape_fmt(g, &x->shape));
        return false;
    }
    if (!shape_axis(g, n, attr_has_axis(n) ? attr_axis(n) : -gamma->shape.rank, &x->shape,
                    x->shape.rank, &axis))
        return false;
    attr_set_axis(g, n, axis);
    Shape tail = {.rank = x->shape.rank - (int)axis};
    for (int i = 0; i < tail.rank; i++)
        tail.d[i] = x->shape.d[axis + i];
    if (!want_affine(g, n, x, &tail) || !want_eps(n))
        return false;
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

/* x's rows for layer norm's gradients: axis (attribute) in range, *rows
 * x's dimensions before it and [2] (the statistics), *tail the others */
static bool want_ln_rows(Graph *g, Node *n, const Node *x, Shape *rows, Shape *tail)
{
    int64_t axis;
    if (!shape_want_float(n, x, "x") ||
        !shape_want_rank(g, n, x, 1, IR_MAX_RANK, "x of rank >= 1") ||
        !shape_axis(g, n, attr_axis(n), &x->shape, x->shape.rank, &axis))
        return false;
    attr_set_axis(g, n, axis);
    *rows = (Shape){.rank = (int)axis + 1};
    *tail = (Shape){.rank = x->shape.rank - (int)axis};
    for (int i = 0; i < x->shape.rank; i++)
        if (i < axis)
            rows->d[i] = x->shape.d[i];
        else
            tail->d[i - axis] = x->shape.d[i];
    rows->d[axis] = (Dim){2, false};
    return true;
}

bool shape_layer_norm_stats(Graph *g, Node *n)
{
    Shape rows, tail;
    if (!want_ln_rows(g, n, n->in[0], &rows, &tail) || !want_eps(n))
        return false;
    n->dtype = n->in[0]->dtype;
    n->shape = rows;
    return true;
}

bool shape_layer_norm_grad(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    Shape rows, tail;
    if (!want_ln_rows(g, n, x, &rows, &tail) || !want_eps(n))
        return false;
    const Shape *want[4] = {NULL, &tail, &x->shape, &rows};
    static const char *const what[4] = {NULL, "gamma", "dy", "the statistics"};
    for (int i = 1; i < 4; i++) {
        const Node *p = n->in[i];
        if (!shape_want_same_dtype(g, n, x, p))
            return false;
        if (!ir_shape_eq(&p->shape, want[i])) {
            diag_error(n->loc, "%s: %s must have shape %s for x %s, got %s", shape_op(n), what[i],
                       shape_fmt(g, want[i]), shape_fmt(g, &x->shape), shape_fmt(g, &p->shape));
            return false;
        }
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

/* Backward primitives of convolution and pooling (autodiff builds them;
 * a textual IR file may hold any attributes, so everything is checked). */

/* dy's spatial sizes must be those the forward op computed from in[]. */
static bool want_out_size(Graph *g, Node *n, const Node *dy, int nsp, const int64_t *in,
                          const int64_t *k, const int64_t *st, const int64_t *pb, const int64_t *pe,
                          const int64_t *dil)
{
    for (int i = 0; i < nsp; i++) {
        int64_t span = in[i] + pb[i] + pe[i] - dil[i] * (k[i] - 1) - 1;
        if (span < 0 || dy->shape.d[2 + i].n != span / st[i] + 1) {
            diag_error(n->loc, "%s: dy %s does not match the forward sizes", shape_op(n),
                       shape_fmt(g, &dy->shape));
            return false;
        }
    }
    return true;
}

static bool want_same_dim(Graph *g, Node *n, const Node *a, const Node *b, int i)
{
    if (ir_dim_eq(a->shape.d[i], b->shape.d[i]))
        return true;
    diag_error(n->loc, "%s: dimension %d differs between %s and %s", shape_op(n), i,
               shape_fmt(g, &a->shape), shape_fmt(g, &b->shape));
    return false;
}

/* The spatial rank *nsp of a gradient op's image operand x (named what):
 * 1 to 3, as the 1-d, 2-d and 3-d ops share the gradient ops. */
static bool grad_spatial_rank(Graph *g, Node *n, const Node *x, const char *what, int *nsp)
{
    *nsp = x->shape.rank - 2;
    if (*nsp >= 1 && *nsp <= 3)
        return true;
    diag_error(n->loc, "%s: expects %s of rank 3 to 5, got %s", shape_op(n), what,
               shape_fmt(g, &x->shape));
    return false;
}

bool shape_conv_grad_input(Graph *g, Node *n)
{
    const Node *dy = n->in[0], *w = n->in[1];
    int nsp;
    if (!grad_spatial_rank(g, n, dy, "dy", &nsp))
        return false;
    if (!want_image(g, n, dy, nsp) || !want_weight(g, n, dy, w, nsp, "a convolution weight"))
        return false;
    int64_t size[3], st[3], pb[3], pe[3], dil[3], k[3], groups = attr_groups(n);
    for (int i = 0; i < nsp; i++)
        k[i] = w->shape.d[2 + i].n;
    if (!spatial(g, n, &attr_key_size, nsp, 1, size) ||
        !spatial(g, n, &attr_key_stride, nsp, 1, st) ||
        !spatial(g, n, &attr_key_dilation, nsp, 1, dil) ||
        !conv_padding(g, n, nsp, size, k, st, dil, pb, pe) ||
        !want_groups(g, n, groups, w->shape.d[0].n, "output", w))
        return false;
    if (dy->shape.d[1].n != w->shape.d[0].n) {
        diag_error(n->loc, "%s: dy %s and weight %s differ in output channels", shape_op(n),
                   shape_fmt(g, &dy->shape), shape_fmt(g, &w->shape));
        return false;
    }
    if (!want_out_size(g, n, dy, nsp, size, k, st, pb, pe, dil))
        return false;
    Shape s = {.rank = 2 + nsp};
    s.d[0] = dy->shape.d[0];
    s.d[1] = (Dim){w->shape.d[1].n * groups, false};
    for (int i = 0; i < nsp; i++)
        s.d[2 + i] = (Dim){size[i], false};
    n->dtype = dy->dtype;
    n->shape = s;
    return true;
}

bool shape_conv_grad_weight(Graph *g, Node *n)
{
    const Node *x = n->in[0], *dy = n->in[1];
    int nsp;
    if (!grad_spatial_rank(g, n, x, "x", &nsp))
        return false;
    if (!want_image(g, n, x, nsp) || !want_image(g, n, dy, nsp) ||
        !shape_want_same_dtype(g, n, x, dy) || !want_same_dim(g, n, x, dy, 0))
        return false;
    int64_t k[3], st[3], pb[3], pe[3], dil[3], in[3], groups = attr_groups(n);
    int64_t C = x->shape.d[1].n, O = dy->shape.d[1].n;
    for (int i = 0; i < nsp; i++)
        in[i] = x->shape.d[2 + i].n;
    if (!spatial(g, n, &attr_key_kernel, nsp, 1, k) ||
        !spatial(g, n, &attr_key_stride, nsp, 1, st) ||
        !spatial(g, n, &attr_key_dilation, nsp, 1, dil) ||
        !conv_padding(g, n, nsp, in, k, st, dil, pb, pe) ||
        !want_groups(g, n, groups, C, "input", x) || !want_groups(g, n, groups, O, "output", dy))
        return false;
    if (!want_out_size(g, n, dy, nsp, in, k, st, pb, pe, dil))
        return false;
    Shape s = {.rank = 2 + nsp};
    s.d[0] = (Dim){O, false};
    s.d[1] = (Dim){C / groups, false};
    for (int i = 0; i < nsp; i++)
        s.d[2 + i] = (Dim){k[i], false};
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

/* of [N, C, L] (max_pool1d, avg_pool1d), [N, C, H, W] or [N, C, D, H, W]
 * (max_pool3d, avg_pool3d) images */
bool shape_pool_grad(Graph *g, Node *n)
{
    const Node *x = n->in[0], *dy = n->in[1];
    int nsp;
    if (!grad_spatial_rank(g, n, x, "x", &nsp))
        return false;
    if (!want_image(g, n, x, nsp) || !want_image(g, n, dy, nsp) ||
        !shape_want_same_dtype(g, n, x, dy) || !want_same_dim(g, n, x, dy, 0) ||
        !want_same_dim(g, n, x, dy, 1))
        return false;
    int64_t k[3], st[3], pad[3], in[3];
    if (!spatial(g, n, &attr_key_kernel, nsp, 1, k) ||
        !spatial(g, n, &attr_key_stride, nsp, 1, st) ||
        !spatial(g, n, &attr_key_padding, nsp, 0, pad))
        return false;
    for (int i = 0; i < nsp; i++) {
        in[i] = x->shape.d[2 + i].n;
        if (in[i] + 2 * pad[i] < k[i] ||
            dy->shape.d[2 + i].n != pooled(in[i], k[i], st[i], pad[i], ceil_mode_of(n))) {
            diag_error(n->loc, "%s: dy %s does not match the forward sizes", shape_op(n),
                       shape_fmt(g, &dy->shape));
            return false;
        }
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

/* stochastic_pool2d_grad(y, x, dy): y must be a stochastic_pool2d of x
 * itself (its kernel reads y's geometry and draws with y's identity), dy
 * must have y's type and shape; the result has x's. */
bool shape_stochastic_pool_grad(Graph *g, Node *n)
{
    const Node *y = n->in[0], *x = n->in[1], *dy = n->in[2];
    if (y->op != OP_STOCHASTIC_POOL2D) {
        diag_error(n->loc, "%s: input 0 must be a stochastic_pool2d, got %s", shape_op(n),
                   shape_op(y));
        return false;
    }
    if (y->in[0] != x) {
        diag_error(n->loc, "%s: input 1 must be the input of the stochastic_pool2d (input 0)",
                   shape_op(n));
        return false;
    }
    if (!shape_want_same_dtype(g, n, y, dy))
        return false;
    if (!ir_shape_eq(&y->shape, &dy->shape)) {
        diag_error(n->loc, "%s: shapes of y and dy differ (%s vs %s)", shape_op(n),
                   shape_fmt(g, &y->shape), shape_fmt(g, &dy->shape));
        return false;
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}
