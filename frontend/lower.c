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
 * The files, each depending only on those listed before it:
 *   lower.c            what every part uses: diagnostics, name sets,
 *                      frames and bindings, parameter names
 *   lower_recurrent.c  rnn/lstm/gru with lengths, both directions, states
 *   lower_expr.c       expressions: folding, nodes, attributes, op calls
 *   lower_index.c      indexing: slices, tensor indices, a traced loop's index
 *   lower_train.c      train statements and the objectives' checks
 *   lower_loop.c       a for loop's body traced as an IR loop
 *   lower_stmt.c       statements, for loops, the structure checks
 *   lower_def.c        def calls and the entry point fe_lower
 * An expression calls a def through L.call_def and indexes through
 * L.eval_index, which fe_lower sets: the two calls that go back up the
 * list (a def's body is statements, an index's items are expressions).
 * lower.h has the types and functions they share.
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

/* Reports an error unless one was already reported at the same place (loops
 * and defs run a statement many times). Returns whether it was printed, so
 * that the caller prints its notes only then. */
bool __attribute__((format(printf, 3, 4))) fe_err(L *l, Loc loc, const char *fmt, ...)
{
    if (fe_trial_fail(l))
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

/* ---- the state of a loop trace (lower_loop.c) ------------------------------ */

/* A failure inside a loop trace abandons the trace (lower_loop.c): true
 * when one is running, for the caller to stay silent. */
bool fe_trial_fail(L *l)
{
    if (!l->trial)
        return false;
    l->trial->failed = true;
    return true;
}

/* The scope index whose placeholder is x, or -1. */
int fe_placeholder_of(const LoopTrial *t, const Node *x)
{
    for (int k = 0; k < t->nscope; k++)
        if (t->ph[k] == x)
            return k;
    return -1;
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
void fe_scope_push(L *l, Frame *f, Binding b)
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
    fe_scope_push(l, f, (Binding){name, kind, v, loc, st, false});
    return true;
}

/* ---- frames and names ------------------------------------------------------- */

Frame *fe_frame_new(L *l, const Def *d)
{
    Frame *f = arena_alloc(l->a, sizeof *f);
    f->def = d;
    /* Most frames hold a few names: start small, calls may be many. */
    f->scope.cap = d ? d->nparams + 4 : 16;
    f->scope.v = arena_alloc(l->a, (size_t)f->scope.cap * sizeof *f->scope.v);
    return f;
}

/* The statement's binding name with the loop indices of this frame. */
const char *fe_loop_name(L *l, Frame *f, const char *name)
{
    if (!f->loops.n)
        return name;
    StrBuf b = {0};
    sb_puts(&b, name);
    for (int i = 0; i < f->loops.n; i++)
        sb_printf(&b, ".%" PRId64, f->loops.v[i]);
    char *s = arena_strdup(l->a, b.s);
    sb_free(&b);
    return s;
}

static const char *named_kind(const Node *n)
{
    return n->op == OP_PARAM ? "parameter" : n->op == OP_STATE ? "state" : "input";
}

/* Records a named node in f under rel; in the model frame rel is final. */
void fe_add_named(L *l, Frame *f, Node *n, const char *rel, Loc loc)
{
    int k = fe_ns_get(&f->names, rel);
    if (k >= 0) {
        if (fe_err(l, loc, "%s '%s' is already defined; bind the result to a different name",
                   named_kind(n), rel) &&
            f->named.v[k].loc.line > 0)
            diag_note(f->named.v[k].loc, "'%s' was first defined here", rel);
        return;
    }
    if (f == l->model)
        n->name = rel;
    fe_ns_put(l->a, &f->names, rel, f->named.n);
    vec_push(l->a, &f->named, ((Named){n, rel, loc}));
}

static int cmp_call(const void *pa, const void *pb)
{
    const CallRec *a = pa, *b = pb;
    if (a->loc.line != b->loc.line)
        return a->loc.line < b->loc.line ? -1 : 1;
    return a->loc.col < b->loc.col ? -1 : a->loc.col > b->loc.col;
}

/* The scope of the nodes a def call built: prefix, before the scope of
 * the calls inside it (named first, relative to it), as parameter paths. */
static void scope_nodes(L *l, const CallRec *c, const char *prefix)
{
    for (int i = c->first_node; i < c->end_node && i < l->g->nodes.n; i++) {
        Node *n = l->g->nodes.v[i];
        if (n)
            n->scope = n->scope ? arena_printf(l->a, "%s.%s", prefix, n->scope) : prefix;
    }
}

/* Names what the def calls of one statement made (see the file comment).
 * name is NULL for `return`: there the callee's def name stands in for the
 * missing binding name (return dense(x) -> dense.w, as a PyTorch submodule). */
void fe_name_calls(L *l, Frame *f, const char *name, Loc loc)
{
    if (f->calls.n == 0) /* qsort must not see the NULL of an empty Vec */
        return;
    int k = 0;
    for (int i = 0; i < f->calls.n; i++)
        k += f->calls.v[i].nnamed > 0;
    qsort(f->calls.v, (size_t)f->calls.n, sizeof *f->calls.v, cmp_call);
    const char *base = name && k > 0 ? fe_loop_name(l, f, name) : NULL;
    int idx = 0;
    for (int i = 0; i < f->calls.n; i++) {
        CallRec *c = &f->calls.v[i];
        if (!c->nnamed) { /* no parameters to name: its nodes' scope is the def */
            scope_nodes(l, c, c->def);
            continue;
        }
        const char *prefix;
        if (base)
            prefix = k == 1 ? base : arena_printf(l->a, "%s.%s_%d", base, c->def, idx);
        else
            prefix = k == 1 ? c->def : arena_printf(l->a, "%s_%d", c->def, idx);
        idx++;
        scope_nodes(l, c, prefix);
        for (int j = 0; j < c->nnamed; j++)
            fe_add_named(l, f, c->named[j].node,
                         arena_printf(l->a, "%s.%s", prefix, c->named[j].rel), loc);
    }
    f->calls.n = 0;
}
