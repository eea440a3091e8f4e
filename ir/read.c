/*
 * The textual IR reader: the inverse of ir_print (docs/IR.md has the
 * grammar). A hand-written scanner feeds a recursive-descent parser, one
 * statement per line. Everything the text says is checked against the op
 * table, the attribute schemas and optim.def as it is read, so a graph this
 * returns passes ir_verify; the first mistake is reported through diag at
 * its line and column in the .ir file and the reader returns NULL. The
 * input may be anything (a fuzzer runs this): every loop advances, every
 * number is range-checked, and only loop bodies recurse, at most
 * MAX_LOOP_DEPTH deep. The tokens and the syntax of attributes, types and
 * locations are in read_syntax.c.
 */
#include "read_syntax.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { IR_VERSION = 1, MAX_SOURCE_BYTES = 64 << 20, MAX_LOOP_DEPTH = 32 };

/* ---- values ----------------------------------------------------------- */

static Node *lookup_val(Reader *r, const Tok *t)
{
    int lo = 0, hi = r->vals.n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (r->vals.v[mid].id == t->i)
            return r->vals.v[mid].n;
        if (r->vals.v[mid].id < t->i)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    rd_fail(r, t, "use of undefined value %%%" PRId64, t->i);
    return NULL;
}

static Node *expect_use(Reader *r)
{
    Tok t;
    if (!rd_expect_kind(r, T_VAL, "a value such as %3", &t))
        return NULL;
    return lookup_val(r, &t);
}


static const Node *find_named(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->name && strcmp(g->nodes.v[i]->name, name) == 0)
            return g->nodes.v[i];
    return NULL;
}

/* Optimizer and schedule schemas, parsed once and kept like ir_op_schema's. */
static const AttrSchema *optim_schema(int k)
{
    static const AttrSchema *cache[OPTIM_COUNT];
    if (!cache[k])
        cache[k] = ir_schema_parse(optim_info[k].attrs);
    return cache[k];
}

static const AttrSchema *sched_schema(int k)
{
    static const AttrSchema *cache[SCHED_COUNT];
    if (!cache[k])
        cache[k] = ir_schema_parse(sched_info[k].attrs);
    return cache[k];
}

/* ---- statements ------------------------------------------------------- */

static bool parse_body(Reader *r, Node *loop, const Tok *head);

/* node = VAL "=" OP [ STRING ] [ "(" [ VAL { "," VAL } ] ")" ] attrs ":" type loc */
static bool parse_node(Reader *r)
{
    Tok vt = rd_next(r);
    if (vt.i < 0)
        return rd_fail(r, &vt, "value number out of range");
    if (r->vals.n > 0) {
        int64_t last = r->vals.v[r->vals.n - 1].id;
        if (vt.i <= last) {
            for (int i = 0; i < r->vals.n; i++)
                if (r->vals.v[i].id == vt.i)
                    return rd_fail(r, &vt, "redefinition of value %%%" PRId64, vt.i);
            return rd_fail(r, &vt, "value numbers must increase: %%%" PRId64 " after %%%" PRId64,
                           vt.i, last);
        }
    }
    if (!rd_expect_punct(r, '=', NULL))
        return false;
    Tok ot;
    if (!rd_expect_kind(r, T_IDENT, "an op name", &ot))
        return false;
    char *optext = rd_tok_str(r, &ot);
    Op op = ir_op_lookup(optext);
    if (op == OP_COUNT) {
        const char *cands[OP_COUNT];
        for (int i = 0; i < OP_COUNT; i++)
            cands[i] = op_info[i].text;
        const char *sug = diag_suggest(optext, cands, OP_COUNT);
        if (sug)
            return rd_fail(r, &ot, "unknown op '%s'; did you mean '%s'?", optext, sug);
        return rd_fail(r, &ot, "unknown op '%s'", optext);
    }
    const OpInfo *oi = &op_info[op];
    if (r->depth > 0 && (op == OP_PARAM || op == OP_STATE))
        return rd_fail(r, &ot, "a loop body cannot declare a %s", oi->text);

    const char *name = NULL;
    Tok nt = {0};
    if (rd_peek(r)->k == T_STR) {
        nt = rd_next(r);
        name = nt.s;
        if (find_named(r->g, name))
            return rd_fail(r, &nt, "redefinition of \"%s\"", name);
    } else if (op == OP_INPUT || op == OP_PARAM || op == OP_STATE) {
        Tok *t = rd_peek(r);
        if (!rd_check_bad(r, t))
            return false;
        return rd_fail(r, t, "%s needs a name", oi->text);
    }

    Vec(Node *) in = {0};
    if (rd_is_punct(rd_peek(r), '(')) {
        Tok open = rd_next(r);
        if (!rd_is_punct(rd_peek(r), ')')) {
            for (;;) {
                Node *x = expect_use(r);
                if (!x)
                    return false;
                vec_push(r->a, &in, x);
                if (!rd_is_punct(rd_peek(r), ','))
                    break;
                rd_next(r);
            }
        }
        if (!rd_expect_punct(r, ')', NULL))
            return false;
        if (oi->arity >= 0 && in.n != oi->arity)
            return rd_fail(r, &open, "%s takes %d input%s, found %d", oi->text, oi->arity,
                           oi->arity == 1 ? "" : "s", in.n);
    }
    if (oi->arity > 0 && in.n == 0)
        return rd_fail(r, &ot, "%s takes %d input%s, found 0", oi->text, oi->arity,
                       oi->arity == 1 ? "" : "s");
    if (oi->arity < 0 && in.n == 0)
        return rd_fail(r, &ot, "%s takes at least one input", oi->text);
    if (op == OP_LOOP_RESULT && in.v[0]->op != OP_LOOP)
        return rd_fail(r, &ot, "loop_result reads a loop, not %s", op_info[in.v[0]->op].text);

    Node *n = ir_node_new(r->g, op, in.v, in.n, (Loc){0});
    n->name = name;
    ValDef vd = {vt.i, n};
    vec_push(r->a, &r->vals, vd);

    if (!rd_parse_attrs(r, ir_op_schema(op), oi->text, op, &ot, &n->attrs))
        return false;
    if (!rd_expect_punct(r, ':', NULL))
        return false;
    Tok tt = *rd_peek(r);
    if (!rd_parse_type(r, n))
        return false;
    /* States (batch-norm statistics) are typed by pass_shape from their
     * user, a body's inputs from their loop. */
    if (n->dtype == DT_UNKNOWN && ((op == OP_INPUT && r->depth == 0) || op == OP_PARAM))
        return rd_fail(r, &tt, "%s \"%s\" needs a type", oi->text, name);
    if (!rd_parse_loc(r, &n->loc))
        return false;
    if (rd_is_word(rd_peek(r), "fused")) {
        rd_next(r);
        FusedRef f = {n, {0}};
        if (!rd_expect_kind(r, T_VAL, "a value such as %3 after 'fused'", &f.t))
            return false;
        if (oi->kind == K_SOURCE)
            return rd_fail(r, &f.t, "%s cannot be fused into another node", oi->text);
        vec_push(r->a, &r->fused, f);
    }
    if (op == OP_LOOP)
        return rd_expect_punct(r, '{', NULL) && rd_expect_eol(r) && parse_body(r, n, &ot);
    return rd_expect_eol(r);
}

/* Fusion targets point forward: they are checked once all nodes exist. A
 * group's root is not fused itself (docs/IR.md). */
static bool resolve_fused(Reader *r)
{
    for (int i = 0; i < r->fused.n; i++) {
        FusedRef *f = &r->fused.v[i];
        Node *x = lookup_val(r, &f->t);
        if (!x)
            return false;
        if (x->id <= f->n->id)
            return rd_fail(r, &f->t, "a node can only be fused into a later node");
        f->n->fused = x;
    }
    for (int i = 0; i < r->fused.n; i++) {
        FusedRef *f = &r->fused.v[i];
        if (f->n->fused->fused)
            return rd_fail(
                r, &f->t, "%%%" PRId64 " is itself fused into another node; name the root", f->t.i);
    }
    return true;
}

/* output = "output" STRING "=" VAL loc */
static bool parse_output(Reader *r)
{
    rd_next(r);
    Tok nt;
    if (!rd_expect_kind(r, T_STR, "the output's name in quotes", &nt))
        return false;
    for (int i = 0; i < r->g->outputs.n; i++)
        if (strcmp(r->g->outputs.v[i].name, nt.s) == 0)
            return rd_fail(r, &nt, "output \"%s\" defined twice", nt.s);
    /* both are arguments of the generated forward function */
    const Node *in = r->depth == 0 ? find_named(r->g, nt.s) : NULL;
    if (in && in->op == OP_INPUT)
        return rd_fail(r, &nt, "output \"%s\" has the name of an input", nt.s);
    if (!rd_expect_punct(r, '=', NULL))
        return false;
    Node *x = expect_use(r);
    if (!x)
        return false;
    Loc l;
    if (!rd_parse_loc(r, &l))
        return false;
    ir_output(r->g, nt.s, x, l);
    return rd_expect_eol(r);
}

/*
 * body = "{" NL { node NL | output NL } "}": a loop's body after its line,
 * a graph of its own (ir_body_new) with its own value numbers and names,
 * no params, states or train. Its counts are checked against the loop's
 * (ir_loop_problem) at the closing brace.
 */
static bool parse_body(Reader *r, Node *loop, const Tok *head)
{
    if (r->depth >= MAX_LOOP_DEPTH)
        return rd_fail(r, head, "loops nest deeper than %d", MAX_LOOP_DEPTH);
    Reader outer = *r;
    r->g = loop->body = ir_body_new(outer.g);
    memset(&r->vals, 0, sizeof r->vals);
    memset(&r->fused, 0, sizeof r->fused);
    r->depth++;
    bool ok = true;
    for (;;) {
        rd_skip_blank_lines(r);
        Tok *p = rd_peek(r);
        if (!rd_check_bad(r, p))
            return false;
        if (p->k == T_VAL)
            ok = parse_node(r);
        else if (rd_is_word(p, "output"))
            ok = parse_output(r);
        else if (rd_is_punct(p, '}'))
            break;
        else {
            char buf[64];
            return rd_fail(r, p, "expected a node, 'output' or '}' in a loop body, found %s",
                           rd_tok_desc(p, buf, sizeof buf));
        }
        if (!ok)
            return false;
    }
    rd_next(r);
    if (!resolve_fused(r))
        return false;
    r->g = outer.g;
    r->vals = outer.vals;
    r->fused = outer.fused;
    r->depth--;
    const char *why = ir_loop_problem(loop);
    if (why)
        return rd_fail(r, head, "loop: %s", why);
    return rd_expect_eol(r);
}

static bool lookup_builtin(Reader *r, const BuiltinInfo *tab, int n, const char *kind,
                           const Tok *t, int *out)
{
    char *name = rd_tok_str(r, t);
    *out = ir_builtin_lookup(tab, n, name);
    if (*out >= 0)
        return true;
    const char *cands[32];
    int nc = n < 32 ? n : 32;
    for (int i = 0; i < nc; i++)
        cands[i] = tab[i].text;
    const char *sug = diag_suggest(name, cands, nc);
    if (sug)
        return rd_fail(r, t, "unknown %s '%s'; did you mean '%s'?", kind, name, sug);
    return rd_fail(r, t, "unknown %s '%s'", kind, name);
}

/* The objective that `grad` lines belong to: the last one read. */
static Train *last_train(const Reader *r)
{
    Train *t = r->g->train;
    while (t && t->next)
        t = t->next;
    return t;
}

/* params = "params" "=" "[" STRING { "," STRING } "]" */
static bool parse_prefixes(Reader *r, Train *t)
{
    if (!rd_expect_punct(r, '=', NULL) || !rd_expect_punct(r, '[', NULL))
        return false;
    do {
        Tok pt;
        if (!rd_expect_kind(r, T_STR, "a parameter path in quotes", &pt))
            return false;
        if (!pt.s[0])
            return rd_fail(r, &pt, "an empty parameter path");
        vec_push(r->a, &t->prefixes, ((ParamPrefix){pt.s, {0}}));
        if (!rd_is_punct(rd_peek(r), ','))
            break;
        rd_next(r);
    } while (true);
    return rd_expect_punct(r, ']', NULL);
}

/*
 * train = "train" VAL [ "as" NAME ] "with" OPTIM attrs
 *         { "clip_value" "=" float | "clip_norm" "=" float
 *           | "schedule" "=" SCHED attrs | params } loc
 */
static bool parse_train(Reader *r)
{
    Tok head = rd_next(r);
    Train *last = last_train(r);
    Train *t = arena_alloc(r->a, sizeof *t);
    t->sched = SCHED_CONSTANT;
    t->loss = expect_use(r);
    if (!t->loss)
        return false;
    if (rd_is_word(rd_peek(r), "as")) {
        rd_next(r);
        Tok nt;
        if (!rd_expect_kind(r, T_IDENT, "an objective's name", &nt))
            return false;
        t->name = rd_tok_str(r, &nt);
        for (const Train *u = r->g->train; u; u = u->next)
            if (u->name && strcmp(u->name, t->name) == 0)
                return rd_fail(r, &nt, "a second objective named '%s'", t->name);
    }
    if (last && (!last->name || !t->name))
        return rd_fail(r, &head, "several train statements need a name each ('as NAME')");
    if (!rd_expect_word(r, "with"))
        return false;
    Tok ot;
    int k;
    if (!rd_expect_kind(r, T_IDENT, "an optimizer name", &ot) ||
        !lookup_builtin(r, optim_info, OPTIM_COUNT, "optimizer", &ot, &k))
        return false;
    t->optim = (Optim)k;
    char owner[64];
    snprintf(owner, sizeof owner, "optimizer %s", optim_info[k].text);
    if (!rd_parse_attrs(r, optim_schema(k), owner, OP_COUNT, &ot, &t->optim_args))
        return false;
    bool seen_sched = false;
    for (;;) {
        Tok *p = rd_peek(r);
        if (rd_is_word(p, "clip_value")) {
            Tok ct = rd_next(r);
            if (t->has_clip_value)
                return rd_fail(r, &ct, "clip_value given twice");
            if (!rd_expect_punct(r, '=', NULL) ||
                !rd_parse_float(r, "clip_value", &t->clip_value))
                return false;
            t->has_clip_value = true;
        } else if (rd_is_word(p, "clip_norm")) {
            Tok ct = rd_next(r);
            if (t->has_clip)
                return rd_fail(r, &ct, "clip_norm given twice");
            if (!rd_expect_punct(r, '=', NULL) || !rd_parse_float(r, "clip_norm", &t->clip_norm))
                return false;
            t->has_clip = true;
        } else if (rd_is_word(p, "schedule")) {
            Tok st = rd_next(r);
            if (seen_sched)
                return rd_fail(r, &st, "schedule given twice");
            seen_sched = true;
            if (!rd_expect_punct(r, '=', NULL))
                return false;
            if (!rd_expect_kind(r, T_IDENT, "a schedule name", &st) ||
                !lookup_builtin(r, sched_info, SCHED_COUNT, "schedule", &st, &k))
                return false;
            t->sched = (Sched)k;
            snprintf(owner, sizeof owner, "schedule %s", sched_info[k].text);
            if (!rd_parse_attrs(r, sched_schema(k), owner, OP_COUNT, &st, &t->sched_args))
                return false;
        } else if (rd_is_word(p, "params")) {
            Tok pt = rd_next(r);
            if (t->prefixes.n > 0)
                return rd_fail(r, &pt, "params given twice");
            if (!parse_prefixes(r, t))
                return false;
        } else {
            break;
        }
    }
    if (!rd_parse_loc(r, &t->loc))
        return false;
    for (int i = 0; i < t->prefixes.n; i++)
        t->prefixes.v[i].loc = t->loc;
    *(last ? &last->next : &r->g->train) = t;
    return rd_expect_eol(r);
}

/* grad = "grad" STRING "=" VAL: after a train statement, the gradient of
 * its loss with respect to the named trainable parameter (Train.grads). */
static bool parse_grad(Reader *r)
{
    Tok head = rd_next(r);
    Train *t = last_train(r);
    if (!t)
        return rd_fail(r, &head, "'grad' before the train statement");
    Tok nt;
    if (!rd_expect_kind(r, T_STR, "a parameter's name in quotes", &nt))
        return false;
    const Node *p = find_named(r->g, nt.s);
    if (!p || p->op != OP_PARAM)
        return rd_fail(r, &nt, "no parameter named \"%s\"", nt.s);
    if (attr_frozen(p))
        return rd_fail(r, &nt, "parameter \"%s\" is frozen and has no gradient", nt.s);
    if (!ir_train_takes(t, p))
        return rd_fail(r, &nt, "parameter \"%s\" is not under the objective's params", nt.s);
    for (int i = 0; i < t->params.n; i++)
        if (t->params.v[i] == p)
            return rd_fail(r, &nt, "gradient of \"%s\" given twice", nt.s);
    if (t->params.n > 0 && t->params.v[t->params.n - 1]->id > p->id)
        return rd_fail(r, &nt, "gradients must follow the parameters' order");
    if (!rd_expect_punct(r, '=', NULL))
        return false;
    Tok vt = *rd_peek(r);
    Node *x = expect_use(r);
    if (!x)
        return false;
    if (x->dtype != DT_UNKNOWN && p->dtype != DT_UNKNOWN &&
        (x->dtype != p->dtype || !ir_shape_eq(&x->shape, &p->shape)))
        return rd_fail(r, &vt, "the gradient of \"%s\" must have the parameter's type", nt.s);
    vec_push(r->a, &t->params, (Node *)p);
    vec_push(r->a, &t->grads, x);
    return rd_expect_eol(r);
}

/* Gradients, when given for an unnamed objective, cover every trainable
 * parameter that it takes; a named one's cover those its loss reaches,
 * which only autodiff knows. Every `params` prefix takes a parameter. */
static bool check_grads(Reader *r, const Tok *end)
{
    const Train *t = r->g->train;
    if (!t)
        return true;
    for (const Train *u = t; u; u = u->next)
        for (int k = 0; k < u->prefixes.n; k++) {
            bool found = false;
            for (int i = 0; i < r->g->nodes.n && !found; i++) {
                const Node *p = r->g->nodes.v[i];
                found = p->op == OP_PARAM && !attr_frozen(p) &&
                        ir_path_under(p->name, u->prefixes.v[k].path);
            }
            if (!found)
                return rd_fail(r, end, "params: no trainable parameter under \"%s\"",
                               u->prefixes.v[k].path);
        }
    if (t->name || t->params.n == 0)
        return true;
    for (int i = 0; i < r->g->nodes.n; i++) {
        const Node *p = r->g->nodes.v[i];
        if (p->op != OP_PARAM || attr_frozen(p) || !ir_train_takes(t, p))
            continue;
        bool found = false;
        for (int j = 0; j < t->params.n && !found; j++)
            found = t->params.v[j] == p;
        if (!found)
            return rd_fail(r, end, "no gradient given for parameter \"%s\"", p->name);
    }
    return true;
}

/* file = "file" INT STRING: registers the path with diag (reading the file
 * when it exists, so carets work) or reuses an id already registered. */
static bool parse_file(Reader *r)
{
    rd_next(r);
    Tok it = *rd_peek(r);
    int idx = 0;
    if (!rd_expect_small(r, "a file index", &idx))
        return false;
    if (idx != r->files.n)
        return rd_fail(r, &it, "expected file index %d, found %d", r->files.n, idx);
    Tok pt;
    if (!rd_expect_kind(r, T_STR, "a path in quotes", &pt))
        return false;
    if (!rd_expect_eol(r))
        return false;
    /* Reuse a registered file only past the previous entry's id: the table
     * must map onto increasing ids, the order ir_print lists files in. */
    int id = -1;
    int first = r->files.n ? r->files.v[r->files.n - 1] + 1 : 0;
    for (int i = first; i < diag_num_files() && id < 0; i++)
        if (strcmp(diag_file_path(i), pt.s) == 0)
            id = i;
    if (id < 0) {
        struct stat st;
        char *text = NULL;
        size_t len = 0;
        if (stat(pt.s, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= MAX_SOURCE_BYTES)
            text = read_file(pt.s, &len);
        id = diag_add_source(pt.s, text ? text : "", text ? len : 0);
        free(text);
    }
    vec_push(r->a, &r->files, id);
    return true;
}

/* model = "model" ( NAME | STRING ) [ "batch" NAME "<=" INT ] loc */
static bool parse_model(Reader *r)
{
    Tok nt = rd_next(r);
    if (!rd_check_bad(r, &nt))
        return false;
    char buf[64];
    if (nt.k != T_IDENT && nt.k != T_STR)
        return rd_fail(r, &nt, "expected the model's name, found %s",
                       rd_tok_desc(&nt, buf, sizeof buf));
    r->g = ir_graph_new(r->a, nt.k == T_STR ? nt.s : rd_tok_str(r, &nt));
    if (rd_is_word(rd_peek(r), "batch")) {
        rd_next(r);
        Tok bt, mt;
        if (!rd_expect_kind(r, T_IDENT, "the batch symbol", &bt))
            return false;
        if (rd_is_word(&bt, "none"))
            return rd_fail(r, &bt, "'none' cannot name the batch symbol");
        Tok le = rd_next(r);
        if (!rd_check_bad(r, &le))
            return false;
        if (le.k != T_LE)
            return rd_fail(r, &le, "expected '<=', found %s", rd_tok_desc(&le, buf, sizeof buf));
        if (!rd_expect_kind(r, T_INT, "the maximum batch size", &mt))
            return false;
        if (mt.i < 1)
            return rd_fail(r, &mt, "the maximum batch size must be positive");
        r->g->batch = rd_tok_str(r, &bt);
        r->g->max_batch = mt.i;
    }
    if (!rd_parse_loc(r, &r->g->loc))
        return false;
    return rd_expect_eol(r);
}

/* ir = "dlc-ir" INT NL { file NL } model NL { stmt NL } "end" NL */
static bool parse_ir(Reader *r)
{
    rd_skip_blank_lines(r);
    Tok t = rd_next(r);
    if (!rd_check_bad(r, &t))
        return false;
    Tok dash = *rd_peek(r);
    if (!rd_is_word(&t, "dlc") || !rd_is_punct(&dash, '-') || dash.p != t.p + 3) {
        return rd_fail(r, &t, "expected 'dlc-ir VERSION' on the first line");
    }
    rd_next(r);
    Tok ir = rd_next(r);
    if (!rd_is_word(&ir, "ir") || ir.p != dash.p + 1)
        return rd_fail(r, &t, "expected 'dlc-ir VERSION' on the first line");
    Tok vt;
    if (!rd_expect_kind(r, T_INT, "the format version", &vt))
        return false;
    if (vt.i != IR_VERSION)
        return rd_fail(r, &vt, "unsupported IR version %" PRId64 " (this dlc reads version %d)",
                       vt.i, IR_VERSION);
    if (!rd_expect_eol(r))
        return false;
    for (;;) {
        rd_skip_blank_lines(r);
        if (!rd_is_word(rd_peek(r), "file"))
            break;
        if (!parse_file(r))
            return false;
    }
    if (!rd_expect_word(r, "model") || !parse_model(r))
        return false;
    for (;;) {
        rd_skip_blank_lines(r);
        Tok *p = rd_peek(r);
        if (!rd_check_bad(r, p))
            return false;
        bool ok;
        if (p->k == T_VAL)
            ok = parse_node(r);
        else if (rd_is_word(p, "output"))
            ok = parse_output(r);
        else if (rd_is_word(p, "train"))
            ok = parse_train(r);
        else if (rd_is_word(p, "grad"))
            ok = parse_grad(r);
        else if (rd_is_word(p, "end")) {
            if (!resolve_fused(r) || !check_grads(r, p))
                return false;
            break;
        }
        else {
            char buf[64];
            return rd_fail(r, p, "expected a node, 'output', 'train' or 'end', found %s",
                           rd_tok_desc(p, buf, sizeof buf));
        }
        if (!ok)
            return false;
    }
    rd_next(r);
    if (!rd_expect_eol(r))
        return false;
    rd_skip_blank_lines(r);
    Tok *e = rd_peek(r);
    if (!rd_check_bad(r, e))
        return false;
    if (e->k != T_EOF) {
        char buf[64];
        return rd_fail(r, e, "expected end of file after 'end', found %s",
                       rd_tok_desc(e, buf, sizeof buf));
    }
    return true;
}

Graph *ir_read(Arena *a, int file)
{
    size_t len = 0;
    const char *text = diag_source_text(file, &len);
    if (!text) {
        diag_error_plain("ir_read: no source file %d", file);
        return NULL;
    }
    Reader r = {.a = a, .file = file, .p = text, .end = text + len, .bol = text, .line = 1};
    if (!parse_ir(&r))
        return NULL;
    ir_verify(r.g);
    return r.g;
}
