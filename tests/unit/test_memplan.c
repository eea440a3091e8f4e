/*
 * The memory planner (passes/memplan.c).
 *
 * Hand-built graphs check exact schedules, offsets and totals for chains,
 * a diamond, views, in-place updates, results that live to the end, fused
 * groups and batch scaling; types are set by hand (the planner reads only
 * dtype and shape), so T(n, "f32[B, 8]") types a node. Randomized graphs
 * (fixed seeds) check the plan's invariants against liveness recomputed
 * here from the schedule: no two values live at once share bytes unless
 * they share storage legally, offsets are aligned and in bounds, the arena
 * lies between the lower bound and the naive sum, the schedule is
 * topological and holds exactly the needed materialized nodes.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "frontend.h"
#include "ir.h"
#include "passes.h"
#include "testlib.h"

static Arena *A;
static Graph *G;

static void fresh(void)
{
    if (A)
        arena_free(A);
    A = arena_new();
    G = tl_graph_new(A, 4);
}

static void teardown(void)
{
    diag_reset();
    arena_free(A);
    A = NULL;
}

#define T(n, spec) tl_typed(n, spec)
#define X(spec) tl_input(G, spec)
#define P(spec) tl_param(G, spec)

static Node *U(Op op, Node *x, const char *spec)
{
    return T(ir_unary(G, op, x, (Loc){0}), spec);
}

static Node *Bn(Op op, Node *a, Node *b, const char *spec)
{
    return T(ir_binary(G, op, a, b, (Loc){0}), spec);
}

static MemPlan *plan(int n, ...)
{
    Node *roots[16];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        roots[i] = va_arg(ap, Node *);
    va_end(ap);
    return pass_memplan(G, roots, n, cg_scratch_bytes);
}

static int step_of(const MemPlan *p, const Node *n)
{
    for (int s = 0; s < p->nsteps; s++)
        if (p->steps[s] == n)
            return s;
    return -1;
}

/* A -> B -> C: C reuses A's slot once A is dead. */
SUITE("memplan");
GROUP(plans, NULL, NULL);
GROUP(random, NULL, NULL);

TEST(plans, chain_reuse)
{
    fresh();
    Node *x = X("f32[64]");
    Node *a = U(OP_SOFTMAX, x, "f32[64]");
    Node *b = U(OP_SOFTMAX, a, "f32[64]");
    Node *c = U(OP_SOFTMAX, b, "f32[64]");
    MemPlan *p = plan(1, c);
    ck_assert_int_eq(p->nsteps, 3);
    ck_assert_ptr_eq(p->steps[0], a);
    ck_assert_ptr_eq(p->steps[1], b);
    ck_assert_ptr_eq(p->steps[2], c);
    ck_assert_int_eq(p->offset[x->id], -1);
    ck_assert_int_eq(p->offset[a->id], 0);
    ck_assert_int_eq(p->offset[b->id], 256);
    ck_assert_int_eq(p->offset[c->id], 0);
    ck_assert_int_eq(p->arena_bytes, 512);
    ck_assert_int_eq(p->naive_bytes, 768);
    ck_assert_int_eq(p->peak_bytes, 512);
    for (int i = 0; i < 4; i++)
        ck_assert_ptr_eq(p->alias[G->nodes.v[i]->id], G->nodes.v[i]);
    teardown();
}
END_TEST

/* a feeds b and c, both feed d; sizes differ, so greedy-by-size order shows. */
TEST(plans, diamond)
{
    fresh();
    Node *x = X("f32[64]");
    Node *a = U(OP_SOFTMAX, x, "f32[64]");     /* 256 B, live 0..2 */
    Node *b = U(OP_SOFTMAX, a, "f32[128]");    /* 512 B, live 1..3 */
    Node *c = U(OP_LOG_SOFTMAX, a, "f32[32]"); /* 128 B, live 2..3 */
    Node *d = Bn(OP_MATMUL, b, c, "f32[16]");  /* 64 B, live 3..end */
    MemPlan *p = plan(1, d);
    ck_assert_int_eq(p->nsteps, 4);
    ck_assert_int_eq(p->offset[b->id], 0);
    ck_assert_int_eq(p->offset[a->id], 512);
    ck_assert_int_eq(p->offset[c->id], 768);
    ck_assert_int_eq(p->offset[d->id], 512); /* a is dead at step 3 */
    ck_assert_int_eq(p->arena_bytes, 896);
    ck_assert_int_eq(p->naive_bytes, 960);
    ck_assert_int_eq(p->peak_bytes, 896);
    teardown();
}
END_TEST

TEST(plans, small_values_take_whole_slots)
{
    fresh();
    Node *x = X("f32[3]");
    Node *a = U(OP_SOFTMAX, x, "f32[3]");
    Node *b = U(OP_SUM, a, "f32[]");
    Node *c = Bn(OP_MATMUL, a, b, "i32[17]");
    MemPlan *p = plan(1, c);
    ck_assert_int_eq(p->bytes[a->id], 12);
    ck_assert_int_eq(p->bytes[b->id], 4);
    ck_assert_int_eq(p->bytes[c->id], 68);
    /* c (128 B aligned) first, then a and b, all live at step 2 */
    ck_assert_int_eq(p->offset[c->id], 0);
    ck_assert_int_eq(p->offset[a->id], 128);
    ck_assert_int_eq(p->offset[b->id], 192);
    ck_assert_int_eq(p->arena_bytes, 256);
    ck_assert_int_eq(p->naive_bytes, 256);
    ck_assert_int_eq(p->peak_bytes, 256);
    teardown();
}
END_TEST

/* A reshape of an arena value shares its storage and keeps it alive. */
TEST(plans, reshape_view)
{
    fresh();
    Node *x = X("f32[4, 16]");
    Node *a = U(OP_SOFTMAX, x, "f32[4, 16]");
    Node *r = U(OP_RESHAPE, a, "f32[64]");
    Node *b = U(OP_SOFTMAX, x, "f32[4, 16]"); /* does not read a */
    Node *c = Bn(OP_MATMUL, r, b, "f32[64]"); /* reads a through r */
    MemPlan *p = plan(1, c);
    ck_assert_int_eq(p->nsteps, 4);
    ck_assert_int_eq(step_of(p, r), 1);
    ck_assert_ptr_eq(p->alias[r->id], a);
    ck_assert(pass_memplan_is_view(p, r));
    ck_assert(!pass_memplan_is_view(p, a));
    ck_assert_int_eq(p->offset[r->id], p->offset[a->id]);
    /* without the view's read a would be dead before b; it is not */
    ck_assert_int_ne(p->offset[b->id], p->offset[a->id]);
    ck_assert_int_eq(p->offset[a->id], 0);
    ck_assert_int_eq(p->offset[b->id], 256);
    ck_assert_int_eq(p->offset[c->id], 512);
    ck_assert_int_eq(p->arena_bytes, 768);
    ck_assert_int_eq(p->naive_bytes, 768); /* the view writes nothing */
    ck_assert_int_eq(p->peak_bytes, 768);
    teardown();
}
END_TEST

TEST(plans, view_chain_and_flatten)
{
    fresh();
    Node *x = X("f32[B, 2, 8]");
    Node *a = U(OP_SOFTMAX, x, "f32[B, 2, 8]");
    Node *f = U(OP_FLATTEN, a, "f32[B, 16]");
    Node *r = U(OP_RESHAPE, f, "f32[B*16]");
    Node *b = U(OP_SOFTMAX, r, "f32[B*16]");
    MemPlan *p = plan(1, b);
    ck_assert_ptr_eq(p->alias[f->id], a);
    ck_assert_ptr_eq(p->alias[r->id], a); /* the storage owner, not f */
    ck_assert_int_eq(p->offset[r->id], 0);
    ck_assert_int_eq(p->offset[b->id], 256);
    ck_assert_int_eq(p->arena_bytes, 512);
    teardown();
}
END_TEST

/* A reshape of an input or param is a view of the source, outside the arena. */
TEST(plans, reshape_of_source)
{
    fresh();
    Node *x = X("f32[4, 16]");
    Node *w = P("f32[64]");
    Node *rx = U(OP_RESHAPE, x, "f32[64]");
    Node *rw = U(OP_RESHAPE, w, "f32[8, 8]");
    Node *rw2 = U(OP_FLATTEN, rw, "f32[64]");
    Node *s = Bn(OP_ADD, rx, rw2, "f32[64]");
    Node *k = T(ir_const(G, 2, (Loc){0}), "f32[]");
    Node *rk = U(OP_RESHAPE, k, "f32[1]");
    Node *o = Bn(OP_MUL, s, rk, "f32[64]");
    MemPlan *p = plan(1, o);
    ck_assert_ptr_eq(p->alias[rx->id], x);
    ck_assert_ptr_eq(p->alias[rw->id], w);
    ck_assert_ptr_eq(p->alias[rw2->id], w);
    ck_assert_int_eq(p->offset[rx->id], -1);
    ck_assert_int_eq(p->offset[rw2->id], -1);
    ck_assert(pass_memplan_is_view(p, rw2));
    /* a const is an immediate: reshaping it is a copy with its own slot */
    ck_assert_ptr_eq(p->alias[rk->id], rk);
    ck_assert(!pass_memplan_is_view(p, rk));
    ck_assert_int_eq(p->offset[k->id], -1);
    ck_assert_int_ge(p->offset[rk->id], 0);
    /* s is a fresh slot: no in place over sources */
    ck_assert_ptr_eq(p->alias[s->id], s);
    ck_assert_int_ge(p->offset[s->id], 0);
    ck_assert_int_eq(step_of(p, k), -1);
    ck_assert_int_eq(p->nsteps, 6);
    teardown();
}
END_TEST

TEST(plans, in_place_chain)
{
    fresh();
    Node *x = X("f32[64]");
    Node *a = U(OP_SOFTMAX, x, "f32[64]");
    Node *b = U(OP_RELU, a, "f32[64]");
    Node *c = U(OP_EXP, b, "f32[64]");
    MemPlan *p = plan(1, c);
    ck_assert_ptr_eq(p->alias[a->id], a);
    ck_assert_ptr_eq(p->alias[b->id], a);
    ck_assert_ptr_eq(p->alias[c->id], a); /* the owner, not b */
    ck_assert_int_eq(p->offset[c->id], 0);
    ck_assert(!pass_memplan_is_view(p, b));
    ck_assert_int_eq(p->arena_bytes, 256);
    ck_assert_int_eq(p->naive_bytes, 768);
    ck_assert_int_eq(p->peak_bytes, 256);
    teardown();
}
END_TEST

/* ys[:, t, :] = v: a slice update takes its input's storage when that dies
 * at its step, so a chain of them fills one buffer; not when the value it
 * replaces is still read later. */
static Node *slice_update(Node *x, Node *v, int64_t t)
{
    Node *in[2] = {x, v};
    Node *n = tl_node(G, OP_SLICE_UPDATE, in, 2);
    tl_set_ints(G, n, "begin", (int64_t[]){0, t, 0}, 3);
    tl_set_ints(G, n, "end", (int64_t[]){4, t + 1, 2}, 3);
    tl_set_ints(G, n, "step", (int64_t[]){1, 1, 1}, 3);
    tl_set_ints(G, n, "squeeze", (int64_t[]){1}, 1);
    return T(n, "f32[4, 3, 2]");
}

TEST(plans, slice_update_in_place)
{
    fresh();
    Node *ys = U(OP_RELU, X("f32[4, 3, 2]"), "f32[4, 3, 2]");
    Node *v = U(OP_EXP, X("f32[4, 2]"), "f32[4, 2]");
    Node *a = slice_update(ys, v, 0), *b = slice_update(a, v, 1), *c = slice_update(b, v, 2);
    MemPlan *p = plan(1, c);
    ck_assert_ptr_eq(p->alias[a->id], ys);
    ck_assert_ptr_eq(p->alias[b->id], ys);
    ck_assert_ptr_eq(p->alias[c->id], ys);
    ck_assert_ptr_ne(p->alias[v->id], ys);
    teardown();

    /* a is read after b is written: b copies */
    fresh();
    ys = U(OP_RELU, X("f32[4, 3, 2]"), "f32[4, 3, 2]");
    v = U(OP_EXP, X("f32[4, 2]"), "f32[4, 2]");
    a = slice_update(ys, v, 0);
    b = slice_update(a, v, 1);
    Node *late = U(OP_EXP, a, "f32[4, 3, 2]");
    p = plan(2, b, late);
    ck_assert_ptr_eq(p->alias[a->id], ys);
    ck_assert_ptr_eq(p->alias[b->id], b);
    teardown();
}
END_TEST

TEST(plans, in_place_rules)
{
    fresh();
    Node *x = X("f32[64]");
    Node *b0 = U(OP_RELU, x, "f32[64]"); /* never over an input */
    Node *a = U(OP_SOFTMAX, b0, "f32[64]");
    Node *b = U(OP_RELU, a, "f32[64]");    /* a is still read by c */
    Node *c = Bn(OP_ADD, a, b, "f32[64]"); /* a and b both die here */
    Node *e = U(OP_SOFTMAX, c, "f32[64]"); /* a result */
    Node *f = U(OP_TANH, e, "f32[64]");    /* never over a result */
    Node *y = X("f32[4, 64]");
    Node *g = Bn(OP_ADD, f, y, "f32[4, 64]"); /* broadcast: shapes differ */
    MemPlan *p = plan(2, e, g);
    ck_assert_ptr_eq(p->alias[b0->id], b0);
    ck_assert_ptr_eq(p->alias[b->id], b);
    ck_assert_ptr_eq(p->alias[c->id], a); /* the first dying input */
    ck_assert_int_eq(p->offset[c->id], p->offset[a->id]);
    ck_assert_ptr_eq(p->alias[f->id], f);
    ck_assert_int_ne(p->offset[f->id], p->offset[e->id]);
    ck_assert_ptr_eq(p->alias[g->id], g);

    /* a dying input that is broadcast is not overwritten */
    fresh();
    x = X("f32[64]");
    a = U(OP_SOFTMAX, x, "f32[64]");
    y = X("f32[4, 64]");
    g = Bn(OP_ADD, a, y, "f32[4, 64]");
    p = plan(1, g);
    ck_assert_ptr_eq(p->alias[g->id], g);
    ck_assert_int_eq(p->offset[g->id], 0); /* the larger slot first */
    ck_assert_int_eq(p->offset[a->id], 1024);
    ck_assert_int_eq(p->arena_bytes, 1280);
    teardown();
}
END_TEST

TEST(plans, in_place_dtype_and_views)
{
    fresh();
    Node *x = X("f32[4, 16]");
    Node *a = U(OP_SOFTMAX, x, "f32[4, 16]");
    Node *r = U(OP_RESHAPE, a, "f32[64]");
    Node *b = U(OP_RELU, r, "f32[64]"); /* through the view, into a's slot */
    Node *i = X("i32[64]");
    Node *j = U(OP_ABS, i, "i32[64]");
    Node *k = U(OP_SOFTMAX, b, "f64[64]");
    Node *m = Bn(OP_ADD, j, k, "f64[64]"); /* j is i32: no */
    /* a view still read later keeps its storage from being overwritten */
    Node *a2 = U(OP_SOFTMAX, m, "f64[64]");
    Node *r2 = U(OP_RESHAPE, a2, "f64[8, 8]");
    Node *n2 = U(OP_NEG, a2, "f64[64]");
    Node *o = Bn(OP_MATMUL, r2, n2, "f64[8, 8]");
    MemPlan *p = plan(1, o);
    ck_assert_ptr_eq(p->alias[b->id], a);
    ck_assert_int_eq(p->offset[b->id], p->offset[a->id]);
    ck_assert_ptr_eq(p->alias[m->id], k); /* k is f64 like m */
    ck_assert_ptr_eq(p->alias[j->id], j);
    ck_assert_ptr_eq(p->alias[n2->id], n2); /* r2 reads a2 later */
    ck_assert_int_ne(p->offset[n2->id], p->offset[a2->id]);
    teardown();
}
END_TEST

/* A kernel with a matrix product in it must not write over its inputs. */
TEST(plans, in_place_needs_all_elementwise)
{
    fresh();
    Node *x = X("f32[8, 8]");
    Node *a = U(OP_SOFTMAX, x, "f32[8, 8]");
    Node *w = P("f32[8, 8]");
    Node *mm = Bn(OP_MATMUL, a, w, "f32[8, 8]");
    Node *r = U(OP_RELU, mm, "f32[8, 8]");
    mm->fused = r;
    MemPlan *p = plan(1, r);
    ck_assert_int_eq(p->nsteps, 2);
    ck_assert_int_eq(step_of(p, mm), -1);
    ck_assert_int_eq(p->offset[mm->id], -1);
    ck_assert_ptr_eq(p->alias[r->id], r);
    ck_assert_int_eq(p->offset[r->id], 256);

    /* the same with an elementwise member may go in place */
    fresh();
    x = X("f32[8, 8]");
    a = U(OP_SOFTMAX, x, "f32[8, 8]");
    Node *e = U(OP_EXP, a, "f32[8, 8]");
    Node *s = Bn(OP_ADD, e, a, "f32[8, 8]");
    e->fused = s;
    p = plan(1, s);
    ck_assert_int_eq(p->nsteps, 2);
    ck_assert_ptr_eq(p->alias[s->id], a);
    ck_assert_int_eq(p->arena_bytes, 256);
    teardown();
}
END_TEST

TEST(plans, roots_live_to_end)
{
    fresh();
    Node *x = X("f32[64]");
    Node *a = U(OP_SOFTMAX, x, "f32[64]");
    Node *b = U(OP_SOFTMAX, a, "f32[64]");
    Node *c = U(OP_SOFTMAX, b, "f32[64]");
    MemPlan *p = plan(2, a, c);
    ck_assert_int_eq(p->offset[a->id], 0);
    ck_assert_int_eq(p->offset[b->id], 256);
    ck_assert_int_eq(p->offset[c->id], 512);
    ck_assert_int_eq(p->arena_bytes, 768);
    ck_assert_int_eq(p->peak_bytes, 768);
    teardown();
}
END_TEST

/* A fused member's inputs are read at its root's step. */
TEST(plans, fused_members)
{
    fresh();
    Node *x = X("f32[64]");
    Node *y = U(OP_SOFTMAX, x, "f32[64]");     /* step 0 */
    Node *z = U(OP_SOFTMAX, x, "f32[128]");    /* step 1 */
    Node *w = U(OP_SOFTMAX, x, "f32[64]");     /* step 2 */
    Node *m = U(OP_EXP, y, "f32[64]");         /* fused into r */
    Node *m2 = Bn(OP_MUL, m, w, "f32[64]");    /* fused into r */
    Node *r = Bn(OP_MATMUL, m2, z, "f32[64]"); /* step 3, reads y, w and z */
    Node *dead = U(OP_SOFTMAX, y, "f32[64]");
    m->fused = r;
    m2->fused = r;
    MemPlan *p = plan(1, r);
    ck_assert_int_eq(p->nsteps, 4);
    ck_assert_int_eq(step_of(p, dead), -1);
    ck_assert_int_eq(step_of(p, m), -1);
    ck_assert_int_eq(step_of(p, r), 3);
    /* y, z and w are all live at step 3, so all apart; r overlaps none */
    ck_assert_int_eq(p->offset[z->id], 0);
    ck_assert_int_eq(p->offset[y->id], 512);
    ck_assert_int_eq(p->offset[w->id], 768);
    ck_assert_int_eq(p->offset[r->id], 1024);
    ck_assert_int_eq(p->offset[dead->id], -1);
    ck_assert_int_eq(p->arena_bytes, 1280);
    teardown();
}
END_TEST

TEST(plans, batch_scaling)
{
    fresh();
    G->max_batch = 32;
    Node *x = X("f32[B, 10]");
    Node *a = U(OP_SOFTMAX, x, "f32[B, 10]");
    Node *b = U(OP_SOFTMAX, a, "f64[B*3, 2]");
    Node *c = Bn(OP_MATMUL, b, a, "i32[5]");
    MemPlan *p = plan(1, c);
    ck_assert_int_eq(p->bytes[x->id], 32 * 10 * 4);
    ck_assert_int_eq(p->bytes[a->id], 32 * 10 * 4);
    ck_assert_int_eq(p->bytes[b->id], 32 * 3 * 2 * 8);
    ck_assert_int_eq(p->bytes[c->id], 20);
    ck_assert_int_eq(p->naive_bytes, 1280 + 1536 + 64);
    ck_assert_int_eq(p->offset[b->id], 0);
    ck_assert_int_eq(p->offset[a->id], 1536);
    ck_assert_int_eq(p->offset[c->id], 2816);
    ck_assert_int_eq(p->arena_bytes, 2880);

    /* without a batch symbol nothing scales */
    fresh();
    G->batch = NULL;
    G->max_batch = 0;
    x = X("f32[10]");
    a = U(OP_SOFTMAX, x, "f64[3, 7]");
    p = plan(1, a);
    ck_assert_int_eq(p->bytes[a->id], 168);
    ck_assert_int_eq(p->arena_bytes, 192);
    teardown();
}
END_TEST

TEST(plans, empty_and_source_roots)
{
    fresh();
    Node *x = X("f32[B, 10]");
    Node *r = U(OP_RESHAPE, x, "f32[B*10]");
    MemPlan *p = plan(2, x, r);
    ck_assert_int_eq(p->nsteps, 1);
    ck_assert_ptr_eq(p->alias[r->id], x);
    ck_assert_int_eq(p->arena_bytes, 0);
    ck_assert_int_eq(p->naive_bytes, 0);
    ck_assert_int_eq(p->peak_bytes, 0);
    p = plan(0);
    ck_assert_int_eq(p->nsteps, 0);
    ck_assert_int_eq(p->arena_bytes, 0);
    teardown();
}
END_TEST

TEST(plans, stats_text)
{
    fresh();
    Node *x = X("f32[B, 64]");
    Node *a = U(OP_SOFTMAX, x, "f32[B, 64]");
    Node *b = U(OP_SOFTMAX, a, "f32[B, 64]");
    Node *c = U(OP_SOFTMAX, b, "f32[B, 16]");
    MemPlan *p = plan(1, c);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    pass_memplan_print_stats(f, G, p, "forward");
    fclose(f);
    ck_assert_msg(strstr(buf, "memory plan for forward: 3 steps, max batch 4\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "arena                2048 bytes (2.00 KiB)\n"), "%s", buf);
    ck_assert_msg(strstr(buf, "naive sum            2304 bytes (2.25 KiB), arena/naive 0.889"),
                  "%s", buf);
    ck_assert_msg(strstr(buf, "lower bound          2048 bytes (2.00 KiB), arena/bound 1.000"),
                  "%s", buf);
    char want[128];
    snprintf(want, sizeof want, "    %%%-5d softmax          f32[B, 64]", a->id);
    ck_assert_msg(strstr(buf, want), "%s", buf);
    char *first = strstr(buf, "softmax"), *small = strstr(buf, "[B, 16]");
    ck_assert_ptr_nonnull(small);
    ck_assert(first < small); /* largest first */
    free(buf);
    teardown();
}
END_TEST

/* Randomized graphs ------------------------------------------------------- */

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *shapes[] = {"f32[B, 8]", "f32[B, 2, 4]", "f32[8]",    "f32[B, 16]",
                               "f32[4, 4]", "f32[]",        "f64[B, 8]", "f32[B*2, 4]",
                               "i32[B, 8]", "f32[64]"};

static int64_t count_of(const Node *n)
{
    int64_t c = 1;
    for (int i = 0; i < n->shape.rank; i++)
        c *= n->shape.d[i].n * (n->shape.d[i].batch ? 100000 : 1);
    return c;
}

static Node *gen_graph(int nnodes, Node **roots, int *nroots)
{
    int nsources = 1 + (int)rnd(4);
    for (int i = 0; i < nsources; i++) {
        if (rnd(2))
            X(shapes[rnd(countof(shapes))]);
        else
            P(shapes[rnd(countof(shapes))]);
    }
    if (rnd(2))
        T(ir_const(G, 1.5, (Loc){0}), "f32[]");
    static const Op unary[] = {OP_RELU, OP_EXP,     OP_NEG,     OP_TANH,        OP_SOFTMAX,
                               OP_SUM,  OP_RESHAPE, OP_FLATTEN, OP_BROADCAST_TO};
    static const Op binary[] = {OP_ADD, OP_MUL, OP_MATMUL, OP_SUB};
    for (int i = 0; i < nnodes; i++) {
        int have = G->nodes.n;
        Node *a = G->nodes.v[have - 1 - (int)rnd((uint32_t)(have < 6 ? have : 6))];
        if (rnd(4) == 0)
            a = G->nodes.v[rnd((uint32_t)have)];
        if (rnd(2)) {
            Op op = unary[rnd(countof(unary))];
            Node *n = ir_unary(G, op, a, (Loc){0});
            if (op == OP_RESHAPE || op == OP_FLATTEN) {
                /* a shape with the same element count, else a flat one */
                int64_t want = count_of(a);
                const char *pick = NULL;
                for (int k = 0, s0 = (int)rnd(countof(shapes)); k < countof(shapes); k++) {
                    const char *sp = shapes[(s0 + k) % countof(shapes)];
                    T(n, sp);
                    if (count_of(n) == want) {
                        pick = sp;
                        break;
                    }
                }
                if (pick)
                    T(n, pick);
                n->dtype = a->dtype;
                if (!pick) {
                    n->shape = a->shape; /* identity reshape */
                }
            } else if (op_info[op].kind == K_ELTWISE && rnd(3)) {
                n->dtype = a->dtype;
                n->shape = a->shape;
            } else {
                T(n, shapes[rnd(countof(shapes))]);
            }
        } else {
            Node *b = G->nodes.v[rnd((uint32_t)have)];
            Node *n = ir_binary(G, binary[rnd(countof(binary))], a, b, (Loc){0});
            if (rnd(2)) {
                n->dtype = a->dtype;
                n->shape = a->shape;
            } else {
                T(n, shapes[rnd(countof(shapes))]);
            }
        }
    }
    /* roots: a few computed nodes, sometimes a source */
    *nroots = 0;
    int want = 1 + (int)rnd(3);
    for (int i = 0; i < want; i++) {
        int lo = G->nodes.n / 2;
        roots[(*nroots)++] = G->nodes.v[lo + (int)rnd((uint32_t)(G->nodes.n - lo))];
    }
    if (rnd(5) == 0)
        roots[(*nroots)++] = G->nodes.v[0];
    roots[(*nroots)++] = G->nodes.v[G->nodes.n - 1];

    /* fusion: a node with one user, not a result, joins the user's group */
    int *users = arena_alloc(A, (size_t)G->nodes.n * sizeof *users);
    Node **user = arena_alloc(A, (size_t)G->nodes.n * sizeof *user);
    for (int i = 0; i < G->nodes.n; i++) {
        Node *n = G->nodes.v[i];
        for (int k = 0; k < n->nin; k++) {
            /* mul(x, x) reads x twice from one user */
            if (user[n->in[k]->id] != n)
                users[n->in[k]->id]++;
            user[n->in[k]->id] = n;
        }
    }
    for (int i = G->nodes.n - 1; i >= 0; i--) {
        Node *n = G->nodes.v[i];
        bool is_root = false;
        for (int k = 0; k < *nroots; k++)
            is_root |= roots[k] == n;
        OpKind kind = op_info[n->op].kind;
        if (is_root || kind == K_SOURCE || users[n->id] != 1 || rnd(3))
            continue;
        if (kind != K_ELTWISE && kind != K_GEMM && n->op != OP_BROADCAST_TO)
            continue;
        Node *u = user[n->id];
        n->fused = u->fused ? u->fused : u;
    }
    return G->nodes.v[0];
}

static Node *groot(Node *n)
{
    while (n->fused)
        n = n->fused;
    return n;
}

static int64_t al64(int64_t x)
{
    return (x + 63) / 64 * 64;
}

static int64_t ref_bytes(const Node *n)
{
    int64_t b = n->dtype == DT_F64 ? 8 : 4;
    for (int i = 0; i < n->shape.rank; i++)
        b *= n->shape.d[i].n * (n->shape.d[i].batch ? G->max_batch : 1);
    return b;
}

typedef struct {
    int views, in_place, fused, slots;
} Seen;

typedef struct {
    int64_t size, offset;
    int start, end, owner;
    bool scratch;
} RefSlot;

static int ref_order(const void *a, const void *b)
{
    const RefSlot *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    if (x->owner != y->owner)
        return x->owner - y->owner;
    return x->scratch - y->scratch;
}

/* The placement, redone by the definition (largest first, each at the
 * lowest offset clear of every slot placed before it and live at one of
 * its steps), with a scan over all placed slots: the planner's offsets,
 * found through its step tree, must be exactly these. */
static void check_placement(const MemPlan *p, const int *step, const int *owner_end)
{
    RefSlot *sl = malloc((size_t)(2 * p->nsteps + 1) * sizeof *sl);
    int n = 0;
    for (int t = 0; t < p->nsteps; t++) {
        Node *o = p->steps[t];
        if (p->alias[o->id] == o && p->offset[o->id] >= 0)
            sl[n++] = (RefSlot){.size = al64(p->bytes[o->id]),
                                .offset = p->offset[o->id],
                                .start = step[o->id],
                                .end = owner_end[o->id],
                                .owner = o->id};
        if (p->scratch_bytes[o->id] > 0)
            sl[n++] = (RefSlot){.size = al64(p->scratch_bytes[o->id]),
                                .offset = p->scratch_offset[o->id],
                                .start = t,
                                .end = t,
                                .owner = o->id,
                                .scratch = true};
    }
    qsort(sl, (size_t)n, sizeof *sl, ref_order);
    for (int i = 0; i < n; i++) {
        int64_t off = 0;
        for (bool moved = true; moved;) {
            moved = false;
            for (int j = 0; j < i; j++)
                if (sl[j].start <= sl[i].end && sl[i].start <= sl[j].end &&
                    sl[j].offset < off + sl[i].size && off < sl[j].offset + sl[j].size) {
                    off = sl[j].offset + sl[j].size;
                    moved = true;
                }
        }
        ck_assert_msg(sl[i].offset == off, "slot of %%%d%s at %lld, lowest free %lld", sl[i].owner,
                      sl[i].scratch ? " (scratch)" : "", (long long)sl[i].offset, (long long)off);
    }
    free(sl);
}

/* A loop's storage holds every result a loop_result reads, disjoint. */
static void check_loop_parts(const MemPlan *p, const Node *l)
{
    int64_t end = 0;
    for (int i = l->id + 1; i < G->nodes.n; i++) {
        Node *r = G->nodes.v[i];
        if (r->op != OP_LOOP_RESULT || r->in[0] != l || p->offset[i] < 0)
            continue;
        int64_t part = p->loop_part[l->id][attr_index(r)];
        ck_assert_int_ge(part, 0);
        ck_assert_int_le(part + ref_bytes(r), p->bytes[l->id]);
        ck_assert_int_eq(p->offset[i], p->offset[l->id] + part);
        end = part + ref_bytes(r) > end ? part + ref_bytes(r) : end;
    }
    ck_assert_int_le(end, p->bytes[l->id]);
}

static void check_plan(const MemPlan *p, Node *const *roots, int nroots, Seen *seen)
{
    int N = G->nodes.n;
    bool *needed = calloc((size_t)N, sizeof *needed);
    bool *is_root = calloc((size_t)N, sizeof *is_root);
    int *step = malloc((size_t)N * sizeof *step);
    int *end = malloc((size_t)N * sizeof *end);
    int *owner_end = malloc((size_t)N * sizeof *owner_end);
    for (int i = 0; i < N; i++)
        step[i] = end[i] = owner_end[i] = -1;
    for (int i = 0; i < nroots; i++)
        needed[roots[i]->id] = is_root[roots[i]->id] = true;
    for (int i = N - 1; i >= 0; i--) {
        Node *n = G->nodes.v[i];
        if (needed[groot(n)->id])
            for (int k = 0; k < n->nin; k++)
                needed[n->in[k]->id] = true;
    }
    /* the schedule: exactly the needed materialized nodes, in graph order */
    int s = 0;
    for (int i = 0; i < N; i++) {
        Node *n = G->nodes.v[i];
        ck_assert_int_eq(n->id, i);
        if (n->op == OP_LOOP)
            check_loop_parts(p, n);
        else
            ck_assert_int_eq(p->bytes[i], n->dtype == DT_UNKNOWN ? 0 : ref_bytes(n));
        bool want = needed[i] && !n->fused && op_info[n->op].kind != K_SOURCE;
        seen->fused += needed[i] && n->fused;
        if (!want) {
            ck_assert_int_eq(p->offset[i], -1);
            ck_assert_ptr_eq(p->alias[i], n);
            continue;
        }
        ck_assert_int_lt(s, p->nsteps);
        ck_assert_ptr_eq(p->steps[s], n);
        step[i] = s++;
    }
    ck_assert_int_eq(s, p->nsteps);
    /* liveness, recomputed: a group reads its members' outside inputs */
    for (int i = 0; i < N; i++) {
        Node *m = G->nodes.v[i];
        Node *r = groot(m);
        if (step[r->id] < 0)
            continue;
        for (int k = 0; k < m->nin; k++) {
            Node *x = m->in[k];
            if (groot(x) == r)
                continue;
            ck_assert_ptr_null(x->fused);
            if (op_info[x->op].kind != K_SOURCE) {
                ck_assert_int_ge(step[x->id], 0);
                ck_assert_int_lt(step[x->id], step[r->id]); /* inputs first */
            }
            if (step[x->id] >= 0 && end[x->id] < step[r->id])
                end[x->id] = step[r->id];
        }
    }
    for (int i = 0; i < N; i++) {
        if (step[i] < 0)
            continue;
        if (is_root[i])
            end[i] = p->nsteps;
        ck_assert_int_gt(end[i], step[i]); /* every step is read or a result */
    }
    /* storage */
    int64_t naive = 0;
    for (int si = 0; si < p->nsteps; si++) {
        Node *n = p->steps[si];
        Node *o = p->alias[n->id];
        ck_assert_ptr_eq(p->alias[o->id], o); /* owners are canonical */
        /* a kernel's scratch is a slot of its own, live during its step */
        ck_assert_int_eq(p->scratch_bytes[n->id], cg_scratch_bytes(G, n));
        if (p->scratch_bytes[n->id] > 0) {
            naive += al64(p->scratch_bytes[n->id]);
            ck_assert_int_ge(p->scratch_offset[n->id], 0);
            ck_assert_int_eq(p->scratch_offset[n->id] % 64, 0);
            ck_assert_int_le(p->scratch_offset[n->id] + p->scratch_bytes[n->id], p->arena_bytes);
        } else {
            ck_assert_int_eq(p->scratch_offset[n->id], -1);
        }
        if (n->op == OP_LOOP_RESULT) {
            /* a part of its loop's storage (check_loop_parts) */
            ck_assert(pass_memplan_is_view(p, n));
            ck_assert_ptr_eq(o, p->alias[n->in[0]->id]);
            if (owner_end[o->id] < end[n->id])
                owner_end[o->id] = end[n->id];
            continue;
        }
        if (pass_memplan_is_view(p, n)) {
            seen->views++;
            ck_assert(n->op == OP_RESHAPE || n->op == OP_FLATTEN);
            ck_assert_ptr_eq(p->alias[n->in[0]->id], o);
            ck_assert_int_eq(p->bytes[n->id], p->bytes[o->id]);
            if (op_info[o->op].kind == K_SOURCE) {
                ck_assert_int_ne(o->op, OP_CONST);
                ck_assert_int_eq(p->offset[n->id], -1);
                continue;
            }
        } else {
            naive += al64(p->bytes[n->id]);
            if (o != n && n->op == OP_SLICE_UPDATE) {
                seen->in_place++;
                /* a slice update over its input's storage, the value elsewhere */
                ck_assert_ptr_eq(p->alias[n->in[0]->id], o);
                ck_assert_ptr_ne(p->alias[n->in[1]->id], o);
                ck_assert_int_eq(p->bytes[n->id], p->bytes[o->id]);
            } else if (o != n) {
                seen->in_place++;
                /* in place: an all-elementwise kernel over a same-typed value */
                ck_assert_int_eq(op_info[n->op].kind, K_ELTWISE);
                for (int i = 0; i < N; i++) {
                    Node *m = G->nodes.v[i];
                    if (m->fused && groot(m) == n)
                        ck_assert(op_info[m->op].kind == K_ELTWISE || m->op == OP_BROADCAST_TO);
                }
                ck_assert_int_eq(n->dtype, o->dtype);
                ck_assert_int_eq(p->bytes[n->id], p->bytes[o->id]);
            } else {
                seen->slots++;
            }
        }
        ck_assert_int_ge(step[o->id], 0);
        ck_assert_int_le(step[o->id], si);
        ck_assert_int_eq(p->offset[n->id], p->offset[o->id]);
        ck_assert_int_ge(p->offset[n->id], 0);
        ck_assert_int_eq(p->offset[n->id] % 64, 0);
        ck_assert_int_le(p->offset[n->id] + p->bytes[n->id], p->arena_bytes);
        if (owner_end[o->id] < end[n->id])
            owner_end[o->id] = end[n->id];
    }
    check_placement(p, step, owner_end);
    ck_assert_int_eq(p->naive_bytes, naive);
    ck_assert_int_le(p->arena_bytes, p->naive_bytes);
    ck_assert_int_ge(p->arena_bytes, p->peak_bytes);
    /* the lower bound, from owners' merged lifetimes and each step's scratch */
    int64_t peak = 0;
    for (int t = 0; t < p->nsteps; t++) {
        int64_t live = al64(p->scratch_bytes[p->steps[t]->id]);
        for (int si = 0; si < p->nsteps; si++) {
            Node *o = p->steps[si];
            if (p->alias[o->id] == o && p->offset[o->id] >= 0 && step[o->id] <= t &&
                t <= owner_end[o->id])
                live += al64(p->bytes[o->id]);
        }
        if (peak < live)
            peak = live;
    }
    ck_assert_int_eq(p->peak_bytes, peak);
    /* a scratch buffer overlaps no storage live during its step */
    for (int t = 0; t < p->nsteps; t++) {
        Node *k = p->steps[t];
        int64_t sb = p->scratch_bytes[k->id], so = p->scratch_offset[k->id];
        if (sb <= 0)
            continue;
        for (int si = 0; si < p->nsteps; si++) {
            Node *o = p->steps[si];
            if (p->alias[o->id] != o || p->offset[o->id] < 0 || step[o->id] > t ||
                t > owner_end[o->id])
                continue;
            int64_t oo = p->offset[o->id], ob = p->bytes[o->id];
            ck_assert_msg(so + sb <= oo || oo + ob <= so, "scratch of %%%d overlaps live %%%d",
                          k->id, o->id);
        }
    }
    /* pairs: live at once and overlapping bytes only when sharing storage
     * legally -- the earlier value is dead when the later one writes */
    for (int i = 0; i < p->nsteps; i++) {
        Node *u = p->steps[i];
        if (p->offset[u->id] < 0)
            continue;
        for (int j = i + 1; j < p->nsteps; j++) {
            Node *w = p->steps[j];
            if (p->offset[w->id] < 0)
                continue;
            bool live = step[u->id] <= end[w->id] && step[w->id] <= end[u->id];
            bool mem = p->offset[u->id] < p->offset[w->id] + p->bytes[w->id] &&
                       p->offset[w->id] < p->offset[u->id] + p->bytes[u->id];
            if (p->alias[u->id] != p->alias[w->id]) {
                ck_assert_msg(!(live && mem), "%%%d and %%%d overlap while live", u->id, w->id);
            } else if (!pass_memplan_is_view(p, w)) {
                ck_assert_msg(end[u->id] <= step[w->id],
                              "%%%d overwritten by %%%d while still read", u->id, w->id);
                ck_assert(!is_root[u->id]);
            }
        }
    }
    free(needed);
    free(is_root);
    free(step);
    free(end);
    free(owner_end);
}

TEST(random, random_graphs)
{
    Seen seen = {0};
    for (int seed = 1; seed <= 400; seed++) {
        fresh();
        rng = 0x9e3779b97f4a7c15ull * (uint64_t)seed;
        G->max_batch = (int64_t[]){1, 7, 32}[rnd(3)];
        Node *roots[8];
        int nroots;
        gen_graph(4 + (int)rnd(30), roots, &nroots);
        MemPlan *p = pass_memplan(G, roots, nroots, cg_scratch_bytes);
        check_plan(p, roots, nroots, &seen);
    }
    /* the generator reaches every kind of storage */
    ck_assert_int_gt(seen.views, 50);
    ck_assert_int_gt(seen.in_place, 50);
    ck_assert_int_gt(seen.fused, 50);
    ck_assert_int_gt(seen.slots, 500);
    teardown();
}
END_TEST

/* The example models after simplification and fusion: real groups, views
 * and results, the same invariants. */
TEST(random, example_models)
{
    static const char *files[] = {
        "examples/mnist/mnist_mlp.dl", "examples/gpt/gpt.dl",
        "examples/linreg/linreg.dl",   "examples/autoencoder/conv_autoencoder.dl",
        "examples/rnn/elman.dl",       "examples/resnet/resnet.dl",
    };
    const char *root = getenv("DLC_SOURCE_DIR");
    ck_assert_ptr_nonnull(root);
    Seen seen = {0};
    for (int i = 0; i < countof(files); i++) {
        if (A)
            arena_free(A);
        diag_reset();
        A = arena_new();
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        G = fe_load(A, path, NULL, 0);
        ck_assert_msg(G != NULL, "%s does not load", path);
        ck_assert(pass_shape(G));
        pass_simplify(G);
        pass_fuse(G);
        Node *roots[16];
        int nroots = 0;
        for (int k = 0; k < G->outputs.n && nroots < 16; k++)
            roots[nroots++] = G->outputs.v[k].node;
        MemPlan *p = pass_memplan(G, roots, nroots, cg_scratch_bytes);
        check_plan(p, roots, nroots, &seen);
        ck_assert_int_gt(p->nsteps, 0);
        ck_assert_int_gt(p->arena_bytes, 0);
    }
    ck_assert_int_gt(seen.fused, 10);
    teardown();
}
END_TEST
