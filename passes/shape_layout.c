/*
 * Shape rules of the data-movement ops: reshape, flatten, transpose,
 * concat, stack, broadcast_to, zeros/ones, one_hot, slice, slice_update.
 *
 * Batch dimensions: an element count is n * B^k. reshape must keep k
 * (its -1 may absorb one B); no rule ever builds a dimension holding B
 * twice. A slice may only take a batch dimension whole.
 *
 * Canonical attributes after this pass: reshape's shape has its -1
 * resolved; transpose's perm is present with non-negative entries;
 * concat's and stack's axis are non-negative; slice bounds have one entry
 * per dimension of the input: begin in 0..size-1, step != 0, and end the
 * tight bound just past the last element taken (none when a negative step
 * runs down to element 0), so re-reading them selects the same elements;
 * a picked index i reads (i, i+1, 1); a batch dimension reads (0, B, 1).
 */
#include <inttypes.h>
#include <string.h>

#include "shape.h"

/* The dimensions of the shape attribute (reshape, broadcast_to, zeros):
 * each >= 1, or -1 when minus1 is given (at most one, *minus1 is its index
 * or -1). */
static bool shape_attr(Graph *g, Node *n, Shape *out, int *minus1)
{
    AttrInts a = attr_shape(n);
    if (a.n > IR_MAX_RANK) {
        diag_error(n->loc, "%s: 'shape' has %d dimensions, at most %d are supported", shape_op(n),
                   a.n, IR_MAX_RANK);
        return false;
    }
    Shape s = {.rank = a.n};
    memcpy(s.d, a.v, (size_t)s.rank * sizeof(Dim));
    if (minus1)
        *minus1 = -1;
    for (int i = 0; i < s.rank; i++) {
        Dim d = s.d[i];
        if (minus1 && d.n == -1 && !d.batch) {
            if (*minus1 >= 0) {
                diag_error(n->loc, "%s: only one dimension can be -1, got %s", shape_op(n),
                           shape_fmt(g, &s));
                return false;
            }
            *minus1 = i;
        } else if (d.n == IR_NONE || d.n < 1) {
            diag_error(n->loc, "%s: invalid dimension %s in %s", shape_op(n),
                       shape_fmt_dim(g, d), d.n == IR_NONE ? "the shape" : shape_fmt(g, &s));
            return false;
        }
    }
    *out = s;
    return true;
}

bool shape_reshape(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    Shape t;
    int m1;
    if (!shape_attr(g, n, &t, &m1))
        return false;
    int64_t cin, ct = 1;
    int kin, kt = 0;
    check(shape_count(&x->shape, &cin, &kin));
    bool ovf = false;
    for (int i = 0; i < t.rank; i++) {
        if (i == m1)
            continue;
        ovf |= mul_overflows_i64(ct, t.d[i].n, &ct);
        kt += t.d[i].batch;
    }
    bool fits;
    if (m1 < 0) {
        fits = !ovf && ct == cin && kt == kin;
    } else {
        fits = !ovf && cin % ct == 0 && (kin == kt || kin == kt + 1);
        if (fits)
            t.d[m1] = (Dim){cin / ct, kin == kt + 1};
    }
    if (!fits) {
        const char *why = "";
        if (m1 >= 0 && kin >= kt + 2)
            why = ": -1 would hold the batch size more than once";
        diag_error(n->loc, "reshape: cannot reshape %s (%s elements) into %s%s",
                   shape_fmt(g, &x->shape), shape_fmt_count(g, cin, kin), shape_fmt(g, &t), why);
        return false;
    }
    attr_set_shape(g, n, t.d, t.rank);
    n->dtype = x->dtype;
    n->shape = t;
    return true;
}

bool shape_flatten(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    if (!shape_want_rank(g, n, x, 1, IR_MAX_RANK, "a tensor of rank >= 1"))
        return false;
    Shape s = x->shape;
    if (s.rank > 1) {
        Dim d = {1, false};
        for (int i = 1; i < s.rank; i++) {
            if (d.batch && s.d[i].batch) {
                diag_error(n->loc, "flatten: cannot flatten %s: a dimension would hold the "
                           "batch size twice", shape_fmt(g, &x->shape));
                return false;
            }
            /* no overflow: the input's count was checked */
            d.n *= s.d[i].n;
            d.batch |= s.d[i].batch;
        }
        s.rank = 2;
        s.d[1] = d;
    }
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

bool shape_transpose(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    int r = x->shape.rank;
    int64_t perm[IR_MAX_RANK];
    int np;
    if (!shape_ints(n, &attr_key_perm, perm, IR_MAX_RANK, &np))
        return false;
    if (np < 0) {
        np = r;
        for (int i = 0; i < r; i++)
            perm[i] = r - 1 - i;
    }
    const char *pstr = "";
    if (attr_has_perm(n)) {
        AttrInts pa = attr_perm(n);
        Shape ps = {.rank = pa.n};
        memcpy(ps.d, pa.v, (size_t)ps.rank * sizeof(Dim));
        pstr = shape_fmt(g, &ps);
    }
    if (np != r) {
        diag_error(n->loc, "transpose: perm %s has %d entries, but %s has rank %d", pstr, np,
                   shape_fmt(g, &x->shape), r);
        return false;
    }
    bool seen[IR_MAX_RANK] = {0};
    Shape s = {.rank = r};
    for (int i = 0; i < r; i++) {
        int64_t p = perm[i] < 0 ? perm[i] + r : perm[i];
        if (p < 0 || p >= r || seen[p]) {
            diag_error(n->loc, "transpose: perm %s is not a permutation of the %d dimensions "
                       "of %s", pstr, r, shape_fmt(g, &x->shape));
            return false;
        }
        seen[p] = true;
        perm[i] = p;
        s.d[i] = x->shape.d[p];
    }
    shape_set_ints(g, n, &attr_key_perm, perm, r);
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

static bool want_inputs(Node *n)
{
    if (n->nin >= 1)
        return true;
    diag_error(n->loc, "%s: expects at least one tensor", shape_op(n));
    return false;
}

bool shape_concat(Graph *g, Node *n)
{
    if (!want_inputs(n))
        return false;
    const Node *x0 = n->in[0];
    int64_t axis;
    if (x0->shape.rank == 0) {
        diag_error(n->loc, "concat: cannot concatenate scalars");
        return false;
    }
    if (!shape_axis(g, n, attr_axis(n), &x0->shape, x0->shape.rank, &axis))
        return false;
    Shape s = x0->shape;
    for (int i = 1; i < n->nin; i++) {
        const Node *x = n->in[i];
        if (!shape_want_same_dtype(g, n, x0, x))
            return false;
        bool same = x->shape.rank == s.rank;
        for (int j = 0; same && j < s.rank; j++)
            same = j == axis || ir_dim_eq(x->shape.d[j], x0->shape.d[j]);
        if (!same) {
            diag_error(n->loc, "concat: shapes %s and %s differ outside axis %" PRId64,
                       shape_fmt(g, &x0->shape), shape_fmt(g, &x->shape), axis);
            return false;
        }
        Dim a = s.d[axis], b = x->shape.d[axis];
        if (a.batch != b.batch) {
            diag_error(n->loc, "concat: cannot join %s and %s along axis %" PRId64 " (%s and %s)",
                       shape_fmt_dim(g, a), shape_fmt_dim(g, b), axis, shape_fmt(g, &x0->shape),
                       shape_fmt(g, &x->shape));
            return false;
        }
        if (add_overflows_i64(a.n, b.n, &s.d[axis].n)) {
            diag_error(n->loc, "concat: tensor too large");
            return false;
        }
    }
    attr_set_axis(g, n, axis);
    n->dtype = x0->dtype;
    n->shape = s;
    return true;
}

bool shape_stack(Graph *g, Node *n)
{
    if (!want_inputs(n))
        return false;
    const Node *x0 = n->in[0];
    int r = x0->shape.rank;
    for (int i = 1; i < n->nin; i++) {
        const Node *x = n->in[i];
        if (!shape_want_same_dtype(g, n, x0, x))
            return false;
        if (!ir_shape_eq(&x->shape, &x0->shape)) {
            diag_error(n->loc, "stack: shapes differ (%s and %s)", shape_fmt(g, &x0->shape),
                       shape_fmt(g, &x->shape));
            return false;
        }
    }
    if (r == IR_MAX_RANK) {
        diag_error(n->loc, "stack: the result would have more than %d dimensions", IR_MAX_RANK);
        return false;
    }
    int64_t axis, raw = attr_axis(n);
    if (raw < -(r + 1) || raw > r) {
        diag_error(n->loc, "stack: axis %" PRId64 " is out of range for stacking %s (-%d..%d)",
                   raw, shape_fmt(g, &x0->shape), r + 1, r);
        return false;
    }
    axis = raw < 0 ? raw + r + 1 : raw;
    Shape s = {.rank = r + 1};
    for (int i = 0, j = 0; i < r + 1; i++)
        s.d[i] = i == axis ? (Dim){n->nin, false} : x0->shape.d[j++];
    attr_set_axis(g, n, axis);
    n->dtype = x0->dtype;
    n->shape = s;
    return true;
}

bool shape_broadcast_to(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    Shape t;
    if (!shape_attr(g, n, &t, NULL))
        return false;
    if (!shape_fits(&x->shape, &t)) {
        diag_error(n->loc, "broadcast_to: cannot broadcast %s to %s", shape_fmt(g, &x->shape),
                   shape_fmt(g, &t));
        return false;
    }
    n->dtype = x->dtype;
    n->shape = t;
    return true;
}

bool shape_fill(Graph *g, Node *n)
{
    Shape t;
    if (!shape_attr(g, n, &t, NULL))
        return false;
    n->dtype = shape_fill_dtype(n);
    n->shape = t;
    return true;
}

bool shape_one_hot(Graph *g, Node *n)
{
    (void)g;
    const Node *x = n->in[0];
    int64_t k = attr_n(n);
    if (x->dtype != DT_I32) {
        diag_error(n->loc, "one_hot: expects i32 indices, got %s", ir_dtype_name(x->dtype));
        return false;
    }
    if (k < 1) {
        diag_error(n->loc, "one_hot: n must be at least 1, got %" PRId64, k);
        return false;
    }
    if (x->shape.rank == IR_MAX_RANK) {
        diag_error(n->loc, "one_hot: the result would have more than %d dimensions",
                   IR_MAX_RANK);
        return false;
    }
    n->dtype = shape_fill_dtype(n);
    n->shape = x->shape;
    n->shape.d[n->shape.rank++] = (Dim){k, false};
    return true;
}

/* Slices */

static const char *bound_str(Graph *g, Dim d)
{
    return d.n == IR_NONE ? "" : shape_fmt_dim(g, d);
}

/* One dimension of a slice in canonical form: elements begin, begin +
 * step, ... before end (none: past index 0 going down), len of them. */
typedef struct {
    Dim begin, end, step;
    int64_t len;
} SliceDim;

/* The batch dimension i of x (of extent size): only ':' takes it. */
static bool slice_batch(Graph *g, Node *n, const Node *x, int i, Dim b, Dim e, Dim st,
                        bool squeezed, SliceDim *out)
{
    bool whole = !squeezed && (b.n == IR_NONE || (b.n == 0 && !b.batch)) &&
                 (e.n == IR_NONE || ir_dim_eq(e, x->shape.d[i])) &&
                 (st.n == IR_NONE || (st.n == 1 && !st.batch));
    if (!whole) {
        diag_error(n->loc,
                   "%s: cannot slice the batch dimension (dimension %d of %s); "
                   "only ':' takes it",
                   shape_op(n), i, shape_fmt(g, &x->shape));
        return false;
    }
    *out = (SliceDim){{0, false}, x->shape.d[i], {1, false}, 0};
    return true;
}

/* A single index b into dimension i of size N (the dimension is squeezed). */
static bool slice_index(Node *n, int i, int64_t N, Dim b, SliceDim *out)
{
    check(b.n != IR_NONE);
    int64_t k = b.n < 0 ? b.n + N : b.n;
    if (k < 0 || k >= N) {
        diag_error(n->loc,
                   "%s: index %" PRId64 " is out of bounds for dimension %d "
                   "of size %" PRId64,
                   shape_op(n), b.n, i, N);
        return false;
    }
    *out = (SliceDim){{k, false}, {k + 1, false}, {1, false}, 1};
    return true;
}

/* b:e:st over dimension i of size N, clamped as Python's slice.indices;
 * an empty range is an error. */
static bool slice_range(Graph *g, Node *n, int i, int64_t N, Dim b, Dim e, Dim st, SliceDim *out)
{
    int64_t step = st.n == IR_NONE ? 1 : st.n;
    if (step == 0) {
        diag_error(n->loc, "%s: slice step cannot be zero", shape_op(n));
        return false;
    }
    /* Steps beyond any size select the same elements; bound them so
     * that the arithmetic below cannot overflow. */
    const int64_t big = (int64_t)1 << 62;
    step = step > big ? big : step < -big ? -big : step;
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? N : N - 1;
    int64_t start, stop;
    if (b.n == IR_NONE)
        start = step > 0 ? lo : hi;
    else if (b.n < 0)
        start = b.n + N < lo ? lo : b.n + N;
    else
        start = b.n > hi ? hi : b.n;
    if (e.n == IR_NONE)
        stop = step > 0 ? hi : lo;
    else if (e.n < 0)
        stop = e.n + N < lo ? lo : e.n + N;
    else
        stop = e.n > hi ? hi : e.n;
    int64_t len = 0;
    if (step > 0 && start < stop)
        len = (stop - start - 1) / step + 1;
    else if (step < 0 && start > stop)
        len = (start - stop - 1) / -step + 1;
    if (len == 0) {
        char sstep[64] = "";
        if (st.n != IR_NONE)
            snprintf(sstep, sizeof sstep, ":%" PRId64, st.n);
        diag_error(n->loc, "%s: the range %s:%s%s of dimension %d (size %" PRId64 ") is empty",
                   shape_op(n), bound_str(g, b), bound_str(g, e), sstep, i, N);
        return false;
    }
    int64_t last = start + (len - 1) * step;
    Dim end = step > 0    ? (Dim){last + 1, false}
              : last == 0 ? (Dim){IR_NONE, false}
                          : (Dim){last - 1, false};
    *out = (SliceDim){{start, false}, end, {step, false}, len};
    return true;
}

/* Canonicalizes the slice attributes of n (see the file comment) against
 * x's shape and computes the shape of the selected part. */
static bool slice_shape(Graph *g, Node *n, const Node *x, Shape *out)
{
    AttrInts ab = attr_begin(n), ae = attr_end(n), as = attr_step(n), aq = attr_squeeze(n);
    int nw = ab.n, r = x->shape.rank;
    check(ae.n == nw && as.n == nw);
    if (nw > r) {
        diag_error(n->loc, "%s: too many indices (%d) for %s", shape_op(n), nw,
                   shape_fmt(g, &x->shape));
        return false;
    }
    bool squeeze[IR_MAX_RANK] = {0};
    for (int i = 0; i < aq.n; i++) {
        int64_t q = aq.v[i].n;
        check(!aq.v[i].batch && q >= 0 && q < nw);
        squeeze[q] = true;
    }
    Dim cb[IR_MAX_RANK], ce[IR_MAX_RANK], cs[IR_MAX_RANK];
    Shape s = {0};
    for (int i = 0; i < r; i++) {
        Dim size = x->shape.d[i], none = {IR_NONE, false};
        Dim b = i < nw ? ab.v[i] : none, e = i < nw ? ae.v[i] : none;
        Dim st = i < nw ? as.v[i] : none;
        SliceDim d;
        if (size.batch) {
            if (!slice_batch(g, n, x, i, b, e, st, squeeze[i], &d))
                return false;
            s.d[s.rank++] = size;
        } else if (b.batch || e.batch || st.batch) {
            diag_error(n->loc, "%s: slice bounds of dimension %d of %s must be integers, "
                       "got the batch size", shape_op(n), i, shape_fmt(g, &x->shape));
            return false;
        } else if (squeeze[i]) {
            if (!slice_index(n, i, size.n, b, &d))
                return false;
        } else {
            if (!slice_range(g, n, i, size.n, b, e, st, &d))
                return false;
            s.d[s.rank++] = (Dim){d.len, false};
        }
        cb[i] = d.begin;
        ce[i] = d.end;
        cs[i] = d.step;
    }
    attr_set_begin(g, n, cb, r);
    attr_set_end(g, n, ce, r);
    attr_set_step(g, n, cs, r);
    *out = s;
    return true;
}

bool shape_slice(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    Shape s;
    if (!slice_shape(g, n, x, &s))
        return false;
    n->dtype = x->dtype;
    n->shape = s;
    return true;
}

bool shape_slice_update(Graph *g, Node *n)
{
    const Node *x = n->in[0];
    Node *v = n->in[1];
    Shape s;
    if (!shape_adopt_const(n, v, x) || !shape_want_same_dtype(g, n, x, v) ||
        !slice_shape(g, n, x, &s))
        return false;
    if (!shape_fits(&v->shape, &s)) {
        diag_error(n->loc, "slice_update: cannot assign a value of shape %s to a slice of shape "
                   "%s", shape_fmt(g, &v->shape), shape_fmt(g, &s));
        return false;
    }
    n->dtype = x->dtype;
    n->shape = x->shape;
    return true;
}
