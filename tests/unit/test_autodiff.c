/*
 * pass_autodiff: the structure of the gradient graph, and numerical
 * gradient checks of every op that has a gradient rule.
 *
 * A case writes a small model in the textual IR (types '?', checked by
 * pass_shape) with a train statement, runs pass_autodiff and checks
 * ir_verify. Structural tests count and inspect the appended nodes.
 *
 * Gradient checks (gradcheck) fill every float source with random values
 * in [lo, hi] (i32 labels with classes 0..2), evaluate the whole graph with
 * the f64 reference interpreter (tests/exec/ref.c) at batch 2, and compare
 * every element of every gradient with the central difference
 * (L(p + eps) - L(p - eps)) / 2 eps, eps = 1e-6: the error must stay under
 * 1e-6 relative to max(|gradient|, 1), i.e. relative for gradients of size
 * 1 and more, absolute below (the difference quotient's rounding error is
 * about 1e-16 |L| / eps, so tiny gradients cannot be checked relatively).
 * Random points avoid the kinks of abs, relu, clamp, maximum, ... with
 * probability 1; the check would flag a kink inside [p - eps, p + eps].
 * Then the graph is simplified (pass_simplify must keep the gradients) and
 * the gradients evaluated again must not change.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checklib.h"
#include "ir.h"
#include "codegen.h"
#include "passes.h"
#include "ref.h"

static Arena *A;
static Graph *G;
static int NFWD;

/* Reads and types a model; body holds its nodes, outputs and train line. */
static void load(const char *body)
{
    diag_reset();
    A = arena_new();
    char *text = arena_printf(A, "dlc-ir 1\nmodel t batch B <= 8\n%send\n", body);
    int f = diag_add_source("test.ir", text, strlen(text));
    G = ir_read(A, f);
    ck_assert_ptr_nonnull(G);
    ck_assert(pass_shape(G));
    ck_assert_int_eq(diag_errors(), 0);
    NFWD = G->nodes.n;
}

static void differentiate(void)
{
    ck_assert(pass_autodiff(G));
    ck_assert_int_eq(diag_errors(), 0);
    ir_verify(G);
}

static void done(void)
{
    diag_reset();
    arena_free(A);
    A = NULL;
}

static int count_new(Op op)
{
    int k = 0;
    for (int i = NFWD; i < G->nodes.n; i++)
        k += G->nodes.v[i]->op == op;
    return k;
}

static Node *grad_of(const char *param)
{
    for (int i = 0; i < G->train->params.n; i++)
        if (strcmp(G->train->params.v[i]->name, param) == 0)
            return G->train->grads.v[i];
    ck_abort_msg("no gradient for %s", param);
    return NULL;
}

static bool is_zeros(const Node *n)
{
    return n->op == OP_BROADCAST_TO && n->in[0]->op == OP_CONST && attr_value(n->in[0]) == 0;
}

/* ---- structure ------------------------------------------------------- */

static const char *MLP = "%0 = input \"x\" : f32[B, 4]\n"
                         "%1 = input \"y\" : i32[B]\n"
                         "%2 = param \"w1\" {init = \"zeros\"} : f32[4, 3]\n"
                         "%3 = param \"b1\" {init = \"zeros\"} : f32[3]\n"
                         "%4 = param \"w2\" {init = \"zeros\", frozen = true} : f32[3, 3]\n"
                         "%5 = param \"unused\" {init = \"zeros\"} : f32[2, 2]\n"
                         "%6 = matmul(%0, %2) : ?\n"
                         "%7 = add(%6, %3) : ?\n"
                         "%8 = relu(%7) : ?\n"
                         "%9 = matmul(%8, %4) : ?\n"
                         "%10 = cross_entropy(%9, %1) : ?\n"
                         "%11 = argmax(%9) {axis = 1} : ?\n"
                         "output \"pred\" = %11\n"
                         "train %10 with sgd {lr = 0.1}\n";

SUITE("autodiff");
GROUP(structure, NULL, NULL);

TEST(structure, mlp_structure)
{
    load(MLP);
    differentiate();
    Train *t = G->train;
    /* trainable parameters only, in order; frozen w2 gets no gradient */
    ck_assert_int_eq(t->params.n, 3);
    ck_assert_str_eq(t->params.v[0]->name, "w1");
    ck_assert_str_eq(t->params.v[1]->name, "b1");
    ck_assert_str_eq(t->params.v[2]->name, "unused");
    for (int i = 0; i < t->params.n; i++) {
        ck_assert_int_eq(t->grads.v[i]->dtype, t->params.v[i]->dtype);
        ck_assert(ir_shape_eq(&t->grads.v[i]->shape, &t->params.v[i]->shape));
    }
    /* two matmuls backward: d(relu out) = dz @ w2^T and dw1 = x^T @ dh.
     * Neither dx (an input) nor dw2 (frozen) is built. */
    ck_assert_int_eq(count_new(OP_MATMUL), 2);
    ck_assert_int_eq(grad_of("w1")->op, OP_MATMUL);
    /* b1 was broadcast over the batch: its gradient sums dimension 0 */
    Node *db = grad_of("b1");
    ck_assert_int_eq(db->op, OP_SUM);
    AttrInts ax = attr_axes(db);
    ck_assert_int_eq(ax.n, 1);
    ck_assert_int_eq(ax.v[0].n, 0);
    /* the parameter the loss does not use gets zeros */
    ck_assert(is_zeros(grad_of("unused")));
    /* the mean over the batch divides by B, computed at run time */
    ck_assert_int_eq(count_new(OP_ONE_HOT), 1);
    for (int i = NFWD; i < G->nodes.n; i++)
        ck_assert_int_ne(G->nodes.v[i]->dtype, DT_I32);
    /* a second run changes nothing */
    int n = G->nodes.n;
    ck_assert(pass_autodiff(G));
    ck_assert_int_eq(G->nodes.n, n);
    done();
}
END_TEST

TEST(structure, fan_out_accumulates)
{
    /* loss = sum(w * w + exp(w)): w feeds three uses */
    load("%0 = param \"w\" {init = \"zeros\"} : f64[3]\n"
         "%1 = mul(%0, %0) : ?\n"
         "%2 = exp(%0) : ?\n"
         "%3 = add(%1, %2) : ?\n"
         "%4 = sum(%3) : ?\n"
         "train %4 with sgd {lr = 0.1}\n");
    differentiate();
    Node *d = grad_of("w");
    ck_assert_int_eq(d->op, OP_ADD);
    ck_assert_int_eq(count_new(OP_ADD), 2); /* three contributions */
    RefTensor *v = calloc((size_t)G->nodes.n, sizeof *v);
    Node *w = ir_find_source(G, "w");
    ref_tensor_alloc(&v[w->id], w, 1);
    double x[3] = {0.5, -1, 2};
    memcpy(v[w->id].v, x, sizeof x);
    char err[256] = "";
    ck_assert_msg(ref_eval(G, 1, v, true, err, sizeof err), "%s", err);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(v[d->id].v[i], 2 * x[i] + exp(x[i]), 1e-12);
    ref_values_free(G, v);
    free(v);
    done();
}
END_TEST

TEST(structure, unbroadcast_and_prune)
{
    /* s [1, 3] and c [B, 1, 1] broadcast to [B, 2, 3]; the i32 path and
     * argmax carry nothing; a param reached only through argmax gets zeros */
    load("%0 = input \"x\" : f32[B, 2, 3]\n"
         "%1 = param \"s\" {init = \"zeros\"} : f32[1, 3]\n"
         "%2 = param \"c\" {init = \"zeros\"} : f32[2, 1]\n"
         "%3 = param \"q\" {init = \"zeros\"} : f32[3]\n"
         "%4 = mul(%0, %1) : ?\n"
         "%5 = add(%4, %2) : ?\n"
         "%6 = argmax(%3) : ?\n"
         "%7 = one_hot(%6) {n = 3} : ?\n"
         "%8 = mul(%5, %7) : ?\n"
         "%9 = mean(%8) : ?\n"
         "train %9 with sgd {lr = 0.1}\n");
    differentiate();
    Node *ds = grad_of("s"), *dc = grad_of("c");
    ck_assert_int_eq(ds->op, OP_RESHAPE); /* sum over axes 0, 1, then [3] -> [1, 3] */
    ck_assert_int_eq(ds->in[0]->op, OP_SUM);
    ck_assert_int_eq(attr_axes(ds->in[0]).n, 2);
    ck_assert_int_eq(dc->op, OP_RESHAPE);
    ck_assert_int_eq(attr_axes(dc->in[0]).n, 2); /* axes 0 and 2 */
    ck_assert_int_eq(attr_axes(dc->in[0]).v[1].n, 2);
    ck_assert(is_zeros(grad_of("q")));
    ck_assert_int_eq(count_new(OP_ONE_HOT), 0);
    done();
}
END_TEST

TEST(structure, no_train_no_params)
{
    load("%0 = input \"x\" : f32[2]\n"
         "%1 = exp(%0) : ?\n"
         "output \"e\" = %1\n");
    differentiate();
    ck_assert_int_eq(G->nodes.n, NFWD);
    done();
    /* a loss of inputs only: nothing to differentiate, empty lists */
    load("%0 = input \"x\" : f32[2]\n"
         "%1 = sum(%0) : ?\n"
         "train %1 with sgd {lr = 0.1}\n");
    differentiate();
    ck_assert_int_eq(G->train->params.n, 0);
    ck_assert_int_eq(G->nodes.n, NFWD);
    done();
}
END_TEST

TEST(structure, ops_without_gradient)
{
    char *msg = NULL;
    size_t len = 0;
    FILE *sink = open_memstream(&msg, &len);
    diag_set_output(sink);
    /* a frozen weight before the unsupported op: nothing needs it */
    load("%0 = param \"w\" {init = \"zeros\", frozen = true} : f32[4]\n"
         "%1 = param \"v\" {init = \"zeros\"} : f32[]\n"
         "%2 = input \"x\" : f32[2, 3, 4, 4]\n"
         "%3 = mul(%2, %0) : ?\n"
         "%4 = max_pool2d(%3) {kernel = [2, 2]} : ?\n"
         "%5 = sum(%4) : ?\n"
         "%6 = mul(%5, %1) : ?\n"
         "train %6 with sgd {lr = 0.1}\n");
    differentiate();
    ck_assert_int_eq(G->train->params.n, 1);
    done();
    /* an embedding gradient whose one-hot matrix would pass 2^40 elements */
    load("%0 = param \"t\" {init = \"zeros\"} : f32[200000, 1]\n"
         "%1 = input \"ids\" : i32[B, 1048576]\n"
         "%2 = embedding(%1, %0) : ?\n"
         "%3 = sum(%2) : ?\n"
         "train %3 with sgd {lr = 0.1}\n");
    ck_assert(!pass_autodiff(G));
    ck_assert_int_eq(diag_errors(), 1);
    done();
    diag_set_output(NULL);
    fclose(sink);
    ck_assert_ptr_nonnull(strstr(msg, "error: embedding: the gradient of a 200000-row table"));
    free(msg);
}
END_TEST

/* stop_gradient passes its value and no adjoint: w * stop_gradient(w)
 * gives w's gradient one term (the stopped factor), and v, reached only
 * through stop_gradient, gets zeros. */
TEST(structure, stop_gradient_blocks)
{
    load("%0 = param \"w\" {init = \"zeros\"} : f32[3]\n"
         "%1 = param \"v\" {init = \"zeros\"} : f32[3]\n"
         "%2 = stop_gradient(%0) : ?\n"
         "%3 = mul(%0, %2) : ?\n"
         "%4 = stop_gradient(%1) : ?\n"
         "%5 = add(%3, %4) : ?\n"
         "%6 = sum(%5) : ?\n"
         "train %6 with sgd {lr = 0.1}\n");
    ck_assert_int_eq(G->nodes.v[2]->shape.rank, 1);
    ck_assert_int_eq(G->nodes.v[2]->shape.d[0].n, 3);
    ck_assert_int_eq(G->nodes.v[2]->dtype, DT_F32);
    differentiate();
    ck_assert(is_zeros(grad_of("v")));
    /* d(w * s)/dw = dy * s with s = stop_gradient(w): one mul, no add */
    Node *gw = grad_of("w");
    ck_assert_int_eq(gw->op, OP_MUL);
    ck_assert(gw->in[0] == G->nodes.v[2] || gw->in[1] == G->nodes.v[2]);
    for (int i = NFWD; i < G->nodes.n; i++)
        ck_assert_ptr_ne(G->nodes.v[i]->grad_of, G->nodes.v[2]);
    /* its work done, simplify drops it: w's gradient reads w itself */
    pass_simplify(G);
    ir_verify(G);
    for (int i = 0; i < G->nodes.n; i++)
        ck_assert_int_ne(G->nodes.v[i]->op, OP_STOP_GRADIENT);
    gw = grad_of("w");
    ck_assert(gw->in[0] == G->nodes.v[0] || gw->in[1] == G->nodes.v[0]);
    done();
    /* not differentiated yet: simplify must keep it */
    load("%0 = param \"w\" {init = \"zeros\"} : f32[3]\n"
         "%1 = stop_gradient(%0) : ?\n"
         "%2 = mul(%0, %1) : ?\n"
         "%3 = sum(%2) : ?\n"
         "train %3 with sgd {lr = 0.1}\n");
    pass_simplify(G);
    ck_assert_int_eq(G->train->loss->in[0]->in[1]->op, OP_STOP_GRADIENT);
    done();
}
END_TEST

/* The backward graph goes through simplify, fuse and memplan like the
 * forward one: every gradient is computed by a step of a plan rooted at
 * the gradients, never fused away. */
TEST(structure, backward_pipeline)
{
    load(MLP);
    differentiate();
    pass_simplify(G);
    ir_verify(G);
    pass_fuse(G);
    ir_verify(G);
    Train *t = G->train;
    ck_assert_int_eq(t->grads.n, 3);
    MemPlan *p = pass_memplan(G, t->grads.v, t->grads.n, cg_scratch_bytes);
    ck_assert_int_gt(p->nsteps, 0);
    for (int i = 0; i < t->grads.n; i++) {
        Node *d = t->grads.v[i];
        ck_assert_ptr_null(d->fused);
        if (op_info[d->op].kind == K_SOURCE)
            continue;
        bool found = false;
        for (int k = 0; k < p->nsteps && !found; k++)
            found = p->steps[k] == d;
        ck_assert_msg(found, "gradient of %s is not computed", t->params.v[i]->name);
    }
    done();
}
END_TEST

static char *print_graph(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ir_print(f, G);
    fclose(f);
    return buf;
}

TEST(structure, print_read_round_trip)
{
    load(MLP);
    differentiate();
    char *a = print_graph();
    ck_assert_ptr_nonnull(strstr(a, "\n  grad \"w1\" = %"));
    ck_assert_ptr_nonnull(strstr(a, "\n  grad \"unused\" = %"));
    ck_assert_ptr_null(strstr(a, "grad \"w2\""));
    int f = diag_add_source("rt.ir", a, strlen(a));
    Graph *g2 = ir_read(A, f);
    ck_assert_ptr_nonnull(g2);
    ck_assert_int_eq(g2->train->grads.n, 3);
    Graph *g1 = G;
    G = g2;
    char *b = print_graph();
    G = g1;
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    done();
}
END_TEST

/* The reader's checks on grad lines. */
TEST(structure, read_grad_errors)
{
    static const char *bad[] = {
        /* before train */
        "%0 = param \"w\" {init = \"zeros\"} : f32[2]\n%1 = sum(%0) : ?\n"
        "grad \"w\" = %0\ntrain %1 with sgd {lr = 0.1}\n",
        /* frozen */
        "%0 = param \"w\" {init = \"zeros\", frozen = true} : f32[2]\n%1 = sum(%0) : ?\n"
        "train %1 with sgd {lr = 0.1}\ngrad \"w\" = %0\n",
        /* not a parameter */
        "%0 = param \"w\" {init = \"zeros\"} : f32[2]\n%1 = sum(%0) : ?\n"
        "train %1 with sgd {lr = 0.1}\ngrad \"v\" = %0\n",
        /* missing one */
        "%0 = param \"w\" {init = \"zeros\"} : f32[2]\n%1 = param \"v\" {init = \"zeros\"} : "
        "f32[2]\n"
        "%2 = sum(%0) : ?\ntrain %2 with sgd {lr = 0.1}\ngrad \"w\" = %0\n",
        /* typed unlike the parameter */
        "%0 = param \"w\" {init = \"zeros\"} : f32[2]\n%1 = sum(%0) : f32[]\n"
        "train %1 with sgd {lr = 0.1}\ngrad \"w\" = %1\n",
        /* twice */
        "%0 = param \"w\" {init = \"zeros\"} : f32[2]\n%1 = sum(%0) : ?\n"
        "train %1 with sgd {lr = 0.1}\ngrad \"w\" = %0\ngrad \"w\" = %0\n",
    };
    FILE *sink = fopen("/dev/null", "w");
    diag_set_output(sink);
    for (int i = 0; i < (int)(sizeof bad / sizeof bad[0]); i++) {
        diag_reset();
        Arena *a = arena_new();
        char *text = arena_printf(a, "dlc-ir 1\nmodel t\n%send\n", bad[i]);
        int f = diag_add_source("bad.ir", text, strlen(text));
        ck_assert_msg(ir_read(a, f) == NULL, "case %d read", i);
        ck_assert_int_eq(diag_errors(), 1);
        arena_free(a);
    }
    /* untyped, it reads, but pass_shape finds the mismatch */
    diag_reset();
    Arena *a = arena_new();
    const char *text = "dlc-ir 1\nmodel t\n%0 = param \"w\" {init = \"zeros\"} : f32[2]\n"
                       "%1 = sum(%0) : ?\ntrain %1 with sgd {lr = 0.1}\ngrad \"w\" = %1\nend\n";
    Graph *g = ir_read(a, diag_add_source("late.ir", text, strlen(text)));
    ck_assert_ptr_nonnull(g);
    ck_assert(!pass_shape(g));
    ck_assert_int_eq(diag_errors(), 1);
    arena_free(a);
    diag_set_output(NULL);
    fclose(sink);
    diag_reset();
}
END_TEST

/* ---- numerical gradient checks --------------------------------------- */

static uint64_t rng = 88172645463325252u;

static double uniform(double lo, double hi)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

/* Training-mode dropout with a mask fixed per element, so that the loss is
 * a deterministic function for the difference quotients: element k of the
 * dropout node d is dropped when (k * 7 + d) % 4 == 0. */
static bool dropped(const Node *d, int64_t k)
{
    return (k * 7 + d->id) % 4 == 0;
}

static void eval_dropout_grad(Node *n, RefTensor *v, RefTensor *out)
{
    const RefTensor *dy = &v[n->in[1]->id];
    double p = attr_p(n);
    for (int64_t k = 0; k < out->count; k++)
        out->v[k] = dropped(n->in[0], k) ? 0 : dy->v[k] / (1 - p);
}

/* The ops ref.c cannot evaluate (OPF_REPLAY: they reuse the training
 * step's draws, and ref.c evaluates inference mode); when ref_eval stops
 * at one, eval_once computes it here, turns it into a source for the next
 * round, and restores the ops at the end. */
static void eval_replay(Node *n, RefTensor *v)
{
    RefTensor *out = &v[n->id];
    ref_tensor_free(out);
    ref_tensor_alloc(out, n, 2);
    ck_assert_msg(n->op == OP_DROPOUT_GRAD, "no gradient check evaluator for %s",
                  op_info[n->op].text);
    eval_dropout_grad(n, v, out);
}

static void eval_once(RefTensor *v)
{
    char err[256] = "";
    Op saved[64];
    Node *swapped[64];
    int ns = 0;
    bool ok;
    while (!(ok = ref_eval(G, 2, v, true, err, sizeof err))) {
        /* "%N op: not implemented by the reference" */
        int id = -1;
        if (sscanf(err, "%%%d", &id) != 1 || id < 0 || id >= G->nodes.n ||
            !(op_info[G->nodes.v[id]->op].flags & OPF_REPLAY) || !strstr(err, "not implemented") ||
            ns == 64)
            break;
        Node *n = G->nodes.v[id];
        eval_replay(n, v);
        saved[ns] = n->op;
        swapped[ns++] = n;
        n->op = OP_INPUT;
    }
    while (ns-- > 0)
        swapped[ns]->op = saved[ns];
    ck_assert_msg(ok, "%s", err);
}

/* batch_norm is differentiated in training mode, where it normalizes with
 * the batch's statistics: ref.c evaluates inference mode, so hand it the
 * batch mean and biased variance as running statistics and evaluate
 * again. */
static bool set_batch_stats(RefTensor *v)
{
    bool any = false;
    for (int i = 0; i < G->nodes.n; i++) {
        Node *n = G->nodes.v[i];
        if (n->op != OP_BATCH_NORM)
            continue;
        const RefTensor *x = &v[n->in[0]->id];
        int64_t N = x->dim[0], C = x->dim[1], S = x->count / (N * C);
        for (int64_t c = 0; c < C; c++) {
            double s = 0, ss = 0;
            for (int64_t b = 0; b < N; b++)
                for (int64_t k = 0; k < S; k++)
                    s += x->v[(b * C + c) * S + k];
            double mu = s / (double)(N * S);
            for (int64_t b = 0; b < N; b++)
                for (int64_t k = 0; k < S; k++)
                    ss += (x->v[(b * C + c) * S + k] - mu) * (x->v[(b * C + c) * S + k] - mu);
            v[n->in[3]->id].v[c] = mu;
            v[n->in[4]->id].v[c] = ss / (double)(N * S);
        }
        any = true;
    }
    return any;
}

/* ref.c evaluates dropout in inference mode (the identity); each dropout
 * is computed here in training mode once its input is known, then read as
 * a source. */
static void eval(RefTensor *v)
{
    eval_once(v);
    Node *swapped[16];
    int ns = 0;
    for (int i = 0; i < G->nodes.n; i++) {
        Node *d = G->nodes.v[i];
        if (d->op != OP_DROPOUT)
            continue;
        ck_assert_int_lt(ns, 16);
        const RefTensor *x = &v[d->in[0]->id];
        double p = attr_p(d);
        for (int64_t k = 0; k < x->count; k++)
            v[i].v[k] = dropped(d, k) ? 0 : x->v[k] / (1 - p);
        d->op = OP_INPUT;
        swapped[ns++] = d;
        eval_once(v);
    }
    if (set_batch_stats(v))
        eval_once(v);
    while (ns-- > 0)
        swapped[ns]->op = OP_DROPOUT;
}

static double loss_at(RefTensor *v)
{
    eval(v);
    return v[G->train->loss->id].v[0];
}

/* Checks every gradient element of the model in body against central
 * differences; sources are drawn from [lo, hi]. Returns the number of
 * elements checked. */
static int gradcheck(const char *body, double lo, double hi)
{
    load(body);
    differentiate();
    ck_assert_int_gt(G->train->params.n, 0);
    RefTensor *v = calloc((size_t)G->nodes.n, sizeof *v);
    for (int i = 0; i < NFWD; i++) {
        Node *n = G->nodes.v[i];
        if (n->op != OP_INPUT && n->op != OP_PARAM && n->op != OP_STATE)
            continue;
        ref_tensor_alloc(&v[i], n, 2);
        for (int64_t k = 0; k < v[i].count; k++)
            v[i].v[k] = n->dtype == DT_I32 ? (double)(int)uniform(0, 3) : uniform(lo, hi);
    }
    eval(v);
    /* the gradients at the sample point */
    int np = G->train->params.n, checked = 0;
    double **grad = calloc((size_t)np, sizeof *grad);
    for (int p = 0; p < np; p++) {
        RefTensor *gt = &v[G->train->grads.v[p]->id];
        grad[p] = malloc(sizeof(double) * (size_t)gt->count);
        memcpy(grad[p], gt->v, sizeof(double) * (size_t)gt->count);
    }
    const double eps = 1e-6;
    for (int p = 0; p < np; p++) {
        RefTensor *pt = &v[G->train->params.v[p]->id];
        for (int64_t k = 0; k < pt->count; k++) {
            double x = pt->v[k];
            pt->v[k] = x + eps;
            double lp = loss_at(v);
            pt->v[k] = x - eps;
            double lm = loss_at(v);
            pt->v[k] = x;
            double fd = (lp - lm) / (2 * eps), g = grad[p][k];
            ck_assert_msg(fabs(fd - g) <= 1e-6 * fmax(fabs(g), 1),
                          "d loss / d %s[%lld]: autodiff %.12g, central difference %.12g",
                          G->train->params.v[p]->name, (long long)k, g, fd);
            checked++;
        }
    }
    /* simplification keeps the gradients and their values: sources stay
     * (the same Node objects, renumbered), so carry their values over */
    int nsrc = 0;
    Node **src = calloc((size_t)NFWD, sizeof *src);
    double **val = calloc((size_t)NFWD, sizeof *val);
    for (int i = 0; i < NFWD; i++) {
        if (!v[i].v || op_info[G->nodes.v[i]->op].kind != K_SOURCE || G->nodes.v[i]->op == OP_CONST)
            continue;
        src[nsrc] = G->nodes.v[i];
        val[nsrc] = malloc(sizeof(double) * (size_t)v[i].count);
        memcpy(val[nsrc++], v[i].v, sizeof(double) * (size_t)v[i].count);
    }
    ref_values_free(G, v);
    free(v);
    pass_simplify(G);
    ir_verify(G);
    v = calloc((size_t)G->nodes.n, sizeof *v);
    for (int i = 0; i < nsrc; i++) {
        ref_tensor_alloc(&v[src[i]->id], src[i], 2);
        memcpy(v[src[i]->id].v, val[i], sizeof(double) * (size_t)v[src[i]->id].count);
        free(val[i]);
    }
    free(src);
    free(val);
    eval(v);
    for (int p = 0; p < np; p++) {
        RefTensor *gt = &v[G->train->grads.v[p]->id];
        for (int64_t k = 0; k < gt->count; k++)
            ck_assert_msg(fabs(gt->v[k] - grad[p][k]) <= 1e-12 * fmax(fabs(grad[p][k]), 1),
                          "simplified gradient of %s[%lld]: %.17g, was %.17g",
                          G->train->params.v[p]->name, (long long)k, gt->v[k], grad[p][k]);
    }
    for (int p = 0; p < np; p++)
        free(grad[p]);
    free(grad);
    ref_values_free(G, v);
    free(v);
    done();
    return checked;
}

#define GRADCHECK(name, lo, hi, body)                                                              \
    START_TEST(name)                                                                               \
    {                                                                                              \
        ck_assert_int_gt(gradcheck(body, lo, hi), 0);                                              \
    }                                                                                              \
    END_TEST

/* y = OP(a, b) with a [2, 3] and b [3] broadcast; loss = sum(y * r) */
#define BINARY(op)                                                                                 \
    "%0 = param \"a\" {init = \"zeros\"} : f64[2, 3]\n"                                            \
    "%1 = param \"b\" {init = \"zeros\"} : f64[3]\n"                                               \
    "%2 = input \"r\" : f64[2, 3]\n"                                                               \
    "%3 = " op "(%0, %1) : ?\n"                                                                    \
    "%4 = mul(%3, %2) : ?\n"                                                                       \
    "%5 = sum(%4) : ?\n"                                                                           \
    "train %5 with sgd {lr = 0.1}\n"

/* y = OP(w) with w [B, 3] batch-shaped through an input; loss = sum(y * r) */
#define UNARY(op)                                                                                  \
    "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3]\n"                                            \
    "%1 = input \"r\" : f64[2, 3]\n"                                                               \
    "%2 = " op " : ?\n"                                                                            \
    "%3 = mul(%2, %1) : ?\n"                                                                       \
    "%4 = sum(%3) : ?\n"                                                                           \
    "train %4 with sgd {lr = 0.1}\n"

GRADCHECK(g_add, -2, 2, BINARY("add"))
GRADCHECK(g_sub, -2, 2, BINARY("sub"))
GRADCHECK(g_mul, -2, 2, BINARY("mul"))
GRADCHECK(g_div, 0.5, 2, BINARY("div"))
GRADCHECK(g_pow, 0.5, 2, BINARY("pow"))
GRADCHECK(g_maximum, -2, 2, BINARY("maximum"))
GRADCHECK(g_minimum, -2, 2, BINARY("minimum"))
GRADCHECK(g_neg, -2, 2, UNARY("neg(%0)"))
GRADCHECK(g_sqrt, 0.5, 2, UNARY("sqrt(%0)"))
GRADCHECK(g_rsqrt, 0.5, 2, UNARY("rsqrt(%0)"))
GRADCHECK(g_exp, -2, 2, UNARY("exp(%0)"))
GRADCHECK(g_log, 0.5, 2, UNARY("log(%0)"))
GRADCHECK(g_abs, -2, 2, UNARY("abs(%0)"))
GRADCHECK(g_square, -2, 2, UNARY("square(%0)"))
GRADCHECK(g_clamp, -2, 2, UNARY("clamp(%0) {lo = -1.0, hi = 0.5}"))
GRADCHECK(g_relu, -2, 2, UNARY("relu(%0)"))
GRADCHECK(g_leaky_relu, -2, 2, UNARY("leaky_relu(%0) {alpha = 0.2}"))
GRADCHECK(g_elu, -2, 2, UNARY("elu(%0) {alpha = 1.5}"))
GRADCHECK(g_sigmoid, -3, 3, UNARY("sigmoid(%0)"))
GRADCHECK(g_tanh, -2, 2, UNARY("tanh(%0)"))
GRADCHECK(g_gelu, -3, 3, UNARY("gelu(%0)"))
GRADCHECK(g_gelu_tanh, -3, 3, UNARY("gelu(%0) {approximate = \"tanh\"}"))
GRADCHECK(g_silu, -3, 3, UNARY("silu(%0)"))
GRADCHECK(g_softplus, -3, 3, UNARY("softplus(%0)"))
GRADCHECK(g_sin, -3, 3, UNARY("sin(%0)"))
GRADCHECK(g_cos, -3, 3, UNARY("cos(%0)"))
GRADCHECK(g_tril, -2, 2, UNARY("tril(%0) {diagonal = 0}"))
GRADCHECK(g_triu, -2, 2, UNARY("triu(%0) {diagonal = 1}"))
GRADCHECK(g_softmax, -2, 2, UNARY("softmax(%0) {axis = 0}"))
GRADCHECK(g_log_softmax, -2, 2, UNARY("log_softmax(%0)"))
/* the same with a weight r of the result's shape */
#define UNARY_R(op, rtype)                                                                         \
    "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3]\n"                                            \
    "%1 = input \"r\" : " rtype "\n"                                                               \
    "%2 = " op " : ?\n"                                                                            \
    "%3 = mul(%2, %1) : ?\n"                                                                       \
    "%4 = sum(%3) : ?\n"                                                                           \
    "train %4 with sgd {lr = 0.1}\n"

GRADCHECK(g_reshape, -2, 2, UNARY_R("reshape(%0) {shape = [3, 2]}", "f64[3, 2]"))
GRADCHECK(g_transpose, -2, 2, UNARY_R("transpose(%0)", "f64[3, 2]"))
GRADCHECK(g_sum_axis, -2, 2, UNARY("sum(%0) {axis = [1], keepdims = true}"))
GRADCHECK(g_mean_axis, -2, 2, UNARY("mean(%0) {axis = [0], keepdims = true}"))
GRADCHECK(g_max_axis, -2, 2, UNARY("max(%0) {axis = [1], keepdims = true}"))
GRADCHECK(g_min_axis, -2, 2, UNARY("min(%0) {axis = [0], keepdims = true}"))
GRADCHECK(g_var_axis, -2, 2, UNARY("var(%0) {axis = [1], keepdims = true}"))
GRADCHECK(g_slice, -2, 2,
          UNARY("slice(%0) {begin = [1, 2], end = [2, 0], step = [1, -2], "
                "squeeze = [0]}"))
GRADCHECK(g_broadcast_to, -2, 2, UNARY("broadcast_to(%0) {shape = [2, 2, 3]}"))

/* where: to a where r > 0, to the broadcast b elsewhere */
GRADCHECK(g_where, -2, 2,
          "%0 = param \"a\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = param \"b\" {init = \"zeros\"} : f64[3]\n"
          "%2 = input \"r\" : f64[2, 3]\n"
          "%3 = const {value = 0.0} : ?\n"
          "%4 = gt(%2, %3) : ?\n"
          "%5 = where(%4, %0, %1) : ?\n"
          "%6 = mul(%5, %2) : ?\n"
          "%7 = sum(%6) : ?\n"
          "train %7 with sgd {lr = 0.1}\n")

/* gather along the last axis with labels 0..2 as indices (repeats add) */
GRADCHECK(g_gather, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = input \"i\" : i32[2, 5]\n"
          "%2 = input \"r\" : f64[2, 5]\n"
          "%3 = gather(%0, %1) {axis = 1} : ?\n"
          "%4 = mul(%3, %2) : ?\n"
          "%5 = sum(%4) : ?\n"
          "train %5 with sgd {lr = 0.1}\n")

/* take (x[ids]) of rows by [2, 5] ids, labels 0..2 (repeats add) */
GRADCHECK(g_take, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[3, 4]\n"
          "%1 = input \"i\" : i32[2, 5]\n"
          "%2 = input \"r\" : f64[2, 5, 4]\n"
          "%3 = take(%0, %1) {axis = 0} : ?\n"
          "%4 = mul(%3, %2) : ?\n"
          "%5 = sum(%4) : ?\n"
          "train %5 with sgd {lr = 0.1}\n")

/* a loss that is not a plain sum: reductions to scalars, batch counts */
GRADCHECK(g_reductions_all, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = input \"x\" : f64[B, 2, 3]\n"
          "%2 = mul(%1, %0) : ?\n"
          "%3 = mean(%2) : ?\n"
          "%4 = var(%2) {axis = [0, 2]} : ?\n"
          "%5 = max(%2) : ?\n"
          "%6 = min(%2) {axis = [0]} : ?\n"
          "%7 = sum(%4) : ?\n"
          "%8 = sum(%6) : ?\n"
          "%9 = add(%3, %7) : ?\n"
          "%10 = add(%9, %5) : ?\n"
          "%11 = add(%10, %8) : ?\n"
          "train %11 with sgd {lr = 0.1}\n")

GRADCHECK(g_matmul, -1, 1,
          "%0 = param \"a\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = param \"b\" {init = \"zeros\"} : f64[3, 4]\n"
          "%2 = input \"r\" : f64[2, 4]\n"
          "%3 = matmul(%0, %1) : ?\n"
          "%4 = mul(%3, %2) : ?\n"
          "%5 = sum(%4) : ?\n"
          "train %5 with sgd {lr = 0.1}\n")

/* NumPy cases: a batched left operand against a shared matrix, a row
 * vector on the left, a column vector on the right, vector . vector */
GRADCHECK(g_matmul_numpy, -1, 1,
          "%0 = param \"m\" {init = \"zeros\"} : f64[3, 4]\n"
          "%1 = param \"u\" {init = \"zeros\"} : f64[3]\n"
          "%2 = param \"v\" {init = \"zeros\"} : f64[4]\n"
          "%3 = input \"x\" : f64[B, 2, 3]\n"
          "%4 = matmul(%3, %0) : ?\n"
          "%5 = matmul(%1, %0) : ?\n"
          "%6 = matmul(%4, %2) : ?\n"
          "%7 = matmul(%5, %2) : ?\n"
          "%8 = sum(%6) : ?\n"
          "%9 = mul(%8, %7) : ?\n"
          "%10 = matmul(%1, %1) : ?\n"
          "%11 = add(%9, %10) : ?\n"
          "train %11 with sgd {lr = 0.1}\n")

GRADCHECK(g_matmul_batched, -1, 1,
          "%0 = param \"a\" {init = \"zeros\"} : f64[2, 1, 2, 3]\n"
          "%1 = param \"b\" {init = \"zeros\"} : f64[2, 3, 2]\n"
          "%2 = matmul(%0, %1) : ?\n"
          "%3 = square(%2) : ?\n"
          "%4 = sum(%3) : ?\n"
          "train %4 with sgd {lr = 0.1}\n")

GRADCHECK(g_layout, -2, 2,
          "%0 = param \"a\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = param \"b\" {init = \"zeros\"} : f64[2, 2]\n"
          "%2 = input \"r\" : f64[2, 2, 5]\n"
          "%3 = concat(%0, %1) {axis = 1} : ?\n"
          "%4 = flatten(%3) : ?\n"
          "%5 = stack(%3, %3) {axis = 1} : ?\n"
          "%6 = mul(%5, %2) : ?\n"
          "%7 = sum(%6) : ?\n"
          "%8 = sum(%4) : ?\n"
          "%9 = mul(%8, %8) : ?\n"
          "%10 = add(%7, %9) : ?\n"
          "train %10 with sgd {lr = 0.1}\n")

GRADCHECK(g_slice_update, -2, 2,
          "%0 = param \"a\" {init = \"zeros\"} : f64[3, 4]\n"
          "%1 = param \"v\" {init = \"zeros\"} : f64[2]\n"
          "%2 = input \"r\" : f64[3, 4]\n"
          "%3 = slice_update(%0, %1) {begin = [0, 1], end = [2, 4], step = [1, 2], "
          "squeeze = []} : ?\n"
          "%4 = mul(%3, %2) : ?\n"
          "%5 = sum(%4) : ?\n"
          "train %5 with sgd {lr = 0.1}\n")

/* losses: scores from a param times inputs, labels/targets as inputs */
#define CLASS_LOSS(op, red)                                                                        \
    "%0 = param \"w\" {init = \"zeros\"} : f64[3, 3]\n"                                            \
    "%1 = input \"x\" : f64[B, 3]\n"                                                               \
    "%2 = input \"y\" : i32[B]\n"                                                                  \
    "%3 = matmul(%1, %0) : ?\n"                                                                    \
    "%4 = " op "(%3, %2) {reduction = \"" red "\"} : ?\n"                                          \
    "%5 = sum(%4) : ?\n"                                                                           \
    "train %5 with sgd {lr = 0.1}\n"

GRADCHECK(g_cross_entropy_mean, -2, 2, CLASS_LOSS("cross_entropy", "mean"))
GRADCHECK(g_cross_entropy_sum, -2, 2, CLASS_LOSS("cross_entropy", "sum"))
GRADCHECK(g_cross_entropy_none, -2, 2, CLASS_LOSS("cross_entropy", "none"))
GRADCHECK(g_nll_loss, -2, 2, CLASS_LOSS("nll_loss", "mean"))

/* classes in dimension 1 of [N, C, d] */
GRADCHECK(g_cross_entropy_spatial, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3, 4]\n"
          "%1 = input \"y\" : i32[2, 4]\n"
          "%2 = cross_entropy(%0, %1) : ?\n"
          "%3 = nll_loss(%0, %1) {reduction = \"sum\"} : ?\n"
          "%4 = add(%2, %3) : ?\n"
          "train %4 with sgd {lr = 0.1}\n")

GRADCHECK(g_cross_entropy_unbatched, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[3]\n"
          "%1 = input \"y\" : i32[]\n"
          "%2 = cross_entropy(%0, %1) : ?\n"
          "train %2 with sgd {lr = 0.1}\n")

/* both prediction and target are parameters */
#define PAIR_LOSS(op)                                                                              \
    "%0 = param \"p\" {init = \"zeros\"} : f64[2, 3]\n"                                            \
    "%1 = param \"t\" {init = \"zeros\"} : f64[2, 3]\n"                                            \
    "%2 = " op " : ?\n"                                                                            \
    "train %2 with sgd {lr = 0.1}\n"

GRADCHECK(g_mse, -2, 2, PAIR_LOSS("mse(%0, %1)"))
GRADCHECK(g_mse_none, -2, 2,
          "%0 = param \"p\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = input \"t\" : f64[2, 3]\n"
          "%2 = mse(%0, %1) {reduction = \"none\"} : ?\n"
          "%3 = mul(%2, %2) : ?\n"
          "%4 = sum(%3) : ?\n"
          "train %4 with sgd {lr = 0.1}\n")
GRADCHECK(g_l1_loss, -2, 2, PAIR_LOSS("l1_loss(%0, %1) {reduction = \"sum\"}"))
GRADCHECK(g_bce, -2, 2, PAIR_LOSS("binary_cross_entropy(%0, %1)"))
GRADCHECK(g_smooth_l1, -2, 2, PAIR_LOSS("smooth_l1_loss(%0, %1) {beta = 0.7}"))
GRADCHECK(g_smooth_l1_beta0, -2, 2, PAIR_LOSS("smooth_l1_loss(%0, %1) {beta = 0.0}"))
GRADCHECK(g_huber, -2, 2, PAIR_LOSS("huber_loss(%0, %1) {delta = 0.6}"))

GRADCHECK(g_global_pools, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3, 2, 2]\n"
          "%1 = param \"u\" {init = \"zeros\"} : f64[2, 3, 4]\n"
          "%2 = input \"r\" : f64[2, 3]\n"
          "%3 = global_avg_pool(%0) : ?\n"
          "%4 = global_max_pool(%0) : ?\n"
          "%5 = global_max_pool(%1) : ?\n"
          "%6 = add(%3, %4) : ?\n"
          "%7 = add(%6, %5) : ?\n"
          "%8 = mul(%7, %2) : ?\n"
          "%9 = sum(%8) : ?\n"
          "train %9 with sgd {lr = 0.1}\n")

/* normalized over the last two dimensions, batch in front */
GRADCHECK(g_layer_norm, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[3, 2]\n"
          "%1 = param \"gamma\" {init = \"zeros\"} : f64[3, 2]\n"
          "%2 = param \"beta\" {init = \"zeros\"} : f64[3, 2]\n"
          "%3 = input \"x\" : f64[B, 3, 2]\n"
          "%4 = input \"r\" : f64[B, 3, 2]\n"
          "%5 = mul(%3, %0) : ?\n"
          "%6 = layer_norm(%5, %1, %2) {axis = 1, eps = 0.001} : ?\n"
          "%7 = mul(%6, %4) : ?\n"
          "%8 = sum(%7) : ?\n"
          "train %8 with sgd {lr = 0.1}\n")

/* ids [B, 2] with repeats across the batch (0..2 of 3 rows) */
GRADCHECK(g_embedding, -2, 2,
          "%0 = param \"table\" {init = \"zeros\"} : f64[3, 4]\n"
          "%1 = input \"ids\" : i32[B, 2]\n"
          "%2 = input \"r\" : f64[B, 2, 4]\n"
          "%3 = embedding(%1, %0) : ?\n"
          "%4 = mul(%3, %2) : ?\n"
          "%5 = sum(%4) : ?\n"
          "train %5 with sgd {lr = 0.1}\n")

/* cast to f32 and back: the gradient is cast back to the parameter's type */
GRADCHECK(g_cast, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = cast(%0) {to = \"f32\"} : ?\n"
          "%2 = square(%1) : ?\n"
          "%3 = cast(%2) {to = \"f64\"} : ?\n"
          "%4 = sum(%3) : ?\n"
          "train %4 with sgd {lr = 0.1}\n")

/* strided, padded, grouped 2-d convolution; dilated 1-d convolution */
GRADCHECK(g_conv2d, -1, 1,
          "%0 = param \"w\" {init = \"zeros\"} : f64[4, 1, 3, 2]\n"
          "%1 = param \"v\" {init = \"zeros\"} : f64[3, 2, 3]\n"
          "%2 = input \"x\" : f64[B, 2, 5, 4]\n"
          "%3 = input \"s\" : f64[B, 2, 9]\n"
          "%4 = conv2d(%2, %0) {stride = [2, 1], padding = [1, 1], groups = 2} : ?\n"
          "%5 = conv1d(%3, %1) {dilation = [2], padding = [1]} : ?\n"
          "%6 = square(%4) : ?\n"
          "%7 = sum(%6) : ?\n"
          "%8 = square(%5) : ?\n"
          "%9 = sum(%8) : ?\n"
          "%10 = add(%7, %9) : ?\n"
          "train %10 with sgd {lr = 0.1}\n")

/* the image through a parameter too, so conv_grad_input is checked */
GRADCHECK(g_conv2d_input, -1, 1,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 2, 2, 2]\n"
          "%1 = param \"a\" {init = \"zeros\"} : f64[2, 4, 5]\n"
          "%2 = param \"u\" {init = \"zeros\"} : f64[2, 2, 3]\n"
          "%3 = input \"x\" : f64[B, 2, 4, 5]\n"
          "%4 = mul(%3, %1) : ?\n"
          "%5 = conv2d(%4, %0) {stride = [2], dilation = [1, 2], padding = [1, 0]} : ?\n"
          "%6 = square(%5) : ?\n"
          "%7 = sum(%6) : ?\n"
          "%8 = input \"s\" : f64[B, 2, 6]\n"
          "%9 = input \"t\" : f64[B, 2, 6]\n"
          "%10 = mul(%8, %9) : ?\n"
          "%11 = conv1d(%10, %2) {stride = [2], padding = [1]} : ?\n"
          "%12 = square(%11) : ?\n"
          "%13 = sum(%12) : ?\n"
          "%14 = param \"z\" {init = \"zeros\"} : f64[2, 6]\n"
          "%15 = mul(%13, %7) : ?\n"
          "%16 = mul(%8, %14) : ?\n"
          "%17 = conv1d(%16, %2) {stride = [2], padding = [1]} : ?\n"
          "%18 = sum(%17) : ?\n"
          "%19 = add(%15, %18) : ?\n"
          "train %19 with sgd {lr = 0.1}\n")

GRADCHECK(g_conv_transpose2d, -1, 1,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3, 3, 3]\n"
          "%1 = param \"a\" {init = \"zeros\"} : f64[2, 3, 3]\n"
          "%2 = input \"x\" : f64[B, 2, 3, 3]\n"
          "%3 = mul(%2, %1) : ?\n"
          "%4 = conv_transpose2d(%3, %0) {stride = [2], padding = [1], output_padding = [1]} : ?\n"
          "%5 = square(%4) : ?\n"
          "%6 = sum(%5) : ?\n"
          "train %6 with sgd {lr = 0.1}\n")

GRADCHECK(g_pools, 0.2, 2,
          "%0 = param \"a\" {init = \"zeros\"} : f64[2, 5, 4]\n"
          "%1 = input \"x\" : f64[B, 2, 5, 4]\n"
          "%2 = input \"r\" : f64[B, 2, 3, 2]\n"
          "%3 = mul(%1, %0) : ?\n"
          "%4 = max_pool2d(%3) {kernel = [3, 3], stride = [2], padding = [1]} : ?\n"
          "%5 = avg_pool2d(%3) {kernel = [3], stride = [2], padding = [1]} : ?\n"
          "%6 = lp_pool2d(%3) {p = 2.5, kernel = [2, 2]} : ?\n"
          "%7 = add(%4, %5) : ?\n"
          "%8 = mul(%7, %2) : ?\n"
          "%9 = sum(%8) : ?\n"
          "%10 = sum(%6) : ?\n"
          "%11 = add(%9, %10) : ?\n"
          "train %11 with sgd {lr = 0.1}\n")

/* training-mode batch_norm of [N, C, H, W] and [N, C] */
GRADCHECK(g_batch_norm, -2, 2,
          "%0 = param \"a\" {init = \"zeros\"} : f64[2, 2, 3]\n"
          "%1 = param \"gamma\" {init = \"zeros\"} : f64[2]\n"
          "%2 = param \"beta\" {init = \"zeros\"} : f64[2]\n"
          "%3 = state \"m\" {init = \"zeros\"} : f64[2]\n"
          "%4 = state \"v\" {init = \"ones\"} : f64[2]\n"
          "%5 = input \"x\" : f64[B, 2, 2, 3]\n"
          "%6 = input \"r\" : f64[B, 2, 2, 3]\n"
          "%7 = mul(%5, %0) : ?\n"
          "%8 = batch_norm(%7, %1, %2, %3, %4) {eps = 0.01} : ?\n"
          "%9 = mul(%8, %6) : ?\n"
          "%10 = sum(%9) : ?\n"
          "%11 = param \"w\" {init = \"zeros\"} : f64[3, 2]\n"
          "%12 = input \"z\" : f64[B, 3]\n"
          "%13 = matmul(%12, %11) : ?\n"
          "%14 = state \"m2\" {init = \"zeros\"} : f64[2]\n"
          "%15 = state \"v2\" {init = \"ones\"} : f64[2]\n"
          "%16 = batch_norm(%13, %1, %2, %14, %15) : ?\n"
          "%17 = square(%16) : ?\n"
          "%18 = mul(%17, %16) : ?\n"
          "%19 = sum(%18) : ?\n"
          "%20 = add(%10, %19) : ?\n"
          "train %20 with sgd {lr = 0.1}\n")

/* q, k, v through parameters; causal and not, more keys than queries */
/* attention_masked with i32 mask values 0..2: zeros hide keys, some
 * queries see none (output and gradient 0) */
GRADCHECK(g_attention_masked, -1, 1,
          "%0 = param \"wq\" {init = \"zeros\"} : f64[2, 3, 2]\n"
          "%1 = param \"wk\" {init = \"zeros\"} : f64[2, 3, 2]\n"
          "%2 = param \"wv\" {init = \"zeros\"} : f64[2, 3, 4]\n"
          "%3 = input \"x\" : f64[B, 2, 3, 2]\n"
          "%4 = input \"y\" : f64[B, 2, 3, 4]\n"
          "%5 = input \"m\" : i32[B, 1, 3, 3]\n"
          "%6 = mul(%3, %0) : ?\n"
          "%7 = mul(%3, %1) : ?\n"
          "%8 = mul(%4, %2) : ?\n"
          "%9 = attention_masked(%6, %7, %8, %5) : ?\n"
          "%10 = mul(%9, %4) : ?\n"
          "%11 = sum(%10) : ?\n"
          "train %11 with sgd {lr = 0.1}\n")

GRADCHECK(g_attention, -1, 1,
          "%0 = param \"wq\" {init = \"zeros\"} : f64[2, 3, 2]\n"
          "%1 = param \"wk\" {init = \"zeros\"} : f64[2, 3, 2]\n"
          "%2 = param \"wv\" {init = \"zeros\"} : f64[2, 3, 4]\n"
          "%3 = input \"x\" : f64[B, 2, 3, 2]\n"
          "%4 = mul(%3, %0) : ?\n"
          "%5 = mul(%3, %1) : ?\n"
          "%6 = input \"y\" : f64[B, 2, 3, 4]\n"
          "%7 = mul(%6, %2) : ?\n"
          "%8 = attention(%4, %5, %7) {causal = true} : ?\n"
          "%9 = attention(%4, %5, %7) : ?\n"
          "%10 = input \"r\" : f64[B, 2, 3, 4]\n"
          "%11 = mul(%8, %10) : ?\n"
          "%12 = sum(%11) : ?\n"
          "%13 = square(%9) : ?\n"
          "%14 = sum(%13) : ?\n"
          "%15 = slice(%4) {begin = [0, 0, 0, 0], end = [B, 2, 2, 2], step = [1, 1, 1, 1], "
          "squeeze = []} : ?\n"
          "%16 = attention(%15, %5, %7) : ?\n"
          "%17 = sum(%16) : ?\n"
          "%18 = add(%12, %14) : ?\n"
          "%19 = add(%18, %17) : ?\n"
          "train %19 with sgd {lr = 0.1}\n")

/* x [B, 3, 2] through a parameter, H = 2; every weight, bias and initial
 * state a parameter */
#define RECURRENT(call, extra)                                                                     \
    "%0 = param \"a\" {init = \"zeros\"} : f64[3, 2]\n"                                            \
    "%1 = input \"x\" : f64[2, 3, 2]\n"                                                            \
    "%2 = mul(%1, %0) : ?\n"                                                                       \
    "%3 = param \"h0\" {init = \"zeros\"} : f64[2, 2]\n" extra "%9 = " call " : ?\n"               \
    "%10 = input \"r\" : f64[2, 3, 2]\n"                                                           \
    "%11 = mul(%9, %10) : ?\n"                                                                     \
    "%12 = sum(%11) : ?\n"                                                                         \
    "train %12 with sgd {lr = 0.1}\n"

GRADCHECK(g_rnn, -1, 1,
          RECURRENT("rnn(%2, %3, %4, %5, %6)", "%4 = param \"wih\" {init = \"zeros\"} : f64[2, 2]\n"
                                               "%5 = param \"whh\" {init = \"zeros\"} : f64[2, 2]\n"
                                               "%6 = param \"b\" {init = \"zeros\"} : f64[2]\n"))
GRADCHECK(g_lstm, -1, 1,
          RECURRENT("lstm(%2, %3, %7, %4, %5, %6)",
                    "%4 = param \"wih\" {init = \"zeros\"} : f64[2, 8]\n"
                    "%5 = param \"whh\" {init = \"zeros\"} : f64[2, 8]\n"
                    "%6 = param \"b\" {init = \"zeros\"} : f64[8]\n"
                    "%7 = param \"c0\" {init = \"zeros\"} : f64[2, 2]\n"))
GRADCHECK(g_gru, -1, 1,
          RECURRENT("gru(%2, %3, %4, %5, %6, %7)",
                    "%4 = param \"wih\" {init = \"zeros\"} : f64[2, 6]\n"
                    "%5 = param \"whh\" {init = \"zeros\"} : f64[2, 6]\n"
                    "%6 = param \"bih\" {init = \"zeros\"} : f64[6]\n"
                    "%7 = param \"bhh\" {init = \"zeros\"} : f64[6]\n"))
/* h0 and c0 the same node: its two adjoints add up, once */
GRADCHECK(g_lstm_shared_state, -1, 1,
          RECURRENT("lstm(%2, %3, %3, %4, %5, %6)",
                    "%4 = param \"wih\" {init = \"zeros\"} : f64[2, 8]\n"
                    "%5 = param \"whh\" {init = \"zeros\"} : f64[2, 8]\n"
                    "%6 = param \"b\" {init = \"zeros\"} : f64[8]\n"))

GRADCHECK(g_dropout, -2, 2,
          "%0 = param \"w\" {init = \"zeros\"} : f64[2, 3]\n"
          "%1 = input \"r\" : f64[B, 2, 3]\n"
          "%2 = mul(%1, %0) : ?\n"
          "%3 = dropout(%2) {p = 0.25} : ?\n"
          "%4 = square(%3) : ?\n"
          "%5 = dropout(%4) {p = 0.5} : ?\n"
          "%6 = sum(%5) : ?\n"
          "train %6 with sgd {lr = 0.1}\n")

/* a small MLP end to end, with f32 one_hot cast to f64 in the gradient */
GRADCHECK(g_mlp, -1, 1,
          "%0 = input \"x\" : f64[B, 4]\n"
          "%1 = input \"y\" : i32[B]\n"
          "%2 = param \"w1\" {init = \"zeros\"} : f64[4, 5]\n"
          "%3 = param \"b1\" {init = \"zeros\"} : f64[5]\n"
          "%4 = param \"w2\" {init = \"zeros\"} : f64[5, 3]\n"
          "%5 = param \"b2\" {init = \"zeros\"} : f64[3]\n"
          "%6 = matmul(%0, %2) : ?\n"
          "%7 = add(%6, %3) : ?\n"
          "%8 = tanh(%7) : ?\n"
          "%9 = matmul(%8, %4) : ?\n"
          "%10 = add(%9, %5) : ?\n"
          "%11 = cross_entropy(%10, %1) : ?\n"
          "train %11 with sgd {lr = 0.1}\n")

GROUP(gradcheck, NULL, NULL);

/* one gradient check per op */
__attribute__((constructor)) static void register_gradchecks(void)
{
    const TTest *checks[] = {
        g_add,
        g_sub,
        g_mul,
        g_div,
        g_pow,
        g_maximum,
        g_minimum,
        g_neg,
        g_sqrt,
        g_rsqrt,
        g_exp,
        g_log,
        g_abs,
        g_square,
        g_clamp,
        g_relu,
        g_leaky_relu,
        g_elu,
        g_sigmoid,
        g_tanh,
        g_gelu,
        g_gelu_tanh,
        g_silu,
        g_softplus,
        g_sin,
        g_cos,
        g_tril,
        g_triu,
        g_where,
        g_gather,
        g_take,
        g_softmax,
        g_log_softmax,
        g_reshape,
        g_transpose,
        g_sum_axis,
        g_mean_axis,
        g_max_axis,
        g_min_axis,
        g_var_axis,
        g_slice,
        g_broadcast_to,
        g_reductions_all,
        g_matmul,
        g_matmul_numpy,
        g_matmul_batched,
        g_layout,
        g_slice_update,
        g_cross_entropy_mean,
        g_cross_entropy_sum,
        g_cross_entropy_none,
        g_nll_loss,
        g_cross_entropy_spatial,
        g_cross_entropy_unbatched,
        g_mse,
        g_mse_none,
        g_l1_loss,
        g_bce,
        g_smooth_l1,
        g_smooth_l1_beta0,
        g_huber,
        g_global_pools,
        g_layer_norm,
        g_embedding,
        g_cast,
        g_conv2d,
        g_conv2d_input,
        g_conv_transpose2d,
        g_pools,
        g_batch_norm,
        g_attention,
        g_attention_masked,
        g_rnn,
        g_lstm,
        g_gru,
        g_lstm_shared_state,
        g_dropout,
        g_mlp,
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++)
        unit_register((UnitTest){&unit_group_gradcheck, checks[i], 0, 0});
}
