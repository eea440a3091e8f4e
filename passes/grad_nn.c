/*
 * Gradient rules of the convolution, pooling and normalization family
 * (see grad.h for the contract).
 *
 * conv1d/conv2d use two backward primitives (ops.def): conv_grad_input,
 * the transposed convolution back to x's size, and conv_grad_weight, the
 * correlation of x with dy. conv_transpose2d (conv_transpose1d) is their
 * adjoint: its input gradient is conv2d(dy, w) (conv1d) with the same
 * attributes, and its weight
 * gradient conv_grad_weight(dy, x) (the roles of image and gradient
 * swapped). max_pool2d and avg_pool2d have a primitive each, which
 * max_pool1d and avg_pool1d share (of rank 3), and so have their
 * adaptive forms; lp_pool2d is built on avg_pool2d_grad:
 * dx = sum over windows of dy * y^(1-p) * x^(p-1), 0 from windows where
 * y = 0.
 * The global poolings and layer_norm are compositions of reductions and
 * elementwise ops, and so is batch_norm, differentiated in training mode
 * (the batch statistics over every dimension but the channels, which is
 * what the training step computes; the running statistics are state and
 * get nothing). stochastic_pool2d is differentiated in training mode too:
 * its output is the input its kernel sampled in each window, and the
 * sample is piecewise constant in x, so dx is dy at the sampled input and
 * 0 elsewhere (stochastic_pool2d_grad, which redraws the samples from the
 * step's key, as dropout_grad redraws the mask).
 *
 * layer_norm over the trailing dimensions from axis, with xhat = (x - mean)
 * * rstd and rstd = 1 / sqrt(var + eps) (biased variance):
 *   dbeta = sum(dy), dgamma = sum(dy * xhat) over the leading dimensions,
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
 */
#include "grad.h"

/* d gets the stride, padding, dilation and groups of the convolution n */
static void conv_attrs(Grad *c, Node *d, const Node *n)
{
    AttrInts st = attr_stride(n), pad = attr_padding(n), dil = attr_dilation(n);
    attr_set_stride(c->g, d, st.v, st.n);
    attr_set_padding(c->g, d, pad.v, pad.n);
    attr_set_dilation(c->g, d, dil.v, dil.n);
    attr_set_groups(c->g, d, attr_groups(n));
}

bool grad_conv(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *w = n->in[1];
    if (ad_needs(c, x)) {
        Node *d = ad_node(c, OP_CONV_GRAD_INPUT, (Node *[]){dy, w}, 2);
        attr_set_size(c->g, d, x->shape.d + 2, x->shape.rank - 2);
        conv_attrs(c, d, n);
        ad_acc(c, x, ad_finish(c, d));
    }
    if (ad_needs(c, w)) {
        Node *d = ad_node(c, OP_CONV_GRAD_WEIGHT, (Node *[]){x, dy}, 2);
        attr_set_kernel(c->g, d, w->shape.d + 2, w->shape.rank - 2);
        conv_attrs(c, d, n);
        ad_acc(c, w, ad_finish(c, d));
    }
    return true;
}

bool grad_conv_transpose(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *w = n->in[1];
    /* conv2d(dy) has extra = floor(output_padding / stride) positions more
     * than x at the end of a spatial dimension (output_padding >= stride
     * is allowed when smaller than the dilation): dy there is beyond the
     * reach of x */
    AttrInts st = attr_stride(n), op = attr_output_padding(n);
    int nsp = x->shape.rank - 2;
    if (ad_needs(c, x)) {
        Node *d = ad_node(c, nsp == 1 ? OP_CONV1D : OP_CONV2D, (Node *[]){dy, w}, 2);
        conv_attrs(c, d, n);
        d = ad_finish(c, d);
        for (int i = 0; i < nsp; i++)
            if (op.v[i].n >= st.v[i].n)
                d = ad_slice(c, d, 2 + i, 0, x->shape.d[2 + i].n, false);
        ad_acc(c, x, d);
    }
    if (ad_needs(c, w)) {
        /* x in the gradient's role, zero-padded at the end to that size */
        Node *xg = x;
        for (int i = 0; i < nsp; i++) {
            if (op.v[i].n >= st.v[i].n) {
                Shape z = xg->shape;
                z.d[2 + i] = (Dim){op.v[i].n / st.v[i].n, false};
                xg = ad_concat(c, xg, ad_zeros(c, x->dtype, &z), 2 + i);
            }
        }
        Node *d = ad_node(c, OP_CONV_GRAD_WEIGHT, (Node *[]){dy, xg}, 2);
        attr_set_kernel(c->g, d, w->shape.d + 2, w->shape.rank - 2);
        conv_attrs(c, d, n);
        ad_acc(c, w, ad_finish(c, d));
    }
    return true;
}

/* op(x, dy) with the pool's kernel, stride, padding (zeros if none),
 * ceil_mode and count_include_pad */
static Node *pool_grad(Grad *c, Op op, Node *n, Node *dy)
{
    Node *d = ad_node(c, op, (Node *[]){n->in[0], dy}, 2);
    AttrInts k = attr_kernel(n), st = attr_stride(n);
    attr_set_kernel(c->g, d, k.v, k.n);
    attr_set_stride(c->g, d, st.v, st.n);
    if (attr_has_padding(n))
        attr_set_padding(c->g, d, attr_padding(n).v, k.n);
    else
        attr_set_padding(c->g, d, (Dim[]){{0, false}, {0, false}, {0, false}}, k.n);
    if (attr_has_ceil_mode(n))
        attr_set_ceil_mode(c->g, d, attr_ceil_mode(n));
    if (op == OP_AVG_POOL2D_GRAD && attr_has_count_include_pad(n))
        attr_set_count_include_pad(c->g, d, attr_count_include_pad(n));
    return ad_finish(c, d);
}

bool grad_max_pool2d(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], pool_grad(c, OP_MAX_POOL2D_GRAD, n, dy));
    return true;
}

bool grad_avg_pool2d(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], pool_grad(c, OP_AVG_POOL2D_GRAD, n, dy));
    return true;
}

bool grad_adaptive_pool(Grad *c, Node *n, Node *dy)
{
    Op op = n->op == OP_ADAPTIVE_MAX_POOL2D ? OP_ADAPTIVE_MAX_POOL2D_GRAD
                                            : OP_ADAPTIVE_AVG_POOL2D_GRAD;
    ad_acc(c, n->in[0], ad_finish(c, ad_node(c, op, (Node *[]){n->in[0], dy}, 2)));
    return true;
}

/* upsample: dy back to the inputs each output read (upsample_grad) */
bool grad_upsample(Grad *c, Node *n, Node *dy)
{
    Node *d = ad_node(c, OP_UPSAMPLE_GRAD, (Node *[]){n->in[0], dy}, 2);
    attr_set_mode(c->g, d, attr_mode(n));
    attr_set_align_corners(c->g, d, attr_align_corners(n));
    ad_acc(c, n->in[0], ad_finish(c, d));
    return true;
}

/* where(cond, a, b) */
static Node *select3(Grad *c, Node *cond, Node *a, Node *b)
{
    return ad_finish(c, ad_node(c, OP_WHERE, (Node *[]){cond, a, b}, 3));
}

/* y = (sum x^p)^(1/p) per window: dx = sum over windows of dy y^(1-p) x^(p-1);
 * avg_pool2d_grad divides by the window size, so multiply it back. A
 * window whose y is 0 (all zeros, common after a relu) gives nothing, as
 * in PyTorch: y^(1-p) is inf there for p > 1 and x^(p-1) is 0, whose
 * product would be NaN. For p < 1, x^(p-1) is inf at x = 0, so positions
 * that received nothing are selected to 0 too. */
bool grad_lp_pool2d(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    double p = attr_p(n);
    AttrInts k = attr_kernel(n);
    double window = (double)(k.v[0].n * k.v[1].n);
    Node *t = ad_bin(c, OP_MUL, dy, ad_bin(c, OP_POW, n, ad_const(c, 1 - p, n->dtype)));
    t = select3(c, ad_binc(c, OP_GT, n, 0), t, ad_const(c, 0, n->dtype));
    Node *spread = ad_binc(c, OP_MUL, pool_grad(c, OP_AVG_POOL2D_GRAD, n, t), window);
    Node *dx = ad_bin(c, OP_MUL, spread, ad_bin(c, OP_POW, x, ad_const(c, p - 1, x->dtype)));
    if (p < 1)
        dx = select3(c, ad_binc(c, OP_NE, spread, 0), dx, ad_const(c, 0, x->dtype));
    ad_acc(c, x, dx);
    return true;
}

/* Training mode: each window's dy goes to the input the forward sampled. */
bool grad_stochastic_pool2d(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    ad_acc(c, x, ad_finish(c, ad_node(c, OP_STOCHASTIC_POOL2D_GRAD, (Node *[]){n, x, dy}, 3)));
    return true;
}

/* Dimensions 2.. of a [N, C, ...] tensor. */
static void spatial_axes(const Node *x, bool axes[IR_MAX_RANK])
{
    for (int i = 0; i < IR_MAX_RANK; i++)
        axes[i] = i >= 2 && i < x->shape.rank;
}

bool grad_global_avg_pool(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    bool axes[IR_MAX_RANK];
    spatial_axes(x, axes);
    Node *count = ad_count(c, &x->shape, axes, x->dtype);
    ad_acc(c, x, ad_expand(c, ad_bin(c, OP_DIV, dy, count), &x->shape, axes));
    return true;
}

/* like max: shared equally among the positions of the maximum */
bool grad_global_max_pool(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    bool axes[IR_MAX_RANK];
    spatial_axes(x, axes);
    Node *hit = ad_bin(c, OP_EQ, x, ad_expand(c, n, &x->shape, axes));
    Node *share = ad_bin(c, OP_DIV, dy, ad_sum(c, hit, axes, false));
    ad_acc(c, x, ad_bin(c, OP_MUL, hit, ad_expand(c, share, &x->shape, axes)));
    return true;
}

/* Training: the statistics and sums over each channel that give gamma's
 * and beta's adjoints, then x's from them, each one kernel over the
 * channels (built from primitives, the mean, deviations, variance,
 * xhat and their products and sums, they made a dozen passes). */
static Node *bn_grad(Grad *c, Op op, Node *n, Node *const *in, int nin)
{
    Node *d = ad_node(c, op, in, nin);
    attr_set_eps(c->g, d, attr_eps(n));
    return ad_finish(c, d);
}

bool grad_batch_norm(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    Node *s = bn_grad(c, OP_BATCH_NORM_GRAD_STATS, n, (Node *[]){x, dy}, 2);
    if (ad_needs(c, x))
        ad_acc(c, x, bn_grad(c, OP_BATCH_NORM_GRAD, n, (Node *[]){x, gamma, dy, s}, 4));
    if (ad_needs(c, gamma))
        ad_acc(c, gamma, ad_slice(c, s, 0, 2, 3, true));
    if (ad_needs(c, beta))
        ad_acc(c, beta, ad_slice(c, s, 0, 3, 4, true));
    return true;
}

/* Each row's statistics once (layer_norm_stats), x's adjoint from them
 * in one kernel over the rows (layer_norm_grad), gamma's the sum over
 * the rows of dy xhat, one elementwise kernel and the sum. */
bool grad_layer_norm(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    int64_t axis = attr_axis(n);
    Node *s = ad_node(c, OP_LAYER_NORM_STATS, (Node *[]){x}, 1);
    attr_set_axis(c->g, s, axis);
    attr_set_eps(c->g, s, attr_eps(n));
    s = ad_finish(c, s);
    if (ad_needs(c, x)) {
        Node *d = ad_node(c, OP_LAYER_NORM_GRAD, (Node *[]){x, gamma, dy, s}, 4);
        attr_set_axis(c->g, d, axis);
        attr_set_eps(c->g, d, attr_eps(n));
        ad_acc(c, x, ad_finish(c, d));
    }
    if (ad_needs(c, gamma)) {
        /* the statistics as [rows..., 1, ...], broadcast over each row */
        Shape keep = x->shape;
        for (int i = (int)axis; i < keep.rank; i++)
            keep.d[i] = (Dim){1, false};
        Node *m = ad_reshape(c, ad_slice(c, s, (int)axis, 0, 1, false), &keep);
        Node *r = ad_reshape(c, ad_slice(c, s, (int)axis, 1, 2, false), &keep);
        Node *xhat = ad_bin(c, OP_MUL, ad_bin(c, OP_SUB, x, m), r);
        ad_acc(c, gamma, ad_bin(c, OP_MUL, dy, xhat));
    }
    ad_acc(c, beta, dy);
    return true;
}
