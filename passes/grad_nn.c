/*
 * Gradient rules of the convolution, pooling and normalization family
 * (see grad.h for the contract). Implemented: the global poolings and
 * layer_norm, as compositions of reductions and elementwise ops. The
 * windowed convolutions and poolings, batch_norm and dropout (which needs
 * its training mask) have no rule yet (grad_todo in ops.def).
 *
 * layer_norm over the trailing dimensions from axis, with xhat = (x - mean)
 * * rstd and rstd = 1 / sqrt(var + eps) (biased variance):
 *   dbeta = sum(dy), dgamma = sum(dy * xhat) over the leading dimensions,
 *   dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma.
 */
#include "grad.h"

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

/* mean over the marked axes, keepdims */
static Node *mean_keep(Grad *c, Node *x, const bool *axes)
{
    return ad_bin(c, OP_DIV, ad_sum(c, x, axes, true), ad_count(c, &x->shape, axes, x->dtype));
}

bool grad_layer_norm(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *gamma = n->in[1], *beta = n->in[2];
    int axis = (int)ir_attr_int(n, "axis");
    bool axes[IR_MAX_RANK] = {0};
    for (int i = axis; i < x->shape.rank; i++)
        axes[i] = true;
    Node *mu = mean_keep(c, x, axes);
    Node *d = ad_bin(c, OP_SUB, x, mu);
    Node *var = mean_keep(c, ad_un(c, OP_SQUARE, d), axes);
    Node *rstd = ad_un(c, OP_RSQRT, ad_binc(c, OP_ADD, var, ir_attr_float(n, "eps")));
    Node *xhat = ad_bin(c, OP_MUL, d, rstd);
    ad_acc(c, beta, dy);
    if (ad_needs(c, gamma))
        ad_acc(c, gamma, ad_bin(c, OP_MUL, dy, xhat));
    if (ad_needs(c, x)) {
        Node *g = ad_bin(c, OP_MUL, dy, gamma);
        Node *t = ad_bin(c, OP_MUL, xhat, mean_keep(c, ad_bin(c, OP_MUL, g, xhat), axes));
        Node *u = ad_bin(c, OP_SUB, ad_bin(c, OP_SUB, g, mean_keep(c, g, axes)), t);
        ad_acc(c, x, ad_bin(c, OP_MUL, rstd, u));
    }
    return true;
}
