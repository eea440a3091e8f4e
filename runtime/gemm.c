/*
 * GEMM for generated code: row-major C = alpha*op(A)*op(B) + beta*C over
 * OpenBLAS's cblas_sgemm/cblas_dgemm.
 *
 * BLAS rejects calls whose leading dimensions are below the stored row
 * length even where they are never used (a single row, an empty matrix),
 * and reports that by printing through xerbla and doing nothing. So the
 * wrappers handle the degenerate shapes themselves: nothing to do when
 * m or n is 0, C = beta*C when k is 0 (C is overwritten, never read, when
 * beta is 0, as in BLAS), and a stride that only one row would use is
 * raised to a legal value. What BLAS still cannot take (strides too small
 * for several rows, sizes beyond its integer type) goes through a plain
 * loop with the same meaning, so a call never fails silently.
 */
#include "dlrt.h"

#include <cblas.h>

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

#define DEFINE_GEMM(NAME, T, CBLAS)                                                                \
    void NAME(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T *a,      \
              int64_t lda, const T *b, int64_t ldb, T beta, T *c, int64_t ldc)                     \
    {                                                                                              \
        if (m <= 0 || n <= 0 || k < 0 || !c)                                                       \
            return;                                                                                \
        if (k == 0 || alpha == 0) {                                                                \
            for (int64_t i = 0; i < m; i++)                                                        \
                for (int64_t j = 0; j < n; j++)                                                    \
                    c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];                        \
            return;                                                                                \
        }                                                                                          \
        if (!a || !b)                                                                              \
            return;                                                                                \
        int64_t la = trans_a ? blas_ld(k, m, lda) : blas_ld(m, k, lda);                            \
        int64_t lb = trans_b ? blas_ld(n, k, ldb) : blas_ld(k, n, ldb);                            \
        int64_t lc = blas_ld(m, n, ldc);                                                           \
        if (fits(m) && fits(n) && fits(k) && fits(la) && fits(lb) && fits(lc)) {                   \
            CBLAS(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,                              \
                  trans_b ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n, (blasint)k, alpha,  \
                  a, (blasint)la, b, (blasint)lb, beta, c, (blasint)lc);                           \
            return;                                                                                \
        }                                                                                          \
        for (int64_t i = 0; i < m; i++)                                                            \
            for (int64_t j = 0; j < n; j++) {                                                      \
                T s = 0;                                                                           \
                for (int64_t p = 0; p < k; p++)                                                    \
                    s += (trans_a ? a[p * lda + i] : a[i * lda + p]) *                             \
                         (trans_b ? b[j * ldb + p] : b[p * ldb + j]);                              \
                T *cij = &c[i * ldc + j];                                                          \
                *cij = alpha * s + (beta == 0 ? 0 : beta * *cij);                                  \
            }                                                                                      \
    }

DEFINE_GEMM(dlrt_gemm_f32, float, cblas_sgemm)
DEFINE_GEMM(dlrt_gemm_f64, double, cblas_dgemm)
