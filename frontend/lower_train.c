/*
 * Lowering, training (frontend/lower.c has the other statements): a
 * `train LOSS with OPTIMIZER(...), OPTIONS as NAME;` statement becomes a
 * Train in the graph's list, with its optimizer's and schedule's arguments
 * checked against their schemas; after the model, the objectives' names
 * and their `params` prefixes are checked together.
 */
#include <math.h>
#include <string.h>

#include "lower.h"

/* What the schema's ranges (lower_expr.c) cannot say about a schedule's
 * arguments: the ones that relate two arguments, or a list's elements. */
static bool sched_args_ok(L *l, Sched s, const AttrList *a, Loc loc)
{
    const Attr *w = ir_attrs_get(a, "warmup");
    const Attr *n = ir_attrs_get(a, "total");
    switch (s) {
    case SCHED_WARMUP_COSINE:
        if (w->i >= n->i) {
            fe_err(l, loc, "warmup_cosine: 'warmup' must be less than 'total' (%lld >= %lld)",
                   (long long)w->i, (long long)n->i);
            return false;
        }
        return true;
    case SCHED_LINEAR_WARMUP:
    case SCHED_INVERSE_SQRT:
        if (w->i < 1) {
            fe_err(l, loc, "%s: 'warmup' must be >= 1 (got %lld)", sched_info[s].text,
                   (long long)w->i);
            return false;
        }
        return true;
    case SCHED_MULTISTEP: {
        AttrInts m = ir_attrs_get(a, "milestones")->ints;
        for (int i = 0; i < m.n; i++)
            if (m.v[i].n < 0) {
                fe_err(l, loc, "multistep: milestones must be >= 0 (got %lld)",
                       (long long)m.v[i].n);
                return false;
            }
        return true;
    }
    case SCHED_ONE_CYCLE: {
        /* PyTorch divides by each phase's length: none may be empty */
        double total = (double)n->i, pct = ir_attrs_get(a, "pct_start")->f;
        bool three = ir_attrs_get(a, "three_phase")->b;
        double up = pct * total - 1, down = three ? 2 * pct * total - 2 : up;
        if (up <= 0 || down >= total - 1 || (three && down <= up)) {
            fe_err(l, loc,
                   "one_cycle: every phase must last more than 0 steps (pct_start * total = %g%s)",
                   pct * total, three ? ", and pct_start < 0.5 with three_phase" : "");
            return false;
        }
        return true;
    }
    default: return true;
    }
}

/* `params = [gen, disc.fc1]`: parameter paths or their starts, written
 * as names and paths (not evaluated: `gen` is a prefix, not a value). */
static bool train_prefixes(L *l, const Expr *e, Train *t)
{
    if (e->kind != E_LIST || e->list.n == 0) {
        fe_err(l, e->loc, "params must be a list of parameter paths, as in 'params = [gen]'");
        return false;
    }
    bool ok = true;
    for (int i = 0; i < e->list.n; i++) {
        const Expr *x = e->list.elems[i];
        if (x->kind != E_NAME && x->kind != E_PATH) {
            fe_err(l, x->loc, "params: expected a parameter path such as 'gen' or 'gen.fc1'");
            ok = false;
            continue;
        }
        vec_push(l->a, &t->prefixes, ((ParamPrefix){x->name, x->loc}));
    }
    return ok;
}

void fe_exec_train(L *l, Frame *f, const Stmt *st)
{
    static const char *const opts[] = {"clip_norm", "schedule", "clip_value", "params"};
    char buf[64];
    Train *t = arena_alloc(l->a, sizeof *t);
    t->loc = st->loc;
    t->sched = SCHED_CONSTANT;
    t->name = st->objective;
    bool ok = true;
    Binding *b = fe_lookup(f, st->name);
    Value loss = poison;
    if (!b) {
        Expr e = {.kind = E_NAME, .loc = st->name_loc, .name = st->name};
        fe_eval_name(l, f, &e);
        ok = false;
    } else {
        loss = b->v;
        if (loss.kind == V_POISON) {
            ok = false;
        } else if (loss.kind != V_TENSOR) {
            fe_err(l, st->name_loc, "train: '%s' must be a tensor (got %s)", st->name,
                   fe_vdesc(loss, buf, sizeof buf));
            ok = false;
        }
    }
    int o = fe_builtin_call(l, f, st->value, optim_info, OPTIM_COUNT, "optimizer", &t->optim_args);
    ok &= o >= 0;
    if (!st->value)
        ok = false;
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < st->nopts; i++) {
        const Arg *a = &st->opts[i];
        if (!a->name)
            continue;
        int k = -1;
        for (int j = 0; j < countof(opts); j++)
            if (strcmp(a->name, opts[j]) == 0)
                k = j;
        if (k < 0) {
            fe_err(l, a->name_loc, "unknown train option '%s'%s", a->name,
                   fe_suggest(l, a->name, opts, countof(opts)));
            ok = false;
            continue;
        }
        if (seen[k]) {
            fe_err(l, a->name_loc, "train: '%s' is given twice", a->name);
            ok = false;
            continue;
        }
        seen[k] = true;
        if (k == 3) {
            ok &= train_prefixes(l, a->value, t);
        } else if (k != 1) {
            Value v = fe_eval(l, f, a->value);
            if (v.kind == V_NUM && v.f > 0 && isfinite(v.f)) {
                *(k == 0 ? &t->has_clip : &t->has_clip_value) = true;
                *(k == 0 ? &t->clip_norm : &t->clip_value) = v.f;
            } else {
                if (v.kind != V_POISON)
                    fe_err(l, v.loc, "%s must be a positive number (got %s)", opts[k],
                           fe_vdesc(v, buf, sizeof buf));
                ok = false;
            }
        } else {
            int s = fe_builtin_call(l, f, a->value, sched_info, SCHED_COUNT, "schedule",
                                    &t->sched_args);
            if (s < 0) {
                ok = false;
            } else {
                t->sched = (Sched)s;
                ok &= sched_args_ok(l, t->sched, &t->sched_args, a->value->loc);
            }
        }
    }
    if (!seen[1])
        ir_attrs_fill_defaults(l->a, &t->sched_args, fe_builtin_schema(sched_info, SCHED_CONSTANT));
    /* a failed statement stays in the list as a placeholder (no loss), so
     * that the objectives' names are still checked (check_objectives) */
    Train **end = &l->g->train;
    while (*end)
        end = &(*end)->next;
    *end = t;
    if (!ok)
        return;
    /* PyTorch's SGD refuses these too */
    const Attr *nest = ir_attrs_get(&t->optim_args, "nesterov");
    if (o == OPTIM_SGD && nest->b &&
        (ir_attrs_get(&t->optim_args, "momentum")->f <= 0 ||
         ir_attrs_get(&t->optim_args, "dampening")->f != 0)) {
        fe_err(l, st->value->loc, "sgd: nesterov needs momentum > 0 and dampening = 0");
        return;
    }
    t->optim = (Optim)o;
    t->loss = loss.node;
}

/* After the model: several objectives are each named, once; every
 * `params` prefix names trainable parameters. */
void fe_check_objectives(L *l)
{
    const Graph *g = l->g;
    for (const Train *t = g->train; t; t = t->next) {
        if (!t->name && (t != g->train || t->next)) {
            const Train *other = t == g->train ? t->next : g->train;
            if (fe_err(l, t->loc, "a model with several train statements needs 'as NAME' on "
                                  "each, to name the objective's functions"))
                diag_note(other->loc, "another train statement is here");
        }
        for (const Train *u = g->train; u != t; u = u->next)
            if (t->name && u->name && strcmp(t->name, u->name) == 0) {
                if (fe_err(l, t->loc, "a second objective named '%s'", t->name))
                    diag_note(u->loc, "the first is here");
                break;
            }
        for (int k = 0; k < t->prefixes.n; k++) {
            const char *pre = t->prefixes.v[k].path;
            bool found = false, frozen = false;
            for (int i = 0; i < g->nodes.n && !found; i++) {
                const Node *p = g->nodes.v[i];
                if (p->op != OP_PARAM || !ir_path_under(p->name, pre))
                    continue;
                found = !attr_frozen(p);
                frozen |= attr_frozen(p);
            }
            if (!found)
                fe_err(l, t->prefixes.v[k].loc, "params: no %sparameter '%s' or '%s.*'",
                       frozen ? "trainable " : "", pre, pre);
        }
    }
}
