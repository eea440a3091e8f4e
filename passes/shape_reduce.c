/*
 * Shape rules of the ops that work along axes: reductions (sum, mean,
 * max, min, var), argmax, softmax/log_softmax, and the matrix product.
 *
 * Canonical attributes after this pass: a reduction's axis is the sorted
 * list of non-negative axes it reduces (all of them when none was given);
 * argmax's and softmax's axis is non-negative.
 *
 * matmul follows NumPy: 1-D operands are promoted (a row for the left, a
 * column for the right) and the added dimension removed from the result;
 * the leading (batch) dimensions broadcast; the contracted dimensions
 * must be equal, so a batch dimension may be contracted only with itself.
 * transpose_a/transpose_b swap an operand's last two dimensions first;
 * a 1-D operand cannot be transposed.
 * Like sum, max and min, matmul accepts i32 (the op table does not flag
 * it OPF_FLOAT); mean, var and softmax need floats.
 *
 * argmax without an axis indexes the flattened tensor: a scalar, or with
 * keepdims a tensor of ones of the input's rank (as PyTorch 2 does).
 */
#include <inttypes.h>
#include <string.h>

#include "shape.h"

bool shape_rowwise(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    int64_t axis;
    if (!shape_want_float(n, x, "") ||
        !shape_want_rank(g, n, x, 1, IR_MAX_RANK, "a tensor of rank >= 1") ||
        !shape_axis(g, n, attr_axis(n), &x->shape, x->shape.rank, &axis))
        return false;
    attr_set_axis(g, n, axis);
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

bool shape_matmul(Graph *g, Node *n)
{
    const Node *a = n->in[0], *b = n->in[1];
    if (!shape_want_same_dtype(g, n, a, b))
        return false;
    if (a->shape.rank == 0 || b->shape.rank == 0) {
        diag_error(n->loc, "matmul: operands must have rank >= 1, got %s @ %s",
                   shape_fmt(g, &a->shape), shape_fmt(g, &b->shape));
        return false;
    }
    Shape sa = a->shape, sb = b->shape;
    for (int i = 0; i < 2; i++) {
        Shape *s = i == 0 ? &sa : &sb;
        if (!ir_matmul_trans(n, i))
            continue;
        if (s->rank < 2) {
            diag_error(n->loc, "matmul: transpose_%c needs an operand of rank >= 2, got %s",
                       "ab"[i], shape_fmt(g, s));
            return false;
        }
        Dim t = s->d[s->rank - 1];
        s->d[s->rank - 1] = s->d[s->rank - 2];
        s->d[s->rank - 2] = t;
    }
    /* as read, for messages */
    Shape ra = sa, rb = sb;
    bool row = sa.rank == 1, col = sb.rank == 1;
    if (row) {
        sa.rank = 2;
        sa.d[1] = sa.d[0];
        sa.d[0] = (Dim){1, false};
    }
    if (col) {
        sb.rank = 2;
        sb.d[1] = (Dim){1, false};
    }
    Dim k1 = sa.d[sa.rank - 1], k2 = sb.d[sb.rank - 2];
    if (!ir_dim_eq(k1, k2)) {
        diag_error(n->loc, "matmul: inner dimensions differ (%s vs %s) in %s @ %s",
                   shape_fmt_dim(g, k1), shape_fmt_dim(g, k2), shape_fmt(g, &ra),
                   shape_fmt(g, &rb));
        return false;
    }
    Shape ba = {.rank = sa.rank - 2}, bb = {.rank = sb.rank - 2}, s;
    memcpy(ba.d, sa.d, (size_t)ba.rank * sizeof(Dim));
    memcpy(bb.d, sb.d, (size_t)bb.rank * sizeof(Dim));
    if (!shape_broadcast_in(g, n, &ba, &bb, &s, &a->shape, &b->shape))
        return false;
    if (!row)
        s.d[s.rank++] = sa.d[sa.rank - 2];
    if (!col)
        s.d[s.rank++] = sb.d[sb.rank - 1];
    n->dtype = a->dtype;
    n->shape = s;
    return true;
}

bool shape_reduce(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    int r = x->shape.rank;
    if (op_info[n->op].flags & OPF_FLOAT && !shape_want_float(n, x, ""))
        return false;
    if (n->op == OP_VAR && attr_correction(n) < 0) {
        diag_error(n->loc, "var: correction must be >= 0, got %" PRId64, attr_correction(n));
        return false;
    }
    int64_t raw[IR_MAX_RANK], axes[IR_MAX_RANK];
    int na;
    if (!shape_ints(n, &attr_key_axes, raw, IR_MAX_RANK, &na))
        return false;
    bool reduced[IR_MAX_RANK] = {0};
    if (na < 0) {
        for (int i = 0; i < r; i++)
            reduced[i] = true;
    }
    for (int i = 0; i < na; i++) {
        int64_t ax;
        if (!shape_axis(g, n, raw[i], &x->shape, r, &ax))
            return false;
        if (reduced[ax]) {
            diag_error(n->loc, "%s: axis %" PRId64 " appears twice in the axis list",
                       shape_op(n), ax);
            return false;
        }
        reduced[ax] = true;
    }
    int k = 0;
    bool keep = attr_keepdims(n);
    Shape s = {0};
    for (int i = 0; i < r; i++) {
        if (reduced[i])
            axes[k++] = i;
        if (!reduced[i])
            s.d[s.rank++] = x->shape.d[i];
        else if (keep)
            s.d[s.rank++] = (Dim){1, false};
    }
    shape_set_ints(g, n, &attr_key_axes, axes, k);
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

bool shape_argmax(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    bool keep = attr_keepdims(n);
    Shape s = {0};
    if (attr_has_axis(n)) {
        int64_t ax;
        if (!shape_axis(g, n, attr_axis(n), &x->shape, x->shape.rank, &ax))
            return false;
        attr_set_axis(g, n, ax);
        for (int i = 0; i < x->shape.rank; i++) {
            if (i != ax)
                s.d[s.rank++] = x->shape.d[i];
            else if (keep)
                s.d[s.rank++] = (Dim){1, false};
        }
    } else if (keep) {
        s.rank = x->shape.rank;
        for (int i = 0; i < s.rank; i++)
            s.d[i] = (Dim){1, false};
    }
    n->dtype = DT_I32;
    n->shape = s;
    return true;
}
