/*
 * Gradient rules of selection (see grad.h for the contract).
 *
 * where(cond, a, b) passes dy to a where cond holds and to b elsewhere,
 * as where(cond, dy, 0) and where(cond, 0, dy): selected, not multiplied
 * by a 0/1 mask, so an inf or NaN in the unselected branch's adjoint
 * does not leak through (0 * inf would be NaN). The condition gets
 * nothing. gather's adjoint scatters dy back to the positions it read
 * (gather_grad, adding where indices repeat), take's likewise
 * (take_grad); tril and triu are their own
 * adjoints.
 */
#include "grad.h"

static Node *where(Grad *c, Node *cond, Node *a, Node *b)
{
    return ad_finish(c, ad_node(c, OP_WHERE, (Node *[]){cond, a, b}, 3));
}

bool grad_where(Grad *c, Node *n, Node *dy)
{
    Node *cond = n->in[0], *a = n->in[1], *b = n->in[2];
    if (ad_needs(c, a))
        ad_acc(c, a, where(c, cond, dy, ad_const(c, 0, dy->dtype)));
    if (ad_needs(c, b))
        ad_acc(c, b, where(c, cond, ad_const(c, 0, dy->dtype), dy));
    return true;
}

bool grad_gather(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    Node *d = ad_node(c, OP_GATHER_GRAD, (Node *[]){x, n->in[1], dy}, 3);
    attr_set_axis(c->g, d, attr_axis(n));
    ad_acc(c, x, ad_finish(c, d));
    return true;
}

/* take's adjoint likewise: take_grad scatters dy back, one element after
 * another in dy's order, so repeated ids add up in a fixed order (the
 * kernel is one task at any thread count: same bits) */
bool grad_take(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0];
    Node *d = ad_node(c, OP_TAKE_GRAD, (Node *[]){x, n->in[1], dy}, 3);
    attr_set_axis(c->g, d, attr_axis(n));
    ad_acc(c, x, ad_finish(c, d));
    return true;
}

/* a permutation of each row that is its own inverse */
bool grad_reverse_sequence(Grad *c, Node *n, Node *dy)
{
    ad_acc(c, n->in[0], ad_bin(c, OP_REVERSE_SEQUENCE, dy, n->in[1]));
    return true;
}

bool grad_tril(Grad *c, Node *n, Node *dy)
{
    Node *d = ad_node(c, n->op, &dy, 1);
    attr_set_diagonal(c->g, d, attr_diagonal(n));
    ad_acc(c, n->in[0], ad_finish(c, d));
    return true;
}
