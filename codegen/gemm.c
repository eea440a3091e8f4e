/*
 * Matrix products the compiler generates itself: a product with few rows
 * (batch 1 inference, above all) whose inner and output extents are known
 * when the model is compiled. There BLAS loses most of its time packing
 * the weights into its panel layout, work it can only win back over many
 * rows: the MNIST MLP's [1, 784] @ [784, 256] spent 40% of its time in
 * OpenBLAS's packing and ran at 45 us a forward.
 *
 * The kernel streams b once per block of rows, k after k, each row of b
 * multiplied by the block's a[i, k] and added into the block's output
 * rows, which stay in L1; the innermost loop runs over the output's
 * columns, a constant extent the loop vectorizer turns into the target's
 * widest vectors (b's rows are contiguous, so it reads b at the rate of
 * the cache it comes from). Each output is summed over k in order, one
 * fused multiply-add at a time where the target has them, so the result
 * does not depend on the rows around it nor on the thread count.
 */
#include "cg_kernels.h"

/* Rows computed together: each row of b is read once per block and used
 * for ROWS outputs. */
enum { ROWS = 4 };

/* Where BLAS catches up, measured on the MNIST MLP's [M, 784] @ [784,
 * 256] (docs/BENCHMARKS.md): with SSE2 the generated kernel is 2.3x
 * faster at one row and slower from 4, with AVX2 faster up to 8, with
 * AVX-512 up to 16. */
int64_t cg_small_gemm_limit(const Cg *c)
{
    return c->vector_bytes >= 64 ? 12 : c->vector_bytes >= 32 ? 6 : 2;
}

int64_t cg_small_gemm_rows(const Cg *c, DType t, bool ta, bool tb, Dim k, Dim n)
{
    /* f64 products stay in BLAS: they are the gradient checks' reference
     * path, whose results should not change with the batch */
    if (t != DT_F32 || ta || tb || k.batch || n.batch)
        return 0;
    return c->gemm_rows;
}

/* out[i0 .. i0+R, :] = a[i0 .. i0+R, :] @ b for R rows. */
static void block(Cg *c, int64_t K, int64_t N, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                  LLVMValueRef i0, int R)
{
    LLVMValueRef orow = cg_gep(c, DT_F32, out, cg_mul(c, i0, cg_i64(c, N)));
    LLVMValueRef arow = cg_gep(c, DT_F32, a, cg_mul(c, i0, cg_i64(c, K)));
    cg_zero(c, DT_F32, orow, cg_i64(c, R * N));
    CgLoop lk, ln;
    LLVMValueRef k = cg_loop_begin(c, cg_i64(c, K), &lk);
    LLVMValueRef s[ROWS];
    for (int r = 0; r < R; r++)
        s[r] = cg_load(c, DT_F32, arow, cg_add(c, cg_i64(c, r * K), k));
    LLVMValueRef brow = cg_gep(c, DT_F32, b, cg_mul(c, k, cg_i64(c, N)));
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, N), &ln);
    LLVMValueRef w = cg_load(c, DT_F32, brow, j);
    for (int r = 0; r < R; r++) {
        LLVMValueRef at = cg_add(c, cg_i64(c, r * N), j);
        LLVMValueRef args[] = {s[r], w, cg_load(c, DT_F32, orow, at)};
        cg_store(c, DT_F32, cg_intrinsic(c, "llvm.fmuladd", c->f32, args, 3), orow, at);
    }
    cg_loop_end(c, &ln);
    cg_loop_end(c, &lk);
}

/* `void NAME.gemm.f32.KxN(ptr noalias out, ptr noalias a, ptr noalias b,
 * i64 m)`: out[m, N] = a[m, K] @ b[K, N], row-major and dense. */
static LLVMValueRef gemm_fn(Cg *c, int64_t K, int64_t N)
{
    const char *name =
        arena_printf(c->g->arena, "%s.gemm.f32.%lldx%lld", c->g->name, (long long)K, (long long)N);
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->ptr, c->i64};
    CgSaved saved;
    bool made;
    LLVMValueRef fn = cg_helper_begin(c, name, LLVMFunctionType(c->voidt, pt, 4, false), 7u,
                                      &saved, &made);
    if (!made)
        return fn;
    vec_push(c->g->arena, &c->gemms,
             arena_printf(c->g->arena, "%lldx%lld", (long long)K, (long long)N));
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2),
                 M = LLVMGetParam(fn, 3);
    LLVMValueRef blocks = LLVMBuildSDiv(c->b, M, cg_i64(c, ROWS), "");
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, blocks, &l);
    block(c, K, N, out, a, b, cg_mul(c, i, cg_i64(c, ROWS)), ROWS);
    cg_loop_end(c, &l);
    /* the 0-3 rows left: a pair, then one */
    LLVMValueRef done = cg_mul(c, blocks, cg_i64(c, ROWS)), left = LLVMBuildSub(c->b, M, done, "");
    LLVMBasicBlockRef join = cg_if_begin(c, LLVMBuildICmp(c->b, LLVMIntSGE, left, cg_i64(c, 2), ""));
    block(c, K, N, out, a, b, done, 2);
    cg_if_end(c, join);
    join = cg_if_begin(c, LLVMBuildTrunc(c->b, left, c->i1, ""));
    block(c, K, N, out, a, b, LLVMBuildSub(c->b, M, cg_i64(c, 1), ""), 1);
    cg_if_end(c, join);
    LLVMBuildRetVoid(c->b);
    cg_helper_end(c, &saved);
    return fn;
}

void cg_small_gemm(Cg *c, int64_t K, int64_t N, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                   LLVMValueRef M)
{
    LLVMValueRef fn = gemm_fn(c, K, N), args[] = {out, a, b, M};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 4, "");
}
