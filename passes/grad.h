/*
 * Private to the autodiff pass: the gradient rule of every op (one per
 * name in the grad column of ir/ops.def) and the node builders the rule
 * files share (passes/autodiff.c).
 *
 * A rule is called for a node n of the forward graph whose output adjoint
 * dy (d loss / d n, n's type and shape) is complete. For every input x of
 * n that needs an adjoint (ad_needs), it builds the contribution
 * d loss / d x = dy * dn/dx out of ordinary ops and hands it to ad_acc,
 * which undoes broadcasting and accumulates fan-out. A contribution may
 * have n's shape when x was broadcast to it (elementwise ops); ad_acc sums
 * it back to x's shape. Rules may read n itself (exp, sigmoid and softmax
 * reuse their output) and any other forward value.
 *
 * Builders append typed nodes (each runs its shape rule at once, so a rule
 * can look at the shapes it built) located at the node being
 * differentiated. Constants take the type of what they meet; ad_const
 * gives them one for the ops that meet none (broadcast_to).
 *
 * A rule returns false only after reporting a diag_error: a case the rule
 * does not cover yet (passes.h lists them). Ops that are not OPF_DIFF have
 * grad_none, which builds nothing.
 */
#ifndef DLC_PASSES_GRAD_H
#define DLC_PASSES_GRAD_H

#include "ir.h"

typedef struct Grad Grad;
struct Grad {
    Graph *g;
    int nfwd;    /* forward nodes: ids below nfwd */
    bool *needs; /* by forward id, see ad_needs */
    Node **adj;  /* by forward id: the adjoint so far, or NULL */
    Loc loc;     /* the node being differentiated: where new nodes point */
};

#define OP(name, text, arity, kind, flags, attrs, shape, grad)                                     \
    bool grad(Grad *c, Node *n, Node *dy);
#include "ops.def"
#undef OP

typedef bool (*GradRule)(Grad *c, Node *n, Node *dy);

/* The sweep of pass_autodiff over any graph (a loop's body too): builds
 * in g the adjoints of its nodes from seeds[i], the adjoint of outs[i],
 * for the nodes that depend on a node marked in wrt (by id). The adjoints
 * by node id (NULL: none), or NULL after reporting an error. */
Node **ad_graph(Graph *g, Node *const *outs, Node *const *seeds, int nouts, const bool *wrt);

/* Whether input x of the node being differentiated needs an adjoint: a
 * trainable parameter is reachable from it through differentiable,
 * floating-point values. */
bool ad_needs(const Grad *c, const Node *x);
/* Adds contribution v to x's adjoint; v has x's shape or broadcasts from
 * it (then it is summed over the broadcast dimensions and reshaped). */
void ad_acc(Grad *c, Node *x, Node *v);

/* A node of op with inputs in[0..nin), attributes to be set by the caller
 * before ad_finish, which fills defaults and types the node. */
Node *ad_node(Grad *c, Op op, Node *const *in, int nin);
Node *ad_finish(Grad *c, Node *n);

Node *ad_const(Grad *c, double v, DType t);
Node *ad_un(Grad *c, Op op, Node *x);
Node *ad_bin(Grad *c, Op op, Node *a, Node *b);
/* Binary op with a scalar constant on the right / left. */
Node *ad_binc(Grad *c, Op op, Node *a, double v);
Node *ad_cbin(Grad *c, Op op, double v, Node *b);
/* sum over the dimensions marked in axes (all when NULL) */
Node *ad_sum(Grad *c, Node *x, const bool *axes, bool keepdims);
Node *ad_reshape(Grad *c, Node *x, const Shape *s);
/* x [..., M, C] as rows [L*M, C], L the product of the leading
 * dimensions ([B, T, K] as [B*T, K]); NULL when two of them scale with
 * the batch */
Node *ad_rows(Grad *c, Node *x);
Node *ad_broadcast(Grad *c, Node *x, const Shape *s);
/* transpose with the permutation perm (result dimension i = input perm[i]) */
Node *ad_transpose(Grad *c, Node *x, const int64_t *perm);
/* x with its last two dimensions swapped (rank >= 2) */
Node *ad_swap_last(Grad *c, Node *x);
/* x (broadcast from s) summed back to shape s */
Node *ad_unbroadcast(Grad *c, Node *x, const Shape *s);
/* x[..., begin:end, ...] along axis, whole elsewhere; squeeze drops the
 * axis (end = begin + 1) */
Node *ad_slice(Grad *c, Node *x, int axis, int64_t begin, int64_t end, bool squeeze);
/* to's begin, end, step and squeeze set to from's (canonical slices) */
void ad_slice_attrs(Grad *c, Node *to, const Node *from);
/* a and b joined along axis */
Node *ad_concat(Grad *c, Node *a, Node *b, int axis);
/* zeros of type t and shape s */
Node *ad_zeros(Grad *c, DType t, const Shape *s);
/* The number of elements of s in the dimensions marked in axes (all when
 * NULL), as a scalar of type t: a constant, or computed at run time when
 * the batch size is among them. */
Node *ad_count(Grad *c, const Shape *s, const bool *axes, DType t);
/* x, reduced with keepdims = false over axes, brought back to the shape
 * full it was reduced from (reshape to keepdims, then broadcast). */
Node *ad_expand(Grad *c, Node *x, const Shape *full, const bool *axes);

/* The reduced axes of a reduction node n (its canonical "axis"). */
void ad_axes(const Node *n, bool axes[IR_MAX_RANK]);

#endif
