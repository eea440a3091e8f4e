/*
 * Shape rules of the elementwise ops: binary arithmetic with NumPy
 * broadcasting, unary math and activations, clamp and dropout.
 *
 * Element types: both operands of a binary op must have the same type.
 * A scalar literal (OP_CONST, one node per use) takes the type of the
 * tensor it meets: f64 next to f64, i32 next to i32 when its value is an
 * integer. i32 is accepted by add, sub, mul, maximum, minimum, neg, abs,
 * square and clamp (with integer bounds). div and pow reject i32: PyTorch's
 * true division of integers yields floats and integer pow overflows
 * silently, so we ask for an explicit floating type instead of promoting.
 * Ops flagged OPF_FLOAT (exp, relu, ...) require f32 or f64.
 */
#include <inttypes.h>
#include <math.h>

#include "shape.h"

static bool want_numeric(Node *n, const Node *x)
{
    if (op_info[n->op].flags & OPF_FLOAT || n->op == OP_DIV || n->op == OP_POW)
        return shape_want_float(n, x, "");
    check(x->dtype == DT_F32 || x->dtype == DT_F64 || x->dtype == DT_I32);
    return true;
}

bool shape_bcast(Graph *g, Node *n)
{
    Node *a = n->in[0], *b = n->in[1];
    if (!shape_adopt_const(n, a, b) || !shape_adopt_const(n, b, a))
        return false;
    if (!shape_want_same_dtype(g, n, a, b) || !want_numeric(n, a))
        return false;
    Shape s;
    if (!shape_broadcast(g, n, &a->shape, &b->shape, &s))
        return false;
    n->dtype = a->dtype;
    n->shape = s;
    return true;
}

bool shape_unary(Graph *g, Node *n)
{
    (void)g;
    const Node *x = n->in[0];
    if (!want_numeric(n, x))
        return false;
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

bool shape_clamp(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    double lo = attr_lo(n), hi = attr_hi(n);
    if (!(lo <= hi)) {
        diag_error(n->loc, "clamp: lo (%g) must not be greater than hi (%g)", lo, hi);
        return false;
    }
    if (x->dtype == DT_I32 && (lo != floor(lo) || hi != floor(hi))) {
        diag_error(n->loc, "clamp: bounds must be integers for an i32 tensor, got %g and %g", lo,
                   hi);
        return false;
    }
    return shape_unary(g, n);
}

bool shape_dropout(Graph *g, Node *n)
{
    double p = attr_p(n);
    if (!(p >= 0 && p < 1)) {
        diag_error(n->loc, "%s: p must be in [0, 1), got %g", shape_op(n), p);
        return false;
    }
    return shape_unary(g, n);
}

/* dropout2d: as dropout, of [N, C, H, W] or [N, C, L] (a draw per channel) */
bool shape_dropout2d(Graph *g, Node *n)
{
    return shape_want_rank(g, n, n->in[0], 3, 4, "x of shape [N, C, H, W] or [N, C, L]") &&
           shape_dropout(g, n);
}

/* cast: any numeric type to the one named; to f16 or bf16 only from f32
 * (narrowing from f64 would round twice, and from i32 through f32 too). */
bool shape_cast(Graph *g, Node *n)
{
    (void)g;
    const Node *x = n->in[0];
    DType t = ir_dtype_parse(attr_to(n));
    check(t != DT_UNKNOWN && x->dtype != DT_UNKNOWN);
    if (ir_dtype_is_half(t) && x->dtype != DT_F32 && x->dtype != t) {
        diag_error(n->loc,
                   "cast: %s storage is converted from f32 only, got %s: cast(x, \"f32\") "
                   "first",
                   ir_dtype_name(t), ir_dtype_name(x->dtype));
        return false;
    }
    n->dtype = t;
    n->shape = x->shape;
    return true;
}

/* dropout_grad (internal, built by autodiff): its first input is the
 * dropout whose mask it applies, its second the adjoint of that dropout. */
bool shape_dropout_grad(Graph *g, Node *n)
{
    const Node *y = n->in[0], *dy = n->in[1];
    if (y->op != OP_DROPOUT && y->op != OP_DROPOUT2D) {
        diag_error(n->loc, "dropout_grad: input 0 must be a dropout, got %s", shape_op(y));
        return false;
    }
    if (!shape_want_same_dtype(g, n, y, dy))
        return false;
    if (!ir_shape_eq(&y->shape, &dy->shape)) {
        diag_error(n->loc, "dropout_grad: shapes differ (%s vs %s)", shape_fmt(g, &y->shape),
                   shape_fmt(g, &dy->shape));
        return false;
    }
    return shape_dropout(g, n);
}
