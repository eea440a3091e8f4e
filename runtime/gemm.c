/*
 * GEMM for generated code: row-major C = alpha*op(A)*op(B) + beta*C, over
 * OpenBLAS's cblas_sgemm/cblas_dgemm, or over the portable loops below
 * when libdlrt is built without BLAS (DLRT_NO_BLAS: CMake's DLC_BLAS=OFF,
 * and the targets that have no BLAS, docs/TARGETS.md).
 *
 * BLAS rejects calls whose leading dimensions are below the stored row
 * length even where they are never used (a single row, an empty matrix),
 * and reports that by printing through xerbla and doing nothing. So the
 * wrappers handle the degenerate shapes themselves: nothing to do when
 * m or n is 0, C = beta*C when k is 0 (C is overwritten, never read, when
 * beta is 0, as in BLAS), and a stride that only one row would use is
 * raised to a legal value. What BLAS still cannot take (strides too small
 * for several rows, sizes beyond its integer type) goes through the
 * portable loops, so a call never fails silently.
 *
 * The portable loops: C is first scaled by beta; then for each panel of
 * NR columns and KC rows of op(B), the panel is copied into a small
 * buffer on the stack (zero-padded to NR columns, so transposed and
 * strided B look alike), and MR rows of C at a time accumulate
 * sum_p A(i, p) * panel(p, :) in an MR x NR block of locals, which the
 * compiler keeps in vector registers, before alpha times it is added to
 * C. The buffer is KC*NR elements (4 KiB), small enough for a
 * microcontroller's stack; there is no heap and no static state, so the
 * loops are reentrant. The order of every addition is fixed by the sizes
 * alone, and libdlrt is compiled without contraction into fused
 * multiply-adds (-ffp-contract=off), so the result is the same bits on
 * every target.
 */
#include "dlrt.h"

#ifndef DLRT_NO_BLAS
#include <cblas.h>
#include <pthread.h>
#endif

enum { KC = 128 };

/* One MR x NR block (MR <= 4 rows of C from row i, NR columns from the
 * panel bp of kc x NR): c(i + r, j) += alpha * sum_p A(i + r, p) bp[p][j]
 * for j < nr. A(i, p) is a[i * rs + p * cs]. Four rows, the common case,
 * accumulate in four arrays of NR that the unrolled loop keeps in
 * registers (one array of arrays stays in memory: 2.4x slower); fewer
 * rows (the last block) one row at a time, in the same order. */
#define DEFINE_BLOCK(NAME, T, NR)                                                                  \
    static inline void NAME(int mr, int64_t nr, int64_t kc, T alpha, const T *a, int64_t rs,       \
                            int64_t cs, const T *bp, T *c, int64_t ldc)                            \
    {                                                                                              \
        if (mr == 4) {                                                                             \
            T c0[NR] = {0}, c1[NR] = {0}, c2[NR] = {0}, c3[NR] = {0};                              \
            for (int64_t p = 0; p < kc; p++) {                                                     \
                const T *b = bp + p * NR, *ap = a + p * cs;                                        \
                T x0 = ap[0], x1 = ap[rs], x2 = ap[2 * rs], x3 = ap[3 * rs];                       \
                _Pragma("GCC unroll 8") for (int j = 0; j < NR; j++)                               \
                {                                                                                  \
                    c0[j] += x0 * b[j];                                                            \
                    c1[j] += x1 * b[j];                                                            \
                    c2[j] += x2 * b[j];                                                            \
                    c3[j] += x3 * b[j];                                                            \
                }                                                                                  \
            }                                                                                      \
            for (int64_t j = 0; j < nr; j++) {                                                     \
                c[j] += alpha * c0[j];                                                             \
                c[ldc + j] += alpha * c1[j];                                                       \
                c[2 * ldc + j] += alpha * c2[j];                                                   \
                c[3 * ldc + j] += alpha * c3[j];                                                   \
            }                                                                                      \
            return;                                                                                \
        }                                                                                          \
        for (int r = 0; r < mr; r++) {                                                             \
            T acc[NR] = {0};                                                                       \
            for (int64_t p = 0; p < kc; p++) {                                                     \
                T x = a[r * rs + p * cs];                                                          \
                for (int j = 0; j < NR; j++)                                                       \
                    acc[j] += x * bp[p * NR + j];                                                  \
            }                                                                                      \
            for (int64_t j = 0; j < nr; j++)                                                       \
                c[r * ldc + j] += alpha * acc[j];                                                  \
        }                                                                                          \
    }

/* The portable product; m, n >= 1, k >= 0, a, b and c valid. */
#define DEFINE_LOOPS(NAME, BLOCK, T, NR)                                                           \
    static void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha,           \
                     const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)  \
    {                                                                                              \
        for (int64_t i = 0; i < m; i++)                                                            \
            for (int64_t j = 0; j < n; j++)                                                        \
                c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];                            \
        if (k == 0 || alpha == 0)                                                                  \
            return;                                                                                \
        int64_t ars = trans_a ? 1 : lda, acs = trans_a ? lda : 1;                                  \
        int64_t brs = trans_b ? 1 : ldb, bcs = trans_b ? ldb : 1;                                  \
        T bp[KC * NR];                                                                             \
        for (int64_t j0 = 0; j0 < n; j0 += NR) {                                                   \
            int64_t nr = n - j0 < NR ? n - j0 : NR;                                                \
            for (int64_t p0 = 0; p0 < k; p0 += KC) {                                               \
                int64_t kc = k - p0 < KC ? k - p0 : KC;                                            \
                for (int64_t p = 0; p < kc; p++)                                                   \
                    for (int64_t j = 0; j < NR; j++)                                               \
                        bp[p * NR + j] = j < nr ? b[(p0 + p) * brs + (j0 + j) * bcs] : 0;          \
                for (int64_t i = 0; i < m; i += 4)                                                 \
                    BLOCK(m - i < 4 ? (int)(m - i) : 4, nr, kc, alpha, a + i * ars + p0 * acs,     \
                          ars, acs, bp, c + i * ldc + j0, ldc);                                    \
            }                                                                                      \
        }                                                                                          \
    }

DEFINE_BLOCK(block_f32, float, 8)
DEFINE_BLOCK(block_f64, double, 4)
DEFINE_LOOPS(loops_f32, block_f32, float, 8)
DEFINE_LOOPS(loops_f64, block_f64, double, 4)

#ifndef DLRT_NO_BLAS
/* The stride to pass for a stored matrix of `rows` x `cols` with row stride
 * ld, or -1 when BLAS cannot take it. */
static int64_t blas_ld(int64_t rows, int64_t cols, int64_t ld)
{
    int64_t need = cols > 1 ? cols : 1;
    if (rows <= 1 && ld < need)
        return need;
    return ld >= need ? ld : -1;
}

static int fits(int64_t v)
{
    return v >= 0 && (int64_t)(blasint)v == v;
}

/* Whether BLAS took the call (it then did all of it). */
#define DEFINE_BLAS(NAME, T, CBLAS)                                                                \
    static int NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha,            \
                    const T *a, int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)   \
    {                                                                                              \
        int64_t la = trans_a ? blas_ld(k, m, lda) : blas_ld(m, k, lda);                            \
        int64_t lb = trans_b ? blas_ld(n, k, ldb) : blas_ld(k, n, ldb);                            \
        int64_t lc = blas_ld(m, n, ldc);                                                           \
        if (!(fits(m) && fits(n) && fits(k) && fits(la) && fits(lb) && fits(lc)))                  \
            return 0;                                                                              \
        CBLAS(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,                                  \
              trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha, a,   \
              (blasint)la, b, (blasint)lb, beta, c, (blasint)lc);                                  \
        return 1;                                                                                  \
    }
DEFINE_BLAS(blas_f32, float, cblas_sgemm)
DEFINE_BLAS(blas_f64, double, cblas_dgemm)
#define BLAS_TOOK(f, ...) f(__VA_ARGS__)
#else
#define BLAS_TOOK(f, ...) 0
#endif

#define DEFINE_GEMM(NAME, T, BLAS, LOOPS)                                                          \
    static void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T *a,      \
              int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)                     \
    {                                                                                              \
        if (m <= 0 || n <= 0 || k < 0 || !c)                                                       \
            return;                                                                                \
        if (k > 0 && alpha != 0 && (!a || !b))                                                     \
            return;                                                                                \
        if (k > 0 && alpha != 0 &&                                                                 \
            BLAS_TOOK(BLAS, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))       \
            return;                                                                                \
        LOOPS(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);                     \
    }

DEFINE_GEMM(gemm_f32, float, blas_f32, loops_f32)
DEFINE_GEMM(gemm_f64, double, blas_f64, loops_f64)

/* ---- tiles on the thread pool --------------------------------------------
 *
 * A product large enough is cut into a grid of tiles of C, each computed
 * by one single-threaded GEMM over the whole of k, so no tile's sums
 * depend on another's and nothing is combined afterwards. The grid is
 * decided by m, n and k alone: the same calls are made, and the same bits
 * computed, with any number of threads. Every tile costs a call of its
 * own, which packs its panels of A and B again, so tiles are few and
 * large: a power of two of them, each of at least MIN_WORK multiply-adds
 * (about 100 us on one core of this machine), at most MAX_TILES. They
 * split the rows of C first, in multiples of 8, and the columns (in
 * multiples of 16, whole vectors of the BLAS kernels' blocks) only when
 * the rows run out: measured on this machine with 2 threads, a dense
 * layer's products at batch 64 (64x256x784, its transpose-A weight
 * gradient 784x256x64 and transpose-B input gradient 64x784x256) take
 * 138-168 us cut in two row tiles against 266-275 us uncut, but 188-314
 * us cut into the 2x4 grids of 1 M multiply-adds each that this code used
 * before (docs/BENCHMARKS.md, "Threads").
 */
#ifndef DLRT_NO_THREADS
enum { MIN_WORK = 1 << 22, MAX_TILES = 16 };

typedef struct {
    int ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    int64_t tm, tn; /* the grid */
    double alpha, beta;
    const void *a, *b;
    void *c;
    int f64;
} Tiles;

/* The grid of a product: *tm row tiles by *tn column tiles. */
static void tile_grid(int64_t m, int64_t n, int64_t k, int64_t *tm, int64_t *tn)
{
    *tm = *tn = 1;
    double work = (double)m * (double)n * (double)k;
    while (*tm * *tn * 2 <= MAX_TILES && work / (double)(*tm * *tn * 2) >= MIN_WORK) {
        if (m / (*tm * 2) >= 8)
            *tm *= 2;
        else if (n / (*tn * 2) >= 16)
            *tn *= 2;
        else
            break;
    }
}

/* Start of part i of parts over len, in units of q elements (the last
 * part takes the rest). */
static int64_t part(int64_t len, int64_t parts, int64_t i, int64_t q)
{
    if (i >= parts)
        return len;
    int64_t units = (len + q - 1) / q;
    int64_t u = units * i / parts * q;
    return u < len ? u : len;
}

static void run_tile(void *ctx, int64_t t, void *scratch)
{
    (void)scratch;
    const Tiles *g = ctx;
    int64_t ti = t / g->tn, tj = t % g->tn;
    int64_t i0 = part(g->m, g->tm, ti, 8), i1 = part(g->m, g->tm, ti + 1, 8);
    int64_t j0 = part(g->n, g->tn, tj, 16), j1 = part(g->n, g->tn, tj + 1, 16);
    if (i0 >= i1 || j0 >= j1)
        return;
    int64_t ao = g->ta ? i0 : i0 * g->lda, bo = g->tb ? j0 * g->ldb : j0;
    int64_t co = i0 * g->ldc + j0;
    if (g->f64)
        gemm_f64(g->ta, g->tb, i1 - i0, j1 - j0, g->k, g->alpha, (const double *)g->a + ao, g->lda,
                 (const double *)g->b + bo, g->ldb, g->beta, (double *)g->c + co, g->ldc);
    else
        gemm_f32(g->ta, g->tb, i1 - i0, j1 - j0, g->k, (float)g->alpha, (const float *)g->a + ao,
                 g->lda, (const float *)g->b + bo, g->ldb, (float)g->beta, (float *)g->c + co,
                 g->ldc);
}

#endif

#ifndef DLRT_NO_BLAS
/* OpenBLAS's own threads stay unused: the pool is the one parallelism,
 * and each tile is one single-threaded call. */
static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
static void blas_one_thread(void) { openblas_set_num_threads(1); }
#define BLAS_ONE_THREAD() pthread_once(&blas_once, blas_one_thread)
#else
#define BLAS_ONE_THREAD() ((void)0)
#endif

#ifndef DLRT_NO_THREADS
#define DEFINE_TILED(NAME, T, ONE, F64)                                                            \
    void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T *a,      \
              int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)                     \
    {                                                                                              \
        BLAS_ONE_THREAD();                                                                         \
        int64_t tm, tn;                                                                            \
        if (m <= 0 || n <= 0 || k <= 0 || alpha == 0 || !a || !b || !c)                            \
            tm = tn = 1;                                                                           \
        else                                                                                       \
            tile_grid(m, n, k, &tm, &tn);                                                          \
        if (tm * tn == 1) {                                                                        \
            ONE(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);                   \
            return;                                                                                \
        }                                                                                          \
        Tiles g = {.ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,  \
                   .ldc = ldc, .tm = tm, .tn = tn, .alpha = alpha, .beta = beta, .a = a, .b = b,   \
                   .c = c, .f64 = F64};                                                            \
        dlrt_parallel_for(tm * tn, run_tile, &g, 0);                                               \
    }
#else
#define DEFINE_TILED(NAME, T, ONE, F64)                                                            \
    void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T *a,      \
              int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)                     \
    {                                                                                              \
        ONE(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);                       \
    }
#endif

DEFINE_TILED(dlrt_gemm_f32, float, gemm_f32, 0)
DEFINE_TILED(dlrt_gemm_f64, double, gemm_f64, 1)
