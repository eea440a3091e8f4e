/*
 * pass_autodiff: reverse-mode differentiation at compile time. The adjoint
 * computation of the training loss is appended to the graph as ordinary
 * nodes, which then go through shape checking, simplification, fusion and
 * memory planning like the forward graph (STYLE.md: gradients are graph
 * nodes).
 *
 * How:
 *  1. needs[]: a forward node needs an adjoint when the loss depends on it
 *     and a trainable (not frozen) parameter is reachable from it through
 *     floating-point values and ops that pass gradients (not grad_none:
 *     argmax, one_hot, comparisons; i32 values never). Everything else is
 *     pruned: no adjoint is built for it.
 *  2. The loss's adjoint is the constant 1 of the loss's type. Nodes are
 *     visited in reverse graph order (a reverse topological order), so a
 *     node's adjoint is complete, all of its users having contributed,
 *     when its turn comes; its op's rule (the grad column of ops.def,
 *     passes/grad_*.c) adds contributions to its inputs' adjoints. Fan-out
 *     accumulates with add (slices apart from each other: written into
 *     one value, merge_slices); broadcasting is undone by sum +
 *     reshape.
 *  3. Train.params lists the trainable parameters in graph order and
 *     Train.grads their adjoints; a parameter the loss does not depend on
 *     gets zeros, so the optimizer always sees one gradient per parameter.
 *  4. pass_shape runs over the whole graph again, so the new nodes carry
 *     canonical attributes exactly as if they had been written by hand.
 *
 * The builders below type each node as it is made (shape_node), so rules
 * can read the shapes of what they built; a failure there is a dlc bug.
 */
#include "passes.h"

#include <string.h>

#include "grad.h"
#include "shape.h"

static const GradRule rules[OP_COUNT] = {
#define OP(name, text, arity, kind, flags, attrs, shape, grad) grad,
#include "ops.def"
#undef OP
};

bool ad_needs(const Grad *c, const Node *x)
{
    return x->id < c->nfwd && c->needs[x->id];
}

/* ---- slices' adjoints added ------------------------------------------------ */

/* Slices of one value apart from each other (the GPT's q, k and v cut
 * from one product) give adjoints that are zeros but for their box
 * (grad_slice). merge_slices writes such a contribution into the chain
 * of those before instead of adding it, and once the boxes tile the
 * value along one axis the adjoint is their concat: the same numbers as
 * the sum but for the sign of a zero (the sum's -0 + +0 is +0), without
 * zeroing and adding the whole value once per slice (the GPT's backward
 * zeroed, wrote and added three [B, 64, 384] tensors a layer for its
 * [B, 64, 384] of gradient). */

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
        /* the value must be the box itself, not broadcast into it */
        Shape box = a->shape;
        box.d[axis] = (Dim){e.n - b.n, false};
        if (!ir_shape_eq(&val[i]->shape, &box))
            return NULL;
    }
    if (at != a->shape.d[axis].n)
        return NULL;
    Node *n = ad_node(c, OP_CONCAT, val, np);
    attr_set_axis(c->g, n, axis);
    return ad_finish(c, n);
}

/* a plus v when v is a box of zeros written apart from the boxes of a,
 * a chain of such over zeros: v's box written into a, or the concat;
 * else NULL */
static Node *merge_slices(Grad *c, Node *a, Node *v)
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
    ad_slice_attrs(c, m, v);
    m = ad_finish(c, m);
    Node *t = as_concat(c, m);
    return t ? t : m;
}

void ad_acc(Grad *c, Node *x, Node *v)
{
    if (!ad_needs(c, x))
        return;
    check(v->dtype == x->dtype);
    v = ad_unbroadcast(c, v, &x->shape);
    Node **a = &c->adj[x->id], *m = *a ? merge_slices(c, *a, v) : NULL;
    *a = m ? m : *a ? ad_bin(c, OP_ADD, *a, v) : v;
}

/* Builders */

Node *ad_node(Grad *c, Op op, Node *const *in, int nin)
{
    return ir_node_new(c->g, op, in, nin, c->loc);
}

Node *ad_finish(Grad *c, Node *n)
{
    ir_attrs_fill_defaults(c->g->arena, &n->attrs, ir_op_schema(n->op));
    int before = diag_errors();
    bool ok = shape_node(c->g, n);
    check(ok && diag_errors() == before);
    return n;
}

Node *ad_const(Grad *c, double v, DType t)
{
    Node *n = ad_node(c, OP_CONST, NULL, 0);
    attr_set_value(c->g, n, v);
    n->dtype = t;
    n->shape = (Shape){.rank = 0};
    return ad_finish(c, n);
}

Node *ad_un(Grad *c, Op op, Node *x)
{
    return ad_finish(c, ad_node(c, op, &x, 1));
}

Node *ad_bin(Grad *c, Op op, Node *a, Node *b)
{
    Node *in[2] = {a, b};
    return ad_finish(c, ad_node(c, op, in, 2));
}

Node *ad_binc(Grad *c, Op op, Node *a, double v)
{
    return ad_bin(c, op, a, ad_const(c, v, a->dtype));
}

Node *ad_cbin(Grad *c, Op op, double v, Node *b)
{
    return ad_bin(c, op, ad_const(c, v, b->dtype), b);
}

/* Attributes keep their arrays: copy them into the arena. */
static Dim *dims_copy(Grad *c, const Dim *d, int n)
{
    Dim *v = arena_alloc(c->g->arena, sizeof *v * (size_t)n + 1);
    memcpy(v, d, sizeof *v * (size_t)n);
    return v;
}

static void set_shape(Grad *c, Node *n, const Shape *s)
{
    attr_set_shape(c->g, n, dims_copy(c, s->d, s->rank), s->rank);
}

Node *ad_sum(Grad *c, Node *x, const bool *axes, bool keepdims)
{
    Dim ax[IR_MAX_RANK];
    int k = 0;
    for (int i = 0; i < x->shape.rank; i++)
        if (!axes || axes[i])
            ax[k++] = (Dim){i, false};
    if (k == 0)
        return x;
    Node *n = ad_node(c, OP_SUM, &x, 1);
    attr_set_axes(c->g, n, dims_copy(c, ax, k), k);
    attr_set_keepdims(c->g, n, keepdims);
    return ad_finish(c, n);
}

Node *ad_reshape(Grad *c, Node *x, const Shape *s)
{
    if (ir_shape_eq(&x->shape, s))
        return x;
    Node *n = ad_node(c, OP_RESHAPE, &x, 1);
    set_shape(c, n, s);
    return ad_finish(c, n);
}

Node *ad_broadcast(Grad *c, Node *x, const Shape *s)
{
    if (ir_shape_eq(&x->shape, s))
        return x;
    Node *n = ad_node(c, OP_BROADCAST_TO, &x, 1);
    set_shape(c, n, s);
    return ad_finish(c, n);
}

Node *ad_transpose(Grad *c, Node *x, const int64_t *perm)
{
    Dim p[IR_MAX_RANK];
    bool identity = true;
    for (int i = 0; i < x->shape.rank; i++) {
        p[i] = (Dim){perm[i], false};
        identity &= perm[i] == i;
    }
    if (identity)
        return x;
    Node *n = ad_node(c, OP_TRANSPOSE, &x, 1);
    attr_set_perm(c->g, n, dims_copy(c, p, x->shape.rank), x->shape.rank);
    return ad_finish(c, n);
}

Node *ad_swap_last(Grad *c, Node *x)
{
    int64_t perm[IR_MAX_RANK];
    int r = x->shape.rank;
    check(r >= 2);
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return ad_transpose(c, x, perm);
}

Node *ad_rows(Grad *c, Node *x)
{
    const Shape *s = &x->shape;
    Dim r = {1, false};
    for (int i = 0; i < s->rank - 1; i++) {
        if (r.batch && s->d[i].batch)
            return NULL;
        r = (Dim){r.n * s->d[i].n, r.batch || s->d[i].batch};
    }
    Shape rows = {.rank = 2, .d = {r, s->d[s->rank - 1]}};
    return ad_reshape(c, x, &rows);
}

Node *ad_unbroadcast(Grad *c, Node *x, const Shape *s)
{
    if (ir_shape_eq(&x->shape, s))
        return x;
    int r = x->shape.rank, lead = r - s->rank;
    check(lead >= 0);
    bool axes[IR_MAX_RANK] = {0};
    for (int i = 0; i < r; i++) {
        Dim d = x->shape.d[i];
        axes[i] = i < lead || (!ir_dim_eq(s->d[i - lead], d) && !(d.n == 1 && !d.batch));
    }
    return ad_reshape(c, ad_sum(c, x, axes, false), s);
}

Node *ad_slice(Grad *c, Node *x, int axis, int64_t begin, int64_t end, bool squeeze)
{
    int r = x->shape.rank;
    Dim *d = arena_alloc(c->g->arena, sizeof *d * (size_t)(3 * r + 1));
    for (int i = 0; i < r; i++) {
        d[i] = (Dim){0, false};
        d[r + i] = x->shape.d[i];
        d[2 * r + i] = (Dim){1, false};
    }
    d[axis] = (Dim){begin, false};
    d[r + axis] = (Dim){end, false};
    d[3 * r] = (Dim){axis, false};
    Node *n = ad_node(c, OP_SLICE, &x, 1);
    attr_set_begin(c->g, n, d, r);
    attr_set_end(c->g, n, d + r, r);
    attr_set_step(c->g, n, d + 2 * r, r);
    attr_set_squeeze(c->g, n, d + 3 * r, squeeze ? 1 : 0);
    return ad_finish(c, n);
}

Node *ad_concat(Grad *c, Node *a, Node *b, int axis)
{
    Node *n = ad_node(c, OP_CONCAT, (Node *[]){a, b}, 2);
    attr_set_axis(c->g, n, axis);
    return ad_finish(c, n);
}

void ad_slice_attrs(Grad *c, Node *to, const Node *from)
{
    AttrInts b = attr_begin(from), e = attr_end(from), s = attr_step(from), q = attr_squeeze(from);
    attr_set_begin(c->g, to, b.v, b.n);
    attr_set_end(c->g, to, e.v, e.n);
    attr_set_step(c->g, to, s.v, s.n);
    attr_set_squeeze(c->g, to, q.v, q.n);
}

Node *ad_zeros(Grad *c, DType t, const Shape *s)
{
    return ad_broadcast(c, ad_const(c, 0, t), s);
}

Node *ad_count(Grad *c, const Shape *s, const bool *axes, DType t)
{
    int64_t n = 1;
    Shape batch = {0};
    for (int i = 0; i < s->rank; i++) {
        if (axes && !axes[i])
            continue;
        n *= s->d[i].n;
        if (s->d[i].batch)
            batch.d[batch.rank++] = (Dim){1, true};
    }
    if (batch.rank == 0)
        return ad_const(c, (double)n, t);
    /* B^k at run time: the sum of ones over [B, ..., B] */
    Node *bk = ad_sum(c, ad_broadcast(c, ad_const(c, 1, t), &batch), NULL, false);
    return n == 1 ? bk : ad_binc(c, OP_MUL, bk, (double)n);
}

Node *ad_expand(Grad *c, Node *x, const Shape *full, const bool *axes)
{
    Shape kept = *full;
    for (int i = 0; i < full->rank; i++)
        if (axes[i])
            kept.d[i] = (Dim){1, false};
    return ad_broadcast(c, ad_reshape(c, x, &kept), full);
}

void ad_axes(const Node *n, bool axes[IR_MAX_RANK])
{
    AttrInts a = attr_axes(n);
    memset(axes, 0, IR_MAX_RANK * sizeof *axes);
    for (int i = 0; i < a.n; i++)
        axes[a.v[i].n] = true;
}

/* Rules without a gradient */

bool grad_none(Grad *c, Node *n, Node *dy)
{
    (void)c, (void)n, (void)dy;
    return true;
}

/* The driver */

static bool trainable(const Node *n)
{
    return n->op == OP_PARAM && !attr_frozen(n);
}

/* Builds in g the adjoints of g's nodes: seeds[i] is the adjoint of
 * outs[i] (NULL: the constant 1); a node gets one when some outs[] depends on it and it depends
 * on a node marked in wrt (by id) through values that pass gradients.
 * Returns the adjoints by node id (NULL for none), or NULL after an error. */
Node **ad_graph(Graph *g, Node *const *outs, Node *const *seeds, int nouts, const bool *wrt)
{
    int nf = g->nodes.n;
    Grad c = {.g = g, .nfwd = nf};
    c.needs = arena_alloc(g->arena, (size_t)nf + 1);
    c.adj = arena_alloc(g->arena, sizeof *c.adj * ((size_t)nf + 1));

    /* reach: depends on a wrt node; a loop's token passes its results'
     * dependence on */
    bool *reach = arena_alloc(g->arena, (size_t)nf + 1);
    for (int i = 0; i < nf; i++) {
        const Node *n = g->nodes.v[i];
        if (wrt[i]) {
            reach[i] = true;
            continue;
        }
        if (rules[n->op] == grad_none || (!ir_dtype_is_float(n->dtype) && n->op != OP_LOOP))
            continue;
        for (int j = 0; j < n->nin && !reach[i]; j++)
            reach[i] = reach[n->in[j]->id];
    }
    int last = -1;
    for (int k = 0; k < nouts; k++) {
        c.needs[outs[k]->id] = reach[outs[k]->id];
        last = outs[k]->id > last ? outs[k]->id : last;
    }
    for (int i = last; i >= 0; i--) {
        const Node *n = g->nodes.v[i];
        if (c.needs[i])
            for (int j = 0; j < n->nin; j++)
                c.needs[n->in[j]->id] = reach[n->in[j]->id];
    }
    for (int k = 0; k < nouts; k++)
        if (c.needs[outs[k]->id]) {
            Node **a = &c.adj[outs[k]->id];
            c.loc = outs[k]->loc;
            Node *seed = seeds[k] ? seeds[k] : ad_const(&c, 1, outs[k]->dtype);
            *a = *a ? ad_bin(&c, OP_ADD, *a, seed) : seed;
        }
    for (int i = last; i >= 0; i--) {
        Node *n = g->nodes.v[i];
        if (!c.needs[i] || !c.adj[i] || op_info[n->op].kind == K_SOURCE)
            continue;
        c.loc = n->loc;
        int before = diag_errors(), first = g->nodes.n;
        bool ok = rules[n->op](&c, n, c.adj[i]);
        check(ok || diag_errors() > before);
        if (!ok)
            return NULL;
        for (int k = first; k < g->nodes.n; k++)
            g->nodes.v[k]->grad_of = n;
    }
    return c.adj;
}

/* One objective's parameters and gradients: the backward nodes of its
 * loss, appended after everything built so far. */
static bool differentiate(Graph *g, Train *t)
{
    Node *loss = t->loss;
    check(ir_dtype_is_float(loss->dtype) && loss->shape.rank == 0);
    int nf = g->nodes.n;
    bool *wrt = arena_alloc(g->arena, (size_t)nf + 1);
    for (int i = 0; i < nf; i++)
        wrt[i] = trainable(g->nodes.v[i]) && ir_train_takes(t, g->nodes.v[i]);
    Grad c = {.g = g, .nfwd = nf};
    Node *one = NULL; /* the loss's adjoint: 1 */
    Node **adj = ad_graph(g, &loss, &one, 1, wrt);
    if (!adj)
        return false;

    for (int i = 0; i < nf; i++) {
        Node *p = g->nodes.v[i];
        /* a named objective keeps only what its loss reaches */
        if (!wrt[i] || (t->name && !adj[i]))
            continue;
        c.loc = p->loc;
        Node *d = adj[i] ? adj[i] : ad_zeros(&c, p->dtype, &p->shape);
        check(d->dtype == p->dtype && ir_shape_eq(&d->shape, &p->shape));
        vec_push(g->arena, &t->params, p);
        vec_push(g->arena, &t->grads, d);
    }
    return true;
}

/* Half-precision parameters are for inference: their gradients and
 * optimizer state would need a training recipe (f32 master weights, loss
 * scaling) that dlc does not have. All parameters share one type, so the
 * first tells. */
static bool check_half_params(const Graph *g)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *p = g->nodes.v[i];
        if (p->op != OP_PARAM)
            continue;
        if (!ir_dtype_is_half(p->dtype))
            return true;
        diag_error(g->train->loc,
                   "train: parameter '%s' is %s, a storage type for inference; "
                   "train with f32 parameters, and compile with --inference-only to run this "
                   "model",
                   p->name, ir_dtype_name(p->dtype));
        diag_note(p->loc, "'%s' is declared here", p->name);
        return false;
    }
    return true;
}

bool pass_autodiff(Graph *g)
{
    if (g->train && !check_half_params(g))
        return false;
    bool any = false;
    for (Train *t = g->train; t; t = t->next) {
        if (t->grads.n > 0)
            continue;
        if (!differentiate(g, t))
            return false;
        any = true;
    }
    return !any || pass_shape(g);
}
