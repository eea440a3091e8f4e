/*
 * Gradient rules of structured control flow: loop and loop_result
 * (ir/ops.def, docs/IR.md).
 */
#include "grad.h"

/* A result's adjoint reaches the loop's rule through the loop's own
 * (token) adjoint slot, which only marks that some result has one; the
 * loop's rule gathers its results' adjoints itself. */
bool grad_loop_result(Grad *c, Node *n, Node *dy)
{
    Node *l = n->in[0];
    if (ad_needs(c, l) && !c->adj[l->id])
        c->adj[l->id] = dy;
    return true;
}

bool grad_loop(Grad *c, Node *n, Node *dy)
{
    (void)dy;
    diag_error(n->loc, "loop: differentiating a loop is not supported yet");
    (void)c;
    return false;
}
