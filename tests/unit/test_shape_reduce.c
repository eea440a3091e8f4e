/*
 * The shape rules of the ops along axes: softmax and log_softmax, matmul,
 * the reductions and argmax (passes/shape_reduce.c): exact inferred types,
 * canonicalized attributes and the text of each diagnostic. The helpers are
 * shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_reduce");
GROUP(rules, NULL, teardown);

TEST(rules, rowwise)
{
    fresh();
    Node *n = N(OP_SOFTMAX, X("f32[B, 10]"));
    ok(n, "f32[B, 10]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 1);
    fresh();
    n = N(OP_LOG_SOFTMAX, X("f64[B, 3, 7]"));
    ir_set_int(G, n, "axis", -2);
    ok(n, "f64[B, 3, 7]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 1);
    fresh();
    n = N(OP_SOFTMAX, X("f32[B, 10]"));
    ir_set_int(G, n, "axis", 2);
    err("softmax: axis 2 is out of range for [B, 10] (rank 2)");
    fresh();
    n = N(OP_SOFTMAX, X("f32[B, 10]"));
    ir_set_int(G, n, "axis", -3);
    err("softmax: axis -3 is out of range for [B, 10] (rank 2)");
    fresh();
    N(OP_LOG_SOFTMAX, X("f32[]"));
    err("log_softmax: expects a tensor of rank >= 1, got []");
    fresh();
    N(OP_LOG_SOFTMAX, X("i32[B, 3]"));
    err("log_softmax: expects a floating-point tensor, got i32");
}
END_TEST

TEST(rules, matmul)
{
    static const struct {
        const char *a, *b, *want;
    } good[] = {
        {"f32[B, 784]", "f32[784, 10]", "f32[B, 10]"},
        {"f32[3]", "f32[3]", "f32[]"},
        {"f32[3]", "f32[3, 4]", "f32[4]"},
        {"f32[2, 3]", "f32[3]", "f32[2]"},
        {"f32[B, 1, 2, 3]", "f32[5, 3, 4]", "f32[B, 5, 2, 4]"},
        {"f32[3]", "f32[B, 3, 4]", "f32[B, 4]"},
        {"f32[B, 2, 3]", "f32[3]", "f32[B, 2]"},
        {"f32[2, B]", "f32[B, 3]", "f32[2, 3]"},
        {"f32[B, 5]", "f32[5, B]", "f32[B, B]"},
        {"i32[2, 3]", "i32[3, 4]", "i32[2, 4]"},
    };
    for (int i = 0; i < countof(good); i++) {
        fresh();
        Node *n = N(OP_MATMUL, X(good[i].a), X(good[i].b));
        ok(n, good[i].want);
    }
    static const struct {
        const char *a, *b, *msg;
    } bad[] = {
        {"f32[B, 784]", "f32[256, 10]",
         "matmul: inner dimensions differ (784 vs 256) in [B, 784] @ [256, 10]"},
        {"f32[4]", "f32[3]", "matmul: inner dimensions differ (4 vs 3) in [4] @ [3]"},
        {"f32[2, B]", "f32[4, 3]", "matmul: inner dimensions differ (B vs 4) in [2, B] @ [4, 3]"},
        {"f32[2, 2, 3]", "f32[3, 3, 4]",
         "matmul: cannot broadcast 2 with 3 ([2, 2, 3] and [3, 3, 4])"},
        {"f32[B, 2, 3]", "f32[7, 3, 4]",
         "matmul: cannot broadcast B with 7 ([B, 2, 3] and [7, 3, 4])"},
        {"f32[]", "f32[3]", "matmul: operands must have rank >= 1, got [] @ [3]"},
        {"f32[2, 3]", "f64[3, 4]", "matmul: element types differ (f32 vs f64)"},
        {"f32[2097152, 1]", "f32[1, 1048576]",
         "matmul: tensor too large: [2097152, 1048576] has more than 2^40 elements"},
    };
    for (int i = 0; i < countof(bad); i++) {
        fresh();
        N(OP_MATMUL, X(bad[i].a), X(bad[i].b));
        err(bad[i].msg);
    }
}
END_TEST

TEST(rules, reduce)
{
    static const Op ops[] = {OP_SUM, OP_MEAN, OP_MAX, OP_MIN, OP_VAR};
    for (int i = 0; i < countof(ops); i++) {
        fresh();
        Node *n = N(ops[i], X("f32[B, 3, 4]"));
        INTS(n, "axis", -1, 1);
        ok(n, "f32[B]");
        ck_assert_str_eq(ints(n, "axis"), "[1, 2]");

        fresh();
        n = N(ops[i], X("f64[B, 3, 4]"));
        INTS(n, "axis", 1);
        ir_set_bool(G, n, "keepdims", true);
        ok(n, "f64[B, 1, 4]");
        ck_assert_str_eq(ints(n, "axis"), "[1]");

        fresh();
        n = N(ops[i], X("f32[B, 3, 4]"));
        ok(n, "f32[]");
        ck_assert_str_eq(ints(n, "axis"), "[0, 1, 2]");

        fresh();
        n = N(ops[i], X("f32[B, 3, 4]"));
        ir_set_bool(G, n, "keepdims", true);
        ok(n, "f32[1, 1, 1]");

        fresh();
        n = N(ops[i], X("f32[B, 3, 4]"));
        INTS(n, "axis", 0);
        ok(n, "f32[3, 4]");

        fresh();
        n = N(ops[i], X("f32[B, 3, 4]"));
        INTS(n, "axis", 2, -1);
        char want[128];
        snprintf(want, sizeof want, "%s: axis 2 appears twice in the axis list",
                 op_info[ops[i]].text);
        err(want);

        fresh();
        n = N(ops[i], X("f32[B, 3]"));
        INTS(n, "axis", 2);
        snprintf(want, sizeof want, "%s: axis 2 is out of range for [B, 3] (rank 2)",
                 op_info[ops[i]].text);
        err(want);
    }
    /* integers: sum, max, min keep i32; mean and var need floats */
    static const Op int_ok[] = {OP_SUM, OP_MAX, OP_MIN};
    for (int i = 0; i < countof(int_ok); i++) {
        fresh();
        Node *n = N(int_ok[i], X("i32[B, 3]"));
        INTS(n, "axis", 1);
        ok(n, "i32[B]");
    }
    fresh();
    N(OP_MEAN, X("i32[B, 3]"));
    err("mean: expects a floating-point tensor, got i32");
    fresh();
    N(OP_VAR, X("i32[B, 3]"));
    err("var: expects a floating-point tensor, got i32");

    fresh();
    Node *n = N(OP_VAR, X("f32[B, 3]"));
    ir_set_int(G, n, "correction", 0);
    ok(n, "f32[]");
    fresh();
    n = N(OP_VAR, X("f32[B, 3]"));
    ir_set_int(G, n, "correction", -1);
    err("var: correction must be >= 0, got -1");

    fresh();
    n = N(OP_SUM, X("f32[B, 3]"));
    INTS(n, "axis", BD(1));
    err("sum: 'axis' must be a list of integers, got a batch dimension");

    /* a scalar reduces to itself */
    fresh();
    n = N(OP_SUM, X("f32[]"));
    ok(n, "f32[]");
    ck_assert_str_eq(ints(n, "axis"), "[]");
}
END_TEST

TEST(rules, argmax)
{
    fresh();
    Node *n = N(OP_ARGMAX, X("f32[B, 10]"));
    ir_set_int(G, n, "axis", -1);
    ok(n, "i32[B]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 1);
    fresh();
    n = N(OP_ARGMAX, X("f32[B, 10]"));
    ir_set_int(G, n, "axis", 0);
    ir_set_bool(G, n, "keepdims", true);
    ok(n, "i32[1, 10]");
    fresh();
    n = N(OP_ARGMAX, X("i32[B, 10]"));
    ok(n, "i32[]");
    ck_assert_ptr_null(ir_attr(n, "axis"));
    fresh();
    n = N(OP_ARGMAX, X("f64[B, 10]"));
    ir_set_bool(G, n, "keepdims", true);
    ok(n, "i32[1, 1]");
    fresh();
    n = N(OP_ARGMAX, X("f32[B, 10]"));
    ir_set_int(G, n, "axis", 2);
    err("argmax: axis 2 is out of range for [B, 10] (rank 2)");
}
END_TEST

/* Layout */
