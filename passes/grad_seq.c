/*
 * Gradient rules of the sequence family (see grad.h for the contract).
 * Implemented: embedding, whose table gradient scatters each position's
 * adjoint row into the row of its id. It is built as one_hot(ids)^T @ dy
 * over the M positions flattened, [V, M] @ [M, D]: exact (each product is
 * a sum of dy rows times 0 or 1) and made of existing ops, at the cost of
 * M * V * D multiply-adds.
 *
 * attention(q, k, v) = P v with P = softmax(q k^T / sqrt(d)) (masked when
 * causal, or by attention_masked's mask). P is recomputed by
 * attention_probs(q, k[, mask]), the forward kernel's first half (one
 * GEMM and the masked softmax, the same bits; a query with every key
 * masked has a zero row, so it passes nothing). The mask gets no adjoint.
 * Then dv = P^T dy, dS = P * (dP - sum(dP * P)) with dP = dy v^T (masked
 * entries have P = 0 and get nothing), dq = dS k / sqrt(d) and dk = dS^T
 * q / sqrt(d).
 *
 * The recurrent cells (rnn, lstm, gru) are differentiated through time by
 * one backward op (rnn_grad, lstm_grad, gru_grad: codegen/seq.c), which
 * runs the steps backwards and returns every step's gate pre-activation
 * adjoints dA [B, T, G*H] and the initial states' adjoints. The rest is
 * ordinary ops over all steps at once, as for a dense layer on B*T rows:
 * dx = dA_x W_ih^T, dW_ih = x^T dA_x, dW_hh = h_prev^T dA_h with h_prev =
 * [h0, y without its last step], the biases' sums of dA. So the graph does
 * not grow with the sequence length. The length must not be the batch
 * size. With return_state, the final states' rows of dy seed the
 * backward op's carried adjoints. With lengths (the packed ops), steps
 * past a row's length have zero gate adjoints, so whatever y holds there
 * (zeros) meets nothing in the weights' products; the lengths get none.
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
    bool masked = n->nin > 3;
    Node *p = ad_node(c, masked ? OP_ATTENTION_PROBS_MASKED : OP_ATTENTION_PROBS,
                      (Node *[]){q, k, masked ? n->in[3] : NULL}, masked ? 3 : 2);
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

/* a^T b over the B*T rows of a [B, T, K] and b [B, T, N]: [K, N] */
static Node *rows_t_matmul(Grad *c, Node *a, Node *b)
{
    int64_t perm[2] = {1, 0};
    return ad_bin(c, OP_MATMUL, ad_transpose(c, ad_rows(c, a), perm), ad_rows(c, b));
}

bool grad_recurrent(Grad *c, Node *n, Node *dy)
{
    Node *x = n->in[0], *h0 = n->in[1];
    Op cell = ir_recurrent_cell(n->op);
    bool lstm = cell == OP_LSTM, gru = cell == OP_GRU, packed = ir_recurrent_packed(n->op);
    int w = lstm ? 3 : 2, G = lstm ? 4 : gru ? 3 : 1;
    Node *wih = n->in[w], *whh = n->in[w + 1];
    Dim B = x->shape.d[0], T = x->shape.d[1];
    int64_t H = n->shape.d[2].n;
    if (T.batch) {
        diag_error(n->loc,
                   "%s over a batch-sized sequence length has no gradient yet: the loss "
                   "cannot be differentiated through it",
                   op_info[n->op].text);
        return false;
    }
    /* one backward op: the gate pre-activations' adjoints, then h0's, c0's */
    Node *in[9] = {n, dy};
    for (int j = 0; j < n->nin; j++)
        in[2 + j] = n->in[j];
    Op op = packed ? (lstm ? OP_LSTM_PACKED_GRAD : gru ? OP_GRU_PACKED_GRAD : OP_RNN_PACKED_GRAD)
                   : (lstm ? OP_LSTM_GRAD : gru ? OP_GRU_GRAD : OP_RNN_GRAD);
    Node *d = ad_node(c, op, in, n->nin + 2);
    /* the backward op's schema is the forward's and state_grads: without
     * the initial states' adjoints, the steps' rows are the whole result */
    bool states = ad_needs(c, h0) || (lstm && ad_needs(c, n->in[2]));
    d->attrs = ir_attrs_without(c->g->arena, n->attrs, attr_key_state_grads.text);
    attr_set_state_grads(c->g, d, states);
    d = ad_finish(c, d);
    Node *steps = states ? ad_slice(c, d, 1, 0, T.n, false) : d;
    Node *last = states ? ad_slice(c, d, 1, T.n, T.n + 1, true) : NULL;

    /* the input side (dx = dA_x W_ih^T) and the recurrent side, whose
     * adjoint differs for gru's n gate: r * dn */
    Node *dax = ad_slice(c, steps, 2, 0, G * H, false);
    Node *dah = gru ? ad_concat(c, ad_slice(c, steps, 2, 0, 2 * H, false),
                                ad_slice(c, steps, 2, 3 * H, 4 * H, false), 2)
                    : dax;
    if (ad_needs(c, x))
        ad_acc(c, x, ad_bin(c, OP_MATMUL, dax, ad_swap_last(c, wih)));
    if (ad_needs(c, h0))
        ad_acc(c, h0, ad_slice(c, last, 1, 0, H, false));
    if (lstm && ad_needs(c, n->in[2]))
        ad_acc(c, n->in[2], ad_slice(c, last, 1, H, 2 * H, false));
    if (ad_needs(c, wih))
        ad_acc(c, wih, rows_t_matmul(c, x, dax));
    if (ad_needs(c, whh)) {
        /* h_{t-1} for every step: h0, then y without its last step */
        Shape s1 = {.rank = 3, .d = {B, {1, false}, {H, false}}};
        Node *hp = ad_reshape(c, h0, &s1);
        if (T.n > 1)
            hp = ad_concat(c, hp, ad_slice(c, n, 1, 0, T.n - 1, false), 1);
        ad_acc(c, whh, rows_t_matmul(c, hp, dah));
    }
    bool bt[IR_MAX_RANK] = {true, true};
    if (ad_needs(c, n->in[w + 2]))
        ad_acc(c, n->in[w + 2], ad_sum(c, dax, bt, false));
    if (gru && ad_needs(c, n->in[w + 3]))
        ad_acc(c, n->in[w + 3], ad_sum(c, dah, bt, false));
    return true;
}
