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
 * The recurrent cells (rnn, lstm, gru) have no rule yet (grad_todo).
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
    int64_t maxb = c->g->batch && c->g->max_batch > 0 ? c->g->max_batch : 1, elems;
    if (mul_overflows_i64(m.n, v.n, &elems) ||
        (m.batch && mul_overflows_i64(elems, maxb, &elems)) || elems > SHAPE_MAX_ELEMS) {
        diag_error(n->loc,
                   "embedding: the gradient of a %" PRId64 "-row table over this many ids "
                   "is too large (more than 2^40 elements)",
                   v.n);
        return false;
    }
    Node *oh = ad_node(c, OP_ONE_HOT, &ids, 1);
    ir_set_int(c->g, oh, "n", v.n);
    oh = ad_finish(c, oh);
    if (oh->dtype != table->dtype) {
        Node *cast = ad_node(c, OP_CAST, &oh, 1);
        ir_set_str(c->g, cast, "to", ir_dtype_name(table->dtype));
        oh = ad_finish(c, cast);
    }
    Shape mv = {.rank = 2, .d = {m, v}}, md = {.rank = 2, .d = {m, d}};
    Node *ohT = ad_reshape(c, oh, &mv);
    int64_t perm[2] = {1, 0};
    ohT = ad_transpose(c, ohT, perm);
    ad_acc(c, table, ad_bin(c, OP_MATMUL, ohT, ad_reshape(c, dy, &md)));
    return true;
}

static Node *swap_last(Grad *c, Node *x)
{
    int64_t perm[IR_MAX_RANK];
    int r = x->shape.rank;
    for (int i = 0; i < r; i++)
        perm[i] = i;
    perm[r - 2] = r - 1;
    perm[r - 1] = r - 2;
    return ad_transpose(c, x, perm);
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
    ir_set_ints(c->g, eye, "begin", b, 1);
    ir_set_ints(c->g, eye, "end", b + 1, 1);
    ir_set_ints(c->g, eye, "step", b + 2, 1);
    ir_set_ints(c->g, eye, "squeeze", b + 3, 0);
    eye = ad_reshape(c, ad_finish(c, eye), &sq);
    Shape vs = v->shape;
    vs.d[3] = s;
    Node *p = ad_node(c, OP_ATTENTION, (Node *[]){q, k, ad_broadcast(c, eye, &vs)}, 3);
    ir_set_bool(c->g, p, "causal", ir_attr_bool(n, "causal"));
    p = ad_finish(c, p);

    if (ad_needs(c, v))
        ad_acc(c, v, ad_bin(c, OP_MATMUL, swap_last(c, p), dy));
    if (!ad_needs(c, q) && !ad_needs(c, k))
        return true;
    bool last[IR_MAX_RANK] = {0};
    last[3] = true;
    Node *dp = ad_bin(c, OP_MATMUL, dy, swap_last(c, v));
    Node *ds = ad_bin(c, OP_MUL, p,
                      ad_bin(c, OP_SUB, dp, ad_sum(c, ad_bin(c, OP_MUL, dp, p), last, true)));
    double scale = 1 / sqrt((double)q->shape.d[3].n);
    if (ad_needs(c, q))
        ad_acc(c, q, ad_binc(c, OP_MUL, ad_bin(c, OP_MATMUL, ds, k), scale));
    if (ad_needs(c, k))
        ad_acc(c, k, ad_binc(c, OP_MUL, ad_bin(c, OP_MATMUL, swap_last(c, ds), q), scale));
    return true;
}
