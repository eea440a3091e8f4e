/*
 * The shape rules of the data-movement ops: reshape, flatten, transpose,
 * concat, stack, broadcast_to, the fills, one_hot, slice and slice_update
 * (passes/shape_layout.c): exact inferred types, canonicalized attributes
 * and the text of each diagnostic. The helpers are shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_layout");
GROUP(rules, NULL, teardown);

TEST(rules, reshape)
{
    fresh();
    Node *n = N(OP_RESHAPE, X("f32[B, 784]"));
    INTS(n, "shape", BD(1), 28, 28);
    ok(n, "f32[B, 28, 28]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 784]"));
    INTS(n, "shape", -1, 28, 28);
    ok(n, "f32[B, 28, 28]");
    ck_assert_str_eq(ints(n, "shape"), "[B, 28, 28]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 4]"));
    INTS(n, "shape", -1);
    ok(n, "f32[B*4]");
    fresh();
    n = N(OP_RESHAPE, X("f32[4, B]"));
    INTS(n, "shape", BD(1), -1);
    ok(n, "f32[B, 4]");
    ck_assert_str_eq(ints(n, "shape"), "[B, 4]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B*6, 5]"));
    INTS(n, "shape", BD(1), 3, -1);
    ok(n, "f32[B, 3, 10]");
    fresh();
    n = N(OP_RESHAPE, X("i32[2, 3]"));
    INTS(n, "shape", 6);
    ok(n, "i32[6]");
    fresh();
    n = N(OP_RESHAPE, X("f32[1]"));
    EMPTY_INTS(n, "shape");
    ok(n, "f32[]");

    fresh();
    n = N(OP_RESHAPE, X("f32[B, 784]"));
    INTS(n, "shape", BD(1), 100);
    err("reshape: cannot reshape [B, 784] (B*784 elements) into [B, 100]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 4]"));
    INTS(n, "shape", 4, 4);
    err("reshape: cannot reshape [B, 4] (B*4 elements) into [4, 4]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 6]"));
    INTS(n, "shape", -1, 4);
    err("reshape: cannot reshape [B, 6] (B*6 elements) into [-1, 4]");
    fresh();
    n = N(OP_RESHAPE, X("f32[6]"));
    INTS(n, "shape", BD(1), -1);
    err("reshape: cannot reshape [6] (6 elements) into [B, -1]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, B]"));
    INTS(n, "shape", -1);
    err("reshape: cannot reshape [B, B] (B^2 elements) into [-1]: -1 would hold the batch size "
        "more than once");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 4]"));
    INTS(n, "shape", -1, -1);
    err("reshape: only one dimension can be -1, got [-1, -1]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 4]"));
    INTS(n, "shape", BD(1), 0);
    err("reshape: invalid dimension 0 in [B, 0]");
    fresh();
    n = N(OP_RESHAPE, X("f32[B, 4]"));
    INTS(n, "shape", 1, 1, 1, 1, 1, 1, 1, 1, BD(1), 4);
    err("reshape: 'shape' has 10 dimensions, at most 8 are supported");
}
END_TEST

TEST(rules, flatten)
{
    fresh();
    Node *n = N(OP_FLATTEN, X("f32[B, 3, 4, 5]"));
    ok(n, "f32[B, 60]");
    fresh();
    n = N(OP_FLATTEN, X("f32[7]"));
    ok(n, "f32[7]");
    fresh();
    n = N(OP_FLATTEN, X("f32[4, B, 3]"));
    ok(n, "f32[4, B*3]");
    fresh();
    n = N(OP_FLATTEN, X("i32[B, 2]"));
    ok(n, "i32[B, 2]");
    fresh();
    N(OP_FLATTEN, X("f32[]"));
    err("flatten: expects a tensor of rank >= 1, got []");
    fresh();
    N(OP_FLATTEN, X("f32[2, B, B]"));
    err("flatten: cannot flatten [2, B, B]: a dimension would hold the batch size twice");
}
END_TEST

TEST(rules, transpose)
{
    fresh();
    Node *n = N(OP_TRANSPOSE, X("f32[B, 3, 4]"));
    ok(n, "f32[4, 3, B]");
    ck_assert_str_eq(ints(n, "perm"), "[2, 1, 0]");
    fresh();
    n = N(OP_TRANSPOSE, X("f32[B, 3, 4]"));
    INTS(n, "perm", 0, -1, 1);
    ok(n, "f32[B, 4, 3]");
    ck_assert_str_eq(ints(n, "perm"), "[0, 2, 1]");
    fresh();
    n = N(OP_TRANSPOSE, X("f32[]"));
    ok(n, "f32[]");
    fresh();
    n = N(OP_TRANSPOSE, X("f32[B, 3, 4]"));
    INTS(n, "perm", 0, 0, 1);
    err("transpose: perm [0, 0, 1] is not a permutation of the 3 dimensions of [B, 3, 4]");
    fresh();
    n = N(OP_TRANSPOSE, X("f32[B, 3, 4]"));
    INTS(n, "perm", 0, 3, 1);
    err("transpose: perm [0, 3, 1] is not a permutation of the 3 dimensions of [B, 3, 4]");
    fresh();
    n = N(OP_TRANSPOSE, X("f32[B, 3]"));
    INTS(n, "perm", 1, 0, 2);
    err("transpose: perm [1, 0, 2] has 3 entries, but [B, 3] has rank 2");
}
END_TEST

TEST(rules, concat_stack)
{
    fresh();
    Node *n = N(OP_CONCAT, X("f32[B, 3]"), X("f32[B, 5]"), X("f32[B, 1]"));
    ir_set_int(G, n, "axis", -1);
    ok(n, "f32[B, 9]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 1);
    fresh();
    n = N(OP_CONCAT, X("f32[B, 3]"), X("f32[B, 3]"));
    ok(n, "f32[B*2, 3]");
    fresh();
    n = N(OP_CONCAT, X("i32[4]"));
    ok(n, "i32[4]");
    fresh();
    N(OP_CONCAT, X("f32[B, 3]"), X("f32[B, 4]"));
    err("concat: shapes [B, 3] and [B, 4] differ outside axis 0");
    fresh();
    n = N(OP_CONCAT, X("f32[B, 3]"), X("f32[B, 3, 1]"));
    ir_set_int(G, n, "axis", 1);
    err("concat: shapes [B, 3] and [B, 3, 1] differ outside axis 1");
    fresh();
    N(OP_CONCAT, X("f32[B, 3]"), X("f32[2, 3]"));
    err("concat: cannot join B and 2 along axis 0 ([B, 3] and [2, 3])");
    fresh();
    N(OP_CONCAT, X("f32[B, 3]"), X("f64[B, 3]"));
    err("concat: element types differ (f32 vs f64)");
    fresh();
    n = N(OP_CONCAT, X("f32[B, 3]"), X("f32[B, 3]"));
    ir_set_int(G, n, "axis", 2);
    err("concat: axis 2 is out of range for [B, 3] (rank 2)");
    fresh();
    N(OP_CONCAT, X("f32[]"), X("f32[]"));
    err("concat: cannot concatenate scalars");
    fresh();
    N(OP_CONCAT);
    err("concat: expects at least one tensor");

    fresh();
    n = N(OP_STACK, X("f32[B, 3]"), X("f32[B, 3]"));
    ok(n, "f32[2, B, 3]");
    fresh();
    n = N(OP_STACK, X("f32[B, 3]"), X("f32[B, 3]"), X("f32[B, 3]"));
    ir_set_int(G, n, "axis", -1);
    ok(n, "f32[B, 3, 3]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 2);
    fresh();
    n = N(OP_STACK, X("f32[]"), X("f32[]"));
    ok(n, "f32[2]");
    fresh();
    N(OP_STACK, X("f32[B, 3]"), X("f32[B, 4]"));
    err("stack: shapes differ ([B, 3] and [B, 4])");
    fresh();
    n = N(OP_STACK, X("f32[B, 3]"), X("f32[B, 3]"));
    ir_set_int(G, n, "axis", 3);
    err("stack: axis 3 is out of range for stacking [B, 3] (-3..2)");
    fresh();
    N(OP_STACK, X("f32[3]"), X("i32[3]"));
    err("stack: element types differ (f32 vs i32)");
    fresh();
    N(OP_STACK);
    err("stack: expects at least one tensor");
}
END_TEST

TEST(rules, broadcast_fill_onehot)
{
    fresh();
    Node *n = N(OP_BROADCAST_TO, X("f32[3]"));
    INTS(n, "shape", BD(1), 2, 3);
    ok(n, "f32[B, 2, 3]");
    fresh();
    n = N(OP_BROADCAST_TO, X("f32[B, 1]"));
    INTS(n, "shape", BD(1), 5);
    ok(n, "f32[B, 5]");
    fresh();
    n = N(OP_BROADCAST_TO, X("f32[B, 10]"));
    INTS(n, "shape", BD(1), 5);
    err("broadcast_to: cannot broadcast [B, 10] to [B, 5]");
    fresh();
    n = N(OP_BROADCAST_TO, X("f32[5]"));
    INTS(n, "shape", BD(1));
    err("broadcast_to: cannot broadcast [5] to [B]");
    fresh();
    n = N(OP_BROADCAST_TO, X("f32[2, 5]"));
    INTS(n, "shape", 5);
    err("broadcast_to: cannot broadcast [2, 5] to [5]");

    static const Op fills[] = {OP_ZEROS, OP_ONES};
    for (int i = 0; i < 2; i++) {
        fresh();
        n = N(fills[i]);
        INTS(n, "shape", BD(1), 3);
        ok(n, "f32[B, 3]");
        fresh();
        n = N(fills[i]);
        EMPTY_INTS(n, "shape");
        ok(n, "f32[]");
        fresh();
        n = N(fills[i]);
        INTS(n, "shape", -1, 3);
        char want[128];
        snprintf(want, sizeof want, "%s: invalid dimension -1 in [-1, 3]", op_info[fills[i]].text);
        err(want);
    }

    fresh();
    n = N(OP_ONE_HOT, X("i32[B]"));
    ir_set_int(G, n, "n", 10);
    ok(n, "f32[B, 10]");
    fresh();
    n = N(OP_ONE_HOT, X("i32[]"));
    ir_set_int(G, n, "n", 1);
    ok(n, "f32[1]");
    fresh();
    n = N(OP_ONE_HOT, X("f32[B]"));
    ir_set_int(G, n, "n", 10);
    err("one_hot: expects i32 indices, got f32");
    fresh();
    n = N(OP_ONE_HOT, X("i32[B]"));
    ir_set_int(G, n, "n", 0);
    err("one_hot: n must be at least 1, got 0");
}
END_TEST

/* x[items]: bounds per written dimension, squeeze lists picked indices */
static Node *slice_of(Op op, Node *x, Node *v, int nw, const int64_t *b, const int64_t *e,
                      const int64_t *s, int nq, const int64_t *q)
{
    Node *n = op == OP_SLICE ? N(op, x) : N(op, x, v);
    tl_set_ints(G, n, "begin", b, nw);
    tl_set_ints(G, n, "end", e, nw);
    tl_set_ints(G, n, "step", s, nw);
    tl_set_ints(G, n, "squeeze", q, nq);
    return n;
}
#define L(...)                                                                                     \
    (int64_t[])                                                                                    \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

TEST(rules, slice)
{
    /* x[:, 2] */
    fresh();
    Node *n = slice_of(OP_SLICE, X("f32[B, 10, 8]"), NULL, 2, L(NONE, 2), L(NONE, NONE),
                       L(NONE, NONE), 1, L(1));
    ok(n, "f32[B, 8]");
    ck_assert_str_eq(ints(n, "begin"), "[0, 2, 0]");
    ck_assert_str_eq(ints(n, "end"), "[B, 3, 8]");
    ck_assert_str_eq(ints(n, "step"), "[1, 1, 1]");
    ck_assert_str_eq(ints(n, "squeeze"), "[1]");
    /* canonical bounds read again select the same elements */
    ck_assert(pass_shape(G));
    ck_assert_str_eq(ty(n), "f32[B, 8]");
    ck_assert_str_eq(ints(n, "begin"), "[0, 2, 0]");

    static const struct {
        int64_t b, e, s;
        const char *type, *begin, *end, *step;
    } cases[] = {
        {2, 5, NONE, "f32[B, 3, 8]", "[0, 2, 0]", "[B, 5, 8]", "[1, 1, 1]"},
        {-3, NONE, NONE, "f32[B, 3, 8]", "[0, 7, 0]", "[B, 10, 8]", "[1, 1, 1]"},
        {NONE, NONE, -1, "f32[B, 10, 8]", "[0, 9, 0]", "[B, none, 8]", "[1, -1, 1]"},
        {8, 2, -2, "f32[B, 3, 8]", "[0, 8, 0]", "[B, 3, 8]", "[1, -2, 1]"},
        {5, 100, NONE, "f32[B, 5, 8]", "[0, 5, 0]", "[B, 10, 8]", "[1, 1, 1]"},
        {-100, 3, NONE, "f32[B, 3, 8]", "[0, 0, 0]", "[B, 3, 8]", "[1, 1, 1]"},
        {0, 10, 3, "f32[B, 4, 8]", "[0, 0, 0]", "[B, 10, 8]", "[1, 3, 1]"},
        {NONE, NONE, 4, "f32[B, 3, 8]", "[0, 0, 0]", "[B, 9, 8]", "[1, 4, 1]"},
        {100, NONE, -3, "f32[B, 4, 8]", "[0, 9, 0]", "[B, none, 8]", "[1, -3, 1]"},
        {NONE, -11, -1, "f32[B, 10, 8]", "[0, 9, 0]", "[B, none, 8]", "[1, -1, 1]"},
    };
    for (int i = 0; i < countof(cases); i++) {
        fresh();
        n = slice_of(OP_SLICE, X("f32[B, 10, 8]"), NULL, 2, L(NONE, cases[i].b),
                     L(NONE, cases[i].e), L(NONE, cases[i].s), 0, NULL);
        ok(n, cases[i].type);
        ck_assert_str_eq(ints(n, "begin"), cases[i].begin);
        ck_assert_str_eq(ints(n, "end"), cases[i].end);
        ck_assert_str_eq(ints(n, "step"), cases[i].step);
        /* idempotent */
        ck_assert(pass_shape(G));
        ck_assert_str_eq(ty(n), cases[i].type);
        ck_assert_str_eq(ints(n, "end"), cases[i].end);
    }
    /* x[-1, 0] on a static tensor picks a scalar */
    fresh();
    n = slice_of(OP_SLICE, X("i32[4, 5]"), NULL, 2, L(-1, 0), L(NONE, NONE), L(NONE, NONE), 2,
                 L(0, 1));
    ok(n, "i32[]");
    ck_assert_str_eq(ints(n, "begin"), "[3, 0]");
    /* x[0:B] on a batch dimension is the whole of it */
    fresh();
    n = slice_of(OP_SLICE, X("f32[B, 3]"), NULL, 1, L(0), L(BD(1)), L(1), 0, NULL);
    ok(n, "f32[B, 3]");

    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 2, L(NONE, 10), L(NONE, NONE), L(NONE, NONE), 1,
             L(1));
    err("slice: index 10 is out of bounds for dimension 1 of size 10");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 2, L(NONE, -11), L(NONE, NONE), L(NONE, NONE), 1,
             L(1));
    err("slice: index -11 is out of bounds for dimension 1 of size 10");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 1, L(0), L(NONE), L(NONE), 1, L(0));
    err("slice: cannot slice the batch dimension (dimension 0 of [B, 10]); only ':' takes it");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 1, L(1), L(NONE), L(NONE), 0, NULL);
    err("slice: cannot slice the batch dimension");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 1, L(NONE), L(NONE), L(-1), 0, NULL);
    err("slice: cannot slice the batch dimension");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 2, L(NONE, 5), L(NONE, 2), L(NONE, NONE), 0,
             NULL);
    err("slice: the range 5:2 of dimension 1 (size 10) is empty");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 2, L(NONE, 2), L(NONE, 5), L(NONE, -1), 0, NULL);
    err("slice: the range 2:5:-1 of dimension 1 (size 10) is empty");
    fresh();
    slice_of(OP_SLICE, X("f32[B, 10]"), NULL, 2, L(NONE, NONE), L(NONE, NONE), L(NONE, 0), 0,
             NULL);
    err("slice: slice step cannot be zero");
    fresh();
    slice_of(OP_SLICE, X("f32[10]"), NULL, 2, L(1, 1), L(NONE, NONE), L(NONE, NONE), 2, L(0, 1));
    err("slice: too many indices (2) for [10]");
}
END_TEST

TEST(rules, slice_update)
{
    fresh();
    Node *n = slice_of(OP_SLICE_UPDATE, X("f32[B, 10]"), X("f32[B, 3]"), 2, L(NONE, 2),
                       L(NONE, 5), L(NONE, NONE), 0, NULL);
    ok(n, "f32[B, 10]");
    ck_assert_str_eq(ints(n, "begin"), "[0, 2]");
    fresh();
    n = slice_of(OP_SLICE_UPDATE, X("f32[B, 10]"), X("f32[3]"), 2, L(NONE, 2), L(NONE, 5),
                 L(NONE, NONE), 0, NULL);
    ok(n, "f32[B, 10]");
    fresh();
    Node *c = C(0);
    n = slice_of(OP_SLICE_UPDATE, X("f64[B, 10]"), c, 2, L(NONE, 4), L(NONE, NONE),
                 L(NONE, NONE), 1, L(1));
    ok(n, "f64[B, 10]");
    ck_assert_str_eq(ty(c), "f64[]");
    fresh();
    slice_of(OP_SLICE_UPDATE, X("f32[B, 10]"), X("f32[4]"), 2, L(NONE, 2), L(NONE, 5),
             L(NONE, NONE), 0, NULL);
    err("slice_update: cannot assign a value of shape [4] to a slice of shape [B, 3]");
    fresh();
    slice_of(OP_SLICE_UPDATE, X("f32[B, 10]"), X("i32[3]"), 2, L(NONE, 2), L(NONE, 5),
             L(NONE, NONE), 0, NULL);
    err("slice_update: element types differ (f32 vs i32)");
    fresh();
    slice_of(OP_SLICE_UPDATE, X("f32[B, 10]"), X("f32[10]"), 1, L(3), L(NONE), L(NONE), 1, L(0));
    err("slice_update: cannot slice the batch dimension");
}
END_TEST
