/* bench_peak — the machine's single-precision GEMM peak at one thread,
 * the roof that bench/run.sh holds each model's achieved GFLOP/s against
 * (docs/BENCHMARKS.md, "Roofline"): OpenBLAS's sgemm on square N x N
 * matrices, large enough that packing and edges are a few percent of the
 * time, after a warm-up call; prints the best of ROUNDS calls, since the
 * peak is what the core can do when nothing else runs on it.
 *
 *   bench_peak [N [ROUNDS]]        default 1536 5 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* argv[i] as an integer in 1..hi, def when absent; exit 2 otherwise. */
static int arg(int argc, char **argv, int i, int def, int hi)
{
    if (argc <= i)
        return def;
    int v = atoi(argv[i]);
    if (v < 1 || v > hi) {
        fprintf(stderr, "bench_peak: argument %d must be in 1..%d\n", i, hi);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int n = arg(argc, argv, 1, 1536, 8192);
    int rounds = arg(argc, argv, 2, 5, 64);
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(sizeof *a * nn), *b = malloc(sizeof *b * nn), *c = malloc(sizeof *c * nn);
    if (!a || !b || !c) {
        fprintf(stderr, "bench_peak: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < nn; i++) {
        a[i] = (float)(i % 7) * 0.25f - 0.5f;
        b[i] = (float)(i % 5) * 0.5f - 1.0f;
    }
    openblas_set_num_threads(1);
    double best = 0;
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        double t0 = now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c,
                    n);
        double dt = now() - t0;
        double gflops = 2.0 * (double)n * (double)n * (double)n / dt * 1e-9;
        if (r >= 0 && gflops > best)
            best = gflops;
    }
    printf("sgemm peak %.1f GFLOP/s (OpenBLAS, 1 thread, n %d, best of %d)\n", best, n, rounds);
    free(a);
    free(b);
    free(c);
    return 0;
}
