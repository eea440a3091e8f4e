/*
 * The shape rules of loop and loop_result (passes/shape_loop.c), on loops
 * written in the textual IR: what the body's inputs are typed as, the
 * canonical scan axes, the results' types, and the diagnostic of each
 * mistake. load() reads a model (types left '?'); pass_ok() runs pass_shape
 * and expects no error, err("text") exactly one error containing text
 * (shapetest.h).
 */
#include "shapetest.h"

static void load(const char *nodes)
{
    if (A)
        teardown();
    A = arena_new();
    tl_diag_capture();
    char *text = arena_printf(A, "dlc-ir 1\nmodel t batch B <= 8\n%send\n", nodes);
    G = ir_read(A, diag_add_source("loop.ir", text, strlen(text)));
    ck_assert_msg(G, "read: %s", tl_diags());
}

/* The node with id k of g (of the model, or of a body). */
static Node *at(const Graph *g, int k)
{
    ck_assert_int_lt(k, g->nodes.n);
    return g->nodes.v[k];
}

#define TYPE(n, want) ck_assert_str_eq(ty(n), want)

/* A loop's attributes: trips, the counts, then the scan lists. */
#define LOOP_ATTRS(trips, c, st, sc, axes, starts, steps)                                          \
    "{trips = " #trips ", carried = " #c ", stacked = " #st ", scanned = " #sc                     \
    ", scan_axis = " axes ", scan_start = " starts ", scan_step = " steps "}"

/* An RNN-like loop over xs [5, B, 3]: carried h [B, 3] from h0 (type of
 * the caller's choosing), stacked ys from ys0, scanned xs along axis, and
 * w [3, 3] unchanged; the body's h' = tanh(x w + h), output as h and y. */
static void rnn(const char *h0, const char *ys0, const char *axes, const char *starts,
                const char *steps, int trips, const char *body_out)
{
    char text[2048];
    snprintf(text, sizeof text,
             "%%0 = input \"h0\" : %s\n"
             "%%1 = input \"ys0\" : %s\n"
             "%%2 = input \"xs\" : f32[5, B, 3]\n"
             "%%3 = input \"w\" : f32[3, 3]\n"
             "%%4 = loop(%%0, %%1, %%2, %%3) {trips = %d, carried = 1, stacked = 1, scanned = 1, "
             "scan_axis = %s, scan_start = %s, scan_step = %s} : ? {\n"
             "  %%0 = input \"h\" : ?\n"
             "  %%1 = input \"x\" : ?\n"
             "  %%2 = input \"w\" : ?\n"
             "  %%3 = matmul(%%1, %%2) : ?\n"
             "  %%4 = add(%%3, %%0) : ?\n"
             "  %%5 = tanh(%%4) : ?\n"
             "  %%6 = sum(%%5) : ?\n"
             "  output \"h\" = %%%s\n"
             "  output \"y\" = %%5\n"
             "}\n"
             "%%5 = loop_result(%%4) {index = 0} : ?\n"
             "%%6 = loop_result(%%4) {index = 1} : ?\n"
             "output \"h\" = %%5\n"
             "output \"ys\" = %%6\n",
             h0, ys0, trips, axes, starts, steps, body_out);
    load(text);
}

SUITE("shape_loop");
GROUP(loop, NULL, teardown);

TEST(loop, types_body_and_results)
{
    rnn("f32[B, 3]", "f32[5, B, 3]", "[0, 0]", "[0, 0]", "[1, 1]", 5, "5");
    pass_ok();
    Node *l = at(G, 4);
    ck_assert_int_eq(l->op, OP_LOOP);
    ck_assert_int_eq(at(G, 5)->op, OP_LOOP_RESULT);
    TYPE(l, "i32[]");
    TYPE(at(l->body, 0), "f32[B, 3]"); /* carried */
    TYPE(at(l->body, 1), "f32[B, 3]"); /* a squeezed slice of xs */
    TYPE(at(l->body, 2), "f32[3, 3]"); /* unchanged */
    TYPE(at(l->body, 5), "f32[B, 3]");
    TYPE(at(G, 5), "f32[B, 3]");
    TYPE(at(G, 6), "f32[5, B, 3]");
}
END_TEST

TEST(loop, negative_axis_and_reversed_scan)
{
    /* the stacked result [B, 3, 4] indexed on its last axis (-1 -> 2),
     * xs read backwards from 4 with step -1 over all 5 steps */
    rnn("f32[B, 3]", "f32[B, 3, 5]", "[-1, 0]", "[0, 4]", "[1, -1]", 5, "5");
    pass_ok();
    const Attr *a = ir_attr(at(G, 4), "scan_axis");
    ck_assert_int_eq(a->ints.n, 2);
    ck_assert_int_eq(a->ints.v[0].n, 2);
    ck_assert_int_eq(a->ints.v[1].n, 0);
    TYPE(at(G, 6), "f32[B, 3, 5]");
}
END_TEST

TEST(loop, typed_body_inputs_are_checked)
{
    load("%0 = input \"x\" : f32[4]\n"
         "%1 = loop(%0) " LOOP_ATTRS(2, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
         "  %0 = input \"h\" : f32[4]\n"
         "  output \"h\" = %0\n"
         "}\n"
         "%2 = loop_result(%1) {index = 0} : ?\n"
         "output \"y\" = %2\n");
    pass_ok();
    load("%0 = input \"x\" : f32[4]\n"
         "%1 = loop(%0) " LOOP_ATTRS(2, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
         "  %0 = input \"h\" : f64[4]\n"
         "  output \"h\" = %0\n"
         "}\n"
         "output \"y\" = %1\n");
    err("loop: body input 'h' is f64[4], the loop gives f32[4]");
}
END_TEST

TEST(loop, nested)
{
    load("%0 = input \"x\" : f32[B, 2]\n"
         "%1 = loop(%0) " LOOP_ATTRS(3, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
         "  %0 = input \"h\" : ?\n"
         "  %1 = loop(%0, %0) " LOOP_ATTRS(2, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
         "    %0 = input \"g\" : ?\n"
         "    %1 = input \"c\" : ?\n"
         "    %2 = mul(%0, %1) : ?\n"
         "    output \"g\" = %2\n"
         "  }\n"
         "  %2 = loop_result(%1) {index = 0} : ?\n"
         "  output \"h\" = %2\n"
         "}\n"
         "%2 = loop_result(%1) {index = 0} : ?\n"
         "output \"y\" = %2\n");
    pass_ok();
    Node *inner = at(at(G, 1)->body, 1);
    TYPE(at(inner->body, 1), "f32[B, 2]");
    TYPE(at(inner->body, 2), "f32[B, 2]");
    TYPE(at(G, 2), "f32[B, 2]");
}
END_TEST

TEST(loop, carried_type_out_of_the_body)
{
    rnn("f32[B, 3]", "f32[5, B, 3]", "[0, 0]", "[0, 0]", "[1, 1]", 5, "6");
    err("loop: body output 0 ('h') is f32[], wants f32[B, 3]");
    rnn("f64[B, 3]", "f32[5, B, 3]", "[0, 0]", "[0, 0]", "[1, 1]", 5, "5");
    err("add: element types differ (f32 vs f64)"); /* inside the body */
}
END_TEST

TEST(loop, stacked_slice_mismatch)
{
    rnn("f32[B, 3]", "f32[5, B, 4]", "[0, 0]", "[0, 0]", "[1, 1]", 5, "5");
    err("loop: body output 1 ('y') is f32[B, 3], wants f32[B, 4]");
}
END_TEST

TEST(loop, index_out_of_range)
{
    /* 6 trips over 5 steps */
    rnn("f32[B, 3]", "f32[6, B, 3]", "[0, 0]", "[0, 0]", "[1, 1]", 6, "5");
    err("loop: sequence 0 reads indices 0 to 5 of a dimension of 5");
    /* the stacked result written backwards past its start */
    rnn("f32[B, 3]", "f32[5, B, 3]", "[0, 0]", "[3, 0]", "[-1, 1]", 5, "5");
    err("loop: stacked result 0 reads indices 3 to -1 of a dimension of 5");
    rnn("f32[B, 3]", "f32[5, B, 3]", "[0, 0]", "[0, 0]", "[1, 0]", 5, "5");
    err("loop: sequence 0 reads indices 0 to 0 of a dimension of 5"); /* step 0 */
    rnn("f32[B, 3]", "f32[5, B, 3]", "[0, 3]", "[0, 0]", "[1, 1]", 5, "5");
    err("loop: axis 3 is out of range for [5, B, 3] (rank 3)");
}
END_TEST

TEST(loop, batch_axis)
{
    rnn("f32[B, 3]", "f32[5, B, 3]", "[0, 1]", "[0, 0]", "[1, 1]", 1, "5");
    err("loop: sequence 0 runs along the batch dimension");
}
END_TEST

TEST(loop, result_index_out_of_range)
{
    load("%0 = input \"x\" : f32[4]\n"
         "%1 = loop(%0) " LOOP_ATTRS(2, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
         "  %0 = input \"h\" : ?\n"
         "  output \"h\" = %0\n"
         "}\n"
         "%2 = loop_result(%1) {index = 1} : ?\n"
         "output \"y\" = %2\n");
    err("loop_result: index 1 of a loop with 1 results");
}
END_TEST
