/*
 * The shape rules of the sequence ops: embedding, the recurrent layers and
 * their gradients, reverse_sequence and attention (passes/shape_seq.c):
 * exact inferred types, canonicalized attributes and the text of each
 * diagnostic. The helpers are shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_seq");
GROUP(rules, NULL, teardown);

TEST(rules, embedding)
{
    fresh();
    Node *n = N(OP_EMBEDDING, X("i32[B, 5]"), P("f32[100, 16]"));
    ok(n, "f32[B, 5, 16]");
    fresh();
    n = N(OP_EMBEDDING, X("i32[]"), P("f64[100, 16]"));
    ok(n, "f64[16]");
    fresh();
    N(OP_EMBEDDING, X("f32[B, 5]"), P("f32[100, 16]"));
    err("embedding: expects i32 ids, got f32");
    fresh();
    N(OP_EMBEDDING, X("i32[B, 5]"), P("f32[100]"));
    err("embedding: expects a table of shape [V, D], got [100]");
    fresh();
    N(OP_EMBEDDING, X("i32[B, 5]"), X("i32[100, 16]"));
    err("embedding: expects a floating-point table tensor, got i32");
}
END_TEST

TEST(rules, recurrent)
{
    fresh();
    Node *n = N(OP_RNN, X("f32[B, 5, 8]"), X("f32[B, 16]"), P("f32[8, 16]"), P("f32[16, 16]"),
                P("f32[16]"));
    ok(n, "f32[B, 5, 16]");
    fresh();
    n = N(OP_LSTM, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"),
          P("f32[16, 64]"), P("f32[64]"));
    ok(n, "f32[B, 5, 16]");
    fresh();
    n = N(OP_GRU, X("f64[B, 5, 8]"), X("f64[B, 16]"), P("f64[8, 48]"), P("f64[16, 48]"),
          P("f64[48]"), P("f64[48]"));
    ok(n, "f64[B, 5, 16]");

    fresh();
    N(OP_LSTM, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"),
      P("f32[16, 16]"), P("f32[64]"));
    err("lstm: w_hh must have shape [16, 64], got [16, 16]");
    fresh();
    N(OP_LSTM, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f32[B, 8]"), P("f32[8, 64]"),
      P("f32[16, 64]"), P("f32[64]"));
    err("lstm: c0 must have shape [B, 16], got [B, 8]");
    fresh();
    N(OP_GRU, X("f32[B, 5, 8]"), X("f32[B, 16]"), P("f32[8, 48]"), P("f32[16, 48]"),
      P("f32[48]"), P("f32[16]"));
    err("gru: b_hh must have shape [48], got [16]");
    fresh();
    N(OP_RNN, X("f32[B, 5, 8]"), X("f32[4, 16]"), P("f32[8, 16]"), P("f32[16, 16]"),
      P("f32[16]"));
    err("rnn: h0 must have shape [B, 16], got [4, 16]");
    fresh();
    N(OP_RNN, X("f32[B, 5, 8]"), X("f32[B, 16]"), P("f32[7, 16]"), P("f32[16, 16]"),
      P("f32[16]"));
    err("rnn: w_ih must have shape [8, 16], got [7, 16]");
    fresh();
    N(OP_RNN, X("f32[B, 8]"), X("f32[B, 16]"), P("f32[8, 16]"), P("f32[16, 16]"), P("f32[16]"));
    err("rnn: expects x of shape [B, T, F], got [B, 8]");
    fresh();
    N(OP_RNN, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f64[8, 16]"), P("f32[16, 16]"),
      P("f32[16]"));
    err("rnn: element types differ (f32 vs f64)");
}
END_TEST

/* return_state: the final states' rows after the hidden states; the
 * packed forms (lengths last, i32 [B]) always have them */
TEST(rules, recurrent_state_and_lengths)
{
    fresh();
    Node *n = N(OP_LSTM, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"),
                P("f32[16, 64]"), P("f32[64]"));
    attr_set_return_state(G, n, true);
    ok(n, "f32[B, 7, 16]");
    fresh();
    n = N(OP_GRU, X("f64[B, 5, 8]"), X("f64[B, 16]"), P("f64[8, 48]"), P("f64[16, 48]"),
          P("f64[48]"), P("f64[48]"));
    attr_set_return_state(G, n, true);
    ok(n, "f64[B, 6, 16]");
    fresh();
    n = N(OP_RNN_PACKED, X("f32[B, 5, 8]"), X("f32[B, 16]"), P("f32[8, 16]"), P("f32[16, 16]"),
          P("f32[16]"), X("i32[B]"));
    ok(n, "f32[B, 6, 16]");
    fresh();
    n = N(OP_LSTM_PACKED, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"),
          P("f32[16, 64]"), P("f32[64]"), X("i32[B]"));
    ok(n, "f32[B, 7, 16]");
    fresh();
    n = N(OP_GRU_PACKED, X("f32[3, 5, 8]"), X("f32[3, 16]"), P("f32[8, 48]"), P("f32[16, 48]"),
          P("f32[48]"), P("f32[48]"), X("i32[3]"));
    ok(n, "f32[3, 6, 16]");
    fresh();
    n = N(OP_LSTM_PACKED_GRAD, X("f32[B, 7, 16]"), X("f32[B, 7, 16]"), X("f32[B, 5, 8]"),
          X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"), P("f32[16, 64]"), P("f32[64]"),
          X("i32[B]"));
    ok(n, "f32[B, 6, 64]");
    fresh();
    n = N(OP_RNN_PACKED_GRAD, X("f32[B, 6, 16]"), X("f32[B, 6, 16]"), X("f32[B, 5, 8]"),
          X("f32[B, 16]"), P("f32[8, 16]"), P("f32[16, 16]"), P("f32[16]"), X("i32[B]"));
    ok(n, "f32[B, 6, 16]");
    fresh();
    n = N(OP_GRU_PACKED_GRAD, X("f32[B, 6, 16]"), X("f32[B, 6, 16]"), X("f32[B, 5, 8]"),
          X("f32[B, 16]"), P("f32[8, 48]"), P("f32[16, 48]"), P("f32[48]"), P("f32[48]"),
          X("i32[B]"));
    ok(n, "f32[B, 6, 64]");

    fresh();
    N(OP_RNN_PACKED, X("f32[B, 5, 8]"), X("f32[B, 16]"), P("f32[8, 16]"), P("f32[16, 16]"),
      P("f32[16]"), X("f32[B]"));
    err("rnn: expects i32 lengths, got f32");
    fresh();
    N(OP_LSTM_PACKED, X("f32[B, 5, 8]"), X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"),
      P("f32[16, 64]"), P("f32[64]"), X("i32[B, 5]"));
    err("lstm: lengths must have shape [B], got [B, 5]");
    fresh();
    N(OP_GRU_PACKED, X("f32[4, B, 8]"), X("f32[4, 16]"), P("f32[8, 48]"), P("f32[16, 48]"),
      P("f32[48]"), P("f32[48]"), X("i32[4]"));
    err("gru: lengths need a sequence length that is not the batch size");
    fresh();
    n = N(OP_RNN, X("f32[4, B, 8]"), X("f32[4, 16]"), P("f32[8, 16]"), P("f32[16, 16]"),
          P("f32[16]"));
    attr_set_return_state(G, n, true);
    err("rnn: return_state needs a sequence length that is not the batch size");
    fresh();
    n = N(OP_LSTM_GRAD, X("f32[B, 5, 16]"), X("f32[B, 5, 16]"), X("f32[B, 5, 8]"),
          X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"), P("f32[16, 64]"), P("f32[64]"));
    attr_set_return_state(G, n, true);
    err("lstm_grad: y must have shape [B, 7, 16], got [B, 5, 16]");
}
END_TEST

/* reverse_sequence(x, lengths): x's shape, lengths i32 [B] */
TEST(rules, reverse_sequence)
{
    fresh();
    Node *n = N(OP_REVERSE_SEQUENCE, X("f32[B, 5, 2, 3]"), X("i32[B]"));
    ok(n, "f32[B, 5, 2, 3]");
    fresh();
    n = N(OP_REVERSE_SEQUENCE, X("i32[3, 7]"), X("i32[3]"));
    ok(n, "i32[3, 7]");

    fresh();
    N(OP_REVERSE_SEQUENCE, X("f32[B]"), X("i32[B]"));
    err("reverse_sequence: expects x of shape [B, T, ...], got [B]");
    fresh();
    N(OP_REVERSE_SEQUENCE, X("f32[B, 5]"), X("f32[B]"));
    err("reverse_sequence: lengths must be i32[B], got f32[B]");
    fresh();
    N(OP_REVERSE_SEQUENCE, X("f32[B, 5]"), X("i32[4]"));
    err("reverse_sequence: lengths must be i32[B], got i32[4]");
    fresh();
    N(OP_REVERSE_SEQUENCE, X("f32[4, B]"), X("i32[4]"));
    err("reverse_sequence: the sequence length must not be the batch size");
}
END_TEST

/* the backward ops: y and dy, then the forward's inputs; [B, T + 1, W] */
TEST(rules, recurrent_grad)
{
    fresh();
    Node *n = N(OP_RNN_GRAD, X("f32[B, 5, 16]"), X("f32[B, 5, 16]"), X("f32[B, 5, 8]"),
                X("f32[B, 16]"), P("f32[8, 16]"), P("f32[16, 16]"), P("f32[16]"));
    ok(n, "f32[B, 6, 16]");
    fresh();
    n = N(OP_LSTM_GRAD, X("f32[B, 5, 16]"), X("f32[B, 5, 16]"), X("f32[B, 5, 8]"),
          X("f32[B, 16]"), X("f32[B, 16]"), P("f32[8, 64]"), P("f32[16, 64]"), P("f32[64]"));
    ok(n, "f32[B, 6, 64]");
    fresh();
    n = N(OP_GRU_GRAD, X("f64[3, 1, 16]"), X("f64[3, 1, 16]"), X("f64[3, 1, 8]"), X("f64[3, 16]"),
          P("f64[8, 48]"), P("f64[16, 48]"), P("f64[48]"), P("f64[48]"));
    ok(n, "f64[3, 2, 64]");

    fresh();
    N(OP_LSTM_GRAD, X("f32[B, 5, 16]"), X("f32[B, 4, 16]"), X("f32[B, 5, 8]"), X("f32[B, 16]"),
      X("f32[B, 16]"), P("f32[8, 64]"), P("f32[16, 64]"), P("f32[64]"));
    err("lstm_grad: dy must have shape [B, 5, 16], got [B, 4, 16]");
    fresh();
    N(OP_GRU_GRAD, X("f32[B, 5, 16]"), X("f32[B, 5, 16]"), X("f32[B, 5, 8]"), X("f32[B, 16]"),
      P("f32[8, 48]"), P("f32[16, 48]"), P("f32[48]"), P("f32[16]"));
    err("gru_grad: b_hh must have shape [48], got [16]");
    fresh();
    N(OP_RNN_GRAD, X("f32[B, B, 16]"), X("f32[B, B, 16]"), X("f32[B, B, 8]"), X("f32[B, 16]"),
      P("f32[8, 16]"), P("f32[16, 16]"), P("f32[16]"));
    err("rnn_grad: the sequence length must not be the batch size");
}
END_TEST

TEST(rules, attention)
{
    fresh();
    Node *n = N(OP_ATTENTION, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 8]"), X("f32[B, 4, 7, 6]"));
    ok(n, "f32[B, 4, 5, 6]");
    fresh();
    n = N(OP_ATTENTION, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 5, 8]"), X("f32[B, 4, 5, 8]"));
    ir_set_bool(G, n, "causal", true);
    ok(n, "f32[B, 4, 5, 8]");
    fresh();
    n = N(OP_ATTENTION, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 8]"), X("f32[B, 4, 7, 8]"));
    ir_set_bool(G, n, "causal", true);
    err("attention: causal attention needs as many queries as keys, got 5 and 7");
    fresh();
    N(OP_ATTENTION, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 9]"), X("f32[B, 4, 7, 8]"));
    err("attention: shapes do not match: q [B, 4, 5, 8], k [B, 4, 7, 9], v [B, 4, 7, 8]");
    fresh();
    N(OP_ATTENTION, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 8]"), X("f32[B, 4, 6, 8]"));
    err("attention: shapes do not match");
    fresh();
    N(OP_ATTENTION, X("f32[B, 5, 8]"), X("f32[B, 7, 8]"), X("f32[B, 7, 8]"));
    err("attention: expects q of shape [B, heads, T, d], got [B, 5, 8]");
}
END_TEST

TEST(rules, attention_masked)
{
    fresh();
    Node *q = X("f32[B, 4, 5, 8]"), *k = X("f32[B, 4, 7, 8]");
    Node *a = N(OP_ATTENTION_MASKED, q, k, k, X("i32[B, 1, 1, 7]"));
    Node *b = N(OP_ATTENTION_MASKED, q, k, k, X("f64[5, 7]"));
    Node *c = N(OP_ATTENTION_MASKED, q, k, k, C(1));
    ok(a, "f32[B, 4, 5, 8]");
    ck_assert_str_eq(ty(b), "f32[B, 4, 5, 8]");
    ck_assert_str_eq(ty(c), "f32[B, 4, 5, 8]");
    fresh();
    N(OP_ATTENTION_MASKED, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 8]"), X("f32[B, 4, 7, 8]"),
      X("f32[7, 5]"));
    err("attention: the mask [7, 5] does not broadcast to the scores [B, 4, 5, 7]");
}
END_TEST

/* attention's probabilities: [B, heads, T, S], with attention's checks */
TEST(rules, attention_probs)
{
    fresh();
    Node *q = X("f32[B, 4, 5, 8]"), *k = X("f32[B, 4, 7, 8]");
    Node *p = N(OP_ATTENTION_PROBS, q, k);
    Node *pm = N(OP_ATTENTION_PROBS_MASKED, q, k, X("i32[B, 1, 1, 7]"));
    ok(p, "f32[B, 4, 5, 7]");
    ck_assert_str_eq(ty(pm), "f32[B, 4, 5, 7]");
    fresh();
    N(OP_ATTENTION_PROBS, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 9]"));
    err("attention: shapes do not match");
    fresh();
    N(OP_ATTENTION_PROBS_MASKED, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 8]"), X("f32[7, 5]"));
    err("attention: the mask [7, 5] does not broadcast to the scores [B, 4, 5, 7]");
    fresh();
    Node *n = N(OP_ATTENTION_PROBS, X("f32[B, 4, 5, 8]"), X("f32[B, 4, 7, 8]"));
    ir_set_bool(G, n, "causal", true);
    err("attention: causal attention needs as many queries as keys, got 5 and 7");
}
END_TEST
