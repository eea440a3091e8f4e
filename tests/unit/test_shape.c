/*
 * The shape pass (passes/shape*.c): for every op of ir/ops.def, graphs
 * built with the ir.h builder (defaults filled as the lowering does),
 * checking the exact inferred type, the canonicalized attributes, and the
 * text of the diagnostics for each family of mistakes.
 *
 * Each case builds a fresh graph: X("f32[B, 784]") makes an input,
 * N(OP_ADD, a, b) a node, INTS(n, "axis", 1, -1) an ints attribute (BD(k)
 * is k*B, NONE an omitted bound). ok(n, "f32[B, 10]") runs the pass and
 * compares n's type; err("text") runs it and expects exactly one error
 * containing the text.
 */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "passes.h"
#include "testlib.h"

static Arena *A;
static Graph *G;

static void teardown(void)
{
    tl_diag_release();
    arena_free(A);
    A = NULL;
}

static void fresh(void)
{
    if (A)
        teardown();
    A = arena_new();
    G = tl_graph_new(A, 256);
    tl_diag_capture();
}

#define X(spec) tl_input(G, spec)
#define P(spec) tl_param(G, spec)
static Node *C(double v) { return ir_const(G, v, (Loc){0}); }

/* A node of op with its inputs (NULL-terminated) and default attributes. */
static Node *node(Op op, ...)
{
    Node *in[16];
    int nin = 0;
    va_list ap;
    va_start(ap, op);
    for (Node *x; (x = va_arg(ap, Node *));)
        in[nin++] = x;
    va_end(ap);
    return tl_node(G, op, in, nin);
}
#define N(...) node(__VA_ARGS__, (Node *)NULL)

#define NONE IR_NONE
#define BD(k) TL_BD(k)
#define INTS(n, name, ...)                                                                     \
    tl_set_ints(G, n, name, (int64_t[]){__VA_ARGS__},                                          \
                (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define EMPTY_INTS(n, name) ir_set_ints(G, n, name, NULL, 0)

static const char *ty(const Node *n)
{
    static char buf[256];
    char s[200];
    snprintf(buf, sizeof buf, "%s%s", ir_dtype_name(n->dtype), ir_shape_str(&n->shape, "B", s,
                                                                            sizeof s));
    return buf;
}

/* An ints attribute as "[0, B, none]". */
static const char *ints(const Node *n, const char *name)
{
    static char buf[256];
    const Attr *a = ir_attr(n, name);
    if (!a)
        return "absent";
    ck_assert_int_eq(a->kind, AK_INTS);
    size_t k = 0;
    buf[k++] = '[';
    for (int i = 0; i < a->ints.n; i++) {
        char d[64];
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? ", " : "",
                              ir_dim_str(a->ints.v[i], "B", d, sizeof d));
    }
    snprintf(buf + k, sizeof buf - k, "]");
    return buf;
}

static int count_errors(void)
{
    int c = 0;
    for (const char *p = tl_diags(); (p = strstr(p, "error:")); p++)
        c++;
    return c;
}

#define ok(n, want)                                                                            \
    do {                                                                                       \
        bool r_ = pass_shape(G);                                                               \
        ck_assert_msg(r_, "unexpected errors: %s", tl_diags());                                \
        ck_assert_str_eq(tl_diags(), "");                                                      \
        ck_assert_str_eq(ty(n), want);                                                         \
    } while (0)

#define err(text)                                                                                  \
    do {                                                                                           \
        bool r_ = pass_shape(G);                                                                   \
        ck_assert_msg(!r_, "expected an error containing \"%s\"", text);                           \
        ck_assert_msg(strstr(tl_diags(), text), "expected \"%s\" in:\n%s", text, tl_diags());      \
        ck_assert_int_eq(count_errors(), 1);                                                       \
        ck_assert_int_eq(diag_errors(), 1);                                                        \
    } while (0)

/* Sources */

SUITE("shape");
GROUP(rules, NULL, teardown);

TEST(rules, sources)
{
    fresh();
    Node *x = X("f32[B, 784]");
    Node *w = P("f64[3, 4]");
    ok(x, "f32[B, 784]");
    ck_assert_str_eq(ty(w), "f64[3, 4]");

    fresh();
    X("f32[B, 0]");
    err("input 'x0': dimension 1 must be at least 1, got [B, 0]");

    fresh();
    P("f32[B, 10]");
    err("param 'p0': a parameter cannot depend on the batch size, got [B, 10]");

    fresh();
    X("f32[B, 1048576, 1048576]");
    err("input 'x0': tensor too large: [B, 1048576, 1048576] has more than 2^40 elements");

    /* without a batch the limit is exact: 2^40 elements are fine */
    fresh();
    G->batch = NULL;
    G->max_batch = 0;
    x = X("f32[1048576, 1048576]");
    ok(x, "f32[1048576, 1048576]");

    fresh();
    Node *c = C(2.5);
    ok(c, "f32[]");
    /* a literal typed by an earlier run keeps its type */
    fresh();
    c = C(2);
    c->dtype = DT_F64;
    ok(c, "f64[]");
}
END_TEST

/* Elementwise */

TEST(rules, binary_broadcast)
{
    static const Op ops[] = {OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MAXIMUM, OP_MINIMUM};
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

    static const Op int_ok[] = {OP_ADD, OP_SUB, OP_MUL, OP_MAXIMUM, OP_MINIMUM};
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

/* Reductions */

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

/* Convolution and pooling */

TEST(rules, conv2d)
{
    fresh();
    Node *n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    ok(n, "f32[B, 16, 24, 24]");
    ck_assert_str_eq(ints(n, "stride"), "[1, 1]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 0]");
    ck_assert_str_eq(ints(n, "dilation"), "[1, 1]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "padding", 2);
    ok(n, "f32[B, 16, 15, 15]");
    ck_assert_str_eq(ints(n, "stride"), "[2, 2]");
    ck_assert_str_eq(ints(n, "padding"), "[2, 2]");
    fresh();
    n = N(OP_CONV2D, X("f64[2, 4, 8, 9]"), P("f64[8, 2, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    INTS(n, "stride", 1, 2);
    ok(n, "f64[2, 8, 6, 4]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 1, 7, 7]"), P("f32[1, 1, 3, 3]"));
    INTS(n, "dilation", 2);
    ok(n, "f32[B, 1, 3, 3]");
    /* "same": ceil(in / stride) positions, the odd unit of padding at the end */
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 4, 5]"));
    ir_set_str(G, n, "padding", "same");
    ok(n, "f32[B, 16, 28, 28]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2, 2, 2]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 27]"), P("f32[16, 3, 5, 5]"));
    ir_set_str(G, n, "padding", "same");
    INTS(n, "stride", 2);
    ok(n, "f32[B, 16, 14, 14]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2, 2, 2]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 3, 3]"));
    ir_set_str(G, n, "padding", "same");
    INTS(n, "dilation", 3);
    ok(n, "f32[B, 16, 28, 28]");
    ck_assert_str_eq(ints(n, "padding"), "[3, 3]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    ir_set_str(G, n, "padding", "valid");
    ok(n, "f32[B, 16, 24, 24]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 0]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "padding", 0, 2, 1, 0);
    ok(n, "f32[B, 16, 26, 25]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 2, 1, 0]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "padding", 1, 1, 2, 2);
    ok(n, "f32[B, 16, 26, 28]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2]");

    fresh();
    N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 4, 5, 5]"));
    err("conv2d: weight [16, 4, 5, 5] expects 4 input channels per group, but x [B, 3, 28, 28] "
        "has 3 (groups = 1)");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 6, 8, 8]"), P("f32[8, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 4);
    err("conv2d: input channels (6) are not divisible by groups (4) in [B, 6, 8, 8]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 6, 8, 8]"), P("f32[9, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    err("conv2d: output channels (9) are not divisible by groups (2) in [9, 3, 3, 3]");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 6, 8, 8]"), P("f32[8, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 0);
    err("conv2d: groups must be at least 1, got 0");
    fresh();
    N(OP_CONV2D, X("f32[B, 3, 3, 3]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: output height would be empty: input height 3, kernel 5, padding 0, dilation 1 "
        "(x [B, 3, 3, 3], weight [16, 3, 5, 5])");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "stride", 1, 2, 3);
    err("conv2d: 'stride' must have 1 or 2 elements, got 3");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "stride", 0);
    err("conv2d: 'stride' must be at least 1, got 0");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "padding", -1);
    err("conv2d: 'padding' must be at least 0, got -1");
    fresh();
    n = N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    INTS(n, "dilation", 1LL << 40);
    err("conv2d: 'dilation' value 1099511627776 is too large");
    fresh();
    N(OP_CONV2D, X("f32[B, 28, 28]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: expects x of shape [N, C, H, W], got [B, 28, 28]");
    fresh();
    N(OP_CONV2D, X("f32[3, B, 28, 28]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: the channel dimension cannot be the batch dimension, got [3, B, 28, 28]");
    fresh();
    N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f32[16, 3, 5]"));
    err("conv2d: expects a weight of shape [O, C/groups, kh, kw], got [16, 3, 5]");
    fresh();
    N(OP_CONV2D, X("f32[B, 3, 28, 28]"), P("f64[16, 3, 5, 5]"));
    err("conv2d: element types differ (f32 vs f64)");
    fresh();
    N(OP_CONV2D, X("i32[B, 3, 28, 28]"), P("f32[16, 3, 5, 5]"));
    err("conv2d: expects a floating-point tensor, got i32");
}
END_TEST

TEST(rules, conv1d)
{
    fresh();
    Node *n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 3]"));
    INTS(n, "stride", 2);
    ok(n, "f32[B, 8, 49]");
    ck_assert_str_eq(ints(n, "stride"), "[2]");
    ck_assert_str_eq(ints(n, "padding"), "[0]");
    fresh();
    n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 4]"));
    ir_set_str(G, n, "padding", "same");
    INTS(n, "stride", 3);
    ok(n, "f32[B, 8, 34]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 2]");
    fresh();
    n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 4]"));
    INTS(n, "padding", 3, 0);
    ok(n, "f32[B, 8, 100]");
    ck_assert_str_eq(ints(n, "padding"), "[3, 0]");
    fresh();
    n = N(OP_CONV1D, X("f32[B, 4, 100]"), P("f32[8, 4, 3]"));
    INTS(n, "stride", 1, 2);
    err("conv1d: 'stride' must be one integer, got 2");
    fresh();
    N(OP_CONV1D, X("f32[B, 4, 2]"), P("f32[8, 4, 3]"));
    err("conv1d: output length would be empty: input length 2, kernel 3");
    fresh();
    N(OP_CONV1D, X("f32[B, 4, 10, 10]"), P("f32[8, 4, 3]"));
    err("conv1d: expects x of shape [N, C, L], got [B, 4, 10, 10]");
}
END_TEST

TEST(rules, conv3d)
{
    fresh();
    Node *n = N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 6, 4, 10, 4]");
    ck_assert_str_eq(ints(n, "stride"), "[2, 1, 3]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 1, 1]");
    ck_assert_str_eq(ints(n, "dilation"), "[1, 1, 1]");
    fresh();
    n = N(OP_CONV3D, X("f64[2, 4, 8, 10, 12]"), P("f64[6, 2, 2, 2, 2]"));
    ir_set_int(G, n, "groups", 2);
    ir_set_str(G, n, "padding", "same");
    ok(n, "f64[2, 6, 8, 10, 12]");
    ck_assert_str_eq(ints(n, "padding"), "[0, 1, 0, 1, 0, 1]");
    fresh();
    n = N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "dilation", 2, 1);
    err("conv3d: 'dilation' must have 1 or 3 elements, got 2");
    fresh();
    n = N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "padding", 1, 1, 1, 1);
    err("conv3d: 'padding' must have 1, 3 or 6 elements (one, one per dimension, or [begin, "
        "end] for each), got 4");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 2, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    err("conv3d: output depth would be empty: input depth 2, kernel 3");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 10, 12]"), P("f32[6, 4, 3, 3, 3]"));
    err("conv3d: expects x of shape [N, C, D, H, W], got [B, 4, 10, 12]");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 4, 3, 3]"));
    err("conv3d: expects a weight of shape [O, C/groups, kd, kh, kw], got [6, 4, 3, 3]");
    fresh();
    N(OP_CONV3D, X("f32[B, 4, 8, 10, 12]"), P("f32[6, 3, 3, 3, 3]"));
    err("conv3d: weight [6, 3, 3, 3, 3] expects 3 input channels per group, but x "
        "[B, 4, 8, 10, 12] has 4 (groups = 1)");
    /* the gradients of rank 5 */
    fresh();
    n = N(OP_CONV_GRAD_INPUT, X("f32[B, 6, 4, 10, 4]"), P("f32[6, 4, 3, 3, 3]"));
    INTS(n, "size", 8, 10, 12);
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    INTS(n, "dilation", 1);
    ir_set_int(G, n, "groups", 1);
    ok(n, "f32[B, 4, 8, 10, 12]");
    fresh();
    n = N(OP_CONV_GRAD_WEIGHT, X("f32[B, 4, 8, 10, 12]"), X("f32[B, 6, 4, 10, 4]"));
    INTS(n, "kernel", 3);
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    INTS(n, "dilation", 1);
    ir_set_int(G, n, "groups", 1);
    ok(n, "f32[6, 4, 3, 3, 3]");
    fresh();
    n = N(OP_CONV_GRAD_WEIGHT, X("f32[B, 4, 8, 10, 12]"), X("f32[B, 6, 5, 10, 4]"));
    INTS(n, "kernel", 3);
    INTS(n, "stride", 2, 1, 3);
    INTS(n, "padding", 1);
    INTS(n, "dilation", 1);
    ir_set_int(G, n, "groups", 1);
    err("conv_grad_weight: dy [B, 6, 5, 10, 4] does not match the forward sizes");
}
END_TEST

TEST(rules, conv_transpose2d)
{
    fresh();
    Node *n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[8, 4, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 4, 14, 14]");
    ck_assert_str_eq(ints(n, "output_padding"), "[0, 0]");
    ck_assert_str_eq(ints(n, "stride"), "[2, 2]");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[8, 3, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    INTS(n, "stride", 2);
    INTS(n, "output_padding", 1, 0);
    ok(n, "f32[B, 6, 16, 15]");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[8, 4, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "output_padding", 2);
    err("conv_transpose2d: output_padding (2) must be smaller than either stride (2) or "
        "dilation (1)");
    fresh();
    N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 7, 7]"), P("f32[4, 8, 4, 4]"));
    err("conv_transpose2d: weight [4, 8, 4, 4] expects 4 input channels, but x [B, 8, 7, 7] "
        "has 8");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 8, 2, 2]"), P("f32[8, 4, 1, 1]"));
    INTS(n, "padding", 1);
    err("conv_transpose2d: output height would be 0: input height 2, kernel 1, padding 1, "
        "stride 1");
    fresh();
    n = N(OP_CONV_TRANSPOSE2D, X("f32[B, 9, 7, 7]"), P("f32[9, 4, 4, 4]"));
    ir_set_int(G, n, "groups", 2);
    err("conv_transpose2d: input channels (9) are not divisible by groups (2) in [B, 9, 7, 7]");
}
END_TEST

TEST(rules, conv_transpose1d)
{
    fresh();
    Node *n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4]"));
    INTS(n, "stride", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 4, 14]");
    ck_assert_str_eq(ints(n, "output_padding"), "[0]");
    ck_assert_str_eq(ints(n, "stride"), "[2]");
    ck_assert_str_eq(ints(n, "dilation"), "[1]");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f64[3, 8, 7]"), P("f64[8, 3, 3]"));
    ir_set_int(G, n, "groups", 2);
    INTS(n, "stride", 2);
    INTS(n, "output_padding", 1);
    INTS(n, "dilation", 2);
    ok(n, "f64[3, 6, 18]");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4]"));
    INTS(n, "stride", 2, 2);
    err("conv_transpose1d: 'stride' must be one integer, got 2");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4]"));
    INTS(n, "output_padding", 1);
    err("conv_transpose1d: output_padding (1) must be smaller than either stride (1) or "
        "dilation (1)");
    fresh();
    N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7, 7]"), P("f32[8, 4, 4]"));
    err("conv_transpose1d: expects x of shape [N, C, L], got [B, 8, 7, 7]");
    fresh();
    N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[8, 4, 4, 4]"));
    err("conv_transpose1d: expects a weight of shape [C, O/groups, k], got [8, 4, 4, 4]");
    fresh();
    N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 7]"), P("f32[4, 8, 4]"));
    err("conv_transpose1d: weight [4, 8, 4] expects 4 input channels, but x [B, 8, 7] has 8");
    fresh();
    n = N(OP_CONV_TRANSPOSE1D, X("f32[B, 8, 2]"), P("f32[8, 4, 1]"));
    INTS(n, "padding", 1);
    err("conv_transpose1d: output length would be 0: input length 2, kernel 1, padding 1, "
        "stride 1");
}
END_TEST

TEST(rules, upsample)
{
    fresh();
    Node *n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 2);
    ok(n, "f32[B, 3, 14, 18]");
    fresh();
    n = N(OP_UPSAMPLE, X("f64[2, 3, 7, 9]"));
    INTS(n, "scale", 1, 3);
    ok(n, "f64[2, 3, 7, 27]");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "size", 5, 20);
    ir_set_str(G, n, "mode", "bilinear");
    ok(n, "f32[B, 3, 5, 20]");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    err("upsample: give either 'scale' or 'size'");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 2);
    INTS(n, "size", 14);
    err("upsample: give either 'scale' or 'size', not both");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 0);
    err("upsample: 'scale' must be at least 1, got 0");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "scale", 2);
    ir_set_bool(G, n, "align_corners", true);
    err("upsample: align_corners needs mode = \"bilinear\"");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "size", 20, 65536);
    ok(n, "f32[B, 3, 20, 65536]");
    fresh();
    n = N(OP_UPSAMPLE, X("f32[B, 3, 7, 9]"));
    INTS(n, "size", 3, 65537);
    err("upsample: output width 65537 is more than the 65536 supported");
    fresh();
    n = N(OP_UPSAMPLE_GRAD, X("f32[1, 1, 7, 9]"), X("f32[1, 1, 70000, 18]"));
    err("upsample_grad: output height 70000 is more than the 65536 supported");
    fresh();
    n = N(OP_UPSAMPLE_GRAD, X("f32[B, 3, 7, 9]"), X("f32[B, 3, 14, 18]"));
    ok(n, "f32[B, 3, 7, 9]");
    fresh();
    N(OP_UPSAMPLE_GRAD, X("f32[B, 3, 7, 9]"), X("f64[B, 3, 14, 18]"));
    err("upsample_grad: element types differ (f32 vs f64)");
}
END_TEST

TEST(rules, adaptive_pool)
{
    static const Op ops[] = {OP_ADAPTIVE_AVG_POOL2D, OP_ADAPTIVE_MAX_POOL2D};
    for (int i = 0; i < 2; i++) {
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 3, 7, 9]"));
        INTS(n, "output_size", 3);
        ok(n, "f32[B, 3, 3, 3]");
        ck_assert_str_eq(ints(n, "output_size"), "[3, 3]");
        fresh();
        n = N(ops[i], X("f64[2, 3, 7, 9]"));
        INTS(n, "output_size", 1, 12);
        ok(n, "f64[2, 3, 1, 12]");
        fresh();
        n = N(ops[i], X("f32[B, 3, 7, 9]"));
        INTS(n, "output_size", 0, 2);
        snprintf(want, sizeof want, "%s: 'output_size' must be at least 1, got 0",
                 op_info[ops[i]].text);
        err(want);
        fresh();
        n = N(ops[i], X("f32[B, 3, 7]"));
        INTS(n, "output_size", 2);
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, H, W], got [B, 3, 7]",
                 op_info[ops[i]].text);
        err(want);
    }
    static const Op grads[] = {OP_ADAPTIVE_AVG_POOL2D_GRAD, OP_ADAPTIVE_MAX_POOL2D_GRAD};
    for (int i = 0; i < 2; i++) {
        char want[256];
        fresh();
        Node *n = N(grads[i], X("f32[B, 3, 7, 9]"), X("f32[B, 3, 2, 12]"));
        ok(n, "f32[B, 3, 7, 9]");
        fresh();
        N(grads[i], X("f32[B, 3, 7, 9]"), X("f32[B, 4, 2, 12]"));
        snprintf(want, sizeof want, "%s: dimension 1 differs between [B, 3, 7, 9] and "
                 "[B, 4, 2, 12]", op_info[grads[i]].text);
        err(want);
    }
}
END_TEST

TEST(rules, pool)
{
    static const Op ops[] = {OP_MAX_POOL2D, OP_AVG_POOL2D, OP_LP_POOL2D, OP_STOCHASTIC_POOL2D};
    for (int i = 0; i < countof(ops); i++) {
        const char *name = op_info[ops[i]].text;
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 3, 28, 28]"));
        INTS(n, "kernel", 2);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        ok(n, "f32[B, 3, 14, 14]");
        ck_assert_str_eq(ints(n, "kernel"), "[2, 2]");
        ck_assert_str_eq(ints(n, "stride"), "[2, 2]");

        fresh();
        n = N(ops[i], X("f64[B, 3, 28, 20]"));
        INTS(n, "kernel", 3, 2);
        INTS(n, "stride", 1);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 1);
        ok(n, "f64[B, 3, 26, 19]");
        ck_assert_str_eq(ints(n, "stride"), "[1, 1]");

        fresh();
        n = N(ops[i], X("f32[B, 3, 2, 28]"));
        INTS(n, "kernel", 3);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        snprintf(want, sizeof want, "%s: kernel height 3 is larger than the input height 2 of "
                 "[B, 3, 2, 28]", name);
        err(want);

        fresh();
        n = N(ops[i], X("i32[B, 3, 4, 4]"));
        INTS(n, "kernel", 2);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32", name);
        err(want);

        fresh();
        n = N(ops[i], X("f32[B, 3, 4, 4]"));
        INTS(n, "kernel", 0);
        if (ops[i] == OP_LP_POOL2D)
            ir_set_float(G, n, "p", 2);
        snprintf(want, sizeof want, "%s: 'kernel' must be at least 1, got 0", name);
        err(want);
    }
    /* padding (max and avg): at most half the kernel */
    fresh();
    Node *n = N(OP_MAX_POOL2D, X("f32[B, 3, 28, 28]"));
    INTS(n, "kernel", 3);
    INTS(n, "stride", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 3, 14, 14]");
    ck_assert_str_eq(ints(n, "padding"), "[1, 1]");
    fresh();
    n = N(OP_AVG_POOL2D, X("f32[B, 3, 28, 28]"));
    INTS(n, "kernel", 3);
    INTS(n, "padding", 2);
    err("avg_pool2d: padding (2) must be at most half the kernel size (3)");
    fresh();
    n = N(OP_MAX_POOL2D, X("f32[B, 3, 1, 1]"));
    INTS(n, "kernel", 2);
    INTS(n, "padding", 1);
    ok(n, "f32[B, 3, 1, 1]");
    fresh();
    n = N(OP_LP_POOL2D, X("f32[B, 3, 4, 4]"));
    INTS(n, "kernel", 2);
    ir_set_float(G, n, "p", 0);
    err("lp_pool2d: p must be positive, got 0");
    fresh();
    n = N(OP_MAX_POOL2D, X("f32[B, 3, 4]"));
    INTS(n, "kernel", 2);
    err("max_pool2d: expects x of shape [N, C, H, W], got [B, 3, 4]");

    /* the 1-d pools: one value per attribute, [N, C, L] */
    static const Op ops1[] = {OP_MAX_POOL1D, OP_AVG_POOL1D};
    for (int i = 0; i < countof(ops1); i++) {
        const char *name = op_info[ops1[i]].text;
        char want[256];
        fresh();
        n = N(ops1[i], X("f32[B, 3, 11]"));
        INTS(n, "kernel", 2);
        ok(n, "f32[B, 3, 5]");
        ck_assert_str_eq(ints(n, "stride"), "[2]");
        ck_assert_str_eq(ints(n, "padding"), "[0]");
        fresh();
        n = N(ops1[i], X("f64[2, 3, 11]"));
        INTS(n, "kernel", 4);
        INTS(n, "stride", 3);
        INTS(n, "padding", 2);
        ir_set_bool(G, n, "ceil_mode", true);
        ok(n, "f64[2, 3, 5]");
        fresh();
        n = N(ops1[i], X("f32[B, 3, 11]"));
        INTS(n, "kernel", 2, 2);
        snprintf(want, sizeof want, "%s: 'kernel' must be one integer, got 2", name);
        err(want);
        fresh();
        n = N(ops1[i], X("f32[B, 3, 2]"));
        INTS(n, "kernel", 3);
        snprintf(want, sizeof want, "%s: kernel length 3 is larger than the input length 2 of "
                 "[B, 3, 2]", name);
        err(want);
        fresh();
        n = N(ops1[i], X("f32[B, 3, 8]"));
        INTS(n, "kernel", 3);
        INTS(n, "padding", 2);
        snprintf(want, sizeof want, "%s: padding (2) must be at most half the kernel size (3)",
                 name);
        err(want);
        fresh();
        n = N(ops1[i], X("f32[B, 3, 8, 8]"));
        INTS(n, "kernel", 2);
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, L], got [B, 3, 8, 8]", name);
        err(want);
    }
    /* the 3-d pools: one value or three per attribute, [N, C, D, H, W] */
    static const Op ops3[] = {OP_MAX_POOL3D, OP_AVG_POOL3D};
    for (int i = 0; i < countof(ops3); i++) {
        const char *name = op_info[ops3[i]].text;
        char want[256];
        fresh();
        n = N(ops3[i], X("f32[B, 3, 5, 6, 7]"));
        INTS(n, "kernel", 2);
        ok(n, "f32[B, 3, 2, 3, 3]");
        ck_assert_str_eq(ints(n, "stride"), "[2, 2, 2]");
        ck_assert_str_eq(ints(n, "padding"), "[0, 0, 0]");
        fresh();
        n = N(ops3[i], X("f64[2, 3, 5, 6, 7]"));
        INTS(n, "kernel", 3, 2, 4);
        INTS(n, "stride", 2, 2, 3);
        INTS(n, "padding", 1, 0, 2);
        ir_set_bool(G, n, "ceil_mode", true);
        ok(n, "f64[2, 3, 3, 3, 3]");
        fresh();
        n = N(ops3[i], X("f32[B, 3, 5, 6, 7]"));
        INTS(n, "kernel", 2, 2);
        snprintf(want, sizeof want, "%s: 'kernel' must have 1 or 3 elements, got 2", name);
        err(want);
        fresh();
        n = N(ops3[i], X("f32[B, 3, 2, 6, 7]"));
        INTS(n, "kernel", 3);
        snprintf(want, sizeof want, "%s: kernel depth 3 is larger than the input depth 2 of "
                 "[B, 3, 2, 6, 7]", name);
        err(want);
        fresh();
        n = N(ops3[i], X("f32[B, 3, 6, 7]"));
        INTS(n, "kernel", 2);
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, D, H, W], got [B, 3, 6, 7]",
                 name);
        err(want);
    }
    fresh();
    n = N(OP_AVG_POOL2D_GRAD, X("f32[B, 3, 5, 6, 7]"), X("f32[B, 3, 2, 3, 3]"));
    INTS(n, "kernel", 2);
    INTS(n, "stride", 2);
    INTS(n, "padding", 0);
    ok(n, "f32[B, 3, 5, 6, 7]");
    /* their gradients: the 2-d primitives of rank 3 */
    fresh();
    n = N(OP_MAX_POOL2D_GRAD, X("f32[B, 3, 11]"), X("f32[B, 3, 5]"));
    INTS(n, "kernel", 4);
    INTS(n, "stride", 3);
    INTS(n, "padding", 2);
    ir_set_bool(G, n, "ceil_mode", true);
    ok(n, "f32[B, 3, 11]");
    fresh();
    n = N(OP_AVG_POOL2D_GRAD, X("f32[B, 3, 11]"), X("f32[B, 3, 5]"));
    INTS(n, "kernel", 4);
    INTS(n, "stride", 3);
    INTS(n, "padding", 2);
    err("avg_pool2d_grad: dy [B, 3, 5] does not match the forward sizes");
    fresh();
    n = N(OP_MAX_POOL2D_GRAD, X("f32[B, 11]"), X("f32[B, 5]"));
    INTS(n, "kernel", 2);
    INTS(n, "stride", 2);
    INTS(n, "padding", 0);
    err("max_pool2d_grad: expects x of rank 3 to 5, got [B, 11]");

    static const Op gops[] = {OP_GLOBAL_AVG_POOL, OP_GLOBAL_MAX_POOL};
    for (int i = 0; i < 2; i++) {
        fresh();
        n = N(gops[i], X("f32[B, 3, 7, 7]"));
        ok(n, "f32[B, 3]");
        fresh();
        n = N(gops[i], X("f64[B, 5, 9]"));
        ok(n, "f64[B, 5]");
        fresh();
        N(gops[i], X("f32[B, 3]"));
        char want[128];
        snprintf(want, sizeof want, "%s: expects x of shape [N, C, H, W] or [N, C, L], got [B, 3]",
                 op_info[gops[i]].text);
        err(want);
    }
}
END_TEST

/* Normalization */

static Node *bn(const char *x, const char *gamma, const char *beta, Node **m, Node **v)
{
    Node *xs = X(x), *gs = P(gamma), *bs = P(beta);
    *m = ir_state(G, arena_printf(A, "s%d", G->nodes.n), DT_UNKNOWN, (Shape){0}, INIT_ZEROS,
                  (Loc){0});
    *v = ir_state(G, arena_printf(A, "s%d", G->nodes.n), DT_UNKNOWN, (Shape){0}, INIT_ONES,
                  (Loc){0});
    return N(OP_BATCH_NORM, xs, gs, bs, *m, *v);
}

TEST(rules, batch_norm)
{
    Node *m, *v;
    fresh();
    Node *n = bn("f32[B, 16, 8, 8]", "f32[16]", "f32[16]", &m, &v);
    ok(n, "f32[B, 16, 8, 8]");
    ck_assert_str_eq(ty(m), "f32[16]");
    ck_assert_str_eq(ty(v), "f32[16]");
    /* the second run checks the now typed statistics instead */
    ck_assert(pass_shape(G));
    fresh();
    n = bn("f64[B, 5]", "f64[5]", "f64[5]", &m, &v);
    ok(n, "f64[B, 5]");
    ck_assert_str_eq(ty(v), "f64[5]");
    fresh();
    n = bn("f32[B, 4, 10]", "f32[4]", "f32[4]", &m, &v);
    ok(n, "f32[B, 4, 10]");

    fresh();
    bn("f32[B, 16, 8, 8]", "f32[8]", "f32[16]", &m, &v);
    err("batch_norm: gamma must have shape [16] for x [B, 16, 8, 8], got [8]");
    fresh();
    bn("f32[B, 16]", "f32[16]", "f32[16, 1]", &m, &v);
    err("batch_norm: beta must have shape [16] for x [B, 16], got [16, 1]");
    fresh();
    bn("f32[B, 16]", "f64[16]", "f64[16]", &m, &v);
    err("batch_norm: element types differ (f32 vs f64)");
    fresh();
    bn("f32[B]", "f32[1]", "f32[1]", &m, &v);
    err("batch_norm: expects x of shape [N, C], [N, C, L] or [N, C, H, W], got [B]");
    fresh();
    n = bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    ir_set_float(G, n, "momentum", 1.5);
    err("batch_norm: momentum must be in [0, 1], got 1.5");
    fresh();
    n = bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    ir_set_float(G, n, "eps", 0);
    err("batch_norm: eps must be positive, got 0");
    /* a failed batch_norm leaves its statistics untyped: readers are skipped */
    fresh();
    bn("f32[B, 16]", "f32[8]", "f32[8]", &m, &v);
    Node *r = N(OP_ADD, m, v);
    err("batch_norm: gamma must have shape [16] for x [B, 16], got [8]");
    ck_assert_int_eq(r->dtype, DT_UNKNOWN);
    fresh();
    bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    Node *after = N(OP_ADD, m, v);
    ok(after, "f32[16]");
    /* running statistics typed otherwise (a textual IR, say) */
    fresh();
    n = bn("f32[B, 16]", "f32[16]", "f32[16]", &m, &v);
    v->dtype = DT_F32;
    v->shape = (Shape){.rank = 1, .d = {{8, false}}};
    err("batch_norm: running statistics 's4' are f32[8], expected f32[16]");
}
END_TEST

TEST(rules, layer_norm)
{
    fresh();
    Node *n = N(OP_LAYER_NORM, X("f32[B, 5, 16]"), P("f32[16]"), P("f32[16]"));
    ok(n, "f32[B, 5, 16]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 2);
    fresh();
    n = N(OP_LAYER_NORM, X("f64[B, 5, 16]"), P("f64[5, 16]"), P("f64[5, 16]"));
    ir_set_int(G, n, "axis", 1);
    ok(n, "f64[B, 5, 16]");
    fresh();
    N(OP_LAYER_NORM, X("f32[B, 5, 16]"), P("f32[5]"), P("f32[16]"));
    err("layer_norm: gamma must have shape [16] for x [B, 5, 16], got [5]");
    fresh();
    n = N(OP_LAYER_NORM, X("f32[B, 5, 16]"), P("f32[16]"), P("f32[16]"));
    ir_set_int(G, n, "axis", 3);
    err("layer_norm: axis 3 is out of range for [B, 5, 16] (rank 3)");
    fresh();
    n = N(OP_LAYER_NORM, X("f32[B, 16]"), P("f32[16]"), P("f32[16]"));
    ir_set_float(G, n, "eps", -1);
    err("layer_norm: eps must be positive, got -1");
    fresh();
    N(OP_LAYER_NORM, X("f32[]"), P("f32[]"), P("f32[]"));
    err("layer_norm: expects a tensor of rank >= 1, got []");
    /* without axis, gamma's dimensions are the normalized ones */
    fresh();
    n = N(OP_LAYER_NORM, X("f32[B, 4, 5, 16]"), P("f32[5, 16]"), P("f32[5, 16]"));
    ok(n, "f32[B, 4, 5, 16]");
    ck_assert_int_eq(ir_attr_int(n, "axis"), 2);
    fresh();
    N(OP_LAYER_NORM, X("f32[B, 16]"), X("f32[2, 3, 16]"), P("f32[16]"));
    err("layer_norm: gamma [2, 3, 16] must have 1 to 2 dimensions, the trailing ones of x "
        "[B, 16]");
    fresh();
    N(OP_LAYER_NORM, X("f32[B, 16]"), P("f32[]"), P("f32[]"));
    err("layer_norm: gamma [] must have 1 to 2 dimensions, the trailing ones of x [B, 16]");
}
END_TEST

/* Sequences */

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

/* Selection */

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

/* Losses */

TEST(rules, class_loss)
{
    static const Op ops[] = {OP_CROSS_ENTROPY, OP_NLL_LOSS, OP_MULTI_MARGIN_LOSS};
    for (int i = 0; i < 3; i++) {
        const char *name = op_info[ops[i]].text;
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 10]"), X("i32[B]"));
        ok(n, "f32[]");
        fresh();
        n = N(ops[i], X("f64[B, 10]"), X("i32[B]"));
        ir_set_str(G, n, "reduction", "sum");
        ok(n, "f64[]");
        fresh();
        n = N(ops[i], X("f32[B, 10]"), X("i32[B]"));
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f32[B]");
        fresh();
        n = N(ops[i], X("f32[B, 10, 4, 4]"), X("i32[B, 4, 4]"));
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f32[B, 4, 4]");
        fresh();
        n = N(ops[i], X("f32[10]"), X("i32[]"));
        ok(n, "f32[]");

        fresh();
        N(ops[i], X("f32[B, 10]"), X("i32[B, 10]"));
        snprintf(want, sizeof want, "%s: labels must have shape [B] for scores [B, 10], got "
                 "[B, 10]", name);
        err(want);
        fresh();
        N(ops[i], X("f32[B, 10]"), X("f32[B]"));
        if (ops[i] == OP_CROSS_ENTROPY)
            snprintf(want, sizeof want, "%s: probabilities must have the scores' shape [B, 10], "
                     "got [B]", name);
        else
            snprintf(want, sizeof want, "%s: expects i32 class labels, got f32", name);
        err(want);
        fresh();
        N(ops[i], X("i32[B, 10]"), X("i32[B]"));
        snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32", name);
        err(want);
        fresh();
        N(ops[i], X("f32[]"), X("i32[]"));
        snprintf(want, sizeof want, "%s: expects scores of shape [N, C] or [N, C, d...], got []",
                 name);
        err(want);
    }
    /* soft targets: probabilities of the scores' shape and type */
    fresh();
    Node *n = N(OP_CROSS_ENTROPY, X("f32[B, 10, 3]"), X("f32[B, 10, 3]"));
    ir_set_str(G, n, "reduction", "none");
    ok(n, "f32[B, 3]");
    fresh();
    n = N(OP_CROSS_ENTROPY, X("f64[10]"), X("f64[10]"));
    ok(n, "f64[]");
    fresh();
    N(OP_CROSS_ENTROPY, X("f32[B, 10]"), X("f64[B, 10]"));
    err("cross_entropy: element types differ (f32 vs f64)");
    fresh();
    n = N(OP_MULTI_MARGIN_LOSS, X("f32[B, 10]"), X("i32[B]"));
    ir_set_float(G, n, "p", 3);
    err("multi_margin_loss: p must be 1 or 2, got 3");
}
END_TEST

TEST(rules, pair_loss)
{
    static const Op ops[] = {OP_BINARY_CROSS_ENTROPY, OP_MSE, OP_L1_LOSS, OP_SMOOTH_L1_LOSS,
                             OP_HUBER_LOSS, OP_KL_DIV};
    for (int i = 0; i < countof(ops); i++) {
        const char *name = op_info[ops[i]].text;
        char want[256];
        fresh();
        Node *n = N(ops[i], X("f32[B, 1]"), X("f32[B, 1]"));
        ok(n, "f32[]");
        fresh();
        n = N(ops[i], X("f64[B, 3]"), X("f64[B, 3]"));
        ir_set_str(G, n, "reduction", "none");
        ok(n, "f64[B, 3]");
        fresh();
        N(ops[i], X("f32[B, 1]"), X("f32[B]"));
        snprintf(want, sizeof want, "%s: prediction and target shapes differ ([B, 1] vs [B])",
                 name);
        err(want);
        fresh();
        N(ops[i], X("f32[B]"), X("f64[B]"));
        snprintf(want, sizeof want, "%s: element types differ (f32 vs f64)", name);
        err(want);
        fresh();
        N(ops[i], X("i32[B]"), X("i32[B]"));
        snprintf(want, sizeof want, "%s: expects a floating-point tensor, got i32", name);
        err(want);
    }
    fresh();
    Node *n = N(OP_SMOOTH_L1_LOSS, X("f32[B]"), X("f32[B]"));
    ir_set_float(G, n, "beta", 0);
    ok(n, "f32[]");
    fresh();
    n = N(OP_SMOOTH_L1_LOSS, X("f32[B]"), X("f32[B]"));
    ir_set_float(G, n, "beta", -1);
    err("smooth_l1_loss: beta must be >= 0, got -1");
    fresh();
    n = N(OP_HUBER_LOSS, X("f32[B]"), X("f32[B]"));
    ir_set_float(G, n, "delta", 0);
    err("huber_loss: delta must be positive, got 0");
}
END_TEST

/* The driver */

TEST(rules, errors_reported_once)
{
    /* one mistake: everything downstream is skipped silently */
    fresh();
    Node *bad = N(OP_ADD, X("f32[B, 10]"), X("f32[5, 10]"));
    Node *r = N(OP_RELU, bad);
    Node *s = N(OP_SUM, r);
    ir_output(G, "out", s, (Loc){0});
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = s;
    err("add: cannot broadcast B with 5");
    ck_assert_int_eq(bad->dtype, DT_UNKNOWN);
    ck_assert_int_eq(s->dtype, DT_UNKNOWN);

    /* independent mistakes are each reported */
    fresh();
    Node *x = X("f32[B, 10]");
    N(OP_ADD, x, X("f32[5, 10]"));
    N(OP_EXP, X("i32[3]"));
    Node *fine = N(OP_RELU, x);
    ck_assert(!pass_shape(G));
    ck_assert_int_eq(diag_errors(), 2);
    ck_assert_ptr_nonnull(strstr(tl_diags(), "add: cannot broadcast"));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "exp: expects a floating-point tensor, got i32"));
    ck_assert_str_eq(ty(fine), "f32[B, 10]");

    /* messages use the model's batch name and point at the node */
    fresh();
    G->batch = "N";
    int file = diag_add_source("m.dl", "    y = x + z;\n", 15);
    Node *a = X("f32[B, 10]"), *b = X("f32[5, 10]");
    ir_binary(G, OP_ADD, a, b, (Loc){file, 1, 9, 5});
    ck_assert(!pass_shape(G));
    ck_assert_str_eq(tl_diags(), "m.dl:1:9: error: add: cannot broadcast N with 5 ([N, 10] and "
                                  "[5, 10])\n        y = x + z;\n            ^~~~~\n");

    /* a graph with neither outputs nor train is fine */
    fresh();
    ck_assert(pass_shape(G));
}
END_TEST

TEST(rules, train_loss)
{
    fresh();
    int file = diag_add_source("m.dl", "    train loss with adam(lr = 1e-3);\n", 37);
    Node *x = X("f32[B, 10]");
    Node *l = N(OP_CROSS_ENTROPY, x, X("i32[B]"));
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = l;
    G->train->loc = (Loc){file, 1, 5, 5};
    ok(l, "f32[]");

    /* the location may point at the keyword or at the name */
    fresh();
    file = diag_add_source("m.dl", "    train loss with adam(lr = 1e-3);\n", 37);
    l = N(OP_RELU, X("f32[B, 10]"));
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = l;
    G->train->loc = (Loc){file, 1, 5, 5};
    err("m.dl:1:5: error: train: 'loss' must be a scalar, but has shape [B, 10]");
    fresh();
    file = diag_add_source("m.dl", "    train loss with adam(lr = 1e-3);\n", 37);
    l = N(OP_RELU, X("f32[B, 10]"));
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = l;
    G->train->loc = (Loc){file, 1, 11, 4};
    err("train: 'loss' must be a scalar, but has shape [B, 10]");
    /* no source text: a generic name */
    fresh();
    l = N(OP_ARGMAX, X("f32[B, 10]"));
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = l;
    err("train: the loss must be a floating-point scalar, but is i32");
    /* a named source is named */
    fresh();
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = X("f32[3]");
    err("train: 'x0' must be a scalar, but has shape [3]");
}
END_TEST

/* A second run over a checked graph accepts every canonicalized attribute
 * and infers the same types (autodiff reruns the pass). */
TEST(rules, idempotent)
{
    fresh();
    Node *x = X("f32[B, 3, 28, 28]");
    Node *c = N(OP_CONV2D, x, P("f32[8, 3, 3, 3]"));
    INTS(c, "padding", 1);
    Node *p = N(OP_MAX_POOL2D, c);
    INTS(p, "kernel", 2);
    Node *f = N(OP_RESHAPE, p);
    INTS(f, "shape", -1, 8 * 14 * 14);
    Node *t = N(OP_TRANSPOSE, f);
    Node *s = N(OP_SUM, t);
    INTS(s, "axis", -1);
    Node *m = N(OP_SOFTMAX, s);
    Node *y = N(OP_MUL, m, C(2));
    ok(y, "f32[1568]");
    const char *types[8];
    Node *all[] = {c, p, f, t, s, m, y};
    for (int i = 0; i < countof(all); i++)
        types[i] = arena_strdup(A, ty(all[i]));
    ck_assert(pass_shape(G));
    for (int i = 0; i < countof(all); i++)
        ck_assert_str_eq(ty(all[i]), types[i]);
    ck_assert_str_eq(types[1], "f32[B, 8, 14, 14]");
    ck_assert_str_eq(types[3], "f32[1568, B]");
    ck_assert_str_eq(ints(s, "axis"), "[1]");
}
END_TEST
