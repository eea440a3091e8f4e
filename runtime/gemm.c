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
    void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T *a,      \
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

DEFINE_GEMM(dlrt_gemm_f32, float, blas_f32, loops_f32)
DEFINE_GEMM(dlrt_gemm_f64, double, blas_f64, loops_f64)
