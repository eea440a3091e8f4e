/*
 * Lowering, for loops as IR loops (lower_stmt.c runs the loop, lower_expr.c
 * the indices at the loop index).
 *
 * A for loop whose iterations differ only in the loop index used in
 * indices (x[:, t, :] and ys[:, t, :] = h) becomes one loop node with a
 * body graph (docs/LANGUAGE.md, Loops; docs/IR.md): compile time and the
 * object then do not grow with the trip count. The first iteration is
 * unrolled as usual (it reports the body's mistakes with their iteration
 * and binds every name the body binds); then the body is traced once more
 * into a body graph, with every tensor name bound to a placeholder input
 * and the loop index symbolic (V_INDEX). A name the body rebinds is a
 * carried value; a slice at the index of a name the body leaves alone is
 * a scanned sequence; a slice assignment at the index a stacked result;
 * any other name the body reads is an unchanged input. Anything else --
 * a parameter declared in the body (stacked layers: h.0.w, h.1.w), the
 * index used as a number, an error -- abandons the trace silently, and
 * the remaining iterations are unrolled, which reports real errors.
 */
#include <string.h>

#include "lower.h"

/* ys[items at the index] = v inside a trace: a stacked result. */
bool fe_trial_stack(L *l, Frame *f, Binding *b, const Stmt *st, Value v)
{
    LoopTrial *t = l->trial;
    int axis;
    int64_t off;
    fe_slice_attrs(l, f, NULL, st->items, st->nitems, st->loc);
    if (!fe_loop_index_item(l, &axis, &off))
        return false; /* no loop index: an ordinary slice assignment */
    int k = (int)(b - f->scope.v);
    if (k >= t->nscope || b->v.kind != V_TENSOR || b->v.node != t->ph[k] ||
        !fe_only_index(st->items, st->nitems, axis) || v.kind != V_TENSOR) {
        t->failed = true;
        return true;
    }
    for (int i = 0; i < t->stacks.n; i++)
        if (t->stacks.v[i].bind == k)
            t->failed = true;
    vec_push(l->a, &t->stacks, ((TrialStack){k, axis, off, v.node}));
    return true;
}

/* Whether any node of g reads x. */
static bool has_users(const Graph *g, const Node *x)
{
    for (int i = x->id + 1; i < g->nodes.n; i++)
        for (int j = 0; j < g->nodes.v[i]->nin; j++)
            if (g->nodes.v[i]->in[j] == x)
                return true;
    return false;
}

/* Builds the loop node from a finished trace over iterations first..end-1;
 * false (nothing changed) when the trace does not make one. */
bool fe_trial_finish(L *l, Frame *f, LoopTrial *t, int64_t first, int64_t end, Loc loc)
{
    Graph *b = t->body, *g = l->g;
    if (t->failed || f->scope.n != t->nscope)
        return false;
    enum { UNUSED, CARRIED, STACKED, INVARIANT };
    int *role = arena_alloc(l->a, sizeof *role * ((size_t)t->nscope + 1));
    for (int k = 0; k < t->nscope; k++) {
        Value v = f->scope.v[k].v;
        if (!t->ph[k]) {
            /* numbers, strings: the trace must not have changed them */
            if (v.kind == V_INDEX || v.kind != t->old[k].kind)
                return false;
            continue;
        }
        if (v.kind != V_TENSOR)
            return false;
        if (v.node != t->ph[k])
            role[k] = CARRIED;
        else if (has_users(b, t->ph[k]))
            role[k] = INVARIANT;
    }
    for (int i = 0; i < t->stacks.n; i++) {
        int k = t->stacks.v[i].bind;
        if (role[k] != UNUSED)
            return false; /* read or rebound besides the slice assignment */
        role[k] = STACKED;
    }
    for (int i = 0; i < t->scans.n; i++) {
        int k = fe_placeholder_of(t, t->scans.v[i].seq);
        if (role[k] == CARRIED || role[k] == STACKED)
            return false;
    }
    /* a value the body passes on unchanged (h = g, ys[:, t, :] = g) is
     * g's placeholder, which no node reads: it is an input all the same */
    for (int k = 0; k < t->nscope + t->stacks.n; k++) {
        bool stacked = k >= t->nscope;
        if (!stacked && role[k] != CARRIED)
            continue;
        int m = fe_placeholder_of(
            t, stacked ? t->stacks.v[k - t->nscope].value : f->scope.v[k].v.node);
        if (m >= 0 && role[m] == STACKED)
            return false;
        if (m >= 0 && role[m] == UNUSED)
            role[m] = INVARIANT;
    }
    /* every value the body reads is its own */
    for (int i = 0; i < b->nodes.n; i++) {
        Node *n = b->nodes.v[i];
        if (op_info[n->op].kind == K_SOURCE && n->op != OP_INPUT && n->op != OP_CONST)
            return false;
        /* random draws and running statistics differ per step: unrolled */
        if (op_info[n->op].flags & (OPF_RANDOM | OPF_REPLAY | OPF_RUNSTATS | OPF_MODE))
            return false;
        for (int j = 0; j < n->nin; j++)
            if (n->in[j]->id >= b->nodes.n || b->nodes.v[n->in[j]->id] != n->in[j])
                return false;
    }

    /* nothing carried or stacked: the remaining trips change nothing */
    bool any = t->stacks.n > 0;
    for (int k = 0; k < t->nscope; k++)
        any |= role[k] == CARRIED;
    if (!any) {
        for (int k = 0; k < t->nscope; k++)
            f->scope.v[k].v = t->old[k];
        return true;
    }

    /* the body's inputs in the loop's order, then the rest as traced */
    Vec(Node *) order = {0}, in = {0};
    Vec(Dim) axis = {0}, start = {0}, step = {0};
    int ncarried = 0;
    for (int k = 0; k < t->nscope; k++)
        if (role[k] == CARRIED) {
            vec_push(l->a, &order, t->ph[k]);
            vec_push(l->a, &in, t->old[k].node);
            ir_output(b, f->scope.v[k].name, f->scope.v[k].v.node, loc);
            ncarried++;
        }
    for (int i = 0; i < t->stacks.n; i++) {
        TrialStack *s = &t->stacks.v[i];
        vec_push(l->a, &in, t->old[s->bind].node);
        ir_output(b, f->scope.v[s->bind].name, s->value, loc);
        vec_push(l->a, &axis, ((Dim){s->axis, false}));
        vec_push(l->a, &start, ((Dim){first + s->off, false}));
        vec_push(l->a, &step, ((Dim){1, false}));
    }
    for (int i = 0; i < t->scans.n; i++) {
        TrialScan *s = &t->scans.v[i];
        vec_push(l->a, &order, s->in);
        vec_push(l->a, &in, t->old[fe_placeholder_of(t, s->seq)].node);
        vec_push(l->a, &axis, ((Dim){s->axis, false}));
        vec_push(l->a, &start, ((Dim){first + s->off, false}));
        vec_push(l->a, &step, ((Dim){1, false}));
    }
    for (int k = 0; k < t->nscope; k++)
        if (role[k] == INVARIANT) {
            vec_push(l->a, &order, t->ph[k]);
            vec_push(l->a, &in, t->old[k].node);
        }
    int ninputs = order.n;
    for (int i = 0; i < b->nodes.n; i++)
        if (b->nodes.v[i]->op != OP_INPUT)
            vec_push(l->a, &order, b->nodes.v[i]);
    b->nodes.n = 0;
    for (int i = 0; i < order.n; i++)
        vec_push(l->a, &b->nodes, order.v[i]);
    ir_graph_compact(b);
    (void)ninputs;

    Node *loop = ir_node_new(g, OP_LOOP, in.v, in.n, loc);
    loop->body = b;
    attr_set_trips(g, loop, end - first);
    attr_set_carried(g, loop, ncarried);
    attr_set_stacked(g, loop, t->stacks.n);
    attr_set_scanned(g, loop, t->scans.n);
    attr_set_saved(g, loop, 0);
    attr_set_scan_axis(g, loop, axis.v, axis.n);
    attr_set_scan_start(g, loop, start.v, start.n);
    attr_set_scan_step(g, loop, step.v, step.n);
    int r = 0;
    for (int k = 0; k < t->nscope; k++)
        if (role[k] == CARRIED) {
            Node *res = ir_unary(g, OP_LOOP_RESULT, loop, loc);
            attr_set_index(g, res, r++);
            f->scope.v[k].v = tensor(res, loc);
        }
    for (int i = 0; i < t->stacks.n; i++) {
        Node *res = ir_unary(g, OP_LOOP_RESULT, loop, loc);
        attr_set_index(g, res, r++);
        f->scope.v[t->stacks.v[i].bind].v = tensor(res, loc);
    }
    for (int k = 0; k < t->nscope; k++)
        if (role[k] != CARRIED && role[k] != STACKED)
            f->scope.v[k].v = t->old[k];
    return true;
}
