/*
 * The shape pass: infers every node's element type and shape and checks
 * every op's rules.
 *
 * The dispatch table is built from the shape column of ir/ops.def; the
 * rules live in one file per op family (shape_eltwise.c, shape_reduce.c,
 * shape_layout.c, shape_nn.c, shape_seq.c, shape_loss.c) and the source
 * rules here. The driver walks the nodes in order (inputs come first) and
 * keeps a per-node "failed" mark: a node with a failed input is skipped
 * silently and marked failed itself, so one mistake is reported once.
 * After a successful rule the driver checks that every dimension is >= 1
 * and that the tensor has at most 2^40 elements with the batch at its
 * maximum, so no later stage has to worry about overflow.
 *
 * The running statistics of batch_norm (OP_STATE) arrive untyped; the
 * batch_norm rule types them, and if it fails they are marked failed too.
 *
 * Rules are idempotent: canonicalized attributes are accepted again, so
 * the pass can run a second time over a graph that autodiff extended.
 */
#include "passes.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "shape.h"

typedef bool (*Rule)(Graph *g, Node *n);

static const Rule rules[OP_COUNT] = {
#define OP(name, text, arity, kind, flags, attrs, shape, grad) shape,
#include "ops.def"
#undef OP
};

/* Helpers shared by the rule files */

const char *shape_op(const Node *n)
{
    /* rnn(..., lengths = n) is rnn_packed: errors name what the user wrote */
    bool packed = n->op == OP_RNN_PACKED || n->op == OP_LSTM_PACKED || n->op == OP_GRU_PACKED;
    return op_info[packed ? ir_recurrent_cell(n->op) : n->op].text;
}

static const char *batch_name(const Graph *g) { return g->batch ? g->batch : "B"; }

const char *shape_fmt(Graph *g, const Shape *s)
{
    char buf[512];
    return arena_strdup(g->arena, ir_shape_str(s, batch_name(g), buf, sizeof buf));
}

const char *shape_fmt_dim(Graph *g, Dim d)
{
    char buf[64];
    return arena_strdup(g->arena, ir_dim_str(d, batch_name(g), buf, sizeof buf));
}

const char *shape_fmt_count(Graph *g, int64_t count, int k)
{
    const char *b = batch_name(g);
    if (k == 0)
        return arena_printf(g->arena, "%" PRId64, count);
    const char *bk = k == 1 ? b : arena_printf(g->arena, "%s^%d", b, k);
    if (count == 1)
        return bk;
    return arena_printf(g->arena, "%s*%" PRId64, bk, count);
}

bool shape_want_float(Node *n, const Node *x, const char *what)
{
    if (ir_dtype_is_float(x->dtype))
        return true;
    diag_error(n->loc, "%s: expects a floating-point %s%stensor, got %s", shape_op(n), what,
               *what ? " " : "", ir_dtype_name(x->dtype));
    return false;
}

DType shape_fill_dtype(const Node *n)
{
    return attr_has_dtype(n) ? ir_dtype_parse(attr_dtype(n)) : DT_F32;
}

/* A zeros, ones, one_hot, arange or eye whose element type is still
 * open: no dtype attribute, and no op has used it yet (pass_shape fixes it
 * after its first user). */
static bool open_fill(const Node *x)
{
    return (x->op == OP_ZEROS || x->op == OP_ONES || x->op == OP_ONE_HOT || x->op == OP_ARANGE ||
            x->op == OP_EYE) &&
           !attr_has_dtype(x);
}

static void fix_fill(Graph *g, Node *x, DType t)
{
    attr_set_dtype(g, x, ir_dtype_name(t));
    x->dtype = t;
}

bool shape_want_same_dtype(Graph *g, Node *n, const Node *a, const Node *b)
{
    if (a->dtype == b->dtype)
        return true;
    /* an open fill takes the other operand's type (not another open fill's) */
    if (open_fill(a) != open_fill(b)) {
        const Node *f = open_fill(a) ? a : b;
        fix_fill(g, g->nodes.v[f->id], f == a ? b->dtype : a->dtype);
        return true;
    }
    diag_error(n->loc, "%s: element types differ (%s vs %s)", shape_op(n), ir_dtype_name(a->dtype),
               ir_dtype_name(b->dtype));
    return false;
}

bool shape_want_rank(Graph *g, Node *n, const Node *x, int lo, int hi, const char *what)
{
    if (x->shape.rank >= lo && x->shape.rank <= hi)
        return true;
    diag_error(n->loc, "%s: expects %s, got %s", shape_op(n), what, shape_fmt(g, &x->shape));
    return false;
}

bool shape_want_static(Graph *g, Node *n, const Node *x, int i, const char *what)
{
    if (!x->shape.d[i].batch)
        return true;
    diag_error(n->loc, "%s: %s cannot be the batch dimension, got %s", shape_op(n), what,
               shape_fmt(g, &x->shape));
    return false;
}

bool shape_axis(Graph *g, Node *n, int64_t axis, const Shape *s, int rank, int64_t *out)
{
    if (axis >= -rank && axis < rank) {
        *out = axis < 0 ? axis + rank : axis;
        return true;
    }
    diag_error(n->loc, "%s: axis %" PRId64 " is out of range for %s (rank %d)", shape_op(n), axis,
               shape_fmt(g, s), s->rank);
    return false;
}

bool shape_ints(Node *n, const AttrKey *k, int64_t *out, int max, int *count)
{
    const char *attr = k->text;
    check(k->kind == AK_INTS);
    const Attr *a = ir_attr(n, attr);
    if (!a) {
        *count = -1;
        return true;
    }
    check(a->kind == AK_INTS);
    if (a->ints.n > max) {
        diag_error(n->loc, "%s: '%s' has %d elements, at most %d expected", shape_op(n), attr,
                   a->ints.n, max);
        return false;
    }
    for (int i = 0; i < a->ints.n; i++) {
        Dim d = a->ints.v[i];
        if (d.batch || d.n == IR_NONE) {
            diag_error(n->loc, "%s: '%s' must be a list of integers, got %s", shape_op(n), attr,
                       d.batch ? "a batch dimension" : "none");
            return false;
        }
        out[i] = d.n;
    }
    *count = a->ints.n;
    return true;
}

void shape_set_ints(Graph *g, Node *n, const AttrKey *k, const int64_t *v, int nv)
{
    check(k->kind == AK_INTS);
    Dim d[IR_MAX_RANK + 2];
    check(nv >= 0 && nv <= countof(d));
    for (int i = 0; i < nv; i++)
        d[i] = (Dim){v[i], false};
    ir_set_ints(g, n, k->text, d, nv);
}

bool shape_broadcast(Graph *g, Node *n, const Shape *a, const Shape *b, Shape *out)
{
    return shape_broadcast_in(g, n, a, b, out, a, b);
}

bool shape_broadcast_in(Graph *g, Node *n, const Shape *a, const Shape *b, Shape *out,
                        const Shape *shown_a, const Shape *shown_b)
{
    int r = a->rank > b->rank ? a->rank : b->rank;
    Shape s = {.rank = r};
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        Dim da = ia >= 0 ? a->d[ia] : (Dim){1, false};
        Dim db = ib >= 0 ? b->d[ib] : (Dim){1, false};
        if (ir_dim_eq(da, db) || (db.n == 1 && !db.batch)) {
            s.d[i] = da;
        } else if (da.n == 1 && !da.batch) {
            s.d[i] = db;
        } else {
            diag_error(n->loc, "%s: cannot broadcast %s with %s (%s and %s)", shape_op(n),
                       shape_fmt_dim(g, da), shape_fmt_dim(g, db), shape_fmt(g, shown_a),
                       shape_fmt(g, shown_b));
            return false;
        }
    }
    *out = s;
    return true;
}

bool shape_adopt_const(Node *n, Node *c, const Node *x)
{
    if (c->op != OP_CONST || x->op == OP_CONST)
        return true;
    if (x->dtype != DT_I32) {
        c->dtype = x->dtype;
        return true;
    }
    double v = attr_value(c);
    if (v != floor(v) || v < INT32_MIN || v > INT32_MAX) {
        diag_error(n->loc, "%s: the constant %g is not an integer, but the other operand is i32",
                   shape_op(n), v);
        return false;
    }
    c->dtype = DT_I32;
    return true;
}

bool shape_fits(const Shape *src, const Shape *dst)
{
    if (src->rank > dst->rank)
        return false;
    for (int i = 0; i < src->rank; i++) {
        Dim s = src->d[i], d = dst->d[dst->rank - src->rank + i];
        if (!ir_dim_eq(s, d) && !(s.n == 1 && !s.batch))
            return false;
    }
    return true;
}

bool shape_count(const Shape *s, int64_t *count, int *k)
{
    int64_t c = 1;
    *k = 0;
    for (int i = 0; i < s->rank; i++) {
        if (mul_overflows_i64(c, s->d[i].n, &c))
            return false;
        *k += s->d[i].batch;
    }
    *count = c;
    return true;
}

/* Every dimension >= 1 and at most SHAPE_MAX_ELEMS elements at the largest
 * batch. what introduces the tensor in the message. */
static bool check_size(Graph *g, const Node *n, const char *what)
{
    int64_t maxb = ir_max_batch(g);
    int64_t total = 1;
    bool big = false;
    for (int i = 0; i < n->shape.rank; i++) {
        Dim d = n->shape.d[i];
        if (d.n < 1) {
            diag_error(n->loc, "%s: dimension %d must be at least 1, got %s", what, i,
                       shape_fmt(g, &n->shape));
            return false;
        }
        if (mul_overflows_i64(total, d.n, &total) ||
            (d.batch && mul_overflows_i64(total, maxb, &total)) || total > SHAPE_MAX_ELEMS)
            big = true;
    }
    if (big) {
        diag_error(n->loc, "%s: tensor too large: %s has more than 2^40 elements", what,
                   shape_fmt(g, &n->shape));
        return false;
    }
    return true;
}

/* Source rules */

/* Inputs and parameters arrive typed from their declarations; the running
 * statistics of batch_norm are typed by shape_batch_norm. */
bool shape_source(Graph *g, Node *n)
{
    if (n->op == OP_STATE && n->dtype == DT_UNKNOWN)
        return true;
    check(n->dtype != DT_UNKNOWN);
    const char *what = arena_printf(g->arena, "%s '%s'", shape_op(n), n->name ? n->name : "?");
    if (!check_size(g, n, what))
        return false;
    if (n->op == OP_STATE && !ir_dtype_is_float(n->dtype)) {
        diag_error(n->loc, "%s: model state must be f32 or f64, got %s", what,
                   ir_dtype_name(n->dtype));
        return false;
    }
    if (n->op == OP_PARAM && !ir_dtype_is_float(n->dtype) && !ir_dtype_is_half(n->dtype)) {
        diag_error(n->loc, "%s: parameters must be f32, f64, f16 or bf16, got %s", what,
                   ir_dtype_name(n->dtype));
        return false;
    }
    if (n->op != OP_INPUT) {
        for (int i = 0; i < n->shape.rank; i++) {
            if (n->shape.d[i].batch) {
                diag_error(n->loc, "%s: a %s cannot depend on the batch size, got %s", what,
                           n->op == OP_PARAM ? "parameter" : "state", shape_fmt(g, &n->shape));
                return false;
            }
        }
    }
    return true;
}

/* A literal defaults to an f32 scalar; the elementwise rules retype it to
 * match the tensor it meets. */
bool shape_const(Graph *g, Node *n)
{
    (void)g;
    if (n->dtype == DT_UNKNOWN) {
        n->dtype = DT_F32;
        n->shape = (Shape){.rank = 0};
    }
    return true;
}

/* The driver */

/* The name the user gave the loss: the identifier at the train statement's
 * location (after the keyword when the location points at it). */
static const char *loss_name(Graph *g, const Train *t)
{
    Loc loc = t->loc;
    size_t len;
    const char *text = diag_source_text(loc.file, &len);
    if (t->loss->name)
        return t->loss->name;
    if (!text || loc.line < 1 || loc.col < 1)
        return NULL;
    const char *p = text, *end = text + len;
    for (int l = 1; l < loc.line && p < end; p++)
        if (*p == '\n')
            l++;
    for (int c = 1; c < loc.col && p < end && *p != '\n'; c++)
        p++;
    if (end - p > 5 && strncmp(p, "train", 5) == 0 && !isalnum((unsigned char)p[5]) &&
        p[5] != '_') {
        p += 5;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
    }
    const char *q = p;
    while (q < end && (isalnum((unsigned char)*q) || *q == '_'))
        q++;
    if (q == p || isdigit((unsigned char)*p))
        return NULL;
    return arena_strndup(g->arena, p, (size_t)(q - p));
}

static bool check_train(Graph *g, const Train *t)
{
    const Node *loss = t->loss;
    const char *name = loss_name(g, t);
    const char *what = name ? arena_printf(g->arena, "'%s'", name) : "the loss";
    if (!ir_dtype_is_float(loss->dtype)) {
        diag_error(t->loc, "train: %s must be a floating-point scalar, but is %s", what,
                   ir_dtype_name(loss->dtype));
        return false;
    }
    if (loss->shape.rank != 0) {
        diag_error(t->loc, "train: %s must be a scalar, but has shape %s", what,
                   shape_fmt(g, &loss->shape));
        return false;
    }
    return true;
}

/* SPEC 3: one floating type for all parameters, which is also the type of
 * NAME_params, NAME_grads and the loss. */
static bool check_param_types(const Graph *g)
{
    const Node *first = NULL;
    for (int i = 0; i < g->nodes.n; i++) {
        const Node *n = g->nodes.v[i];
        if (n->op != OP_PARAM || n->dtype == DT_UNKNOWN)
            continue;
        if (!first) {
            first = n;
        } else if (n->dtype != first->dtype) {
            diag_error(n->loc, "parameter '%s' is %s, but '%s' is %s: all parameters of a model "
                       "share one floating type", n->name, ir_dtype_name(n->dtype), first->name,
                       ir_dtype_name(first->dtype));
            diag_note(first->loc, "'%s' is declared here", first->name);
            return false;
        }
    }
    return true;
}

/* Gradients read from a textual IR file must come out typed like their
 * parameters (autodiff builds them so). */
static bool check_grads(Graph *g, const Train *t, const bool *failed)
{
    for (int i = 0; i < t->grads.n; i++) {
        const Node *p = t->params.v[i], *d = t->grads.v[i];
        if (failed[d->id] || d->dtype == DT_UNKNOWN || p->dtype == DT_UNKNOWN)
            continue;
        if (d->dtype != p->dtype || !ir_shape_eq(&d->shape, &p->shape)) {
            diag_error(d->loc, "the gradient of '%s' is %s%s, but the parameter is %s%s",
                       p->name, ir_dtype_name(d->dtype), shape_fmt(g, &d->shape),
                       ir_dtype_name(p->dtype), shape_fmt(g, &p->shape));
            return false;
        }
    }
    return true;
}

bool shape_node(Graph *g, Node *n)
{
    for (int j = 0; j < n->nin; j++)
        check(n->in[j]->dtype != DT_UNKNOWN);
    return rules[n->op](g, n) && (op_info[n->op].kind == K_SOURCE || check_size(g, n, shape_op(n)));
}

bool pass_shape(Graph *g)
{
    pass_widen(g);
    int nn = g->nodes.n;
    bool *failed = arena_alloc(g->arena, (size_t)nn + 1);
    bool ok = true;
    for (int i = 0; i < nn; i++) {
        Node *n = g->nodes.v[i];
        check(n->id == i);
        bool skip = false;
        for (int j = 0; j < n->nin; j++) {
            const Node *x = n->in[j];
            check(x->id >= 0 && x->id < i && g->nodes.v[x->id] == x);
            if (failed[x->id]) {
                skip = true;
            } else if (x->dtype == DT_UNKNOWN &&
                       !(x->op == OP_STATE && n->op == OP_BATCH_NORM && j >= 3)) {
                /* Only batch_norm types its running statistics; a textual
                 * IR file may hand an untyped state to anything else. */
                diag_error(n->loc, "%s: input %d ('%s') has no type", op_info[n->op].text, j,
                           x->name ? x->name : op_info[x->op].text);
                ok = false;
                skip = true;
            }
        }
        bool good = !skip;
        if (good) {
            int before = diag_errors();
            good = rules[n->op](g, n);
            if (good && op_info[n->op].kind != K_SOURCE)
                good = check_size(g, n, shape_op(n));
            check(good || diag_errors() > before); /* a rule that fails reports why */
            ok &= good;
            /* the first user of an open fill has decided its type */
            for (int j = 0; good && j < n->nin; j++)
                if (open_fill(n->in[j]))
                    fix_fill(g, n->in[j], n->in[j]->dtype);
        }
        if (!good) {
            failed[i] = true;
            if (op_info[n->op].kind != K_SOURCE)
                n->dtype = DT_UNKNOWN;
            /* untyped running statistics fail with their batch_norm, so
             * that anything else reading them is skipped too */
            for (int j = 0; j < n->nin; j++)
                if (n->in[j]->op == OP_STATE && n->in[j]->dtype == DT_UNKNOWN)
                    failed[n->in[j]->id] = true;
            continue;
        }
        check(n->dtype != DT_UNKNOWN || n->op == OP_STATE);
    }
    for (int i = 0; i < nn; i++) {
        Node *n = g->nodes.v[i];
        if (!failed[i] && n->dtype == DT_UNKNOWN) {
            diag_error(n->loc, "state '%s' has no type: it is not used by a batch_norm",
                       n->name);
            ok = false;
        }
    }
    ok &= check_param_types(g);
    for (const Train *t = g->train; t; t = t->next) {
        if (!failed[t->loss->id] && !check_train(g, t))
            ok = false;
        if (!check_grads(g, t, failed))
            ok = false;
    }
    return ok;
}
