/*
 * The shape rules of selection: where and gather (passes/shape_select.c):
 * exact inferred types, canonicalized attributes and the text of each
 * diagnostic. The helpers are shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_select");
GROUP(rules, NULL, teardown);

TEST(rules, where_gather)
{
    fresh();
    Node *a = N(OP_WHERE, X("i32[B, 1]"), X("f32[3]"), C(0));
    Node *b = N(OP_WHERE, C(1), X("f64[2, 1]"), X("f64[4]"));
    ok(a, "f32[B, 3]");
    ck_assert_str_eq(ty(b), "f64[2, 4]");
    fresh();
    N(OP_WHERE, X("f32[2]"), X("f32[3]"), X("f32[3]"));
    err("where: cannot broadcast 2 with 3 ([2] and [3])");
    fresh();
    Node *x = X("f32[B, 6, 4]");
    Node *g = N(OP_GATHER, x, X("i32[B, 2, 1]"));
    ir_set_int(G, g, "axis", -2);
    ok(g, "f32[B, 2, 4]");
    ck_assert_int_eq(ir_attr_int(g, "axis"), 1);
    Node *dy = X("f32[B, 2, 4]");
    Node *d = N(OP_GATHER_GRAD, x, X("i32[B, 2, 1]"), dy);
    ir_set_int(G, d, "axis", 1);
    ok(d, "f32[B, 6, 4]");
    fresh();
    d = N(OP_GATHER_GRAD, X("f32[B, 6, 4]"), X("i32[B, 2, 1]"), X("f32[B, 3, 4]"));
    ir_set_int(G, d, "axis", 1);
    err("gather_grad: dy is [B, 3, 4], gather's result [B, 2, 4]");
}
END_TEST

/* take: x's dimensions with the axis replaced by the ids' (any rank) */
TEST(rules, take)
{
    fresh();
    Node *w = X("f32[6, 4]");
    Node *rows = N(OP_TAKE, w, X("i32[B, 3]"));
    ok(rows, "f32[B, 3, 4]");
    Node *m = N(OP_TAKE, X("f64[B, 5, 4]"), X("i32[2, 3]"));
    ir_set_int(G, m, "axis", -2);
    ok(m, "f64[B, 2, 3, 4]");
    ck_assert_int_eq(ir_attr_int(m, "axis"), 1);
    Node *one = N(OP_TAKE, X("i32[5]"), X("i32[]"));
    ok(one, "i32[]");
    Node *d = N(OP_TAKE_GRAD, w, X("i32[B, 3]"), X("f32[B, 3, 4]"));
    ir_set_int(G, d, "axis", 0);
    ok(d, "f32[6, 4]");
    fresh();
    N(OP_TAKE, X("f32[6, 4]"), X("f32[3]"));
    err("take: the indices must be i32, got f32[3] (cast(ids, i32) converts)");
    fresh();
    N(OP_TAKE, X("f32[B, 4]"), X("i32[3]"));
    err("take: cannot index the batch dimension with a tensor (axis 0 of [B, 4])");
    fresh();
    Node *a = N(OP_TAKE, X("f32[6, 4]"), X("i32[3]"));
    ir_set_int(G, a, "axis", 2);
    err("take: axis 2 is out of range for [6, 4] (rank 2)");
    fresh();
    N(OP_TAKE, X("f32[]"), X("i32[3]"));
    err("take: cannot index a scalar (f32[]) with a tensor");
    fresh();
    N(OP_TAKE, X("f32[6, 2, 2, 2, 2, 2, 2, 2]"), X("i32[2, 2]"));
    err("take: indices [2, 2] into [6, 2, 2, 2, 2, 2, 2, 2] would give more than 8 dimensions");
    fresh();
    d = N(OP_TAKE_GRAD, X("f32[6, 4]"), X("i32[3]"), X("f32[2, 4]"));
    ir_set_int(G, d, "axis", 0);
    err("take_grad: dy is [2, 4], take's result [3, 4]");
}
END_TEST
