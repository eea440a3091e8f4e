/*
 * pass_simplify and pass_fuse, Glow GraphOptz style: build a graph with the
 * ir.h builder, type it with pass_shape, run the pass, then count the
 * nodes and check the exact structure (which node survived, what the
 * outputs and the loss point at, the exact Node.fused pointers). Every
 * graph must pass ir_verify afterwards.
 *
 * Helpers: X("f32[B, 4]") makes an input, P("f32[4, 3]") a parameter,
 * C(v) a scalar const, U(op, x) and Bin(op, a, b) nodes with their schema
 * defaults filled as the lowering does, OUT(n) a model output. typed()
 * runs pass_shape and asserts it succeeded.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "codegen.h"
#include "passes.h"
#include "testlib.h"

static Arena *A;
static Graph *G;

static void setup(void)
{
    diag_reset();
    A = arena_new();
    G = tl_graph_new(A, 16);
}

static void teardown(void)
{
    diag_reset();
    arena_free(A);
    A = NULL;
}

static Loc L0(void)
{
    return (Loc){0};
}

#define X(spec) tl_input(G, spec)
#define P(spec) tl_param(G, spec)

static Node *C(double v)
{
    return ir_const(G, v, L0());
}

/* A const typed up front (shape_const keeps a type already set). */
static Node *CT(double v, DType t)
{
    Node *c = C(v);
    c->dtype = t;
    return c;
}

static Node *U(Op op, Node *x)
{
    return tl_defaults(G, ir_unary(G, op, x, L0()));
}
static Node *Bin(Op op, Node *a, Node *b)
{
    return tl_defaults(G, ir_binary(G, op, a, b, L0()));
}

static void OUT(Node *n)
{
    ir_output(G, arena_printf(A, "out%d", G->outputs.n), n, L0());
}

static void loss(Node *n)
{
    Train *t = arena_alloc(A, sizeof *t);
    t->loss = n;
    t->optim = OPTIM_SGD;
    ir_attrs_set(A, &t->optim_args, (Attr){.name = "lr", .kind = AK_FLOAT, .f = 0.1});
    t->sched = SCHED_CONSTANT;
    G->train = t;
}

static void typed(void)
{
    ir_verify(G);
    ck_assert_msg(pass_shape(G), "pass_shape failed");
    ck_assert_int_eq(diag_errors(), 0);
}

static void simplify(void)
{
    typed();
    pass_simplify(G);
    ir_verify(G);
}

static void fuse(void)
{
    typed();
    pass_fuse(G);
    ir_verify(G);
}

static bool in_graph(const Node *n)
{
    return n->id >= 0 && n->id < G->nodes.n && G->nodes.v[n->id] == n;
}

static int count_op(Op op)
{
    int k = 0;
    for (int i = 0; i < G->nodes.n; i++)
        k += G->nodes.v[i]->op == op;
    return k;
}

static double value(const Node *n)
{
    ck_assert_int_eq(n->op, OP_CONST);
    return ir_attr_float(n, "value");
}

/* ---- constant folding ---------------------------------------------------- */

SUITE("passes");
GROUP(simplify, setup, teardown);
GROUP(fuse, setup, teardown);

TEST(simplify, fold_arithmetic)
{
    Node *x = X("f32[B, 4]");
    Node *s = Bin(OP_ADD, C(2), C(3));
    Node *m = Bin(OP_MUL, s, C(4)); /* (2 + 3) * 4 */
    Node *y = Bin(OP_MUL, x, m);
    OUT(y);
    simplify();
    /* x, one const, the mul */
    ck_assert_int_eq(G->nodes.n, 3);
    ck_assert(in_graph(y));
    ck_assert_ptr_eq(y->in[0], x);
    ck_assert_double_eq(value(y->in[1]), 20.0);
    ck_assert_int_eq(y->in[1]->dtype, DT_F32);
    ck_assert_int_eq(y->in[1]->shape.rank, 0);
    ck_assert_ptr_eq(G->outputs.v[0].node, y);
}
END_TEST

TEST(simplify, fold_rounds_to_f32)
{
    Node *s = Bin(OP_ADD, C(0.1), C(0.2));
    Node *q = U(OP_SQRT, C(2));
    OUT(s);
    OUT(q);
    simplify();
    ck_assert_int_eq(G->nodes.n, 2);
    /* operands as the f32 kernel sees them, the sum rounded once to f32 */
    float want = (float)((double)0.1f + (double)0.2f);
    ck_assert(value(G->outputs.v[0].node) == (double)want);
    ck_assert(value(G->outputs.v[1].node) == (double)(float)sqrt(2.0));
    ck_assert(value(G->outputs.v[1].node) != sqrt(2.0));
}
END_TEST

TEST(simplify, fold_f64_unary_chain)
{
    Node *e = U(OP_EXP, U(OP_LOG, U(OP_NEG, CT(-3, DT_F64))));
    Node *d = Bin(OP_DIV, CT(1, DT_F64), CT(3, DT_F64));
    OUT(e);
    OUT(d);
    simplify();
    ck_assert_int_eq(G->nodes.n, 2);
    ck_assert_int_eq(G->outputs.v[0].node->dtype, DT_F64);
    ck_assert(value(G->outputs.v[0].node) == exp(log(3.0)));
    ck_assert(value(G->outputs.v[1].node) == 1.0 / 3.0);
}
END_TEST

TEST(simplify, fold_i32_and_its_limits)
{
    Node *x = X("i32[B]");
    Node *a = Bin(OP_MUL, CT(6, DT_I32), CT(7, DT_I32));
    Node *big = Bin(OP_ADD, CT(2147483647, DT_I32), CT(1, DT_I32)); /* would overflow */
    Node *y = Bin(OP_ADD, Bin(OP_ADD, x, a), big);
    OUT(y);
    simplify();
    ck_assert_int_eq(a->op, OP_CONST);
    ck_assert_double_eq(value(a), 42.0);
    ck_assert_int_eq(big->op, OP_ADD);
    ck_assert(in_graph(big));
    ck_assert_int_eq(count_op(OP_ADD), 3);
}
END_TEST

TEST(simplify, fold_not_nan_or_signed_zero_select)
{
    Node *n = U(OP_NEG, C(NAN));
    Node *mx = Bin(OP_MAXIMUM, C(-0.0), C(0.0)); /* +0 or -0 depends on the kernel */
    Node *mn = Bin(OP_MINIMUM, C(2), C(5));
    Node *r = U(OP_RELU, C(3)); /* activations are left to the kernels */
    OUT(n);
    OUT(mx);
    OUT(mn);
    OUT(r);
    simplify();
    ck_assert_int_eq(n->op, OP_NEG);
    ck_assert_int_eq(mx->op, OP_MAXIMUM);
    ck_assert_int_eq(mn->op, OP_CONST);
    ck_assert_double_eq(value(mn), 2.0);
    ck_assert_int_eq(r->op, OP_RELU);
}
END_TEST

/* ---- identities ------------------------------------------------------------ */

TEST(simplify, identities_exact)
{
    Node *x = X("f32[B, 4]");
    OUT(Bin(OP_MUL, x, C(1)));
    OUT(Bin(OP_MUL, C(1), x));
    OUT(Bin(OP_DIV, x, C(1)));
    OUT(Bin(OP_ADD, x, C(-0.0)));
    OUT(Bin(OP_ADD, C(-0.0), x));
    OUT(Bin(OP_SUB, x, C(0.0)));
    OUT(U(OP_NEG, U(OP_NEG, x)));
    simplify();
    ck_assert_int_eq(G->nodes.n, 1);
    for (int i = 0; i < G->outputs.n; i++)
        ck_assert_msg(G->outputs.v[i].node == x, "output %d not replaced by x", i);
}
END_TEST

TEST(simplify, identities_inexact_are_kept)
{
    Node *x = X("f32[B, 4]");
    Node *a = Bin(OP_ADD, x, C(0.0));  /* -0 + +0 = +0 */
    Node *s = Bin(OP_SUB, x, C(-0.0)); /* -0 - -0 = +0 */
    Node *d = Bin(OP_DIV, C(1), x);
    Node *m = Bin(OP_MUL, x, C(2));
    Node *n = U(OP_NEG, x);
    OUT(a);
    OUT(s);
    OUT(d);
    OUT(m);
    OUT(n);
    simplify();
    /* x, the four consts (none merge: 0.0 and -0.0 differ bit for bit), five ops */
    ck_assert_int_eq(G->nodes.n, 10);
    ck_assert_ptr_eq(G->outputs.v[0].node, a);
    ck_assert_ptr_eq(G->outputs.v[1].node, s);
    ck_assert_ptr_eq(G->outputs.v[2].node, d);
    ck_assert_ptr_eq(G->outputs.v[3].node, m);
    ck_assert_ptr_eq(G->outputs.v[4].node, n);
}
END_TEST

TEST(simplify, identity_i32_add_zero)
{
    Node *x = X("i32[B]");
    OUT(Bin(OP_ADD, x, C(0)));
    OUT(Bin(OP_ADD, C(0), x));
    simplify();
    ck_assert_int_eq(G->nodes.n, 1);
    ck_assert_ptr_eq(G->outputs.v[0].node, x);
    ck_assert_ptr_eq(G->outputs.v[1].node, x);
}
END_TEST

TEST(simplify, identity_keeps_broadcast)
{
    /* x * 1 where x is a scalar input and the const broadcasts nothing: gone;
     * but s * ones-like param broadcast to [3] changes the shape: kept */
    Node *s = X("f32[]");
    Node *o = P("f32[3]");
    Node *m = Bin(OP_MUL, s, C(1));
    Node *b = Bin(OP_MUL, m, o);
    OUT(b);
    simplify();
    ck_assert_ptr_eq(b->in[0], s);
    ck_assert_ptr_eq(G->outputs.v[0].node, b);
    ck_assert_int_eq(G->nodes.n, 3);
}
END_TEST

TEST(simplify, identity_reshapes_and_transpose)
{
    Node *x = X("f32[B, 2, 6]");
    Node *r1 = U(OP_RESHAPE, x);
    tl_set_ints(G, r1, "shape", (int64_t[]){-1, 12}, 2);
    r1->attrs.v[0].ints.v[0] = (Dim){1, true};
    Node *r2 = U(OP_RESHAPE, r1);
    tl_set_ints(G, r2, "shape", (int64_t[]){-1, 3, 4}, 3);
    Node *same = U(OP_RESHAPE, x);
    tl_set_ints(G, same, "shape", (int64_t[]){-1, 2, 6}, 3);
    Node *t_id = U(OP_TRANSPOSE, x);
    tl_set_ints(G, t_id, "perm", (int64_t[]){0, 1, 2}, 3);
    Node *t_sw = U(OP_TRANSPOSE, x);
    tl_set_ints(G, t_sw, "perm", (int64_t[]){0, 2, 1}, 3);
    Node *f = U(OP_FLATTEN, X("f32[B, 5]")); /* flatten of a rank-2 tensor: identity */
    OUT(r2);
    OUT(same);
    OUT(t_id);
    OUT(t_sw);
    OUT(f);
    simplify();
    ck_assert_ptr_eq(r2->in[0], x); /* reshape(reshape(x)) reads x */
    ck_assert(!in_graph(r1));
    ck_assert_ptr_eq(G->outputs.v[0].node, r2);
    ck_assert_ptr_eq(G->outputs.v[1].node, x);
    ck_assert_ptr_eq(G->outputs.v[2].node, x);
    ck_assert_ptr_eq(G->outputs.v[3].node, t_sw);
    ck_assert_int_eq(G->outputs.v[4].node->op, OP_INPUT);
    /* two inputs, r2, t_sw */
    ck_assert_int_eq(G->nodes.n, 4);
}
END_TEST

/* ---- CSE ------------------------------------------------------------------- */

TEST(simplify, cse_merges_equal_nodes)
{
    Node *x = X("f32[B, 4]");
    Node *y = X("f32[B, 4]");
    Node *a1 = U(OP_RELU, x);
    Node *a2 = U(OP_RELU, x);
    Node *s1 = Bin(OP_ADD, a1, y);
    Node *s2 = Bin(OP_ADD, a2, y); /* equal once a2 became a1 */
    Node *c1 = U(OP_CLAMP, x);
    ir_set_float(G, c1, "lo", -1);
    ir_set_float(G, c1, "hi", 1);
    Node *c2 = U(OP_CLAMP, x); /* the same attributes in the other order */
    ir_set_float(G, c2, "hi", 1);
    ir_set_float(G, c2, "lo", -1);
    OUT(s1);
    OUT(s2);
    OUT(c1);
    OUT(c2);
    simplify();
    ck_assert_int_eq(G->nodes.n, 5); /* x, y, relu, add, clamp */
    ck_assert_ptr_eq(G->outputs.v[0].node, s1);
    ck_assert_ptr_eq(G->outputs.v[1].node, s1);
    ck_assert_ptr_eq(G->outputs.v[2].node, c1);
    ck_assert_ptr_eq(G->outputs.v[3].node, c1);
    ck_assert_ptr_eq(s1->in[0], a1);
    ck_assert(!in_graph(a2) && !in_graph(s2) && !in_graph(c2));
}
END_TEST

TEST(simplify, cse_keeps_different_attrs_random_sources)
{
    Node *x = X("f32[B, 4]");
    Node *x2 = X("f32[B, 4]"); /* same type, a different input */
    Node *p1 = P("f32[4]");
    Node *p2 = P("f32[4]");
    Node *l1 = U(OP_LEAKY_RELU, x);
    Node *l2 = U(OP_LEAKY_RELU, x);
    ir_set_float(G, l2, "alpha", 0.2);
    Node *d1 = U(OP_DROPOUT, x);
    Node *d2 = U(OP_DROPOUT, x);
    Node *m = Bin(OP_MUL, x, x2);
    Node *n = Bin(OP_MUL, x2, x); /* operands in another order: not merged */
    OUT(Bin(OP_ADD, l1, p1));
    OUT(Bin(OP_ADD, l2, p2));
    OUT(d1);
    OUT(d2);
    OUT(m);
    OUT(n);
    simplify();
    ck_assert(in_graph(l1) && in_graph(l2));
    ck_assert(in_graph(d1) && in_graph(d2));
    ck_assert(in_graph(x2) && in_graph(p1) && in_graph(p2));
    ck_assert(in_graph(m) && in_graph(n));
    ck_assert_int_eq(G->nodes.n, 12);
}
END_TEST

TEST(simplify, cse_updates_loss)
{
    Node *x = X("f32[B, 4]");
    Node *y = X("f32[B, 4]");
    Node *a = tl_defaults(G, ir_binary(G, OP_MSE, x, y, L0()));
    Node *b = tl_defaults(G, ir_binary(G, OP_MSE, x, y, L0()));
    OUT(a);
    loss(b);
    simplify();
    ck_assert_ptr_eq(G->train->loss, a);
    ck_assert_ptr_eq(G->outputs.v[0].node, a);
    ck_assert_int_eq(G->nodes.n, 3);
}
END_TEST

/* ---- DCE ------------------------------------------------------------------- */

TEST(simplify, dce_removes_unused_keeps_sources)
{
    Node *x = X("f32[B, 4]");
    Node *unused_in = X("i32[B]");
    Node *w = P("f32[4, 3]");
    Node *unused_p = P("f32[7]");
    Node *dead = U(OP_TANH, U(OP_EXP, x)); /* a branch nobody needs */
    Node *dead_c = C(5);
    Node *mm = Bin(OP_MATMUL, x, w);
    Node *l = tl_defaults(G, ir_unary(G, OP_SUM, mm, L0()));
    OUT(mm);
    loss(l);
    simplify();
    ck_assert(!in_graph(dead) && !in_graph(dead_c));
    ck_assert(in_graph(unused_in) && in_graph(unused_p) && in_graph(w) && in_graph(x));
    ck_assert_int_eq(G->nodes.n, 6);
    ck_assert_ptr_eq(G->train->loss, l);
    /* compacted in topological order */
    for (int i = 0; i < G->nodes.n; i++)
        ck_assert_int_eq(G->nodes.v[i]->id, i);
    ck_assert_int_lt(mm->id, l->id);
}
END_TEST

TEST(simplify, dce_no_outputs_keeps_only_sources)
{
    Node *x = X("f32[3]");
    U(OP_EXP, x);
    C(1);
    simplify();
    ck_assert_int_eq(G->nodes.n, 1);
    ck_assert_ptr_eq(G->nodes.v[0], x);
}
END_TEST

TEST(simplify, simplify_is_idempotent_and_clears_fused)
{
    Node *x = X("f32[B, 4]");
    Node *e = U(OP_EXP, x);
    Node *t = U(OP_TANH, e);
    OUT(t);
    typed();
    pass_fuse(G);
    ck_assert_ptr_eq(e->fused, t);
    pass_simplify(G);
    ir_verify(G);
    ck_assert_ptr_null(e->fused);
    int n = G->nodes.n;
    pass_simplify(G);
    ck_assert_int_eq(G->nodes.n, n);
}
END_TEST

/* ---- fusion ---------------------------------------------------------------- */

TEST(fuse, fuse_chain)
{
    Node *x = X("f32[B, 4]");
    Node *y = X("f32[B, 4]");
    Node *e = U(OP_EXP, x);
    Node *s = Bin(OP_MUL, e, C(2));
    Node *a = Bin(OP_ADD, s, y);
    Node *t = U(OP_TANH, a);
    OUT(t);
    fuse();
    ck_assert_ptr_eq(e->fused, t);
    ck_assert_ptr_eq(s->fused, t);
    ck_assert_ptr_eq(a->fused, t);
    ck_assert_ptr_null(t->fused);
    ck_assert_ptr_null(x->fused);
    ck_assert_ptr_null(G->nodes.v[s->in[1]->id]->fused); /* the const */
}
END_TEST

TEST(fuse, fuse_tree_and_double_use)
{
    Node *x = X("f32[B, 4]");
    Node *e = U(OP_EXP, x);
    Node *n = U(OP_NEG, x);
    Node *m = Bin(OP_MUL, e, n); /* two producers into one root */
    Node *sq = U(OP_SIGMOID, x);
    Node *mm = Bin(OP_MUL, sq, sq); /* one user through both operands */
    OUT(m);
    OUT(mm);
    fuse();
    ck_assert_ptr_eq(e->fused, m);
    ck_assert_ptr_eq(n->fused, m);
    ck_assert_ptr_eq(sq->fused, mm);
    ck_assert_ptr_null(m->fused);
}
END_TEST

TEST(fuse, fuse_gemm_bias_relu)
{
    Node *x = X("f32[B, 4]");
    Node *y = X("f32[B, 3]");
    Node *w = P("f32[4, 3]");
    Node *b = P("f32[3]");
    Node *mm = Bin(OP_MATMUL, x, w);
    Node *a = Bin(OP_ADD, b, mm); /* the bias on the left works too */
    Node *r = U(OP_RELU, a);
    Node *g = U(OP_GELU, r);
    Node *e = U(OP_EXP, y);
    Node *res = Bin(OP_ADD, g, e); /* a residual: not part of the epilogue */
    OUT(res);
    fuse();
    ck_assert_ptr_eq(mm->fused, g);
    ck_assert_ptr_eq(a->fused, g);
    ck_assert_ptr_eq(r->fused, g);
    ck_assert_ptr_null(g->fused);
    /* the GEMM group does not grow, and nothing joins it */
    ck_assert_ptr_eq(e->fused, res);
    ck_assert_ptr_null(res->fused);
    ck_assert_ptr_null(b->fused);
}
END_TEST

TEST(fuse, fuse_gemm_bias_row_and_batched)
{
    Node *x = X("f32[B, 2, 4]");
    Node *w = P("f32[4, 3]");
    Node *b = P("f32[1, 3]");
    Node *mm = Bin(OP_MATMUL, x, w); /* [B, 2, 3] */
    Node *a = Bin(OP_ADD, mm, b);
    OUT(a);
    fuse();
    ck_assert_ptr_eq(mm->fused, a);
    ck_assert_ptr_null(a->fused);
}
END_TEST

TEST(fuse, fuse_gemm_not_an_epilogue)
{
    Node *x = X("f32[B, 4]");
    Node *w = P("f32[4, 3]");
    Node *full = X("f32[B, 3]");
    Node *m1 = Bin(OP_MATMUL, x, w);
    Node *a1 = Bin(OP_ADD, m1, full); /* not a bias: a full operand */
    Node *m2 = Bin(OP_MATMUL, x, w);
    Node *s2 = tl_defaults(G, ir_unary(G, OP_SOFTMAX, m2, L0())); /* not elementwise */
    Node *m3 = Bin(OP_MATMUL, x, w);
    Node *t3 = U(OP_TANH, m3);
    Node *u3 = Bin(OP_MUL, t3, full); /* binary op after the activation */
    OUT(a1);
    OUT(s2);
    OUT(u3);
    fuse();
    ck_assert_ptr_null(m1->fused);
    ck_assert_ptr_null(m2->fused);
    ck_assert_ptr_eq(m3->fused, t3);
    ck_assert_ptr_null(t3->fused);
    ck_assert_ptr_null(u3->fused);
}
END_TEST

/* A convolution's chain takes ops with full operands from outside (a
 * residual add) after its bias; not an operand that would have joined
 * the op's own group, a broadcast one, nor an op already in another
 * chain. */
TEST(fuse, fuse_conv_full_operands)
{
    Node *x = X("f32[B, 3, 6, 8]");
    Node *w = P("f32[4, 3, 3, 3]"); /* -> [B, 4, 4, 6] */
    Node *full = X("f32[B, 4, 4, 6]");
    Node *c1 = Bin(OP_CONV2D, x, w);
    Node *a1 = Bin(OP_ADD, c1, P("f32[4, 1, 1]"));
    Node *r1 = Bin(OP_ADD, full, a1); /* the residual */
    Node *t1 = U(OP_RELU, r1);
    Node *c4 = Bin(OP_CONV2D, x, w);
    Node *e4 = U(OP_EXP, full);
    Node *u4 = Bin(OP_MUL, c4, e4); /* e4 joins u4's group instead */
    Node *c5 = Bin(OP_CONV2D, x, w);
    Node *u5 = Bin(OP_MUL, c5, X("f32[B, 1, 4, 6]")); /* broadcast */
    Node *c6 = Bin(OP_CONV2D, x, w), *c7 = Bin(OP_CONV2D, x, w);
    Node *a67 = Bin(OP_ADD, c6, c7); /* one chain takes it */
    OUT(t1);
    OUT(u4);
    OUT(u5);
    OUT(a67);
    fuse();
    ck_assert_ptr_eq(c1->fused, t1);
    ck_assert_ptr_eq(a1->fused, t1);
    ck_assert_ptr_eq(r1->fused, t1);
    ck_assert_ptr_null(t1->fused);
    ck_assert_ptr_null(c4->fused);
    ck_assert_ptr_eq(e4->fused, u4);
    ck_assert_ptr_null(c5->fused);
    ck_assert_ptr_eq(c6->fused, a67);
    ck_assert_ptr_null(c7->fused);
    ck_assert_int_gt(cg_scratch_bytes(G, t1), 0);
}
END_TEST

TEST(fuse, fuse_not_into_several_users)
{
    Node *x = X("f32[B, 4]");
    Node *e = U(OP_EXP, x);
    Node *a = U(OP_TANH, e);
    Node *b = U(OP_NEG, e);
    OUT(a);
    OUT(b);
    fuse();
    ck_assert_ptr_null(e->fused);
    ck_assert_ptr_null(a->fused);
    ck_assert_ptr_null(b->fused);
}
END_TEST

TEST(fuse, fuse_not_broadcast_producer)
{
    Node *x = X("f32[B, 3]");
    Node *p = P("f32[3]");
    Node *e = U(OP_EXP, p); /* [3], broadcast over [B, 3] by its user */
    Node *a = Bin(OP_ADD, x, e);
    Node *n = U(OP_NEG, x);
    Node *m = Bin(OP_MUL, n, e);
    OUT(a);
    OUT(m);
    fuse();
    ck_assert_ptr_null(e->fused);
    ck_assert_ptr_eq(n->fused, m);
    ck_assert_ptr_null(a->fused);
}
END_TEST

TEST(fuse, fuse_not_outputs_loss_dropout_sources)
{
    Node *x = X("f32[B, 4]");
    Node *w = P("f32[4, 4]");
    Node *e = U(OP_EXP, x); /* an output with one user */
    Node *t = U(OP_TANH, e);
    Node *d = U(OP_DROPOUT, t); /* random: never fused, nothing into it */
    Node *s = U(OP_SQUARE, d);
    Node *mm = Bin(OP_MATMUL, s, w); /* the loss chain: mm -> relu (the loss) -> neg */
    Node *l = tl_defaults(G, ir_unary(G, OP_SUM, mm, L0()));
    Node *r = U(OP_RELU, l);
    Node *n = U(OP_NEG, r);
    OUT(e);
    OUT(n);
    loss(r);
    fuse();
    ck_assert_ptr_null(e->fused);
    ck_assert_ptr_null(t->fused);
    ck_assert_ptr_null(d->fused);
    ck_assert_ptr_null(s->fused);
    ck_assert_ptr_null(mm->fused);
    ck_assert_ptr_null(r->fused);
    ck_assert_ptr_null(x->fused);
    ck_assert_ptr_null(w->fused);
    ck_assert_int_eq(G->nodes.n, 10);
}
END_TEST

TEST(fuse, fuse_gemm_output_stops_chain)
{
    Node *x = X("f32[B, 4]");
    Node *w = P("f32[4, 3]");
    Node *b = P("f32[3]");
    Node *mm = Bin(OP_MATMUL, x, w);
    Node *a = Bin(OP_ADD, mm, b);
    Node *r = U(OP_RELU, a);
    OUT(a); /* the pre-activation is an output: the epilogue ends there */
    OUT(r);
    fuse();
    ck_assert_ptr_eq(mm->fused, a);
    ck_assert_ptr_null(a->fused);
    ck_assert_ptr_null(r->fused);
}
END_TEST

/* A long sum of distinct inputs is cut into groups that read at most 16
 * external operands each. */
TEST(fuse, fuse_bounded_operands)
{
    Node *in[21], *sum[21];
    for (int i = 0; i <= 20; i++)
        in[i] = X("f32[B, 4]");
    sum[1] = Bin(OP_ADD, in[0], in[1]);
    for (int k = 2; k <= 20; k++)
        sum[k] = Bin(OP_ADD, sum[k - 1], in[k]);
    OUT(sum[20]);
    fuse();
    /* sum[k] reads k + 1 inputs: sum[1..14] join sum[15] (16 operands) */
    for (int k = 1; k <= 14; k++)
        ck_assert_ptr_eq(sum[k]->fused, sum[15]);
    ck_assert_ptr_null(sum[15]->fused);
    for (int k = 16; k <= 19; k++)
        ck_assert_ptr_eq(sum[k]->fused, sum[20]);
    ck_assert_ptr_null(sum[20]->fused);
    /* the invariant, checked directly: external operands per group */
    for (int r = 0; r < G->nodes.n; r++) {
        Node *root = G->nodes.v[r];
        if (root->fused)
            continue;
        int ext = 0;
        for (int i = 0; i <= r; i++) {
            Node *m = G->nodes.v[i];
            if (m != root && m->fused != root)
                continue;
            for (int j = 0; j < m->nin; j++)
                ext += m->in[j]->fused != root && m->in[j]->op != OP_CONST;
        }
        ck_assert_int_le(ext, 16);
    }
}
END_TEST

/* ---- convolution epilogues -------------------------------------------------- */

/* A convolution whose scratch (im2col) the fused group's root carries. */
TEST(fuse, fuse_conv_bias_relu)
{
    Node *x = X("f32[B, 3, 8, 8]");
    Node *w = P("f32[4, 3, 3, 3]");
    Node *b = P("f32[4, 1, 1]");
    Node *cv = Bin(OP_CONV2D, x, w); /* [B, 4, 6, 6] */
    Node *a = Bin(OP_ADD, cv, b);
    Node *r = U(OP_RELU, a);
    Node *t = U(OP_TANH, r);
    /* conv1d, its bias [1, C, 1] on the left, sigmoid */
    Node *x1 = X("f32[B, 2, 9]");
    Node *w1 = P("f32[5, 2, 3]");
    Node *b1 = P("f32[1, 5, 1]");
    Node *c1 = Bin(OP_CONV1D, x1, w1); /* [B, 5, 7] */
    Node *a1 = Bin(OP_ADD, b1, c1);
    Node *s1 = U(OP_SIGMOID, a1);
    /* conv_transpose2d, no bias, only an activation; a reshaped [C] bias */
    Node *wt = P("f32[3, 2, 2, 2]");
    Node *ct = Bin(OP_CONV_TRANSPOSE2D, x, wt); /* [B, 2, 9, 9] */
    Node *rt = U(OP_RELU, ct);
    Node *bv = P("f32[4]");
    Node *rs = U(OP_RESHAPE, bv);
    tl_set_ints(G, rs, "shape", (int64_t[]){4, 1, 1}, 3);
    Node *c2 = Bin(OP_CONV2D, x, w);
    Node *a2 = Bin(OP_ADD, c2, rs);
    Node *e = U(OP_EXP, X("f32[B, 4, 6, 6]"));
    Node *res = Bin(OP_ADD, a2, e); /* a residual is not part of the epilogue */
    OUT(t);
    OUT(s1);
    OUT(rt);
    OUT(res);
    fuse();
    ck_assert_ptr_eq(cv->fused, t);
    ck_assert_ptr_eq(a->fused, t);
    ck_assert_ptr_eq(r->fused, t);
    ck_assert_ptr_null(t->fused);
    ck_assert_ptr_null(b->fused);
    ck_assert_ptr_eq(c1->fused, s1);
    ck_assert_ptr_eq(a1->fused, s1);
    ck_assert_ptr_null(s1->fused);
    ck_assert_ptr_eq(ct->fused, rt);
    ck_assert_ptr_null(rt->fused);
    ck_assert_ptr_eq(c2->fused, a2);
    ck_assert_ptr_null(a2->fused); /* the group ends at its chain */
    ck_assert_ptr_null(rs->fused);
    ck_assert_ptr_eq(e->fused, res);
    ck_assert_ptr_null(res->fused);
    /* the root's kernel runs the convolution, so it carries the scratch:
     * im2col [C*kh*kw, OH*OW] for conv2d, [O/g*kh*kw, H*W] for the
     * transpose, or a direct convolution's copies when larger (s1 reads
     * x in place and stores its outputs without the wrapped columns:
     * im2col's [2*3, 7]) */
    ck_assert_int_eq(cg_scratch_bytes(G, t), 3 * 9 * 36 * 4);
    ck_assert_int_eq(cg_scratch_bytes(G, s1), 2 * 3 * 7 * 4);
    ck_assert_int_eq(cg_scratch_bytes(G, rt), 2 * 4 * 64 * 4);
    ck_assert_int_eq(cg_scratch_bytes(G, a2), 3 * 9 * 36 * 4);
    ck_assert_int_eq(cg_scratch_bytes(G, r), 0); /* a member is no step */
    ck_assert_int_eq(cg_scratch_bytes(G, res), 0);
}
END_TEST

TEST(fuse, fuse_conv_not_a_channel_bias)
{
    Node *x = X("f32[B, 3, 6, 8]");
    Node *w = P("f32[4, 3, 3, 3]");            /* -> [B, 4, 4, 6] */
    const char *bad[] = {"f32[6]",             /* along W */
                         "f32[4, 1]",          /* along H */
                         "f32[1, 1, 1]",       /* one value for every channel */
                         "f32[4, 4, 1]",       /* per channel and row */
                         "f32[1, 1, 4, 1, 1]"}; /* rank 5 */
    Node *cv[countof(bad)], *a[countof(bad)], *r[countof(bad)];
    for (int i = 0; i < countof(bad); i++) {
        cv[i] = Bin(OP_CONV2D, x, w);
        Node *b = P(bad[i]);
        a[i] = Bin(OP_ADD, cv[i], b);
        r[i] = U(OP_RELU, a[i]);
        OUT(r[i]);
    }
    /* conv1d: [C] broadcasts along the length, not the channels */
    Node *x1 = X("f32[B, 2, 5]");
    Node *c1 = Bin(OP_CONV1D, x1, P("f32[5, 2, 1]")); /* [B, 5, 5] */
    Node *a1 = Bin(OP_ADD, c1, P("f32[5]"));
    OUT(a1);
    fuse();
    for (int i = 0; i < countof(bad); i++) {
        ck_assert_msg(cv[i]->fused == NULL, "conv with bias %s fused", bad[i]);
        /* the add and the relu still form an elementwise group */
        ck_assert_ptr_eq(a[i]->fused, r[i]);
    }
    ck_assert_ptr_null(c1->fused);
    ck_assert_ptr_null(a1->fused);
}
END_TEST

TEST(fuse, fuse_conv_not_into_several_users)
{
    Node *x = X("f32[B, 3, 8, 8]");
    Node *w = P("f32[4, 3, 3, 3]");
    Node *b = P("f32[4, 1, 1]");
    Node *cv = Bin(OP_CONV2D, x, w);
    Node *r = U(OP_RELU, cv);
    Node *n = U(OP_NEG, cv); /* a second user */
    Node *c2 = Bin(OP_CONV2D, x, w);
    Node *a2 = Bin(OP_ADD, c2, b);
    Node *r2 = U(OP_RELU, a2);
    Node *m2 = Bin(OP_MUL, a2, r2); /* the pre-activation read twice: the chain stops */
    OUT(r);
    OUT(n);
    OUT(m2);
    fuse();
    ck_assert_ptr_null(cv->fused);
    ck_assert_ptr_null(r->fused);
    ck_assert_ptr_null(n->fused);
    ck_assert_ptr_eq(c2->fused, a2);
    ck_assert_ptr_null(a2->fused);
    ck_assert_ptr_eq(r2->fused, m2);
    ck_assert_int_eq(cg_scratch_bytes(G, m2), 0);
    ck_assert_int_gt(cg_scratch_bytes(G, a2), 0);
}
END_TEST

TEST(fuse, fuse_conv_outputs_not_fused)
{
    Node *x = X("f32[B, 3, 8, 8]");
    Node *w = P("f32[4, 3, 3, 3]");
    Node *b = P("f32[4, 1, 1]");
    Node *cv = Bin(OP_CONV2D, x, w); /* an output itself */
    Node *r = U(OP_RELU, cv);
    Node *c2 = Bin(OP_CONV2D, x, w);
    Node *a2 = Bin(OP_ADD, c2, b); /* the pre-activation is an output */
    Node *r2 = U(OP_RELU, a2);
    Node *c3 = Bin(OP_CONV2D, x, w);
    Node *t3 = U(OP_TANH, c3); /* an output: no later node joins its group */
    Node *s3 = U(OP_SQUARE, t3);
    OUT(cv);
    OUT(r);
    OUT(a2);
    OUT(r2);
    OUT(t3);
    OUT(s3);
    fuse();
    ck_assert_ptr_null(cv->fused);
    ck_assert_ptr_null(r->fused);
    ck_assert_ptr_eq(c2->fused, a2);
    ck_assert_ptr_null(a2->fused);
    ck_assert_ptr_null(r2->fused);
    ck_assert_ptr_eq(c3->fused, t3);
    ck_assert_ptr_null(t3->fused);
    ck_assert_ptr_null(s3->fused);
}
END_TEST

/* A convolution group never computes in place: the convolution writes the
 * output while it still reads its input, even one of the output's exact
 * shape whose storage dies at this step. */
TEST(fuse, fuse_conv_group_not_in_place)
{
    Node *x = U(OP_EXP, X("f32[B, 4, 6, 6]")); /* in the arena, dies at the conv */
    Node *w = P("f32[4, 4, 3, 3]");
    Node *cv = Bin(OP_CONV2D, x, w);
    tl_set_ints(G, cv, "padding", (int64_t[]){1, 1}, 2); /* [B, 4, 6, 6] */
    Node *r = U(OP_RELU, Bin(OP_ADD, cv, P("f32[1, 4, 1, 1]")));
    Node *y = tl_defaults(G, ir_unary(G, OP_SOFTMAX, X("f32[B, 4, 6, 6]"), L0()));
    Node *n = U(OP_SQRT, y); /* an elementwise kernel does go in place */
    OUT(r);
    OUT(n);
    fuse();
    ck_assert_ptr_eq(cv->fused, r);
    Node *roots[] = {r, n};
    MemPlan *p = pass_memplan(G, roots, 2, cg_scratch_bytes);
    ck_assert_ptr_eq(p->alias[r->id], r);
    ck_assert_int_ge(p->offset[r->id], 0);
    ck_assert(p->offset[r->id] + p->bytes[r->id] <= p->offset[x->id] ||
              p->offset[x->id] + p->bytes[x->id] <= p->offset[r->id]);
    ck_assert_int_gt(p->scratch_bytes[r->id], 0);
    ck_assert_int_ge(p->scratch_offset[r->id], 0);
    ck_assert_ptr_eq(p->alias[n->id], y);
}
END_TEST

/* A batch norm and the unary ops after it are one group (the norm
 * applies them before it stores); a bias add after it is not, nor an op
 * whose input has another user, and the group never goes in place. */
TEST(fuse, fuse_batch_norm_chain)
{
    Node *bn[3];
    for (int i = 0; i < 3; i++) {
        Node *in[5] = {
            U(OP_EXP, X("f32[B, 4, 5, 5]")), P("f32[4]"), P("f32[4]"),
            ir_state(G, arena_printf(A, "m%d", i), DT_UNKNOWN, (Shape){0}, INIT_ZEROS, L0()),
            ir_state(G, arena_printf(A, "v%d", i), DT_UNKNOWN, (Shape){0}, INIT_ONES, L0())};
        bn[i] = tl_defaults(G, ir_node_new(G, OP_BATCH_NORM, in, 5, L0()));
    }
    Node *r = U(OP_RELU, bn[0]);
    Node *t = U(OP_TANH, r);
    Node *add = Bin(OP_ADD, bn[1], P("f32[1, 4, 1, 1]"));
    Node *twice = U(OP_RELU, bn[2]);
    OUT(t);
    OUT(add);
    OUT(twice);
    OUT(bn[2]);
    fuse();
    ck_assert_ptr_eq(bn[0]->fused, t);
    ck_assert_ptr_eq(r->fused, t);
    ck_assert_ptr_null(t->fused);
    ck_assert_ptr_null(bn[1]->fused);
    ck_assert_ptr_null(bn[2]->fused);
    Node *roots[] = {t, add, twice, bn[2]};
    MemPlan *p = pass_memplan(G, roots, 4, cg_scratch_bytes);
    Node *x = bn[0]->in[0]; /* dies at the norm's group */
    ck_assert_ptr_eq(p->alias[t->id], t);
    ck_assert(p->offset[t->id] + p->bytes[t->id] <= p->offset[x->id] ||
              p->offset[x->id] + p->bytes[x->id] <= p->offset[t->id]);
}
END_TEST

/* Fusion marks survive a print/read round trip, and fuse is deterministic. */
TEST(fuse, fuse_round_trip)
{
    Node *x = X("f32[B, 4]");
    Node *w = P("f32[4, 3]");
    Node *b = P("f32[3]");
    OUT(U(OP_SIGMOID, Bin(OP_ADD, Bin(OP_MATMUL, x, w), b)));
    fuse();
    char *buf = tl_print(ir_print, G);
    size_t len = strlen(buf);
    ck_assert_ptr_nonnull(strstr(buf, "matmul(%0, %1) : f32[B, 3] fused %5\n"));
    ck_assert_ptr_nonnull(strstr(buf, "add(%3, %2) : f32[B, 3] fused %5\n"));
    Arena *a2 = arena_new();
    Graph *h = ir_read(a2, diag_add_source("t.ir", buf, len));
    ck_assert_ptr_nonnull(h);
    pass_fuse(h);
    char *buf2 = tl_print(ir_print, h);
    ck_assert_str_eq(buf, buf2);
    free(buf);
    free(buf2);
    arena_free(a2);
}
END_TEST
