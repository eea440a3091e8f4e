/* bench product — one matrix product as dlc generates it, against
 * OpenBLAS's sgemm on the same operands, for work on codegen/gemm.c
 * (bench/product.sh writes the model, compiles it and runs this):
 *
 *   out[M, N] = x[M, K] @ w[K, N]     (TB: x @ w^T, w stored [N, K];
 *                                      TA: out[K, N] = x^T @ d[M, N])
 *
 * The model's forward runs at batch M (the product's rows), 10 calls a
 * round after a warm-up call, and OpenBLAS's cblas_sgemm on the same x
 * and the instance's w likewise; each prints its best round (the time
 * the core can do it in when nothing else runs on it: on a shared host
 * the best is steadier than the median) and its GFLOP/s, and the two
 * outputs must agree within 1e-4 relative to the sums' size (exit 1 if
 * not). Built per model by product.sh: MODEL names it, PROD_K, PROD_N
 * PROD_TB and PROD_TA give its shape.
 *
 *   product M [ROUNDS [THREADS]]        default ROUNDS 20, THREADS 1 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dlrt.h"
#include MODEL_HEADER

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(suffix) CAT(MODEL, suffix)

/* OpenBLAS's product into ref */
static void blas_product(int m, const float *x, const float *w, float *ref)
{
    if (PROD_TA) /* w is d */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, PROD_K, PROD_N, m, 1, x, PROD_K, w,
                    PROD_N, 0, ref, PROD_N);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, PROD_TB ? CblasTrans : CblasNoTrans, m, PROD_N,
                    PROD_K, 1, x, PROD_K, w, PROD_TB ? PROD_K : PROD_N, 0, ref, PROD_N);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

enum { CALLS = 10 };

static void forward(MODEL *net, int m, const float *x, const float *d, float *y)
{
#if PROD_TA
    FN(_forward)(net, m, x, d, y);
#else
    (void)d;
    FN(_forward)(net, m, x, y);
#endif
}

int main(int argc, char **argv)
{
    int m = argc > 1 ? atoi(argv[1]) : 0, rounds = argc > 2 ? atoi(argv[2]) : 20;
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (m < 1 || m > FN(_MAX_BATCH) || rounds < 1 || threads < 1) {
        fprintf(stderr, "usage: %s M [ROUNDS [THREADS]] (M in 1..%d)\n", argv[0], FN(_MAX_BATCH));
        return 2;
    }
    if (dlrt_set_num_threads(threads) != 0)
        return 2;
    openblas_set_num_threads(threads);
    MODEL *net = FN(_create)(1);
    long outs = PROD_TA ? (long)PROD_K * PROD_N : (long)m * PROD_N;
    float *x = malloc(sizeof(float) * (size_t)m * PROD_K),
          *d = malloc(sizeof(float) * (size_t)m * PROD_N),
          *y = malloc(sizeof(float) * (size_t)outs), *ref = malloc(sizeof(float) * (size_t)outs);
    if (!net || !x || !d || !y || !ref)
        return 2;
    for (long i = 0; i < (long)m * PROD_K; i++)
        x[i] = (float)((i * 7919) % 2001) / 1000.0f - 1.0f;
    for (long i = 0; i < (long)m * PROD_N; i++)
        d[i] = (float)((i * 104729) % 2001) / 1000.0f - 1.0f;
    /* TA's second operand is the input d, the others' the parameter w */
    const float *w = PROD_TA ? d : FN(_params)(net);
    double best = INFINITY, blas = INFINITY;
    forward(net, m, x, d, y);
    blas_product(m, x, w, ref);
    for (int r = 0; r < rounds; r++) { /* interleaved, so both see the same host */
        double t = now();
        for (int i = 0; i < CALLS; i++)
            forward(net, m, x, d, y);
        double d = (now() - t) / CALLS;
        best = d < best ? d : best;
        t = now();
        for (int i = 0; i < CALLS; i++)
            blas_product(m, x, w, ref);
        d = (now() - t) / CALLS;
        blas = d < blas ? d : blas;
    }
    double worst = 0;
    for (long i = 0; i < outs; i++) {
        double e = fabs((double)y[i] - ref[i]) / (1 + fabs((double)ref[i]));
        worst = e > worst ? e : worst;
    }
    double flops = 2.0 * m * PROD_K * PROD_N;
    if (PROD_TA)
        printf("product [%d, %d]^T @ [%d, %d]", m, PROD_K, m, PROD_N);
    else
        printf("product [%d, %d] @ [%d, %d]%s", m, PROD_K, PROD_K, PROD_N, PROD_TB ? "^T" : "");
    printf(" threads %d: dlc %.1f us %.1f GFLOP/s, OpenBLAS %.1f us %.1f GFLOP/s, dlc/OpenBLAS "
           "speed %.3f\n",
           threads, best * 1e6, flops / best * 1e-9, blas * 1e6, flops / blas * 1e-9, blas / best);
    if (worst > 1e-4) {
        fprintf(stderr, "product: dlc and OpenBLAS differ by %g\n", worst);
        return 1;
    }
    FN(_destroy)(net);
    free(x);
    free(d);
    free(y);
    free(ref);
    return 0;
}
