/* bench_peak — the machine's single-precision peaks at one thread, the
 * roof that bench/run.sh holds each model's achieved GFLOP/s against
 * (docs/BENCHMARKS.md, "Roofline"):
 *  - OpenBLAS's sgemm on square N x N matrices, large enough that
 *    packing and edges are a few percent of the time, after a warm-up
 *    call, best of ROUNDS calls, since the peak is what the core can do
 *    when nothing else runs on it. OpenBLAS runs the kernels
 *    OPENBLAS_CORETYPE picks, which need not be the widest the core has;
 *  - the core's own: fused multiply-adds of the widest vectors it has
 *    (AVX-512, else AVX2 with FMA, else SSE multiplies and adds), in
 *    enough independent chains to cover their latency, best of ROUNDS.
 *    The generated kernels (codegen/gemm.c) run at the core's width, so
 *    this is their roof, and run.sh's.
 *
 *   bench_peak [N [ROUNDS]]        default 1536 5 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

#if defined(__x86_64__)
/* CHAINS independent accumulators, each FMA_ITERS fused multiply-adds of
 * v's lanes; returns the flops done (2 a lane and step) */
enum { CHAINS = 12, FMA_ITERS = 20000000 };

__attribute__((target("avx512f"))) static double fma512(float *sink)
{
    __m512 acc[CHAINS], x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    for (int it = 0; it < FMA_ITERS; it++)
#pragma GCC unroll 12 /* the chains in registers */
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], x, y);
    for (int i = 0; i < CHAINS; i++)
        *sink += _mm512_reduce_add_ps(acc[i]);
    return 2.0 * 16 * CHAINS * (double)FMA_ITERS;
}

__attribute__((target("avx2,fma"))) static double fma256(float *sink)
{
    __m256 acc[CHAINS], x = _mm256_set1_ps(0.999999f), y = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm256_set1_ps((float)i);
    for (int it = 0; it < FMA_ITERS; it++)
#pragma GCC unroll 12 /* the chains in registers */
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm256_fmadd_ps(acc[i], x, y);
    float lanes[8];
    for (int i = 0; i < CHAINS; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        *sink += lanes[0];
    }
    return 2.0 * 8 * CHAINS * (double)FMA_ITERS;
}

static double fma128(float *sink)
{
    __m128 acc[CHAINS], x = _mm_set1_ps(0.999999f), y = _mm_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm_set1_ps((float)i);
    for (int it = 0; it < FMA_ITERS; it++)
#pragma GCC unroll 12 /* the chains in registers */
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm_add_ps(_mm_mul_ps(acc[i], x), y);
    *sink += _mm_cvtss_f32(acc[0]);
    return 2.0 * 4 * CHAINS * (double)FMA_ITERS;
}

static volatile float kept;

/* The best GFLOP/s of rounds runs of the widest kind the core has. */
static void core_peak(int rounds)
{
    const char *kind = __builtin_cpu_supports("avx512f")                             ? "AVX-512"
                       : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? "AVX2"
                                                                                       : "SSE";
    double best = 0;
    float sink = 0;
    for (int r = -1; r < rounds; r++) {
        double t0 = now();
        double flops = kind[3] == '-' ? fma512(&sink) : kind[0] == 'A' ? fma256(&sink) : fma128(&sink);
        double gflops = flops / (now() - t0) * 1e-9;
        if (r >= 0 && gflops > best)
            best = gflops;
    }
    kept = sink; /* the sums are used: the loops stay */
    printf("core peak %.1f GFLOP/s (%s fused multiply-adds, 1 thread, best of %d)\n", best, kind,
           rounds);
}
#endif

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
#if defined(__x86_64__)
    core_peak(rounds);
#endif
    free(a);
    free(b);
    free(c);
    return 0;
}
