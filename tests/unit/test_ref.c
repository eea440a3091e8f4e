/*
 * The execution tests' reference interpreter (tests/exec/ref.c), checked
 * on small graphs whose results are worked out by hand in each case.
 *
 * A case writes its graph in the textual IR (types left '?'), which
 * load() reads and shape-checks so the canonical attributes are those the
 * compiler sees; in() gives a source its values, run() evaluates, and
 * expect() compares an output with the hand-computed numbers.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checklib.h"
#include "ir.h"
#include "passes.h"
#include "ref.h"

static Arena *A;
static Graph *G;
static RefTensor *V;
static int64_t BATCH;

static void load(int64_t batch, const char *body)
{
    A = arena_new();
    char *text = arena_printf(A, "dlc-ir 1\nmodel t batch B <= 8\n%send\n", body);
    int f = diag_add_source("test.ir", text, strlen(text));
    G = ir_read(A, f);
    ck_assert_ptr_nonnull(G);
    ck_assert(pass_shape(G));
    ck_assert_int_eq(diag_errors(), 0);
    V = calloc((size_t)G->nodes.n, sizeof *V);
    BATCH = batch;
}

static void done(void)
{
    ref_values_free(G, V);
    free(V);
    diag_reset();
    arena_free(A);
}

static void in(const char *name, const double *v, int64_t n)
{
    Node *s = ir_find_source(G, name);
    ck_assert_ptr_nonnull(s);
    RefTensor *t = &V[s->id];
    ref_tensor_alloc(t, s, BATCH);
    ck_assert_int_eq(t->count, n);
    memcpy(t->v, v, (size_t)n * sizeof(double));
}

static void run(void)
{
    char err[256] = "";
    ck_assert_msg(ref_eval(G, BATCH, V, false, err, sizeof err), "%s", err);
}

static const RefTensor *output(const char *name)
{
    for (int i = 0; i < G->outputs.n; i++)
        if (strcmp(G->outputs.v[i].name, name) == 0)
            return &V[G->outputs.v[i].node->id];
    ck_abort_msg("no output %s", name);
    return NULL;
}

/* Output name has the extents dims (rank entries) and the values want
 * (NaN where want is NaN). */
static void expect(const char *name, int rank, const int64_t *dims, const double *want, int64_t n)
{
    const RefTensor *t = output(name);
    ck_assert_int_eq(t->rank, rank);
    for (int i = 0; i < rank; i++)
        ck_assert_int_eq(t->dim[i], dims[i]);
    ck_assert_int_eq(t->count, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(isnan(want[i]) ? isnan(t->v[i])
                                     : fabs(t->v[i] - want[i]) <= 1e-12 * (1 + fabs(want[i])),
                      "%s[%lld] = %.17g, want %.17g", name, (long long)i, t->v[i], want[i]);
}

#define D(...) ((const int64_t[]){__VA_ARGS__})
#define F(...) ((const double[]){__VA_ARGS__})
#define LEN(...) ((int64_t)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double)))
#define IN(name, ...) in(name, F(__VA_ARGS__), LEN(__VA_ARGS__))
#define EXPECT(name, rank, dims, ...) expect(name, rank, dims, F(__VA_ARGS__), LEN(__VA_ARGS__))

SUITE("ref");
GROUP(ops, NULL, NULL);

TEST(ops, broadcast_arith)
{
    /* [B, 2, 1] + [3] -> [B, 2, 3] at B = 2; [2, 1] ** [3] */
    load(2, "%0 = input \"x\" : f32[B, 2, 1]\n"
            "%1 = input \"y\" : f32[3]\n"
            "%2 = add(%0, %1) : ?\n"
            "%3 = input \"p\" : f32[2, 1]\n"
            "%4 = pow(%3, %1) : ?\n"
            "%5 = const {value = 2.0} : ?\n"
            "%6 = sub(%5, %1) : ?\n"
            "%7 = maximum(%3, %1) : ?\n"
            "output \"add\" = %2\n"
            "output \"pow\" = %4\n"
            "output \"rsub\" = %6\n"
            "output \"max\" = %7\n");
    IN("x", 1, 2, 3, 4);
    IN("y", 10, 20, 30);
    IN("p", 2, 3);
    run();
    EXPECT("add", 3, D(2, 2, 3), 11, 21, 31, 12, 22, 32, 13, 23, 33, 14, 24, 34);
    /* 2^10, 2^20, 2^30; 3^10, 3^20, 3^30 */
    EXPECT("pow", 2, D(2, 3), 1024, 1048576, 1073741824, 59049, 3486784401.0, 205891132094649.0);
    EXPECT("rsub", 1, D(3), -8, -18, -28);
    EXPECT("max", 2, D(2, 3), 10, 20, 30, 10, 20, 30);
    done();
}
END_TEST

TEST(ops, activations)
{
    load(1, "%0 = input \"x\" : f32[4]\n"
            "%1 = gelu(%0) : ?\n"
            "%2 = gelu(%0) {approximate = \"tanh\"} : ?\n"
            "%3 = leaky_relu(%0) {alpha = 0.5} : ?\n"
            "%4 = elu(%0) {alpha = 2.0} : ?\n"
            "%5 = clamp(%0) {lo = -0.5, hi = 0.5} : ?\n"
            "%6 = sigmoid(%0) : ?\n"
            "%7 = softplus(%0) : ?\n"
            "output \"gelu\" = %1\n"
            "output \"gelu_tanh\" = %2\n"
            "output \"leaky\" = %3\n"
            "output \"elu\" = %4\n"
            "output \"clamp\" = %5\n"
            "output \"sigmoid\" = %6\n"
            "output \"softplus\" = %7\n");
    IN("x", 0, 1, -1, 100);
    run();
    /* x * Phi(x): Phi(1) = 0.8413447460685429, Phi(-1) = 1 - Phi(1) */
    EXPECT("gelu", 1, D(4), 0, 0.8413447460685429, -(1 - 0.8413447460685429), 100);
    /* 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906082768 */
    EXPECT("gelu_tanh", 1, D(4), 0, 0.8411919906082768, -(1 - 0.8411919906082768), 100);
    EXPECT("leaky", 1, D(4), 0, 1, -0.5, 100);
    EXPECT("elu", 1, D(4), 0, 1, 2 * (exp(-1) - 1), 100);
    EXPECT("clamp", 1, D(4), 0, 0.5, -0.5, 0.5);
    EXPECT("sigmoid", 1, D(4), 0.5, 1 / (1 + exp(-1)), 1 / (1 + exp(1)), 1);
    EXPECT("softplus", 1, D(4), log(2), log(1 + exp(1)), log(1 + exp(-1)), 100);
    done();
}
END_TEST

TEST(ops, softmax_axis0)
{
    load(1, "%0 = input \"x\" : f32[2, 2]\n"
            "%1 = softmax(%0) {axis = 0} : ?\n"
            "%2 = log_softmax(%0) {axis = -1} : ?\n"
            "output \"sm\" = %1\n"
            "output \"lsm\" = %2\n");
    /* column 0: (0, ln 3) -> (1/4, 3/4); column 1: (5, 5) -> (1/2, 1/2) */
    IN("x", 0, 5, log(3), 5);
    run();
    EXPECT("sm", 2, D(2, 2), 0.25, 0.5, 0.75, 0.5);
    /* row 0: (0, 5) -> (-5 - ln(1 + e^-5), -ln(1 + e^-5)) */
    double l = log(1 + exp(-5));
    EXPECT("lsm", 2, D(2, 2), -5 - l, -l, -log(1 + 3 / exp(5)) - (5 - log(3)),
           -log(1 + 3 / exp(5)));
    done();
}
END_TEST

TEST(ops, matmul_numpy)
{
    load(2, "%0 = input \"a\" : f32[2, 3]\n"
            "%1 = input \"b\" : f32[3, 2]\n"
            "%2 = matmul(%0, %1) : ?\n"
            "%3 = input \"v\" : f32[3]\n"
            "%4 = matmul(%3, %1) : ?\n"
            "%5 = matmul(%0, %3) : ?\n"
            "%6 = input \"s\" : f32[B, 1, 2, 3]\n"
            "%7 = matmul(%6, %1) : ?\n"
            "output \"mm\" = %2\n"
            "output \"vm\" = %4\n"
            "output \"mv\" = %5\n"
            "output \"bmm\" = %7\n");
    IN("a", 1, 2, 3, 4, 5, 6);
    IN("b", 1, 0, 0, 1, 1, 1);
    IN("v", 1, 1, 2);
    IN("s", 1, 2, 3, 4, 5, 6, 0, 0, 1, 1, 0, 0);
    run();
    EXPECT("mm", 2, D(2, 2), 4, 5, 10, 11);
    EXPECT("vm", 1, D(2), 3, 3);
    EXPECT("mv", 1, D(2), 9, 21);
    EXPECT("bmm", 4, D(2, 1, 2, 2), 4, 5, 10, 11, 1, 1, 1, 0);
    done();
}
END_TEST

TEST(ops, reductions)
{
    load(1, "%0 = input \"x\" : f32[2, 3]\n"
            "%1 = sum(%0) {axis = [-1], keepdims = true} : ?\n"
            "%2 = mean(%0) : ?\n"
            "%3 = max(%0) {axis = [0]} : ?\n"
            "%4 = min(%0) {axis = [0, 1]} : ?\n"
            "%5 = var(%0) {axis = [1]} : ?\n"
            "%6 = var(%0) {axis = [1], correction = 0} : ?\n"
            "%7 = argmax(%0) {axis = 1} : ?\n"
            "%8 = argmax(%0) : ?\n"
            "output \"sum\" = %1\n"
            "output \"mean\" = %2\n"
            "output \"max\" = %3\n"
            "output \"min\" = %4\n"
            "output \"var\" = %5\n"
            "output \"var0\" = %6\n"
            "output \"am\" = %7\n"
            "output \"amall\" = %8\n");
    IN("x", 1, 5, 3, 9, -2, 9);
    run();
    EXPECT("sum", 2, D(2, 1), 9, 16);
    EXPECT("mean", 0, D(0), 25.0 / 6);
    EXPECT("max", 1, D(3), 9, 5, 9);
    EXPECT("min", 0, D(0), -2);
    /* row 0: mean 3, squares 4 + 4 + 0 = 8; row 1: mean 16/3, squares 121/9 * 2 + 484/9 */
    EXPECT("var", 1, D(2), 4, (2 * 121.0 / 9 + 484.0 / 9) / 2);
    EXPECT("var0", 1, D(2), 8.0 / 3, (2 * 121.0 / 9 + 484.0 / 9) / 3);
    /* ties: the first maximum */
    EXPECT("am", 1, D(2), 1, 0);
    EXPECT("amall", 0, D(0), 3);
    done();
}
END_TEST

TEST(ops, layout)
{
    load(1, "%0 = input \"x\" : f32[2, 3]\n"
            "%1 = transpose(%0) : ?\n"
            "%2 = input \"y\" : f32[2, 1]\n"
            "%3 = concat(%0, %2) {axis = -1} : ?\n"
            "%4 = stack(%0, %0) {axis = 1} : ?\n"
            "%5 = broadcast_to(%2) {shape = [2, 2]} : ?\n"
            "%6 = reshape(%0) {shape = [3, -1]} : ?\n"
            "%7 = input \"l\" : i32[3]\n"
            "%8 = one_hot(%7) {n = 3} : ?\n"
            "%9 = ones {shape = [2]} : ?\n"
            "output \"t\" = %1\n"
            "output \"cat\" = %3\n"
            "output \"stack\" = %4\n"
            "output \"bt\" = %5\n"
            "output \"rs\" = %6\n"
            "output \"oh\" = %8\n"
            "output \"ones\" = %9\n");
    IN("x", 1, 2, 3, 4, 5, 6);
    IN("y", 7, 8);
    IN("l", 2, -1, 0);
    run();
    EXPECT("t", 2, D(3, 2), 1, 4, 2, 5, 3, 6);
    EXPECT("cat", 2, D(2, 4), 1, 2, 3, 7, 4, 5, 6, 8);
    EXPECT("stack", 3, D(2, 2, 3), 1, 2, 3, 1, 2, 3, 4, 5, 6, 4, 5, 6);
    EXPECT("bt", 2, D(2, 2), 7, 7, 8, 8);
    EXPECT("rs", 2, D(3, 2), 1, 2, 3, 4, 5, 6);
    /* an out-of-range label gives a zero row */
    EXPECT("oh", 2, D(3, 3), 0, 0, 1, 0, 0, 0, 1, 0, 0);
    EXPECT("ones", 1, D(2), 1, 1);
    done();
}
END_TEST

TEST(ops, slices)
{
    /* x[:, ::-2] on [B, 5] (canonical: begin 4, end none, step -2),
     * x[:, 1] and x[:, 1:4] = v (broadcast [1]) */
    load(2, "%0 = input \"x\" : f32[B, 5]\n"
            "%1 = slice(%0) {begin = [none, none], end = [none, none], step = [none, -2], "
            "squeeze = []} : ?\n"
            "%2 = slice(%0) {begin = [none, 1], end = [none, none], step = [none, none], "
            "squeeze = [1]} : ?\n"
            "%3 = input \"v\" : f32[1]\n"
            "%4 = slice_update(%0, %3) {begin = [none, 1], end = [none, 4], step = [none, 2], "
            "squeeze = []} : ?\n"
            "output \"rev\" = %1\n"
            "output \"pick\" = %2\n"
            "output \"upd\" = %4\n");
    IN("x", 0, 1, 2, 3, 4, 5, 6, 7, 8, 9);
    IN("v", -1);
    run();
    EXPECT("rev", 2, D(2, 3), 4, 2, 0, 9, 7, 5);
    EXPECT("pick", 1, D(2), 1, 6);
    EXPECT("upd", 2, D(2, 5), 0, -1, 2, -1, 4, 5, -1, 7, -1, 9);
    done();
}
END_TEST

TEST(ops, losses)
{
    load(2, "%0 = input \"x\" : f32[B, 2]\n"
            "%1 = input \"y\" : i32[B]\n"
            "%2 = cross_entropy(%0, %1) : ?\n"
            "%3 = cross_entropy(%0, %1) {reduction = \"none\"} : ?\n"
            "%4 = nll_loss(%0, %1) {reduction = \"sum\"} : ?\n"
            "%5 = input \"p\" : f32[2, 2]\n"
            "%6 = input \"t\" : f32[2, 2]\n"
            "%7 = binary_cross_entropy(%5, %6) {reduction = \"none\"} : ?\n"
            "%8 = smooth_l1_loss(%5, %6) {reduction = \"none\"} : ?\n"
            "%9 = smooth_l1_loss(%5, %6) {beta = 0.0, reduction = \"sum\"} : ?\n"
            "%10 = huber_loss(%5, %6) {delta = 2.0, reduction = \"none\"} : ?\n"
            "%11 = mse(%5, %6) : ?\n"
            "%12 = l1_loss(%5, %6) {reduction = \"sum\"} : ?\n"
            "output \"ce\" = %2\n"
            "output \"ce_none\" = %3\n"
            "output \"nll\" = %4\n"
            "output \"bce\" = %7\n"
            "output \"sl1\" = %8\n"
            "output \"l1b0\" = %9\n"
            "output \"huber\" = %10\n"
            "output \"mse\" = %11\n"
            "output \"l1\" = %12\n");
    /* row 0: equal logits, label 0 -> ln 2; row 1: (0, ln 3) label 1 -> p = 3/4 */
    IN("x", 1, 1, 0, log(3));
    IN("y", 0, 1);
    /* differences p - t: 0.5, -3, 1, 0 */
    IN("p", 0, log(3), 1, 2);
    double t1 = log(3) + 3;
    IN("t", -0.5, t1, 0, 2);
    run();
    EXPECT("ce", 0, D(0), (log(2) + log(4.0 / 3)) / 2);
    EXPECT("ce_none", 1, D(2), log(2), log(4.0 / 3));
    EXPECT("nll", 0, D(0), -1 - log(3));
    /* -(t log s(x) + (1 - t) log(1 - s(x))): x = 0 -> ln 2 whatever t;
     * x = ln 3, s(x) = 3/4, t = t1 -> -(t1 ln(3/4) + (1 - t1) ln(1/4)); x = 1, t = 0 -> ln(1 + e);
     * x = 2, t = 2 -> -(2 ln s(2) - ln(1 - s(2))) = 2 ln(1 + e^-2) - ln(1 + e^2) */
    EXPECT("bce", 2, D(2, 2), log(2), -(t1 * log(0.75) + (1 - t1) * log(0.25)), log(1 + exp(1)),
           2 * log(1 + exp(-2)) - log(1 + exp(2)));
    /* beta 1: 0.5 d^2 below 1, |d| - 0.5 from 1 */
    EXPECT("sl1", 2, D(2, 2), 0.125, 2.5, 0.5, 0);
    EXPECT("l1b0", 0, D(0), 4.5);
    /* delta 2: 0.5 d^2 up to 2, 2 (|d| - 1) above */
    EXPECT("huber", 2, D(2, 2), 0.125, 4, 0.5, 0);
    EXPECT("mse", 0, D(0), (0.25 + 9 + 1) / 4);
    EXPECT("l1", 0, D(0), 4.5);
    done();
}
END_TEST

TEST(ops, soft_losses)
{
    load(2, "%0 = input \"x\" : f32[B, 3]\n"
            "%1 = input \"q\" : f32[B, 3]\n"
            "%2 = input \"y\" : i32[B]\n"
            "%3 = cross_entropy(%0, %1) {reduction = \"none\"} : ?\n"
            "%4 = kl_div(%0, %1) {reduction = \"batchmean\"} : ?\n"
            "%5 = kl_div(%0, %1) {reduction = \"none\", log_target = true} : ?\n"
            "%6 = multi_margin_loss(%0, %2) {reduction = \"none\"} : ?\n"
            "%7 = multi_margin_loss(%0, %2) {p = 2.0, margin = 0.5, reduction = \"sum\"} : ?\n"
            "output \"ce\" = %3\n"
            "output \"kl\" = %4\n"
            "output \"kl_log\" = %5\n"
            "output \"mm\" = %6\n"
            "output \"mm2\" = %7\n");
    /* row 0: x = log(1, 2, 1), softmax (1/4, 1/2, 1/4); row 1: x = (0, 1, -1) */
    IN("x", 0, log(2), 0, 0, 1, -1);
    IN("q", 0.5, 0.5, 0, 0, 1, 0);
    IN("y", 1, 0);
    run();
    /* -sum q log softmax: row 0 -(0.5 ln 1/4 + 0.5 ln 1/2); row 1 lse - 1 */
    double lse1 = log(1 + exp(1) + exp(-1));
    EXPECT("ce", 1, D(2), 0.5 * log(4) + 0.5 * log(2), lse1 - 1);
    /* sum of q ln q - q x over both rows, / 2; q = 0 adds nothing */
    EXPECT("kl", 0, D(0), (2 * 0.5 * log(0.5) - 0.5 * log(2) + 0 - 1) / 2);
    /* e^q (q - x) */
    EXPECT("kl_log", 2, D(2, 3), exp(0.5) * 0.5, exp(0.5) * (0.5 - log(2)), 0, 0, exp(1) * 0, 1);
    /* row 0, y = 1: (max(0, 1 - ln 2 + 0) * 2) / 3; row 1, y = 0: (2 + 0) / 3 */
    EXPECT("mm", 1, D(2), 2 * (1 - log(2)) / 3, 2.0 / 3);
    /* margin 0.5, squared: row 0 2 (0.5 - ln 2)^+ = 0; row 1 (1.5^2 + 0) / 3 */
    EXPECT("mm2", 0, D(0), 2.25 / 3);
    done();
}
END_TEST

TEST(ops, adaptive_pool)
{
    load(1, "%0 = input \"x\" : f32[B, 1, 3, 2]\n"
            "%1 = adaptive_avg_pool2d(%0) {output_size = [2, 1]} : ?\n"
            "%2 = adaptive_max_pool2d(%0) {output_size = [2, 3]} : ?\n"
            "%3 = input \"dy\" : f32[B, 1, 2, 1]\n"
            "%4 = adaptive_avg_pool2d_grad(%0, %3) : ?\n"
            "%5 = adaptive_max_pool2d_grad(%0, %3) : ?\n"
            "output \"avg\" = %1\n"
            "output \"max\" = %2\n"
            "output \"davg\" = %4\n"
            "output \"dmax\" = %5\n");
    IN("x", 1, 2, 3, 4, 5, 6);
    IN("dy", 10, 100);
    run();
    /* 3 rows to 2: rows 0-1 and 1-2 (overlapping); 2 columns to 1: both */
    EXPECT("avg", 4, D(1, 1, 2, 1), 2.5, 4.5);
    /* 2 columns to 3: 0, 0-1, 1 */
    EXPECT("max", 4, D(1, 1, 2, 3), 3, 4, 4, 5, 6, 6);
    /* each window's dy / 4 to its 4 inputs; row 1 is in both windows */
    EXPECT("davg", 4, D(1, 1, 3, 2), 2.5, 2.5, 27.5, 27.5, 25, 25);
    /* to the maxima 4 and 6 */
    EXPECT("dmax", 4, D(1, 1, 3, 2), 0, 0, 0, 10, 0, 100);
    done();
}
END_TEST

TEST(ops, backward_eltwise)
{
    load(1, "%0 = input \"x\" : f32[4]\n"
            "%1 = input \"y\" : f32[4]\n"
            "%2 = input \"big\" : f32[4]\n"
            "%3 = gt(%0, %1) : ?\n"
            "%4 = ge(%0, %1) : ?\n"
            "%5 = eq(%0, %1) : ?\n"
            "%6 = sign(%0) : ?\n"
            "%7 = cast(%2) {to = \"i32\"} : ?\n"
            "%8 = const {value = 2.0} : ?\n"
            "%9 = gelu_grad(%0, %8) : ?\n"
            "%10 = gelu_grad(%0, %8) {approximate = \"tanh\"} : ?\n"
            "%11 = elu_grad(%0, %8) {alpha = 2.0} : ?\n"
            "%12 = stop_gradient(%2) : ?\n"
            "output \"stop_gradient\" = %12\n"
            "output \"gt\" = %3\n"
            "output \"ge\" = %4\n"
            "output \"eq\" = %5\n"
            "output \"sign\" = %6\n"
            "output \"cast\" = %7\n"
            "output \"gelu_grad\" = %9\n"
            "output \"gelu_grad_tanh\" = %10\n"
            "output \"elu_grad\" = %11\n");
    IN("x", 0, 1, -1, 2.5);
    IN("y", 0, 0.5, -1, 3);
    IN("big", -3.7, 3.7, 1e10, -1e10);
    run();
    EXPECT("gt", 1, D(4), 0, 1, 0, 0);
    EXPECT("ge", 1, D(4), 1, 1, 1, 0);
    EXPECT("eq", 1, D(4), 1, 0, 1, 0);
    EXPECT("sign", 1, D(4), 0, 1, -1, 1);
    EXPECT("stop_gradient", 1, D(4), -3.7, 3.7, 1e10, -1e10);
    /* truncation toward zero, saturating at the i32 range */
    EXPECT("cast", 1, D(4), -3, 3, 2147483647, -2147483648.0);
    /* 2 (Phi(x) + x phi(x)): Phi(1) = 0.8413447460685429, phi(1) = 0.24197072451914337 */
    EXPECT("gelu_grad", 1, D(4), 1, 2.166630941175373, -0.16663094117537258, 2.07522217181629);
    EXPECT("gelu_grad_tanh", 1, D(4), 1, 2.165928167691565, -0.1659281676915651,
           2 * (0.5 * (1 + tanh(sqrt(2 / M_PI) * (2.5 + 0.044715 * 15.625))) +
                0.5 * 2.5 * (1 - pow(tanh(sqrt(2 / M_PI) * (2.5 + 0.044715 * 15.625)), 2)) *
                    sqrt(2 / M_PI) * (1 + 3 * 0.044715 * 6.25)));
    /* x > 0: dy, else dy * alpha * exp(x) */
    EXPECT("elu_grad", 1, D(4), 4, 2, 4 * exp(-1), 2);
    done();
}
END_TEST

TEST(ops, backward_conv)
{
    /* the 2x2 convolution of a 3x3 image, two images: the second all ones */
    load(2, "%0 = input \"x\" : f32[B, 1, 3, 3]\n"
            "%1 = input \"w\" : f32[1, 1, 2, 2]\n"
            "%2 = input \"dy\" : f32[B, 1, 2, 2]\n"
            "%3 = conv_grad_input(%2, %1) {size = [3, 3], stride = [1, 1], padding = [0, 0], "
            "dilation = [1, 1], groups = 1} : ?\n"
            "%4 = conv_grad_weight(%0, %2) {kernel = [2, 2], stride = [1, 1], padding = [0, 0], "
            "dilation = [1, 1], groups = 1} : ?\n"
            "output \"dx\" = %3\n"
            "output \"dw\" = %4\n");
    IN("x", 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    IN("w", 1, 10, 100, 1000);
    IN("dy", 1, 2, 3, 4, 1, 1, 1, 1);
    run();
    /* dx[i, j] = sum dy[y, x] w[i - y, j - x] */
    EXPECT("dx", 4, D(2, 1, 3, 3), 1, 12, 20, 103, 1234, 2040, 300, 3400, 4000, /* */
           1, 11, 10, 101, 1111, 1010, 100, 1100, 1000);
    /* dw[i, j] = sum over images and (y, x) of dy[y, x] x[y + i, x + j]:
     * 37, 47, 67, 77 from the first image, 4 each from the second */
    EXPECT("dw", 4, D(1, 1, 2, 2), 41, 51, 71, 81);
    done();
}
END_TEST

TEST(ops, backward_pool)
{
    /* [[1, 5, 5], [2, 0, -1]]: 2x2 windows, stride 1 (the second window's
     * tie goes to its first 5); stride 2 with padding 1 (windows partly in
     * the padding, which takes no max and its share of the average) */
    load(1,
         "%0 = input \"x\" : f32[1, 1, 2, 3]\n"
         "%1 = input \"dy\" : f32[1, 1, 1, 2]\n"
         "%2 = input \"dyp\" : f32[1, 1, 2, 2]\n"
         "%3 = max_pool2d_grad(%0, %1) {kernel = [2, 2], stride = [1, 1], padding = [0, 0]} : ?\n"
         "%4 = max_pool2d_grad(%0, %2) {kernel = [2, 2], stride = [2, 2], padding = [1, 1]} : ?\n"
         "%5 = avg_pool2d_grad(%0, %2) {kernel = [2, 2], stride = [2, 2], padding = [1, 1]} : ?\n"
         "output \"max\" = %3\n"
         "output \"max_pad\" = %4\n"
         "output \"avg_pad\" = %5\n");
    IN("x", 1, 5, 5, 2, 0, -1);
    IN("dy", 10, 20);
    IN("dyp", 1, 2, 3, 4);
    run();
    EXPECT("max", 4, D(1, 1, 2, 3), 0, 30, 0, 0, 0, 0);
    EXPECT("max_pad", 4, D(1, 1, 2, 3), 1, 2, 0, 3, 4, 0);
    EXPECT("avg_pad", 4, D(1, 1, 2, 3), 0.25, 0.5, 0.5, 0.75, 1, 1);
    done();
}
END_TEST

TEST(ops, pool_modes)
{
    /* x = [1, 2, 3, 4], windows of 3 columns, stride 2, padding 1, by hand
     * as PyTorch's avg_pool2d / max_pool2d compute them. ceil_mode adds a
     * third window, columns 3..5: column 4 is padding, column 5 past it.
     * count_include_pad divides by the columns up to the padded end (3, 3,
     * 2), without it by the input's (2, 3, 1). */
    load(1, "%0 = input \"x\" : f32[1, 1, 1, 4]\n"
            "%1 = avg_pool2d(%0) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "ceil_mode = true} : ?\n"
            "%2 = avg_pool2d(%0) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "ceil_mode = true, count_include_pad = false} : ?\n"
            "%3 = avg_pool2d(%0) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "count_include_pad = false} : ?\n"
            "%4 = max_pool2d(%0) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "ceil_mode = true} : ?\n"
            "%5 = input \"dy\" : f32[1, 1, 1, 3]\n"
            "%6 = avg_pool2d_grad(%0, %5) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "ceil_mode = true} : ?\n"
            "%7 = avg_pool2d_grad(%0, %5) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "ceil_mode = true, count_include_pad = false} : ?\n"
            "%8 = max_pool2d_grad(%0, %5) {kernel = [1, 3], stride = [1, 2], padding = [0, 1], "
            "ceil_mode = true} : ?\n"
            "output \"avg_ceil\" = %1\n"
            "output \"avg_ceil_nopad\" = %2\n"
            "output \"avg_nopad\" = %3\n"
            "output \"max_ceil\" = %4\n"
            "output \"davg_ceil\" = %6\n"
            "output \"davg_ceil_nopad\" = %7\n"
            "output \"dmax_ceil\" = %8\n");
    IN("x", 1, 2, 3, 4);
    IN("dy", 6, 12, 30);
    run();
    EXPECT("avg_ceil", 4, D(1, 1, 1, 3), 3.0 / 3, 9.0 / 3, 4.0 / 2);
    EXPECT("avg_ceil_nopad", 4, D(1, 1, 1, 3), 3.0 / 2, 9.0 / 3, 4.0 / 1);
    EXPECT("avg_nopad", 4, D(1, 1, 1, 2), 3.0 / 2, 9.0 / 3);
    EXPECT("max_ceil", 4, D(1, 1, 1, 3), 2, 4, 4);
    /* dy / divisor to each input column of the window */
    EXPECT("davg_ceil", 4, D(1, 1, 1, 4), 6.0 / 3, 6.0 / 3 + 12.0 / 3, 12.0 / 3,
           12.0 / 3 + 30.0 / 2);
    EXPECT("davg_ceil_nopad", 4, D(1, 1, 1, 4), 6.0 / 2, 6.0 / 2 + 12.0 / 3, 12.0 / 3,
           12.0 / 3 + 30.0 / 1);
    EXPECT("dmax_ceil", 4, D(1, 1, 1, 4), 0, 6, 0, 42);
    done();
}
END_TEST

TEST(ops, pool1d)
{
    /* pool_modes' windows on [N, C, L]: x = [1, 2, 3, NaN], windows of 3,
     * stride 2, padding 1, ceil_mode: columns -1..1, 1..3 and 3..5; the max
     * takes the NaN over (PyTorch's), its gradient goes to the NaN */
    load(1, "%0 = input \"x\" : f32[1, 1, 4]\n"
            "%1 = avg_pool1d(%0) {kernel = [3], stride = [2], padding = [1], "
            "ceil_mode = true, count_include_pad = false} : ?\n"
            "%2 = max_pool1d(%0) {kernel = [3], stride = [2], padding = [1], "
            "ceil_mode = true} : ?\n"
            "%3 = input \"dy\" : f32[1, 1, 3]\n"
            "%4 = max_pool2d_grad(%0, %3) {kernel = [3], stride = [2], padding = [1], "
            "ceil_mode = true} : ?\n"
            "%5 = avg_pool2d_grad(%0, %3) {kernel = [3], stride = [2], padding = [1], "
            "ceil_mode = true} : ?\n"
            "output \"avg\" = %1\n"
            "output \"max\" = %2\n"
            "output \"dmax\" = %4\n"
            "output \"davg\" = %5\n");
    IN("x", 1, 2, 3, NAN);
    IN("dy", 6, 12, 30);
    run();
    EXPECT("avg", 3, D(1, 1, 3), 3.0 / 2, NAN, NAN);
    EXPECT("max", 3, D(1, 1, 3), 2, NAN, NAN);
    EXPECT("dmax", 3, D(1, 1, 4), 0, 6, 0, 42);
    EXPECT("davg", 3, D(1, 1, 4), 6.0 / 3, 6.0 / 3 + 12.0 / 3, 12.0 / 3, 12.0 / 3 + 30.0 / 2);
    done();
}
END_TEST

TEST(ops, upsample)
{
    /* x = [[1, 2], [3, 4]] to 4 columns (rows kept), by hand as PyTorch's
     * interpolate computes them: nearest repeats each column; bilinear's
     * source column (o + 1/2) / 2 - 1/2 is -1/4 (taken as 0), 1/4, 3/4,
     * 5/4 (the last column again past the end); align_corners o / 3. */
    load(1, "%0 = input \"x\" : f32[1, 1, 2, 2]\n"
            "%1 = upsample(%0) {size = [2, 4]} : ?\n"
            "%2 = upsample(%0) {size = [2, 4], mode = \"bilinear\"} : ?\n"
            "%3 = upsample(%0) {size = [2, 4], mode = \"bilinear\", align_corners = true} : ?\n"
            "%4 = upsample(%0) {scale = [2, 1], mode = \"bilinear\"} : ?\n"
            "%5 = input \"dy\" : f32[1, 1, 2, 4]\n"
            "%6 = upsample_grad(%0, %5) {mode = \"bilinear\"} : ?\n"
            "%7 = upsample_grad(%0, %5) : ?\n"
            "output \"nearest\" = %1\n"
            "output \"bilinear\" = %2\n"
            "output \"corners\" = %3\n"
            "output \"rows\" = %4\n"
            "output \"dbilinear\" = %6\n"
            "output \"dnearest\" = %7\n");
    IN("x", 1, 2, 3, 4);
    IN("dy", 1, 2, 3, 4, 10, 20, 30, 40);
    run();
    EXPECT("nearest", 4, D(1, 1, 2, 4), 1, 1, 2, 2, 3, 3, 4, 4);
    EXPECT("bilinear", 4, D(1, 1, 2, 4), 1, 1.25, 1.75, 2, 3, 3.25, 3.75, 4);
    EXPECT("corners", 4, D(1, 1, 2, 4), 1, 4.0 / 3, 5.0 / 3, 2, 3, 10.0 / 3, 11.0 / 3, 4);
    /* rows: source -1/4 (0), 1/4, 3/4, 5/4 of [1, 3] and [2, 4] */
    EXPECT("rows", 4, D(1, 1, 4, 2), 1, 2, 1.5, 2.5, 2.5, 3.5, 3, 4);
    /* column 0 gets dy0 + 3/4 dy1 + 1/4 dy2, column 1 the rest */
    EXPECT("dbilinear", 4, D(1, 1, 2, 2), 1 + 1.5 + 0.75, 0.5 + 2.25 + 4, 10 + 15 + 7.5,
           5 + 22.5 + 40);
    EXPECT("dnearest", 4, D(1, 1, 2, 2), 3, 7, 30, 70);
    done();
}
END_TEST

TEST(ops, unset_input)
{
    char err[256] = "";
    load(1, "%0 = input \"x\" : f32[2]\n"
            "%1 = exp(%0) : ?\n"
            "output \"e\" = %1\n");
    ck_assert(!ref_eval(G, 1, V, false, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "\"x\": no value given"));
    done();
}
END_TEST

/* ---- loops (tests/exec/ref_loop.c) ---------------------------------- */

GROUP(loops, NULL, NULL);

/* A loop's attributes: trips, the counts, then the scan lists. */
#define LOOP_ATTRS(trips, c, st, sc, axes, starts, steps)                                          \
    "{trips = " #trips ", carried = " #c ", stacked = " #st ", scanned = " #sc                     \
    ", scan_axis = " axes ", scan_start = " starts ", scan_step = " steps "}"

TEST(loops, cumulative_sum)
{
    /* s += x_t over xs = 1, 2, 3, 4; ys[t] = s: the running sums */
    load(1, "%0 = input \"s0\" : f32[]\n"
            "%1 = input \"ys0\" : f32[4]\n"
            "%2 = input \"xs\" : f32[4]\n"
            "%3 = loop(%0, %1, %2) " LOOP_ATTRS(4, 1, 1, 1, "[0, 0]", "[0, 0]", "[1, 1]") " : ? {\n"
            "  %0 = input \"s\" : ?\n"
            "  %1 = input \"x\" : ?\n"
            "  %2 = add(%0, %1) : ?\n"
            "  output \"s\" = %2\n"
            "  output \"y\" = %2\n"
            "}\n"
            "%4 = loop_result(%3) {index = 0} : ?\n"
            "%5 = loop_result(%3) {index = 1} : ?\n"
            "output \"s\" = %4\n"
            "output \"ys\" = %5\n");
    IN("s0", 100);
    IN("ys0", 0, 0, 0, 0);
    IN("xs", 1, 2, 3, 4);
    run();
    EXPECT("s", 0, D(0), 110);
    EXPECT("ys", 1, D(4), 101, 103, 106, 110);
    done();
}
END_TEST

TEST(loops, tiny_rnn)
{
    /* h' = tanh(x_t W + h U) over 3 steps of xs [3, B, 2] at B = 1 */
    load(1, "%0 = input \"h0\" : f32[B, 2]\n"
            "%1 = input \"xs\" : f32[3, B, 2]\n"
            "%2 = input \"W\" : f32[2, 2]\n"
            "%3 = input \"U\" : f32[2, 2]\n"
            "%4 = loop(%0, %1, %1, %2, %3) " LOOP_ATTRS(3, 1, 1, 1, "[0, 0]", "[0, 0]", "[1, 1]")
            " : ? {\n"
            "  %0 = input \"h\" : ?\n"
            "  %1 = input \"x\" : ?\n"
            "  %2 = input \"W\" : ?\n"
            "  %3 = input \"U\" : ?\n"
            "  %4 = matmul(%1, %2) : ?\n"
            "  %5 = matmul(%0, %3) : ?\n"
            "  %6 = add(%4, %5) : ?\n"
            "  %7 = tanh(%6) : ?\n"
            "  output \"h\" = %7\n"
            "  output \"hs\" = %7\n"
            "}\n"
            "%5 = loop_result(%4) {index = 0} : ?\n"
            "%6 = loop_result(%4) {index = 1} : ?\n"
            "output \"h\" = %5\n"
            "output \"hs\" = %6\n");
    IN("h0", 0.5, -0.5);
    IN("xs", 1, 0, 0, 1, -1, 2);
    IN("W", 0.5, 0, 0, 1);     /* x W = (x0 / 2, x1) */
    IN("U", 0, 1, 1, 0);       /* h U = (h1, h0): swaps */
    run();
    /* by hand: step 0: (0.5 + -0.5, 0 + 0.5); step 1: (0 + h1, 1 + h0); ... */
    double h1[2] = {tanh(0.5 - 0.5), tanh(0 + 0.5)};
    double h2[2] = {tanh(0 + h1[1]), tanh(1 + h1[0])};
    double h3[2] = {tanh(-0.5 + h2[1]), tanh(2 + h2[0])};
    EXPECT("h", 2, D(1, 2), h3[0], h3[1]);
    EXPECT("hs", 3, D(3, 1, 2), h1[0], h1[1], h2[0], h2[1], h3[0], h3[1]);
    done();
}
END_TEST

TEST(loops, reversed_scan)
{
    /* xs read from the end (start 2, step -1): c = 3, 5, 6; ys written
     * forward, zs backward from index 2 */
    load(1, "%0 = input \"c0\" : f64[]\n"
            "%1 = input \"z\" : f64[3]\n"
            "%2 = input \"xs\" : f64[3]\n"
            "%3 = loop(%0, %1, %1, %2) " LOOP_ATTRS(3, 1, 2, 1, "[0, 0, 0]", "[0, 2, 2]",
                                                     "[1, -1, -1]") " : ? {\n"
            "  %0 = input \"c\" : ?\n"
            "  %1 = input \"x\" : ?\n"
            "  %2 = add(%0, %1) : ?\n"
            "  output \"c\" = %2\n"
            "  output \"y\" = %2\n"
            "  output \"z\" = %2\n"
            "}\n"
            "%4 = loop_result(%3) {index = 1} : ?\n"
            "%5 = loop_result(%3) {index = 2} : ?\n"
            "output \"ys\" = %4\n"
            "output \"zs\" = %5\n");
    IN("c0", 0);
    IN("z", 0, 0, 0);
    IN("xs", 1, 2, 3);
    run();
    EXPECT("ys", 1, D(3), 3, 5, 6);
    EXPECT("zs", 1, D(3), 6, 5, 3);
    done();
}
END_TEST

TEST(loops, stacked_initial_value)
{
    /* 2 trips write indices 1 and 3 of ys (start 1, step 2); the others
     * keep the initial 9s. Columns of m (axis 1) are the scanned slices. */
    load(1, "%0 = input \"ys0\" : f32[5, 2]\n"
            "%1 = input \"m\" : f32[2, 2]\n"
            "%2 = input \"k\" : f32[]\n"
            "%3 = loop(%0, %1, %2) " LOOP_ATTRS(2, 0, 1, 1, "[0, 1]", "[1, 0]", "[2, 1]")
            " : ? {\n"
            "  %0 = input \"col\" : ?\n"
            "  %1 = input \"k\" : ?\n"
            "  %2 = mul(%0, %1) : ?\n"
            "  output \"y\" = %2\n"
            "}\n"
            "%4 = loop_result(%3) {index = 0} : ?\n"
            "output \"ys\" = %4\n");
    IN("ys0", 9, 9, 9, 9, 9, 9, 9, 9, 9, 9);
    IN("m", 1, 2, 3, 4); /* columns (1, 3) and (2, 4) */
    IN("k", 10);
    run();
    EXPECT("ys", 2, D(5, 2), 9, 9, 10, 30, 9, 9, 20, 40, 9, 9);
    done();
}
END_TEST

TEST(loops, swapped_carried_values)
{
    /* (a, b) -> (b, a) three times, and (p, q) -> (q, p + q): Fibonacci */
    load(1, "%0 = input \"a\" : f32[2]\n"
            "%1 = input \"b\" : f32[2]\n"
            "%2 = input \"p\" : i32[]\n"
            "%3 = input \"q\" : i32[]\n"
            "%4 = loop(%0, %1, %2, %3) " LOOP_ATTRS(3, 4, 0, 0, "[]", "[]", "[]") " : ? {\n"
            "  %0 = input \"a\" : ?\n"
            "  %1 = input \"b\" : ?\n"
            "  %2 = input \"p\" : ?\n"
            "  %3 = input \"q\" : ?\n"
            "  %4 = add(%2, %3) : ?\n"
            "  output \"a\" = %1\n"
            "  output \"b\" = %0\n"
            "  output \"p\" = %3\n"
            "  output \"q\" = %4\n"
            "}\n"
            "%5 = loop_result(%4) {index = 0} : ?\n"
            "%6 = loop_result(%4) {index = 1} : ?\n"
            "%7 = loop_result(%4) {index = 2} : ?\n"
            "%8 = loop_result(%4) {index = 3} : ?\n"
            "output \"a_out\" = %5\n"
            "output \"b_out\" = %6\n"
            "output \"p_out\" = %7\n"
            "output \"q_out\" = %8\n");
    IN("a", 1, 2);
    IN("b", 3, 4);
    IN("p", 0);
    IN("q", 1);
    run();
    EXPECT("a_out", 1, D(2), 3, 4);
    EXPECT("b_out", 1, D(2), 1, 2);
    EXPECT("p_out", 0, D(0), 2); /* (0,1) (1,1) (1,2) (2,3) */
    EXPECT("q_out", 0, D(0), 3);
    done();
}
END_TEST

TEST(loops, nested)
{
    /* 3 outer trips; each adds v twice (an inner loop of 2) and doubles */
    load(2, "%0 = input \"s\" : f32[B]\n"
            "%1 = input \"v\" : f32[]\n"
            "%2 = loop(%0, %1) " LOOP_ATTRS(3, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
            "  %0 = input \"s\" : ?\n"
            "  %1 = input \"v\" : ?\n"
            "  %2 = loop(%0, %1) " LOOP_ATTRS(2, 1, 0, 0, "[]", "[]", "[]") " : ? {\n"
            "    %0 = input \"t\" : ?\n"
            "    %1 = input \"v\" : ?\n"
            "    %2 = add(%0, %1) : ?\n"
            "    output \"t\" = %2\n"
            "  }\n"
            "  %3 = loop_result(%2) {index = 0} : ?\n"
            "  %4 = add(%3, %3) : ?\n"
            "  output \"s\" = %4\n"
            "}\n"
            "%3 = loop_result(%2) {index = 0} : ?\n"
            "output \"s_out\" = %3\n");
    IN("s", 0, 1);
    IN("v", 1);
    run();
    /* s -> 2 (s + 2): 0 -> 4 -> 12 -> 28; 1 -> 6 -> 16 -> 36 */
    EXPECT("s_out", 1, D(2), 28, 36);
    done();
}
END_TEST

TEST(loops, saved_outputs)
{
    /* s' = 2 s from s = [1, 3]; the saved output is the value each trip
     * starts from, stacked on a new leading axis [3, 2] */
    load(1, "%0 = input \"s\" : f64[2]\n"
            "%1 = loop(%0) {trips = 3, carried = 1, stacked = 0, scanned = 0, saved = 1, "
            "scan_axis = [], scan_start = [], scan_step = []} : ? {\n"
            "  %0 = input \"s\" : ?\n"
            "  %1 = add(%0, %0) : ?\n"
            "  output \"s\" = %1\n"
            "  output \"before\" = %0\n"
            "}\n"
            "%2 = loop_result(%1) {index = 0} : ?\n"
            "%3 = loop_result(%1) {index = 1} : ?\n"
            "output \"s_out\" = %2\n"
            "output \"before\" = %3\n");
    IN("s", 1, 3);
    run();
    EXPECT("s_out", 1, D(2), 8, 24);
    EXPECT("before", 2, D(3, 2), 1, 3, 2, 6, 4, 12);
    done();
}
END_TEST
