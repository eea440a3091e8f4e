/*
 * pass_fuse: groups nodes into kernels by setting Node.fused. It only
 * marks; the nodes, their order and their inputs do not change.
 *
 * What code generation may assume about the result:
 *  - A group is a root R (R->fused == NULL) and the members M with
 *    M->fused == R. Every node not fused into another is a root of its own
 *    (possibly one-node) group; sources and consts are never members.
 *  - Every member M has exactly one user node U (U may read M through more
 *    than one operand, as mul(M, M)); U is R or another member; M has U's
 *    dtype and exact shape, hence R's. So the members and R form a tree
 *    toward R, each member is computed once per element of R, and no
 *    member is visible outside the group: it is not a graph output, not
 *    the training loss or a gradient, and it is never materialized. Members come before
 *    R in node order.
 *  - Elementwise group: R and all members are K_ELTWISE ops other than the
 *    OPF_MODE/OPF_RANDOM ones (dropout). The group is one loop nest over
 *    R's shape. Operands that are not members (materialized nodes, consts)
 *    are read with NumPy broadcasting to R's shape. Members' operands from
 *    outside the group, counted per operand slot (a value read twice by
 *    one node once) and consts not counted, number at most
 *    FUSE_MAX_OPERANDS (16), so a kernel takes a bounded set of pointers.
 *  - GEMM group: exactly one member G is K_GEMM (a matmul), and the group
 *    is a chain G -> E1 -> ... -> R in which each node is the only
 *    operand-from-the-group of the next: E1 may be a bias add, add(G, b) or
 *    add(b, G), whose other operand b has shape [N] or [1, N] with N the
 *    last dimension of G; every other Ei (and R) is a unary K_ELTWISE op
 *    (arity 1: relu, gelu, clamp, ...). The product is computed into R's
 *    buffer and the chain applied to it in place, row by row or at the end,
 *    so R's storage must not overlap G's operands or b (the memory planner
 *    must not let R reuse them in place).
 *  - Convolution group: the same chain with G a conv2d, conv1d, conv3d,
 *    conv_transpose2d or conv_transpose1d (G is K_CONV; never
 *    conv_grad_input/conv_grad_weight) instead of the matmul, where the
 *    bias b of E1 is per channel: b has G's dtype and rank r-1 or r (r =
 *    G's rank, 3 to 5) and, aligned to G's
 *    shape from the right, its dimension over G's channel dimension 1 is C
 *    (G's dim 1, not the batch) and every other dimension is a static 1:
 *    [C, 1, 1] or [1, C, 1, 1] after a 2-d convolution, [C, 1] or [1, C, 1]
 *    after a 1-d one; and the Ei after it may also take operands that are
 *    consts or values of their exact shape and type from outside the group
 *    that would not have been fused into them (a residual add). The
 *    convolution is computed into R's buffer one image (index along
 *    dimension 0) at a time and the chain applied to that image in place
 *    right after it, so the same storage rule holds, for those operands
 *    too. The root's step carries the convolution's scratch
 *    (cg_scratch_bytes).
 *  - Batch norm group: a batch_norm followed by such a chain (its
 *    activation, a residual add), no bias; the norm computes each
 *    value and the chain is applied before it is stored in R's buffer
 *    (codegen/norm.c). The norm reads all of a channel before it writes
 *    any of it, so R may not overlap its operands only partly: the
 *    planner's in-place rule (elementwise groups only) keeps them apart.
 *  - A matmul or convolution that is not followed by such a chain stays a
 *    group of its own; a GEMM or convolution group never grows beyond its
 *    chain (an elementwise node is not fused into it, nor its root into an
 *    elementwise user). In the code, "GEMM" covers them all.
 *
 * A loop's body is fused as a graph of its own (its outputs pinned like a
 * model's); a loop and its results are never members.
 *
 * Fusing never changes results: each member is computed exactly as on its
 * own, only without a round trip through memory.
 *
 * How: count each node's distinct users; then form the GEMM chains from
 * every matmul and convolution upward, then elementwise groups in node
 * order (a node joins its single user when both qualify), then resolve
 * each member to its group's root walking backwards (a user comes after
 * its members, so its own root is already known).
 */
#include "passes.h"

/* The most operand slots an elementwise group reads from outside itself
 * (consts not counted), so kernels take a bounded number of pointers. */
enum { FUSE_MAX_OPERANDS = 16 };

static bool fusable_eltwise(const Node *n)
{
    return op_info[n->op].kind == K_ELTWISE && !(op_info[n->op].flags & (OPF_MODE | OPF_RANDOM));
}

static bool same_type(const Node *a, const Node *b)
{
    return a->dtype == b->dtype && ir_shape_eq(&a->shape, &b->shape);
}

/* The convolutions with a codegen kernel that takes an epilogue. */
static bool is_conv(const Node *n)
{
    return n->op == OP_CONV2D || n->op == OP_CONV1D || n->op == OP_CONV3D ||
           n->op == OP_CONV_TRANSPOSE2D || n->op == OP_CONV_TRANSPOSE1D;
}

/* b is a per-channel bias for the convolution p: rank r-1 or r, C over
 * p's dimension 1, static 1 elsewhere. */
static bool is_channel_bias(const Node *b, const Node *p)
{
    int r = p->shape.rank, off = r - b->shape.rank; /* b's dim k is p's dim k + off */
    if (r < 3 || off < 0 || off > 1 || b->dtype != p->dtype || p->shape.d[1].batch)
        return false;
    for (int k = 0; k < b->shape.rank; k++) {
        Dim want = k + off == 1 ? p->shape.d[1] : (Dim){1, false};
        if (!ir_dim_eq(b->shape.d[k], want))
            return false;
    }
    return true;
}

/* b is a bias for the product p: [N] or [1, N], N = p's last dimension;
 * for a convolution, a per-channel bias. */
static bool is_bias(const Node *b, const Node *p)
{
    if (is_conv(p))
        return is_channel_bias(b, p);
    if (p->shape.rank < 1 || b->dtype != p->dtype)
        return false;
    Dim n = p->shape.d[p->shape.rank - 1];
    if (b->shape.rank == 1)
        return ir_dim_eq(b->shape.d[0], n);
    return b->shape.rank == 2 && ir_dim_eq(b->shape.d[0], (Dim){1, false}) &&
           ir_dim_eq(b->shape.d[1], n);
}

/* u may extend a chain at cur: each of its other operands is a const
 * or a value of u's exact type from outside (a residual, the GELU's
 * input beside its adjoint) that would not have joined u's group */
static bool full_link(const Node *u, const Node *cur, const int *nusers, Node *const *user)
{
    for (int j = 0; j < u->nin; j++) {
        const Node *y = u->in[j];
        if (y == cur || y->op == OP_CONST)
            continue;
        if (!same_type(y, u) || (fusable_eltwise(y) && nusers[y->id] == 1 && user[y->id] == u))
            return false;
    }
    return true;
}

void pass_fuse(Graph *g)
{
    int nn = g->nodes.n;
    Arena *a = g->arena;
    int *nusers = arena_alloc(a, (size_t)nn * sizeof *nusers + 1);
    Node **user = arena_alloc(a, (size_t)nn * sizeof *user + 1);
    bool *pinned = arena_alloc(a, (size_t)nn * sizeof *pinned + 1); /* output, loss or gradient */
    bool *gemm = arena_alloc(a, (size_t)nn * sizeof *gemm + 1);     /* in a GEMM group */
    Node **into = arena_alloc(a, (size_t)nn * sizeof *into + 1);    /* direct user */

    for (int i = 0; i < nn; i++) {
        Node *u = g->nodes.v[i];
        check(u->id == i);
        u->fused = NULL;
        if (u->body)
            pass_fuse(u->body);
        for (int j = 0; j < u->nin; j++) {
            Node *x = u->in[j];
            bool seen = false;
            for (int k = 0; k < j; k++)
                seen |= u->in[k] == x;
            if (!seen) {
                nusers[x->id]++;
                user[x->id] = u;
            }
        }
    }
    for (int i = 0; i < g->outputs.n; i++)
        pinned[g->outputs.v[i].node->id] = true;
    /* gradients are results of a training step, like the loss */
    for (const Train *t = g->train; t; t = t->next) {
        pinned[t->loss->id] = true;
        for (int i = 0; i < t->grads.n; i++)
            pinned[t->grads.v[i]->id] = true;
    }

        /* The single user of n when n may be fused into one at all. */
#define SOLE_USER(n) (!pinned[(n)->id] && nusers[(n)->id] == 1 ? user[(n)->id] : NULL)

    /* GEMM epilogues: matmul [-> bias add] [-> unary op]*; conv [-> bias
     * add] [-> link]* and batch_norm [-> link]+, a link a unary op or one
     * whose other operands come from outside (full_link) */
    for (int i = 0; i < nn; i++) {
        Node *m = g->nodes.v[i];
        bool norm = m->op == OP_BATCH_NORM;
        if ((op_info[m->op].kind != K_GEMM && !is_conv(m) && !norm) || m->dtype == DT_UNKNOWN)
            continue;
        Node *cur = m, *u = SOLE_USER(m);
        if (u && !norm && u->op == OP_ADD && same_type(u, m)) {
            Node *b = u->in[0] == m ? u->in[1] : u->in[0];
            /* b may be a product that qualifies as this one's bias while this
             * one qualifies as its bias ([1, N] + [1, N]): one joins, the
             * other stays outside as the bias operand. */
            if (b != m && is_bias(b, m) && into[b->id] != u) {
                into[cur->id] = u;
                cur = u;
                u = SOLE_USER(cur);
            }
        }
        /* (a product's tail takes unary ops only: its epilogue runs on
         * blocks of the tasks' panels, where the GPT's gelu_grad(x, G)
         * took 4.4 ms for the 3.9 of the product and a flat pass) */
        bool full = op_info[m->op].kind != K_GEMM;
        while (u && !gemm[u->id] && fusable_eltwise(u) && same_type(u, cur) &&
               (u->nin == 1 || (full && full_link(u, cur, nusers, user)))) {
            into[cur->id] = u;
            cur = u;
            u = SOLE_USER(cur);
        }
        if (cur != m)
            for (Node *x = m; x; x = into[x->id])
                gemm[x->id] = true;
    }

    /* Elementwise chains and trees, decided at the user: each operand that
     * qualifies joins while the group's external operands stay bounded. */
    int *ext = arena_alloc(a, (size_t)nn * sizeof *ext + 1);
    for (int i = 0; i < nn; i++) {
        Node *u = g->nodes.v[i];
        if (gemm[i] || !fusable_eltwise(u))
            continue;
        for (int j = 0; j < u->nin; j++) {
            Node *x = u->in[j];
            bool again = false;
            for (int k = 0; k < j; k++)
                again |= u->in[k] == x;
            if (x->op == OP_CONST || again)
                continue;
            bool join = !gemm[x->id] && fusable_eltwise(x) && SOLE_USER(x) == u &&
                        same_type(x, u) &&
                        ext[i] + ext[x->id] <= FUSE_MAX_OPERANDS - (u->nin - 1 - j);
            if (join)
                into[x->id] = u;
            ext[i] += join ? ext[x->id] : 1;
        }
    }
#undef SOLE_USER

    for (int i = nn - 1; i >= 0; i--) {
        Node *n = g->nodes.v[i], *u = into[i];
        if (u)
            n->fused = u->fused ? u->fused : u;
    }
}
