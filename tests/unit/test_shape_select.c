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
