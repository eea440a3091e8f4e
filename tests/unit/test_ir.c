/*
 * The graph IR: builder, attributes and schemas, shapes, the verifier (it
 * must abort on malformed graphs: those tests run in a forked child and
 * expect SIGABRT), the textual format (print -> read -> print is byte
 * identical, and the reader's error messages and positions), and the
 * Graphviz output.
 */
#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir.h"
#include "testlib.h"

/* Builtin schemas, parsed once (ir_schema_parse allocates for good). */
static const AttrSchema *optim_schema(Optim o)
{
    static const AttrSchema *cache[OPTIM_COUNT];
    if (!cache[o])
        cache[o] = ir_schema_parse(optim_info[o].attrs);
    return cache[o];
}

static Loc L(int file, int line, int col, int len) { return (Loc){file, line, col, len}; }

static Shape S2(int64_t a, bool ab, int64_t b)
{
    Shape s = {.rank = 2};
    s.d[0] = (Dim){a, ab};
    s.d[1] = (Dim){b, false};
    return s;
}

/* Diagnostics go to a memory stream the tests read back. */
static void setup(void)
{
    tl_diag_capture();
}

static void teardown(void)
{
    tl_diag_release();
}

static Graph *read_text(Arena *a, const char *text)
{
    int id = diag_add_source("t.ir", text, strlen(text));
    return ir_read(a, id);
}

/* print(g) == print(read(print(g))), and returns print(g). */
static char *round_trip(const Graph *g)
{
    char *p1 = tl_print(ir_print, g);
    Arena *a = arena_new();
    Graph *h = read_text(a, p1);
    if (!h)
        ck_abort_msg("reading failed:\n%s\n%s", p1, tl_diags());
    char *p2 = tl_print(ir_print, h);
    ck_assert_str_eq(p1, p2);
    free(p2);
    arena_free(a);
    return p1;
}

/* A small MLP with batch dims, locations, outputs and training. */
static Graph *mlp(Arena *a, int file)
{
    Graph *g = ir_graph_new(a, "mnist_mlp");
    g->batch = "B";
    g->max_batch = 256;
    g->loc = L(file, 11, 1, 5);
    Node *x = ir_input(g, "x", DT_F32, S2(1, true, 784), L(file, 15, 11, 1));
    Node *y = ir_input(g, "y", DT_I32, (Shape){1, {{1, true}}}, L(file, 16, 11, 1));
    Node *w = ir_param(g, "fc1.w", DT_F32, S2(784, false, 10), INIT_KAIMING_UNIFORM, NULL, 0,
                       false, L(file, 3, 11, 1));
    Node *mm = ir_binary(g, OP_MATMUL, x, w, L(file, 4, 14, 5));
    Node *sm = ir_unary(g, OP_SOFTMAX, mm, L(file, 20, 20, 7));
    ir_set_int(g, sm, "axis", -1);
    Node *ce = ir_binary(g, OP_CROSS_ENTROPY, mm, y, L(file, 21, 12, 13));
    ir_set_str(g, ce, "reduction", "mean");
    ir_output(g, "probs", sm, L(file, 22, 5, 6));
    Train *t = arena_alloc(a, sizeof *t);
    t->loss = ce;
    t->loc = L(file, 24, 5, 5);
    t->optim = OPTIM_ADAM;
    ir_attrs_set(a, &t->optim_args, (Attr){.name = "lr", .kind = AK_FLOAT, .f = 1e-3});
    ir_attrs_fill_defaults(a, &t->optim_args, optim_schema(OPTIM_ADAM));
    t->sched = SCHED_CONSTANT;
    g->train = t;
    return g;
}

/* ---- builder, attributes, schemas, shapes ------------------------------ */

SUITE("ir");
GROUP(builder, setup, teardown);
GROUP(verify, NULL, NULL);
GROUP(text, setup, teardown);

TEST(builder, builder_basics)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    ck_assert_str_eq(g->name, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(2, (int64_t[]){3, 4}), L(0, 1, 1, 1));
    Node *c = ir_const(g, 2.5, L(0, 0, 0, 0));
    Node *m = ir_binary(g, OP_MUL, x, c, L(0, 2, 3, 1));
    ck_assert_int_eq(g->nodes.n, 3);
    ck_assert_int_eq(x->id, 0);
    ck_assert_int_eq(m->id, 2);
    ck_assert_int_eq(m->nin, 2);
    ck_assert_ptr_eq(m->in[0], x);
    ck_assert_ptr_eq(m->in[1], c);
    ck_assert_int_eq(m->dtype, DT_UNKNOWN);
    ck_assert_double_eq(ir_attr_float(c, "value"), 2.5);
    ck_assert_ptr_eq(ir_find_source(g, "x"), x);
    ck_assert_ptr_null(ir_find_source(g, "nope"));
    ir_verify(g);
    arena_free(a);
}
END_TEST

TEST(builder, attributes_set_get_defaults)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(4, (int64_t[]){1, 3, 8, 8}), L(0, 0, 0, 0));
    Node *w = ir_param(g, "w", DT_F32, ir_shape_of(4, (int64_t[]){4, 3, 3, 3}), INIT_NORMAL,
                       (double[]){0, 0.1}, 2, true, L(0, 0, 0, 0));
    ck_assert_str_eq(ir_attr_str(w, "init"), "normal");
    ck_assert(ir_attr_bool(w, "frozen"));
    ck_assert_int_eq(ir_attr(w, "args")->floats.n, 2);
    ck_assert_double_eq(ir_attr(w, "args")->floats.v[1], 0.1);
    Node *cv = ir_binary(g, OP_CONV2D, x, w, L(0, 0, 0, 0));
    ir_set_int(g, cv, "groups", 2);
    ir_set_int(g, cv, "groups", 1); /* replaces, keeps the position */
    ck_assert_int_eq(cv->attrs.n, 1);
    ck_assert_int_eq(ir_attr_int(cv, "groups"), 1);
    ir_attrs_fill_defaults(a, &cv->attrs, ir_op_schema(OP_CONV2D));
    ck_assert_int_eq(cv->attrs.n, 4);
    ck_assert_str_eq(cv->attrs.v[0].name, "groups");
    const Attr *st = ir_attr(cv, "stride");
    ck_assert_int_eq(st->kind, AK_INTS);
    ck_assert_int_eq(st->ints.n, 1);
    ck_assert_int_eq(st->ints.v[0].n, 1);
    ck_assert_ptr_null(ir_attr(cv, "strid"));
    Dim sh[2] = {{2, true}, {IR_NONE, false}};
    ir_set_ints(g, cv, "padding", sh, 2);
    sh[0].n = 99; /* the attribute holds a copy */
    ck_assert_int_eq(ir_attr(cv, "padding")->ints.v[0].n, 2);
    ck_assert(ir_attr(cv, "padding")->ints.v[0].batch);
    ck_assert_int_eq(ir_attr(cv, "padding")->ints.v[1].n, IR_NONE);
    ir_verify(g);
    arena_free(a);
}
END_TEST

TEST(builder, graph_compact)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    ir_unary(g, OP_RELU, x, L(0, 0, 0, 0));
    Node *t = ir_unary(g, OP_TANH, x, L(0, 0, 0, 0));
    g->nodes.v[1] = NULL;
    ir_graph_compact(g);
    ck_assert_int_eq(g->nodes.n, 2);
    ck_assert_ptr_eq(g->nodes.v[1], t);
    ck_assert_int_eq(t->id, 1);
    ir_verify(g);
    arena_free(a);
}
END_TEST

TEST(builder, schemas)
{
    const AttrSchema *s = ir_op_schema(OP_CONV2D);
    ck_assert_int_eq(s->n, 4);
    int k = ir_schema_find(s, "groups");
    ck_assert_int_eq(k, 3);
    ck_assert_int_eq(s->v[k].kind, AK_INT);
    ck_assert(s->v[k].has_default);
    ck_assert_int_eq(s->v[k].def.i, 1);
    ck_assert_int_eq(ir_schema_find(s, "strid"), -1);

    s = ir_op_schema(OP_SUM);
    k = ir_schema_find(s, "axis");
    ck_assert_int_eq(s->v[k].kind, AK_INTS);
    ck_assert(s->v[k].optional);
    ck_assert(!s->v[k].has_default);
    k = ir_schema_find(s, "keepdims");
    ck_assert_int_eq(s->v[k].kind, AK_BOOL);
    ck_assert(!s->v[k].def.b);

    s = ir_op_schema(OP_CROSS_ENTROPY);
    k = ir_schema_find(s, "reduction");
    ck_assert_int_eq(s->v[k].kind, AK_ENUM);
    ck_assert_int_eq(s->v[k].nchoices, 3);
    ck_assert_str_eq(s->v[k].choices[2], "none");
    ck_assert_str_eq(s->v[k].def.s, "mean");

    s = ir_op_schema(OP_BATCH_NORM);
    ck_assert_double_eq(s->v[ir_schema_find(s, "eps")].def.f, 1e-5);
    s = ir_op_schema(OP_PARAM);
    ck_assert_int_eq(s->v[ir_schema_find(s, "args")].kind, AK_FLOATS);
    s = ir_op_schema(OP_MATMUL);
    ck_assert_int_eq(s->n, 2);
    ck_assert_int_eq(s->v[ir_schema_find(s, "transpose_b")].kind, AK_BOOL);
    ck_assert(!s->v[ir_schema_find(s, "transpose_b")].has_default);
    ck_assert_int_eq(ir_op_lookup("matmul"), OP_MATMUL);
    ck_assert_int_eq(ir_op_lookup("matmull"), OP_COUNT);
}
END_TEST

TEST(builder, shape_strings)
{
    char buf[128];
    ck_assert_str_eq(ir_dim_str((Dim){784, false}, "B", buf, sizeof buf), "784");
    ck_assert_str_eq(ir_dim_str((Dim){1, true}, "N", buf, sizeof buf), "N");
    ck_assert_str_eq(ir_dim_str((Dim){4, true}, NULL, buf, sizeof buf), "B*4");
    ck_assert_str_eq(ir_dim_str((Dim){IR_NONE, false}, "B", buf, sizeof buf), "none");
    Shape s = S2(1, true, 784);
    ck_assert_str_eq(ir_shape_str(&s, "B", buf, sizeof buf), "[B, 784]");
    Shape z = {0};
    ck_assert_str_eq(ir_shape_str(&z, "B", buf, sizeof buf), "[]");
    ck_assert_str_eq(ir_dtype_name(DT_F64), "f64");
    ck_assert_str_eq(ir_dtype_name(DT_UNKNOWN), "?");
    ck_assert_int_eq(ir_dtype_parse("i32"), DT_I32);
    ck_assert_int_eq(ir_dtype_parse("bf16"), DT_BF16);
    ck_assert_str_eq(ir_dtype_name(DT_F16), "f16");
    ck_assert_int_eq(ir_dtype_parse("f8"), DT_UNKNOWN);
}
END_TEST

/* ---- the verifier aborts on malformed graphs --------------------------- */

TEST_SIGNAL(verify, verify_later_input, SIGABRT)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    Node *r = ir_unary(g, OP_RELU, x, L(0, 0, 0, 0));
    Node *t = ir_unary(g, OP_TANH, x, L(0, 0, 0, 0));
    r->in[0] = t; /* a use before the definition */
    ir_verify(g);
}
END_TEST

TEST_SIGNAL(verify, verify_wrong_arity, SIGABRT)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    ir_node_new(g, OP_MATMUL, &x, 1, L(0, 0, 0, 0));
    ir_verify(g);
}
END_TEST

TEST_SIGNAL(verify, verify_fused_earlier, SIGABRT)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    Node *r = ir_unary(g, OP_RELU, x, L(0, 0, 0, 0));
    Node *t = ir_unary(g, OP_TANH, r, L(0, 0, 0, 0));
    t->fused = r; /* fusion goes forward only */
    ir_verify(g);
}
END_TEST

TEST_SIGNAL(verify, verify_fused_chain, SIGABRT)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    Node *r = ir_unary(g, OP_RELU, x, L(0, 0, 0, 0));
    Node *t = ir_unary(g, OP_TANH, r, L(0, 0, 0, 0));
    Node *e = ir_unary(g, OP_EXP, t, L(0, 0, 0, 0));
    r->fused = t;
    t->fused = e; /* r must name the root e */
    ir_verify(g);
}
END_TEST

TEST_SIGNAL(verify, verify_missing_attr, SIGABRT)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    ir_unary(g, OP_RESHAPE, x, L(0, 0, 0, 0));
    ir_verify(g);
}
END_TEST

/* ---- round trips -------------------------------------------------------- */

TEST(text, print_mlp_exact)
{
    int f = diag_add_source("examples/mnist_mlp.dl", "", 0);
    Arena *a = arena_new();
    Graph *g = mlp(a, f);
    char *p = round_trip(g);
    ck_assert_str_eq(p,
                     "dlc-ir 1\n"
                     "file 0 \"examples/mnist_mlp.dl\"\n"
                     "model mnist_mlp batch B <= 256 @0:11:1+5\n"
                     "  %0 = input \"x\" : f32[B, 784] @0:15:11\n"
                     "  %1 = input \"y\" : i32[B] @0:16:11\n"
                     "  %2 = param \"fc1.w\" {init = \"kaiming_uniform\", frozen = false} "
                     ": f32[784, 10] @0:3:11\n"
                     "  %3 = matmul(%0, %2) : ? @0:4:14+5\n"
                     "  %4 = softmax(%3) {axis = -1} : ? @0:20:20+7\n"
                     "  %5 = cross_entropy(%3, %1) {reduction = \"mean\"} : ? @0:21:12+13\n"
                     "  output \"probs\" = %4 @0:22:5+6\n"
                     "  train %5 with adam {lr = 0.001, beta1 = 0.9, beta2 = 0.999, eps = 1e-08, "
                     "weight_decay = 0.0, l1 = 0.0} @0:24:5+5\n"
                     "end\n");
    free(p);
    arena_free(a);
}
END_TEST

TEST(text, round_trip_after_shapes)
{
    int f = diag_add_source("m.dl", "", 0);
    Arena *a = arena_new();
    Graph *g = mlp(a, f);
    g->batch = "N";
    DType types[] = {DT_F32, DT_F64, DT_I32};
    for (int i = 0; i < g->nodes.n; i++) {
        Node *n = g->nodes.v[i];
        n->dtype = types[i % 3];
        n->shape = (Shape){.rank = i % 4};
        for (int k = 0; k < n->shape.rank; k++)
            n->shape.d[k] = (Dim){k + 2, k == 1};
    }
    Node *big = ir_unary(g, OP_RELU, g->nodes.v[0], L(f, 30, 1, 1));
    big->dtype = DT_F32;
    big->shape.rank = IR_MAX_RANK;
    for (int k = 0; k < IR_MAX_RANK; k++)
        big->shape.d[k] = (Dim){k, false};
    big->shape.d[0] = (Dim){8, true};
    char *p = round_trip(g);
    ck_assert_ptr_nonnull(strstr(p, "batch N <= 256"));
    ck_assert_ptr_nonnull(strstr(p, ": f64[2] @"));
    ck_assert_ptr_nonnull(strstr(p, ": i32[2, N*3] @"));
    ck_assert_ptr_nonnull(strstr(p, ": f32[N*8, 1, 2, 3, 4, 5, 6, 7] @0:30:1\n"));
    ck_assert_ptr_nonnull(strstr(p, ": f32[] @"));
    free(p);
    arena_free(a);
}
END_TEST

TEST(text, round_trip_every_attr_kind)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "kinds");
    g->batch = "B";
    g->max_batch = 8;
    Node *x = ir_input(g, "x \"quoted\"\\path\n\ttab\x01\x7f\xc3\xa9", DT_F32, S2(1, true, 6),
                       L(0, 0, 0, 0));
    Node *w = ir_param(g, "w", DT_F64, S2(6, false, 6), INIT_UNIFORM,
                       (double[]){-1.5, 1e300, 5e-324}, 3, true, L(0, 0, 0, 0));
    Node *c = ir_const(g, 0.1, L(0, 0, 0, 0));
    Node *s = ir_state(g, "running", DT_F32, (Shape){1, {{6, false}}}, INIT_ZEROS, L(0, 0, 0, 0));
    Node *r = ir_unary(g, OP_RESHAPE, x, L(0, 0, 0, 0));
    ir_set_ints(g, r, "shape", (Dim[]){{4, true}, {-1, false}, {1, true}, {0, false}}, 4);
    Node *sl = ir_unary(g, OP_SLICE, r, L(0, 0, 0, 0));
    ir_set_ints(g, sl, "begin", (Dim[]){{0, false}, {IR_NONE, false}}, 2);
    ir_set_ints(g, sl, "end", (Dim[]){{IR_NONE, false}, {INT64_MAX, false}}, 2);
    ir_set_ints(g, sl, "step", (Dim[]){{1, false}, {-2, false}}, 2);
    ir_set_ints(g, sl, "squeeze", NULL, 0);
    Node *cl = ir_unary(g, OP_CLAMP, sl, L(0, 0, 0, 0));
    ir_set_float(g, cl, "lo", -INFINITY);
    ir_set_float(g, cl, "hi", INFINITY);
    Node *lr = ir_unary(g, OP_LEAKY_RELU, cl, L(0, 0, 0, 0));
    ir_set_float(g, lr, "alpha", NAN);
    Node *gl = ir_unary(g, OP_GELU, lr, L(0, 0, 0, 0));
    ir_set_str(g, gl, "approximate", "tanh");
    Node *sm = ir_unary(g, OP_SUM, gl, L(0, 0, 0, 0));
    ir_set_bool(g, sm, "keepdims", true);
    ir_set_ints(g, sm, "axis", (Dim[]){{-1, false}}, 1);
    Node *am = ir_unary(g, OP_ARGMAX, sm, L(0, 0, 0, 0));
    ir_set_int(g, am, "axis", INT64_MIN);
    ir_set_bool(g, am, "keepdims", false);
    Node *cat = ir_node_new(g, OP_CONCAT, (Node *[]){x, w, c, s, sm}, 5, L(0, 0, 0, 0));
    ir_set_int(g, cat, "axis", INT64_MAX);
    Node *d = ir_unary(g, OP_DROPOUT, cat, L(0, 0, 0, 0));
    ir_set_float(g, d, "p", -0.0);
    Node *z = ir_node_new(g, OP_ZEROS, NULL, 0, L(0, 0, 0, 0));
    ir_set_ints(g, z, "shape", (Dim[]){{2, false}}, 1);
    Node *h = ir_binary(g, OP_HUBER_LOSS, d, z, L(0, 0, 0, 0));
    ir_set_float(g, h, "delta", 1e-17);
    ir_set_str(g, h, "reduction", "sum");
    ir_set_float(g, c, "value", 0.30000000000000004);
    ir_verify(g);
    char *p = round_trip(g);
    ck_assert_ptr_nonnull(strstr(p, "%0 = input \"x \\\"quoted\\\"\\\\path\\n\\ttab\\x01\\x7f\xc3\xa9\""));
    ck_assert_ptr_nonnull(strstr(p, "args = [-1.5, 1e+300, 5e-324]"));
    ck_assert_ptr_nonnull(strstr(p, "{value = 0.30000000000000004}"));
    ck_assert_ptr_nonnull(strstr(p, "{shape = [B*4, -1, B, 0]}"));
    ck_assert_ptr_nonnull(strstr(p, "{begin = [0, none], end = [none, 9223372036854775807], "
                                    "step = [1, -2], squeeze = []}"));
    ck_assert_ptr_nonnull(strstr(p, "{lo = -inf, hi = inf}"));
    ck_assert_ptr_nonnull(strstr(p, "{alpha = nan}"));
    ck_assert_ptr_nonnull(strstr(p, "{approximate = \"tanh\"}"));
    ck_assert_ptr_nonnull(strstr(p, "{keepdims = true, axis = [-1]}"));
    ck_assert_ptr_nonnull(strstr(p, "{axis = -9223372036854775808, keepdims = false}"));
    ck_assert_ptr_nonnull(strstr(p, "concat(%0, %1, %2, %3, %9) {axis = 9223372036854775807}"));
    ck_assert_ptr_nonnull(strstr(p, "{p = -0.0}"));
    ck_assert_ptr_nonnull(strstr(p, "%13 = zeros {shape = [2]} : ?\n"));
    ck_assert_ptr_nonnull(strstr(p, "{delta = 1e-17, reduction = \"sum\"}"));
    ck_assert_ptr_null(strstr(p, "file "));
    ck_assert_ptr_null(strstr(p, "@"));

    /* the values read back are the identical doubles */
    Arena *b = arena_new();
    Graph *r2 = read_text(b, p);
    ck_assert_ptr_nonnull(r2);
    const Attr *args = ir_attr(r2->nodes.v[1], "args");
    ck_assert(args->floats.v[1] == 1e300);
    ck_assert(args->floats.v[2] == 5e-324);
    ck_assert(ir_attr_float(r2->nodes.v[2], "value") == 0.30000000000000004);
    ck_assert(signbit(ir_attr_float(r2->nodes.v[12], "p")));
    ck_assert(isnan(ir_attr_float(r2->nodes.v[7], "alpha")));
    ck_assert_str_eq(r2->nodes.v[0]->name, x->name);
    ck_assert_int_eq(ir_attr(r2->nodes.v[5], "begin")->ints.v[1].n, IR_NONE);
    ck_assert_int_eq(ir_attr_int(r2->nodes.v[10], "axis"), INT64_MIN);
    arena_free(b);
    free(p);
    arena_free(a);
}
END_TEST

TEST(text, round_trip_train_schedule_clip)
{
    int f0 = diag_add_source("a.dl", "", 0);
    int f1 = diag_add_source("unused.dl", "", 0);
    int f2 = diag_add_source("lib/b \"q\".dl", "", 0);
    (void)f1;
    Arena *a = arena_new();
    Graph *g = mlp(a, f0);
    g->nodes.v[3]->loc = L(f2, 7, 3, 0);
    g->outputs.v[0].loc = (Loc){0};
    Train *t = g->train;
    t->optim = OPTIM_SGD;
    t->optim_args = (AttrList){0};
    ir_attrs_set(a, &t->optim_args, (Attr){.name = "lr", .kind = AK_FLOAT, .f = 0.1});
    ir_attrs_fill_defaults(a, &t->optim_args, optim_schema(OPTIM_SGD));
    t->has_clip = true;
    t->clip_norm = 1.0;
    t->sched = SCHED_WARMUP_COSINE;
    ir_attrs_set(a, &t->sched_args, (Attr){.name = "warmup", .kind = AK_INT, .i = 100});
    ir_attrs_set(a, &t->sched_args, (Attr){.name = "total", .kind = AK_INT, .i = 1000});
    ir_attrs_set(a, &t->sched_args, (Attr){.name = "min_lr", .kind = AK_FLOAT, .f = 1e-5});
    ir_output(g, "logits", g->nodes.v[3], L(f2, 9, 1, 1));
    char *p = round_trip(g);
    ck_assert_ptr_nonnull(strstr(p, "file 0 \"a.dl\"\nfile 1 \"lib/b \\\"q\\\".dl\"\n"));
    ck_assert_ptr_nonnull(strstr(p, "%3 = matmul(%0, %2) : ? @1:7:3+0\n"));
    ck_assert_ptr_nonnull(strstr(p, "output \"probs\" = %4\n"));
    ck_assert_ptr_nonnull(strstr(p, "output \"logits\" = %3 @1:9:1\n"));
    ck_assert_ptr_nonnull(strstr(p, "train %5 with sgd {lr = 0.1, momentum = 0.0, nesterov = false, "
                                    "weight_decay = 0.0, dampening = 0.0, l1 = 0.0} "
                                    "clip_norm = 1.0 schedule = warmup_cosine "
                                    "{warmup = 100, total = 1000, min_lr = 1e-05} @0:24:5+5\n"));
    /* reading maps file indices back onto the registered paths */
    Arena *b = arena_new();
    Graph *h = read_text(b, p);
    ck_assert_ptr_nonnull(h);
    ck_assert_str_eq(diag_file_path(h->nodes.v[3]->loc.file), "lib/b \"q\".dl");
    ck_assert_int_eq(h->nodes.v[3]->loc.len, 0);
    ck_assert_int_eq(h->nodes.v[0]->loc.file, f0);
    ck_assert_int_eq(h->train->sched, SCHED_WARMUP_COSINE);
    ck_assert(h->train->has_clip);
    ck_assert_double_eq(h->train->clip_norm, 1.0);
    arena_free(b);
    free(p);
    arena_free(a);
}
END_TEST

TEST(text, round_trip_no_batch_no_train)
{
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "has space");
    Node *x = ir_input(g, "x", DT_F32, ir_shape_of(1, (int64_t[]){3}), L(0, 0, 0, 0));
    ir_output(g, "y", ir_unary(g, OP_EXP, x, L(0, 0, 0, 0)), L(0, 0, 0, 0));
    char *p = round_trip(g);
    ck_assert_str_eq(p, "dlc-ir 1\n"
                        "model \"has space\"\n"
                        "  %0 = input \"x\" : f32[3]\n"
                        "  %1 = exp(%0) : ?\n"
                        "  output \"y\" = %1\n"
                        "end\n");
    free(p);
    arena_free(a);
}
END_TEST

/* Files named in the table are read from disk when they exist, so carets
 * under .dl lines work for a graph read back from text. */
TEST(text, read_registers_files)
{
    char path[] = "/tmp/dlc_test_ir_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "model m {\n  input x: f32[3];\n}\n", 31), 31);
    close(fd);
    char text[512];
    snprintf(text, sizeof text,
             "dlc-ir 1\nfile 0 \"%s\"\nfile 1 \"/nonexistent/x.dl\"\n"
             "model m\n  %%0 = input \"x\" : f32[3] @0:2:3+5\n  %%1 = neg(%%0) : ? @1:1:1\nend\n",
             path);
    Arena *a = arena_new();
    Graph *g = read_text(a, text);
    ck_assert_ptr_nonnull(g);
    int f = g->nodes.v[0]->loc.file;
    ck_assert_str_eq(diag_file_path(f), path);
    size_t len;
    ck_assert_str_eq(diag_source_text(f, &len), "model m {\n  input x: f32[3];\n}\n");
    int f1 = g->nodes.v[1]->loc.file;
    ck_assert_str_eq(diag_file_path(f1), "/nonexistent/x.dl");
    ck_assert_str_eq(diag_source_text(f1, &len), "");
    diag_error(g->nodes.v[0]->loc, "here");
    ck_assert_ptr_nonnull(strstr(tl_diags(), ":2:3: error: here\n      input x: f32[3];\n      ^~~~~\n"));
    unlink(path);
    arena_free(a);
}
END_TEST

/* The file table reads back in its order, whatever diag already holds:
 * reading canonical text and printing it gives the text back. */
TEST(text, read_file_table_order)
{
    int fa = diag_add_source("a.dl", "", 0);
    int fb = diag_add_source("b.dl", "", 0);
    const char *text = "dlc-ir 1\n"
                       "file 0 \"b.dl\"\n"
                       "file 1 \"a.dl\"\n"
                       "file 2 \"a.dl\"\n"
                       "model m @1:1:1\n"
                       "  %0 = input \"x\" : f32[3] @0:2:3\n"
                       "  %1 = neg(%0) : ? @2:3:4+2\n"
                       "end\n";
    Arena *a = arena_new();
    Graph *g = read_text(a, text);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(g->nodes.v[0]->loc.file, fb);
    ck_assert_int_ne(g->loc.file, fa);
    ck_assert_int_ne(g->loc.file, g->nodes.v[1]->loc.file);
    ck_assert_str_eq(diag_file_path(g->nodes.v[1]->loc.file), "a.dl");
    char *p = tl_print(ir_print, g);
    ck_assert_str_eq(p, text);
    free(p);
    arena_free(a);
}
END_TEST

/* Hand-written IR: comments, any increasing value numbers, defaults. */
TEST(text, read_hand_written)
{
    const char *text = "# a comment\n\n"
                       "dlc-ir 1   # version\n"
                       "model m batch N <= 4\n"
                       "  %10 = input \"x\" : f32[N, 3]\n"
                       "\n"
                       "  %20 = param \"w\" {init = \"zeros\"} : f32[3, 3]  # defaults filled\n"
                       "  %25 = conv2d(%10, %20) {groups = 2} : ?\n"
                       "  %30 = matmul(%10, %20) : ?\n"
                       "  %31 = clamp(%30) {lo = 0, hi = 6} : ?\n"
                       "  output \"o\" = %31\n"
                       "  train %31 with adam {lr = 1} schedule = constant\n"
                       "end\n"
                       "# trailing comment\n";
    Arena *a = arena_new();
    Graph *g = read_text(a, text);
    ck_assert_msg(g != NULL, "%s", tl_diags());
    char *p = tl_print(ir_print, g);
    ck_assert_str_eq(p, "dlc-ir 1\n"
                        "model m batch N <= 4\n"
                        "  %0 = input \"x\" : f32[N, 3]\n"
                        "  %1 = param \"w\" {init = \"zeros\", frozen = false} : f32[3, 3]\n"
                        "  %2 = conv2d(%0, %1) {groups = 2, stride = [1], padding = [0], "
                        "dilation = [1]} : ?\n"
                        "  %3 = matmul(%0, %1) : ?\n"
                        "  %4 = clamp(%3) {lo = 0.0, hi = 6.0} : ?\n"
                        "  output \"o\" = %4\n"
                        "  train %4 with adam {lr = 1.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-08, "
                        "weight_decay = 0.0, l1 = 0.0}\n"
                        "end\n");
    free(p);
    arena_free(a);
}
END_TEST

/* Fusion marks (Node.fused) print as "fused %N" after the location and read
 * back to the same pointers; the only forward reference in the format. */
TEST(text, round_trip_fused)
{
    int f = diag_add_source("m.dl", "", 0);
    Arena *a = arena_new();
    Graph *g = ir_graph_new(a, "m");
    g->batch = "B";
    g->max_batch = 8;
    Node *x = ir_input(g, "x", DT_F32, S2(1, true, 4), L(f, 1, 1, 1));
    Node *w = ir_param(g, "w", DT_F32, S2(4, false, 3), INIT_ZEROS, NULL, 0, false, L(0, 0, 0, 0));
    Node *b = ir_param(g, "b", DT_F32, ir_shape_of(1, (int64_t[]){3}), INIT_ZEROS, NULL, 0, false,
                       L(0, 0, 0, 0));
    Node *mm = ir_binary(g, OP_MATMUL, x, w, L(f, 2, 3, 4));
    Node *add = ir_binary(g, OP_ADD, mm, b, L(0, 0, 0, 0));
    Node *r = ir_unary(g, OP_RELU, add, L(f, 2, 1, 4));
    Node *e = ir_unary(g, OP_EXP, r, L(0, 0, 0, 0));
    Node *t = ir_unary(g, OP_TANH, e, L(0, 0, 0, 0));
    for (int i = 3; i < g->nodes.n; i++) {
        g->nodes.v[i]->dtype = DT_F32;
        g->nodes.v[i]->shape = S2(1, true, 3);
    }
    mm->fused = r;
    add->fused = r;
    e->fused = t;
    ir_output(g, "y", t, L(0, 0, 0, 0));
    ir_verify(g);
    char *p = round_trip(g);
    ck_assert_ptr_nonnull(strstr(p, "  %3 = matmul(%0, %1) : f32[B, 3] @0:2:3+4 fused %5\n"
                                    "  %4 = add(%3, %2) : f32[B, 3] fused %5\n"
                                    "  %5 = relu(%4) : f32[B, 3] @0:2:1+4\n"
                                    "  %6 = exp(%5) : f32[B, 3] fused %7\n"
                                    "  %7 = tanh(%6) : f32[B, 3]\n"));
    Arena *a2 = arena_new();
    Graph *h = read_text(a2, p);
    ck_assert_ptr_nonnull(h);
    ck_assert_ptr_eq(h->nodes.v[3]->fused, h->nodes.v[5]);
    ck_assert_ptr_eq(h->nodes.v[4]->fused, h->nodes.v[5]);
    ck_assert_ptr_null(h->nodes.v[5]->fused);
    ck_assert_ptr_eq(h->nodes.v[6]->fused, h->nodes.v[7]);
    ck_assert_ptr_null(h->nodes.v[7]->fused);
    arena_free(a2);
    free(p);
    arena_free(a);
}
END_TEST

/* Value numbers need not be dense: "fused %30" resolves by number. */
TEST(text, read_fused_sparse_numbers)
{
    Arena *a = arena_new();
    Graph *g = read_text(a, "dlc-ir 1\nmodel m\n"
                            "  %10 = input \"x\" : f32[3]\n"
                            "  %20 = exp(%10) : f32[3] fused %30\n"
                            "  %30 = neg(%20) : f32[3]\n"
                            "end\n");
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_eq(g->nodes.v[1]->fused, g->nodes.v[2]);
    ck_assert_ptr_null(g->nodes.v[0]->fused);
    arena_free(a);
}
END_TEST

/* ---- reader errors -------------------------------------------------------- */

typedef struct {
    const char *body; /* the lines after "model m batch B <= 8\n" */
    const char *msg;  /* expected "t.ir:LINE:COL: error: MESSAGE" */
} BadCase;

static const BadCase bad_cases[] = {
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = matmull(%0, %0) : ?\nend\n",
     "t.ir:4:8: error: unknown op 'matmull'; did you mean 'matmul'?"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = relu(%7) : ?\nend\n",
     "t.ir:4:13: error: use of undefined value %7"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = conv2d(%0, %0) {strid = [1]} : ?\nend\n",
     "t.ir:4:24: error: 'strid' is not an attribute of conv2d; did you mean 'stride'?"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = matmul(%0) : ?\nend\n",
     "t.ir:4:14: error: matmul takes 2 inputs, found 1"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = input \"x\" : f32[3]\nend\n",
     "t.ir:4:14: error: redefinition of \"x\""},
    {"  %0 = input \"x\" : f32[B, 4\nend\n", "t.ir:3:28: error: expected ']', found end of line"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %0 = relu(%0) : ?\nend\n",
     "t.ir:4:3: error: redefinition of value %0"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = gelu(%0) {approximate = \"fast\"} : ?\nend\n",
     "t.ir:4:32: error: attribute 'approximate' of gelu must be one of 'none', 'tanh', not "
     "\"fast\""},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = reshape(%0) : ?\nend\n",
     "t.ir:4:8: error: reshape needs attribute 'shape'"},
    {"  %0 = input \"x\" : f32[B, 4]\n  %1 = sum(%0) {keepdims = 1} : ?\nend\n",
     "t.ir:4:28: error: attribute 'keepdims' of sum wants true or false, found '1'"},
    {"  %0 = input \"x\" : f32[B, 4]\n  train %0 with adamm {lr = 0.1}\nend\n",
     "t.ir:4:17: error: unknown optimizer 'adamm'; did you mean 'adam'?"},
    {"  %0 = input \"x\" : f32[B, 4]\n  train %0 with adam {beta1 = 0.5}\nend\n",
     "t.ir:4:17: error: optimizer adam needs attribute 'lr'"},
    {"  %0 = input \"x\" : f32[B, 4]\n  train %0 with sgd {lr = 1} schedule = cosine {totl = 1}\n"
     "end\n",
     "t.ir:4:49: error: 'totl' is not an attribute of schedule cosine; did you mean 'total'?"},
    {"  %0 = input \"x\" : f8[B, 4]\nend\n",
     "t.ir:3:20: error: unknown element type 'f8' (f32, f64, i32, f16 or bf16)"},
    {"  %0 = input \"x\" : f32[T, 4]\nend\n",
     "t.ir:3:24: error: unknown dimension 'T'; the batch symbol is 'B'"},
    {"  %0 = input \"x\" : f32[1, 2, 3, 4, 5, 6, 7, 8, 9]\nend\n",
     "t.ir:3:48: error: rank exceeds the maximum of 8"},
    {"  %0 = input \"x\" : f32[3] @2:1:1\nend\n", "t.ir:3:28: error: file 2 is not in the file table"},
    {"  %0 = input \"x\\q\" : f32[3]\nend\n", "t.ir:3:16: error: unknown escape sequence in string"},
    {"  %0 = input \"x : f32[3]\nend\n", "t.ir:3:14: error: missing terminating '\"' character"},
    {"  %0 = input \"x\" : f32[3]\n  output \"y\" = %0\n  output \"y\" = %0\nend\n",
     "t.ir:5:10: error: output \"y\" defined twice"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ?\n  output \"x\" = %1\nend\n",
     "t.ir:5:10: error: output \"x\" has the name of an input"},
    {"  %0 = input \"x\" : f32[3]\n", "t.ir:4:1: error: expected a node, 'output', 'train' or "
                                     "'end', found end of file"},
    {"  %0 = input \"x\" : f32[3]\nend\nmore\n",
     "t.ir:5:1: error: expected end of file after 'end', found 'more'"},
    {"  %0 = input : f32[3]\nend\n", "t.ir:3:14: error: input needs a name"},
    {"  %0 = input \"x\" : ?\nend\n", "t.ir:3:20: error: input \"x\" needs a type"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = concat() : ?\nend\n",
     "t.ir:4:8: error: concat takes at least one input"},
    {"  %5 = input \"x\" : f32[3]\n  %2 = neg(%5) : ?\nend\n",
     "t.ir:4:3: error: value numbers must increase: %2 after %5"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = const {value = 1e999} : ?\nend\n",
     "t.ir:4:23: error: floating-point number out of range"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = slice(%0) {begin = [99999999999999999999]} : ?\nend\n",
     "t.ir:4:28: error: integer out of range"},
    {"  %0 = param \"w\" {init = \"kaiming_unifrom\"} : f32[3]\nend\n",
     "t.ir:3:26: error: unknown initializer \"kaiming_unifrom\"; did you mean 'kaiming_uniform'?"},
    {"  %0 = input \"x\" : f32[3] $\nend\n", "t.ir:3:27: error: unexpected character '$'"},
    {"  %0 = input \"x\" {a = 1} : f32[3]\nend\n", "t.ir:3:19: error: input takes no attributes"},
    {"  %0 = input \"x\" : f32[3]\n  train %0 with sgd {lr = 1}\n  train %0 with sgd {lr = 1}\nend\n",
     "t.ir:5:3: error: several train statements need a name each ('as NAME')"},
    {"  %0 = input \"x\" : f32[3]\n  train %0 as a with sgd {lr = 1}\n  train %0 with sgd {lr = 1}\n"
     "end\n",
     "t.ir:5:3: error: several train statements need a name each ('as NAME')"},
    {"  %0 = input \"x\" : f32[3]\n  train %0 as a with sgd {lr = 1}\n  train %0 as a with sgd {lr = 1}\n"
     "end\n",
     "t.ir:5:15: error: a second objective named 'a'"},
    {"  %0 = param \"w\" {init = \"zeros\"} : f32[]\n  train %0 as a with sgd {lr = 1} params = [\"v\"]\nend\n",
     "t.ir:5:1: error: params: no trainable parameter under \"v\""},
    {"  %0 = param \"w\" {init = \"zeros\"} : f32[]\n  %1 = param \"v\" {init = \"zeros\"} : f32[]\n"
     "  train %0 as a with sgd {lr = 1} params = [\"w\"]\n  grad \"v\" = %1\nend\n",
     "t.ir:6:8: error: parameter \"v\" is not under the objective's params"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ? fused %2\nend\n",
     "t.ir:4:26: error: use of undefined value %2"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ? fused %1\nend\n",
     "t.ir:4:26: error: a node can only be fused into a later node"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ? fused %0\nend\n",
     "t.ir:4:26: error: a node can only be fused into a later node"},
    {"  %0 = input \"x\" : f32[3] fused %1\n  %1 = neg(%0) : ?\nend\n",
     "t.ir:3:33: error: input cannot be fused into another node"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ? fused %2\n  %2 = exp(%1) : ? fused %3\n"
     "  %3 = exp(%2) : ?\nend\n",
     "t.ir:4:26: error: %2 is itself fused into another node; name the root"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ? fused 2\nend\n",
     "t.ir:4:26: error: expected a value such as %3 after 'fused', found '2'"},
    {"  %0 = input \"x\" : f32[3]\n  %1 = neg(%0) : ? fusd %2\nend\n",
     "t.ir:4:20: error: expected end of line, found 'fusd'"},
};

TEST_LOOP(text, reader_errors, countof(bad_cases))
{
    const BadCase *c = &bad_cases[_i];
    char text[1024];
    snprintf(text, sizeof text, "dlc-ir 1\nmodel m batch B <= 8\n%s", c->body);
    Arena *a = arena_new();
    Graph *g = read_text(a, text);
    ck_assert_msg(g == NULL, "case %d read without error", _i);
    const char *out = tl_diags();
    ck_assert_msg(strncmp(out, c->msg, strlen(c->msg)) == 0 && out[strlen(c->msg)] == '\n',
                  "case %d: want\n%s\ngot\n%s", _i, c->msg, out);
    ck_assert_int_eq(diag_errors(), 1);
    arena_free(a);
}
END_TEST

TEST(text, reader_header_errors)
{
    static const char *cases[][2] = {
        {"", "t.ir:1:1: error: expected 'dlc-ir VERSION' on the first line"},
        {"dlc-ir 2\n", "t.ir:1:8: error: unsupported IR version 2 (this dlc reads version 1)"},
        {"dlc-ir 1\nfile 1 \"a\"\n", "t.ir:2:6: error: expected file index 0, found 1"},
        {"dlc-ir 1\nmodel m batch B <= 0\n", "t.ir:2:20: error: the maximum batch size must be positive"},
        {"dlc-ir 1\nmodel m batch B < 8\n", "t.ir:2:17: error: unexpected character '<'"},
        {"dlc-ir 1\nmodel m\n  %0 = input \"x\" : f32[B]\nend\n",
         "t.ir:3:24: error: unknown dimension 'B': the model declares no batch symbol"},
        {"dlc-ir 1\x01", "t.ir:1:9: error: unexpected byte 0x01"},
    };
    for (int i = 0; i < countof(cases); i++) {
        teardown();
        setup();
        Arena *a = arena_new();
        ck_assert_ptr_null(read_text(a, cases[i][0]));
        const char *out = tl_diags();
        ck_assert_msg(strncmp(out, cases[i][1], strlen(cases[i][1])) == 0, "case %d: want\n%s\ngot\n%s",
                      i, cases[i][1], out);
        arena_free(a);
    }
}
END_TEST

/* The caret points into the .ir text. */
TEST(text, reader_error_caret)
{
    Arena *a = arena_new();
    ck_assert_ptr_null(read_text(a, "dlc-ir 1\nmodel m\n  %0 = input \"x\" : f32[3]\n"
                                    "  %1 = matmull(%0, %0) : ?\nend\n"));
    ck_assert_str_eq(tl_diags(), "t.ir:4:8: error: unknown op 'matmull'; did you mean 'matmul'?\n"
                                  "      %1 = matmull(%0, %0) : ?\n"
                                  "           ^~~~~~~\n");
    arena_free(a);
}
END_TEST

/* Every prefix of a valid text either reads or fails cleanly. */
TEST(text, reader_prefixes_never_crash)
{
    int f = diag_add_source("m.dl", "", 0);
    Arena *a = arena_new();
    Graph *g = mlp(a, f);
    char *p = tl_print(ir_print, g);
    size_t n = strlen(p);
    int ok = 0;
    for (size_t k = 0; k <= n; k++) {
        Arena *b = arena_new();
        int id = diag_add_source("p.ir", p, k);
        if (ir_read(b, id))
            ok++;
        arena_free(b);
    }
    /* only the whole text, and the text less its final newline, are valid */
    ck_assert_int_eq(ok, 2);
    free(p);
    arena_free(a);
}
END_TEST

/* ---- dot ------------------------------------------------------------------ */

static int count(const char *s, const char *needle)
{
    int n = 0;
    size_t len = strlen(needle);
    for (size_t i = 0; s[i]; i++)
        n += strncmp(s + i, needle, len) == 0;
    return n;
}

TEST(text, dot_structure)
{
    Arena *a = arena_new();
    Graph *g = mlp(a, 0);
    g->nodes.v[0]->dtype = DT_F32;
    Node *q = ir_input(g, "say \"hi\"\\", DT_F32, ir_shape_of(1, (int64_t[]){2}), L(0, 0, 0, 0));
    (void)q;
    char *d = tl_print(ir_print_dot, g);
    ck_assert(strncmp(d, "digraph \"mnist_mlp\" {\n", 22) == 0);
    ck_assert_int_eq(d[strlen(d) - 2], '}');
    /* 7 IR nodes, 1 output, 1 train */
    ck_assert_int_eq(count(d, "[label="), 9);
    /* matmul 2 + softmax 1 + cross_entropy 2 + output + train */
    ck_assert_int_eq(count(d, " -> "), 7);
    ck_assert_ptr_nonnull(strstr(d, "  n0 -> n3;\n"));
    ck_assert_ptr_nonnull(strstr(d, "  n4 -> out0;\n"));
    ck_assert_ptr_nonnull(strstr(d, "  n5 -> train;\n"));
    ck_assert_ptr_nonnull(strstr(d, "n5 [label=\"%5 cross_entropy\", color=red, penwidth=2];"));
    ck_assert_ptr_nonnull(strstr(d, "n0 [label=\"%0 input\\nx\\nf32[B, 784]\""));
    ck_assert_ptr_nonnull(strstr(d, "label=\"%6 input\\nsay \\\"hi\\\"\\\\\\nf32[2]\""));
    /* quotes balance: every label string is closed */
    int quotes = 0;
    for (const char *p = d; *p; p++)
        if (*p == '"' && p[-1] != '\\')
            quotes++;
        else if (*p == '"' && p[-1] == '\\' && p[-2] == '\\')
            quotes++;
    ck_assert_int_eq(quotes % 2, 0);
    free(d);
    arena_free(a);
}
END_TEST
