/*
 * Lowering, statements (lower.c's file comment has the whole): each kind
 * of statement run in a frame (declarations, bindings, unpacking, if,
 * slice assignment, for loops: unrolled, or after their first iteration
 * traced as an IR loop, lower_loop.c), and the structure checks made once
 * per def and model before anything runs.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower.h"

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
    bool ok = !l->stop && fe_trial_finish(l, f, &t, first, end, st->loc);
    if (!ok) {
        f->scope.n = t.nscope;
        for (int k = 0; k < t.nscope; k++)
            f->scope.v[k].v = t.old[k];
        l->work = work;
    }
    return ok;
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
    if (fe_trial_fail(l))
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
        if (b && b->kind == B_INPUT) { /* the C API would name two arguments so */
            if (fe_err(l, st->name_loc,
                       "output '%s' would have the name of an input; name it (output y = %s;)",
                       st->name, st->name) &&
                b->loc.line > 0)
                diag_note(b->loc, "input '%s' is here", st->name);
            return;
        }
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
                fe_err(l, st->name_locs[i], "'%s' is bound twice in one statement", st->names[i]);
                v = poison;
            }
    bool ok = v.kind == V_TUPLE && v.n == n;
    if (v.kind != V_POISON && !ok) {
        const Def *d = called_def(l, st->value);
        const char *has = v.kind == V_TUPLE
                              ? arena_printf(l->a, "%d values", v.n)
                              : arena_printf(l->a, "one value (%s)", fe_vdesc(v, buf, sizeof buf));
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
    if (l->trial && fe_trial_stack(l, f, b, st, v))
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
    fe_scope_push(l, f, (Binding){st->name, B_LOOP, poison, st->name_loc, st, false});
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
bool fe_check_body(L *l, Stmt *const *body, int n, const Def *d, bool in_loop, bool in_if)
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
        case S_FOR: ok &= fe_check_body(l, st->body, st->nbody, d, true, in_if); break;
        case S_IF:
            ok &= fe_check_body(l, st->body, st->nbody, d, in_loop, true);
            ok &= fe_check_body(l, st->orelse, st->norelse, d, in_loop, true);
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
