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
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"

enum {
    MAX_CALL_DEPTH = 64,
    MAX_NODES = 1000000,
    MAX_BATCH = 65536,
};
/* Statements executed, loop iterations and def calls: bounds the time spent
 * unrolling even when bodies make no nodes; MAX_BYTES bounds the memory. */
static const long MAX_WORK = 10000000;
static const size_t MAX_BYTES = (size_t)1 << 29;

typedef enum { V_POISON, V_TENSOR, V_NUM, V_DIM, V_STR, V_BOOL, V_LIST } VKind;

typedef struct Value Value;
struct Value {
    VKind kind;
    Loc loc;     /* the expression that produced it (for const nodes, errors) */
    Node *node;  /* V_TENSOR */
    bool is_int; /* V_NUM */
    int64_t i;   /* V_NUM when is_int */
    double f;    /* V_NUM, always set */
    Dim dim;     /* V_DIM: dim.n * B */
    const char *str;
    bool b;
    Value *elems; /* V_LIST */
    int n;
};

typedef enum { B_VALUE, B_INPUT, B_PARAM, B_LET, B_LOOP, B_BATCH } BindKind;

typedef struct {
    const char *name;
    BindKind kind;
    Value v;
    Loc loc;          /* declaration or first binding */
    const Stmt *stmt; /* the declaring statement: a loop may run it again */
    bool undeclared;  /* a poison bound at a use of an undeclared name */
} Binding;

/* A parameter, state or input made in a frame, named relative to it. */
typedef struct {
    Node *node;
    const char *rel;
    Loc loc;
} Named;

/* Strings -> index, open addressing in the arena. */
typedef struct {
    const char **keys;
    int *vals;
    int cap, n;
} NameSet;

/* One def call made by the statement being executed. */
typedef struct {
    const char *def;
    Loc loc; /* the callee token: orders DEF_K */
    Named *named;
    int nnamed;
} CallRec;

typedef struct {
    const Def *def; /* NULL in the model */
    Vec(Binding) scope;
    Vec(Named) named;
    NameSet names; /* rel -> index in named */
    Vec(int64_t) loops;
    Vec(CallRec) calls;
    bool returned;
    Value ret;
} Frame;

typedef struct {
    const Def *def;
    bool bad; /* structurally invalid: not expanded, already reported */
} DefEntry;

typedef struct {
    Arena *a;
    Graph *g;
    const Define *defines;
    int ndefines;
    bool *define_used;
    Vec(DefEntry) defs;
    NameSet def_names;
    Vec(Loc) reported;
    const Def *stack[MAX_CALL_DEPTH];
    int depth;
    long work;
    bool stop;
    int errors_at_start;
    size_t bytes_at_start;
    Frame *model;
    const Model *model_ast;
    bool have_batch;
    Loc batch_loc;
    Vec(Output) outputs;
} L;

static const Value poison = {.kind = V_POISON};

/* ---- diagnostics ---------------------------------------------------------- */

static bool loc_eq(Loc a, Loc b)
{
    return a.file == b.file && a.line == b.line && a.col == b.col;
}

/* Reports an error unless one was already reported at the same place (loops
 * and defs run a statement many times). Returns whether it was printed, so
 * that the caller prints its notes only then. */
static bool __attribute__((format(printf, 3, 4))) err(L *l, Loc loc, const char *fmt, ...)
{
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

static const char *vdesc(Value v, char *buf, size_t size)
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
    }
    return "?";
}

/* "did you mean" suffix, or "". */
static const char *suggest(L *l, const char *word, const char *const *cands, int n)
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

static int ns_get(const NameSet *s, const char *key)
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

static void ns_put(Arena *a, NameSet *s, const char *key, int val)
{
    if (2 * (s->n + 1) > s->cap) {
        NameSet t = {0};
        t.cap = s->cap ? 2 * s->cap : 16;
        t.keys = arena_alloc(a, (size_t)t.cap * sizeof *t.keys);
        t.vals = arena_alloc(a, (size_t)t.cap * sizeof *t.vals);
        for (int i = 0; i < s->cap; i++)
            if (s->keys[i])
                ns_put(a, &t, s->keys[i], s->vals[i]);
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

/* ---- values ------------------------------------------------------------------ */

static Value num_int(int64_t i, Loc loc)
{
    return (Value){.kind = V_NUM, .loc = loc, .is_int = true, .i = i, .f = (double)i};
}

static Value num_float(double f, Loc loc)
{
    return (Value){.kind = V_NUM, .loc = loc, .f = f};
}

static Value tensor(Node *n, Loc loc)
{
    return (Value){.kind = V_TENSOR, .loc = loc, .node = n};
}

static bool is_poisoned(Value v)
{
    if (v.kind == V_POISON)
        return true;
    if (v.kind == V_LIST)
        for (int i = 0; i < v.n; i++)
            if (is_poisoned(v.elems[i]))
                return true;
    return false;
}

/* A number or a tensor as a tensor; numbers become a fresh const node at
 * their use site. NULL (after an error unless poisoned) otherwise. */
static Node *as_node(L *l, Value v, const char *what)
{
    char buf[64];
    switch (v.kind) {
    case V_TENSOR: return v.node;
    case V_NUM: return ir_const(l->g, v.f, v.loc);
    case V_POISON: return NULL;
    case V_DIM: err(l, v.loc, "%s: the batch size cannot be used as a tensor", what); return NULL;
    default:
        err(l, v.loc, "%s: expected a tensor or a number, got %s", what, vdesc(v, buf, sizeof buf));
        return NULL;
    }
}

static Frame *frame_new(L *l, const Def *d)
{
    Frame *f = arena_alloc(l->a, sizeof *f);
    f->def = d;
    /* Most frames hold a few names: start small, calls may be many. */
    f->scope.cap = d ? d->nparams + 4 : 16;
    f->scope.v = arena_alloc(l->a, (size_t)f->scope.cap * sizeof *f->scope.v);
    return f;
}

/* Counts one unit of unrolling work; false (after one error) once the model
 * has grown past what any real network needs. */
static bool spend(L *l, Loc loc)
{
    if (l->stop)
        return false;
    if (++l->work <= MAX_WORK && l->g->nodes.n <= MAX_NODES &&
        arena_used(l->a) - l->bytes_at_start <= MAX_BYTES)
        return true;
    err(l, loc, "model too large after unrolling (limits: %d nodes, %ld statements, %zu MB)",
        MAX_NODES, MAX_WORK, MAX_BYTES >> 20);
    l->stop = true;
    return false;
}

static Binding *lookup(Frame *f, const char *name)
{
    for (int i = f->scope.n - 1; i >= 0; i--)
        if (strcmp(f->scope.v[i].name, name) == 0)
            return &f->scope.v[i];
    return NULL;
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
static bool bind(L *l, Frame *f, const char *name, BindKind kind, Value v, Loc loc, const Stmt *st)
{
    if (!name)
        return false;
    Binding *b = lookup(f, name);
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
            shown = err(l, loc, "cannot rebind %s '%s'; only plain values can be bound again",
                        kind_word(b->kind), name);
        else if (b->kind == B_VALUE)
            shown = err(l, loc, "redefinition of '%s' as %s %s", name,
                        strchr("aeiou", kind_word(kind)[0]) ? "an" : "a", kind_word(kind));
        else
            shown = err(l, loc, "redefinition of %s '%s'", kind_word(b->kind), name);
        if (shown && b->loc.line > 0)
            diag_note(b->loc, "'%s' was first defined here", name);
        return false;
    }
    Binding nb = {name, kind, v, loc, st, false};
    vec_push(l->a, &f->scope, nb);
    return true;
}

/* The statement's binding name with the loop indices of this frame. */
static const char *loop_name(L *l, Frame *f, const char *name)
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
static void add_named(L *l, Frame *f, Node *n, const char *rel, Loc loc)
{
    int k = ns_get(&f->names, rel);
    if (k >= 0) {
        if (err(l, loc, "%s '%s' is already defined; bind the result to a different name",
                named_kind(n), rel) &&
            f->named.v[k].loc.line > 0)
            diag_note(f->named.v[k].loc, "'%s' was first defined here", rel);
        return;
    }
    if (f == l->model)
        n->name = rel;
    ns_put(l->a, &f->names, rel, f->named.n);
    vec_push(l->a, &f->named, ((Named){n, rel, loc}));
}

static int cmp_call(const void *pa, const void *pb)
{
    const CallRec *a = pa, *b = pb;
    if (a->loc.line != b->loc.line)
        return a->loc.line < b->loc.line ? -1 : 1;
    return a->loc.col < b->loc.col ? -1 : a->loc.col > b->loc.col;
}

/* Names what the def calls of one statement made (see the file comment).
 * name is NULL for `return`: there the callee's def name stands in for the
 * missing binding name (return dense(x) -> dense.w, as a PyTorch submodule). */
static void name_calls(L *l, Frame *f, const char *name, Loc loc)
{
    int k = 0;
    for (int i = 0; i < f->calls.n; i++)
        k += f->calls.v[i].nnamed > 0;
    if (k == 0) {
        f->calls.n = 0;
        return;
    }
    qsort(f->calls.v, (size_t)f->calls.n, sizeof *f->calls.v, cmp_call);
    const char *base = name ? loop_name(l, f, name) : NULL;
    int idx = 0;
    for (int i = 0; i < f->calls.n; i++) {
        CallRec *c = &f->calls.v[i];
        if (!c->nnamed)
            continue;
        const char *prefix;
        if (base)
            prefix = k == 1 ? base : arena_printf(l->a, "%s.%s_%d", base, c->def, idx);
        else
            prefix = k == 1 ? c->def : arena_printf(l->a, "%s_%d", c->def, idx);
        idx++;
        for (int j = 0; j < c->nnamed; j++)
            add_named(l, f, c->named[j].node, arena_printf(l->a, "%s.%s", prefix, c->named[j].rel),
                      loc);
    }
    f->calls.n = 0;
}

/* ---- constant folding ----------------------------------------------------- */

static const char *const batch_msg =
    "the batch size can only be multiplied or divided by constants";

static Value fold(L *l, char op, Value a, Value b, Loc loc)
{
    char b1[64], b2[64];
    if (a.kind == V_DIM || b.kind == V_DIM) {
        Value d = a.kind == V_DIM ? a : b, o = a.kind == V_DIM ? b : a;
        if (o.kind == V_NUM && o.is_int && op == '*') {
            int64_t n;
            if (mul_overflows_i64(d.dim.n, o.i, &n)) {
                err(l, loc, "integer overflow in constant expression");
                return poison;
            }
            return (Value){.kind = V_DIM, .loc = loc, .dim = {n, true}};
        }
        if (a.kind == V_DIM && b.kind == V_NUM && b.is_int && op == '/') {
            if (b.i == 0 || d.dim.n % b.i != 0) {
                char db[64];
                err(l, loc, "%s is not divisible by %" PRId64,
                    ir_dim_str(d.dim, l->g->batch, db, sizeof db), b.i);
                return poison;
            }
            return (Value){.kind = V_DIM, .loc = loc, .dim = {d.dim.n / b.i, true}};
        }
        err(l, loc, "%s", batch_msg);
        return poison;
    }
    if (a.kind != V_NUM || b.kind != V_NUM) {
        err(l, loc, "invalid operands to '%c' (%s and %s)", op, vdesc(a, b1, sizeof b1),
            vdesc(b, b2, sizeof b2));
        return poison;
    }
    if (op == '@') {
        err(l, loc, "'@' needs tensor operands, not numbers");
        return poison;
    }
    if (op == '/' && b.f == 0) {
        err(l, loc, "division by zero in constant expression");
        return poison;
    }
    if (a.is_int && b.is_int) {
        int64_t r;
        bool ovf = false;
        switch (op) {
        case '+': ovf = add_overflows_i64(a.i, b.i, &r); break;
        case '-': ovf = b.i == INT64_MIN || add_overflows_i64(a.i, -b.i, &r); break;
        case '*': ovf = mul_overflows_i64(a.i, b.i, &r); break;
        default:
            if (a.i == INT64_MIN && b.i == -1)
                ovf = true;
            else if (a.i % b.i == 0)
                r = a.i / b.i;
            else
                return num_float((double)a.i / (double)b.i, loc);
            break;
        }
        if (ovf) {
            err(l, loc, "integer overflow in constant expression");
            return poison;
        }
        return num_int(r, loc);
    }
    double r = op == '+' ? a.f + b.f : op == '-' ? a.f - b.f : op == '*' ? a.f * b.f : a.f / b.f;
    return num_float(r, loc);
}

/* ---- expressions ------------------------------------------------------------ */

static Value eval(L *l, Frame *f, const Expr *e);
static Value call(L *l, Frame *f, const Expr *e);

static bool loc_before(Loc a, Loc b)
{
    return a.file == b.file && (a.line < b.line || (a.line == b.line && a.col < b.col));
}

/* A statement of the model, after `use`, that declares or binds `name`:
 * for "used before its declaration" instead of "undeclared". */
static const Stmt *declared_after(Stmt *const *body, int n, const char *name, Loc use)
{
    for (int i = 0; i < n; i++) {
        const Stmt *st = body[i];
        if (!st)
            continue;
        if (st->kind == S_FOR) {
            const Stmt *s2 = declared_after(st->body, st->nbody, name, use);
            if (s2)
                return s2;
            continue;
        }
        bool binds = st->kind == S_INPUT || st->kind == S_PARAM || st->kind == S_LET ||
                     st->kind == S_ASSIGN || (st->kind == S_OUTPUT && st->value);
        if (binds && st->name && strcmp(st->name, name) == 0 && loc_before(use, st->name_loc))
            return st;
    }
    return NULL;
}

static Value eval_name(L *l, Frame *f, const Expr *e)
{
    Binding *b = lookup(f, e->name);
    if (b) {
        Value v = b->v;
        v.loc = e->loc;
        return v;
    }
    const char **cands = arena_alloc(l->a, (size_t)f->scope.n * sizeof *cands + 1);
    for (int i = 0; i < f->scope.n; i++)
        cands[i] = f->scope.v[i].name;
    const Stmt *later = f == l->model && l->model_ast
                            ? declared_after(l->model_ast->body, l->model_ast->nbody, e->name, e->loc)
                            : NULL;
    bool shown;
    if (later) {
        shown = err(l, e->loc, "use of '%s' before its declaration", e->name);
        if (shown)
            diag_note(later->name_loc, "'%s' is declared here", e->name);
    } else {
        shown = err(l, e->loc, "use of undeclared name '%s'%s", e->name,
                    suggest(l, e->name, cands, f->scope.n));
    }
    if (shown && !later && f != l->model && l->model) {
        Binding *mb = lookup(l->model, e->name);
        if (mb)
            diag_note(mb->loc,
                      "'%s' is defined in the model; a def sees only its arguments and "
                      "its own names, so pass it as an argument",
                      e->name);
    }
    /* Bind the poison so that later uses stay quiet; a later declaration
     * replaces it silently. */
    bind(l, f, e->name, B_VALUE, poison, e->loc, NULL);
    Binding *pb = lookup(f, e->name);
    if (pb)
        pb->undeclared = true;
    return poison;
}

static Value eval_bin(L *l, Frame *f, const Expr *e)
{
    Value a = eval(l, f, e->bin.lhs), b = eval(l, f, e->bin.rhs);
    if (a.kind == V_POISON || b.kind == V_POISON)
        return poison;
    if (a.kind != V_TENSOR && b.kind != V_TENSOR)
        return fold(l, e->bin.op, a, b, e->loc);
    Op op = e->bin.op == '+'   ? OP_ADD
            : e->bin.op == '-' ? OP_SUB
            : e->bin.op == '*' ? OP_MUL
            : e->bin.op == '/' ? OP_DIV
                               : OP_MATMUL;
    char what[32];
    snprintf(what, sizeof what, "'%c'", e->bin.op);
    Node *x = as_node(l, a, what), *y = as_node(l, b, what);
    if (!x || !y)
        return poison;
    return tensor(ir_binary(l->g, op, x, y, e->bin.op_loc), e->loc);
}

static Value eval_neg(L *l, Frame *f, const Expr *e)
{
    Value v = eval(l, f, e->operand);
    char buf[64];
    switch (v.kind) {
    case V_POISON: return poison;
    case V_NUM:
        if (v.is_int) {
            if (v.i == INT64_MIN) {
                err(l, e->loc, "integer overflow in constant expression");
                return poison;
            }
            return num_int(-v.i, e->loc);
        }
        return num_float(-v.f, e->loc);
    case V_TENSOR: return tensor(ir_unary(l->g, OP_NEG, v.node, e->loc), e->loc);
    case V_DIM: err(l, e->loc, "%s", batch_msg); return poison;
    default: err(l, e->loc, "cannot negate %s", vdesc(v, buf, sizeof buf)); return poison;
    }
}

/* An integer constant (slice bounds, loop bounds). */
static bool int_const(L *l, Value v, const char *what, int64_t *out)
{
    char buf[64];
    if (v.kind == V_POISON)
        return false;
    if (v.kind == V_NUM && v.is_int) {
        *out = v.i;
        return true;
    }
    err(l, v.loc, "%s must be an integer constant (got %s)", what, vdesc(v, buf, sizeof buf));
    return false;
}

/* x[items] and NAME[items] = v: the begin/end/step/squeeze attributes. */
static bool slice_attrs(L *l, Frame *f, Node *n, const SliceItem *items, int nitems, Loc loc)
{
    if (nitems > IR_MAX_RANK) {
        err(l, loc, "too many indices (%d); tensors have at most %d dimensions", nitems,
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
            if (!it->index || !int_const(l, eval(l, f, it->index), "an index", &v)) {
                ok = false;
                continue;
            }
            begin[i].n = v;
            end[i].n = v == -1 ? IR_NONE : v + 1;
            squeeze[nsq++] = (Dim){i, false};
            continue;
        }
        if (it->start) {
            if (int_const(l, eval(l, f, it->start), "a slice bound", &v))
                begin[i].n = v;
            else
                ok = false;
        }
        if (it->stop) {
            if (int_const(l, eval(l, f, it->stop), "a slice bound", &v))
                end[i].n = v;
            else
                ok = false;
        }
        if (it->step) {
            if (int_const(l, eval(l, f, it->step), "a slice step", &v)) {
                if (v == 0) {
                    err(l, it->step->loc, "slice step cannot be zero");
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
    ir_set_ints(l->g, n, "begin", begin, nitems);
    ir_set_ints(l->g, n, "end", end, nitems);
    ir_set_ints(l->g, n, "step", step, nitems);
    ir_set_ints(l->g, n, "squeeze", squeeze, nsq);
    return true;
}

static Value eval_index(L *l, Frame *f, const Expr *e)
{
    Value base = eval(l, f, e->index.base);
    char buf[64];
    if (base.kind == V_POISON) {
        slice_attrs(l, f, NULL, e->index.items, e->index.nitems, e->loc);
        return poison;
    }
    if (base.kind != V_TENSOR) {
        err(l, e->loc, "cannot index %s; only tensors can be indexed",
            vdesc(base, buf, sizeof buf));
        return poison;
    }
    Node *n = ir_unary(l->g, OP_SLICE, base.node, e->loc);
    if (!slice_attrs(l, f, n, e->index.items, e->index.nitems, e->loc))
        return poison;
    return tensor(n, e->loc);
}

static Value eval(L *l, Frame *f, const Expr *e)
{
    if (!e || l->stop)
        return poison;
    switch (e->kind) {
    case E_NUM:
        return e->num.is_int ? num_int(e->num.ival, e->loc) : num_float(e->num.value, e->loc);
    case E_STR: return (Value){.kind = V_STR, .loc = e->loc, .str = e->str ? e->str : ""};
    case E_BOOL: return (Value){.kind = V_BOOL, .loc = e->loc, .b = e->boolean};
    case E_NAME: return e->name ? eval_name(l, f, e) : poison;
    case E_BIN: return eval_bin(l, f, e);
    case E_NEG: return eval_neg(l, f, e);
    case E_CALL: return e->call.callee ? call(l, f, e) : poison;
    case E_INDEX: return eval_index(l, f, e);
    case E_LIST: {
        Value v = {.kind = V_LIST, .loc = e->loc, .n = e->list.n};
        v.elems = arena_alloc(l->a, (size_t)e->list.n * sizeof *v.elems + 1);
        for (int i = 0; i < e->list.n; i++)
            v.elems[i] = eval(l, f, e->list.elems[i]);
        return v;
    }
    }
    return poison;
}

/* ---- attributes --------------------------------------------------------------- */

typedef struct {
    const char *name; /* NULL when positional */
    Loc name_loc;
    Value v;
} EArg;

static EArg *eval_args(L *l, Frame *f, const Arg *args, int n)
{
    EArg *r = arena_alloc(l->a, (size_t)n * sizeof *r + 1);
    for (int i = 0; i < n; i++) {
        r[i].name = args[i].name;
        r[i].name_loc = args[i].name_loc;
        r[i].v = eval(l, f, args[i].value);
        if (!args[i].value)
            r[i].v.kind = V_POISON;
    }
    return r;
}

/* Converts v to an attribute of sp's kind; who names the op or builtin. */
static bool to_attr(L *l, const char *who, const AttrSpec *sp, Value v, Attr *out)
{
    char buf[64];
    const char *got = vdesc(v, buf, sizeof buf);
    *out = (Attr){.name = sp->name, .kind = sp->kind};
    switch (sp->kind) {
    case AK_INT:
        if (v.kind == V_NUM && v.is_int) {
            out->i = v.i;
            return true;
        }
        err(l, v.loc, "%s: '%s' must be an integer (got %s)", who, sp->name, got);
        return false;
    case AK_FLOAT:
        if (v.kind == V_NUM) {
            out->f = v.f;
            return true;
        }
        err(l, v.loc, "%s: '%s' must be a number (got %s)", who, sp->name, got);
        return false;
    case AK_BOOL:
        if (v.kind == V_BOOL) {
            out->b = v.b;
            return true;
        }
        err(l, v.loc, "%s: '%s' must be true or false (got %s)", who, sp->name, got);
        return false;
    case AK_STR:
        if (v.kind == V_STR) {
            out->s = v.str;
            return true;
        }
        err(l, v.loc, "%s: '%s' must be a string (got %s)", who, sp->name, got);
        return false;
    case AK_ENUM: {
        out->kind = AK_STR;
        if (v.kind == V_STR)
            for (int i = 0; i < sp->nchoices; i++)
                if (strcmp(sp->choices[i], v.str) == 0) {
                    out->s = v.str;
                    return true;
                }
        StrBuf b = {0};
        for (int i = 0; i < sp->nchoices; i++)
            sb_printf(&b, "%s\"%s\"", i ? (i + 1 == sp->nchoices ? " or " : ", ") : "",
                      sp->choices[i]);
        err(l, v.loc, "%s: '%s' must be %s (got %s)%s", who, sp->name, b.s ? b.s : "", got,
            v.kind == V_STR ? suggest(l, v.str, sp->choices, sp->nchoices) : "");
        sb_free(&b);
        return false;
    }
    case AK_INTS: {
        bool shape = strcmp(sp->name, "shape") == 0;
        int n = v.kind == V_LIST ? v.n : 1;
        const Value *el = v.kind == V_LIST ? v.elems : &v;
        Dim *d = arena_alloc(l->a, (size_t)n * sizeof *d + 1);
        for (int i = 0; i < n; i++) {
            if (el[i].kind == V_NUM && el[i].is_int) {
                d[i] = (Dim){el[i].i, false};
            } else if (el[i].kind == V_DIM && shape) {
                d[i] = el[i].dim;
            } else {
                const char *g = vdesc(el[i], buf, sizeof buf);
                if (el[i].kind == V_DIM)
                    err(l, el[i].loc,
                        "%s: '%s' must be integers; the batch size is only "
                        "allowed in shapes",
                        who, sp->name);
                else if (v.kind == V_LIST)
                    err(l, el[i].loc, "%s: '%s' must be a list of integers (got %s)", who, sp->name,
                        g);
                else
                    err(l, v.loc, "%s: '%s' must be an integer or a list of integers (got %s)", who,
                        sp->name, g);
                return false;
            }
        }
        out->ints.v = d;
        out->ints.n = n;
        return true;
    }
    case AK_FLOATS: {
        int n = v.kind == V_LIST ? v.n : 1;
        const Value *el = v.kind == V_LIST ? v.elems : &v;
        double *d = arena_alloc(l->a, (size_t)n * sizeof *d + 1);
        for (int i = 0; i < n; i++) {
            if (el[i].kind != V_NUM) {
                err(l, el[i].loc, "%s: '%s' must be a number or a list of numbers (got %s)", who,
                    sp->name, vdesc(el[i], buf, sizeof buf));
                return false;
            }
            d[i] = el[i].f;
        }
        out->floats.v = d;
        out->floats.n = n;
        return true;
    }
    }
    return false;
}

/* The ranges PyTorch accepts for optimizer, schedule and initializer
 * arguments, by argument name (the same name means the same thing in every
 * table of ir/optim.def). */
static bool builtin_arg_in_range(L *l, const char *who, const Attr *at, Loc loc)
{
    static const struct {
        const char *name;
        double lo;
        bool lo_open;
        double hi; /* exclusive; INFINITY for none */
    } rules[] = {
        {"lr", 0, false, INFINITY},        {"momentum", 0, false, INFINITY},
        {"weight_decay", 0, false, INFINITY}, {"eps", 0, false, INFINITY},
        {"alpha", 0, false, INFINITY},     {"beta1", 0, false, 1},
        {"beta2", 0, false, 1},            {"gamma", 0, true, INFINITY},
        {"min_lr", 0, false, INFINITY},    {"base_lr", 0, false, INFINITY},
        {"max_lr", 0, false, INFINITY},    {"every", 1, false, INFINITY},
        {"total", 1, false, INFINITY},     {"warmup", 0, false, INFINITY},
        {"step_size", 1, false, INFINITY}, {"std", 0, false, INFINITY},
        {"gain", 0, false, INFINITY},
    };
    double v;
    if (at->kind == AK_FLOAT)
        v = at->f;
    else if (at->kind == AK_INT)
        v = (double)at->i;
    else
        return true;
    for (int i = 0; i < countof(rules); i++) {
        if (strcmp(rules[i].name, at->name) != 0)
            continue;
        bool ok = isfinite(v) && (rules[i].lo_open ? v > rules[i].lo : v >= rules[i].lo) &&
                  v < rules[i].hi;
        if (!ok) {
            char range[64];
            if (rules[i].hi < INFINITY)
                snprintf(range, sizeof range, "in [%g, %g)", rules[i].lo, rules[i].hi);
            else
                snprintf(range, sizeof range, "%s %g", rules[i].lo_open ? ">" : ">=",
                         rules[i].lo);
            err(l, loc, "%s: '%s' must be %s (got %g)", who, at->name, range, v);
        }
        return ok;
    }
    return true;
}

/* Fills `out` from the arguments after the first `skip` positional ones:
 * positional in schema order, named by name, then the schema's defaults.
 * noun is "attribute" for ops, "argument" for builtins. */
static bool match_attrs(L *l, const char *who, const char *noun, const AttrSchema *s,
                        const EArg *args, int nargs, int skip, Loc callee, AttrList *out)
{
    bool ok = true;
    int pos = 0;
    for (int i = 0; i < nargs; i++) {
        const EArg *a = &args[i];
        int k;
        Loc at = a->name ? a->name_loc : a->v.loc;
        if (!a->name) {
            if (pos++ < skip)
                continue;
            k = pos - 1 - skip;
            if (k >= s->n) {
                if (s->n == 0)
                    err(l, at, "%s takes no %ss", who, noun);
                else
                    err(l, at, "too many arguments to %s (at most %d after the tensors)", who,
                        s->n);
                ok = false;
                continue;
            }
        } else {
            k = ir_schema_find(s, a->name);
            if (k < 0) {
                const char **c = arena_alloc(l->a, (size_t)s->n * sizeof *c + 1);
                for (int j = 0; j < s->n; j++)
                    c[j] = s->v[j].name;
                err(l, at, "%s has no %s '%s'%s", who, noun, a->name, suggest(l, a->name, c, s->n));
                ok = false;
                continue;
            }
        }
        const AttrSpec *sp = &s->v[k];
        if (ir_attrs_get(out, sp->name)) {
            err(l, at, "%s: '%s' is given twice", who, sp->name);
            ok = false;
            continue;
        }
        if (is_poisoned(a->v)) {
            ok = false;
            continue;
        }
        Attr at2;
        if (!to_attr(l, who, sp, a->v, &at2)) {
            ok = false;
            continue;
        }
        if (strcmp(noun, "argument") == 0 && !builtin_arg_in_range(l, who, &at2, a->v.loc)) {
            ok = false;
            continue;
        }
        ir_attrs_set(l->a, out, at2);
    }
    if (!ok)
        return false;
    for (int k = 0; k < s->n; k++)
        if (!s->v[k].has_default && !s->v[k].optional && !ir_attrs_get(out, s->v[k].name)) {
            err(l, callee, "%s: missing %s '%s'", who, noun, s->v[k].name);
            ok = false;
        }
    ir_attrs_fill_defaults(l->a, out, s);
    /* Schema order, so that equivalent calls print the same IR. */
    AttrList sorted = {arena_alloc(l->a, (size_t)out->n * sizeof(Attr) + 1), 0};
    for (int k = 0; k < s->n; k++) {
        const Attr *at = ir_attrs_get(out, s->v[k].name);
        if (at)
            sorted.v[sorted.n++] = *at;
    }
    check(sorted.n == out->n);
    *out = sorted;
    return ok;
}

/* Builtin tables' schemas, parsed once (ir_op_schema does the same for ops). */
static const AttrSchema *builtin_schema(const BuiltinInfo *table, int i)
{
    static const AttrSchema *optim[OPTIM_COUNT], *sched[SCHED_COUNT], *init[INIT_COUNT];
    const AttrSchema **slot = table == optim_info   ? &optim[i]
                              : table == sched_info ? &sched[i]
                                                    : &init[i];
    if (!*slot)
        *slot = ir_schema_parse(table[i].attrs);
    return *slot;
}

static const char *const *builtin_names(L *l, const BuiltinInfo *table, int n)
{
    const char **c = arena_alloc(l->a, (size_t)n * sizeof *c);
    for (int i = 0; i < n; i++)
        c[i] = table[i].text;
    return c;
}

/* OPT(args), SCHED(args), INIT(args): the table index and its attributes. */
static int builtin_call(L *l, Frame *f, const Expr *e, const BuiltinInfo *table, int n,
                        const char *what, AttrList *out)
{
    if (!e)
        return -1;
    const char *name = e->kind == E_CALL ? e->call.callee : e->kind == E_NAME ? e->name : NULL;
    if (!name) {
        err(l, e->loc, "expected %s call", what);
        return -1;
    }
    Loc callee = e->kind == E_CALL ? e->call.callee_loc : e->loc;
    int i = ir_builtin_lookup(table, n, name);
    EArg *args = e->kind == E_CALL ? eval_args(l, f, e->call.args, e->call.nargs) : NULL;
    if (i < 0) {
        err(l, callee, "unknown %s '%s'%s", what, name,
            suggest(l, name, builtin_names(l, table, n), n));
        return -1;
    }
    int nargs = e->kind == E_CALL ? e->call.nargs : 0;
    if (!match_attrs(l, name, "argument", builtin_schema(table, i), args, nargs, 0, callee, out))
        return -1;
    return i;
}

/* ---- calls ---------------------------------------------------------------------- */

static void exec_block(L *l, Frame *f, Stmt *const *body, int n);

static const char *const *call_candidates(L *l, int *n)
{
    const char **c = arena_alloc(l->a, (size_t)(l->defs.n + OP_COUNT) * sizeof *c);
    int k = 0;
    for (int i = 0; i < l->defs.n; i++)
        c[k++] = l->defs.v[i].def->name;
    for (int i = 0; i < OP_COUNT; i++)
        if (!(op_info[i].flags & OPF_INTERNAL))
            c[k++] = op_info[i].text;
    *n = k;
    return c;
}

static Value call_def(L *l, Frame *f, const DefEntry *de, const Expr *e)
{
    const Def *d = de->def;
    Loc callee = e->call.callee_loc;
    EArg *args = eval_args(l, f, e->call.args, e->call.nargs);
    bool bad = false;
    for (int i = 0; i < e->call.nargs; i++)
        if (args[i].name) {
            err(l, args[i].name_loc, "'%s' is a def; defs take positional arguments only", d->name);
            bad = true;
        }
    if (bad)
        return poison;
    if (e->call.nargs != d->nparams) {
        if (err(l, callee, "%s expects %d argument%s, got %d", d->name, d->nparams,
                d->nparams == 1 ? "" : "s", e->call.nargs))
            diag_note(d->loc, "'%s' is defined here", d->name);
        return poison;
    }
    for (int i = 0; i < l->depth; i++)
        if (l->stack[i] == d) {
            if (err(l, callee, "recursive call of '%s'", d->name))
                diag_note(d->loc, "defs are expanded inline, so recursion cannot terminate");
            return poison;
        }
    if (l->depth == MAX_CALL_DEPTH) {
        err(l, callee, "defs nested more than %d calls deep", MAX_CALL_DEPTH);
        return poison;
    }
    if (de->bad || !spend(l, callee))
        return poison;
    Frame *g = frame_new(l, d);
    for (int i = 0; i < d->nparams; i++)
        if (d->params[i])
            bind(l, g, d->params[i], B_VALUE, args[i].v, d->param_locs[i], NULL);
    l->stack[l->depth++] = d;
    exec_block(l, g, d->body, d->nbody);
    l->depth--;
    CallRec rec = {d->name, callee, g->named.v, g->named.n};
    vec_push(l->a, &f->calls, rec);
    if (!g->returned)
        return poison;
    Value v = g->ret;
    v.loc = callee;
    return v;
}

/* batch_norm's running statistics: state nodes named in the current frame. */
static void add_runstats(L *l, Frame *f, Node **in, Loc loc)
{
    const char *mean = "running_mean", *var = "running_var";
    for (int k = 1; ns_get(&f->names, mean) >= 0 || ns_get(&f->names, var) >= 0; k++) {
        mean = arena_printf(l->a, "running_mean_%d", k);
        var = arena_printf(l->a, "running_var_%d", k);
    }
    Shape none = {0};
    in[0] = ir_state(l->g, mean, DT_UNKNOWN, none, INIT_ZEROS, loc);
    in[1] = ir_state(l->g, var, DT_UNKNOWN, none, INIT_ONES, loc);
    add_named(l, f, in[0], mean, loc);
    add_named(l, f, in[1], var, loc);
}

static Value call_op(L *l, Frame *f, Op op, const Expr *e)
{
    const OpInfo *oi = &op_info[op];
    Loc callee = e->call.callee_loc;
    EArg *args = eval_args(l, f, e->call.args, e->call.nargs);
    bool runstats = oi->flags & OPF_RUNSTATS;
    int want = oi->arity < 0 ? 1 : runstats ? oi->arity - 2 : oi->arity;
    int npos = 0;
    for (int i = 0; i < e->call.nargs; i++)
        npos += !args[i].name;
    if (npos < want) {
        err(l, callee, "%s expects %d tensor argument%s, got %d", oi->text, want,
            want == 1 ? "" : "s", npos);
        return poison;
    }
    Vec(Node *) in = {0};
    bool ok = true;
    char buf[64], what[80];
    for (int i = 0; i < want; i++) {
        Value v = args[i].v;
        if (oi->arity < 0) {
            if (v.kind == V_POISON) {
                ok = false;
            } else if (v.kind != V_LIST || v.n == 0) {
                err(l, v.loc,
                    "%s: the first argument must be a non-empty list of tensors "
                    "(got %s)",
                    oi->text, v.kind == V_LIST ? "an empty list" : vdesc(v, buf, sizeof buf));
                ok = false;
            } else {
                for (int j = 0; j < v.n; j++) {
                    snprintf(what, sizeof what, "%s, element %d", oi->text, j + 1);
                    Node *x = as_node(l, v.elems[j], what);
                    if (x)
                        vec_push(l->a, &in, x);
                    else
                        ok = false;
                }
            }
            continue;
        }
        snprintf(what, sizeof what, "%s, argument %d", oi->text, i + 1);
        Node *x = as_node(l, v, what);
        if (x)
            vec_push(l->a, &in, x);
        else
            ok = false;
    }
    AttrList attrs = {0};
    if (!match_attrs(l, oi->text, "attribute", ir_op_schema(op), args, e->call.nargs, want, callee,
                     &attrs) ||
        !ok)
        return poison;
    if (runstats) {
        Node *st[2];
        add_runstats(l, f, st, callee);
        vec_push(l->a, &in, st[0]);
        vec_push(l->a, &in, st[1]);
    }
    Node *n = ir_node_new(l->g, op, in.v, in.n, callee);
    n->attrs = attrs;
    return tensor(n, callee);
}

static Value call(L *l, Frame *f, const Expr *e)
{
    const char *name = e->call.callee;
    int d = ns_get(&l->def_names, name);
    if (d >= 0)
        return call_def(l, f, &l->defs.v[d], e);
    Op op = ir_op_lookup(name);
    if (op != OP_COUNT && !(op_info[op].flags & OPF_INTERNAL))
        return call_op(l, f, op, e);
    int n;
    const char *const *c = call_candidates(l, &n);
    err(l, e->call.callee_loc, "unknown function '%s'%s", name, suggest(l, name, c, n));
    /* Still look at the arguments, for their own errors. */
    eval_args(l, f, e->call.args, e->call.nargs);
    return poison;
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
        err(l, t->loc, "tensors have at most %d dimensions (got %d)", IR_MAX_RANK, t->ndims);
        return false;
    }
    bool ok = true;
    char buf[64];
    for (int i = 0; i < t->ndims; i++) {
        Value v = eval(l, f, t->dims[i]);
        if (v.kind == V_POISON) {
            ok = false;
        } else if (v.kind == V_NUM && v.is_int && v.i >= 1) {
            s->d[i] = (Dim){v.i, false};
        } else if (v.kind == V_DIM && v.dim.n >= 1 && allow_batch) {
            s->d[i] = v.dim;
        } else if (v.kind == V_DIM && v.dim.n >= 1) {
            err(l, v.loc, "parameter shapes cannot depend on the batch size");
            ok = false;
        } else {
            err(l, v.loc, "dimension must be a positive integer (got %s)",
                v.kind == V_DIM ? "a negative multiple of the batch size"
                                : vdesc(v, buf, sizeof buf));
            ok = false;
        }
    }
    s->rank = t->ndims;
    return ok;
}

static void exec_param(L *l, Frame *f, const Stmt *st)
{
    DType dt;
    Shape s;
    bool ok = eval_type(l, f, st->type, false, &dt, &s);
    int init = s.rank == 1 || s.rank == 0 ? INIT_ZEROS : INIT_XAVIER_UNIFORM;
    AttrList al = {0};
    if (st->value) {
        init = builtin_call(l, f, st->value, init_info, INIT_COUNT, "initializer", &al);
        ok &= init >= 0;
    } else {
        ir_attrs_fill_defaults(l->a, &al, builtin_schema(init_info, init));
    }
    if (!ok) {
        bind(l, f, st->name, B_PARAM, poison, st->name_loc, st);
        return;
    }
    const AttrSchema *sch = builtin_schema(init_info, init);
    double args[16];
    int nargs = 0;
    for (int i = 0; i < sch->n && nargs < countof(args); i++) {
        const Attr *at = ir_attrs_get(&al, sch->v[i].name);
        if (!at)
            continue;
        args[nargs++] = at->kind == AK_FLOAT  ? at->f
                        : at->kind == AK_INT  ? (double)at->i
                        : at->kind == AK_BOOL ? at->b
                                              : 0;
    }
    const char *rel = loop_name(l, f, st->name);
    Node *n = ir_param(l->g, rel, dt, s, (Init)init, nargs ? args : NULL, nargs, st->frozen,
                       st->name_loc);
    if (bind(l, f, st->name, B_PARAM, tensor(n, st->name_loc), st->name_loc, st))
        add_named(l, f, n, rel, st->name_loc);
}

static void exec_input(L *l, Frame *f, const Stmt *st)
{
    DType dt;
    Shape s;
    if (!eval_type(l, f, st->type, true, &dt, &s)) {
        bind(l, f, st->name, B_INPUT, poison, st->name_loc, st);
        return;
    }
    Node *n = ir_input(l->g, st->name, dt, s, st->name_loc);
    if (bind(l, f, st->name, B_INPUT, tensor(n, st->name_loc), st->name_loc, st))
        add_named(l, f, n, st->name, st->name_loc);
}

static void exec_let(L *l, Frame *f, const Stmt *st)
{
    Value v = eval(l, f, st->value);
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
        err(l, v.loc, "'let %s' must be a compile-time number (got %s)", st->name,
            vdesc(v, buf, sizeof buf));
        v = poison;
    }
    bind(l, f, st->name, B_LET, v, st->name_loc, st);
}

static void exec_batch(L *l, Frame *f, const Stmt *st)
{
    Value v = eval(l, f, st->value);
    char buf[64];
    if (l->have_batch) {
        if (err(l, st->loc, "a second batch statement; a model has at most one"))
            diag_note(l->batch_loc, "the first batch statement is here");
        return;
    }
    l->have_batch = true;
    l->batch_loc = st->loc;
    if (v.kind != V_POISON && !(v.kind == V_NUM && v.is_int && v.i >= 1 && v.i <= MAX_BATCH))
        err(l, v.loc, "the batch size bound must be an integer from 1 to %d (got %s)", MAX_BATCH,
            vdesc(v, buf, sizeof buf));
    else if (v.kind == V_NUM)
        l->g->max_batch = v.i;
    l->g->batch = st->name;
    bind(l, f, st->name, B_BATCH, (Value){.kind = V_DIM, .dim = {1, true}}, st->name_loc, st);
}

static void exec_output(L *l, Frame *f, const Stmt *st)
{
    Value v;
    char buf[64];
    if (st->value) {
        v = eval(l, f, st->value);
        bind(l, f, st->name, B_VALUE, v, st->name_loc, st);
    } else {
        Binding *b = lookup(f, st->name);
        if (!b) {
            Expr e = {.kind = E_NAME, .loc = st->name_loc, .name = st->name};
            v = eval_name(l, f, &e);
        } else {
            v = b->v;
            v.loc = st->name_loc;
        }
    }
    for (int i = 0; i < l->outputs.n; i++)
        if (strcmp(l->outputs.v[i].name, st->name) == 0) {
            if (err(l, st->name_loc, "output '%s' is already defined", st->name))
                diag_note(l->outputs.v[i].loc, "the first output '%s' is here", st->name);
            return;
        }
    vec_push(l->a, &l->outputs, ((Output){st->name, NULL, st->name_loc}));
    if (v.kind == V_POISON)
        return;
    if (v.kind != V_TENSOR) {
        err(l, st->name_loc, "output '%s' must be a tensor (got %s)", st->name,
            vdesc(v, buf, sizeof buf));
        return;
    }
    ir_output(l->g, st->name, v.node, st->name_loc);
}

static void exec_train(L *l, Frame *f, const Stmt *st)
{
    static const char *const opts[] = {"clip_norm", "schedule"};
    char buf[64];
    Train *t = arena_alloc(l->a, sizeof *t);
    t->loc = st->loc;
    t->sched = SCHED_CONSTANT;
    bool ok = true;
    Binding *b = lookup(f, st->name);
    Value loss = poison;
    if (!b) {
        Expr e = {.kind = E_NAME, .loc = st->name_loc, .name = st->name};
        eval_name(l, f, &e);
        ok = false;
    } else {
        loss = b->v;
        if (loss.kind == V_POISON) {
            ok = false;
        } else if (loss.kind != V_TENSOR) {
            err(l, st->name_loc, "train: '%s' must be a tensor (got %s)", st->name,
                vdesc(loss, buf, sizeof buf));
            ok = false;
        }
    }
    int o = builtin_call(l, f, st->value, optim_info, OPTIM_COUNT, "optimizer", &t->optim_args);
    ok &= o >= 0;
    if (!st->value)
        ok = false;
    bool seen[2] = {false, false};
    for (int i = 0; i < st->nopts; i++) {
        const Arg *a = &st->opts[i];
        if (!a->name)
            continue;
        int k = strcmp(a->name, "clip_norm") == 0 ? 0 : strcmp(a->name, "schedule") == 0 ? 1 : -1;
        if (k < 0) {
            err(l, a->name_loc, "unknown train option '%s'%s", a->name,
                suggest(l, a->name, opts, 2));
            ok = false;
            continue;
        }
        if (seen[k]) {
            err(l, a->name_loc, "train: '%s' is given twice", a->name);
            ok = false;
            continue;
        }
        seen[k] = true;
        if (k == 0) {
            Value v = eval(l, f, a->value);
            if (v.kind == V_NUM && v.f > 0 && isfinite(v.f)) {
                t->has_clip = true;
                t->clip_norm = v.f;
            } else {
                if (v.kind != V_POISON)
                    err(l, v.loc, "clip_norm must be a positive number (got %s)",
                        vdesc(v, buf, sizeof buf));
                ok = false;
            }
        } else {
            int s =
                builtin_call(l, f, a->value, sched_info, SCHED_COUNT, "schedule", &t->sched_args);
            if (s < 0)
                ok = false;
            else
                t->sched = (Sched)s;
        }
    }
    if (!seen[1])
        ir_attrs_fill_defaults(l->a, &t->sched_args, builtin_schema(sched_info, SCHED_CONSTANT));
    if (l->g->train) {
        if (err(l, st->loc, "a second train statement; a model has at most one"))
            diag_note(l->g->train->loc, "the first train statement is here");
        return;
    }
    if (!ok) {
        /* Keep a placeholder so a second train statement is still reported. */
        t->loss = NULL;
        l->g->train = t;
        return;
    }
    t->optim = (Optim)o;
    t->loss = loss.node;
    l->g->train = t;
}

static void exec_assign(L *l, Frame *f, const Stmt *st)
{
    Value v = eval(l, f, st->value);
    bind(l, f, st->name, B_VALUE, v, st->name_loc, st);
}

static void exec_slice_assign(L *l, Frame *f, const Stmt *st)
{
    Value v = eval(l, f, st->value);
    Binding *b = lookup(f, st->name);
    char buf[64];
    if (!b) {
        Expr e = {.kind = E_NAME, .loc = st->name_loc, .name = st->name};
        eval_name(l, f, &e);
        slice_attrs(l, f, NULL, st->items, st->nitems, st->loc);
        return;
    }
    Value cur = b->v;
    if (b->kind != B_VALUE) {
        bind(l, f, st->name, B_VALUE, poison, st->name_loc, st);
        return;
    }
    if (cur.kind == V_POISON || v.kind == V_POISON) {
        slice_attrs(l, f, NULL, st->items, st->nitems, st->loc);
        b->v = poison;
        return;
    }
    if (cur.kind != V_TENSOR) {
        err(l, st->name_loc, "cannot index '%s': it is %s, not a tensor", st->name,
            vdesc(cur, buf, sizeof buf));
        b->v = poison;
        return;
    }
    Node *x = as_node(l, v, "slice assignment");
    if (!x) {
        b->v = poison;
        return;
    }
    Node *n = ir_binary(l->g, OP_SLICE_UPDATE, cur.node, x, st->name_loc);
    b->v = slice_attrs(l, f, n, st->items, st->nitems, st->loc) ? tensor(n, st->name_loc) : poison;
}

static void exec_for(L *l, Frame *f, const Stmt *st)
{
    Value lo = eval(l, f, st->lo), hi = eval(l, f, st->hi);
    name_calls(l, f, st->name, st->name_loc);
    int64_t a = 0, b = 0;
    bool ok = int_const(l, lo, "a loop bound", &a);
    ok &= int_const(l, hi, "a loop bound", &b);
    if (!ok || !st->name)
        return;
    if (lookup(f, st->name)) {
        Binding *pb = lookup(f, st->name);
        if (err(l, st->name_loc, "loop variable '%s' shadows an existing name", st->name) &&
            pb->loc.line > 0)
            diag_note(pb->loc, "'%s' is defined here", st->name);
        return;
    }
    int idx = f->scope.n;
    Binding lb = {st->name, B_LOOP, poison, st->name_loc, st, false};
    vec_push(l->a, &f->scope, lb);
    for (int64_t i = a; i < b && !l->stop; i++) {
        if (!spend(l, st->loc))
            break;
        f->scope.v[idx].v = num_int(i, st->name_loc);
        vec_push(l->a, &f->loops, i);
        exec_block(l, f, st->body, st->nbody);
        f->loops.n--;
    }
    /* The loop variable goes out of scope; names bound in the body stay. */
    memmove(&f->scope.v[idx], &f->scope.v[idx + 1],
            (size_t)(f->scope.n - idx - 1) * sizeof *f->scope.v);
    f->scope.n--;
}

static void exec_stmt(L *l, Frame *f, const Stmt *st)
{
    if (!st || l->stop)
        return;
    if (!spend(l, st->loc))
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
    case S_TRAIN: exec_train(l, f, st); break;
    case S_FOR: exec_for(l, f, st); return;
    case S_RETURN:
        name = NULL;
        f->ret = eval(l, f, st->value);
        f->returned = true;
        break;
    }
    name_calls(l, f, name, st->name_loc);
}

static void exec_block(L *l, Frame *f, Stmt *const *body, int n)
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

static bool check_body(L *l, Stmt *const *body, int n, const Def *d, bool in_loop)
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
                err(l, st->loc, "'%s' is only allowed in the model, not inside a def",
                    stmt_word(st->kind));
                ok = false;
            } else if (in_loop) {
                err(l, st->loc, "'%s' cannot appear inside a for loop", stmt_word(st->kind));
                ok = false;
            }
            break;
        case S_RETURN:
            if (!d) {
                err(l, st->loc, "return outside of a def");
                ok = false;
            } else if (in_loop) {
                err(l, st->loc,
                    "return cannot appear inside a for loop; it must be the last "
                    "statement of the def");
                ok = false;
            } else if (i + 1 < n) {
                err(l, body[i + 1] ? body[i + 1]->loc : st->loc, "statements after return");
                ok = false;
            }
            break;
        case S_FOR: ok &= check_body(l, st->body, st->nbody, d, true); break;
        default: break;
        }
    }
    if (d && !in_loop && (n == 0 || !body[n - 1] || body[n - 1]->kind != S_RETURN) && ok) {
        err(l, d->loc, "missing return at the end of def '%s'", d->name);
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
            int k = ns_get(&l->def_names, d->name);
            if (k >= 0) {
                if (err(l, d->loc, "redefinition of def '%s'", d->name))
                    diag_note(l->defs.v[k].def->loc, "the first definition of '%s' is here",
                              d->name);
                continue;
            }
            bool bad = false;
            for (int j = 0; j < d->nparams; j++)
                for (int m = 0; m < j; m++)
                    if (d->params[j] && d->params[m] && strcmp(d->params[j], d->params[m]) == 0) {
                        err(l, d->param_locs[j], "duplicate parameter '%s' of def '%s'",
                            d->params[j], d->name);
                        bad = true;
                    }
            ns_put(l->a, &l->def_names, d->name, l->defs.n);
            vec_push(l->a, &l->defs, ((DefEntry){d, bad}));
        }
    }
    for (int i = 0; i < l->defs.n; i++) {
        const Def *d = l->defs.v[i].def;
        if (!check_body(l, d->body, d->nbody, d, false))
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
    check_body(l, m->body, m->nbody, NULL, false);
    l->model = frame_new(l, NULL);
    l->model_ast = m;
    exec_block(l, l->model, m->body, m->nbody);
    for (int i = 0; i < ndefs; i++)
        if (!l->define_used[i] && defs[i].name)
            diag_warning((Loc){0}, "-D %s: the model has no 'let %s'", defs[i].name, defs[i].name);
    if (diag_errors() > start)
        return NULL;
    return l->g;
}
