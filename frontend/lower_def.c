/*
 * Lowering, def calls and the entry point (lower.c's file comment has the
 * whole): a call of a def binds its arguments to the def's parameters as
 * Python does (positional, then named, then the defaults, evaluated in the
 * callee's frame), expands the body inline in a fresh Frame, and hands the
 * parameters it made to the calling statement, which names them when it
 * ends (fe_name_calls). fe_lower collects the defs, checks them and runs
 * the model; it gives expressions their way to call defs (L.call_def)
 * and to index (L.eval_index).
 */
#include <string.h>

#include "lower.h"

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
        if (!fe_check_body(l, d->body, d->nbody, d, false, false))
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
            .bytes_at_start = arena_used(a),
            .call_def = fe_call_def,
            .eval_index = fe_eval_index};
    L *l = &lw;
    l->define_used = arena_alloc(a, (size_t)ndefs * sizeof *l->define_used + 1);
    l->g = ir_graph_new(a, m->name);
    l->g->loc = m->loc;
    collect_defs(l, progs, nprogs);
    fe_check_body(l, m->body, m->nbody, NULL, false, false);
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
