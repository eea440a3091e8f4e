/*
 * Gradient rules of the data-movement ops (see grad.h for the contract).
 *
 * Every rule moves the adjoint back the way the data came: reshape and
 * flatten reshape it, transpose applies the inverse permutation,
 * broadcast_to sums (ad_acc), concat and stack slice each input's part
 * out, slice writes the adjoint into zeros of the input's shape with
 * slice_update, and slice_update splits it into the part it overwrote
 * (the value's adjoint) and the rest (the input's). Slice attributes are
 * canonical after pass_shape, so they are copied unchanged.
 *
 * Slices of one value apart from each other (the GPT's q, k and v cut
 * from one product) give adjoints that are zeros but for their box:
 * ad_acc writes each into the last instead of adding (ad_merge_slices),
 * and once the boxes tile the value along one axis the adjoint is their
 * concat. The same numbers as the sum but for the sign of a zero (the
 * sum's -0 + +0 is +0), without zeroing and adding the whole value once
 * per slice: the GPT's backward zeroed, wrote and added three [B, 64,
 * 384] tensors a layer for its [B, 64, 384] of gradient.
 *
 * A slice may only take a batch dimension whole, so a concat along the
 * batch dimension (of inputs [.., n_i B, ..]) splits that dimension of dy
 * into [N, B] first (N = the sum of the n_i): input i's part is then
 * rows [at, at + n_i) of the N, in the order concat laid them out.
 */
#include <string.h>

#include "grad.h"

bool grad_reshape(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_reshape(c, dy, &n->in[0]->shape));
    return true;
}

bool grad_transpose(Grad *c, Node *n, Node *dy)
{
    AttrInts p = attr_perm(n);
    int64_t inv[IR_MAX_RANK];
    for (int i = 0; i < p.n; i++)
        inv[p.v[i].n] = i;
    ad_acc(c, n->in[0], ad_transpose(c, dy, inv));
    return true;
}

bool grad_broadcast_to(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], dy);
    return true;
}

static void copy_slice_attrs(Grad *c, Node *to, const Node *from)
{
    AttrInts b = attr_begin(from), e = attr_end(from), s = attr_step(from), q = attr_squeeze(from);
    attr_set_begin(c->g, to, b.v, b.n);
    attr_set_end(c->g, to, e.v, e.n);
    attr_set_step(c->g, to, s.v, s.n);
    attr_set_squeeze(c->g, to, q.v, q.n);
}

bool grad_concat(Grad *c, Node *n, Node *dy)
{
    int axis = (int)attr_axis(n);
    bool batch = n->shape.d[axis].batch;
    if (batch && dy->shape.rank == IR_MAX_RANK) {
        diag_error(n->loc, "concat along the batch dimension of a rank-%d tensor has no gradient: "
                           "the loss cannot be differentiated through it",
                   IR_MAX_RANK);
        return false;
    }
    if (batch) {
        Shape s = dy->shape;
        memmove(s.d + axis + 2, s.d + axis + 1, sizeof *s.d * (size_t)(s.rank - axis - 1));
        s.d[axis] = (Dim){n->shape.d[axis].n, false};
        s.d[axis + 1] = (Dim){1, true};
        s.rank++;
        dy = ad_reshape(c, dy, &s);
    }
    int64_t at = 0;
    for (int i = 0; i < n->nin; i++) {
        Node *x = n->in[i];
        int64_t len = x->shape.d[axis].n;
        if (ad_needs(c, x))
            ad_acc(c, x, ad_reshape(c, ad_slice(c, dy, axis, at, at + len, false), &x->shape));
        at += len;
    }
    return true;
}

bool grad_stack(Grad *c, Node *n, Node *dy)
{
    int axis = (int)attr_axis(n);
    for (int i = 0; i < n->nin; i++)
        if (ad_needs(c, n->in[i]))
            ad_acc(c, n->in[i], ad_slice(c, dy, axis, i, i + 1, true));
    return true;
}

/* dx: zeros with dy written into the sliced part */
bool grad_slice(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    Node *u = ad_node(c, OP_SLICE_UPDATE, (Node *[]){ad_zeros(c, x->dtype, &x->shape), dy}, 2);
    copy_slice_attrs(c, u, n);
    ad_acc(c, x, ad_finish(c, u));
    return true;
}

/* ---- slices' adjoints added ------------------------------------------------ */

/* n is zeros as ad_zeros builds them: +0 broadcast */
static bool is_zeros(const Node *n)
{
    return n->op == OP_BROADCAST_TO && n->in[0]->op == OP_CONST && attr_value(n->in[0]) == 0;
}

/* slice_update u writes a box: steps of 1, no dimension squeezed */
static bool box_update(const Node *u)
{
    if (u->op != OP_SLICE_UPDATE || attr_squeeze(u).n)
        return false;
    AttrInts st = attr_step(u);
    for (int d = 0; d < st.n; d++)
        if (st.v[d].batch || st.v[d].n != 1)
            return false;
    return true;
}

/* Whether the boxes of u and v are apart along a dimension where both
 * have static bounds */
static bool apart(const Node *u, const Node *v)
{
    AttrInts bu = attr_begin(u), eu = attr_end(u), bv = attr_begin(v), ev = attr_end(v);
    for (int d = 0; d < bu.n; d++) {
        if (bu.v[d].batch || eu.v[d].batch || bv.v[d].batch || ev.v[d].batch)
            continue;
        if (eu.v[d].n <= bv.v[d].n || ev.v[d].n <= bu.v[d].n)
            return true;
    }
    return false;
}

/* The axis along which box update u does not take all of its shape, -1
 * when it takes it all, -2 when there are more such axes */
static int box_axis(const Node *u)
{
    AttrInts b = attr_begin(u), e = attr_end(u);
    int axis = -1;
    for (int d = 0; d < b.n; d++) {
        bool whole = !b.v[d].batch && b.v[d].n == 0 && ir_dim_eq(e.v[d], u->shape.d[d]);
        if (!whole)
            axis = axis == -1 ? d : -2;
    }
    return axis;
}

enum { MAX_TILES = 64 };

/* The chain a of box updates of zeros as the concat of their values when
 * their boxes tile a along one static axis, else NULL */
static Node *as_concat(Grad *c, Node *a)
{
    Node *part[MAX_TILES];
    int np = 0, axis = -1;
    for (Node *u = a; u->op == OP_SLICE_UPDATE; u = u->in[0]) {
        int ax = box_axis(u);
        if (np == MAX_TILES || ax < 0 || (np && ax != axis))
            return NULL;
        axis = ax;
        part[np++] = u;
    }
    if (np < 2 || a->shape.d[axis].batch)
        return NULL;
    for (int i = 1; i < np; i++) /* by where they begin along the axis */
        for (int j = i; j > 0 && attr_begin(part[j]).v[axis].n < attr_begin(part[j - 1]).v[axis].n;
             j--) {
            Node *t = part[j];
            part[j] = part[j - 1];
            part[j - 1] = t;
        }
    int64_t at = 0;
    Node *val[MAX_TILES];
    for (int i = 0; i < np; i++) {
        Dim b = attr_begin(part[i]).v[axis], e = attr_end(part[i]).v[axis];
        if (b.batch || e.batch || b.n != at)
            return NULL;
        at = e.n;
        val[i] = part[i]->in[1];
    }
    if (at != a->shape.d[axis].n)
        return NULL;
    Node *n = ad_node(c, OP_CONCAT, val, np);
    attr_set_axis(c->g, n, axis);
    return ad_finish(c, n);
}

Node *ad_merge_slices(Grad *c, Node *a, Node *v)
{
    if (!box_update(v) || !is_zeros(v->in[0]))
        return NULL;
    const Node *u = a;
    for (; u->op == OP_SLICE_UPDATE; u = u->in[0])
        if (!box_update(u) || !apart(u, v))
            return NULL;
    if (!is_zeros(u) || a->dtype != v->dtype || !ir_shape_eq(&a->shape, &v->shape))
        return NULL;
    Node *m = ad_node(c, OP_SLICE_UPDATE, (Node *[]){a, v->in[1]}, 2);
    copy_slice_attrs(c, m, v);
    m = ad_finish(c, m);
    Node *t = as_concat(c, m);
    return t ? t : m;
}

/* dx: dy with the overwritten part zeroed; dvalue: that part of dy */
bool grad_slice_update(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *v = n->in[1];
    if (ad_needs(c, x)) {
        Node *u = ad_node(c, OP_SLICE_UPDATE, (Node *[]){dy, ad_const(c, 0, dy->dtype)}, 2);
        copy_slice_attrs(c, u, n);
        ad_acc(c, x, ad_finish(c, u));
    }
    if (ad_needs(c, v)) {
        Node *s = ad_node(c, OP_SLICE, &dy, 1);
        copy_slice_attrs(c, s, n);
        ad_acc(c, v, ad_finish(c, s));
    }
    return true;
}
