/* Training-mode stochastic_pool2d against its definition (pool.dl.in, REAL
 * float or double), from outside the implementation: over T steps with
 * fixed inputs, through the gradients of the all-ones parameters,
 *  - every training output is one of its window's values, one the window
 *    could take (a_i > 0); a window summing to 0 gives 0 and no gradient;
 *  - the backward routes each window's dy to the input its forward took,
 *    adding up where windows overlap (grad w = x * times taken);
 *  - the frequencies match a_i / sum(a): per value over 62 windows holding
 *    {0, 1, 3, 6} (binomial, within 5 standard deviations; 0 never), and a
 *    chi-square over every position of 18 overlapping 3x3 windows (below
 *    df + 5 sqrt(2 df));
 *  - a second compute_gradients in the step takes the same samples (the
 *    gradients double exactly), the next step others; two instances with
 *    one seed take the same ones, another seed others; the loss is the sum
 *    of the samples;
 *  - batch element 0's samples do not depend on the batch size;
 *  - forward and evaluate (inference) are the expectation sum a^2 / sum a.
 * The reference values come from the formulas, not from the runtime. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "spool.h"

enum {
    T = 400,        /* steps */
    NX = 4 * 8 * 8, /* x per batch element */
    NZ = 2 * 7 * 7, /* z per batch element */
    NA = 4 * 4 * 4, /* 2x2 windows of x */
    NB = 2 * 3 * 3, /* 3x3 stride-2 windows of z */
    OFF_W = 0,      /* parameter offsets, declaration order */
    OFF_V = OFF_W + NX,
    OFF_W2 = OFF_V + NA,
    OFF_V2 = OFF_W2 + NZ,
    ZERO_WINDOW = NA - 1, /* x's window that sums to 0 */
    ONE_WINDOW = NA - 2,  /* x's window with a single nonzero value */
    NSTAT = NA - 2,       /* x's windows holding {0, 1, 3, 6} */
};

static int failures;

static void expect(const char *what, int cond)
{
    if (!cond) {
        if (failures < 30)
            fprintf(stderr, "failed: %s\n", what);
        failures++;
    }
}

static REAL x[2 * NX], z[2 * NZ];

/* flat index in x (batch element 0) of position k (row-major) of 2x2 window j */
static int x_at(int j, int k)
{
    int c = j / 16, oy = j / 4 % 4, ox = j % 4;
    return (c * 8 + oy * 2 + k / 2) * 8 + ox * 2 + k % 2;
}

/* ... of 3x3 stride-2 window j of z */
static int z_at(int j, int k)
{
    int c = j / 9, oy = j / 3 % 3, ox = j % 3;
    return (c * 7 + oy * 2 + k / 3) * 7 + ox * 2 + k % 3;
}

static void make_inputs(void)
{
    static const int vals[4] = {0, 1, 3, 6};
    memset(x, 0, sizeof x);
    memset(z, 0, sizeof z);
    static const int fact[4] = {6, 2, 1, 1};
    for (int j = 0; j < NSTAT; j++) {
        /* permutation j % 24 of the four values (its Lehmer code) */
        int left[4] = {0, 1, 2, 3}, r = j % 24;
        for (int k = 0; k < 4; k++) {
            int pick = r / fact[k];
            r %= fact[k];
            x[x_at(j, k)] = (REAL)vals[left[pick]];
            for (int m = pick; m < 3 - k; m++)
                left[m] = left[m + 1];
        }
    }
    x[x_at(ONE_WINDOW, 2)] = 5;
    /* z: distinct values 1 + i/98 in a scrambled order (19 is prime to 98) */
    for (int i = 0; i < NZ; i++)
        z[i] = (REAL)(1 + (double)(i * 19 % NZ) / NZ);
}

/* the position of window j holding value y, -1 if none; dies if several */
static int find(const REAL *in, int (*at)(int, int), int n, int j, REAL y)
{
    int hit = -1;
    for (int k = 0; k < n; k++)
        if (in[at(j, k)] == y) {
            expect("a window's values are distinct", hit < 0);
            hit = k;
        }
    return hit;
}

/* One step's samples (positions in their windows, -1 for none) from the
 * gradients g, checked against the window values and the routing. */
static void read_samples(const REAL *g, int *pa, int *pb)
{
    double want_w[NX] = {0}, want_w2[NZ] = {0};
    for (int j = 0; j < NA; j++) {
        REAL y = g[OFF_V + j];
        if (j == ZERO_WINDOW) {
            expect("a window summing to 0 gives 0", y == 0);
            pa[j] = -1;
            continue;
        }
        int k = find(x, x_at, 4, j, y);
        expect("the sample is one of the window's values", k >= 0);
        expect("the sample has a nonzero probability", y > 0);
        pa[j] = k;
        if (k >= 0)
            want_w[x_at(j, k)] += (double)x[x_at(j, k)];
    }
    for (int j = 0; j < NB; j++) {
        int k = find(z, z_at, 9, j, g[OFF_V2 + j]);
        expect("the sample is one of the window's values (overlapping)", k >= 0);
        pb[j] = k;
        if (k >= 0)
            want_w2[z_at(j, k)] += (double)z[z_at(j, k)];
    }
    int bad = 0;
    for (int i = 0; i < NX; i++)
        bad += g[OFF_W + i] != (REAL)want_w[i];
    for (int i = 0; i < NZ; i++)
        bad += fabs((double)g[OFF_W2 + i] - want_w2[i]) > 1e-6 * want_w2[i];
    if (bad)
        fprintf(stderr, "%d gradients of w, w2 not at the samples\n", bad);
    expect("dy goes to the sampled inputs, summed over overlapping windows", bad == 0);
}

/* compute_gradients at batch 1 on zeroed gradients; the loss */
static double grads(spool *m)
{
    REAL loss;
    expect("compute_gradients", spool_compute_gradients(m, 1, x, z, &loss) == 0);
    return (double)loss;
}

static double sum_samples(const REAL *g)
{
    double s = 0;
    for (int j = 0; j < NA; j++)
        s += (double)g[OFF_V + j];
    for (int j = 0; j < NB; j++)
        s += (double)g[OFF_V2 + j];
    return s;
}

int main(void)
{
    make_inputs();
    spool *a = spool_create(7), *b = spool_create(7), *c = spool_create(8);
    expect("create", a && b && c);
    if (!a || !b || !c)
        return 1;
    static int cnt_val[7], cnt_pos[NB][9], one_ok = 0;
    int prev[NA + NB] = {0};
    int pa[NA], pb[NB], pc[NA], pcb[NB];
    int same_c = 0, same_prev = 0;
    for (int s = 0; s < T; s++) {
        double loss = grads(a);
        REAL *g = spool_grads(a);
        read_samples(g, pa, pb);
        double want = sum_samples(g);
        expect("the loss is the sum of the samples", fabs(loss - want) <= 1e-5 * want);
        for (int j = 0; j < NSTAT; j++)
            if (pa[j] >= 0)
                cnt_val[(int)x[x_at(j, pa[j])]]++;
        one_ok += pa[ONE_WINDOW] == 2;
        for (int j = 0; j < NB; j++)
            if (pb[j] >= 0)
                cnt_pos[j][pb[j]]++;
        /* the same step again: the same samples, so every gradient doubles */
        static REAL first[spool_NUM_PARAMS];
        memcpy(first, g, sizeof first);
        grads(a);
        int differ = 0;
        for (int i = 0; i < spool_NUM_PARAMS; i++)
            differ += g[i] != 2 * first[i];
        expect("the same samples within a step", differ == 0);
        /* one seed, the same samples; another seed, others */
        grads(b);
        expect("the same seed, the same samples", memcmp(spool_grads(b), first, sizeof first) == 0);
        grads(c);
        read_samples(spool_grads(c), pc, pcb);
        same_c += memcmp(pa, pc, sizeof pa) == 0 && memcmp(pb, pcb, sizeof pb) == 0;
        int now[NA + NB];
        memcpy(now, pa, sizeof pa);
        memcpy(now + NA, pb, sizeof pb);
        same_prev += s > 0 && memcmp(now, prev, sizeof now) == 0;
        memcpy(prev, now, sizeof now);
        expect("apply_gradients", spool_apply_gradients(a) == 0 && spool_apply_gradients(b) == 0 &&
                                      spool_apply_gradients(c) == 0);
    }
    expect("another seed, other samples (every step)", same_c == 0);
    expect("another step, other samples (every step)", same_prev == 0);
    expect("a window with one nonzero value always takes it", one_ok == T);

    /* per value: binomial counts with p = v / 10 */
    double n = (double)T * NSTAT;
    expect("a zero is never sampled", cnt_val[0] == 0);
    for (int v = 1; v <= 6; v++) {
        if (v != 1 && v != 3 && v != 6)
            continue;
        double p = v / 10.0, sd = sqrt(n * p * (1 - p));
        fprintf(stderr, "value %d: %d of %.0f (expect %.1f +- %.1f)\n", v, cnt_val[v], n, n * p,
                sd);
        expect("frequency of a value within 5 sd of a_i / sum(a)",
               fabs(cnt_val[v] - n * p) < 5 * sd);
    }
    /* overlapping windows: chi-square over every (window, position) */
    double chi2 = 0;
    int df = NB * 8;
    for (int j = 0; j < NB; j++) {
        double sum = 0;
        for (int k = 0; k < 9; k++)
            sum += (double)z[z_at(j, k)];
        for (int k = 0; k < 9; k++) {
            double e = T * (double)z[z_at(j, k)] / sum;
            chi2 += (cnt_pos[j][k] - e) * (cnt_pos[j][k] - e) / e;
        }
    }
    fprintf(stderr, "overlapping windows: chi2 %.1f, df %d (bound %.1f)\n", chi2, df,
            df + 5 * sqrt(2.0 * df));
    expect("chi-square of the positions' frequencies", chi2 < df + 5 * sqrt(2.0 * df));

    /* at one step, a at batch 2 (element 1 all zeros) and b at batch 1:
     * element 0 takes the same samples */
    expect("same step", spool_step(a) == spool_step(b));
    static REAL x2[2 * NX], z2[2 * NZ];
    memcpy(x2, x, sizeof(REAL) * NX);
    memcpy(z2, z, sizeof(REAL) * NZ);
    REAL loss;
    expect("compute_gradients", spool_compute_gradients(a, 2, x2, z2, &loss) == 0);
    grads(b);
    expect("batch element 0's samples do not depend on the batch size",
           memcmp(spool_grads(a), spool_grads(b), sizeof(REAL) * spool_NUM_PARAMS) == 0);

    /* inference: sum a^2 / sum a per window, 0 for a zero window */
    REAL outa[NA], outb[NB];
    expect("forward", spool_forward(a, 1, x, z, outa, outb) == 0);
    double tol = sizeof(REAL) == 4 ? 1e-5 : 1e-12, total = 0;
    for (int j = 0; j < NA + NB; j++) {
        int nk = j < NA ? 4 : 9;
        double s1 = 0, s2 = 0;
        for (int k = 0; k < nk; k++) {
            double v = j < NA ? (double)x[x_at(j, k)] : (double)z[z_at(j - NA, k)];
            s1 += v;
            s2 += v * v;
        }
        double want = s1 == 0 ? 0 : s2 / s1, got = j < NA ? (double)outa[j] : (double)outb[j - NA];
        total += want;
        if (!(fabs(got - want) <= tol * fmax(1, want))) {
            fprintf(stderr, "forward window %d: got %.17g, want %.17g\n", j, got, want);
            expect("forward is sum a^2 / sum a", 0);
        }
    }
    expect("evaluate", spool_evaluate(a, 1, x, z, &loss) == 0);
    expect("evaluate is the sum of the expectations", fabs((double)loss - total) <= tol * total);
    spool_destroy(a);
    spool_destroy(b);
    spool_destroy(c);
    if (failures)
        fprintf(stderr, "%d checks failed\n", failures);
    return failures != 0;
}
