/*
 * Shape rules of the losses. reduction "mean" and "sum" give a scalar;
 * "none" gives the per-element loss: the labels' shape for the class
 * losses, the prediction's for the pair losses.
 *
 * Class losses (cross_entropy, nll_loss, multi_margin_loss) take scores
 * [N, C] or [N, C, d1, ...] with i32 labels [N] or [N, d1, ...]
 * (PyTorch's layout, classes in dimension 1), or unbatched scores [C] with
 * a scalar label; cross_entropy also takes float probabilities of the
 * scores' shape (soft targets), its "none" shape then the labels' would be.
 * ignore_index (cross_entropy, nll_loss) takes any value an i32 label can
 * hold (PyTorch takes any int; a wider one could never match):
 * one inside 0..C-1 ignores that class.
 * Pair losses require prediction and target of the same floating type and
 * exactly the same shape: PyTorch only warns about broadcasting there, and
 * a silently broadcast loss ([B, 1] against [B]) is a classic bug.
 */
#include <stdint.h>
#include <string.h>

#include "shape.h"

static void set_reduced(Node *n, DType t, const Shape *per_element)
{
    n->dtype = t;
    if (strcmp(attr_reduction(n), "none") == 0)
        n->shape = *per_element;
    else
        n->shape = (Shape){.rank = 0};
}

bool shape_class_loss(Graph *g, Node *n)
{
    const Node *x = n->in[0], *y = n->in[1];
    if (!shape_want_float(n, x, "") ||
        !shape_want_rank(g, n, x, 1, IR_MAX_RANK, "scores of shape [N, C] or [N, C, d...]") ||
        !shape_want_static(g, n, x, x->shape.rank == 1 ? 0 : 1, "the class dimension"))
        return false;
    Shape want = {0};
    for (int i = 0; i < x->shape.rank; i++)
        if (i != 1 && x->shape.rank > 1)
            want.d[want.rank++] = x->shape.d[i];
    if (n->op == OP_CROSS_ENTROPY && y->dtype != DT_I32) {
        /* soft targets: class probabilities of the scores' shape */
        if (!shape_want_same_dtype(g, n, x, y))
            return false;
        if (attr_has_ignore_index(n)) {
            diag_error(n->loc, "cross_entropy: ignore_index needs i32 class labels, not "
                               "probabilities (as in PyTorch)");
            return false;
        }
        if (!ir_shape_eq(&y->shape, &x->shape)) {
            diag_error(n->loc, "%s: probabilities must have the scores' shape %s, got %s",
                       shape_op(n), shape_fmt(g, &x->shape), shape_fmt(g, &y->shape));
            return false;
        }
        set_reduced(n, x->dtype, &want);
        return true;
    }
    if (y->dtype != DT_I32) {
        diag_error(n->loc, "%s: expects i32 class labels%s, got %s", shape_op(n),
                   n->op == OP_CROSS_ENTROPY ? " or float probabilities" : "",
                   ir_dtype_name(y->dtype));
        return false;
    }
    /* the value is compared with i32 labels; a wider one could never match
     * and would make the gradient's comparison node ill-typed */
    if (attr_has_ignore_index(n) &&
        (attr_ignore_index(n) < INT32_MIN || attr_ignore_index(n) > INT32_MAX)) {
        diag_error(n->loc, "%s: ignore_index must be an i32 label value, from %d to %d (got %lld)",
                   shape_op(n), INT32_MIN, INT32_MAX, (long long)attr_ignore_index(n));
        return false;
    }
    if (n->op == OP_MULTI_MARGIN_LOSS && attr_p(n) != 1 && attr_p(n) != 2) {
        diag_error(n->loc, "multi_margin_loss: p must be 1 or 2, got %g", attr_p(n));
        return false;
    }
    if (!ir_shape_eq(&y->shape, &want)) {
        diag_error(n->loc, "%s: labels must have shape %s for scores %s, got %s", shape_op(n),
                   shape_fmt(g, &want), shape_fmt(g, &x->shape), shape_fmt(g, &y->shape));
        return false;
    }
    set_reduced(n, x->dtype, &y->shape);
    return true;
}

bool shape_pair_loss(Graph *g, Node *n)
{
    const Node *x = n->in[0], *y = n->in[1];
    if (!shape_want_float(n, x, "") || !shape_want_same_dtype(g, n, x, y))
        return false;
    if (!ir_shape_eq(&x->shape, &y->shape)) {
        diag_error(n->loc, "%s: prediction and target shapes differ (%s vs %s)", shape_op(n),
                   shape_fmt(g, &x->shape), shape_fmt(g, &y->shape));
        return false;
    }
    if (n->op == OP_SMOOTH_L1_LOSS && !(attr_beta(n) >= 0)) {
        diag_error(n->loc, "smooth_l1_loss: beta must be >= 0, got %g", attr_beta(n));
        return false;
    }
    if (n->op == OP_HUBER_LOSS && !(attr_delta(n) > 0)) {
        diag_error(n->loc, "huber_loss: delta must be positive, got %g", attr_delta(n));
        return false;
    }
    set_reduced(n, x->dtype, &x->shape);
    return true;
}
