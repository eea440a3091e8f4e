/*
 * Gradient rules of structured control flow: loop and loop_result
 * (ir/ops.def, docs/IR.md, Loops).
 *
 * The adjoint of a loop is a loop running the other way. The forward loop
 * saves the carried values it starts each step with (`saved` outputs,
 * stacked [trips, ...]); the reverse loop's body recomputes the forward
 * body from them, then differentiates that copy with the sweep of
 * pass_autodiff (ad_graph), seeded by the carried adjoints it carries and
 * by the slice of each stacked result's adjoint. It carries the carried
 * values' adjoints and sums the adjoints of the values the body reads
 * unchanged (weights); the scanned sequences' adjoints are its stacked
 * results, each step writing the slice the forward step read. Recomputing
 * costs one more forward body per step and keeps the saved memory to the
 * carried values (an LSTM's h and c), not every intermediate of the body.
 */
#include <stdio.h>

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

/* loop_result(l) {index = k}, typed */
static Node *result(Grad *c, Node *l, int k)
{
    Node *r = ad_node(c, OP_LOOP_RESULT, &l, 1);
    attr_set_index(c->g, r, k);
    return ad_finish(c, r);
}

/* x with the slices start, start + step, ... (n of them) on axis zeroed:
 * the part of a stacked result's initial value that survives the loop. */
static Node *zero_slices(Grad *c, Node *x, int axis, int64_t start, int64_t step, int64_t n)
{
    int r = x->shape.rank;
    int64_t last = start + step * (n - 1);
    Dim *d = arena_alloc(c->g->arena, sizeof *d * (size_t)(3 * r + 1));
    Shape vs = x->shape;
    for (int i = 0; i < r; i++) {
        d[i] = (Dim){0, false};
        d[r + i] = x->shape.d[i];
        d[2 * r + i] = (Dim){1, false};
    }
    d[axis] = (Dim){step > 0 ? start : last, false};
    d[r + axis] = (Dim){(step > 0 ? last : start) + 1, false};
    d[2 * r + axis] = (Dim){step > 0 ? step : -step, false};
    vs.d[axis] = (Dim){n, false};
    Node *in[2] = {x, ad_zeros(c, x->dtype, &vs)};
    Node *u = ad_node(c, OP_SLICE_UPDATE, in, 2);
    attr_set_begin(c->g, u, d, r);
    attr_set_end(c->g, u, d + r, r);
    attr_set_step(c->g, u, d + 2 * r, r);
    attr_set_squeeze(c->g, u, d, 0);
    return ad_finish(c, u);
}

/* One scan of the reverse loop: the forward scan k read backwards. */
typedef struct {
    Vec(Dim) axis, start, step;
} Scans;

static void add_scan(Grad *c, Scans *s, int64_t axis, int64_t start, int64_t step, int64_t trips)
{
    vec_push(c->g->arena, &s->axis, ((Dim){axis, false}));
    vec_push(c->g->arena, &s->start, ((Dim){start + step * (trips - 1), false}));
    vec_push(c->g->arena, &s->step, ((Dim){-step, false}));
}

static const char *named(Grad *c, const char *prefix, const Node *x)
{
    return arena_printf(c->g->arena, "%s:%s", prefix, x->name);
}

bool grad_loop(Grad *c, Node *l, Node *mark)
{
    (void)mark;
    Graph *g = c->g, *f = l->body;
    Arena *a = g->arena;
    LoopParts p = ir_loop_parts(l);
    int nres = p.carried + p.stacked, inv0 = p.carried + p.stacked + p.scanned;
    int64_t trips = p.trips;
    AttrInts axis = attr_scan_axis(l), start = attr_scan_start(l), step = attr_scan_step(l);

    /* the adjoints of the results */
    Node **dr = arena_alloc(a, sizeof *dr * ((size_t)nres + 1));
    for (int i = l->id + 1; i < c->nfwd; i++) {
        Node *r = g->nodes.v[i];
        if (r->op != OP_LOOP_RESULT || r->in[0] != l || !c->adj[i] || attr_index(r) >= nres)
            continue;
        Node **d = &dr[attr_index(r)];
        *d = *d ? ad_bin(c, OP_ADD, *d, c->adj[i]) : c->adj[i];
    }

    /* the forward loop saves the carried values each step starts from */
    int nfin;
    Node **fin = ir_body_inputs(f, &nfin);
    int saved0 = f->outputs.n;
    for (int k = 0; k < p.carried; k++)
        ir_output(f, named(c, "saved", fin[k]), fin[k], l->loc);
    attr_set_saved(g, l, p.saved + p.carried);

    /* the reverse body's inputs: carried, scanned, unchanged, in order */
    Graph *b = ir_body_new(g);
    Node **dc = arena_alloc(a, sizeof *dc * ((size_t)p.carried + 1));
    Node **acc = arena_alloc(a, sizeof *acc * ((size_t)p.invariant + 1));
    Node **map = arena_alloc(a, sizeof *map * ((size_t)f->nodes.n + 1));
    for (int k = 0; k < p.carried; k++)
        if (ir_dtype_is_float(fin[k]->dtype))
            dc[k] = ir_input(b, named(c, "grad", fin[k]), fin[k]->dtype, fin[k]->shape, l->loc);
    for (int j = 0; j < p.invariant; j++) {
        Node *x = fin[p.carried + p.scanned + j];
        if (ad_needs(c, l->in[inv0 + j]))
            acc[j] = ir_input(b, named(c, "sum", x), x->dtype, x->shape, l->loc);
    }
    for (int k = 0; k < p.carried + p.scanned; k++)
        map[fin[k]->id] = ir_input(b, fin[k]->name, fin[k]->dtype, fin[k]->shape, l->loc);
    Node **dy = arena_alloc(a, sizeof *dy * ((size_t)p.stacked + 1));
    for (int j = 0; j < p.stacked; j++) {
        Node *y = f->outputs.v[p.carried + j].node;
        if (dr[p.carried + j])
            dy[j] = ir_input(b, arena_printf(a, "dy:%s", f->outputs.v[p.carried + j].name),
                             y->dtype, y->shape, l->loc);
    }
    for (int j = 0; j < p.invariant; j++) {
        Node *x = fin[p.carried + p.scanned + j];
        map[x->id] = ir_input(b, x->name, x->dtype, x->shape, l->loc);
    }

    /* the forward body again, read from the saved values */
    for (int i = 0; i < f->nodes.n; i++) {
        Node *n = f->nodes.v[i];
        if (n->op == OP_INPUT)
            continue;
        Node **in = arena_alloc(a, sizeof *in * ((size_t)n->nin + 1));
        for (int j = 0; j < n->nin; j++)
            in[j] = map[n->in[j]->id];
        map[i] = ir_node_copy(b, n, in);
    }

    /* its adjoints, seeded by the carried and stacked adjoints */
    Node **outs = arena_alloc(a, sizeof *outs * ((size_t)nres + 1));
    Node **seeds = arena_alloc(a, sizeof *seeds * ((size_t)nres + 1));
    int nseeds = 0;
    for (int k = 0; k < nres; k++) {
        Node *seed = k < p.carried ? dc[k] : dy[k - p.carried];
        if (seed) {
            outs[nseeds] = map[f->outputs.v[k].node->id];
            seeds[nseeds++] = seed;
        }
    }
    bool *wrt = arena_alloc(a, (size_t)b->nodes.n + 1);
    for (int k = 0; k < p.carried + p.scanned; k++)
        wrt[map[fin[k]->id]->id] = k >= p.carried ? ad_needs(c, l->in[p.stacked + k])
                                                  : dc[k] != NULL;
    for (int j = 0; j < p.invariant; j++)
        wrt[map[fin[p.carried + p.scanned + j]->id]->id] = acc[j] != NULL;
    Node **adj = ad_graph(b, outs, seeds, nseeds, wrt);
    if (!adj)
        return false;

    /* the reverse body's outputs, and the reverse loop's inputs */
    Grad cb = {.g = b, .nfwd = b->nodes.n, .loc = l->loc};
    Vec(Node *) in = {0};
    Scans sc = {0};
    int ncarried = 0, nstacked = 0;
    for (int k = 0; k < p.carried; k++) {
        if (!dc[k])
            continue;
        Node *d = adj[map[fin[k]->id]->id];
        ir_output(b, dc[k]->name, d ? d : ad_zeros(&cb, fin[k]->dtype, &fin[k]->shape), l->loc);
        vec_push(a, &in, dr[k] ? dr[k] : ad_zeros(c, fin[k]->dtype, &fin[k]->shape));
        ncarried++;
    }
    for (int j = 0; j < p.invariant; j++) {
        if (!acc[j])
            continue;
        Node *d = adj[map[fin[p.carried + p.scanned + j]->id]->id];
        ir_output(b, acc[j]->name, d ? ad_bin(&cb, OP_ADD, acc[j], d) : acc[j], l->loc);
        vec_push(a, &in, ad_zeros(c, acc[j]->dtype, &acc[j]->shape));
        ncarried++;
    }
    for (int s = 0; s < p.scanned; s++) {
        Node *x = l->in[p.carried + p.stacked + s], *xt = fin[p.carried + s];
        if (!ad_needs(c, x))
            continue;
        Node *d = adj[map[xt->id]->id];
        ir_output(b, named(c, "grad", xt), d ? d : ad_zeros(&cb, xt->dtype, &xt->shape),
                  l->loc);
        vec_push(a, &in, ad_zeros(c, x->dtype, &x->shape));
        add_scan(c, &sc, axis.v[p.stacked + s].n, start.v[p.stacked + s].n,
                 step.v[p.stacked + s].n, trips);
        nstacked++;
    }
    int nscanned = 0;
    for (int k = 0; k < p.carried; k++, nscanned++) {
        vec_push(a, &in, result(c, l, saved0 + k));
        add_scan(c, &sc, 0, 0, 1, trips);
    }
    for (int s = 0; s < p.scanned; s++, nscanned++) {
        vec_push(a, &in, l->in[p.carried + p.stacked + s]);
        add_scan(c, &sc, axis.v[p.stacked + s].n, start.v[p.stacked + s].n,
                 step.v[p.stacked + s].n, trips);
    }
    for (int j = 0; j < p.stacked; j++)
        if (dy[j]) {
            vec_push(a, &in, dr[p.carried + j]);
            add_scan(c, &sc, axis.v[j].n, start.v[j].n, step.v[j].n, trips);
            nscanned++;
        }
    for (int j = 0; j < p.invariant; j++)
        vec_push(a, &in, l->in[inv0 + j]);

    /* the reverse loop */
    Node *r = ad_node(c, OP_LOOP, in.v, in.n);
    r->body = b;
    attr_set_trips(g, r, trips);
    attr_set_carried(g, r, ncarried);
    attr_set_stacked(g, r, nstacked);
    attr_set_scanned(g, r, nscanned);
    attr_set_saved(g, r, 0);
    attr_set_scan_axis(g, r, sc.axis.v, sc.axis.n);
    attr_set_scan_start(g, r, sc.start.v, sc.start.n);
    attr_set_scan_step(g, r, sc.step.v, sc.step.n);
    ad_finish(c, r);

    /* its results are the adjoints of the loop's inputs */
    int k = 0;
    for (int i = 0; i < p.carried; i++)
        if (dc[i])
            ad_acc(c, l->in[i], result(c, r, k++));
    for (int j = 0; j < p.invariant; j++)
        if (acc[j])
            ad_acc(c, l->in[inv0 + j], result(c, r, k++));
    for (int s = 0; s < p.scanned; s++)
        if (ad_needs(c, l->in[p.carried + p.stacked + s]))
            ad_acc(c, l->in[p.carried + p.stacked + s], result(c, r, k++));
    for (int j = 0; j < p.stacked; j++) {
        Node *init = l->in[p.carried + j];
        if (dr[p.carried + j] && ad_needs(c, init))
            ad_acc(c, init,
                   zero_slices(c, dr[p.carried + j], (int)axis.v[j].n, start.v[j].n, step.v[j].n,
                               trips));
    }
    return true;
}
