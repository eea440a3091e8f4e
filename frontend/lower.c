/*
 * Lowering: AST -> graph IR (SPEC 1.2-1.6; docs/LANGUAGE.md for the
 * decisions the SPEC leaves open).
 *
 * The model body is executed like a tiny interpreter over compile-time
 * Values: a tensor (a Node of the graph being built), a number, a multiple
 * of the batch symbol, a string, a bool or a list. Arithmetic on numbers
 * folds; arithmetic touching a tensor appends a node. `def` calls are
 * expanded inline in a fresh Frame (own scope: the arguments, nothing of the
 * caller), `for` loops are unrolled with the loop variable bound to a number.
 *
 * Parameter names are built bottom-up. Each Frame keeps the parameters and
 * state nodes it made, named relative to the frame ("w", "conv1.w"). A def
 * call hands its frame's list to the calling statement as a CallRec; when
 * that statement ends, it names them NAME.rel (one call made parameters) or
 * NAME.DEF_K.rel (several, in source order of the callee tokens), and adds
 * them to its own frame; `return` uses the callee's def name for NAME. In
 * the model frame those names are final.
 *
 * Errors are reported once per source position (a loop body or a def is
 * executed many times) and leave a poisoned value behind that silences
 * everything computed from it.
 *
 * This file runs statements, compiles for loops and holds the entry point;
 * lower_def.c expands def calls and names parameters, lower_train.c
 * lowers train statements, lower_expr.c evaluates expressions (folding,
 * nodes, attributes, op calls) and lower_recurrent.c the recurrent layers'
 * variants; lower.h has the types and functions they share.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

/* ---- diagnostics ---------------------------------------------------------- */

static bool loc_eq(Loc a, Loc b)
{
    return a.file == b.file && a.line == b.line && a.col == b.col;
}

/* ---- for loops as IR loops ---------------------------------------------- *
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
 * the remaining iterations are unrolled, which reports real errors. */

typedef struct {
    Node *seq, *in; /* the placeholder of the sequence, the body's slice input */
    int axis;
    int64_t off;
} TrialScan;

typedef struct {
    int bind; /* scope index of the stacked name */
    int axis;
    int64_t off;
    Node *value;
} TrialStack;

struct LoopTrial {
    bool failed;
    Graph *body;
    int nscope;  /* the frame's bindings when the trace began */
    Node **ph;   /* by scope index: the placeholder of a tensor binding */
    Value *old;  /* by scope index: the value before the trace */
    bool index_seen;
    int index_axis;
    int64_t index_off;
    Vec(TrialScan) scans;
    Vec(TrialStack) stacks;
};

static bool trial_fail(L *l)
{
    if (!l->trial)
        return false;
    l->trial->failed = true;
    return true;
}

void fe_loop_note_index(L *l, int axis, int64_t off)
{
    LoopTrial *t = l->trial;
    check(t);
    if (t->index_seen)
        t->failed = true; /* the index in two items */
    t->index_seen = true;
    t->index_axis = axis;
    t->index_off = off;
}

bool fe_loop_index_item(L *l, int *axis, int64_t *off)
{
    LoopTrial *t = l->trial;
    if (!t || !t->index_seen)
        return false;
    t->index_seen = false;
    *axis = t->index_axis;
    *off = t->index_off;
    return true;
}

/* Only the item at axis may be given: the rest must be whole (":"). */
static bool only_index(const SliceItem *items, int nitems, int axis)
{
    for (int i = 0; i < nitems; i++)
        if (i != axis && (!items[i].is_range || items[i].start || items[i].stop || items[i].step))
            return false;
    return true;
}

/* The scope index whose placeholder is x, or -1. */
static int placeholder_of(const LoopTrial *t, const Node *x)
{
    for (int k = 0; k < t->nscope; k++)
        if (t->ph[k] == x)
            return k;
    return -1;
}

Value fe_loop_scan(L *l, Frame *f, Node *x, const SliceItem *items, int nitems, int axis,
                   int64_t off, Loc loc)
{
    LoopTrial *t = l->trial;
    if (placeholder_of(t, x) < 0) {
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
    if (only_index(items, nitems, axis))
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

/* ys[items at the index] = v inside a trace: a stacked result. */
static bool trial_stack(L *l, Frame *f, Binding *b, const Stmt *st, Value v)
{
    LoopTrial *t = l->trial;
    int axis;
    int64_t off;
    fe_slice_attrs(l, f, NULL, st->items, st->nitems, st->loc);
    if (!fe_loop_index_item(l, &axis, &off))
        return false; /* no loop index: an ordinary slice assignment */
    int k = (int)(b - f->scope.v);
    if (k >= t->nscope || b->v.kind != V_TENSOR || b->v.node != t->ph[k] ||
        !only_index(st->items, st->nitems, axis) || v.kind != V_TENSOR) {
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
static bool trial_finish(L *l, Frame *f, LoopTrial *t, int64_t first, int64_t end, Loc loc)
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
        int k = placeholder_of(t, t->scans.v[i].seq);
        if (role[k] == CARRIED || role[k] == STACKED)
            return false;
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
        vec_push(l->a, &in, t->old[placeholder_of(t, s->seq)].node);
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

bool fe_unroll_loops;

/* Traces the body of st once as the body of a loop over iterations
 * first..end-1 (loop variable at scope index var); true when the loop
 * node replaced them. The frame is as before when it returns false. */
static bool compile_loop(L *l, Frame *f, const Stmt *st, int var, int64_t first, int64_t end)
{
    if (fe_unroll_loops || l->trial || end - first < LOOP_MIN_TRIPS)
        return false;
    LoopTrial t = {.body = ir_body_new(l->g), .nscope = f->scope.n};
    t.ph = arena_alloc(l->a, sizeof *t.ph * ((size_t)t.nscope + 1));
    t.old = arena_alloc(l->a, sizeof *t.old * ((size_t)t.nscope + 1));
    for (int k = 0; k < t.nscope; k++) {
        Binding *b = &f->scope.v[k];
        t.old[k] = b->v;
        if (b->v.kind == V_TENSOR) {
            t.ph[k] = ir_input(t.body, b->name, DT_UNKNOWN, (Shape){0}, b->loc);
            b->v = tensor(t.ph[k], b->v.loc);
        }
    }
    f->scope.v[var].v = (Value){.kind = V_INDEX, .loc = st->name_loc};
    Graph *outer = l->g;
    long work = l->work;
    l->g = t.body;
    l->trial = &t;
    vec_push(l->a, &f->loops, first);
    fe_exec_block(l, f, st->body, st->nbody);
    f->loops.n--;
    l->trial = NULL;
    l->g = outer;
    f->scope.v[var].v = t.old[var];
    bool ok = !l->stop && trial_finish(l, f, &t, first, end, st->loc);
    if (!ok) {
        f->scope.n = t.nscope;
        for (int k = 0; k < t.nscope; k++)
            f->scope.v[k].v = t.old[k];
        l->work = work;
    }
    return ok;
}

/* Reports an error unless one was already reported at the same place (loops
 * and defs run a statement many times). Returns whether it was printed, so
 * that the caller prints its notes only then. */
bool __attribute__((format(printf, 3, 4))) fe_err(L *l, Loc loc, const char *fmt, ...)
{
    if (trial_fail(l))
        return false; /* the loop is unrolled instead, and reports it then */
    if (loc.line > 0)
        for (int i = 0; i < l->reported.n; i++)
            if (loc_eq(l->reported.v[i], loc))
                return false;
    vec_push(l->a, &l->reported, loc);
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    diag_error(loc, "%s", buf);
    if (diag_errors() - l->errors_at_start > DIAG_MAX_ERRORS)
        l->stop = true;
    return true;
}

const char *fe_vdesc(Value v, char *buf, size_t size)
{
    switch (v.kind) {
    case V_POISON: return "an invalid value";
    case V_TENSOR: return "a tensor";
    case V_NUM:
        if (v.is_int)
            snprintf(buf, size, "%" PRId64, v.i);
        else
            snprintf(buf, size, "%g", v.f);
        return buf;
    case V_DIM: return "the batch size";
    case V_STR: snprintf(buf, size, "the string \"%.40s\"", v.str); return buf;
    case V_BOOL: return v.b ? "true" : "false";
    case V_LIST: return "a list";
    case V_INDEX: return "the loop index";
    case V_TUPLE: snprintf(buf, size, "a tuple of %d values", v.n); return buf;
    }
    return "?";
}

/* "did you mean" suffix, or "". */
const char *fe_suggest(L *l, const char *word, const char *const *cands, int n)
{
    const char *s = diag_suggest(word, cands, n);
    return s ? arena_printf(l->a, "; did you mean '%s'?", s) : "";
}

/* ---- name sets -------------------------------------------------------------- */

static unsigned hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

int fe_ns_get(const NameSet *s, const char *key)
{
    if (!s->cap)
        return -1;
    for (unsigned i = hash_str(key) & (unsigned)(s->cap - 1);;
         i = (i + 1) & (unsigned)(s->cap - 1)) {
        if (!s->keys[i])
            return -1;
        if (strcmp(s->keys[i], key) == 0)
            return s->vals[i];
    }
}

void fe_ns_put(Arena *a, NameSet *s, const char *key, int val)
{
    if (2 * (s->n + 1) > s->cap) {
        NameSet t = {0};
        t.cap = s->cap ? 2 * s->cap : 16;
        t.keys = arena_alloc(a, (size_t)t.cap * sizeof *t.keys);
        t.vals = arena_alloc(a, (size_t)t.cap * sizeof *t.vals);
        for (int i = 0; i < s->cap; i++)
            if (s->keys[i])
                fe_ns_put(a, &t, s->keys[i], s->vals[i]);
        *s = t;
    }
    unsigned i = hash_str(key) & (unsigned)(s->cap - 1);
    while (s->keys[i] && strcmp(s->keys[i], key) != 0)
        i = (i + 1) & (unsigned)(s->cap - 1);
    if (!s->keys[i])
        s->n++;
    s->keys[i] = key;
    s->vals[i] = val;
}

/* ---- bindings ------------------------------------------------------------------ */

/* Counts one unit of unrolling work; false (after one error) once the model
 * has grown past what any real network needs. */
bool fe_spend(L *l, Loc loc)
{
    if (l->stop)
        return false;
    if (++l->work <= MAX_WORK && l->g->nodes.n <= MAX_NODES &&
        arena_used(l->a) - l->bytes_at_start <= MAX_BYTES)
        return true;
    fe_err(l, loc, "model too large after unrolling (limits: %d nodes, %ld statements, %zu MB)",
           MAX_NODES, MAX_WORK, MAX_BYTES >> 20);
    l->stop = true;
    return false;
}

Binding *fe_lookup(Frame *f, const char *name)
{
    int i = fe_ns_get(&f->bound, name);
    return i >= 0 ? &f->scope.v[i] : NULL;
}

/* Names are unique in a scope: bind only what fe_lookup does not find. */
static void scope_push(L *l, Frame *f, Binding b)
{
    fe_ns_put(l->a, &f->bound, b.name, f->scope.n);
    vec_push(l->a, &f->scope, b);
}

static const char *kind_word(BindKind k)
{
    switch (k) {
    case B_INPUT: return "input";
    case B_PARAM: return "param";
    case B_LET: return "constant";
    case B_LOOP: return "loop variable";
    case B_BATCH: return "batch symbol";
    default: return "value";
    }
}

/* Binds a name in f. Plain values may be rebound; declarations (input,
 * param, let) need a fresh name, except that a loop may run the same
 * declaration again. Returns false after reporting an error. */
bool fe_bind(L *l, Frame *f, const char *name, BindKind kind, Value v, Loc loc, const Stmt *st)
{
    if (!name)
        return false;
    Binding *b = fe_lookup(f, name);
    if (b && b->kind == B_VALUE && b->v.kind == V_POISON && !b->stmt && b->undeclared) {
        /* a use before the declaration was reported already */
        b->kind = kind;
        b->v = v;
        b->loc = loc;
        b->stmt = st;
        b->undeclared = false;
        return true;
    }
    if (b) {
        bool same = st && b->stmt == st;
        if (kind == B_VALUE && b->kind == B_VALUE) {
            b->v = v;
            return true;
        }
        if (same && b->kind == kind) {
            b->v = v;
            return true;
        }
        bool shown;
        if (kind == B_VALUE)
            shown = fe_err(l, loc, "cannot rebind %s '%s'; only plain values can be bound again",
                           kind_word(b->kind), name);
        else if (b->kind == B_VALUE)
            shown = fe_err(l, loc, "redefinition of '%s' as %s %s", name,
                           strchr("aeiou", kind_word(kind)[0]) ? "an" : "a", kind_word(kind));
        else
            shown = fe_err(l, loc, "redefinition of %s '%s'", kind_word(b->kind), name);
        if (shown && b->loc.line > 0)
            diag_note(b->loc, "'%s' was first defined here", name);
        return false;
    }
    scope_push(l, f, (Binding){name, kind, v, loc, st, false});
    return true;
}

/* ---- statements ----------------------------------------------------------------- */

/* A type's shape: dims are integers >= 1 or k*B (k >= 1). */
static bool eval_type(L *l, Frame *f, const TypeExpr *t, bool allow_batch, DType *dt, Shape *s)
{
    *dt = t && t->dtype != DT_UNKNOWN ? t->dtype : DT_F32;
    *s = (Shape){0};
    if (!t)
        return true;
    if (t->ndims > IR_MAX_RANK) {
        fe_err(l, t->loc, "tensors have at most %d dimensions (got %d)", IR_MAX_RANK, t->ndims);
        return false;
    }
    bool ok = true;
    char buf[64];
    for (int i = 0; i < t->ndims; i++) {
        Value v = fe_eval(l, f, t->dims[i]);
        if (v.kind == V_POISON) {
            ok = false;
        } else if (v.kind == V_NUM && v.is_int && v.i >= 1) {
            s->d[i] = (Dim){v.i, false};
        } else if (v.kind == V_DIM && v.dim.n >= 1 && allow_batch) {
            s->d[i] = v.dim;
        } else if (v.kind == V_DIM && v.dim.n >= 1) {
            fe_err(l, v.loc, "parameter shapes cannot depend on the batch size");
            ok = false;
        } else {
            fe_err(l, v.loc, "dimension must be a positive integer (got %s)",
                   v.kind == V_DIM ? "a negative multiple of the batch size"
                                   : fe_vdesc(v, buf, sizeof buf));
            ok = false;
        }
    }
    s->rank = t->ndims;
    return ok;
}

static void exec_param(L *l, Frame *f, const Stmt *st)
{
    if (trial_fail(l))
        return; /* parameters per iteration: the loop is unrolled */
    DType dt;
    Shape s;
    bool ok = eval_type(l, f, st->type, false, &dt, &s);
    int init = s.rank == 1 || s.rank == 0 ? INIT_ZEROS : INIT_XAVIER_UNIFORM;
    AttrList al = {0};
    if (st->value) {
        init = fe_builtin_call(l, f, st->value, init_info, INIT_COUNT, "initializer", &al);
        ok &= init >= 0;
    } else {
        ir_attrs_fill_defaults(l->a, &al, fe_builtin_schema(init_info, init));
    }
    if (!ok) {
        fe_bind(l, f, st->name, B_PARAM, poison, st->name_loc, st);
        return;
    }
    const AttrSchema *sch = fe_builtin_schema(init_info, init);
    if (init == INIT_TRUNCATED_NORMAL || init == INIT_UNIFORM) {
        bool tn = init == INIT_TRUNCATED_NORMAL;
        double lo = ir_attrs_get(&al, tn ? "a" : "lo")->f,
               hi = ir_attrs_get(&al, tn ? "b" : "hi")->f;
        if (tn ? !(lo < hi) : !(lo <= hi)) {
            fe_err(l, st->value->loc, "%s: '%s' must be %s '%s' (got %g and %g)",
                   init_info[init].text, tn ? "a" : "lo", tn ? "less than" : "at most",
                   tn ? "b" : "hi", lo, hi);
            ok = false;
        }
        if (tn && !(ir_attrs_get(&al, "std")->f > 0)) {
            fe_err(l, st->value->loc, "truncated_normal: 'std' must be > 0");
            ok = false;
        }
    }
    if (!ok) {
        fe_bind(l, f, st->name, B_PARAM, poison, st->name_loc, st);
        return;
    }
    double args[16];
    int nargs = 0;
    for (int i = 0; i < sch->n && nargs < countof(args); i++) {
        const Attr *at = ir_attrs_get(&al, sch->v[i].name);
        if (!at)
            continue;
        double v = at->kind == AK_FLOAT  ? at->f
                   : at->kind == AK_INT  ? (double)at->i
                   : at->kind == AK_BOOL ? at->b
                                         : 0;
        /* an enum reaches the runtime as the index of its choice */
        for (int k = 0; at->kind == AK_STR && k < sch->v[i].nchoices; k++)
            if (strcmp(sch->v[i].choices[k], at->s) == 0)
                v = k;
        args[nargs++] = v;
    }
    const char *rel = fe_loop_name(l, f, st->name);
    Node *n = ir_param(l->g, rel, dt, s, (Init)init, nargs ? args : NULL, nargs, st->frozen,
                       st->name_loc);
    if (fe_bind(l, f, st->name, B_PARAM, tensor(n, st->name_loc), st->name_loc, st))
        fe_add_named(l, f, n, rel, st->name_loc);
}

static void exec_input(L *l, Frame *f, const Stmt *st)
{
    DType dt;
    Shape s;
    if (!eval_type(l, f, st->type, true, &dt, &s)) {
        fe_bind(l, f, st->name, B_INPUT, poison, st->name_loc, st);
        return;
    }
    Node *n = ir_input(l->g, st->name, dt, s, st->name_loc);
    if (fe_bind(l, f, st->name, B_INPUT, tensor(n, st->name_loc), st->name_loc, st))
        fe_add_named(l, f, n, st->name, st->name_loc);
}

static void exec_let(L *l, Frame *f, const Stmt *st)
{
    Value v = fe_eval(l, f, st->value);
    char buf[64];
    if (f == l->model && f->loops.n == 0)
        for (int i = 0; i < l->ndefines; i++)
            if (l->defines[i].name && strcmp(l->defines[i].name, st->name) == 0) {
                const Define *d = &l->defines[i];
                l->define_used[i] = true;
                bool is_int = d->is_int && fabs(d->value) < 9e18;
                v = is_int ? num_int((int64_t)d->value, st->name_loc)
                           : num_float(d->value, st->name_loc);
            }
    if (v.kind != V_NUM && v.kind != V_DIM && v.kind != V_POISON) {
        fe_err(l, v.loc, "'let %s' must be a compile-time number (got %s)", st->name,
               fe_vdesc(v, buf, sizeof buf));
        v = poison;
    }
    fe_bind(l, f, st->name, B_LET, v, st->name_loc, st);
}

static void exec_batch(L *l, Frame *f, const Stmt *st)
{
    Value v = fe_eval(l, f, st->value);
    char buf[64];
    if (l->have_batch) {
        if (fe_err(l, st->loc, "a second batch statement; a model has at most one"))
            diag_note(l->batch_loc, "the first batch statement is here");
        return;
    }
    l->have_batch = true;
    l->batch_loc = st->loc;
    if (v.kind != V_POISON && !(v.kind == V_NUM && v.is_int && v.i >= 1 && v.i <= MAX_BATCH))
        fe_err(l, v.loc, "the batch size bound must be an integer from 1 to %d (got %s)", MAX_BATCH,
               fe_vdesc(v, buf, sizeof buf));
    else if (v.kind == V_NUM)
        l->g->max_batch = v.i;
    l->g->batch = st->name;
    fe_bind(l, f, st->name, B_BATCH, (Value){.kind = V_DIM, .dim = {1, true}}, st->name_loc, st);
}

static void exec_output(L *l, Frame *f, const Stmt *st)
{
    Value v;
    char buf[64];
    if (st->value) {
        v = fe_eval(l, f, st->value);
        fe_bind(l, f, st->name, B_VALUE, v, st->name_loc, st);
    } else {
        Binding *b = fe_lookup(f, st->name);
        if (!b) {
            Expr e = {.kind = E_NAME, .loc = st->name_loc, .name = st->name};
            v = fe_eval_name(l, f, &e);
        } else {
            v = b->v;
            v.loc = st->name_loc;
        }
    }
    for (int i = 0; i < l->outputs.n; i++)
        if (strcmp(l->outputs.v[i].name, st->name) == 0) {
            if (fe_err(l, st->name_loc, "output '%s' is already defined", st->name))
                diag_note(l->outputs.v[i].loc, "the first output '%s' is here", st->name);
            return;
        }
    vec_push(l->a, &l->outputs, ((Output){st->name, NULL, st->name_loc}));
    if (v.kind == V_POISON)
        return;
    if (v.kind != V_TENSOR) {
        fe_err(l, st->name_loc, "output '%s' must be a tensor (got %s)", st->name,
               fe_vdesc(v, buf, sizeof buf));
        return;
    }
    ir_output(l->g, st->name, v.node, st->name_loc);
}

/* The caret of an error about a statement's value: a call's callee. */
static Loc value_loc(const Expr *e)
{
    return e->kind == E_CALL ? e->call.callee_loc : e->loc;
}

/* The def a call expression expands, or NULL. */
static const Def *called_def(L *l, const Expr *e)
{
    int k = e->kind == E_CALL && e->call.callee ? fe_ns_get(&l->def_names, e->call.callee) : -1;
    return k >= 0 ? l->defs.v[k].def : NULL;
}

static void exec_assign(L *l, Frame *f, const Stmt *st)
{
    Value v = fe_eval(l, f, st->value);
    if (v.kind == V_TUPLE) {
        const Def *d = called_def(l, st->value);
        if (fe_err(l, value_loc(st->value), "%s %d values; unpack them into as many names: %s",
                   d ? arena_printf(l->a, "'%s' returns", d->name) : "a tuple of", v.n,
                   v.n == 2 ? "a, b = ..." : "a, b, c = ...") &&
            d)
            diag_note(d->loc, "'%s' is defined here", d->name);
        v = poison;
    }
    fe_bind(l, f, st->name, B_VALUE, v, st->name_loc, st);
}

/* h, c = layer(x); binds each value of a tuple to its name ("_" drops
 * one). A count that differs is an error at the value. */
static void exec_unpack(L *l, Frame *f, const Stmt *st)
{
    Value v = fe_eval(l, f, st->value);
    int n = st->nnames;
    char buf[64];
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(st->names[i], "_") != 0 && strcmp(st->names[i], st->names[j]) == 0) {
                fe_err(l, st->name_locs[i], "'%s' is bound twice in one statement",
                       st->names[i]);
                v = poison;
            }
    bool ok = v.kind == V_TUPLE && v.n == n;
    if (v.kind != V_POISON && !ok) {
        const Def *d = called_def(l, st->value);
        const char *has = v.kind == V_TUPLE ? arena_printf(l->a, "%d values", v.n)
                                            : arena_printf(l->a, "one value (%s)",
                                                           fe_vdesc(v, buf, sizeof buf));
        bool shown = d ? fe_err(l, value_loc(st->value), "'%s' returns %s, but %d names are bound",
                                d->name, has, n)
                       : fe_err(l, value_loc(st->value), "cannot unpack %s into %d names", has, n);
        if (shown && d)
            diag_note(d->loc, "'%s' is defined here", d->name);
    }
    for (int i = 0; i < n; i++)
        if (strcmp(st->names[i], "_") != 0)
            fe_bind(l, f, st->names[i], B_VALUE, ok ? v.elems[i] : poison, st->name_locs[i], st);
}

/* The names that a branch not taken would bind: bound to a quiet poison
 * when the condition itself failed, so that their uses stay quiet. */
static void bind_quietly(L *l, Frame *f, Stmt *const *body, int n)
{
    for (int i = 0; i < n; i++) {
        const Stmt *st = body[i];
        if (!st)
            continue;
        if (st->kind == S_IF) {
            bind_quietly(l, f, st->body, st->nbody);
            bind_quietly(l, f, st->orelse, st->norelse);
            continue;
        }
        int nn = st->kind == S_UNPACK ? st->nnames : st->kind == S_FOR ? 0 : 1;
        for (int k = 0; k < nn; k++) {
            const char *name = st->kind == S_UNPACK ? st->names[k] : st->name;
            if (name && !fe_lookup(f, name)) {
                fe_bind(l, f, name, B_VALUE, poison, st->name_loc, NULL);
                fe_lookup(f, name)->undeclared = true;
            }
        }
    }
}

/* if COND { ... } else { ... }: COND is a compile-time number or bool
 * (nonzero is true); only the branch taken is compiled, in the frame of
 * the if, so the names it binds stay bound after it. */
static void exec_if(L *l, Frame *f, const Stmt *st)
{
    Value c = fe_eval(l, f, st->value);
    fe_name_calls(l, f, NULL, st->loc);
    char buf[64];
    bool taken;
    switch (c.kind) {
    case V_NUM: taken = c.f != 0 || isnan(c.f); break;
    case V_BOOL: taken = c.b; break;
    case V_POISON:
        bind_quietly(l, f, st->body, st->nbody);
        bind_quietly(l, f, st->orelse, st->norelse);
        return;
    default:
        fe_err(l, c.loc, "if: the condition must be a compile-time number or bool (got %s)%s",
               fe_vdesc(c, buf, sizeof buf),
               c.kind == V_TENSOR ? "; to choose per element, use where(cond, a, b)"
               : c.kind == V_DIM  ? "; the batch size is chosen at run time"
                                  : "");
        bind_quietly(l, f, st->body, st->nbody);
        bind_quietly(l, f, st->orelse, st->norelse);
        return;
    }
    if (taken)
        fe_exec_block(l, f, st->body, st->nbody);
    else
        fe_exec_block(l, f, st->orelse, st->norelse);
}

static void exec_slice_assign(L *l, Frame *f, const Stmt *st)
{
    Value v = fe_eval(l, f, st->value);
    Binding *b = fe_lookup(f, st->name);
    char buf[64];
    if (!b) {
        Expr e = {.kind = E_NAME, .loc = st->name_loc, .name = st->name};
        fe_eval_name(l, f, &e);
        fe_slice_attrs(l, f, NULL, st->items, st->nitems, st->loc);
        return;
    }
    Value cur = b->v;
    if (b->kind != B_VALUE) {
        fe_bind(l, f, st->name, B_VALUE, poison, st->name_loc, st);
        return;
    }
    if (cur.kind == V_POISON || v.kind == V_POISON) {
        fe_slice_attrs(l, f, NULL, st->items, st->nitems, st->loc);
        b->v = poison;
        return;
    }
    if (cur.kind != V_TENSOR) {
        fe_err(l, st->name_loc, "cannot index '%s': it is %s, not a tensor", st->name,
               fe_vdesc(cur, buf, sizeof buf));
        b->v = poison;
        return;
    }
    if (l->trial && trial_stack(l, f, b, st, v))
        return;
    Node *x = fe_as_node(l, v, "slice assignment");
    if (!x) {
        b->v = poison;
        return;
    }
    Node *n = ir_binary(l->g, OP_SLICE_UPDATE, cur.node, x, st->name_loc);
    b->v =
        fe_slice_attrs(l, f, n, st->items, st->nitems, st->loc) ? tensor(n, st->name_loc) : poison;
}

static void exec_for(L *l, Frame *f, const Stmt *st)
{
    Value lo = fe_eval(l, f, st->lo), hi = st->hi ? fe_eval(l, f, st->hi) : poison;
    fe_name_calls(l, f, st->name, st->name_loc);
    int64_t a = 0, b = 0;
    bool ok;
    if (st->hi) {
        ok = fe_int_const(l, lo, "a loop bound", &a);
        ok &= fe_int_const(l, hi, "a loop bound", &b);
    } else { /* over a list: always unrolled, its elements may be anything */
        ok = lo.kind == V_LIST;
        if (!ok && lo.kind != V_POISON) {
            char buf[64];
            fe_err(l, lo.loc, "a for loop runs over a range A..B or a list, not over %s",
                   fe_vdesc(lo, buf, sizeof buf));
        }
        b = ok ? lo.n : 0;
    }
    if (!ok || !st->name)
        return;
    if (fe_lookup(f, st->name)) {
        Binding *pb = fe_lookup(f, st->name);
        if (fe_err(l, st->name_loc, "loop variable '%s' shadows an existing name", st->name) &&
            pb->loc.line > 0)
            diag_note(pb->loc, "'%s' is defined here", st->name);
        return;
    }
    int idx = f->scope.n;
    scope_push(l, f, (Binding){st->name, B_LOOP, poison, st->name_loc, st, false});
    for (int64_t i = a; i < b && !l->stop; i++) {
        if (!fe_spend(l, st->loc))
            break;
        f->scope.v[idx].v = st->hi ? num_int(i, st->name_loc) : lo.elems[i];
        vec_push(l->a, &f->loops, i);
        int errors = diag_errors();
        fe_exec_block(l, f, st->body, st->nbody);
        f->loops.n--;
        /* after the first iteration, the rest as one IR loop if they can be */
        if (st->hi && i == a && diag_errors() == errors && compile_loop(l, f, st, idx, a + 1, b))
            break;
    }
    /* The loop variable goes out of scope; names bound in the body stay. */
    fe_ns_put(l->a, &f->bound, st->name, -1);
    memmove(&f->scope.v[idx], &f->scope.v[idx + 1],
            (size_t)(f->scope.n - idx - 1) * sizeof *f->scope.v);
    f->scope.n--;
    for (int i = idx; i < f->scope.n; i++)
        fe_ns_put(l->a, &f->bound, f->scope.v[i].name, i);
}

static void exec_stmt(L *l, Frame *f, const Stmt *st)
{
    if (!st || l->stop)
        return;
    if (!fe_spend(l, st->loc))
        return;
    if (st->kind != S_RETURN && !st->name)
        return;
    /* Misplaced statements were reported by check_body; do not run them. */
    switch (st->kind) {
    case S_BATCH:
    case S_INPUT:
    case S_OUTPUT:
    case S_TRAIN:
        if (f->def || f->loops.n)
            return;
        break;
    case S_RETURN:
        if (!f->def)
            return;
        break;
    default: break;
    }
    f->calls.n = 0;
    const char *name = st->name;
    switch (st->kind) {
    case S_BATCH: exec_batch(l, f, st); break;
    case S_LET: exec_let(l, f, st); break;
    case S_INPUT: exec_input(l, f, st); break;
    case S_PARAM: exec_param(l, f, st); break;
    case S_ASSIGN: exec_assign(l, f, st); break;
    case S_SLICE_ASSIGN: exec_slice_assign(l, f, st); break;
    case S_OUTPUT: exec_output(l, f, st); break;
    case S_TRAIN: fe_exec_train(l, f, st); break;
    case S_FOR: exec_for(l, f, st); return;
    case S_IF: exec_if(l, f, st); return;
    case S_UNPACK:
        exec_unpack(l, f, st);
        /* its calls' parameters are named after the first name kept */
        name = NULL;
        for (int i = 0; i < st->nnames && !name; i++)
            if (strcmp(st->names[i], "_") != 0)
                name = st->names[i];
        break;
    case S_RETURN:
        name = NULL;
        f->ret = fe_eval(l, f, st->value);
        f->returned = true;
        break;
    }
    fe_name_calls(l, f, name, st->name_loc);
}

void fe_exec_block(L *l, Frame *f, Stmt *const *body, int n)
{
    for (int i = 0; i < n && !l->stop; i++)
        exec_stmt(l, f, body[i]);
}

/* ---- structure checks (once per def, not per expansion) --------------------- */

static const char *stmt_word(StmtKind k)
{
    switch (k) {
    case S_BATCH: return "batch";
    case S_INPUT: return "input";
    case S_OUTPUT: return "output";
    case S_TRAIN: return "train";
    default: return "?";
    }
}

/* in_if: body is a branch of an if (return is not allowed there either: a
 * def ends in exactly one return, whatever branch is taken). */
static bool check_body(L *l, Stmt *const *body, int n, const Def *d, bool in_loop, bool in_if)
{
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const Stmt *st = body[i];
        if (!st)
            continue;
        switch (st->kind) {
        case S_BATCH:
        case S_INPUT:
        case S_OUTPUT:
        case S_TRAIN:
            if (d) {
                fe_err(l, st->loc, "'%s' is only allowed in the model, not inside a def",
                       stmt_word(st->kind));
                ok = false;
            } else if (in_loop) {
                fe_err(l, st->loc, "'%s' cannot appear inside a for loop", stmt_word(st->kind));
                ok = false;
            }
            break;
        case S_RETURN:
            if (!d) {
                fe_err(l, st->loc, "return outside of a def");
                ok = false;
            } else if (in_loop || in_if) {
                fe_err(l, st->loc,
                       in_if ? "return cannot appear inside an if; bind the value in each "
                               "branch and return it after the if"
                             : "return cannot appear inside a for loop; it must be the last "
                               "statement of the def");
                ok = false;
            } else if (i + 1 < n) {
                fe_err(l, body[i + 1] ? body[i + 1]->loc : st->loc, "statements after return");
                ok = false;
            }
            break;
        case S_FOR: ok &= check_body(l, st->body, st->nbody, d, true, in_if); break;
        case S_IF:
            ok &= check_body(l, st->body, st->nbody, d, in_loop, true);
            ok &= check_body(l, st->orelse, st->norelse, d, in_loop, true);
            break;
        default: break;
        }
    }
    if (d && !in_loop && !in_if && (n == 0 || !body[n - 1] || body[n - 1]->kind != S_RETURN) &&
        ok) {
        fe_err(l, d->loc, "missing return at the end of def '%s'", d->name);
        ok = false;
    }
    return ok;
}

/* ---- entry ------------------------------------------------------------------------ */

static bool collect_defs(L *l, Program *const *progs, int nprogs)
{
    for (int p = 0; p < nprogs; p++) {
        if (!progs[p])
            continue;
        for (int i = 0; i < progs[p]->ndefs; i++) {
            const Def *d = progs[p]->defs[i];
            if (!d || !d->name)
                continue;
            int k = fe_ns_get(&l->def_names, d->name);
            if (k >= 0) {
                if (fe_err(l, d->loc, "redefinition of def '%s'", d->name))
                    diag_note(l->defs.v[k].def->loc, "the first definition of '%s' is here",
                              d->name);
                continue;
            }
            bool bad = false;
            for (int j = 0; j < d->nparams; j++)
                for (int m = 0; m < j; m++)
                    if (d->params[j] && d->params[m] && strcmp(d->params[j], d->params[m]) == 0) {
                        fe_err(l, d->param_locs[j], "duplicate parameter '%s' of def '%s'",
                               d->params[j], d->name);
                        bad = true;
                    }
            fe_ns_put(l->a, &l->def_names, d->name, l->defs.n);
            vec_push(l->a, &l->defs, ((DefEntry){d, bad}));
        }
    }
    for (int i = 0; i < l->defs.n; i++) {
        const Def *d = l->defs.v[i].def;
        if (!check_body(l, d->body, d->nbody, d, false, false))
            l->defs.v[i].bad = true;
    }
    return true;
}

Graph *fe_lower(Arena *a, Program *const *progs, int nprogs, const Define *defs, int ndefs)
{
    int start = diag_errors();
    if (nprogs < 1 || !progs[0])
        return NULL;
    const Program *main = progs[0];
    if (main->nmodels == 0 || !main->models[0]) {
        diag_error_plain("no model in %s", diag_file_path(main->file));
        return NULL;
    }
    if (main->nmodels > 1) {
        const Model *m2 = main->models[1];
        diag_error(m2 ? m2->loc : (Loc){0}, "a second model; a file holds exactly one model");
        diag_note(main->models[0]->loc, "the first model is here");
    }
    const Model *m = main->models[0];
    L lw = {.a = a,
            .defines = defs,
            .ndefines = ndefs,
            .errors_at_start = start,
            .bytes_at_start = arena_used(a)};
    L *l = &lw;
    l->define_used = arena_alloc(a, (size_t)ndefs * sizeof *l->define_used + 1);
    l->g = ir_graph_new(a, m->name);
    l->g->loc = m->loc;
    collect_defs(l, progs, nprogs);
    check_body(l, m->body, m->nbody, NULL, false, false);
    l->model = fe_frame_new(l, NULL);
    l->model_ast = m;
    fe_exec_block(l, l->model, m->body, m->nbody);
    fe_check_objectives(l);
    for (int i = 0; i < ndefs; i++)
        if (!l->define_used[i] && defs[i].name)
            diag_warning((Loc){0}, "-D %s: the model has no 'let %s'", defs[i].name, defs[i].name);
    if (diag_errors() > start)
        return NULL;
    return l->g;
}
