/*
 * Shape rules of the sequence ops: embedding lookup, the recurrent layers
 * (rnn, lstm, gru) and scaled dot-product attention (attention_masked: with
 * a mask of any element type that broadcasts to the scores [B, heads, T, S]).
 *
 * Recurrent layers take x [B, T, F] and the initial state(s) [B, H] and
 * return every hidden state [B, T, H] (with return_state, then the final
 * h and, for lstm, c: [B, T + 1 or 2, H]). Weights are w_ih [F, G*H] and
 * w_hh [H, G*H], biases [G*H], with G = 1 (rnn), 4 (lstm), 3 (gru).
 * Inputs: rnn(x, h0, w_ih, w_hh, b), lstm(x, h0, c0, w_ih, w_hh, b),
 * gru(x, h0, w_ih, w_hh, b_ih, b_hh). All share x's floating type.
 * Their backward ops (rnn_grad, lstm_grad, gru_grad, ir/ops.def) take y
 * and dy [B, T, H] before the same inputs. The packed forms (rnn_packed,
 * ...: lengths = n) take the lengths i32 [B] last and always have the
 * final-state rows.
 */
#include <inttypes.h>

#include "shape.h"

bool shape_embedding(Graph *g, Node *n)
{
    const Node *ids = n->in[0], *t = n->in[1];
    if (ids->dtype != DT_I32) {
        diag_error(n->loc, "embedding: expects i32 ids, got %s", ir_dtype_name(ids->dtype));
        return false;
    }
    if (!shape_want_float(n, t, "table") ||
        !shape_want_rank(g, n, t, 2, 2, "a table of shape [V, D]") ||
        !shape_want_static(g, n, t, 0, "a table dimension") ||
        !shape_want_static(g, n, t, 1, "a table dimension"))
        return false;
    if (ids->shape.rank == IR_MAX_RANK) {
        diag_error(n->loc, "embedding: the result would have more than %d dimensions",
                   IR_MAX_RANK);
        return false;
    }
    n->dtype = t->dtype;
    n->shape = ids->shape;
    n->shape.d[n->shape.rank++] = t->shape.d[1];
    return true;
}

/* Errors unless input i has exactly shape s; name is its role. */
static bool want_shape(Graph *g, Node *n, int i, const char *name, const Shape *s)
{
    const Node *x = n->in[i];
    if (!shape_want_same_dtype(g, n, n->in[0], x))
        return false;
    if (ir_shape_eq(&x->shape, s))
        return true;
    diag_error(n->loc, "%s: %s must have shape %s, got %s", shape_op(n), name, shape_fmt(g, s),
               shape_fmt(g, &x->shape));
    return false;
}

/* The number of gates of a recurrent cell */
static int gates_of(Op cell)
{
    return cell == OP_LSTM ? 4 : cell == OP_GRU ? 3 : 1;
}

/* Checks the inputs of recurrent cell op `cell` found at n->in[first..]
 * (x, h0, [c0,] w_ih, w_hh, biases); *out gets the hidden states' shape
 * [B, T, H]. */
static bool cell_inputs(Graph *g, Node *n, Op cell, int first, Shape *out)
{
    const Node *x = n->in[first], *h0 = n->in[first + 1];
    int gates = gates_of(cell);
    if (!shape_want_float(n, x, "") ||
        !shape_want_rank(g, n, x, 3, 3, "x of shape [B, T, F]") ||
        !shape_want_static(g, n, x, 2, "the feature dimension") ||
        !shape_want_same_dtype(g, n, x, h0) ||
        !shape_want_rank(g, n, h0, 2, 2, "h0 of shape [B, H]") ||
        !shape_want_static(g, n, h0, 1, "the hidden size"))
        return false;
    Dim B = x->shape.d[0], T = x->shape.d[1], F = x->shape.d[2], H = h0->shape.d[1];
    Dim GH = {H.n * gates, false};
    Shape state = {.rank = 2, .d = {B, H}};
    Shape wih = {.rank = 2, .d = {F, GH}}, whh = {.rank = 2, .d = {H, GH}};
    Shape bias = {.rank = 1, .d = {GH}};
    if (!want_shape(g, n, first + 1, "h0", &state))
        return false;
    int i = first + 2;
    if (cell == OP_LSTM && !want_shape(g, n, i++, "c0", &state))
        return false;
    if (!want_shape(g, n, i, "w_ih", &wih) || !want_shape(g, n, i + 1, "w_hh", &whh))
        return false;
    if (cell == OP_GRU) {
        if (!want_shape(g, n, i + 2, "b_ih", &bias) || !want_shape(g, n, i + 3, "b_hh", &bias))
            return false;
    } else if (!want_shape(g, n, i + 2, "b", &bias)) {
        return false;
    }
    *out = (Shape){.rank = 3, .d = {B, T, H}};
    return true;
}

/* The packed ops' lengths (their last input): i32 [B] for hidden states
 * hs [B, T, H], T not the batch size. */
static bool lengths_input(Graph *g, Node *n, const Shape *hs)
{
    const Node *len = n->in[n->nin - 1];
    Shape want = {.rank = 1, .d = {hs->d[0]}};
    if (len->dtype != DT_I32) {
        diag_error(n->loc, "%s: expects i32 lengths, got %s", shape_op(n),
                   ir_dtype_name(len->dtype));
        return false;
    }
    if (!ir_shape_eq(&len->shape, &want)) {
        diag_error(n->loc, "%s: lengths must have shape %s, got %s", shape_op(n),
                   shape_fmt(g, &want), shape_fmt(g, &len->shape));
        return false;
    }
    if (hs->d[1].batch) {
        diag_error(n->loc, "%s: lengths need a sequence length that is not the batch size",
                   shape_op(n));
        return false;
    }
    return true;
}

bool shape_rnn(Graph *g, Node *n)
{
    if (!cell_inputs(g, n, ir_recurrent_cell(n->op), 0, &n->shape))
        return false;
    if (ir_recurrent_packed(n->op) && !lengths_input(g, n, &n->shape))
        return false;
    int rows = ir_recurrent_state_rows(n);
    if (rows && n->shape.d[1].batch) {
        diag_error(n->loc, "%s: return_state needs a sequence length that is not the batch size",
                   shape_op(n));
        return false;
    }
    n->shape.d[1].n += rows;
    n->dtype = n->in[0]->dtype;
    return true;
}

bool shape_recurrent_grad(Graph *g, Node *n)
{
    Op cell = ir_recurrent_cell(n->op);
    Shape hs;
    if (!cell_inputs(g, n, cell, 2, &hs))
        return false;
    if (hs.d[1].batch) {
        diag_error(n->loc, "%s: the sequence length must not be the batch size", shape_op(n));
        return false;
    }
    if (ir_recurrent_packed(n->op) && !lengths_input(g, n, &hs))
        return false;
    Shape ys = hs; /* with the final states' rows */
    ys.d[1].n += ir_recurrent_state_rows(n);
    if (!want_shape(g, n, 0, "y", &ys) || !want_shape(g, n, 1, "dy", &ys))
        return false;
    int64_t H = hs.d[2].n;
    n->dtype = n->in[0]->dtype;
    n->shape = hs;
    n->shape.d[1].n += attr_state_grads(n); /* row T: h0's and c0's adjoints */
    n->shape.d[2].n = cell == OP_GRU ? 4 * H : gates_of(cell) * H;
    return true;
}

/* attention's rules for q, k, v and the mask m (NULL: none); its probabilities
 * take k as v, so that only q and k are checked. */
static bool attention_in(Graph *g, Node *n, const Node *q, const Node *k, const Node *v, Node *m)
{
    if (!shape_want_float(n, q, "") ||
        !shape_want_rank(g, n, q, 4, 4, "q of shape [B, heads, T, d]") ||
        !shape_want_same_dtype(g, n, q, k) || !shape_want_same_dtype(g, n, q, v) ||
        !shape_want_rank(g, n, k, 4, 4, "k of shape [B, heads, S, d]") ||
        !shape_want_rank(g, n, v, 4, 4, "v of shape [B, heads, S, dv]"))
        return false;
    const Dim *dq = q->shape.d, *dk = k->shape.d, *dv = v->shape.d;
    if (!ir_dim_eq(dq[0], dk[0]) || !ir_dim_eq(dq[0], dv[0]) || !ir_dim_eq(dq[1], dk[1]) ||
        !ir_dim_eq(dq[1], dv[1]) || !ir_dim_eq(dk[2], dv[2]) || !ir_dim_eq(dq[3], dk[3])) {
        diag_error(n->loc, "attention: shapes do not match: q %s, k %s, v %s (expected "
                   "[B, heads, T, d], [B, heads, S, d], [B, heads, S, dv])",
                   shape_fmt(g, &q->shape), shape_fmt(g, &k->shape), shape_fmt(g, &v->shape));
        return false;
    }
    if (attr_causal(n) && !ir_dim_eq(dq[2], dk[2])) {
        diag_error(n->loc, "attention: causal attention needs as many queries as keys, got %s "
                   "and %s", shape_fmt_dim(g, dq[2]), shape_fmt_dim(g, dk[2]));
        return false;
    }
    if (m) {
        /* the mask: any element type, broadcast to the scores [B, heads, T, S] */
        Shape scores = {.rank = 4, .d = {dq[0], dq[1], dq[2], dk[2]}};
        if (!shape_adopt_const(n, m, q))
            return false;
        if (!shape_fits(&m->shape, &scores)) {
            diag_error(n->loc, "attention: the mask %s does not broadcast to the scores %s",
                       shape_fmt(g, &m->shape), shape_fmt(g, &scores));
            return false;
        }
    }
    n->dtype = q->dtype;
    return true;
}

bool shape_attention(Graph *g, Node *n)
{
    const Node *q = n->in[0], *k = n->in[1], *v = n->in[2];
    if (!attention_in(g, n, q, k, v, n->nin > 3 ? n->in[3] : NULL))
        return false;
    n->shape = (Shape){.rank = 4, .d = {q->shape.d[0], q->shape.d[1], q->shape.d[2], v->shape.d[3]}};
    return true;
}

bool shape_attention_probs(Graph *g, Node *n)
{
    const Node *q = n->in[0], *k = n->in[1];
    if (!attention_in(g, n, q, k, k, n->nin > 2 ? n->in[2] : NULL))
        return false;
    n->shape = (Shape){.rank = 4, .d = {q->shape.d[0], q->shape.d[1], q->shape.d[2], k->shape.d[2]}};
    return true;
}
