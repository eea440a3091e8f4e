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

#include <stdbool.h>
#include <stdlib.h>

#ifndef DLRT_NO_BLAS
#include <cblas.h>
#endif
#if !defined(DLRT_NO_BLAS) || !defined(DLRT_NO_THREADS)
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
 * A product large enough is cut into tiles, each computed by one
 * single-threaded GEMM. The cut is decided by m, n and k alone: the same
 * calls are made, and the same bits computed, with any number of
 * threads. Every tile costs a call of its own, which packs its panels of
 * A and B again, so tiles are few and large: a power of two of them, each
 * of at least MIN_WORK multiply-adds (about 100 us on one core of this
 * machine), at most MAX_TILES.
 *
 * Which way to cut follows the operand that dominates (holds more
 * elements than the other two together): each tile reads, or writes, a
 * contiguous block of its memory. The pool gives thread k of n the k-th
 * block of a loop's tasks (runtime/pool.c), and the optimizer's update is
 * cut into contiguous blocks of the parameters in the same order
 * (codegen/grads.c), so a dense layer's weights stay on one core: the
 * forward product reads the rows of w that its core updated, the weight
 * gradient writes the rows its core will update. The two vCPUs of this
 * machine share no cache; data one writes and the other reads costs more
 * than the arithmetic (docs/BENCHMARKS.md, "Threads").
 *   - C dominates, or nothing does: C's rows, in multiples of 8, then its
 *     columns (multiples of 16, whole vectors of the BLAS kernels' blocks)
 *     when the rows run out. The weight gradient x^T @ dy at batch 64
 *     (784x256x64): 127-139 us in two row tiles, 224-230 us in two
 *     column tiles (those pack all of x^T twice).
 *   - A dominates: its stored rows, C's rows when A is not transposed,
 *     and the k dimension when it is.
 *   - B dominates: its stored rows, k when B is not transposed (x @ w at
 *     a small batch: each core reads half of w, not all of it), C's
 *     columns when it is.
 * A cut of k is in two halves, which the larger products cut further by
 * rows and columns; it leaves a partial product: the first half is
 * computed into C, the second into a buffer of the calling thread (m x n),
 * and a second loop adds it to C. Two halves, not more: every part beyond
 * the first costs a buffer and a pass over C, and the products that
 * dominate are large enough for more tiles within each half (the char
 * LSTM's weight gradient over all time steps, 256x1024x4096, would have
 * needed seven buffers of 1 MB). (Where that buffer cannot be had,
 * the parts run one after another, each added into C by BLAS's beta: the
 * same sums in the same order, possibly rounded differently.)
 */
#ifndef DLRT_NO_THREADS
enum { MIN_WORK = 1 << 22, MAX_TILES = 16, MIN_K_PART = 64 };

typedef struct {
    int ta, tb;
    int64_t m, n, k, lda, ldb, ldc;
    int64_t tm, tn, tk; /* the grid: row tiles, column tiles, parts of k */
    double alpha, beta;
    const void *a, *b;
    void *c;
    void *partial; /* tk - 1 products of m x n, row-major */
    int f64;
} Tiles;

/* The grid of a product: *tk parts of k (1 or 2), each cut into *tm row
 * tiles by *tn column tiles. */
static void tile_grid(int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t *tm, int64_t *tn,
                      int64_t *tk)
{
    *tm = *tn = *tk = 1;
    double work = (double)m * (double)n * (double)k;
    double sa = (double)m * (double)k, sb = (double)k * (double)n, sc = (double)m * (double)n;
    if (((sa > sb + sc && ta) || (sb > sa + sc && !tb)) && k / 2 >= MIN_K_PART &&
        work / 2 >= MIN_WORK)
        *tk = 2;
    bool cols = sb > sa + sc && tb;
    while (*tk * *tm * *tn * 2 <= MAX_TILES && work / (double)(*tk * *tm * *tn * 2) >= MIN_WORK) {
        bool rows_ok = m / (*tm * 2) >= 8, cols_ok = n / (*tn * 2) >= 16;
        if (cols_ok && (cols || !rows_ok))
            *tn *= 2;
        else if (rows_ok)
            *tm *= 2;
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
    int64_t kp = t / (g->tm * g->tn), ti = t % (g->tm * g->tn) / g->tn, tj = t % g->tn;
    int64_t i0 = part(g->m, g->tm, ti, 8), i1 = part(g->m, g->tm, ti + 1, 8);
    int64_t j0 = part(g->n, g->tn, tj, 16), j1 = part(g->n, g->tn, tj + 1, 16);
    int64_t p0 = part(g->k, g->tk, kp, 16), p1 = part(g->k, g->tk, kp + 1, 16);
    if (i0 >= i1 || j0 >= j1 || p0 >= p1)
        return;
    int64_t ao = g->ta ? p0 * g->lda + i0 : i0 * g->lda + p0;
    int64_t bo = g->tb ? j0 * g->ldb + p0 : p0 * g->ldb + j0;
    int64_t co = i0 * g->ldc + j0, ldc = g->ldc;
    double beta = g->beta;
    void *c = g->c;
    if (kp > 0 && g->partial) { /* a partial product of its own */
        co = (kp - 1) * g->m * g->n + i0 * g->n + j0;
        ldc = g->n;
        beta = 0;
        c = g->partial;
    } else if (kp > 0) { /* no buffer: the parts in order, into C */
        beta = 1;
    }
    if (g->f64)
        gemm_f64(g->ta, g->tb, i1 - i0, j1 - j0, p1 - p0, g->alpha, (const double *)g->a + ao,
                 g->lda, (const double *)g->b + bo, g->ldb, beta, (double *)c + co, ldc);
    else
        gemm_f32(g->ta, g->tb, i1 - i0, j1 - j0, p1 - p0, (float)g->alpha,
                 (const float *)g->a + ao, g->lda, (const float *)g->b + bo, g->ldb, (float)beta,
                 (float *)c + co, ldc);
}

/* Task t of the sum of the parts: C's rows of block t (of as many blocks
 * as tiles) plus the partial products, in the order of the parts. */
static void add_parts(void *ctx, int64_t t, void *scratch)
{
    (void)scratch;
    const Tiles *g = ctx;
    int64_t nt = g->tk * g->tm * g->tn, mn = g->m * g->n;
    int64_t i0 = part(g->m, nt, t, 1), i1 = part(g->m, nt, t + 1, 1);
    for (int64_t i = i0; i < i1; i++)
        for (int64_t kp = 1; kp < g->tk; kp++) {
            if (g->f64) {
                double *c = (double *)g->c + i * g->ldc;
                const double *p = (const double *)g->partial + (kp - 1) * mn + i * g->n;
                for (int64_t j = 0; j < g->n; j++)
                    c[j] += p[j];
            } else {
                float *c = (float *)g->c + i * g->ldc;
                const float *p = (const float *)g->partial + (kp - 1) * mn + i * g->n;
                for (int64_t j = 0; j < g->n; j++)
                    c[j] += p[j];
            }
        }
}

/* The calling thread's buffer for partial products, of at least bytes
 * (NULL when it cannot be had); kept for the thread's next products and
 * freed when the thread ends. */
typedef struct {
    void *p;
    size_t bytes;
} Partials;
static pthread_key_t partials_key;
static int partials_ok;
static pthread_once_t partials_once = PTHREAD_ONCE_INIT;

static void partials_free(void *v)
{
    Partials *b = v;
    free(b->p);
    free(b);
}

static void partials_init(void) { partials_ok = pthread_key_create(&partials_key, partials_free) == 0; }

static void *partials(size_t bytes)
{
    pthread_once(&partials_once, partials_init);
    if (!partials_ok)
        return NULL;
    Partials *b = pthread_getspecific(partials_key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(partials_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->bytes < bytes) {
        free(b->p);
        b->bytes = (bytes + 63) / 64 * 64;
        b->p = aligned_alloc(64, b->bytes);
        if (!b->p)
            b->bytes = 0;
    }
    return b->p;
}

/* Runs the grid g. */
static void run_grid(Tiles *g, size_t elem)
{
    int64_t nt = g->tk * g->tm * g->tn;
    if (g->tk > 1)
        g->partial = partials((size_t)(g->tk - 1) * (size_t)(g->m * g->n) * elem);
    if (g->tk > 1 && !g->partial) { /* in order: the first half's tiles first */
        for (int64_t t = 0; t < nt; t++)
            run_tile(g, t, NULL);
        return;
    }
    dlrt_parallel_for(nt, run_tile, g, 0);
    if (g->tk > 1) /* C's rows cut as many ways as the product */
        dlrt_parallel_for(nt, add_parts, g, 0);
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
        int64_t tm = 1, tn = 1, tk = 1;                                                            \
        if (m > 0 && n > 0 && k > 0 && alpha != 0 && a && b && c)                                  \
            tile_grid(trans_a, trans_b, m, n, k, &tm, &tn, &tk);                                   \
        if (tm * tn * tk == 1) {                                                                   \
            ONE(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);                   \
            return;                                                                                \
        }                                                                                          \
        Tiles g = {.ta = trans_a, .tb = trans_b, .m = m, .n = n, .k = k, .lda = lda, .ldb = ldb,  \
                   .ldc = ldc, .tm = tm, .tn = tn, .tk = tk, .alpha = alpha, .beta = beta,         \
                   .a = a, .b = b, .c = c, .f64 = F64};                                            \
        run_grid(&g, sizeof(T));                                                                   \
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
