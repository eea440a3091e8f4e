/*
 * The shape rules of the elementwise ops: binary arithmetic with
 * broadcasting, casts to half-precision storage, unary math and
 * activations, clamp and dropout (passes/shape_eltwise.c): exact inferred types, canonicalized attributes
 * and the text of each diagnostic. The helpers are shapetest.h's.
 */
#include "shapetest.h"

SUITE("shape_eltwise");
GROUP(rules, NULL, teardown);

TEST(rules, binary_broadcast)
{
    static const Op ops[] = {OP_ADD,     OP_SUB,     OP_MUL,          OP_DIV,
                             OP_POW,     OP_MAXIMUM, OP_MINIMUM,      OP_FLOOR_DIVIDE,
                             OP_REMAINDER};
    for (int i = 0; i < countof(ops); i++) {
        fresh();
        Node *n = N(ops[i], X("f32[B, 10]"), X("f32[10]"));
        ok(n, "f32[B, 10]");
    }
    fresh();
    Node *n = N(OP_ADD, X("f32[B, 1, 3]"), X("f32[4, 1]"));
    ok(n, "f32[B, 4, 3]");
    fresh();
    n = N(OP_MUL, X("f32[1, 10]"), X("f32[B, 10]"));
    ok(n, "f32[B, 10]");
    fresh();
    n = N(OP_SUB, X("f32[B, 10]"), X("f32[B, 1]"));
    ok(n, "f32[B, 10]");
    fresh();
    n = N(OP_ADD, X("f64[]"), X("f64[]"));
    ok(n, "f64[]");
    fresh();
    n = N(OP_ADD, X("f32[B*2, 3]"), X("f32[B*2, 1]"));
    ok(n, "f32[B*2, 3]");
    fresh();
    n = N(OP_ADD, X("f32[5]"), X("f32[B, 1]"));
    ok(n, "f32[B, 5]");
    fresh();
    n = N(OP_ADD, X("f32[]"), X("f32[B, 3]"));
    ok(n, "f32[B, 3]");
    fresh();
    n = N(OP_MAXIMUM, X("f32[B, 1, 1]"), X("f32[1, 6, 1]"));
    ok(n, "f32[B, 6, 1]");

    fresh();
    N(OP_ADD, X("f32[B, 10]"), X("f32[5, 10]"));
    err("add: cannot broadcast B with 5 ([B, 10] and [5, 10])");
    fresh();
    N(OP_MUL, X("f32[B, 10]"), X("f32[B*2, 10]"));
    err("mul: cannot broadcast B with B*2 ([B, 10] and [B*2, 10])");
    fresh();
    N(OP_SUB, X("f32[3, 4]"), X("f32[4, 3]"));
    err("sub: cannot broadcast 3 with 4 ([3, 4] and [4, 3])");
}
END_TEST

TEST(rules, binary_types)
{
    fresh();
    N(OP_ADD, X("f32[B, 10]"), X("f64[B, 10]"));
    err("add: element types differ (f32 vs f64)");

    static const Op int_ok[] = {OP_ADD,     OP_SUB,          OP_MUL,
                                OP_MAXIMUM, OP_MINIMUM,      OP_FLOOR_DIVIDE,
                                OP_REMAINDER};
    for (int i = 0; i < countof(int_ok); i++) {
        fresh();
        Node *n = N(int_ok[i], X("i32[B]"), X("i32[1]"));
        ok(n, "i32[B]");
    }
    fresh();
    N(OP_DIV, X("i32[B]"), X("i32[B]"));
    err("div: expects a floating-point tensor, got i32");
    fresh();
    N(OP_POW, X("i32[B]"), X("i32[B]"));
    err("pow: expects a floating-point tensor, got i32");
}
END_TEST

/* Half-precision storage: cast to f16/bf16 only from f32; every other
 * reader gets one widening cast per value (pass_widen), in order. */
static Node *cast_to(Node *x, const char *to)
{
    Node *n = N(OP_CAST, x);
    attr_set_to(G, n, to);
    return n;
}

TEST(rules, half_storage)
{
    fresh();
    Node *n = cast_to(X("f32[B, 3]"), "f16");
    ok(n, "f16[B, 3]");
    fresh();
    n = cast_to(X("bf16[2, 3]"), "f64");
    ok(n, "f64[2, 3]");
    ck_assert_int_eq(n->in[0]->op, OP_INPUT); /* a cast reads it as it is */
    fresh();
    n = cast_to(X("f16[4]"), "i32");
    ok(n, "i32[4]");
    fresh();
    cast_to(X("f64[B]"), "f16");
    err("cast: f16 storage is converted from f32 only, got f64");
    fresh();
    cast_to(X("i32[B]"), "bf16");
    err("cast: bf16 storage is converted from f32 only, got i32");
    fresh();
    cast_to(X("f16[B]"), "bf16");
    err("cast: bf16 storage is converted from f32 only, got f16");
    fresh();
    P("i32[3]");
    err("param 'p0': parameters must be f32, f64, f16 or bf16, got i32");

    /* x @ w + w: one widening cast of w, right before its first reader */
    fresh();
    Node *x = X("f32[3, 3]"), *w = P("f16[3, 3]");
    Node *mm = N(OP_MATMUL, x, w);
    Node *add = N(OP_ADD, mm, w);
    int before = G->nodes.n;
    ok(add, "f32[3, 3]");
    ck_assert_int_eq(G->nodes.n, before + 1);
    Node *c = mm->in[1];
    ck_assert_int_eq(c->op, OP_CAST);
    ck_assert_str_eq(attr_to(c), "f32");
    ck_assert_ptr_eq(c->in[0], w);
    ck_assert_ptr_eq(add->in[1], c);
    ck_assert_str_eq(ty(c), "f32[3, 3]");
    for (int i = 0; i < G->nodes.n; i++) {
        ck_assert_int_eq(G->nodes.v[i]->id, i);
        for (int j = 0; j < G->nodes.v[i]->nin; j++)
            ck_assert_int_lt(G->nodes.v[i]->in[j]->id, i);
    }
    ck_assert_int_eq(c->id, mm->id - 1);
    /* again (autodiff re-runs pass_shape): nothing more to widen */
    ok(add, "f32[3, 3]");
    ck_assert_int_eq(G->nodes.n, before + 1);

    /* a cast to bf16 is widened too where an op reads it */
    fresh();
    Node *h = cast_to(X("f32[4]"), "bf16");
    n = N(OP_MUL, h, X("f32[4]"));
    ok(n, "f32[4]");
    ck_assert_int_eq(n->in[0]->op, OP_CAST);
    ck_assert_ptr_eq(n->in[0]->in[0], h);
    ck_assert_str_eq(ty(h), "bf16[4]");
}
END_TEST

TEST(rules, binary_consts)
{
    /* a literal takes the type of the tensor it meets, on either side */
    fresh();
    Node *c = C(2);
    Node *n = N(OP_MUL, X("f64[B, 3]"), c);
    ok(n, "f64[B, 3]");
    ck_assert_str_eq(ty(c), "f64[]");

    fresh();
    c = C(1);
    n = N(OP_SUB, c, X("i32[4]"));
    ok(n, "i32[4]");
    ck_assert_str_eq(ty(c), "i32[]");

    fresh();
    c = C(0.5);
    n = N(OP_ADD, X("f32[4]"), c);
    ok(n, "f32[4]");
    ck_assert_str_eq(ty(c), "f32[]");

    fresh();
    n = N(OP_POW, C(2), C(3));
    ok(n, "f32[]");

    fresh();
    N(OP_ADD, X("i32[4]"), C(0.5));
    err("add: the constant 0.5 is not an integer, but the other operand is i32");
}
END_TEST

TEST(rules, unary)
{
    static const Op ops[] = {OP_NEG,  OP_SQRT,    OP_RSQRT,      OP_EXP,   OP_LOG,   OP_ABS,
                             OP_SQUARE, OP_RELU,  OP_LEAKY_RELU, OP_ELU,   OP_SIGMOID,
                             OP_TANH, OP_GELU,    OP_SILU,       OP_SOFTPLUS, OP_STOP_GRADIENT};
    for (int i = 0; i < countof(ops); i++) {
        fresh();
        Node *n = N(ops[i], X("f32[B, 3, 5]"));
        ok(n, "f32[B, 3, 5]");
        fresh();
        n = N(ops[i], X("f64[]"));
        ok(n, "f64[]");
        fresh();
        n = N(ops[i], X("i32[B]"));
        if (op_info[ops[i]].flags & OPF_FLOAT) {
            char want[128];
            snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32",
                     op_info[ops[i]].text);
            err(want);
        } else {
            ok(n, "i32[B]");
        }
    }
}
END_TEST

TEST(rules, clamp_dropout)
{
    fresh();
    Node *n = N(OP_CLAMP, X("f32[B, 4]"));
    ir_set_float(G, n, "lo", -1);
    ir_set_float(G, n, "hi", 1);
    ok(n, "f32[B, 4]");
    fresh();
    n = N(OP_CLAMP, X("i32[B]"));
    ir_set_float(G, n, "lo", 0);
    ir_set_float(G, n, "hi", 0);
    ok(n, "i32[B]");
    fresh();
    n = N(OP_CLAMP, X("f32[B, 4]"));
    ir_set_float(G, n, "lo", 2);
    ir_set_float(G, n, "hi", 1);
    err("clamp: lo (2) must not be greater than hi (1)");
    fresh();
    n = N(OP_CLAMP, X("i32[B]"));
    ir_set_float(G, n, "lo", 0.5);
    ir_set_float(G, n, "hi", 3);
    err("clamp: bounds must be integers for an i32 tensor, got 0.5 and 3");

    fresh();
    n = N(OP_DROPOUT, X("f32[B, 4]"));
    ok(n, "f32[B, 4]");
    fresh();
    n = N(OP_DROPOUT, X("f32[B, 4]"));
    ir_set_float(G, n, "p", 1);
    err("dropout: p must be in [0, 1), got 1");
    fresh();
    n = N(OP_DROPOUT, X("f32[B, 4]"));
    ir_set_float(G, n, "p", -0.1);
    err("dropout: p must be in [0, 1), got -0.1");
    fresh();
    N(OP_DROPOUT, X("i32[B, 4]"));
    err("dropout: expects a floating-point tensor, got i32");

    fresh();
    n = N(OP_DROPOUT2D, X("f32[B, 4, 5, 6]"));
    ok(n, "f32[B, 4, 5, 6]");
    fresh();
    n = N(OP_DROPOUT2D, X("f64[B, 4, 5]"));
    ok(n, "f64[B, 4, 5]");
    fresh();
    N(OP_DROPOUT2D, X("f32[B, 4]"));
    err("dropout2d: expects x of shape [N, C, H, W] or [N, C, L], got [B, 4]");
    fresh();
    n = N(OP_DROPOUT2D, X("f32[B, 4, 5, 6]"));
    ir_set_float(G, n, "p", 1);
    err("dropout2d: p must be in [0, 1), got 1");
}
END_TEST
