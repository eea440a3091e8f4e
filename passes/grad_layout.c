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
 * ad_acc writes them into one value instead of adding them (see
 * merge_slices in autodiff.c).
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
    ad_slice_attrs(c, u, n);
    ad_acc(c, x, ad_finish(c, u));
    return true;
}

/* dx: dy with the overwritten part zeroed; dvalue: that part of dy */
bool grad_slice_update(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *v = n->in[1];
    if (ad_needs(c, x)) {
        Node *u = ad_node(c, OP_SLICE_UPDATE, (Node *[]){dy, ad_const(c, 0, dy->dtype)}, 2);
        ad_slice_attrs(c, u, n);
        ad_acc(c, x, ad_finish(c, u));
    }
    if (ad_needs(c, v)) {
        Node *s = ad_node(c, OP_SLICE, &dy, 1);
        ad_slice_attrs(c, s, n);
        ad_acc(c, v, ad_finish(c, s));
    }
    return true;
}
