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
 * A concat along the batch dimension has no gradient yet: a slice may only
 * take a batch dimension whole.
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

/* x's part of dy: dimension axis from begin to end (count elements), whole
 * elsewhere; squeeze drops the axis (stack). */
static Node *part(Grad *c, Node *dy, int axis, int64_t begin, int64_t count, bool squeeze)
{
    int r = dy->shape.rank;
    Dim b[IR_MAX_RANK], e[IR_MAX_RANK], s[IR_MAX_RANK], q = {axis, false};
    for (int i = 0; i < r; i++) {
        b[i] = (Dim){0, false};
        e[i] = dy->shape.d[i];
        s[i] = (Dim){1, false};
    }
    b[axis] = (Dim){begin, false};
    e[axis] = (Dim){begin + count, false};
    Node *n = ad_node(c, OP_SLICE, &dy, 1);
    Arena *a = c->g->arena;
    Dim *vb = arena_alloc(a, sizeof b), *ve = arena_alloc(a, sizeof e),
        *vs = arena_alloc(a, sizeof s);
    memcpy(vb, b, sizeof b);
    memcpy(ve, e, sizeof e);
    memcpy(vs, s, sizeof s);
    attr_set_begin(c->g, n, vb, r);
    attr_set_end(c->g, n, ve, r);
    attr_set_step(c->g, n, vs, r);
    Dim *vq = arena_alloc(a, sizeof q);
    *vq = q;
    attr_set_squeeze(c->g, n, vq, squeeze ? 1 : 0);
    return ad_finish(c, n);
}

bool grad_concat(Grad *c, Node *n, Node *dy)
{
    int axis = (int)attr_axis(n);
    if (n->shape.d[axis].batch) {
        diag_error(n->loc, "concat along the batch dimension has no gradient yet: the loss "
                           "cannot be differentiated through it");
        return false;
    }
    int64_t at = 0;
    for (int i = 0; i < n->nin; i++) {
        Node *x = n->in[i];
        int64_t len = x->shape.d[axis].n;
        if (ad_needs(c, x))
            ad_acc(c, x, part(c, dy, axis, at, len, false));
        at += len;
    }
    return true;
}

bool grad_stack(Grad *c, Node *n, Node *dy)
{
    int axis = (int)attr_axis(n);
    for (int i = 0; i < n->nin; i++)
        if (ad_needs(c, n->in[i]))
            ad_acc(c, n->in[i], part(c, dy, axis, i, 1, true));
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
