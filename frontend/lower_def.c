/*
 * Lowering, def calls (frontend/lower.c has the statements): a call of a
 * def binds its arguments to the def's parameters as Python does
 * (positional, then named, then the defaults, evaluated in the callee's
 * frame), expands the body inline in a fresh Frame, and hands the
 * parameters it made to the calling statement, which names them when it
 * ends (fe_name_calls; lower.c's file comment has the naming rules).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

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

/* ---- def calls ------------------------------------------------------------------ */

/* Which argument of the call binds each parameter of d (by[i], -1 for
 * none): positional ones in order, then named ones by name, as Python
 * binds them. False, with the error said, when they do not fit. */
static bool bind_args(L *l, const Def *d, const EArg *args, int nargs, Loc callee, int *by)
{
    bool ok = true;
    int npos = 0;
    for (int i = 0; i < d->nparams; i++)
        by[i] = -1;
    int required = 0;
    while (npos < nargs && !args[npos].name)
        npos++;
    while (required < d->nparams && !(d->defaults && d->defaults[required]))
        required++;
    if (npos > d->nparams || (npos == nargs && npos < required)) {
        if (fe_err(l, callee, "%s expects %s%d argument%s, got %d", d->name,
                   npos > d->nparams && required < d->nparams ? "at most " : "",
                   npos > d->nparams ? d->nparams : required,
                   (npos > d->nparams ? d->nparams : required) == 1 ? "" : "s", npos))
            diag_note(d->loc, "'%s' is defined here", d->name);
        return false;
    }
    for (int i = 0; i < npos; i++)
        by[i] = i;
    for (int k = npos; k < nargs; k++) {
        int j = 0;
        while (j < d->nparams && !(d->params[j] && strcmp(d->params[j], args[k].name) == 0))
            j++;
        if (j == d->nparams) {
            if (fe_err(l, args[k].name_loc, "%s has no parameter '%s'%s", d->name, args[k].name,
                       fe_suggest(l, args[k].name, d->params, d->nparams)))
                diag_note(d->loc, "'%s' is defined here", d->name);
            ok = false;
        } else if (by[j] >= 0) {
            fe_err(l, args[k].name_loc, "%s got two values for parameter '%s'", d->name,
                   args[k].name);
            ok = false;
        } else {
            by[j] = k;
        }
    }
    for (int i = 0; i < d->nparams && ok; i++)
        if (by[i] < 0 && d->params[i] && !(d->defaults && d->defaults[i])) {
            if (fe_err(l, callee, "%s: missing argument '%s'", d->name, d->params[i]))
                diag_note(d->param_locs[i], "'%s' is declared here, without a default",
                          d->params[i]);
            ok = false;
        }
    return ok;
}

Value fe_call_def(L *l, Frame *f, const DefEntry *de, const Expr *e)
{
    const Def *d = de->def;
    Loc callee = e->call.callee_loc;
    EArg *args = fe_eval_args(l, f, e->call.args, e->call.nargs);
    int *by = arena_alloc(l->a, sizeof *by * (size_t)(d->nparams + 1));
    if (!bind_args(l, d, args, e->call.nargs, callee, by))
        return poison;
    for (int i = 0; i < l->depth; i++)
        if (l->stack[i] == d) {
            if (fe_err(l, callee, "recursive call of '%s'", d->name))
                diag_note(d->loc, "defs are expanded inline, so recursion cannot terminate");
            return poison;
        }
    if (l->depth == MAX_CALL_DEPTH) {
        fe_err(l, callee, "defs nested more than %d calls deep", MAX_CALL_DEPTH);
        return poison;
    }
    if (de->bad || !fe_spend(l, callee))
        return poison;
    /* a default is evaluated at each call, in the def's own scope: it
     * sees the parameters before it (`def f(x, n, m = n * 2)`) */
    Frame *g = fe_frame_new(l, d);
    for (int i = 0; i < d->nparams; i++) {
        Value v = by[i] >= 0 ? args[by[i]].v : fe_eval(l, g, d->defaults[i]);
        if (d->params[i])
            fe_bind(l, g, d->params[i], B_VALUE, v, d->param_locs[i], NULL);
    }
    l->stack[l->depth++] = d;
    int first = l->g->nodes.n;
    fe_exec_block(l, g, d->body, d->nbody);
    l->depth--;
    CallRec rec = {d->name, callee, g->named.v, g->named.n, first, l->g->nodes.n};
    vec_push(l->a, &f->calls, rec);
    if (!g->returned)
        return poison;
    Value v = g->ret;
    v.loc = callee;
    return v;
}
