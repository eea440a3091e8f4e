/*
 * Gradient rules of the sequence family (see grad.h for the contract).
 * Implemented: embedding, whose table gradient scatters each position's
 * adjoint row into the row of its id. It is built as one_hot(ids)^T @ dy
 * over the M positions flattened, [V, M] @ [M, D]: exact (each product is
 * a sum of dy rows times 0 or 1) and made of existing ops, at the cost of
 * M * V * D multiply-adds.
 *
 * attention(q, k, v) = P v with P = softmax(q k^T / sqrt(d)) (masked when
 * causal). P is recomputed by the op itself with v = the identity, which
 * applies the same mask: P = attention(q, k, I). Then dv = P^T dy,
 * dS = P * (dP - sum(dP * P)) with dP = dy v^T (masked entries have P = 0
 * and get nothing), dq = dS k / sqrt(d) and dk = dS^T q / sqrt(d). The
 * identity is zeros with ones written along the diagonal, a slice of the
 * flattened [S * S] matrix with step S + 1.
 *
 * The recurrent cells (rnn, lstm, gru) are differentiated through time by
 * unrolling: the rule rebuilds the forward recurrence step by step out of
 * slices, matmuls and activations (PyTorch's formulas, as ref.c), seeds
 * each step's hidden state with its slice of dy, and runs reverse mode
 * over the unrolled nodes with their own rules (a nested Grad whose
 * adjoints for the cell's inputs are handed to the outer one at the end).
 * The sequence length must not be the batch size.
 */
#include <inttypes.h>
#include <math.h>

#include "grad.h"
#include "shape.h"

bool grad_embedding(Grad *c, Node *n, Node *dy)
{
    Node *ids = n->in[0], *table = n->in[1];
    Dim v = table->shape.d[0], d = table->shape.d[1];
    /* M: the ids' element count, possibly a multiple of the batch */
    Dim m = {1, false};
    int nbatch = 0;
    for (int i = 0; i < ids->shape.rank; i++) {
        m.n *= ids->shape.d[i].n;
        m.batch |= ids->shape.d[i].batch;
        nbatch += ids->shape.d[i].batch;
    }
    if (nbatch > 1) {
        diag_error(n->loc, "embedding of ids with the batch size in more than one dimension has "
                           "no gradient yet: the loss cannot be differentiated through it");
        return false;
    }
    /* one_hot(ids) is the one tensor here not bounded by a forward one */
    int64_t maxb = ir_max_batch(c->g), elems;
    if (mul_overflows_i64(m.n, v.n, &elems) ||
        (m.batch && mul_overflows_i64(elems, maxb, &elems)) || elems > SHAPE_MAX_ELEMS) {
        diag_error(n->loc,
                   "embedding: the gradient of a %" PRId64 "-row table over this many ids "
                   "is too large (more than 2^40 elements)",
                   v.n);
        return false;
    }
    Node *oh = ad_node(c, OP_ONE_HOT, &ids, 1);
    attr_set_n(c->g, oh, v.n);
    oh = ad_finish(c, oh);
    if (oh->dtype != table->dtype) {
        Node *cast = ad_node(c, OP_CAST, &oh, 1);
        attr_set_to(c->g, cast, ir_dtype_name(table->dtype));
        oh = ad_finish(c, cast);
    }
    Shape mv = {.rank = 2, .d = {m, v}}, md = {.rank = 2, .d = {m, d}};
    Node *ohT = ad_reshape(c, oh, &mv);
    int64_t perm[2] = {1, 0};
    ohT = ad_transpose(c, ohT, perm);
    ad_acc(c, table, ad_bin(c, OP_MATMUL, ohT, ad_reshape(c, dy, &md)));
    return true;
}

bool grad_attention(Grad *c, Node *n, Node *dy)
{
    Node *q = n->in[0], *k = n->in[1], *v = n->in[2];
    Dim s = k->shape.d[2];
    if (s.batch) {
        diag_error(n->loc, "attention over a batch-sized key length has no gradient yet: the "
                           "loss cannot be differentiated through it");
        return false;
    }
    /* the identity [S, S], broadcast to [B, heads, S, S] */
    Shape flat = {.rank = 1, .d = {{s.n * s.n, false}}}, sq = {.rank = 2, .d = {s, s}};
    Node *eye = ad_node(c, OP_SLICE_UPDATE,
                        (Node *[]){ad_zeros(c, q->dtype, &flat), ad_const(c, 1, q->dtype)}, 2);
    Dim *b = arena_alloc(c->g->arena, 4 * sizeof *b);
    b[0] = (Dim){0, false};
    b[1] = (Dim){s.n * s.n, false};
    b[2] = (Dim){s.n + 1, false};
    attr_set_begin(c->g, eye, b, 1);
    attr_set_end(c->g, eye, b + 1, 1);
    attr_set_step(c->g, eye, b + 2, 1);
    attr_set_squeeze(c->g, eye, b + 3, 0);
    eye = ad_reshape(c, ad_finish(c, eye), &sq);
    Shape vs = v->shape;
    vs.d[3] = s;
    Node *p = ad_node(c, OP_ATTENTION, (Node *[]){q, k, ad_broadcast(c, eye, &vs)}, 3);
    attr_set_causal(c->g, p, attr_causal(n));
    p = ad_finish(c, p);

    if (ad_needs(c, v))
        ad_acc(c, v, ad_bin(c, OP_MATMUL, ad_swap_last(c, p), dy));
    if (!ad_needs(c, q) && !ad_needs(c, k))
        return true;
    bool last[IR_MAX_RANK] = {0};
    last[3] = true;
    Node *dp = ad_bin(c, OP_MATMUL, dy, ad_swap_last(c, v));
    Node *ds = ad_bin(c, OP_MUL, p,
                      ad_bin(c, OP_SUB, dp, ad_sum(c, ad_bin(c, OP_MUL, dp, p), last, true)));
    double scale = 1 / sqrt((double)q->shape.d[3].n);
    if (ad_needs(c, q))
        ad_acc(c, q, ad_binc(c, OP_MUL, ad_bin(c, OP_MATMUL, ds, k), scale));
    if (ad_needs(c, k))
        ad_acc(c, k, ad_binc(c, OP_MUL, ad_bin(c, OP_MATMUL, ad_swap_last(c, ds), q), scale));
    return true;
}

/* x[:, ..., begin:begin+len, ...] along axis; squeeze drops the axis */
static Node *take(Grad *c, Node *x, int axis, int64_t begin, int64_t len, bool squeeze)
{
    int r = x->shape.rank;
    Dim *d = arena_alloc(c->g->arena, sizeof *d * (size_t)(3 * r + 1));
    for (int i = 0; i < r; i++) {
        d[i] = (Dim){0, false};
        d[r + i] = x->shape.d[i];
        d[2 * r + i] = (Dim){1, false};
    }
    d[axis] = (Dim){begin, false};
    d[r + axis] = (Dim){begin + len, false};
    d[3 * r] = (Dim){axis, false};
    Node *n = ad_node(c, OP_SLICE, &x, 1);
    attr_set_begin(c->g, n, d, r);
    attr_set_end(c->g, n, d + r, r);
    attr_set_step(c->g, n, d + 2 * r, r);
    attr_set_squeeze(c->g, n, d + 3 * r, squeeze ? 1 : 0);
    return ad_finish(c, n);
}

static Node *add(Grad *c, Node *a, Node *b)
{
    return ad_bin(c, OP_ADD, a, b);
}

static Node *mul(Grad *c, Node *a, Node *b)
{
    return ad_bin(c, OP_MUL, a, b);
}

/* gate k of width h of a [B, G*H] pre-activation */
static Node *gate(Grad *c, Node *a, int k, int64_t h)
{
    return take(c, a, 1, k * h, h, false);
}

bool grad_recurrent(Grad *c, Node *n, Node *dy)
{
    Graph *g = c->g;
    Node *x = n->in[0];
    bool lstm = n->op == OP_LSTM, gru = n->op == OP_GRU;
    int w = lstm ? 3 : 2;
    Node *wih = n->in[w], *whh = n->in[w + 1], *bih = n->in[w + 2];
    Node *bhh = gru ? n->in[w + 3] : NULL;
    Dim T = x->shape.d[1];
    int64_t H = n->shape.d[2].n;
    if (T.batch) {
        diag_error(n->loc,
                   "%s over a batch-sized sequence length has no gradient yet: the loss "
                   "cannot be differentiated through it",
                   op_info[n->op].text);
        return false;
    }
    /* the unrolled forward: nodes first..g->nodes.n, step outputs hs[t] */
    int first = g->nodes.n;
    Node **hs = arena_alloc(g->arena, sizeof *hs * (size_t)T.n + 1);
    Node *h = n->in[1], *cell = lstm ? n->in[2] : NULL;
    for (int64_t t = 0; t < T.n; t++) {
        Node *xt = take(c, x, 1, t, 1, true);
        Node *gx = add(c, ad_bin(c, OP_MATMUL, xt, wih), bih);
        Node *gh = ad_bin(c, OP_MATMUL, h, whh);
        if (gru) {
            gh = add(c, gh, bhh);
            Node *r = ad_un(c, OP_SIGMOID, add(c, gate(c, gx, 0, H), gate(c, gh, 0, H)));
            Node *z = ad_un(c, OP_SIGMOID, add(c, gate(c, gx, 1, H), gate(c, gh, 1, H)));
            Node *nn = ad_un(c, OP_TANH, add(c, gate(c, gx, 2, H), mul(c, r, gate(c, gh, 2, H))));
            h = add(c, mul(c, ad_cbin(c, OP_SUB, 1, z), nn), mul(c, z, h));
        } else if (lstm) {
            Node *a = add(c, gx, gh);
            Node *i = ad_un(c, OP_SIGMOID, gate(c, a, 0, H));
            Node *f = ad_un(c, OP_SIGMOID, gate(c, a, 1, H));
            Node *gg = ad_un(c, OP_TANH, gate(c, a, 2, H));
            Node *o = ad_un(c, OP_SIGMOID, gate(c, a, 3, H));
            cell = add(c, mul(c, f, cell), mul(c, i, gg));
            h = mul(c, o, ad_un(c, OP_TANH, cell));
        } else {
            h = ad_un(c, OP_TANH, add(c, gx, gh));
        }
        hs[t] = h;
    }
    int end = g->nodes.n;

    /* reverse mode over the unrolled nodes */
    Grad sub = {.g = g, .nfwd = end, .loc = c->loc};
    sub.needs = arena_alloc(g->arena, (size_t)end + 1);
    sub.adj = arena_alloc(g->arena, sizeof *sub.adj * ((size_t)end + 1));
    for (int j = 0; j < n->nin; j++)
        sub.needs[n->in[j]->id] = ad_needs(c, n->in[j]);
    for (int i = first; i < end; i++) {
        Node *m = g->nodes.v[i];
        for (int j = 0; j < m->nin && !sub.needs[i]; j++)
            sub.needs[i] = ir_dtype_is_float(m->dtype) && ad_needs(&sub, m->in[j]);
    }
    for (int64_t t = 0; t < T.n; t++)
        ad_acc(&sub, hs[t], take(c, dy, 1, t, 1, true));
    for (int i = end - 1; i >= first; i--) {
        Node *m = g->nodes.v[i];
        if (sub.needs[i] && sub.adj[i] && op_info[m->op].kind != K_SOURCE) {
            int before = diag_errors();
            bool ok = ad_rule(m->op)(&sub, m, sub.adj[i]);
            check(ok && diag_errors() == before);
        }
    }
    for (int j = 0; j < n->nin; j++) {
        Node **a = &sub.adj[n->in[j]->id];
        if (*a)
            ad_acc(c, n->in[j], *a);
        *a = NULL; /* an input given twice (h0 = c0) is handed over once */
    }
    return true;
}
