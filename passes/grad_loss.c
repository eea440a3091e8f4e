/*
 * Gradient rules of the losses (see grad.h for the contract).
 *
 * First the adjoint of each per-element loss: dy itself for reduction
 * "none", dy broadcast for "sum", and dy / count for "mean" (the count is
 * computed at run time when it involves the batch). Then the derivative of
 * the per-element loss, following ref.c's definitions:
 *   cross_entropy  softmax(x) - one_hot(y) along the class dimension
 *   nll_loss       -one_hot(y)
 *   bce (logits)   sigmoid(x) - t; with respect to the target: -x
 *   mse            2 (x - t)
 *   l1_loss        sign(x - t)                       (0 at x = t)
 *   smooth_l1      clamp((x - t) / beta, -1, 1)      (sign for beta = 0)
 *   huber          clamp(x - t, -delta, delta)
 * The pair losses' targets get the negated gradient (but bce's, above).
 * Class labels are i32 and get nothing.
 */
#include <string.h>

#include "grad.h"

/* The adjoint of every per-element loss, of shape per (broadcast). */
static Node *element_adjoint(Grad *c, Node *n, Node *dy, const Shape *per)
{
    const char *r = attr_reduction(n);
    if (strcmp(r, "none") == 0)
        return dy;
    if (strcmp(r, "mean") == 0)
        dy = ad_bin(c, OP_DIV, dy, ad_count(c, per, NULL, dy->dtype));
    return ad_broadcast(c, dy, per);
}

bool grad_class_loss(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *y = n->in[1];
    if (!ad_needs(c, x))
        return true;
    int r = x->shape.rank, cdim = r == 1 ? 0 : 1;
    Node *w = element_adjoint(c, n, dy, &y->shape);
    /* the labels' shape with a 1 for the class dimension */
    Shape ws = x->shape;
    ws.d[cdim] = (Dim){1, false};
    w = ad_reshape(c, w, &ws);

    Node *oh = ad_node(c, OP_ONE_HOT, &y, 1);
    attr_set_n(c->g, oh, x->shape.d[cdim].n);
    oh = ad_finish(c, oh);
    if (oh->dtype != x->dtype) {
        Node *cast = ad_node(c, OP_CAST, &oh, 1);
        attr_set_to(c->g, cast, ir_dtype_name(x->dtype));
        oh = ad_finish(c, cast);
    }
    if (r > 2) {
        /* one_hot puts the classes last: [N, d..., C] -> [N, C, d...] */
        int64_t perm[IR_MAX_RANK];
        perm[0] = 0;
        perm[1] = r - 1;
        for (int i = 2; i < r; i++)
            perm[i] = i - 1;
        oh = ad_transpose(c, oh, perm);
    }
    Node *d;
    if (n->op == OP_CROSS_ENTROPY) {
        Node *p = ad_node(c, OP_SOFTMAX, &x, 1);
        attr_set_axis(c->g, p, cdim);
        d = ad_bin(c, OP_SUB, ad_finish(c, p), oh);
    } else {
        d = ad_un(c, OP_NEG, oh);
    }
    ad_acc(c, x, ad_bin(c, OP_MUL, d, w));
    return true;
}

/* Adds g * w to the prediction's adjoint and -g * w to the target's. */
static void pair_grad(Grad *c, Node *n, Node *dy, Node *g)
{
    Node *x = n->in[0], *t = n->in[1];
    Node *gw = ad_bin(c, OP_MUL, g, element_adjoint(c, n, dy, &x->shape));
    ad_acc(c, x, gw);
    if (ad_needs(c, t))
        ad_acc(c, t, ad_un(c, OP_NEG, gw));
}

bool grad_bce(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *t = n->in[1];
    Node *w = element_adjoint(c, n, dy, &x->shape);
    if (ad_needs(c, x))
        ad_acc(c, x, ad_bin(c, OP_MUL, ad_bin(c, OP_SUB, ad_un(c, OP_SIGMOID, x), t), w));
    if (ad_needs(c, t))
        ad_acc(c, t, ad_bin(c, OP_MUL, ad_un(c, OP_NEG, x), w));
    return true;
}

static Node *diff(Grad *c, Node *n)
{
    return ad_bin(c, OP_SUB, n->in[0], n->in[1]);
}

bool grad_mse(Grad *c, Node *n, Node *dy)
{
    pair_grad(c, n, dy, ad_binc(c, OP_MUL, diff(c, n), 2));
    return true;
}

bool grad_l1_loss(Grad *c, Node *n, Node *dy)
{
    pair_grad(c, n, dy, ad_un(c, OP_SIGN, diff(c, n)));
    return true;
}

static Node *clamp(Grad *c, Node *x, double lo, double hi)
{
    Node *n = ad_node(c, OP_CLAMP, &x, 1);
    attr_set_lo(c->g, n, lo);
    attr_set_hi(c->g, n, hi);
    return ad_finish(c, n);
}

bool grad_smooth_l1_loss(Grad *c, Node *n, Node *dy)
{
    double beta = attr_beta(n);
    Node *d = diff(c, n);
    pair_grad(c, n, dy,
              beta == 0 ? ad_un(c, OP_SIGN, d) : clamp(c, ad_binc(c, OP_DIV, d, beta), -1, 1));
    return true;
}

bool grad_huber_loss(Grad *c, Node *n, Node *dy)
{
    double delta = attr_delta(n);
    pair_grad(c, n, dy, clamp(c, diff(c, n), -delta, delta));
    return true;
}
