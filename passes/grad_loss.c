/*
 * Gradient rules of the losses (see grad.h for the contract).
 *
 * First the adjoint of each per-element loss: dy itself for reduction
 * "none", dy broadcast for "sum", dy / count for "mean" and dy / N for
 * kl_div's "batchmean" (counts are computed at run time when they involve
 * the batch). Then the derivative of
 * the per-element loss, following ref.c's definitions:
 *   cross_entropy  softmax(x) - one_hot(y) along the class dimension;
 *                  soft targets t: softmax(x) sum(t) - t, and -log_softmax(x)
 *                  for t
 *   multi_margin   grad_multi_margin_loss below
 *   kl_div         grad_kl_div below
 *   nll_loss       -one_hot(y)
 *   bce (logits)   sigmoid(x) - t; with respect to the target: -x
 *   mse            2 (x - t)
 *   l1_loss        sign(x - t)                       (0 at x = t)
 *   smooth_l1      clamp((x - t) / beta, -1, 1)      (sign for beta = 0)
 *   huber          clamp(x - t, -delta, delta)
 * The pair losses' targets get the negated gradient (but bce's, above).
 * Class labels are i32 and get nothing; with ignore_index, the rows of an
 * ignored label get a zero adjoint (kept_adjoint).
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
    if (strcmp(r, "batchmean") == 0) {
        bool batch[IR_MAX_RANK] = {true};
        if (per->rank > 0)
            dy = ad_bin(c, OP_DIV, dy, ad_count(c, per, batch, dy->dtype));
    }
    return ad_broadcast(c, dy, per);
}

/* The adjoint of each element of a class loss with ignore_index, of shape
 * per: 0 where the label is ignored; "mean" divides by the rows kept, at
 * least 1, so that a batch with every label ignored (whose mean loss is
 * 0/0, NaN, as PyTorch's) gets PyTorch's zero gradient, not NaN. */
static Node *kept_adjoint(Grad *c, Node *n, Node *dy, const Shape *per)
{
    Node *keep = ad_binc(c, OP_NE, n->in[1], (double)attr_ignore_index(n));
    Node *cast = ad_node(c, OP_CAST, &keep, 1);
    attr_set_to(c->g, cast, ir_dtype_name(dy->dtype));
    keep = ad_finish(c, cast);
    const char *r = attr_reduction(n);
    if (strcmp(r, "mean") == 0)
        dy = ad_bin(c, OP_DIV, dy, ad_binc(c, OP_MAXIMUM, ad_sum(c, keep, NULL, false), 1));
    if (strcmp(r, "none") != 0)
        dy = ad_broadcast(c, dy, per);
    return ad_bin(c, OP_MUL, dy, keep);
}

/* one_hot(y) of the class scores x's type, classes in dimension cdim */
static Node *class_one_hot(Grad *c, Node *x, Node *y, int cdim)
{
    int r = x->shape.rank;
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
    return oh;
}

static Node *softmax_along(Grad *c, Op op, Node *x, int axis)
{
    Node *p = ad_node(c, op, &x, 1);
    attr_set_axis(c->g, p, axis);
    return ad_finish(c, p);
}

bool grad_class_loss(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *y = n->in[1];
    int r = x->shape.rank, cdim = r == 1 ? 0 : 1;
    bool cls[IR_MAX_RANK] = {0};
    cls[cdim] = true;
    /* the per-element adjoint with a 1 for the class dimension */
    Shape per = x->shape, ws = x->shape;
    per.rank = 0;
    for (int i = 0; i < r; i++)
        if (i != cdim)
            per.d[per.rank++] = x->shape.d[i];
    ws.d[cdim] = (Dim){1, false};
    Node *w = ad_reshape(c,
                         attr_has_ignore_index(n) ? kept_adjoint(c, n, dy, &per)
                                                  : element_adjoint(c, n, dy, &per),
                         &ws);
    if (y->dtype != DT_I32) {
        /* soft targets t: l = -sum_c t_c log_softmax(x)_c */
        if (ad_needs(c, x)) {
            Node *ts = ad_sum(c, y, cls, true);
            Node *d =
                ad_bin(c, OP_SUB, ad_bin(c, OP_MUL, softmax_along(c, OP_SOFTMAX, x, cdim), ts), y);
            ad_acc(c, x, ad_bin(c, OP_MUL, d, w));
        }
        if (ad_needs(c, y))
            ad_acc(
                c, y,
                ad_bin(c, OP_MUL, ad_un(c, OP_NEG, softmax_along(c, OP_LOG_SOFTMAX, x, cdim)), w));
        return true;
    }
    if (!ad_needs(c, x))
        return true;
    Node *oh = class_one_hot(c, x, y, cdim);
    Node *d;
    if (n->op == OP_CROSS_ENTROPY)
        d = ad_bin(c, OP_SUB, softmax_along(c, OP_SOFTMAX, x, cdim), oh);
    else
        d = ad_un(c, OP_NEG, oh);
    ad_acc(c, x, ad_bin(c, OP_MUL, d, w));
    return true;
}

/* With m_i = margin - x_y + x_i and g_i = p m_i^(p-1) [m_i > 0] / C for
 * i != y (0 for i = y): dx_i = g_i, dx_y = -sum_i g_i. */
bool grad_multi_margin_loss(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *y = n->in[1];
    if (!ad_needs(c, x))
        return true;
    int r = x->shape.rank, cdim = r == 1 ? 0 : 1;
    bool cls[IR_MAX_RANK] = {0};
    cls[cdim] = true;
    Shape per = x->shape, ws = x->shape;
    per.rank = 0;
    for (int i = 0; i < r; i++)
        if (i != cdim)
            per.d[per.rank++] = x->shape.d[i];
    ws.d[cdim] = (Dim){1, false};
    Node *w = ad_reshape(c, element_adjoint(c, n, dy, &per), &ws);
    Node *oh = class_one_hot(c, x, y, cdim);
    Node *xy = ad_sum(c, ad_bin(c, OP_MUL, x, oh), cls, true);
    Node *m = ad_cbin(c, OP_ADD, attr_margin(n), ad_bin(c, OP_SUB, x, xy));
    Node *active = ad_bin(c, OP_MUL, ad_binc(c, OP_GT, m, 0), ad_cbin(c, OP_SUB, 1, oh));
    double C = (double)x->shape.d[cdim].n;
    Node *g = attr_p(n) == 2 ? ad_bin(c, OP_MUL, active, ad_binc(c, OP_MUL, m, 2 / C))
                             : ad_binc(c, OP_DIV, active, C);
    Node *d = ad_bin(c, OP_SUB, g, ad_bin(c, OP_MUL, oh, ad_sum(c, g, cls, true)));
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

/* l = xlogy(t, t) - t x: dx = -t, dt = log t + 1 - x (0 where t = 0, as
 * PyTorch); with log_target, l = e^t (t - x): dx = -e^t, dt = e^t (t - x + 1) */
bool grad_kl_div(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *t = n->in[1];
    Node *w = element_adjoint(c, n, dy, &x->shape);
    bool lt = attr_log_target(n);
    Node *pt = lt ? ad_un(c, OP_EXP, t) : t;
    if (ad_needs(c, x))
        ad_acc(c, x, ad_bin(c, OP_MUL, ad_un(c, OP_NEG, pt), w));
    if (ad_needs(c, t)) {
        Node *d;
        if (lt) {
            d = ad_bin(c, OP_MUL, pt, ad_binc(c, OP_ADD, ad_bin(c, OP_SUB, t, x), 1));
        } else {
            /* log(t + [t == 0]) is log t where t != 0 and 0 (not -inf) where it is */
            Node *zero = ad_binc(c, OP_EQ, t, 0);
            Node *lg = ad_un(c, OP_LOG, ad_bin(c, OP_ADD, t, zero));
            d = ad_bin(c, OP_MUL, ad_cbin(c, OP_SUB, 1, zero),
                       ad_binc(c, OP_ADD, ad_bin(c, OP_SUB, lg, x), 1));
        }
        ad_acc(c, t, ad_bin(c, OP_MUL, d, w));
    }
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
