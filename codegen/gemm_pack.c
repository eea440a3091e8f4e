/*
 * Packing b for the generated products: a panel of b's columns as wide
 * as a tile (cg_pack_width), copied row after row into memory the
 * kernel then reads in order (gemm_kernel.c's packed tiles). A
 * transposed b (w of dy @ w^T, stored [N, K]) is transposed on the way,
 * V x V blocks at a time in registers. Used by a recurrent layer's
 * weights packed once for all its steps (cg_pack_b) and by the tasks of
 * gemm.c, each packing its panel onto its stack.
 */
#include "cg_gemm.h"

/* Rows [0, K) of a panel of n columns (n a constant), b's rows ld apart,
 * into dst's rows of w, in the target's vectors, the last one masked. A
 * loop over a row's columns became a call of memcpy per row (of 96
 * bytes with AVX2): 4% of the GPT's training step at 1 thread. */
static void copy_rows(Cg *c, LLVMValueRef dst, LLVMValueRef b, LLVMValueRef K, LLVMValueRef ld,
                      int64_t n)
{
    int V = c->vector_bytes / 4;
    LLVMTypeRef vt = LLVMVectorType(c->f32, (unsigned)V);
    CgLoop lk;
    LLVMValueRef k = cg_loop_begin(c, K, &lk);
    LLVMValueRef from = cg_gep(c, DT_F32, b, cg_mul(c, k, ld)),
                 to = cg_gep(c, DT_F32, dst, cg_mul(c, k, cg_i64(c, cg_pack_width(c))));
    for (int64_t v = 0; v < n; v += V) {
        int lanes = n - v < V ? (int)(n - v) : V;
        cg_store_lanes(c, cg_load_lanes(c, vt, cg_gep(c, DT_F32, from, cg_i64(c, v)), lanes),
                       cg_gep(c, DT_F32, to, cg_i64(c, v)), lanes);
    }
    cg_loop_end(c, &lk);
}

/* Where row k of a transposed b goes in dst (cg_transpose): k rows of
 * dst.ld in, or with dst.w, rows of w laid at dst.pitch. */
static LLVMValueRef dst_row(Cg *c, const CgRows *dst, LLVMValueRef k)
{
    if (dst->w)
        k = cg_add(c,
                   cg_mul(c, LLVMBuildSDiv(c->b, k, cg_i64(c, dst->w), ""), cg_i64(c, dst->pitch)),
                   LLVMBuildSRem(c->b, k, cg_i64(c, dst->w), ""));
    return cg_gep(c, DT_F32, dst->p, cg_mul(c, k, dst->ld));
}

/* dst row k, element j = b[j * ld + k] for k in [k0, k1), j in [j0, j1) */
static void transpose_scalar(Cg *c, const CgRows *dst, LLVMValueRef b, LLVMValueRef k0,
                             LLVMValueRef k1, LLVMValueRef j0, LLVMValueRef j1, LLVMValueRef ld)
{
    CgLoop lk, lj;
    LLVMValueRef k = cg_add(c, k0, cg_loop_begin(c, LLVMBuildSub(c->b, k1, k0, ""), &lk));
    LLVMValueRef row = dst_row(c, dst, k);
    LLVMValueRef j = cg_add(c, j0, cg_loop_begin(c, LLVMBuildSub(c->b, j1, j0, ""), &lj));
    cg_store(c, DT_F32, cg_load(c, DT_F32, b, cg_add(c, cg_mul(c, j, ld), k)), row, j);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lk);
}

/* The same over k in [0, K), j in [0, J), both multiples of V, by V x V
 * blocks: V rows of b loaded along k, transposed in registers, stored
 * along j. Each stage s swaps, in every pair of rows q and q + s (bit s
 * of q clear), row q's lanes with bit s set and row q + s's with it
 * clear: after the stages for every bit, lane i of row q is the old
 * lane q of row i. (A scalar copy took a third of a panel's time.) */
static void transpose_blocks(Cg *c, const CgRows *dst, LLVMValueRef b, LLVMValueRef K,
                             LLVMValueRef J, LLVMValueRef ld)
{
    int V = c->vector_bytes / 4;
    LLVMTypeRef vt = LLVMVectorType(c->f32, (unsigned)V);
    LLVMValueRef Vs = cg_i64(c, V);
    CgLoop lk, lj;
    LLVMValueRef k = cg_mul(c, cg_loop_begin(c, LLVMBuildSDiv(c->b, K, Vs, ""), &lk), Vs);
    LLVMValueRef rows[16];
    for (int q = 0; q < V; q++)
        rows[q] = dst_row(c, dst, cg_add(c, k, cg_i64(c, q)));
    LLVMValueRef j = cg_mul(c, cg_loop_begin(c, LLVMBuildSDiv(c->b, J, Vs, ""), &lj), Vs);
    LLVMValueRef u[16], idx[16];
    for (int q = 0; q < V; q++)
        u[q] = cg_load_lanes(
            c, vt, cg_gep(c, DT_F32, b, cg_add(c, cg_mul(c, cg_add(c, j, cg_i64(c, q)), ld), k)),
            V);
    for (int st = 1; st < V; st *= 2)
        for (int q = 0; q < V; q++) {
            if (q & st)
                continue;
            LLVMValueRef lo = u[q], hi = u[q + st];
            for (int i = 0; i < V; i++) /* lanes of lo (0..V) or hi (V..2V) */
                idx[i] = LLVMConstInt(c->i32, (unsigned long long)(i & st ? V + i - st : i), 0);
            u[q] = LLVMBuildShuffleVector(c->b, lo, hi, LLVMConstVector(idx, (unsigned)V), "");
            for (int i = 0; i < V; i++)
                idx[i] = LLVMConstInt(c->i32, (unsigned long long)(i & st ? V + i : i + st), 0);
            u[q + st] = LLVMBuildShuffleVector(c->b, lo, hi, LLVMConstVector(idx, (unsigned)V), "");
        }
    for (int q = 0; q < V; q++)
        cg_store_lanes(c, u[q], cg_gep(c, DT_F32, rows[q], j), V);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lk);
}

void cg_transpose(Cg *c, const CgRows *dst, LLVMValueRef b, LLVMValueRef ld, LLVMValueRef K,
                  LLVMValueRef J)
{
    LLVMValueRef V = cg_i64(c, c->vector_bytes / 4);
    LLVMValueRef kv = cg_mul(c, LLVMBuildSDiv(c->b, K, V, ""), V),
                 jv = cg_mul(c, LLVMBuildSDiv(c->b, J, V, ""), V);
    transpose_blocks(c, dst, b, kv, jv, ld);
    /* the columns past the whole blocks, then the rows of k */
    transpose_scalar(c, dst, b, cg_i64(c, 0), K, jv, J, ld);
    transpose_scalar(c, dst, b, kv, K, cg_i64(c, 0), jv, ld);
}

/* (cg_gemm.h) The lanes past cols stay unwritten: a last panel's tiles
 * load only its columns. */
void cg_pack_panel(Cg *c, LLVMValueRef dst, LLVMValueRef b, LLVMValueRef K, LLVMValueRef ld,
                   LLVMValueRef cols, int64_t N, bool tb)
{
    int64_t w = cg_pack_width(c), last = N % w;
    if (tb) {
        cg_transpose(c, &(CgRows){.p = dst, .ld = cg_i64(c, w)}, b, ld, K, cols);
        return;
    }
    if (!last) {
        copy_rows(c, dst, b, K, ld, w);
        return;
    }
    LLVMBasicBlockRef whole = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "pack.whole");
    LLVMBasicBlockRef part = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "pack.last");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "pack.done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, cols, cg_i64(c, w), ""), whole, part);
    LLVMPositionBuilderAtEnd(c->b, whole);
    copy_rows(c, dst, b, K, ld, w);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, part);
    copy_rows(c, dst, b, K, ld, last);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
}

/* the columns of b's panel p: from p*w, at most w, up to N */
LLVMValueRef cg_panel_width(Cg *c, LLVMValueRef p, int64_t N)
{
    int64_t w = cg_pack_width(c);
    return cg_smin(c, cg_i64(c, w),
                   LLVMBuildSub(c->b, cg_i64(c, N), cg_mul(c, p, cg_i64(c, w)), ""));
}

/* panel p, row k, lane j = b[k, p*w + j] */
void cg_pack_b(Cg *c, LLVMValueRef dst, LLVMValueRef b, int64_t K, int64_t N, bool tb)
{
    int64_t w = cg_pack_width(c);
    CgLoop lp;
    LLVMValueRef p = cg_loop_begin(c, cg_i64(c, (N + w - 1) / w), &lp);
    LLVMValueRef col0 = cg_mul(c, p, cg_i64(c, w));
    cg_pack_panel(c, cg_gep(c, DT_F32, dst, cg_mul(c, p, cg_i64(c, K * w))),
                  cg_gep(c, DT_F32, b, tb ? cg_mul(c, col0, cg_i64(c, K)) : col0), cg_i64(c, K),
                  cg_i64(c, tb ? K : N), cg_panel_width(c, p, N), N, tb);
    cg_loop_end(c, &lp);
}
