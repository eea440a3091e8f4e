/*
 * The shape pass (passes/shape.c): the sources' rules, and the driver that
 * walks the graph, reports each mistake once and checks the training loss.
 * The rules of each op family are tested in test_shape_FAMILY.c, after
 * passes/shape_FAMILY.c; the helpers are shapetest.h's.
 */
#include <string.h>

#include "shapetest.h"

SUITE("shape");
GROUP(rules, NULL, teardown);

/* Sources */

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

/* The driver */

/* Makes loss the graph's training loss, its statement at loc. */
static void train_on(Node *loss, Loc loc)
{
    G->train = arena_alloc(A, sizeof *G->train);
    G->train->loss = loss;
    G->train->loc = loc;
}

TEST(rules, errors_reported_once)
{
    /* one mistake: everything downstream is skipped silently */
    fresh();
    Node *bad = N(OP_ADD, X("f32[B, 10]"), X("f32[5, 10]"));
    Node *r = N(OP_RELU, bad);
    Node *s = N(OP_SUM, r);
    ir_output(G, "out", s, (Loc){0});
    train_on(s, (Loc){0});
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
    train_on(l, (Loc){file, 1, 5, 5});
    ok(l, "f32[]");

    /* the location may point at the keyword or at the name */
    fresh();
    file = diag_add_source("m.dl", "    train loss with adam(lr = 1e-3);\n", 37);
    l = N(OP_RELU, X("f32[B, 10]"));
    train_on(l, (Loc){file, 1, 5, 5});
    err("m.dl:1:5: error: train: 'loss' must be a scalar, but has shape [B, 10]");
    fresh();
    file = diag_add_source("m.dl", "    train loss with adam(lr = 1e-3);\n", 37);
    l = N(OP_RELU, X("f32[B, 10]"));
    train_on(l, (Loc){file, 1, 11, 4});
    err("train: 'loss' must be a scalar, but has shape [B, 10]");
    /* no source text: a generic name */
    fresh();
    l = N(OP_ARGMAX, X("f32[B, 10]"));
    train_on(l, (Loc){0});
    err("train: the loss must be a floating-point scalar, but is i32");
    /* a named source is named */
    fresh();
    train_on(X("f32[3]"), (Loc){0});
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
