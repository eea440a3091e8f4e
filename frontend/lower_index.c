/*
 * Lowering, indexing (lower_expr.c evaluates the rest of an expression and
 * comes here through L.eval_index): x[items] with numbers and slices is a
 * slice node, whose begin/end/step/squeeze attributes the items give (a
 * slice assignment's too, lower_stmt.c); one integer tensor among the
 * items is take (PyTorch's advanced indexing on one axis); the index of a
 * loop traced as an IR loop (lower_loop.c) reads the loop body's scanned
 * slice of x.
 */
#include <inttypes.h>

#include "lower.h"

/* ---- slices ------------------------------------------------------------------ */

/* x[items] and NAME[items] = v: the begin/end/step/squeeze attributes;
 * vals: the single indices' values if evaluated already (else NULL). */
static bool slice_attrs(L *l, Frame *f, Node *n, const SliceItem *items, int nitems, Loc loc,
                        const Value *vals)
{
    if (nitems > IR_MAX_RANK) {
        fe_err(l, loc, "too many indices (%d); tensors have at most %d dimensions", nitems,
               IR_MAX_RANK);
        return false;
    }
    Dim begin[IR_MAX_RANK], end[IR_MAX_RANK], step[IR_MAX_RANK], squeeze[IR_MAX_RANK];
    int nsq = 0;
    bool ok = true;
    for (int i = 0; i < nitems; i++) {
        const SliceItem *it = &items[i];
        begin[i] = end[i] = (Dim){IR_NONE, false};
        step[i] = (Dim){1, false};
        int64_t v;
        if (!it->is_range) {
            Value iv = vals ? vals[i] : it->index ? fe_eval(l, f, it->index) : poison;
            if (iv.kind == V_TENSOR && !vals) {
                fe_err(l, it->loc, "a tensor index can only be read (x[ids]), not assigned to");
                ok = false;
                continue;
            }
            if (iv.kind == V_INDEX) {
                fe_loop_note_index(l, i, iv.i);
                begin[i].n = 0;
                end[i].n = 1;
                squeeze[nsq++] = (Dim){i, false};
                continue;
            }
            if (!it->index || !fe_int_const(l, iv, "an index", &v)) {
                ok = false;
                continue;
            }
            begin[i].n = v;
            end[i].n = v == -1 ? IR_NONE : v + 1;
            squeeze[nsq++] = (Dim){i, false};
            continue;
        }
        if (it->start) {
            if (fe_int_const(l, fe_eval(l, f, it->start), "a slice bound", &v))
                begin[i].n = v;
            else
                ok = false;
        }
        if (it->stop) {
            if (fe_int_const(l, fe_eval(l, f, it->stop), "a slice bound", &v))
                end[i].n = v;
            else
                ok = false;
        }
        if (it->step) {
            if (fe_int_const(l, fe_eval(l, f, it->step), "a slice step", &v)) {
                if (v == 0) {
                    fe_err(l, it->step->loc, "slice step cannot be zero");
                    ok = false;
                }
                step[i].n = v;
            } else {
                ok = false;
            }
        }
    }
    if (!ok || !n)
        return false;
    attr_set_begin(l->g, n, begin, nitems);
    attr_set_end(l->g, n, end, nitems);
    attr_set_step(l->g, n, step, nitems);
    attr_set_squeeze(l->g, n, squeeze, nsq);
    return true;
}

bool fe_slice_attrs(L *l, Frame *f, Node *n, const SliceItem *items, int nitems, Loc loc)
{
    return slice_attrs(l, f, n, items, nitems, loc, NULL);
}

/* ---- indices at a traced loop's index (lower_loop.c) -------------------------- */

/* Only the item at axis may be given: the rest must be whole (":"). */
bool fe_only_index(const SliceItem *items, int nitems, int axis)
{
    for (int i = 0; i < nitems; i++)
        if (i != axis && (!items[i].is_range || items[i].start || items[i].stop || items[i].step))
            return false;
    return true;
}

/* x[items] with the loop index at item `axis` (+ off), inside a loop
 * traced as an IR loop: the scanned slice, or poison. */
static Value loop_scan(L *l, Frame *f, Node *x, const SliceItem *items, int nitems, int axis,
                       int64_t off, Loc loc)
{
    LoopTrial *t = l->trial;
    if (fe_placeholder_of(t, x) < 0) {
        t->failed = true;
        return poison;
    }
    Node *in = NULL;
    for (int i = 0; i < t->scans.n && !in; i++)
        if (t->scans.v[i].seq == x && t->scans.v[i].axis == axis && t->scans.v[i].off == off)
            in = t->scans.v[i].in;
    if (!in) {
        /* named as read: x[:, t+1] */
        const char *name = arena_printf(l->a, "%s[", x->name);
        for (int i = 0; i < axis; i++)
            name = arena_printf(l->a, "%s:, ", name);
        name = off ? arena_printf(l->a, "%st%+" PRId64 "]", name, off)
                   : arena_printf(l->a, "%st]", name);
        in = ir_input(t->body, name, DT_UNKNOWN, (Shape){0}, loc);
        vec_push(l->a, &t->scans, ((TrialScan){x, in, axis, off}));
    }
    if (fe_only_index(items, nitems, axis))
        return tensor(in, loc);
    /* x[:, t, 0:1]: the other items slice the scanned slice */
    SliceItem *rest = arena_alloc(l->a, sizeof *rest * (size_t)nitems);
    for (int i = 0, k = 0; i < nitems; i++)
        if (i != axis)
            rest[k++] = items[i];
    Node *n = ir_unary(l->g, OP_SLICE, in, loc);
    if (!fe_slice_attrs(l, f, n, rest, nitems - 1, loc) || t->index_seen) {
        t->failed = true;
        return poison;
    }
    return tensor(n, loc);
}

/* ---- tensor indices --------------------------------------------------------- */

/* x[..., ids, ...] with one integer tensor among the items (PyTorch's
 * advanced indexing on one axis): take(x', ids, axis), where x' is x
 * sliced by the other items with ":" at ids' place. Integer indices
 * must sit next to ids: apart from it, PyTorch would move ids'
 * dimensions to the front. */
static Value eval_take(L *l, Frame *f, const Expr *e, Node *x, const Value *vals, int at)
{
    const SliceItem *items = e->index.items;
    int nitems = e->index.nitems, lo = at, hi = at, before = 0;
    for (int i = 0; i < nitems; i++) {
        if (items[i].is_range)
            continue;
        if (vals[i].kind == V_INDEX) {
            /* a traced loop: unrolled instead, where the index is a number */
            if (!fe_trial_fail(l))
                fe_err(l, items[i].loc, "the loop index cannot be combined with a tensor index");
            return poison;
        }
        if (vals[i].kind == V_TENSOR && i != at) {
            fe_err(l, items[i].loc,
                   "only one tensor index is supported; index one axis at a time (x[a][:, b])");
            return poison;
        }
        lo = i < lo ? i : lo;
        hi = i > hi ? i : hi;
        before += i < at;
    }
    for (int i = lo; i <= hi; i++)
        if (items[i].is_range) {
            fe_err(l, items[i].loc,
                   "an integer index apart from the tensor index is not supported (PyTorch "
                   "would move the indexed dimensions to the front); index in two steps");
            return poison;
        }
    if (nitems > IR_MAX_RANK) {
        fe_err(l, e->loc, "too many indices (%d); tensors have at most %d dimensions", nitems,
               IR_MAX_RANK);
        return poison;
    }
    if (fe_is_truth(vals[at].node)) {
        fe_err(l, items[at].loc,
               "indexing by a mask is not supported (PyTorch's x[mask] has a shape known only "
               "at run time): use where(mask, x, 0), or cast(mask, i32) for ids 0 and 1");
        return poison;
    }
    if (!fe_only_index(items, nitems, at)) {
        SliceItem *rest = arena_alloc(l->a, sizeof *rest * (size_t)nitems);
        for (int i = 0; i < nitems; i++)
            rest[i] = i == at ? (SliceItem){.is_range = true, .loc = items[i].loc} : items[i];
        x = ir_unary(l->g, OP_SLICE, x, e->loc);
        if (!slice_attrs(l, f, x, rest, nitems, e->loc, vals))
            return poison;
    }
    Node *n = ir_binary(l->g, OP_TAKE, x, vals[at].node, items[at].loc);
    attr_set_axis(l->g, n, at - before);
    return tensor(n, e->loc);
}

Value fe_eval_index(L *l, Frame *f, const Expr *e)
{
    Value base = fe_eval(l, f, e->index.base);
    char buf[64];
    if (base.kind == V_POISON) {
        fe_slice_attrs(l, f, NULL, e->index.items, e->index.nitems, e->loc);
        return poison;
    }
    if (base.kind != V_TENSOR) {
        fe_err(l, e->loc, "cannot index %s; only tensors can be indexed",
               fe_vdesc(base, buf, sizeof buf));
        return poison;
    }
    /* the single indices once, to find a tensor among them */
    int nitems = e->index.nitems, at = -1;
    Value *vals = arena_alloc(l->a, sizeof *vals * (size_t)(nitems > 0 ? nitems : 1));
    bool bad = false;
    for (int i = 0; i < nitems; i++) {
        const SliceItem *it = &e->index.items[i];
        vals[i] = it->is_range ? poison : it->index ? fe_eval(l, f, it->index) : poison;
        bad |= !it->is_range && vals[i].kind == V_POISON;
        if (vals[i].kind == V_TENSOR && at < 0)
            at = i;
    }
    if (at >= 0)
        return bad ? poison : eval_take(l, f, e, base.node, vals, at);
    Node *n = ir_unary(l->g, OP_SLICE, base.node, e->loc);
    if (!slice_attrs(l, f, n, e->index.items, nitems, e->loc, vals))
        return poison;
    int axis;
    int64_t off;
    if (fe_loop_index_item(l, &axis, &off)) {
        check(l->g->nodes.v[l->g->nodes.n - 1] == n); /* index items make no nodes */
        l->g->nodes.n--;
        return loop_scan(l, f, base.node, e->index.items, e->index.nitems, axis, off, e->loc);
    }
    return tensor(n, e->loc);
}
