/*
 * The op table, attribute schemas, the graph builder and the verifier.
 */
#include "ir.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define OP(name, text, arity, kind, flags, attrs, shape, grad) {text, arity, kind, flags, attrs},
#include "ops.def"
#undef OP
};

const BuiltinInfo optim_info[OPTIM_COUNT] = {
#define OPTIM(name, text, attrs) {text, attrs},
#include "optim.def"
#undef OPTIM
};

const BuiltinInfo sched_info[SCHED_COUNT] = {
#define SCHED(name, text, attrs) {text, attrs},
#include "optim.def"
#undef SCHED
};

const BuiltinInfo init_info[INIT_COUNT] = {
#define INIT(name, text, attrs) {text, attrs},
#include "optim.def"
#undef INIT
};

Op ir_op_lookup(const char *text)
{
    for (int i = 0; i < OP_COUNT; i++)
        if (strcmp(op_info[i].text, text) == 0)
            return (Op)i;
    return OP_COUNT;
}

int ir_builtin_lookup(const BuiltinInfo *table, int n, const char *text)
{
    for (int i = 0; i < n; i++)
        if (strcmp(table[i].text, text) == 0)
            return i;
    return -1;
}

/* Schemas are parsed on first use and kept in malloc'd memory for the life
 * of the process; they are immutable after parsing. */

static char *xstrndup(const char *s, size_t n)
{
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static bool parse_default(AttrSpec *sp, const char *text)
{
    Attr *d = &sp->def;
    d->name = sp->name;
    char *end;
    switch (sp->kind) {
    case AK_INT:
        d->kind = AK_INT;
        d->i = strtoll(text, &end, 10);
        return *end == 0;
    case AK_FLOAT:
        d->kind = AK_FLOAT;
        d->f = strtod(text, &end);
        return *end == 0;
    case AK_BOOL:
        d->kind = AK_BOOL;
        d->b = strcmp(text, "true") == 0;
        return d->b || strcmp(text, "false") == 0;
    case AK_STR:
        d->kind = AK_STR;
        d->s = xstrndup(text, strlen(text));
        return true;
    case AK_ENUM:
        d->kind = AK_STR;
        d->s = xstrndup(text, strlen(text));
        for (int i = 0; i < sp->nchoices; i++)
            if (strcmp(sp->choices[i], text) == 0)
                return true;
        return false;
    case AK_INTS: {
        /* a lone integer default, stored as a one-element list */
        d->kind = AK_INTS;
        d->ints.v = xcalloc(1, sizeof(Dim));
        d->ints.v[0].n = strtoll(text, &end, 10);
        d->ints.n = 1;
        return *end == 0;
    }
    case AK_FLOATS:
        return false;
    }
    return false;
}

const AttrSchema *ir_schema_parse(const char *text)
{
    AttrSchema *s = xcalloc(1, sizeof *s);
    int cap = 0;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        /* enum choices contain no commas, so a plain split is enough */
        char *item = xstrndup(p, (size_t)(end - p));
        if (s->n == cap) {
            cap = cap ? 2 * cap : 4;
            s->v = xrealloc(s->v, (size_t)cap * sizeof *s->v);
        }
        AttrSpec *sp = &s->v[s->n++];
        memset(sp, 0, sizeof *sp);
        char *colon = strchr(item, ':');
        if (!colon)
            die("bad schema item '%s' in \"%s\"", item, text);
        *colon = 0;
        sp->name = item;
        char *kind = colon + 1;
        char *deflt = NULL;
        size_t klen = strlen(kind);
        if (klen && kind[klen - 1] == '?') {
            sp->optional = true;
            kind[klen - 1] = 0;
        } else {
            char *eq = strchr(kind, '=');
            if (strchr(kind, '{'))
                eq = strchr(strchr(kind, '}') ? strchr(kind, '}') : kind, '=');
            if (eq) {
                *eq = 0;
                deflt = eq + 1;
                sp->has_default = true;
            }
        }
        bool words = strncmp(kind, "ints{", 5) == 0;
        if (kind[0] == '{' || words) {
            sp->kind = words ? AK_INTS : AK_ENUM;
            char *q = strchr(kind, '{') + 1;
            for (;;) {
                char *bar = q + strcspn(q, "|}");
                char stop = *bar;
                if (sp->nchoices == countof(sp->choices))
                    die("too many enum choices in \"%s\"", text);
                sp->choices[sp->nchoices++] = xstrndup(q, (size_t)(bar - q));
                if (stop != '|')
                    break;
                q = bar + 1;
            }
        } else if (strcmp(kind, "int") == 0) {
            sp->kind = AK_INT;
        } else if (strcmp(kind, "float") == 0) {
            sp->kind = AK_FLOAT;
        } else if (strcmp(kind, "bool") == 0) {
            sp->kind = AK_BOOL;
        } else if (strcmp(kind, "str") == 0) {
            sp->kind = AK_STR;
        } else if (strcmp(kind, "ints") == 0) {
            sp->kind = AK_INTS;
        } else if (strcmp(kind, "floats") == 0) {
            sp->kind = AK_FLOATS;
        } else {
            die("bad attribute kind '%s' in \"%s\"", kind, text);
        }
        if (deflt && !parse_default(sp, deflt))
            die("bad default '%s' in \"%s\"", deflt, text);
        p = *end ? end + 1 : end;
    }
    return s;
}

const AttrSchema *ir_op_schema(Op op)
{
    static const AttrSchema *cache[OP_COUNT];
    check(op >= 0 && op < OP_COUNT);
    if (!cache[op])
        cache[op] = ir_schema_parse(op_info[op].attrs);
    return cache[op];
}

int ir_schema_find(const AttrSchema *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return i;
    return -1;
}

/* Attributes */

static Attr attr_copy(Arena *a, Attr at)
{
    at.name = arena_strdup(a, at.name);
    switch (at.kind) {
    case AK_STR:
    case AK_ENUM:
        at.kind = AK_STR;
        at.s = arena_strdup(a, at.s);
        break;
    case AK_INTS: {
        Dim *v = arena_alloc(a, (size_t)at.ints.n * sizeof *v + 1);
        if (at.ints.n)
            memcpy(v, at.ints.v, (size_t)at.ints.n * sizeof *v);
        at.ints.v = v;
        break;
    }
    case AK_FLOATS: {
        double *v = arena_alloc(a, (size_t)at.floats.n * sizeof *v + 1);
        if (at.floats.n)
            memcpy(v, at.floats.v, (size_t)at.floats.n * sizeof *v);
        at.floats.v = v;
        break;
    }
    default:
        break;
    }
    return at;
}

void ir_attrs_set(Arena *a, AttrList *l, Attr at)
{
    at = attr_copy(a, at);
    for (int i = 0; i < l->n; i++) {
        if (strcmp(l->v[i].name, at.name) == 0) {
            l->v[i] = at;
            return;
        }
    }
    l->v = arena_realloc(a, l->v, (size_t)l->n * sizeof *l->v, (size_t)(l->n + 1) * sizeof *l->v);
    l->v[l->n++] = at;
}

AttrList ir_attrs_without(Arena *a, AttrList l, const char *name)
{
    Attr *v = arena_alloc(a, sizeof *v * (size_t)(l.n > 0 ? l.n : 1));
    int k = 0;
    for (int i = 0; i < l.n; i++)
        if (strcmp(l.v[i].name, name) != 0)
            v[k++] = l.v[i];
    return (AttrList){v, k};
}

const Attr *ir_attrs_get(const AttrList *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

void ir_attrs_fill_defaults(Arena *a, AttrList *l, const AttrSchema *s)
{
    for (int i = 0; i < s->n; i++)
        if (s->v[i].has_default && !ir_attrs_get(l, s->v[i].name))
            ir_attrs_set(a, l, s->v[i].def);
}

void ir_set_int(Graph *g, Node *n, const char *name, int64_t v)
{
    ir_attrs_set(g->arena, &n->attrs, (Attr){.name = name, .kind = AK_INT, .i = v});
}

void ir_set_float(Graph *g, Node *n, const char *name, double v)
{
    ir_attrs_set(g->arena, &n->attrs, (Attr){.name = name, .kind = AK_FLOAT, .f = v});
}

void ir_set_bool(Graph *g, Node *n, const char *name, bool v)
{
    ir_attrs_set(g->arena, &n->attrs, (Attr){.name = name, .kind = AK_BOOL, .b = v});
}

void ir_set_str(Graph *g, Node *n, const char *name, const char *v)
{
    ir_attrs_set(g->arena, &n->attrs, (Attr){.name = name, .kind = AK_STR, .s = v});
}

void ir_set_ints(Graph *g, Node *n, const char *name, const Dim *v, int nv)
{
    Attr at = {.name = name, .kind = AK_INTS};
    at.ints.v = (Dim *)v;
    at.ints.n = nv;
    ir_attrs_set(g->arena, &n->attrs, at);
}

void ir_set_floats(Graph *g, Node *n, const char *name, const double *v, int nv)
{
    Attr at = {.name = name, .kind = AK_FLOATS};
    at.floats.v = (double *)v;
    at.floats.n = nv;
    ir_attrs_set(g->arena, &n->attrs, at);
}

const Attr *ir_attr(const Node *n, const char *name) { return ir_attrs_get(&n->attrs, name); }

static const Attr *attr_must(const Node *n, const char *name, AttrKind kind)
{
    const Attr *a = ir_attr(n, name);
    if (!a || a->kind != kind)
        die("%s node %%%d: attribute '%s' missing or of the wrong kind", op_info[n->op].text,
            n->id, name);
    return a;
}

#define ATTR(name, text, kind) const AttrKey attr_key_##name = {#text, AK_##kind};
#include "attrs.def"
#undef ATTR

int64_t ir_attr_int(const Node *n, const char *name) { return attr_must(n, name, AK_INT)->i; }
double ir_attr_float(const Node *n, const char *name) { return attr_must(n, name, AK_FLOAT)->f; }
bool ir_attr_bool(const Node *n, const char *name) { return attr_must(n, name, AK_BOOL)->b; }
const char *ir_attr_str(const Node *n, const char *name) { return attr_must(n, name, AK_STR)->s; }
AttrInts ir_attr_ints(const Node *n, const char *name)
{
    return attr_must(n, name, AK_INTS)->ints;
}

AttrFloats ir_attr_floats(const Node *n, const char *name)
{
    return attr_must(n, name, AK_FLOATS)->floats;
}

bool ir_attr_has(const Node *n, const char *name, AttrKind kind)
{
    const Attr *a = ir_attr(n, name);
    if (a && a->kind != (kind == AK_ENUM ? AK_STR : kind))
        die("%s node %%%d: attribute '%s' of the wrong kind", op_info[n->op].text, n->id, name);
    return a != NULL;
}

/* Building */

Graph *ir_graph_new(Arena *a, const char *name)
{
    Graph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->name = arena_strdup(a, name ? name : "model");
    return g;
}

Node *ir_node_new(Graph *g, Op op, Node *const *in, int nin, Loc loc)
{
    check(op >= 0 && op < OP_COUNT);
    check(nin >= 0);
    Node *n = arena_alloc(g->arena, sizeof *n);
    n->op = op;
    n->loc = loc;
    n->nin = nin;
    n->in = arena_alloc(g->arena, (size_t)nin * sizeof *n->in + 1);
    for (int i = 0; i < nin; i++) {
        check(in[i] != NULL);
        n->in[i] = in[i];
    }
    n->id = g->nodes.n;
    vec_push(g->arena, &g->nodes, n);
    return n;
}

static Node *source(Graph *g, Op op, const char *name, DType t, Shape s, Loc loc)
{
    Node *n = ir_node_new(g, op, NULL, 0, loc);
    n->name = arena_strdup(g->arena, name);
    n->dtype = t;
    n->shape = s;
    return n;
}

Node *ir_input(Graph *g, const char *name, DType t, Shape s, Loc loc)
{
    return source(g, OP_INPUT, name, t, s, loc);
}

Node *ir_param(Graph *g, const char *name, DType t, Shape s, Init init, const double *args,
               int nargs, bool frozen, Loc loc)
{
    check(init >= 0 && init < INIT_COUNT);
    Node *n = source(g, OP_PARAM, name, t, s, loc);
    attr_set_init(g, n, init_info[init].text);
    if (nargs > 0)
        attr_set_args(g, n, args, nargs);
    attr_set_frozen(g, n, frozen);
    return n;
}

Node *ir_state(Graph *g, const char *name, DType t, Shape s, Init init, Loc loc)
{
    check(init >= 0 && init < INIT_COUNT);
    Node *n = source(g, OP_STATE, name, t, s, loc);
    attr_set_init(g, n, init_info[init].text);
    return n;
}

Node *ir_const(Graph *g, double value, Loc loc)
{
    Node *n = ir_node_new(g, OP_CONST, NULL, 0, loc);
    attr_set_value(g, n, value);
    return n;
}

Node *ir_unary(Graph *g, Op op, Node *x, Loc loc) { return ir_node_new(g, op, &x, 1, loc); }

Node *ir_binary(Graph *g, Op op, Node *a, Node *b, Loc loc)
{
    Node *in[2] = {a, b};
    return ir_node_new(g, op, in, 2, loc);
}

void ir_output(Graph *g, const char *name, Node *n, Loc loc)
{
    Output o = {arena_strdup(g->arena, name), n, loc};
    vec_push(g->arena, &g->outputs, o);
}

int64_t ir_max_batch(const Graph *g)
{
    return g->batch && g->max_batch > 0 ? g->max_batch : 1;
}

int64_t ir_dim_max(const Graph *g, Dim d)
{
    return d.batch ? d.n * ir_max_batch(g) : d.n;
}

bool ir_index_operand(const Node *n, int *operand, int64_t *hi)
{
    if (!(op_info[n->op].flags & OPF_INDEX))
        return false;
    if (ir_recurrent_packed(n->op) || n->op == OP_REVERSE_SEQUENCE) {
        /* the lengths, 0..T */
        *operand = n->nin - 1;
        *hi = n->in[0]->shape.d[1].n + 1;
        return true;
    }
    switch (op_info[n->op].kind) {
    case K_SEQ:
        *operand = 0;
        *hi = n->in[1]->shape.d[0].n;
        return true;
    case K_LOSS: {
        const Shape *s = &n->in[0]->shape;
        if (n->in[1]->dtype != DT_I32) /* cross_entropy's soft targets */
            return false;
        *operand = 1;
        *hi = s->d[s->rank == 1 ? 0 : 1].n;
        return true;
    }
    case K_SELECT:
        *operand = 1;
        *hi = n->in[0]->shape.d[ir_attr_int(n, "axis")].n;
        return true;
    default: die("%s: OPF_INDEX without an index rule for its kind", op_info[n->op].text);
    }
}

Op ir_recurrent_cell(Op op)
{
    switch (op) {
    case OP_RNN:
    case OP_RNN_GRAD:
    case OP_RNN_PACKED:
    case OP_RNN_PACKED_GRAD: return OP_RNN;
    case OP_LSTM:
    case OP_LSTM_GRAD:
    case OP_LSTM_PACKED:
    case OP_LSTM_PACKED_GRAD: return OP_LSTM;
    case OP_GRU:
    case OP_GRU_GRAD:
    case OP_GRU_PACKED:
    case OP_GRU_PACKED_GRAD: return OP_GRU;
    default: return OP_COUNT;
    }
}

bool ir_recurrent_packed(Op op)
{
    return op == OP_RNN_PACKED || op == OP_LSTM_PACKED || op == OP_GRU_PACKED ||
           op == OP_RNN_PACKED_GRAD || op == OP_LSTM_PACKED_GRAD || op == OP_GRU_PACKED_GRAD;
}

int ir_recurrent_state_rows(const Node *n)
{
    if (!ir_recurrent_packed(n->op) && !attr_return_state(n))
        return 0;
    return ir_recurrent_cell(n->op) == OP_LSTM ? 2 : 1;
}

bool ir_recurrent_backward(Op op)
{
    return op == OP_RNN_GRAD || op == OP_LSTM_GRAD || op == OP_GRU_GRAD ||
           op == OP_RNN_PACKED_GRAD || op == OP_LSTM_PACKED_GRAD || op == OP_GRU_PACKED_GRAD;
}

bool ir_recurrent_grad_reserved(const Node *d)
{
    if (!ir_recurrent_backward(d->op) || d->nin < 1)
        return false;
    const Node *y = d->in[0];
    Op cell = ir_recurrent_cell(d->op);
    if (cell == OP_RNN || ir_recurrent_backward(y->op) || ir_recurrent_cell(y->op) != cell ||
        ir_recurrent_packed(y->op) != ir_recurrent_packed(d->op) || y->nin != d->nin - 2)
        return false;
    for (int j = 0; j < y->nin; j++)
        if (d->in[2 + j] != y->in[j])
            return false;
    return true;
}

int64_t ir_recurrent_reserve(const Graph *g, const Node *n)
{
    Op cell = ir_recurrent_cell(n->op);
    if (cell != OP_LSTM && cell != OP_GRU)
        return 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *d = g->nodes.v[i];
        if (d->nin > 0 && d->in[0] == n && ir_recurrent_grad_reserved(d))
            return (cell == OP_LSTM ? 5 : 4) * n->shape.d[2].n;
    }
    return 0;
}

Node *ir_find_source(const Graph *g, const char *name)
{
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        if (n->name && op_info[n->op].kind == K_SOURCE && strcmp(n->name, name) == 0)
            return n;
    }
    return NULL;
}

bool ir_path_under(const char *name, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(name, prefix, n) == 0 && (name[n] == 0 || name[n] == '.');
}

bool ir_train_takes(const Train *t, const Node *p)
{
    if (t->prefixes.n == 0)
        return true;
    for (int i = 0; i < t->prefixes.n; i++)
        if (ir_path_under(p->name, t->prefixes.v[i].path))
            return true;
    return false;
}

int ir_train_count(const Graph *g)
{
    int n = 0;
    for (const Train *t = g->train; t; t = t->next)
        n++;
    return n;
}

/* Loops */

Graph *ir_body_new(const Graph *outer)
{
    Graph *b = ir_graph_new(outer->arena, outer->name);
    b->batch = outer->batch;
    b->max_batch = outer->max_batch;
    return b;
}

Node **ir_body_inputs(const Graph *body, int *count)
{
    Node **v = arena_alloc(body->arena, sizeof *v * ((size_t)body->nodes.n + 1));
    int k = 0;
    for (int i = 0; i < body->nodes.n; i++)
        if (body->nodes.v[i]->op == OP_INPUT)
            v[k++] = body->nodes.v[i];
    *count = k;
    return v;
}

LoopParts ir_loop_parts(const Node *loop)
{
    LoopParts p = {attr_trips(loop), (int)attr_carried(loop), (int)attr_stacked(loop),
                   (int)attr_scanned(loop), 0, (int)attr_saved(loop)};
    p.invariant = loop->nin - p.carried - p.stacked - p.scanned;
    return p;
}

void ir_loop_result_type(const Node *loop, int k, DType *t, Shape *s)
{
    LoopParts p = ir_loop_parts(loop);
    if (k < p.carried + p.stacked) {
        *t = loop->in[k]->dtype;
        *s = loop->in[k]->shape;
        return;
    }
    const Node *y = loop->body->outputs.v[k].node;
    check(y->shape.rank < IR_MAX_RANK);
    *t = y->dtype;
    s->rank = y->shape.rank + 1;
    s->d[0] = (Dim){p.trips, false};
    for (int i = 0; i < y->shape.rank; i++)
        s->d[i + 1] = y->shape.d[i];
}

Node *ir_node_copy(Graph *g, const Node *n, Node *const *in)
{
    Node *m = ir_node_new(g, n->op, in, n->nin, n->loc);
    for (int i = 0; i < n->attrs.n; i++)
        ir_attrs_set(g->arena, &m->attrs, n->attrs.v[i]);
    m->dtype = n->dtype;
    m->shape = n->shape;
    m->name = n->name;
    m->scope = n->scope;
    if (n->body)
        m->body = ir_body_copy(n->body);
    return m;
}

Graph *ir_body_copy(const Graph *body)
{
    Graph *b = ir_body_new(body);
    Node **map = arena_alloc(body->arena, sizeof *map * ((size_t)body->nodes.n + 1));
    Node *in[IR_MAX_RANK * 4];
    for (int i = 0; i < body->nodes.n; i++) {
        const Node *n = body->nodes.v[i];
        Node **v = n->nin <= countof(in) ? in : arena_alloc(body->arena, sizeof *v * (size_t)n->nin);
        for (int j = 0; j < n->nin; j++)
            v[j] = map[n->in[j]->id];
        map[i] = ir_node_copy(b, n, v);
    }
    for (int i = 0; i < body->outputs.n; i++) {
        const Output *o = &body->outputs.v[i];
        ir_output(b, o->name, map[o->node->id], o->loc);
    }
    return b;
}

/* Shapes and types */

const char *ir_dtype_name(DType t)
{
    switch (t) {
    case DT_F32: return "f32";
    case DT_F64: return "f64";
    case DT_I32: return "i32";
    case DT_F16: return "f16";
    case DT_BF16: return "bf16";
    default: return "?";
    }
}

DType ir_dtype_parse(const char *s)
{
    for (int t = DT_F32; t < DT_COUNT; t++)
        if (strcmp(s, ir_dtype_name((DType)t)) == 0)
            return (DType)t;
    return DT_UNKNOWN;
}

bool ir_dtype_is_float(DType t) { return t == DT_F32 || t == DT_F64; }

bool ir_dtype_is_half(DType t) { return t == DT_F16 || t == DT_BF16; }

Shape ir_shape_of(int rank, const int64_t *dims)
{
    check(rank >= 0 && rank <= IR_MAX_RANK);
    Shape s = {.rank = rank};
    for (int i = 0; i < rank; i++)
        s.d[i] = (Dim){dims[i], false};
    return s;
}

bool ir_dim_eq(Dim a, Dim b) { return a.n == b.n && a.batch == b.batch; }

bool ir_shape_eq(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (!ir_dim_eq(a->d[i], b->d[i]))
            return false;
    return true;
}

const char *ir_dim_str(Dim d, const char *batch, char *buf, size_t size)
{
    if (!batch)
        batch = "B";
    if (d.n == IR_NONE)
        snprintf(buf, size, "none");
    else if (!d.batch)
        snprintf(buf, size, "%" PRId64, d.n);
    else if (d.n == 1)
        snprintf(buf, size, "%s", batch);
    else
        snprintf(buf, size, "%s*%" PRId64, batch, d.n);
    return buf;
}

const char *ir_shape_str(const Shape *s, const char *batch, char *buf, size_t size)
{
    StrBuf b = {0};
    sb_putc(&b, '[');
    for (int i = 0; i < s->rank; i++) {
        char d[64];
        sb_printf(&b, "%s%s", i ? ", " : "", ir_dim_str(s->d[i], batch, d, sizeof d));
    }
    sb_putc(&b, ']');
    snprintf(buf, size, "%s", b.s);
    sb_free(&b);
    return buf;
}

/* Whole graphs */

void ir_graph_compact(Graph *g)
{
    int k = 0;
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i])
            g->nodes.v[k++] = g->nodes.v[i];
    g->nodes.n = k;
    for (int i = 0; i < k; i++)
        g->nodes.v[i]->id = i;
}

static bool attr_matches(const Attr *a, const AttrSpec *sp)
{
    switch (sp->kind) {
    case AK_INTS:
        if (a->kind == AK_INTS)
            return true;
        /* ints{a|b}: one of the words, until the shape rule replaces it */
        /* fall through */
    case AK_ENUM:
        if (a->kind != AK_STR)
            return false;
        for (int i = 0; i < sp->nchoices; i++)
            if (strcmp(sp->choices[i], a->s) == 0)
                return true;
        return false;
    default:
        return a->kind == sp->kind;
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Train.grads: empty, or one typed like its parameter for every
 * parameter of the objective, in graph order: of an unnamed objective
 * every trainable parameter its prefixes take, of a named one some of
 * them. */
static void verify_grads(const Graph *g, const Train *t)
{
    if (t->grads.n != t->params.n)
        die("verify: %d gradients for %d parameters", t->grads.n, t->params.n);
    if (t->params.n == 0)
        return;
    int k = 0;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *p = g->nodes.v[i];
        if (p->op != OP_PARAM || attr_frozen(p) || !ir_train_takes(t, p))
            continue;
        if (t->name && (k >= t->params.n || t->params.v[k] != p))
            continue;
        if (k >= t->params.n || t->params.v[k] != p)
            die("verify: the gradients do not list parameter '%s' in its place", p->name);
        const Node *d = t->grads.v[k++];
        if (!d || d->id < 0 || d->id >= g->nodes.n || g->nodes.v[d->id] != d)
            die("verify: the gradient of '%s' is not a node of the graph", p->name);
        if (d->dtype != DT_UNKNOWN && p->dtype != DT_UNKNOWN &&
            (d->dtype != p->dtype || !ir_shape_eq(&d->shape, &p->shape)))
            die("verify: the gradient of '%s' is not typed like it", p->name);
    }
    if (k != t->params.n)
        die("verify: the gradients list a parameter that is not trainable");
}

const char *ir_loop_problem(const Node *n)
{
    LoopParts p = ir_loop_parts(n);
    int nscan = p.stacked + p.scanned;
    const Graph *b = n->body;
    Arena *a = b->arena;
    if (p.trips < 1 || p.carried < 0 || p.stacked < 0 || p.scanned < 0 || p.saved < 0)
        return "trips must be positive and the counts not negative";
    /* bounded so that start + step * (trips - 1) cannot overflow */
    if (p.trips > INT32_MAX)
        return arena_printf(a, "%" PRId64 " trips: at most %d", p.trips, INT32_MAX);
    if (attr_carried(n) > n->nin || attr_stacked(n) > n->nin || attr_scanned(n) > n->nin)
        return arena_printf(a, "more carried, stacked or scanned values than the %d inputs",
                            n->nin);
    if (p.invariant < 0)
        return arena_printf(a, "%d inputs for %d carried, %d stacked and %d scanned values",
                            n->nin, p.carried, p.stacked, p.scanned);
    if (attr_scan_axis(n).n != nscan || attr_scan_start(n).n != nscan ||
        attr_scan_step(n).n != nscan)
        return arena_printf(a, "scan_axis, scan_start and scan_step need an entry for each "
                               "of the %d stacked and scanned values", nscan);
    for (int k = 0; k < nscan; k++) {
        Dim st = attr_scan_start(n).v[k], sp = attr_scan_step(n).v[k];
        if (st.batch || sp.batch || st.n < INT32_MIN || st.n > INT32_MAX || sp.n < INT32_MIN ||
            sp.n > INT32_MAX)
            return arena_printf(a, "scan %d: start and step must be integers within 32 bits", k);
    }
    int nin;
    ir_body_inputs(b, &nin);
    if (nin != p.carried + p.scanned + p.invariant)
        return arena_printf(a, "the body has %d inputs, wants %d", nin,
                            p.carried + p.scanned + p.invariant);
    if (b->outputs.n != p.carried + p.stacked + p.saved)
        return arena_printf(a, "the body has %d outputs, wants %d", b->outputs.n,
                            p.carried + p.stacked + p.saved);
    if (b->train)
        return "the body has a train statement";
    for (int i = 0; i < b->nodes.n; i++)
        if (b->nodes.v[i]->op == OP_PARAM || b->nodes.v[i]->op == OP_STATE)
            return arena_printf(a, "the body declares %s '%s'", op_info[b->nodes.v[i]->op].text,
                                b->nodes.v[i]->name);
    return NULL;
}

/* A loop against its counts (ir_loop_problem); the body is verified as a
 * graph of its own. */
static void verify_loop(const Node *n)
{
    const char *why = ir_loop_problem(n);
    if (why)
        die("verify: %%%d loop: %s", n->id, why);
    ir_verify(n->body);
}

void ir_verify(const Graph *g)
{
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        const OpInfo *oi = &op_info[n->op];
        if (n->id != i)
            die("verify: node at %d has id %d", i, n->id);
        if (oi->arity >= 0 && n->nin != oi->arity)
            die("verify: %%%d %s has %d inputs, wants %d", i, oi->text, n->nin, oi->arity);
        if (oi->arity < 0 && n->nin < 1)
            die("verify: %%%d %s has no inputs", i, oi->text);
        for (int j = 0; j < n->nin; j++) {
            const Node *x = n->in[j];
            if (!x || x->id < 0 || x->id >= i || g->nodes.v[x->id] != x)
                die("verify: %%%d %s: input %d is not an earlier node", i, oi->text, j);
        }
        if (n->fused) {
            const Node *f = n->fused;
            if (f->id <= i || f->id >= g->nodes.n || g->nodes.v[f->id] != f)
                die("verify: %%%d %s is fused into a node that is not a later node", i, oi->text);
            if (f->fused)
                die("verify: %%%d %s is fused into %%%d, which is fused itself", i, oi->text,
                    f->id);
            if (oi->kind == K_SOURCE)
                die("verify: %%%d %s is a source and cannot be fused", i, oi->text);
        }
        if (oi->kind == K_SOURCE && n->op != OP_CONST && !n->name)
            die("verify: %%%d %s has no name", i, oi->text);
        if (n->shape.rank < 0 || n->shape.rank > IR_MAX_RANK)
            die("verify: %%%d %s: rank %d", i, oi->text, n->shape.rank);
        if ((n->body != NULL) != (n->op == OP_LOOP))
            die("verify: %%%d %s %s a body", i, oi->text, n->body ? "has" : "has no");
        if (n->op == OP_LOOP)
            verify_loop(n);
        if (n->op == OP_LOOP_RESULT && n->in[0]->op != OP_LOOP)
            die("verify: %%%d loop_result of a %s", i, op_info[n->in[0]->op].text);
        const AttrSchema *s = ir_op_schema(n->op);
        for (int j = 0; j < n->attrs.n; j++) {
            int k = ir_schema_find(s, n->attrs.v[j].name);
            if (k < 0)
                die("verify: %%%d %s: unknown attribute '%s'", i, oi->text, n->attrs.v[j].name);
            if (!attr_matches(&n->attrs.v[j], &s->v[k]))
                die("verify: %%%d %s: attribute '%s' of the wrong kind", i, oi->text,
                    n->attrs.v[j].name);
        }
        for (int k = 0; k < s->n; k++)
            if (!s->v[k].optional && !ir_attr(n, s->v[k].name))
                die("verify: %%%d %s: attribute '%s' missing", i, oi->text, s->v[k].name);
    }
    /* Names are unique: sort them and compare neighbours (graphs unrolled
     * from long loops have many nodes, so no quadratic scan). */
    const char **names = xmalloc(((size_t)g->nodes.n + 1) * sizeof *names);
    int nnames = 0;
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->name)
            names[nnames++] = g->nodes.v[i]->name;
    qsort(names, (size_t)nnames, sizeof *names, cmp_names);
    for (int i = 1; i < nnames; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            die("verify: name '%s' used twice", names[i]);
    free(names);
    for (int i = 0; i < g->outputs.n; i++) {
        const Node *x = g->outputs.v[i].node;
        if (!x || x->id < 0 || x->id >= g->nodes.n || g->nodes.v[x->id] != x)
            die("verify: output '%s' is not a node of the graph", g->outputs.v[i].name);
    }
    for (const Train *t = g->train; t; t = t->next) {
        const Node *x = t->loss;
        if (!x || x->id < 0 || x->id >= g->nodes.n || g->nodes.v[x->id] != x)
            die("verify: the training loss is not a node of the graph");
        if (!t->name && (t != g->train || t->next))
            die("verify: an objective of several has no name");
        for (const Train *u = g->train; u != t; u = u->next)
            if (strcmp(u->name, t->name) == 0)
                die("verify: two objectives are named '%s'", t->name);
        verify_grads(g, t);
    }
}
