/*
 * Lowering, recurrent layers (frontend/lower_expr.c calls them): rnn,
 * lstm and gru with `lengths = n` become their packed ops, with
 * `bidirectional = true` a forward and a reversed pass joined as
 * PyTorch's, and with `return_state = true` a tuple of the hidden states
 * and the final states, all as slices of one op's rows.
 */
#include <string.h>

#include "lower.h"

/* y[begin:end:step] along axis (0 or 1), y[begin] along it when one */
static Node *slice_axis(L *l, Node *y, int axis, int64_t begin, int64_t end, int64_t step,
                        bool one, Loc loc)
{
    Node *n = ir_unary(l->g, OP_SLICE, y, loc);
    Dim b[2] = {{IR_NONE, false}, {IR_NONE, false}}, e[2] = {{IR_NONE, false}, {IR_NONE, false}};
    Dim st[2] = {{1, false}, {1, false}}, squeeze[1] = {{axis, false}};
    b[axis].n = begin;
    e[axis].n = end;
    st[axis].n = step;
    attr_set_begin(l->g, n, b, axis + 1);
    attr_set_end(l->g, n, e, axis + 1);
    attr_set_step(l->g, n, st, axis + 1);
    attr_set_squeeze(l->g, n, squeeze, one ? 1 : 0);
    return n;
}

/* y[:, begin:end] along time, y[:, begin] when one */
static Node *time_rows(L *l, Node *y, int64_t begin, int64_t end, bool one, Loc loc)
{
    return slice_axis(l, y, 1, begin, end, 1, one, loc);
}

/* Final state i (h_n 0, c_n 1) of a recurrent op y with rows final-state
 * rows after its hidden states: y[:, i - rows] */
static Node *final_state(L *l, Node *y, int i, int rows, Loc loc)
{
    int64_t at = i - rows; /* -2 for h_n of an lstm, -1 for the last row */
    return time_rows(l, y, at, at == -1 ? IR_NONE : at + 1, true, loc);
}

/* rnn/lstm/gru(..., return_state = true) is one op whose rows after the
 * hidden states hold the final states: the tuple (hs, h_n[, c_n]) of its
 * slices, PyTorch's output, h_n (and c_n). */
Value fe_recurrent_results(L *l, Node *y, Loc loc)
{
    int rows = ir_recurrent_state_rows(y);
    Value v = {.kind = V_TUPLE, .loc = loc, .n = 1 + rows};
    v.elems = arena_alloc(l->a, sizeof *v.elems * (size_t)v.n);
    v.elems[0] = tensor(time_rows(l, y, 0, -rows, false, loc), loc);
    for (int i = 0; i < rows; i++)
        v.elems[1 + i] = tensor(final_state(l, y, i, rows, loc), loc);
    return v;
}

/* The recurrent op (the packed one with lengths), with the final-state
 * rows when rows; attrs are the call's (return_state is the call's
 * business, not the packed op's). */
static Node *recurrent_op(L *l, Op op, Node **in, int nin, const AttrList *attrs, Node *lengths,
                          bool rows, Loc loc)
{
    Node *args[8];
    memcpy(args, in, sizeof *in * (size_t)nin);
    if (lengths) {
        args[nin++] = lengths;
        op = op == OP_LSTM ? OP_LSTM_PACKED : op == OP_GRU ? OP_GRU_PACKED : OP_RNN_PACKED;
    }
    Node *n = ir_node_new(l->g, op, args, nin, loc);
    AttrList own = ir_attrs_without(l->a, *attrs, "return_state");
    for (int i = 0; i < own.n; i++)
        ir_attrs_set(l->a, &n->attrs, own.v[i]);
    if (!lengths)
        attr_set_return_state(l->g, n, rows);
    return n;
}

/* x's steps in reverse order, each row's first lengths[b] with lengths */
static Node *reverse_steps(L *l, Node *x, Node *lengths, Loc loc)
{
    if (lengths)
        return ir_binary(l->g, OP_REVERSE_SEQUENCE, x, lengths, loc);
    return slice_axis(l, x, 1, IR_NONE, IR_NONE, -1, false, loc);
}

static Node *join(L *l, Op op, Node *a, Node *b, int axis, Loc loc)
{
    Node *n = ir_node_new(l->g, op, (Node *[]){a, b}, 2, loc);
    attr_set_axis(l->g, n, axis);
    return n;
}

/* zeros([2, ...]) or ones without a dtype: a fill whose type its first
 * user decides (pass_shape). Sliced per direction, the slice would be
 * that user and make it f32 under an f64 layer. */
static bool open_fill_2(const Node *x)
{
    if ((x->op != OP_ZEROS && x->op != OP_ONES) || attr_has_dtype(x))
        return false;
    AttrInts s = attr_shape(x);
    return s.n > 1 && s.v[0].n == 2 && !s.v[0].batch;
}

/* One direction's share of such a fill: the same fill without the
 * leading 2, for both directions, typed by their layers. */
static Node *direction_fill(L *l, const Node *x)
{
    AttrInts s = attr_shape(x);
    Node *n = ir_node_copy(l->g, x, NULL);
    n->name = NULL;
    attr_set_shape(l->g, n, s.v + 1, s.n - 1);
    return n;
}

/* rnn/lstm/gru with lengths = n or bidirectional = true. Bidirectional is
 * PyTorch's: a forward pass and one over the reversed steps (each row's
 * first n[b] with lengths, so that it starts at step n[b] - 1), each with
 * its own weights and initial states, passed stacked with a leading 2
 * (direction 0 forward, 1 reverse: h0 [2, B, H] as PyTorch's, w_ih
 * [2, F, G*H], ...); the hidden states are concatenated, [B, T, 2H], and
 * return_state's h_n, c_n stacked, [2, B, H]. */
Value fe_recurrent_call(L *l, Op op, Node **in, int nin, AttrList attrs, Node *lengths,
                        bool bidir, Loc loc)
{
    bool state = ir_attrs_get(&attrs, "return_state")->b, rows = state || lengths;
    int S = op == OP_LSTM ? 2 : 1;
    if (!bidir) {
        Node *y = recurrent_op(l, op, in, nin, &attrs, lengths, rows, loc);
        if (state)
            return fe_recurrent_results(l, y, loc);
        return tensor(rows ? time_rows(l, y, 0, -S, false, loc) : y, loc);
    }
    /* declared tensors' shapes are known: a missing leading 2 is said so */
    static const char *const names[3][6] = {{"x", "h0", "w_ih", "w_hh", "b"},
                                            {"x", "h0", "c0", "w_ih", "w_hh", "b"},
                                            {"x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"}};
    const char *const *name = names[op == OP_LSTM ? 1 : op == OP_GRU ? 2 : 0];
    bool ok = true;
    for (int i = 1; i < nin; i++) {
        const Node *a = in[i];
        if ((a->op != OP_INPUT && a->op != OP_PARAM) ||
            (a->shape.rank > 0 && a->shape.d[0].n == 2 && !a->shape.d[0].batch))
            continue;
        char buf[128];
        fe_err(l, loc,
               "%s: with bidirectional = true, %s takes both directions' values with a leading "
               "2, got %s",
               op_info[op].text, name[i],
               ir_shape_str(&a->shape, l->g->batch ? l->g->batch : "B", buf, sizeof buf));
        ok = false;
    }
    if (!ok)
        return poison;
    Node *fw[7], *bw[7], *y[2];
    fw[0] = in[0];
    bw[0] = reverse_steps(l, in[0], lengths, loc);
    for (int i = 1; i < nin; i++) {
        if (open_fill_2(in[i])) {
            fw[i] = bw[i] = direction_fill(l, in[i]);
            continue;
        }
        fw[i] = slice_axis(l, in[i], 0, 0, 1, 1, true, loc);
        bw[i] = slice_axis(l, in[i], 0, 1, 2, 1, true, loc);
    }
    y[0] = recurrent_op(l, op, fw, nin, &attrs, lengths, rows, loc);
    y[1] = recurrent_op(l, op, bw, nin, &attrs, lengths, rows, loc);
    Node *hf = rows ? time_rows(l, y[0], 0, -S, false, loc) : y[0];
    Node *hb = rows ? time_rows(l, y[1], 0, -S, false, loc) : y[1];
    Node *hs = join(l, OP_CONCAT, hf, reverse_steps(l, hb, lengths, loc), 2, loc);
    if (!state)
        return tensor(hs, loc);
    Value v = {.kind = V_TUPLE, .loc = loc, .n = 1 + S};
    v.elems = arena_alloc(l->a, sizeof *v.elems * (size_t)v.n);
    v.elems[0] = tensor(hs, loc);
    for (int i = 0; i < S; i++)
        v.elems[1 + i] = tensor(join(l, OP_STACK, final_state(l, y[0], i, S, loc),
                                     final_state(l, y[1], i, S, loc), 0, loc),
                                loc);
    return v;
}
