/*
 * Shape rules of structured control flow: loop and loop_result
 * (ir/ops.def, docs/IR.md). A loop types its body as a graph of its own:
 * the body's inputs take the carried values' types, one squeezed slice of
 * each scanned sequence, and the unchanged values' types; then pass_shape
 * runs over the body, and its outputs must give back the carried types
 * and slices that fit the stacked results.
 */
#include <inttypes.h>

#include "passes.h"
#include "shape.h"

/* Checks scan k's axis and index range on sequence shape s (stacked or
 * scanned, what says which), and its slice's shape into *slice. Messages
 * number the stacked results and the sequences each from 0. */
static bool scan_slice(Graph *g, Node *n, int k, const Shape *s, const char *what, Shape *slice)
{
    int shown = k < attr_stacked(n) ? k : k - (int)attr_stacked(n);
    int64_t axis;
    if (!shape_axis(g, n, attr_scan_axis(n).v[k].n, s, s->rank, &axis))
        return false;
    Dim d = s->d[axis];
    int64_t trips = attr_trips(n), start = attr_scan_start(n).v[k].n,
            step = attr_scan_step(n).v[k].n, last = start + step * (trips - 1);
    if (d.batch) {
        diag_error(n->loc, "loop: %s %d runs along the batch dimension", what, shown);
        return false;
    }
    if (step == 0 || start < 0 || start >= d.n || last < 0 || last >= d.n) {
        diag_error(n->loc,
                   "loop: %s %d reads indices %" PRId64 " to %" PRId64 " of a dimension of %" PRId64,
                   what, shown, start, last, d.n);
        return false;
    }
    attr_scan_axis(n).v[k] = (Dim){axis, false};
    *slice = (Shape){.rank = s->rank - 1};
    for (int i = 0, j = 0; i < s->rank; i++)
        if (i != axis)
            slice->d[j++] = s->d[i];
    return true;
}

/* Gives body input x the type (t, s), or checks the one it has. */
static bool type_input(Graph *g, Node *n, Node *x, DType t, const Shape *s)
{
    if (x->dtype == DT_UNKNOWN) {
        x->dtype = t;
        x->shape = *s;
        return true;
    }
    if (x->dtype == t && ir_shape_eq(&x->shape, s))
        return true;
    diag_error(n->loc, "loop: body input '%s' is %s%s, the loop gives %s%s", x->name,
               ir_dtype_name(x->dtype), shape_fmt(g, &x->shape), ir_dtype_name(t),
               shape_fmt(g, s));
    return false;
}

bool shape_loop(Graph *g, Node *n)
{
    LoopParts p = ir_loop_parts(n);
    int nscan = p.stacked + p.scanned;
    if (p.trips < 1) {
        diag_error(n->loc, "loop: %" PRId64 " trips", p.trips);
        return false;
    }
    if (attr_scan_axis(n).n != nscan || attr_scan_start(n).n != nscan ||
        attr_scan_step(n).n != nscan) {
        diag_error(n->loc, "loop: scan_axis, scan_start and scan_step need %d entries", nscan);
        return false;
    }
    Graph *b = n->body;
    int nin;
    Node **in = ir_body_inputs(b, &nin);
    if (nin != p.carried + p.scanned + p.invariant) {
        diag_error(n->loc, "loop: body has %d inputs, wants %d", nin,
                   p.carried + p.scanned + p.invariant);
        return false;
    }
    int k = 0;
    for (int i = 0; i < p.carried; i++, k++)
        if (!type_input(g, n, in[k], n->in[i]->dtype, &n->in[i]->shape))
            return false;
    for (int i = 0; i < p.scanned; i++, k++) {
        const Node *x = n->in[p.carried + p.stacked + i];
        Shape slice;
        if (!scan_slice(g, n, p.stacked + i, &x->shape, "sequence", &slice) ||
            !type_input(g, n, in[k], x->dtype, &slice))
            return false;
    }
    for (int i = p.carried + p.stacked + p.scanned; i < n->nin; i++, k++)
        if (!type_input(g, n, in[k], n->in[i]->dtype, &n->in[i]->shape))
            return false;
    if (!pass_shape(b))
        return false;
    if (b->outputs.n != p.carried + p.stacked + p.saved) {
        diag_error(n->loc, "loop: body has %d outputs, wants %d", b->outputs.n,
                   p.carried + p.stacked + p.saved);
        return false;
    }
    for (int i = 0; i < p.carried + p.stacked; i++) {
        const Node *y = b->outputs.v[i].node, *x = n->in[i];
        Shape want = x->shape;
        if (i >= p.carried && !scan_slice(g, n, i - p.carried, &x->shape, "stacked result", &want))
            return false;
        if (y->dtype != x->dtype || !ir_shape_eq(&y->shape, &want)) {
            diag_error(n->loc, "loop: body output %d ('%s') is %s%s, wants %s%s", i,
                       b->outputs.v[i].name, ir_dtype_name(y->dtype), shape_fmt(g, &y->shape),
                       ir_dtype_name(x->dtype), shape_fmt(g, &want));
            return false;
        }
    }
    for (int i = p.carried + p.stacked; i < b->outputs.n; i++)
        if (b->outputs.v[i].node->shape.rank == IR_MAX_RANK) {
            diag_error(n->loc, "loop: saved output %d would have more than %d dimensions", i,
                       IR_MAX_RANK);
            return false;
        }
    n->dtype = DT_I32;
    n->shape = (Shape){.rank = 0};
    return true;
}

bool shape_loop_result(Graph *g, Node *n)
{
    (void)g;
    const Node *l = n->in[0];
    if (l->op != OP_LOOP) {
        diag_error(n->loc, "loop_result: input is a %s, not a loop", op_info[l->op].text);
        return false;
    }
    LoopParts p = ir_loop_parts(l);
    int64_t k = attr_index(n);
    if (k < 0 || k >= p.carried + p.stacked + p.saved) {
        diag_error(n->loc, "loop_result: index %" PRId64 " of a loop with %d results", k,
                   p.carried + p.stacked + p.saved);
        return false;
    }
    ir_loop_result_type(l, (int)k, &n->dtype, &n->shape);
    return true;
}
