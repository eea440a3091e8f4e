/*
 * Shape rules of selection: where (elementwise, three-way NumPy
 * broadcasting), gather and its scatter-add gradient, the triangular masks
 * tril and triu, and the index-built constants arange and eye.
 *
 * where's condition may have any element type (nonzero is true); the two
 * branches share one, which the result has. gather's indices are i32 of
 * x's rank: along the axis they may have any length (the result's), along
 * every other dimension the two agree or one of them is 1 (NumPy's
 * take_along_axis broadcasting). take's are i32 of any rank, which
 * replace the axis in the result (NumPy's take, the x[ids] syntax).
 * arange and eye have no inputs: their element type is dtype, else
 * decided like zeros' (passes/shape.c).
 */
#include <inttypes.h>
#include <math.h>

#include "shape.h"

bool shape_where(Graph *g, Node *n)
{
    Node *cond = n->in[0], *a = n->in[1], *b = n->in[2];
    if (!shape_adopt_const(n, a, b) || !shape_adopt_const(n, b, a) ||
        !shape_adopt_const(n, cond, a->op == OP_CONST ? b : a))
        return false;
    if (!shape_want_same_dtype(g, n, a, b))
        return false;
    Shape ab, s;
    if (!shape_broadcast(g, n, &a->shape, &b->shape, &ab) ||
        !shape_broadcast_in(g, n, &cond->shape, &ab, &s, &cond->shape, &ab))
        return false;
    n->dtype = a->dtype;
    n->shape = s;
    return true;
}

/* The axis of x that gather or take indexes (attr axis, made
 * nonnegative); not the batch dimension, since the input checks need a
 * static bound for the indices: "cannot WHAT" says so. */
static bool index_axis(Graph *g, Node *n, const Shape *x, const char *what, int64_t *axis)
{
    if (!shape_axis(g, n, attr_axis(n), x, x->rank, axis))
        return false;
    if (x->d[*axis].batch) {
        diag_error(n->loc, "%s: cannot %s (axis %" PRId64 " of %s)", shape_op(n), what, *axis,
                   shape_fmt(g, x));
        return false;
    }
    return true;
}

/* The result of gather(x, idx, axis), also the check of gather_grad's. */
static bool gather_shape(Graph *g, Node *n, const Node *x, const Node *idx, Shape *out)
{
    if (idx->dtype != DT_I32) {
        diag_error(n->loc, "%s: expects i32 indices, got %s", shape_op(n),
                   ir_dtype_name(idx->dtype));
        return false;
    }
    int r = x->shape.rank;
    if (r == 0 || idx->shape.rank != r) {
        diag_error(n->loc, "%s: the indices must have the rank of x (%d), got %s", shape_op(n), r,
                   shape_fmt(g, &idx->shape));
        return false;
    }
    int64_t axis;
    if (!index_axis(g, n, &x->shape, "gather along the batch dimension", &axis))
        return false;
    attr_set_axis(g, n, axis);
    Shape s = {.rank = r};
    for (int i = 0; i < r; i++) {
        Dim dx = x->shape.d[i], di = idx->shape.d[i];
        if (i == axis || ir_dim_eq(dx, di) || (dx.n == 1 && !dx.batch)) {
            s.d[i] = di;
        } else if (di.n == 1 && !di.batch) {
            s.d[i] = dx;
        } else {
            diag_error(n->loc,
                       "%s: the indices %s do not fit x %s: dimension %d is %s, not %s or 1",
                       shape_op(n), shape_fmt(g, &idx->shape), shape_fmt(g, &x->shape), i,
                       shape_fmt_dim(g, di), shape_fmt_dim(g, dx));
            return false;
        }
    }
    *out = s;
    return true;
}

/* The result of take(x, ids, axis): x's dimensions with the axis replaced
 * by ids' (any rank, 0 included); also the check of take_grad's. */
static bool take_shape(Graph *g, Node *n, const Node *x, const Node *ids, Shape *out)
{
    if (ids->dtype != DT_I32) {
        diag_error(n->loc, "%s: the indices must be i32, got %s%s (cast(ids, i32) converts)",
                   shape_op(n), ir_dtype_name(ids->dtype), shape_fmt(g, &ids->shape));
        return false;
    }
    int r = x->shape.rank;
    if (r == 0) {
        diag_error(n->loc, "%s: cannot index a scalar (%s%s) with a tensor", shape_op(n),
                   ir_dtype_name(x->dtype), shape_fmt(g, &x->shape));
        return false;
    }
    int64_t axis;
    if (!index_axis(g, n, &x->shape, "index the batch dimension with a tensor", &axis))
        return false;
    if (r - 1 + ids->shape.rank > IR_MAX_RANK) {
        diag_error(n->loc, "%s: indices %s into %s would give more than %d dimensions", shape_op(n),
                   shape_fmt(g, &ids->shape), shape_fmt(g, &x->shape), IR_MAX_RANK);
        return false;
    }
    attr_set_axis(g, n, axis);
    Shape s = {.rank = r - 1 + ids->shape.rank};
    int k = 0;
    for (int i = 0; i < axis; i++)
        s.d[k++] = x->shape.d[i];
    for (int i = 0; i < ids->shape.rank; i++)
        s.d[k++] = ids->shape.d[i];
    for (int i = (int)axis + 1; i < r; i++)
        s.d[k++] = x->shape.d[i];
    *out = s;
    return true;
}

/* gather's or take's result shape, or the check of its gradient's */
typedef bool IndexRule(Graph *g, Node *n, const Node *x, const Node *idx, Shape *out);

static bool index_forward(Graph *g, Node *n, IndexRule *rule)
{
    const Node *x = n->in[0];
    Shape s;
    if (!rule(g, n, x, n->in[1], &s))
        return false;
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

/* NAME_grad(x, idx, dy): x's type and shape; dy has NAME's result. */
static bool index_grad(Graph *g, Node *n, IndexRule *rule, const char *name)
{
    const Node *x = n->in[0], *dy = n->in[2];
    Shape s;
    if (!rule(g, n, x, n->in[1], &s) || !shape_want_same_dtype(g, n, x, dy))
        return false;
    if (!ir_shape_eq(&s, &dy->shape)) {
        diag_error(n->loc, "%s_grad: dy is %s, %s's result %s", name, shape_fmt(g, &dy->shape),
                   name, shape_fmt(g, &s));
        return false;
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

bool shape_gather(Graph *g, Node *n)
{
    return index_forward(g, n, gather_shape);
}

bool shape_gather_grad(Graph *g, Node *n)
{
    return index_grad(g, n, gather_shape, "gather");
}

bool shape_take(Graph *g, Node *n)
{
    return index_forward(g, n, take_shape);
}

bool shape_take_grad(Graph *g, Node *n)
{
    return index_grad(g, n, take_shape, "take");
}

bool shape_reverse_sequence(Graph *g, Node *n)
{
    const Node *x = n->in[0], *len = n->in[1];
    if (!shape_want_rank(g, n, x, 2, IR_MAX_RANK, "x of shape [B, T, ...]"))
        return false;
    if (x->shape.d[1].batch) {
        diag_error(n->loc, "reverse_sequence: the sequence length must not be the batch size");
        return false;
    }
    Shape want = {.rank = 1, .d = {x->shape.d[0]}};
    if (len->dtype != DT_I32 || !ir_shape_eq(&len->shape, &want)) {
        diag_error(n->loc, "reverse_sequence: lengths must be i32%s, got %s%s",
                   shape_fmt(g, &want), ir_dtype_name(len->dtype), shape_fmt(g, &len->shape));
        return false;
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

bool shape_tril(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    if (!shape_want_rank(g, n, x, 2, IR_MAX_RANK, "a tensor of rank 2 or more"))
        return false;
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}

static bool want_dtype_fits(Node *n, const char *what, double v)
{
    if (!(attr_has_dtype(n) && ir_dtype_parse(attr_dtype(n)) == DT_I32) ||
        (v == floor(v) && fabs(v) <= INT32_MAX))
        return true;
    diag_error(n->loc, "%s: %s %g is not an i32 value", shape_op(n), what, v);
    return false;
}

/* arange(end), arange(start, end[, step]): the values start + i * step
 * below end (above it for a negative step), as PyTorch. */
bool shape_arange(Graph *g, Node *n)
{
    (void)g;
    double start = attr_start(n), step = attr_step_f(n);
    double end = attr_has_end_f(n) ? attr_end_f(n) : start;
    if (!attr_has_end_f(n))
        start = 0;
    if (!isfinite(start) || !isfinite(end) || !isfinite(step) || step == 0) {
        diag_error(n->loc, "arange: start, end and step must be finite and step nonzero");
        return false;
    }
    double count = ceil((end - start) / step);
    if (!(count >= 1) || count > (double)SHAPE_MAX_ELEMS) {
        diag_error(n->loc, "arange: from %g to %g by %g has %s elements", start, end, step,
                   count >= 1 ? "too many" : "no");
        return false;
    }
    if (!want_dtype_fits(n, "start", start) || !want_dtype_fits(n, "step", step))
        return false;
    n->dtype = shape_fill_dtype(n);
    n->shape = (Shape){.rank = 1, .d = {{(int64_t)count, false}}};
    return true;
}

bool shape_eye(Graph *g, Node *n)
{
    (void)g;
    int64_t r = attr_n(n), c = attr_has_m(n) ? attr_m(n) : r;
    if (r < 1 || c < 1) {
        diag_error(n->loc, "eye: the sizes must be at least 1, got %" PRId64 " and %" PRId64, r, c);
        return false;
    }
    n->dtype = shape_fill_dtype(n);
    n->shape = (Shape){.rank = 2, .d = {{r, false}, {c, false}}};
    return true;
}
