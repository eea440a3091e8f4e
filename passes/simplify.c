/*
 * pass_simplify: constant folding, exact algebraic identities, common-
 * subexpression elimination and dead-code elimination, in one forward sweep
 * over the nodes (inputs come first) followed by a mark-and-sweep.
 *
 * The sweep keeps a forwarding map: when a node is found equal to an
 * earlier one (an input for an identity, a twin for CSE), fwd[node] names
 * the survivor, and every later node reads its inputs through the map, so
 * each node sees final inputs when its turn comes. A folded node is turned
 * into an OP_CONST in place (same id, dtype, location), which keeps the node
 * list in topological order without inserting anything. At the end the
 * outputs and the loss are redirected, nodes that neither an output nor the
 * loss needs are dropped (inputs, params and states stay: they are the
 * model's interface and state; consts go) and the list is compacted.
 *
 * The rule is that results never change beyond the rounding the kernel
 * itself would do:
 *  - Folding covers arithmetic and unary math on scalar consts (add, sub,
 *    mul, div, pow, maximum, minimum, neg, sqrt, rsqrt, exp, log, abs,
 *    square, clamp). Operands are first rounded to the node's type (a f32
 *    const holds (float)value, as the kernel would see it), the result is
 *    computed in double and rounded to the node's type. Nothing is folded
 *    when an operand is NaN; maximum, minimum and clamp are not folded
 *    when an operand is a zero (the sign of a zero result would depend on
 *    how the kernel selects). i32 folds only add, sub, mul, neg, abs,
 *    square, maximum, minimum and clamp, and only when the result fits.
 *    Activations are left to the kernels.
 *  - Identities are only those exact in IEEE arithmetic, including for
 *    -0.0, NaN and infinities: x*1, 1*x, x/1, x+(-0.0), (-0.0)+x, x-(+0.0)
 *    (x+0 and 0+x only for i32, since -0.0 + +0.0 is +0.0), neg(neg(x)),
 *    reshape or flatten to x's own shape, transpose by the identity
 *    permutation, a slice of all of x (steps of 1, x's shape),
 *    broadcast_to x's own shape, stop_gradient(x) once
 *    autodiff has run (Train.grads filled; before, it must stay to block
 *    gradients); and reshape(reshape(x)) or
 *    reshape(flatten(x)) reads x directly. A node is replaced by x only when
 *    it has x's exact type and shape (an identity that broadcasts is kept).
 *  - A matmul reads a transpose of its operand's last two dimensions
 *    through its transpose_a/transpose_b flag (GEMM's), not as a copy.
 *  - CSE merges nodes with the same op, inputs, attributes (compared
 *    exactly, in any order; floats bit for bit) and type, except inputs,
 *    params and states (distinct model values even when they look alike)
 *    and ops that draw random numbers or update state (OPF_RANDOM,
 *    OPF_MODE: dropout, batch_norm). Consts with equal values merge.
 *
 * A loop's body is simplified as a graph of its own when the sweep meets
 * the loop: its outputs are the roots, and its inputs stay (they are the
 * loop's interface, matched by position). Two loops merge only when they
 * share the very same body, besides inputs and attributes. The dead-code
 * walk then prunes each live loop's interface (prune_loop): results nobody
 * reads, carried values no kept output depends on -- a for loop's
 * temporaries become carried values, and autodiff saves every carried
 * value for the reverse loop -- and sequences or values the body no longer
 * reads.
 *
 * Node.fused is cleared: fusion groups are recomputed by pass_fuse on the
 * simplified graph.
 */
#include "passes.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* ---- constants ------------------------------------------------------- */

static bool is_const(const Node *n)
{
    return n->op == OP_CONST && n->shape.rank == 0;
}

/* A const's value as the kernel sees it: rounded to the node's type. */
static double const_value(const Node *n)
{
    double v = attr_value(n);
    return n->dtype == DT_F32 ? (double)(float)v : v;
}

static bool fits_i32(double v)
{
    return v >= INT32_MIN && v <= INT32_MAX && v == floor(v);
}

/* The value of n with constant operands x (and the op's attributes), or
 * false when folding it is not exactly safe. */
static bool fold_value(const Node *n, const double *x, double *out)
{
    for (int i = 0; i < n->nin; i++)
        if (isnan(x[i]))
            return false;
    double a = x[0], b = n->nin > 1 ? x[1] : 0, r;
    bool has_zero = a == 0 || (n->nin > 1 && b == 0);
    bool integer = n->dtype == DT_I32;
    switch (n->op) {
    case OP_ADD: r = a + b; break;
    case OP_SUB: r = a - b; break;
    case OP_MUL: r = a * b; break;
    case OP_NEG: r = -a; break;
    case OP_ABS: r = fabs(a); break;
    case OP_SQUARE: r = a * a; break;
    case OP_MAXIMUM:
        if (has_zero)
            return false;
        r = a > b ? a : b;
        break;
    case OP_MINIMUM:
        if (has_zero)
            return false;
        r = a < b ? a : b;
        break;
    case OP_CLAMP: {
        double lo = attr_lo(n), hi = attr_hi(n);
        if (has_zero || isnan(lo) || isnan(hi))
            return false;
        r = a < lo ? lo : a > hi ? hi : a;
        break;
    }
    case OP_DIV:
        if (integer)
            return false;
        r = a / b;
        break;
    case OP_POW:
        if (integer)
            return false;
        r = pow(a, b);
        break;
    case OP_SQRT:
        if (integer)
            return false;
        r = sqrt(a);
        break;
    case OP_RSQRT:
        if (integer)
            return false;
        r = 1 / sqrt(a);
        break;
    case OP_EXP:
        if (integer)
            return false;
        r = exp(a);
        break;
    case OP_LOG:
        if (integer)
            return false;
        r = log(a);
        break;
    default: return false;
    }
    /* int64-exact: i32 operands are below 2^31, products below 2^62 */
    if (integer && !fits_i32(r))
        return false;
    *out = n->dtype == DT_F32 ? (double)(float)r : r;
    return true;
}

/* Turns n into a const in place when all its inputs are scalar consts. */
static bool try_fold(Graph *g, Node *n)
{
    if (op_info[n->op].kind != K_ELTWISE || n->nin == 0 || n->nin > 2 || n->shape.rank != 0)
        return false;
    if (op_info[n->op].flags & (OPF_MODE | OPF_RANDOM))
        return false;
    if (n->dtype != DT_F32 && n->dtype != DT_F64 && n->dtype != DT_I32)
        return false;
    double x[2] = {0, 0};
    for (int i = 0; i < n->nin; i++) {
        if (!is_const(n->in[i]) || n->in[i]->dtype != n->dtype)
            return false;
        x[i] = const_value(n->in[i]);
    }
    double v;
    if (!fold_value(n, x, &v))
        return false;
    n->op = OP_CONST;
    n->nin = 0;
    n->attrs = (AttrList){0};
    attr_set_value(g, n, v);
    return true;
}

/* ---- identities ------------------------------------------------------ */

static bool const_is(const Node *c, double v, bool negzero)
{
    if (!is_const(c))
        return false;
    double x = const_value(c);
    return x == v && (v != 0 || c->dtype == DT_I32 || !signbit(x) == !negzero);
}

static bool same_type(const Node *a, const Node *b)
{
    return a->dtype == b->dtype && ir_shape_eq(&a->shape, &b->shape);
}

static bool identity_perm(const Node *n)
{
    if (!attr_has_perm(n))
        return n->shape.rank <= 1;
    AttrInts p = attr_perm(n);
    for (int i = 0; i < p.n; i++)
        if (p.v[i].batch || p.v[i].n != i)
            return false;
    return true;
}

/* Whether slice n steps by 1 along every dimension: with its input's
 * shape, it selects all of it (shape_layout.c canonicalized the bounds). */
static bool unit_steps(const Node *n)
{
    AttrInts st = attr_step(n);
    for (int i = 0; i < st.n; i++)
        if (st.v[i].batch || st.v[i].n != 1)
            return false;
    return true;
}

/* Whether transpose n swaps its last two dimensions and keeps the rest
 * (no perm reverses them all: a swap at rank 2). */
static bool swaps_last(const Node *n)
{
    int r = n->shape.rank;
    if (r < 2)
        return false;
    if (!attr_has_perm(n))
        return r == 2;
    AttrInts p = attr_perm(n);
    for (int i = 0; i < r - 2; i++)
        if (p.v[i].batch || p.v[i].n != i)
            return false;
    return p.v[r - 2].n == r - 1 && p.v[r - 1].n == r - 2;
}

/* A matmul operand that is such a transpose is read through GEMM's flag
 * instead (toggled: a flagged transpose is the operand itself), so the
 * transpose is never copied; it dies unless something else reads it. */
static void fold_transposes(Graph *g, Node *n)
{
    for (int j = 0; j < 2; j++) {
        Node *x = n->in[j];
        if (x->op != OP_TRANSPOSE || !swaps_last(x))
            continue;
        n->in[j] = x->in[0];
        const char *name = j == 0 ? attr_key_transpose_a.text : attr_key_transpose_b.text;
        if (!ir_matmul_trans(n, j)) {
            ir_attrs_set(g->arena, &n->attrs, (Attr){.name = name, .kind = AK_BOOL, .b = true});
            continue;
        }
        /* a flag cleared is dropped, so the product is CSE's twin of a plain one */
        n->attrs = ir_attrs_without(g->arena, n->attrs, name);
    }
}

/* The node n equals exactly, or NULL. differentiated: autodiff has built
 * the gradients, so stop_gradient has done its work and is x itself. */
static Node *identity(const Node *n, bool differentiated)
{
    Node *a = n->nin > 0 ? n->in[0] : NULL, *b = n->nin > 1 ? n->in[1] : NULL;
    Node *x = NULL;
    switch (n->op) {
    case OP_MUL: x = const_is(b, 1, false) ? a : const_is(a, 1, false) ? b : NULL; break;
    case OP_DIV: x = const_is(b, 1, false) ? a : NULL; break;
    case OP_ADD:
        /* only -0.0 is an additive identity in IEEE (and any 0 for i32) */
        x = const_is(b, 0, true) ? a : const_is(a, 0, true) ? b : NULL;
        break;
    case OP_SUB: x = const_is(b, 0, false) ? a : NULL; break;
    case OP_NEG: x = a->op == OP_NEG ? a->in[0] : NULL; break;
    case OP_RESHAPE:
    case OP_FLATTEN:
    case OP_BROADCAST_TO: x = a; break;
    case OP_TRANSPOSE: x = identity_perm(n) ? a : NULL; break;
    case OP_SLICE: x = unit_steps(n) ? a : NULL; break;
    case OP_STOP_GRADIENT: x = differentiated ? a : NULL; break;
    default: break;
    }
    return x && same_type(n, x) ? x : NULL;
}

/* ---- CSE ------------------------------------------------------------- */

static bool cse_candidate(const Node *n)
{
    if (n->op == OP_INPUT || n->op == OP_PARAM || n->op == OP_STATE)
        return false;
    if (op_info[n->op].flags & (OPF_RANDOM | OPF_MODE | OPF_RUNSTATS))
        return false;
    return n->dtype != DT_UNKNOWN;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15u + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static uint64_t bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static uint64_t hash_attr(const Attr *a)
{
    uint64_t h = mix(hash_str(a->name), (uint64_t)a->kind);
    switch (a->kind) {
    case AK_INT: return mix(h, (uint64_t)a->i);
    case AK_FLOAT: return mix(h, bits(a->f));
    case AK_BOOL: return mix(h, a->b);
    case AK_STR:
    case AK_ENUM: return mix(h, hash_str(a->s));
    case AK_INTS:
        for (int i = 0; i < a->ints.n; i++)
            h = mix(mix(h, (uint64_t)a->ints.v[i].n), a->ints.v[i].batch);
        return h;
    case AK_FLOATS:
        for (int i = 0; i < a->floats.n; i++)
            h = mix(h, bits(a->floats.v[i]));
        return h;
    }
    return h;
}

static uint64_t hash_node(const Node *n)
{
    uint64_t h = mix(mix((uint64_t)n->op, (uint64_t)n->dtype), (uint64_t)n->shape.rank);
    for (int i = 0; i < n->shape.rank; i++)
        h = mix(mix(h, (uint64_t)n->shape.d[i].n), n->shape.d[i].batch);
    for (int i = 0; i < n->nin; i++)
        h = mix(h, (uint64_t)n->in[i]->id);
    uint64_t ha = 0; /* a sum, so the order of the attributes does not matter */
    for (int i = 0; i < n->attrs.n; i++)
        ha += hash_attr(&n->attrs.v[i]);
    return mix(h, ha);
}

static bool attr_eq(const Attr *a, const Attr *b)
{
    bool sa = a->kind == AK_STR || a->kind == AK_ENUM, sb = b->kind == AK_STR || b->kind == AK_ENUM;
    if (a->kind != b->kind && !(sa && sb))
        return false;
    switch (a->kind) {
    case AK_INT: return a->i == b->i;
    case AK_FLOAT: return bits(a->f) == bits(b->f);
    case AK_BOOL: return a->b == b->b;
    case AK_STR:
    case AK_ENUM: return strcmp(a->s, b->s) == 0;
    case AK_INTS:
        if (a->ints.n != b->ints.n)
            return false;
        for (int i = 0; i < a->ints.n; i++)
            if (!ir_dim_eq(a->ints.v[i], b->ints.v[i]))
                return false;
        return true;
    case AK_FLOATS:
        if (a->floats.n != b->floats.n)
            return false;
        for (int i = 0; i < a->floats.n; i++)
            if (bits(a->floats.v[i]) != bits(b->floats.v[i]))
                return false;
        return true;
    }
    return false;
}

static bool attrs_eq(const AttrList *a, const AttrList *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++) {
        const Attr *o = ir_attrs_get(b, a->v[i].name);
        if (!o || !attr_eq(&a->v[i], o))
            return false;
    }
    return true;
}

static bool node_eq(const Node *a, const Node *b)
{
    if (a->op != b->op || a->nin != b->nin || a->body != b->body || !same_type(a, b))
        return false;
    for (int i = 0; i < a->nin; i++)
        if (a->in[i] != b->in[i])
            return false;
    return attrs_eq(&a->attrs, &b->attrs);
}

/* Open addressing over a power-of-two table of nodes. */
typedef struct {
    Node **slot;
    uint64_t *hash;
    size_t mask;
} Table;

static Node *cse_find_or_add(Table *t, Node *n)
{
    uint64_t h = hash_node(n);
    for (size_t i = (size_t)h & t->mask;; i = (i + 1) & t->mask) {
        if (!t->slot[i]) {
            t->slot[i] = n;
            t->hash[i] = h;
            return n;
        }
        if (t->hash[i] == h && node_eq(t->slot[i], n))
            return t->slot[i];
    }
}

/* ---- loops ------------------------------------------------------------ */

/* Cuts from loop l what nobody needs, given which of its results are read
 * (read[k] for result k: carried, stacked, then saved): a carried value
 * stays when its result is read or a kept body output depends on its
 * body input (iterated to a fixed point: a value feeds another across
 * trips); stacked and saved results stay when read; scanned sequences and
 * unchanged values when a kept output depends on them. The body loses the
 * dropped inputs and outputs and the nodes only they needed. Returns the
 * new index of each old result (-1: dropped), or NULL when nothing goes. */
static int *prune_loop(Graph *g, Node *l, const bool *read)
{
    Graph *b = l->body;
    LoopParts p = ir_loop_parts(l);
    int nout = b->outputs.n, nb = b->nodes.n, nin;
    Node **bin = ir_body_inputs(b, &nin);
    bool *keep = arena_alloc(g->arena, (size_t)nout + 1);
    bool *reach = arena_alloc(g->arena, (size_t)nb + 1);
    memcpy(keep, read, (size_t)nout);
    for (bool changed = true; changed;) {
        memset(reach, 0, (size_t)nb);
        for (int k = 0; k < nout; k++)
            if (keep[k])
                reach[b->outputs.v[k].node->id] = true;
        for (int i = nb - 1; i >= 0; i--)
            if (reach[i])
                for (int j = 0; j < b->nodes.v[i]->nin; j++)
                    reach[b->nodes.v[i]->in[j]->id] = true;
        changed = false;
        for (int k = 0; k < p.carried; k++)
            if (!keep[k] && reach[bin[k]->id])
                keep[k] = changed = true;
    }
    /* loop inputs and body inputs kept, in order */
    int nl = l->nin;
    bool *keep_in = arena_alloc(g->arena, (size_t)nl + 1);
    bool *keep_bin = arena_alloc(g->arena, (size_t)nin + 1);
    bool any = false;
    for (int k = 0; k < p.carried; k++)
        keep_in[k] = keep_bin[k] = keep[k];
    for (int j = 0; j < p.stacked; j++)
        keep_in[p.carried + j] = keep[p.carried + j];
    for (int k = p.carried; k < nin; k++)
        keep_bin[k] = keep_in[k + p.stacked] = reach[bin[k]->id];
    for (int k = 0; k < nout; k++)
        any |= !keep[k];
    for (int k = 0; k < nin; k++)
        any |= !keep_bin[k];
    if (!any)
        return NULL;

    int *map = arena_alloc(g->arena, sizeof *map * ((size_t)nout + 1));
    int carried = 0, stacked = 0, scanned = 0, saved = 0, m = 0;
    for (int k = 0; k < nout; k++)
        map[k] = keep[k] ? m++ : -1;
    int nscan = p.stacked + p.scanned;
    AttrInts axis = attr_scan_axis(l), start = attr_scan_start(l), step = attr_scan_step(l);
    Dim *d = arena_alloc(g->arena, sizeof *d * (3 * (size_t)nscan + 1));
    Dim *na = d, *ns = d + nscan, *nt = d + 2 * nscan;
    int ni = 0, nsc = 0;
    for (int k = 0; k < nl; k++) {
        if (!keep_in[k])
            continue;
        int scan = k - p.carried; /* stacked, then scanned entries */
        if (k < p.carried)
            carried++;
        else if (scan < nscan) {
            stacked += scan < p.stacked;
            scanned += scan >= p.stacked;
            na[nsc] = axis.v[scan];
            ns[nsc] = start.v[scan];
            nt[nsc++] = step.v[scan];
        }
        l->in[ni++] = l->in[k];
    }
    l->nin = ni;
    for (int k = p.carried + p.stacked; k < nout; k++)
        saved += keep[k];
    attr_set_carried(g, l, carried);
    attr_set_stacked(g, l, stacked);
    attr_set_scanned(g, l, scanned);
    attr_set_saved(g, l, saved);
    attr_set_scan_axis(g, l, na, nsc);
    attr_set_scan_start(g, l, ns, nsc);
    attr_set_scan_step(g, l, nt, nsc);

    int no = 0;
    for (int k = 0; k < nout; k++)
        if (keep[k])
            b->outputs.v[no++] = b->outputs.v[k];
    b->outputs.n = no;
    for (int k = 0; k < nin; k++)
        if (!keep_bin[k])
            b->nodes.v[bin[k]->id] = NULL;
    for (int i = 0; i < nb; i++)
        if (b->nodes.v[i] && b->nodes.v[i]->op != OP_INPUT && !reach[i])
            b->nodes.v[i] = NULL;
    ir_graph_compact(b);
    return map;
}

/* ---- the pass -------------------------------------------------------- */

void pass_simplify(Graph *g)
{
    int nn = g->nodes.n;
    Node **fwd = arena_alloc(g->arena, (size_t)nn * sizeof *fwd + 1);
    Table t = {0};
    size_t cap = 16;
    while (cap < 2 * (size_t)nn)
        cap *= 2;
    t.slot = arena_alloc(g->arena, cap * sizeof *t.slot);
    t.hash = arena_alloc(g->arena, cap * sizeof *t.hash);
    t.mask = cap - 1;
    bool differentiated = false;
    for (const Train *u = g->train; u; u = u->next)
        differentiated |= u->grads.n > 0;

    for (int i = 0; i < nn; i++) {
        Node *n = g->nodes.v[i];
        check(n->id == i);
        n->fused = NULL;
        fwd[i] = n;
        if (n->body)
            pass_simplify(n->body);
        for (int j = 0; j < n->nin; j++)
            n->in[j] = fwd[n->in[j]->id];
        if (n->op == OP_RESHAPE && (n->in[0]->op == OP_RESHAPE || n->in[0]->op == OP_FLATTEN))
            n->in[0] = n->in[0]->in[0];
        if (n->op == OP_MATMUL)
            fold_transposes(g, n);
        try_fold(g, n);
        Node *x = identity(n, differentiated);
        if (!x && cse_candidate(n))
            x = cse_find_or_add(&t, n);
        if (x && x != n) {
            if (!x->name && n->name && op_info[x->op].kind != K_SOURCE)
                x->name = n->name;
            n->name = NULL;
            fwd[i] = x;
        }
    }
    for (int i = 0; i < g->outputs.n; i++)
        g->outputs.v[i].node = fwd[g->outputs.v[i].node->id];
    for (Train *tr = g->train; tr; tr = tr->next) {
        tr->loss = fwd[tr->loss->id];
        for (int i = 0; i < tr->grads.n; i++)
            tr->grads.v[i] = fwd[tr->grads.v[i]->id];
    }

    /* Dead code: walk backwards from what the outputs and the loss need. */
    bool *live = arena_alloc(g->arena, (size_t)nn * sizeof *live + 1);
    for (int i = 0; i < g->outputs.n; i++)
        live[g->outputs.v[i].node->id] = true;
    for (const Train *tr = g->train; tr; tr = tr->next) {
        live[tr->loss->id] = true;
        for (int i = 0; i < tr->grads.n; i++)
            live[tr->grads.v[i]->id] = true;
    }
    /* a live loop's live results, linked by loop: they come after it */
    Node **first_res = arena_alloc(g->arena, (size_t)nn * sizeof *first_res + 1);
    Node **next_res = arena_alloc(g->arena, (size_t)nn * sizeof *next_res + 1);
    for (int i = nn - 1; i >= 0; i--) {
        Node *n = g->nodes.v[i];
        Op op = n->op;
        if (op == OP_INPUT || op == OP_PARAM || op == OP_STATE)
            live[i] = true;
        if (!live[i]) {
            g->nodes.v[i] = NULL;
            continue;
        }
        if (op == OP_LOOP_RESULT) {
            next_res[i] = first_res[n->in[0]->id];
            first_res[n->in[0]->id] = n;
        }
        if (op == OP_LOOP) {
            int nout = n->body->outputs.n;
            bool *read = arena_alloc(g->arena, (size_t)nout + 1);
            for (Node *r = first_res[i]; r; r = next_res[r->id])
                read[attr_index(r)] = true;
            int *map = prune_loop(g, n, read);
            for (Node *r = first_res[i]; r && map; r = next_res[r->id])
                attr_set_index(g, r, map[attr_index(r)]);
        }
        for (int j = 0; j < n->nin; j++)
            live[n->in[j]->id] = true;
    }
    ir_graph_compact(g);
}
