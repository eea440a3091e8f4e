/*
 * Lowering (frontend/lower*.c, load.c): .dl text -> graph IR. Each test
 * parses a small program with fe_load_text, then checks the nodes, their
 * attributes and parameter names, or the exact diagnostics (captured with
 * diag_set_output into a memory stream).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "frontend.h"
#include "testlib.h"

static Arena *A;

static void setup(void)
{
    tl_diag_capture();
    A = arena_new();
}

static void teardown(void)
{
    tl_diag_release();
    arena_free(A);
}

static Graph *lower_d(const char *src, const Define *d, int nd)
{
    Graph *g = fe_load_text(A, "t.dl", src, strlen(src), d, nd);
    if (g)
        ir_verify(g);
    return g;
}

static Graph *lower(const char *src)
{
    return lower_d(src, NULL, 0);
}

/* Lowers src, which must succeed. */
static Graph *ok(const char *src)
{
    Graph *g = lower(src);
    if (!g || diag_errors())
        ck_abort_msg("unexpected errors:\n%s", tl_diags());
    return g;
}

/* Lowers src, which must fail with `msg` among the diagnostics. */
static void fails(const char *src, const char *msg)
{
    Graph *g = lower(src);
    ck_assert_ptr_null(g);
    ck_assert_int_gt(diag_errors(), 0);
    if (!strstr(tl_diags(), msg))
        ck_abort_msg("expected \"%s\" in:\n%s", msg, tl_diags());
}

static int count_op(const Graph *g, Op op)
{
    int n = 0;
    for (int i = 0; i < g->nodes.n; i++)
        n += g->nodes.v[i]->op == op;
    return n;
}

static Node *src_named(const Graph *g, const char *name)
{
    Node *n = ir_find_source(g, name);
    if (!n)
        ck_abort_msg("no source node named '%s'", name);
    return n;
}

static Node *output(const Graph *g, const char *name)
{
    for (int i = 0; i < g->outputs.n; i++)
        if (strcmp(g->outputs.v[i].name, name) == 0)
            return g->outputs.v[i].node;
    ck_abort_msg("no output '%s'", name);
    return NULL;
}

static void assert_ints(const Node *n, const char *attr, const int64_t *want, int nwant)
{
    const Attr *a = ir_attr(n, attr);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->kind, AK_INTS);
    ck_assert_int_eq(a->ints.n, nwant);
    for (int i = 0; i < nwant; i++)
        ck_assert_int_eq(a->ints.v[i].n, want[i]);
}

#define DENSE                                                                                      \
    "def dense(x, n_in, n_out) {\n"                                                                \
    "    param w: f32[n_in, n_out] = kaiming_uniform();\n"                                         \
    "    param b: f32[n_out];\n"                                                                   \
    "    return x @ w + b;\n"                                                                      \
    "}\n"

/* ---- def expansion and naming ------------------------------------------------ */

SUITE("lower");
GROUP(core, setup, teardown);

TEST(core, expand_mlp)
{
    Graph *g = ok(DENSE "model m {\n"
                        "    batch B <= 32;\n"
                        "    let H = 16;\n"
                        "    input x: f32[B, 8];\n"
                        "    fc1 = dense(x, 8, H);\n"
                        "    fc2 = dense(relu(fc1), H, 3);\n"
                        "    output y = softmax(fc2);\n"
                        "}\n");
    ck_assert_str_eq(g->name, "m");
    ck_assert_str_eq(g->batch, "B");
    ck_assert_int_eq(g->max_batch, 32);
    ck_assert_int_eq(count_op(g, OP_PARAM), 4);
    ck_assert_int_eq(count_op(g, OP_MATMUL), 2);
    ck_assert_int_eq(count_op(g, OP_ADD), 2);
    Node *w1 = src_named(g, "fc1.w"), *b2 = src_named(g, "fc2.b");
    ck_assert_int_eq(w1->shape.rank, 2);
    ck_assert_int_eq(w1->shape.d[0].n, 8);
    ck_assert_int_eq(w1->shape.d[1].n, 16);
    ck_assert_str_eq(ir_attr_str(w1, "init"), "kaiming_uniform");
    ck_assert_str_eq(ir_attr_str(b2, "init"), "zeros");
    src_named(g, "fc1.b");
    src_named(g, "fc2.w");
    Node *x = src_named(g, "x");
    ck_assert_int_eq(x->op, OP_INPUT);
    ck_assert(x->shape.d[0].batch && x->shape.d[0].n == 1);
    ck_assert_int_eq(x->loc.line, 9);
    ck_assert_int_eq(x->loc.col, 11);
    ck_assert_int_eq(output(g, "y")->op, OP_SOFTMAX);
    ck_assert_ptr_null(g->train);
}
END_TEST

TEST(core, naming_several_calls)
{
    Graph *g = ok(DENSE "model m {\n"
                        "    input x: f32[2, 4];\n"
                        "    h = dense(dense(x, 4, 8), 8, 2);\n"
                        "}\n");
    /* the outer call comes first in the source */
    Node *outer = src_named(g, "h.dense_0.w"), *inner = src_named(g, "h.dense_1.w");
    ck_assert_int_eq(outer->shape.d[0].n, 8);
    ck_assert_int_eq(outer->shape.d[1].n, 2);
    ck_assert_int_eq(inner->shape.d[0].n, 4);
    ck_assert_int_eq(inner->shape.d[1].n, 8);
    src_named(g, "h.dense_0.b");
    src_named(g, "h.dense_1.b");
    ck_assert_int_eq(count_op(g, OP_PARAM), 4);
}
END_TEST

TEST(core, naming_nested_and_return)
{
    Graph *g = ok(DENSE "def block(x) { return relu(dense(x, 4, 4)); }\n"
                        "def two(x) {\n"
                        "    conv1 = dense(x, 4, 4);\n"
                        "    param s: f32[4] = ones();\n"
                        "    return block(conv1) * s;\n"
                        "}\n"
                        "def id(x) { y = x * 2; return y; }\n"
                        "def twod(x) { return dense(dense(x, 4, 4), 4, 4); }\n"
                        "model m {\n"
                        "    input x: f32[2, 4];\n"
                        "    b1 = block(x);\n"
                        "    block1 = two(b1);\n"
                        "    z = id(block1) + dense(x, 4, 4);\n"
                        "    r = twod(x);\n"
                        "}\n");
    src_named(g, "b1.dense.w");
    src_named(g, "block1.conv1.w");
    src_named(g, "block1.conv1.b");
    src_named(g, "block1.s");
    src_named(g, "block1.block.dense.w");
    src_named(g, "r.dense_0.w");
    src_named(g, "r.dense_1.b");
    /* id makes no parameters, so only one call counts: no DEF_K */
    src_named(g, "z.w");
    src_named(g, "z.b");
    ck_assert_int_eq(count_op(g, OP_PARAM), 13);
}
END_TEST

TEST(core, naming_loops)
{
    Graph *g = ok(DENSE "model m {\n"
                        "    input x: f32[2, 8];\n"
                        "    h = x;\n"
                        "    for i in 0..3 { h = dense(h, 8, 8); }\n"
                        "    g = x;\n"
                        "    for i in 0..2 { for j in 1..3 { g = dense(g, 8, 8); } }\n"
                        "    for k in 5..5 { q = dense(g, 8, 8); }\n"
                        "    output h;\n"
                        "}\n");
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "h.%d.w", i);
        src_named(g, name);
    }
    src_named(g, "g.0.1.w");
    src_named(g, "g.1.2.b");
    ck_assert_ptr_null(ir_find_source(g, "g.0.0.w"));
    ck_assert_int_eq(count_op(g, OP_PARAM), 2 * (3 + 4));
    ck_assert_int_eq(count_op(g, OP_MATMUL), 7);
    /* the loop carries h: the output is the last dense's add, fed by the second one */
    Node *out = output(g, "h");
    ck_assert_int_eq(out->op, OP_ADD);
    Node *mm = out->in[0];
    ck_assert_int_eq(mm->op, OP_MATMUL);
    ck_assert_ptr_eq(mm->in[1], src_named(g, "h.2.w"));
    ck_assert_int_eq(mm->in[0]->op, OP_ADD);
    ck_assert_ptr_eq(mm->in[0]->in[0]->in[1], src_named(g, "h.1.w"));
}
END_TEST

TEST(core, shared_model_param)
{
    Graph *g = ok("def f(x, w) { return x @ w; }\n"
                  "model m {\n"
                  "    input x: f32[4, 4];\n"
                  "    param w: f32[4, 4] = normal(0, 0.1);\n"
                  "    a = f(x, w);\n"
                  "    b = f(a, w);\n"
                  "    for i in 0..2 { param v: f32[3] frozen; }\n"
                  "}\n");
    ck_assert_int_eq(count_op(g, OP_PARAM), 3);
    Node *w = src_named(g, "w");
    const Attr *args = ir_attr(w, "args");
    ck_assert_ptr_nonnull(args);
    ck_assert_int_eq(args->floats.n, 2);
    ck_assert_double_eq(args->floats.v[0], 0);
    ck_assert_double_eq(args->floats.v[1], 0.1);
    int users = 0;
    for (int i = 0; i < g->nodes.n; i++)
        users += g->nodes.v[i]->op == OP_MATMUL && g->nodes.v[i]->in[1] == w;
    ck_assert_int_eq(users, 2);
    ck_assert(ir_attr_bool(src_named(g, "v.1"), "frozen"));
    ck_assert(!ir_attr_bool(w, "frozen"));
}
END_TEST

TEST(core, naming_collision)
{
    fails(DENSE "model m {\n"
                "    input x: f32[2, 4];\n"
                "    h = dense(x, 4, 4);\n"
                "    h = dense(h, 4, 4);\n"
                "}\n",
          "t.dl:9:5: error: parameter 'h.w' is already defined; bind the result to a different "
          "name");
    ck_assert_ptr_nonnull(strstr(tl_diags(), "t.dl:8:5: note: 'h.w' was first defined here"));
}
END_TEST

TEST(core, default_inits)
{
    Graph *g = ok("model m {\n"
                  "    param s: f32[];\n"
                  "    param v: f32[3];\n"
                  "    param w: f32[3, 2];\n"
                  "    param u: f32[2] = uniform(hi = 2);\n"
                  "}\n");
    ck_assert_str_eq(ir_attr_str(src_named(g, "s"), "init"), "zeros");
    ck_assert_str_eq(ir_attr_str(src_named(g, "v"), "init"), "zeros");
    Node *w = src_named(g, "w");
    ck_assert_str_eq(ir_attr_str(w, "init"), "xavier_uniform");
    ck_assert_int_eq(ir_attr(w, "args")->floats.n, 1); /* gain = 1, the default */
    const Attr *u = ir_attr(src_named(g, "u"), "args");
    ck_assert_int_eq(u->floats.n, 2);
    ck_assert_double_eq(u->floats.v[0], 0);
    ck_assert_double_eq(u->floats.v[1], 2);
}
END_TEST

/* enum arguments of initializers reach the runtime as their choice's index */
TEST(core, init_enum_args)
{
    Graph *g = ok("model m {\n"
                  "    param k: f32[3, 2] = kaiming_normal(a = 0.2, mode = \"fan_out\",\n"
                  "                                        nonlinearity = \"tanh\");\n"
                  "    param d: f32[3, 2] = kaiming_uniform();\n"
                  "    param t: f32[3, 2] = truncated_normal(std = 0.5, b = 1);\n"
                  "}\n");
    static const struct {
        const char *name;
        int n;
        double v[4];
    } want[] = {{"k", 3, {0.2, 1, 2}}, {"d", 3, {0, 0, 4}}, {"t", 4, {0, 0.5, -2, 1}}};
    for (int i = 0; i < countof(want); i++) {
        const Attr *a = ir_attr(src_named(g, want[i].name), "args");
        ck_assert_int_eq(a->floats.n, want[i].n);
        for (int k = 0; k < want[i].n; k++)
            ck_assert_double_eq(a->floats.v[k], want[i].v[k]);
    }
}
END_TEST

/* ---- constants, -D, slices, attributes ------------------------------------------- */

TEST(core, defines_override)
{
    const char *src = "model m {\n"
                      "    let H = 8;\n"
                      "    param w: f32[H, 2];\n"
                      "}\n";
    Define d[2] = {{"H", 16, true}, {"Q", 1, true}};
    Graph *g = lower_d(src, d, 2);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(diag_errors(), 0);
    ck_assert_int_eq(src_named(g, "w")->shape.d[0].n, 16);
    ck_assert_ptr_nonnull(strstr(tl_diags(), "warning: -D Q: the model has no 'let Q'"));
    ck_assert_ptr_null(strstr(tl_diags(), "'let H'"));
}
END_TEST

TEST(core, constant_folding)
{
    Graph *g = ok("model m {\n"
                  "    batch N <= 8;\n"
                  "    let a = 7 / 2;\n"
                  "    let b = 6 / 3;\n"
                  "    let c = -(b * 3) + 10 - 1;\n"
                  "    let T = 4;\n"
                  "    input x: f32[N * T, c];\n"
                  "    param w: f32[b * 3];\n"
                  "    y = x * (a * 2);\n"
                  "    z = maximum(x, 0);\n"
                  "}\n");
    Node *x = src_named(g, "x");
    ck_assert(x->shape.d[0].batch);
    ck_assert_int_eq(x->shape.d[0].n, 4);
    ck_assert_int_eq(x->shape.d[1].n, 3);
    ck_assert_int_eq(src_named(g, "w")->shape.d[0].n, 6);
    ck_assert_int_eq(count_op(g, OP_CONST), 2);
    ck_assert_int_eq(count_op(g, OP_MUL), 1);
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        if (n->op == OP_MUL) {
            ck_assert_int_eq(n->in[1]->op, OP_CONST);
            ck_assert_double_eq(ir_attr_float(n->in[1], "value"), 7.0);
            /* binary ops point at their operator: `y = x * (a * 2);` */
            ck_assert_int_eq(n->loc.line, 9);
            ck_assert_int_eq(n->loc.col, 11);
        }
        if (n->op == OP_MAXIMUM) {
            ck_assert_double_eq(ir_attr_float(n->in[1], "value"), 0.0);
            ck_assert_int_eq(n->in[1]->loc.col, 20);
        }
    }
}
END_TEST

/* // and % fold as Python's: the quotient floors toward -inf, the
 * remainder takes the divisor's sign, so q * b + r == a in every sign. */
TEST(core, floor_division_and_modulo)
{
    static const struct {
        int64_t a, b, q, r;
    } cases[] = {{7, 2, 3, 1},   {-7, 2, -4, 1}, {7, -2, -4, -1}, {-7, -2, 3, -1},
                 {6, 3, 2, 0},   {-6, 3, -2, 0}, {0, -5, 0, 0},   {5, 9, 0, 5},
                 {-5, 9, -1, 4}, {9, -1, -9, 0}};
    for (int i = 0; i < countof(cases); i++) {
        /* shifted by 20 into positive dimensions */
        char src[256];
        snprintf(src, sizeof src,
                 "model m {\n    let q = (%lld) // (%lld);\n    let r = (%lld) %% (%lld);\n"
                 "    input x: f32[q + 20, r + 20];\n}\n",
                 (long long)cases[i].a, (long long)cases[i].b, (long long)cases[i].a,
                 (long long)cases[i].b);
        Graph *g = ok(src);
        Node *x = src_named(g, "x");
        ck_assert_int_eq(x->shape.d[0].n, cases[i].q + 20);
        ck_assert_int_eq(x->shape.d[1].n, cases[i].r + 20);
        ck_assert_int_eq(cases[i].q * cases[i].b + cases[i].r, cases[i].a);
    }
    /* floats floor too (7.5 // 2 = 3.0, -7.5 % 2 = 0.5); the batch symbol
     * divides exactly or not at all; same precedence as * and / */
    Graph *g = ok("model m {\n"
                  "    batch B <= 8;\n"
                  "    let c = 2 + 17 % 5 * 3;\n"
                  "    input x: f32[B * 4 // 2, c];\n"
                  "    y = x * (7.5 // 2);\n"
                  "    z = x * (-7.5 % 2);\n"
                  "    for i in 0..10 // 3 { y = y * 1; }\n"
                  "}\n");
    Node *x = src_named(g, "x");
    ck_assert(x->shape.d[0].batch);
    ck_assert_int_eq(x->shape.d[0].n, 2);
    ck_assert_int_eq(x->shape.d[1].n, 8);
    double v[8];
    int k = 0;
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->op == OP_CONST && k < 8)
            v[k++] = ir_attr_float(g->nodes.v[i], "value");
    ck_assert_int_eq(k, 5); /* 3.0, 0.5 and the loop's three 1s */
    ck_assert_double_eq(v[0], 3.0);
    ck_assert_double_eq(v[1], 0.5);
    /* on a tensor, the ops floor_divide and remainder */
    g = ok("model m { input x: f32[2]; y = x // 2 + 3 % x; }");
    ck_assert_int_eq(count_op(g, OP_FLOOR_DIVIDE), 1);
    ck_assert_int_eq(count_op(g, OP_REMAINDER), 1);
    /* C leaves INT64_MIN % -1 undefined; Python says 0 */
    g = ok("model m { let a = -9223372036854775807 - 1; input x: f32[a % -1 + 1]; }");
    ck_assert_int_eq(src_named(g, "x")->shape.d[0].n, 1);
}
END_TEST

TEST(core, slices)
{
    Graph *g = ok("model m {\n"
                  "    input x: f32[4, 6, 8];\n"
                  "    let t = 2;\n"
                  "    a = x[:, t, 2:5];\n"
                  "    b = x[-1, ::2];\n"
                  "    c = x;\n"
                  "    c[0, 1:] = a[1];\n"
                  "    output c;\n"
                  "}\n");
    ck_assert_int_eq(count_op(g, OP_SLICE), 3);
    Node *a = NULL, *b = NULL;
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->op == OP_SLICE && g->nodes.v[i]->in[0]->op == OP_INPUT) {
            if (!a)
                a = g->nodes.v[i];
            else
                b = g->nodes.v[i];
        }
    const int64_t N = IR_NONE;
    assert_ints(a, "begin", (int64_t[]){N, 2, 2}, 3);
    assert_ints(a, "end", (int64_t[]){N, 3, 5}, 3);
    assert_ints(a, "step", (int64_t[]){1, 1, 1}, 3);
    assert_ints(a, "squeeze", (int64_t[]){1}, 1);
    assert_ints(b, "begin", (int64_t[]){-1, N}, 2);
    assert_ints(b, "end", (int64_t[]){N, N}, 2);
    assert_ints(b, "step", (int64_t[]){1, 2}, 2);
    assert_ints(b, "squeeze", (int64_t[]){0}, 1);
    Node *c = output(g, "c");
    ck_assert_int_eq(c->op, OP_SLICE_UPDATE);
    ck_assert_ptr_eq(c->in[0], src_named(g, "x"));
    ck_assert_int_eq(c->in[1]->op, OP_SLICE);
    assert_ints(c, "begin", (int64_t[]){0, 1}, 2);
    assert_ints(c, "end", (int64_t[]){1, N}, 2);
    assert_ints(c, "squeeze", (int64_t[]){0}, 1);
}
END_TEST

TEST(core, attributes)
{
    Graph *g = ok("model m {\n"
                  "    batch B <= 4;\n"
                  "    input x: f32[B, 3, 8, 8];\n"
                  "    input y: i32[B];\n"
                  "    param w: f32[4, 3, 3, 3];\n"
                  "    c = conv2d(x, w, 2, padding = [1, 0]);\n"
                  "    r = reshape(c, [B, -1]);\n"
                  "    s = sum(r, 1);\n"
                  "    k = concat([r, r], axis = 1);\n"
                  "    l = cross_entropy(r, y, reduction = \"sum\");\n"
                  "    o = ones([2, 3]);\n"
                  "    train l with adam(1e-3, weight_decay = 0.1), clip_norm = 1, "
                  "schedule = step(100);\n"
                  "}\n");
    Node *c = NULL, *r = NULL, *s = NULL, *k = NULL, *l = NULL, *o = NULL;
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        c = n->op == OP_CONV2D ? n : c;
        r = n->op == OP_RESHAPE ? n : r;
        s = n->op == OP_SUM ? n : s;
        k = n->op == OP_CONCAT ? n : k;
        l = n->op == OP_CROSS_ENTROPY ? n : l;
        o = n->op == OP_ONES ? n : o;
    }
    assert_ints(c, "stride", (int64_t[]){2}, 1);
    assert_ints(c, "padding", (int64_t[]){1, 0}, 2);
    assert_ints(c, "dilation", (int64_t[]){1}, 1);
    ck_assert_int_eq(ir_attr_int(c, "groups"), 1);
    const Attr *sh = ir_attr(r, "shape");
    ck_assert_int_eq(sh->ints.n, 2);
    ck_assert(sh->ints.v[0].batch && sh->ints.v[0].n == 1);
    ck_assert(!sh->ints.v[1].batch && sh->ints.v[1].n == -1);
    assert_ints(s, "axis", (int64_t[]){1}, 1);
    ck_assert(!ir_attr_bool(s, "keepdims"));
    ck_assert_int_eq(k->nin, 2);
    ck_assert_int_eq(ir_attr_int(k, "axis"), 1);
    ck_assert_str_eq(ir_attr_str(l, "reduction"), "sum");
    ck_assert_int_eq(o->nin, 0);
    assert_ints(o, "shape", (int64_t[]){2, 3}, 2);
    ck_assert_ptr_nonnull(g->train);
    ck_assert_ptr_eq(g->train->loss, l);
    ck_assert_int_eq(g->train->optim, OPTIM_ADAM);
    ck_assert_double_eq(ir_attrs_get(&g->train->optim_args, "lr")->f, 1e-3);
    ck_assert_double_eq(ir_attrs_get(&g->train->optim_args, "beta2")->f, 0.999);
    ck_assert_double_eq(ir_attrs_get(&g->train->optim_args, "weight_decay")->f, 0.1);
    ck_assert(g->train->has_clip);
    ck_assert_double_eq(g->train->clip_norm, 1);
    ck_assert_int_eq(g->train->sched, SCHED_STEP);
    ck_assert_int_eq(ir_attrs_get(&g->train->sched_args, "every")->i, 100);
    ck_assert_double_eq(ir_attrs_get(&g->train->sched_args, "gamma")->f, 0.1);
}
END_TEST

TEST(core, batch_norm_state)
{
    Graph *g = ok("def bn(x, c) {\n"
                  "    param gamma: f32[c] = ones();\n"
                  "    param beta: f32[c];\n"
                  "    y = batch_norm(x, gamma, beta, momentum = 0.2);\n"
                  "    return batch_norm(y, gamma, beta);\n"
                  "}\n"
                  "model m {\n"
                  "    input x: f32[2, 4];\n"
                  "    param g: f32[4];\n"
                  "    n1 = bn(x, 4);\n"
                  "    n2 = batch_norm(n1, g, g);\n"
                  "}\n");
    ck_assert_int_eq(count_op(g, OP_STATE), 6);
    ck_assert_int_eq(count_op(g, OP_BATCH_NORM), 3);
    Node *rm = src_named(g, "n1.running_mean"), *rv = src_named(g, "n1.running_var");
    ck_assert_int_eq(rm->op, OP_STATE);
    ck_assert_int_eq(rm->dtype, DT_UNKNOWN);
    ck_assert_int_eq(rm->shape.rank, 0);
    ck_assert_str_eq(ir_attr_str(rm, "init"), "zeros");
    ck_assert_str_eq(ir_attr_str(rv, "init"), "ones");
    src_named(g, "n1.running_mean_1");
    src_named(g, "n1.running_var_1");
    src_named(g, "running_mean");
    src_named(g, "running_var");
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        if (n->op != OP_BATCH_NORM)
            continue;
        ck_assert_int_eq(n->nin, 5);
        ck_assert_int_eq(n->in[3]->op, OP_STATE);
        ck_assert_int_eq(n->in[4]->op, OP_STATE);
        ck_assert_double_eq(ir_attr_float(n, "eps"), 1e-5);
    }
    ck_assert_ptr_eq(g->nodes.v[rm->id + 2]->in[3], rm); /* rm, rv, then the first batch_norm */
    ck_assert_double_eq(ir_attr_float(g->nodes.v[rm->id + 2], "momentum"), 0.2);
}
END_TEST

/* ---- imports ------------------------------------------------------------------------ */

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void remove_dir(const char *dir)
{
    const char *names[] = {"main.dl", "lib/layers.dl", "lib/more.dl", "dup.dl", "lib"};
    char path[512];
    for (int i = 0; i < countof(names); i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
    rmdir(dir);
}

TEST(core, imports)
{
    char dir[] = "/tmp/dlc_lower_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sub[600];
    snprintf(sub, sizeof sub, "%s/lib", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    /* layers.dl imports more.dl (same directory) and main.dl back: a cycle */
    write_file(dir, "lib/layers.dl",
               "import \"more.dl\";\nimport \"../main.dl\";\n" DENSE
               "model ignored { input q: f32[1]; }\n");
    write_file(dir, "lib/more.dl",
               "import \"layers.dl\";\ndef twice(x) { return dense(dense(x, 2, 2), 2, 2); }\n");
    write_file(dir, "main.dl",
               "import \"lib/layers.dl\";\n"
               "model m { input x: f32[1, 2]; h = twice(x); }\n");
    char path[600];
    snprintf(path, sizeof path, "%s/main.dl", dir);
    Graph *g = fe_load(A, path, NULL, 0);
    if (!g)
        ck_abort_msg("%s", tl_diags());
    ck_assert_str_eq(g->name, "m");
    src_named(g, "h.dense_0.w");
    src_named(g, "h.dense_1.b");
    ck_assert_ptr_null(ir_find_source(g, "q"));
    ck_assert_int_eq(diag_num_files(), 3);

    /* a missing import, at the import; a duplicate def across files */
    write_file(dir, "dup.dl",
               "import \"lib/layers.dl\";\nimport \"nope.dl\";\n"
               "def twice(x) { return x; }\nmodel m { input x: f32[1]; }\n");
    snprintf(path, sizeof path, "%s/dup.dl", dir);
    ck_assert_ptr_null(fe_load(A, path, NULL, 0));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "dup.dl:2:8: error: cannot open 'nope.dl': No such "
                                             "file or directory"));
    remove_dir(dir);
}
END_TEST

TEST(core, import_duplicate_def)
{
    char dir[] = "/tmp/dlc_lower_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    write_file(dir, "main.dl", "import \"dup.dl\";\n" DENSE "model m { }\n");
    write_file(dir, "dup.dl", "def dense(x) { return x; }\n");
    char path[600];
    snprintf(path, sizeof path, "%s/main.dl", dir);
    ck_assert_ptr_null(fe_load(A, path, NULL, 0));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "dup.dl:1:5: error: redefinition of def 'dense'"));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "main.dl:2:5: note: the first definition of 'dense'"));
    remove_dir(dir);
}
END_TEST

TEST(core, missing_main_file)
{
    ck_assert_ptr_null(fe_load(A, "/nonexistent/x.dl", NULL, 0));
    ck_assert_str_eq(tl_diags(),
                     "dlc: error: cannot open '/nonexistent/x.dl': No such file or directory\n");
}
END_TEST

/* ---- tuples, if, parameter paths ---------------------------------------------------- */

TEST(core, tuples_from_defs)
{
    Graph *g = ok(DENSE "def two(x) {\n"
                        "    h = dense(x, 4, 4);\n"
                        "    return (relu(h), h * 2);\n"
                        "}\n"
                        "def pass(x) { return two(x); }\n"
                        "def swap(t) { a, b = t; return (b, a); }\n"
                        "model m {\n"
                        "    input x: f32[2, 4];\n"
                        "    r, s = two(x);\n"
                        "    (_, q) = pass(x);\n"
                        "    u, v = swap((x, 3));\n"
                        "    output r;\n"
                        "    output s;\n"
                        "    output q;\n"
                        "    output w = x * u;\n"
                        "}\n");
    ck_assert_int_eq(output(g, "r")->op, OP_RELU);
    ck_assert_int_eq(output(g, "s")->op, OP_MUL);
    ck_assert_int_eq(output(g, "q")->op, OP_MUL);
    /* params named after the first name kept; "_" binds nothing */
    src_named(g, "r.h.w");
    src_named(g, "q.two.h.b");
    ck_assert_int_eq(count_op(g, OP_PARAM), 4);
    /* a tuple passed to a def and unpacked there: u is the number 3 */
    Node *w = output(g, "w");
    ck_assert_int_eq(w->in[1]->op, OP_CONST);
    ck_assert_double_eq(attr_value(w->in[1]), 3);
}
END_TEST

TEST(core, tuples_carried_by_loops)
{
    /* a cell returning (h, c) inside a loop over time stays one IR loop
     * carrying both */
    Graph *g = ok("def cell(x, h, c, w) {\n"
                  "    c2 = c * sigmoid(x @ w) + h;\n"
                  "    return (tanh(c2), c2);\n"
                  "}\n"
                  "model m {\n"
                  "    input x: f32[2, 8, 3];\n"
                  "    param w: f32[3, 4];\n"
                  "    h = zeros([2, 4]);\n"
                  "    c = zeros([2, 4]);\n"
                  "    for t in 0..8 { h, c = cell(x[:, t, :], h, c, w); }\n"
                  "    output h;\n"
                  "    output c;\n"
                  "}\n");
    ck_assert_int_eq(count_op(g, OP_LOOP), 1);
    Node *loop = NULL;
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->op == OP_LOOP)
            loop = g->nodes.v[i];
    ck_assert_int_eq(attr_carried(loop), 2);
    ck_assert_int_eq(attr_trips(loop), 7);
    ck_assert_int_eq(output(g, "h")->op, OP_LOOP_RESULT);
    ck_assert_int_eq(output(g, "c")->op, OP_LOOP_RESULT);
}
END_TEST

TEST(core, if_on_constants)
{
    const char *src = DENSE "def block(x, use_1x1) {\n"
                            "    if use_1x1 { s = dense(x, 4, 4); } else { s = x; }\n"
                            "    return relu(s + x);\n"
                            "}\n"
                            "model m {\n"
                            "    let K = 3;\n"
                            "    input x: f32[2, 4];\n"
                            "    b1 = block(x, true);\n"
                            "    b2 = block(b1, K < 2);\n"
                            "    if K == 1 { y = b2 * 1; } else if K >= 3 & K != 4 { y = -b2; }\n"
                            "    else { y = b2; }\n"
                            "    output y;\n"
                            "}\n";
    Graph *g = ok(src);
    src_named(g, "b1.s.w");
    ck_assert_int_eq(count_op(g, OP_PARAM), 2); /* b2 took the else branch */
    ck_assert_int_eq(output(g, "y")->op, OP_NEG);
    /* -D chooses the branch too */
    Define d = {.name = "K", .value = 1, .is_int = true};
    g = lower_d(src, &d, 1);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(output(g, "y")->op, OP_MUL);
    ck_assert_int_eq(count_op(g, OP_PARAM), 4);
}
END_TEST

TEST(core, if_in_loops)
{
    /* a constant condition keeps the loop a loop; one on the loop
     * variable is decided per iteration, so that loop is unrolled */
    Graph *g = ok("model m {\n"
                  "    let FLIP = 1;\n"
                  "    input x: f32[2, 8, 3];\n"
                  "    param w: f32[3, 3];\n"
                  "    h = zeros([2, 3]);\n"
                  "    s = zeros([2, 3]);\n"
                  "    for t in 0..8 { if FLIP { h = tanh(x[:, t, :] @ w + h); } }\n"
                  "    for t in 0..8 { if t < 4 { s = s + x[:, t, :]; } }\n"
                  "    output h;\n"
                  "    output s;\n"
                  "}\n");
    ck_assert_int_eq(count_op(g, OP_LOOP), 1);
    ck_assert_int_eq(output(g, "h")->op, OP_LOOP_RESULT);
    /* s = ((zeros + x0) + x1) + x2) + x3: four adds, no loop */
    Node *s = output(g, "s");
    int adds = 0;
    for (; s->op == OP_ADD; s = s->in[0])
        adds++;
    ck_assert_int_eq(adds, 4);
}
END_TEST

TEST(core, parameter_paths)
{
    Graph *g = ok(DENSE "def block(x) {\n"
                        "    conv1 = dense(x, 4, 4);\n"
                        "    return conv1 + conv1.b;\n"
                        "}\n"
                        "model m {\n"
                        "    input x: f32[2, 4];\n"
                        "    fc1 = dense(x, 4, 4);\n"
                        "    block1 = block(fc1);\n"
                        "    h = x;\n"
                        "    for i in 0..2 { for j in 0..2 { h = dense(h, 4, 4); } }\n"
                        "    output l1 = sum(abs(fc1.w));\n"
                        "    output p = block1.conv1.w;\n"
                        "    output q = h.1.0.b;\n"
                        "}\n");
    ck_assert_ptr_eq(output(g, "l1")->in[0]->in[0], src_named(g, "fc1.w"));
    ck_assert_ptr_eq(output(g, "p"), src_named(g, "block1.conv1.w"));
    ck_assert_ptr_eq(output(g, "q"), src_named(g, "h.1.0.b"));
    /* inside the def the path is relative to the call */
    Node *ret = NULL;
    for (int i = 0; i < g->nodes.n; i++)
        if (g->nodes.v[i]->op == OP_ADD && g->nodes.v[i]->in[1] == src_named(g, "block1.conv1.b"))
            ret = g->nodes.v[i];
    ck_assert_ptr_nonnull(ret);
}
END_TEST

TEST(core, parameter_path_errors)
{
    fails(DENSE "model m {\n"
                "    input x: f32[2, 4];\n"
                "    fc1 = dense(x, 4, 4);\n"
                "    y = fc1.W;\n"
                "}\n",
          "t.dl:9:9: error: no parameter 'fc1.W'; did you mean 'fc1.w'?");
    diag_reset();
    fails(DENSE "model m {\n"
                "    input x: f32[2, 4];\n"
                "    fc1 = dense(x, 4, 4);\n"
                "    y = fc1.weight;\n"
                "}\n",
          "t.dl:9:9: error: no parameter 'fc1.weight'");
    ck_assert_ptr_nonnull(
        strstr(tl_diags(), "t.dl:8:5: note: the parameters under 'fc1' are 'fc1.w', 'fc1.b'"));
    diag_reset();
    /* read before the statement that makes it */
    fails(DENSE "model m {\n"
                "    input x: f32[2, 4];\n"
                "    y = fc1.w;\n"
                "    fc1 = dense(x, 4, 4);\n"
                "}\n",
          "t.dl:8:9: error: no parameter 'fc1.w'");
    ck_assert_ptr_nonnull(strstr(tl_diags(), "t.dl:9:5: note: 'fc1' is bound here, later"));
    diag_reset();
    /* a def does not see the model's parameters */
    fails(DENSE "def f(x) { return x + fc1.b; }\n"
                "model m {\n"
                "    input x: f32[2, 4];\n"
                "    fc1 = dense(x, 4, 4);\n"
                "    y = f(fc1);\n"
                "}\n",
          "t.dl:6:23: error: no parameter 'fc1.b'");
    ck_assert_ptr_nonnull(strstr(tl_diags(), "note: 'fc1.b' is a parameter of the model"));
}
END_TEST

/* ---- errors --------------------------------------------------------------------------- */

typedef struct {
    const char *src;
    const char *msg; /* "LINE:COL: error: ..." as printed after "t.dl:" */
} ErrCase;

static const ErrCase errs[] = {
    {"model m { input fooo: f32[1]; y = foo + 1; }", "1:35: error: use of undeclared name 'foo'; "
                                                     "did you mean 'fooo'?"},
    {"model m { input x: f32[1]; y = rlu(x); }", "1:32: error: unknown function 'rlu'; did you "
                                                 "mean 'relu'?"},
    {"model m {\n input x: f32[1];\n input x: f32[2];\n}", "3:8: error: redefinition of input 'x'"},
    {"model m { input x: f32[1]; x = relu(x); }",
     "1:28: error: cannot rebind input 'x'; only plain values can be bound again"},
    {DENSE "model m { input x: f32[1]; y = dense(x, 1); }",
     "6:32: error: dense expects 3 arguments, got 2"},
    {DENSE "model m { input x: f32[1]; y = dense(x, 1, n_ou = 2); }",
     "6:44: error: dense has no parameter 'n_ou'; did you mean 'n_out'?"},
    {DENSE "model m { input x: f32[1]; y = dense(x, 1, n_in = 2); }",
     "6:44: error: dense got two values for parameter 'n_in'"},
    {DENSE "model m { input x: f32[1]; y = dense(x, n_out = 2); }",
     "6:32: error: dense: missing argument 'n_in'"},
    {DENSE "model m { input x: f32[1]; y = dense(x, 1, 2, 3); }",
     "6:32: error: dense expects 3 arguments, got 4"},
    {"def f(x, n = 1) { return x * n; }\nmodel m { input x: f32[1]; y = f(); }",
     "2:32: error: f expects 1 argument, got 0"},
    {"def f(x, n = 1) { return x * n; }\nmodel m { input x: f32[1]; y = f(x, 1, 2); }",
     "2:32: error: f expects at most 2 arguments, got 3"},
    {"def f(x, n = 1, m) { return x * n; }\nmodel m { }",
     "1:17: error: parameter 'm' without a default follows one with a default"},
    {"def f(x) { return g(x); }\ndef g(x) { return f(x); }\nmodel m { input x: f32[1]; y = f(x); }",
     "2:19: error: recursive call of 'f'"},
    {"def f(x) { y = x; }\nmodel m { }", "1:5: error: missing return at the end of def 'f'"},
    {"def f(x) { return x; y = x; }\nmodel m { }", "1:22: error: statements after return"},
    {"model m {\n batch B <= 4;\n batch C <= 8;\n}",
     "3:2: error: a second batch statement; a model has at most one"},
    {"model m { batch B <= 0; }",
     "1:22: error: the batch size bound must be an integer from 1 to 65536 (got 0)"},
    {"model m { input x: f32[2.5]; }",
     "1:24: error: dimension must be a positive integer (got 2.5)"},
    {"model m { batch B <= 4; input x: f32[B + 1]; }",
     "1:38: error: the batch size can only be multiplied or divided by constants"},
    {"model m { input x: f32[1,1,4,4]; input w: f32[1,1,3,3]; y = conv2d(x, w, strid = 2); }",
     "1:74: error: conv2d has no attribute 'strid'; did you mean 'stride'?"},
    {"model m { input x: f32[1,1,4,4]; input w: f32[1,1,3,3]; y = conv2d(x, w, groups = 2.5); }",
     "1:83: error: conv2d: 'groups' must be an integer (got 2.5)"},
    {"model m { input x: f32[2,3]; input y: i32[2]; l = cross_entropy(x, y, reduction = \"summ\"); "
     "}",
     "1:83: error: cross_entropy: 'reduction' must be \"mean\", \"sum\" or \"none\" (got the "
     "string \"summ\"); did you mean 'sum'?"},
    {"model m { input x: f32[2]; y = softmax(x, 0, 1); }",
     "1:46: error: too many arguments to softmax (at most 1 after the tensors)"},
    {"model m { input x: f32[1,1,4,4]; y = max_pool2d(x); }",
     "1:38: error: max_pool2d: missing attribute 'kernel'"},
    {"model m { input x: f32[2]; y = x[::0]; }", "1:36: error: slice step cannot be zero"},
    {"model m { input x: f32[]; train x with adam(lr = 1);\n train x with sgd(lr = 1); }",
     "1:27: error: a model with several train statements needs 'as NAME' on each, to name the "
     "objective's functions"},
    {"model m { input x: f32[]; train x with adam(lr = 1) as a;\n train x with sgd(lr = 1); }",
     "2:2: error: a model with several train statements needs 'as NAME' on each, to name the "
     "objective's functions"},
    {"model m { input x: f32[]; train x with adam(lr = 1) as a;\n train x with sgd(lr = 1) as a; }",
     "2:2: error: a second objective named 'a'"},
    {"model m { param w: f32[]; train w with adam(lr = 1), params = [v]; }",
     "1:64: error: params: no parameter 'v' or 'v.*'"},
    {"model m { param w: f32[]; param wv: f32[] frozen; train w with adam(lr = 1), params = [w.v, wv]; }",
     "1:88: error: params: no parameter 'w.v' or 'w.v.*'"},
    {"model m { param w: f32[] frozen; train w with adam(lr = 1), params = [w]; }",
     "1:71: error: params: no trainable parameter 'w' or 'w.*'"},
    {"model m { param w: f32[]; train w with adam(lr = 1), params = w; }",
     "1:63: error: params must be a list of parameter paths, as in 'params = [gen]'"},
    {"model m { param w: f32[]; train w with adam(lr = 1), params = [w + 1]; }",
     "1:64: error: params: expected a parameter path such as 'gen' or 'gen.fc1'"},
    {"model m { input x: f32[]; train x with adam(lr = 1), clipnorm = 2; }",
     "1:54: error: unknown train option 'clipnorm'; did you mean 'clip_norm'?"},
    {"model m { input x: f32[]; train x with adam(lr = 1), clip_norm = 0; }",
     "1:66: error: clip_norm must be a positive number (got 0)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1, nesterov = true); }",
     "1:40: error: sgd: nesterov needs momentum > 0 and dampening = 0"},
    {"model m { input x: f32[]; train x with sgd(lr = 1, momentum = 0.9, dampening = 0.1, nesterov "
     "= true); }",
     "1:40: error: sgd: nesterov needs momentum > 0 and dampening = 0"},
    {"model m { input x: f32[]; train x with adam(lr = 1), clip_value = -1; }",
     "1:67: error: clip_value must be a positive number (got -1)"},
    {"model m { input x: f32[]; train x with adam(lr = 1, l1 = -0.1); }",
     "1:58: error: adam: 'l1' must be >= 0 (got -0.1)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = linear_warmup(0); }",
     "1:64: error: linear_warmup: 'warmup' must be >= 1 (got 0)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = linear_warmup(5, start_factor "
     "= 0); }",
     "1:96: error: linear_warmup: 'start_factor' must be in (0, 1] (got 0)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = one_cycle(3); }",
     "1:64: error: one_cycle: every phase must last more than 0 steps (pct_start * total = 0.9)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = one_cycle(10, pct_start = "
     "0.6, three_phase = true); }",
     "1:64: error: one_cycle: every phase must last more than 0 steps (pct_start * total = 6, and "
     "pct_start < 0.5 with three_phase)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = multistep([3, -1]); }",
     "1:64: error: multistep: milestones must be >= 0 (got -1)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = cyclic(0.1, 1, 2, mode = "
     "\"triangle\"); }",
     "1:89: error: cyclic: 'mode' must be \"triangular\", \"triangular2\" or \"exp_range\" (got "
     "the string \"triangle\"); did you mean 'triangular'?"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = cosine_restarts(0); }",
     "1:80: error: cosine_restarts: 'T_0' must be >= 1 (got 0)"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = inverse_sqrt(512, warmup = "
     "0); }",
     "1:64: error: inverse_sqrt: 'warmup' must be >= 1 (got 0)"},
    {"model m { param w: f32[2, 2] = kaiming_uniform(mode = \"fanin\"); }",
     "1:55: error: kaiming_uniform: 'mode' must be \"fan_in\" or \"fan_out\" (got the string "
     "\"fanin\"); did you mean 'fan_in'?"},
    {"model m { param w: f32[2, 2] = kaiming_normal(nonlinearity = \"gelu\"); }",
     "1:62: error: kaiming_normal: 'nonlinearity' must be \"linear\", \"sigmoid\", \"tanh\", "
     "\"relu\", \"leaky_relu\" or \"selu\" (got the string \"gelu\"); did you mean 'relu'?"},
    {"model m { param w: f32[2, 2] = truncated_normal(a = 2, b = -2); }",
     "1:32: error: truncated_normal: 'a' must be less than 'b' (got 2 and -2)"},
    {"model m { param w: f32[2, 2] = truncated_normal(std = 0); }",
     "1:32: error: truncated_normal: 'std' must be > 0"},
    {"model m { param w: f32[2] = uniform(1, 0); }",
     "1:29: error: uniform: 'lo' must be at most 'hi' (got 1 and 0)"},
    {"model m { input x: f32[]; train x with adamm(lr = 1); }",
     "1:40: error: unknown optimizer 'adamm'; did you mean 'adam'?"},
    {"model m { input x: f32[]; train x with adam(); }",
     "1:40: error: adam: missing argument 'lr'"},
    {"model m { input x: f32[]; train x with sgd(lr = 1), schedule = cosin(10); }",
     "1:64: error: unknown schedule 'cosin'; did you mean 'cosine'?"},
    {"model m { param w: f32[2] = xavier(); }", "1:29: error: unknown initializer 'xavier'"},
    {"model m { input x: f32[1]; output y = x; output y = x; }",
     "1:49: error: output 'y' is already defined"},
    {"def f(x) { input y: f32[1]; return x; }\nmodel m { }",
     "1:12: error: 'input' is only allowed in the model, not inside a def"},
    {"model m { return 1; }", "1:11: error: return outside of a def"},
    {"model m { for i in 0..1000000000 { let k = i; } }",
     "1:36: error: model too large after unrolling"},
    {"model m { output y = 2; }", "1:18: error: output 'y' must be a tensor (got 2)"},
    {"model m { let H = 4; }\ndef f(x) { return x * H; }\nmodel n { }",
     "3:7: error: a second model; a file holds exactly one model"},
    {"def f(x) { return x; }", "dlc: error: no model in t.dl"},
    {"model m { let H = 2; param w: f32[2]; for i in 0..H { w = w * 2; } }",
     "1:55: error: cannot rebind param 'w'; only plain values can be bound again"},
    {"def f(x) { return x * H; }\nmodel m { let H = 2; input x: f32[1]; y = f(x); }",
     "1:23: error: use of undeclared name 'H'"},
    {"model m { input x: f32[2]; y = concat(x); }",
     "1:39: error: concat: the first argument must be a non-empty list of tensors (got a tensor)"},
    {"model m { let a = 1 / 0; }", "1:19: error: division by zero in constant expression"},
    {"model m { let a = 1 // 0; }", "1:24: error: division by zero in constant expression"},
    {"model m { let a = 1.5 % 0.0; }", "1:25: error: modulo by zero in constant expression"},
    {"model m { let a = -9223372036854775807 - 1; let b = a // -1; }",
     "1:53: error: integer overflow in constant expression"},
    {"model m { batch B <= 4; input x: f32[B % 2]; }",
     "1:38: error: the batch size can only be multiplied or divided by constants"},
    {"model m { batch B <= 4; input x: f32[B // 3]; }", "1:38: error: B is not divisible by 3"},
    {"model m { input x: f32[2]; for i in 0..x { } }",
     "1:40: error: a loop bound must be an integer constant (got a tensor)"},
    {"model m { input x: f32[1]; y = relu(); }",
     "1:32: error: relu expects 1 tensor argument, got 0"},
    {"model m { batch B <= 4; param w: f32[B]; }",
     "1:38: error: parameter shapes cannot depend on the batch size"},
    {"def two(x) { return (x, x); }\nmodel m { input x: f32[1]; a, b, c = two(x); }",
     "2:38: error: 'two' returns 2 values, but 3 names are bound"},
    {"def one(x) { return x; }\nmodel m { input x: f32[1]; a, b = one(x); }",
     "2:35: error: 'one' returns one value (a tensor), but 2 names are bound"},
    {"def two(x) { return (x, x); }\nmodel m { input x: f32[1]; y = two(x) + 1; }",
     "2:32: error: invalid operands to '+' (a tuple of 2 values and 1)"},
    {"def two(x) { return (x, x); }\nmodel m { input x: f32[1]; y = two(x); }",
     "2:32: error: 'two' returns 2 values; unpack them into as many names: a, b = ..."},
    {"model m { input x: f32[1]; (a, b) = (x, x, x); }",
     "1:37: error: cannot unpack 3 values into 2 names"},
    {"model m { input x: f32[1]; a, a = (x, x); }",
     "1:31: error: 'a' is bound twice in one statement"},
    {"model m { input x: f32[1]; a, b = ((x, x), x); }",
     "1:36: error: tuples cannot be nested"},
    {"model m { input x: f32[1]; if x > 0 { y = x; } }",
     "1:31: error: if: the condition must be a compile-time number or bool (got a tensor); to "
     "choose per element, use where(cond, a, b)"},
    {"model m { if \"yes\" { } }",
     "1:14: error: if: the condition must be a compile-time number or bool (got the string "
     "\"yes\")"},
    {"def f(x, k) { if k { return x; } return -x; }\nmodel m { }",
     "1:22: error: return cannot appear inside an if; bind the value in each branch and return "
     "it after the if"},
    {"model m { input x: f32[1]; if zz { y = x; } output q = y + 1; }",
     "1:31: error: use of undeclared name 'zz'"},
};

TEST_LOOP(core, error_cases, countof(errs))
{
    const ErrCase *c = &errs[_i];
    ck_assert_ptr_null(lower(c->src));
    char want[512];
    snprintf(want, sizeof want, "%s%s", strncmp(c->msg, "dlc:", 4) ? "t.dl:" : "", c->msg);
    if (!strstr(tl_diags(), want))
        ck_abort_msg("case %d: expected \"%s\" in:\n%s", _i, want, tl_diags());
}
END_TEST

TEST(core, error_notes_and_recovery)
{
    /* independent errors in several statements are all reported, once each */
    fails(DENSE "model m {\n"
                "    input x: f32[2, 4];\n"
                "    a = dense(x, 4);\n"
                "    b = relu(a);\n"
                "    for i in 0..3 { c = undefined_thing; }\n"
                "    d = sigmoid(zz);\n"
                "}\n",
          "t.dl:8:9: error: dense expects 3 arguments, got 2");
    ck_assert_ptr_nonnull(strstr(tl_diags(), "t.dl:1:5: note: 'dense' is defined here"));
    ck_assert_ptr_nonnull(
        strstr(tl_diags(), "t.dl:10:25: error: use of undeclared name 'undefined_thing'"));
    ck_assert_ptr_nonnull(strstr(tl_diags(), "t.dl:11:17: error: use of undeclared name 'zz'"));
    ck_assert_int_eq(diag_errors(), 3);
}
END_TEST

TEST(core, def_sees_no_model_names)
{
    fails("def f(x) { return x * H; }\nmodel m { let H = 2; input x: f32[1]; y = f(x); }",
          "t.dl:1:23: error: use of undeclared name 'H'");
    ck_assert_ptr_nonnull(strstr(tl_diags(), "t.dl:2:15: note: 'H' is defined in the model"));
}
END_TEST

TEST(core, no_crash_on_odd_input)
{
    const char *srcs[] = {
        "model m { x = [1, [2, \"a\"]]; y = x + 1; z = x[0]; }",
        "model m { for i in 3..-5 { y = i; } output q = y; }",
        "def f(a, a) { return a; } model m { y = f(1, 2); }",
        "model m { let a = 9223372036854775807 + 1; }",
        "model m { input x: f32[1,1,1,1,1,1,1,1,1]; }",
        "model m { y = zeros([2, 3]); z = y[0, 0, 0, 0, 0, 0, 0, 0, 0]; }",
    };
    for (int i = 0; i < countof(srcs); i++) {
        ck_assert_ptr_null(lower(srcs[i]));
        ck_assert_int_gt(diag_errors(), 0);
        diag_reset();
    }
}
END_TEST
