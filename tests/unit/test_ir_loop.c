/*
 * Loops in the textual IR and the passes that walk bodies: the reader's
 * nesting limit and its errors inside bodies, print -> read -> print of a
 * body built with the ir.h builder, and CSE of loops (same body pointer
 * only). The golden tests (tests/golden, the loop cases) cover the driver's side.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "passes.h"
#include "testlib.h"

static Arena *A;

static void setup(void)
{
    A = arena_new();
    tl_diag_capture();
}

static void teardown(void)
{
    tl_diag_release();
    arena_free(A);
}

static Graph *read_text(const char *text)
{
    return ir_read(A, diag_add_source("loop.ir", text, strlen(text)));
}

/* depth loops, each the only node of its parent's body but for its input */
static char *nested(int depth)
{
    StrBuf b = {0};
    sb_printf(&b, "dlc-ir 1\nmodel m\n  %%0 = input \"x\" : f32[2]\n");
    for (int d = 0; d < depth; d++)
        sb_printf(&b, "%*s%%1 = loop(%%0) {trips = 2, carried = 1, stacked = 0, scanned = 0, "
                      "scan_axis = [], scan_start = [], scan_step = []} : ? {\n"
                      "%*s%%0 = input \"h\" : ?\n",
                  2 * d + 2, "", 2 * d + 4, "");
    for (int d = depth - 1; d >= 0; d--)
        sb_printf(&b, "%*s%s}\n", 2 * d + 4, "",
                  d == depth - 1 ? "output \"h\" = %0\n" : "");
    sb_printf(&b, "end\n");
    return b.s;
}

SUITE("ir_loop");
GROUP(text, setup, teardown);
GROUP(passes, setup, teardown);

TEST(text, nesting_limit)
{
    /* the innermost body's output line sits before the closing braces */
    char *ok = nested(3);
    ck_assert_ptr_null(read_text(ok)); /* bodies without outputs: counted */
    ck_assert_ptr_nonnull(strstr(tl_diags(), "loop: the body has 0 outputs, wants 1"));
    free(ok);
    diag_reset();
    char *deep = nested(40);
    ck_assert_ptr_null(read_text(deep));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "error: loops nest deeper than 32"));
    free(deep);
}
END_TEST

TEST(text, round_trip_of_a_built_loop)
{
    /* the builder's loop: s' = s * k over 4 trips, k unchanged */
    Graph *g = tl_graph_new(A, 4);
    Node *s = tl_input(g, "f64[B, 2]"), *k = tl_input(g, "f64[]");
    Graph *b = ir_body_new(g);
    Node *bs = ir_input(b, "s", DT_UNKNOWN, (Shape){0}, (Loc){0});
    Node *bk = ir_input(b, "k", DT_UNKNOWN, (Shape){0}, (Loc){0});
    ir_output(b, "s", ir_binary(b, OP_MUL, bs, bk, (Loc){0}), (Loc){0});
    Node *l = ir_node_new(g, OP_LOOP, (Node *[]){s, k}, 2, (Loc){0});
    l->body = b;
    attr_set_trips(g, l, 4);
    attr_set_carried(g, l, 1);
    attr_set_stacked(g, l, 0);
    attr_set_scanned(g, l, 0);
    attr_set_saved(g, l, 0);
    ir_set_ints(g, l, "scan_axis", NULL, 0);
    ir_set_ints(g, l, "scan_start", NULL, 0);
    ir_set_ints(g, l, "scan_step", NULL, 0);
    Node *r = ir_node_new(g, OP_LOOP_RESULT, &l, 1, (Loc){0});
    attr_set_index(g, r, 0);
    ir_output(g, "y", r, (Loc){0});
    ir_verify(g);
    ck_assert(pass_shape(g));
    char *t1 = tl_print(ir_print, g);
    ck_assert_ptr_nonnull(strstr(t1, "} : i32[] {\n    %0 = input \"s\" : f64[B, 2]\n"));
    ck_assert_ptr_nonnull(strstr(t1, "    output \"s\" = %2\n  }\n  %3 = loop_result(%2)"));
    Graph *back = read_text(t1);
    ck_assert_msg(back, "%s", tl_diags());
    char *t2 = tl_print(ir_print, back);
    ck_assert_str_eq(t1, t2);
    free(t1);
    free(t2);
}
END_TEST

TEST(text, body_errors_point_into_the_body)
{
    ck_assert_ptr_null(read_text("dlc-ir 1\nmodel m\n"
                                 "  %0 = input \"x\" : f32[2]\n"
                                 "  %1 = loop(%0) {trips = 2, carried = 1, stacked = 0, "
                                 "scanned = 0, scan_axis = [], scan_start = [], scan_step = []} "
                                 ": ? {\n"
                                 "    %0 = input \"h\" : ?\n"
                                 "    %0 = neg(%0) : ?\n"
                                 "  }\n"
                                 "end\n"));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "loop.ir:6:5: error: redefinition of value %0"));
}
END_TEST

TEST(text, counts_and_scans_are_bounded)
{
    /* start + step * (trips - 1) must not overflow in any pass */
    static const char *const cases[][2] = {
        {"trips = 3000000000, carried = 1, stacked = 0, scanned = 1, scan_axis = [0], "
         "scan_start = [0], scan_step = [1]",
         "loop: 3000000000 trips: at most 2147483647"},
        {"trips = 2, carried = 1, stacked = 0, scanned = 1, scan_axis = [0], "
         "scan_start = [0], scan_step = [4611686018427387904]",
         "loop: scan 0: start and step must be integers within 32 bits"},
        {"trips = 2, carried = 4294967297, stacked = 0, scanned = 1, scan_axis = [0], "
         "scan_start = [0], scan_step = [1]",
         "loop: more carried, stacked or scanned values than the 2 inputs"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = arena_printf(A, "dlc-ir 1\nmodel m\n"
                                     "  %%0 = input \"x\" : f32[4]\n"
                                     "  %%1 = loop(%%0, %%0) {%s} : ? {\n"
                                     "    %%0 = input \"h\" : ?\n"
                                     "    %%1 = input \"s\" : ?\n"
                                     "    output \"h\" = %%0\n"
                                     "  }\n"
                                     "end\n",
                                  cases[i][0]);
        diag_reset();
        ck_assert_ptr_null(read_text(text));
        ck_assert_msg(strstr(tl_diags(), cases[i][1]), "want %s in %s", cases[i][1], tl_diags());
    }
}
END_TEST

/* Two loops on the same inputs with the same attributes. */
static const char *TWO_LOOPS =
    "dlc-ir 1\nmodel m\n"
    "  %0 = input \"x\" : f32[2]\n"
    "  %1 = loop(%0) {trips = 2, carried = 1, stacked = 0, scanned = 0, scan_axis = [], "
    "scan_start = [], scan_step = []} : ? {\n"
    "    %0 = input \"h\" : ?\n"
    "    %1 = neg(%0) : ?\n"
    "    output \"h\" = %1\n"
    "  }\n"
    "  %2 = loop(%0) {trips = 2, carried = 1, stacked = 0, scanned = 0, scan_axis = [], "
    "scan_start = [], scan_step = []} : ? {\n"
    "    %0 = input \"h\" : ?\n"
    "    %1 = neg(%0) : ?\n"
    "    output \"h\" = %1\n"
    "  }\n"
    "  %3 = loop_result(%1) {index = 0} : ?\n"
    "  %4 = loop_result(%2) {index = 0} : ?\n"
    "  %5 = add(%3, %4) : ?\n"
    "  output \"y\" = %5\n"
    "end\n";

static int count_loops(const Graph *g)
{
    int c = 0;
    for (int i = 0; i < g->nodes.n; i++)
        c += g->nodes.v[i]->op == OP_LOOP;
    return c;
}

TEST(passes, cse_merges_loops_only_with_the_same_body)
{
    /* equal bodies, but not the same graph: both stay */
    Graph *g = read_text(TWO_LOOPS);
    ck_assert_ptr_nonnull(g);
    ck_assert(pass_shape(g));
    pass_simplify(g);
    ir_verify(g);
    ck_assert_int_eq(count_loops(g), 2);
    /* sharing one body: one loop, and its two results merge */
    g = read_text(TWO_LOOPS);
    ck_assert_ptr_nonnull(g);
    g->nodes.v[2]->body = g->nodes.v[1]->body;
    ck_assert(pass_shape(g));
    pass_simplify(g);
    ir_verify(g);
    ck_assert_int_eq(count_loops(g), 1);
    ck_assert_int_eq(g->nodes.n, 4); /* x, loop, loop_result, add */
    ck_assert_ptr_eq(g->nodes.v[3]->in[0], g->nodes.v[3]->in[1]);
}
END_TEST

TEST(passes, fuse_groups_inside_bodies)
{
    Graph *g = read_text("dlc-ir 1\nmodel m\n"
                         "  %0 = input \"x\" : f32[2]\n"
                         "  %1 = loop(%0) {trips = 2, carried = 1, stacked = 0, scanned = 0, "
                         "scan_axis = [], scan_start = [], scan_step = []} : ? {\n"
                         "    %0 = input \"h\" : ?\n"
                         "    %1 = neg(%0) : ?\n"
                         "    %2 = exp(%1) : ?\n"
                         "    output \"h\" = %2\n"
                         "  }\n"
                         "  %2 = loop_result(%1) {index = 0} : ?\n"
                         "  output \"y\" = %2\n"
                         "end\n");
    ck_assert_ptr_nonnull(g);
    ck_assert(pass_shape(g));
    pass_fuse(g);
    const Graph *b = g->nodes.v[1]->body;
    ck_assert_ptr_eq(b->nodes.v[1]->fused, b->nodes.v[2]);
    ck_assert_ptr_null(b->nodes.v[2]->fused); /* an output: the root */
    ck_assert_ptr_null(g->nodes.v[1]->fused);
}
END_TEST
