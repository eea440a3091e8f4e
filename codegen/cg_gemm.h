/*
 * Internal to the generated products: gemm.c (which products, their
 * tasks), gemm_kernel.c (the kernels), gemm_pack.c (b's panels).
 */
#ifndef DLC_CG_GEMM_H
#define DLC_CG_GEMM_H

#include "cg_kernels.h"

/* Rows of a tile: tasks cut out's rows in multiples of it. */
enum { CG_TILE_ROWS = 4 };

/* The kernel of out[m, N] (+)= a[m, K] @ b[K, N] (acc: +=; ta: a^T, a
 * stored [k, m], k a parameter; win: b a window onto an image; aw: a's
 * walk along k, or NULL; pk: b
 * packed in panels of pk rows, cont: each sum starting from out's value),
 * made on first use; `void (ptr out, ptr a, ptr b, i64 m, i64 k, i64
 * lda, i64 ldo[, i64 cols])`, cols a packed b's columns to make. any:
 * the product runs it at any row count (--stats marks it *). */
LLVMValueRef cg_gemm_fn(Cg *c, int64_t K, int64_t N, bool acc, bool ta, const CgWindow *win,
                        const CgAWalk *aw, int64_t pk, bool cont, bool any);
/* out[m, N] += window[m, K] @ b[K, N], a's rows the window's onto the
 * image a (k and lda unused). */
LLVMValueRef cg_gemm_wa_fn(Cg *c, const CgWindow *win, int64_t K, int64_t N);
/* The same for a @ b^T, b stored [N, K], by dot products (not packed). */
LLVMValueRef cg_gemm_tb_fn(Cg *c, int64_t K, int64_t N, bool acc, const CgWindow *win, bool any);

/* Rows [0, K) and columns [0, cols) of b (tb: b^T), its rows (tb:
 * columns) ld apart, into the panel dst [K, cg_pack_width]; cols is the
 * width, or N % width for b's last panel. */
void cg_pack_panel(Cg *c, LLVMValueRef dst, LLVMValueRef b, LLVMValueRef K, LLVMValueRef ld,
                   LLVMValueRef cols, int64_t N, bool tb);
/* The columns of b's panel p: from p * width, at most width, up to N. */
LLVMValueRef cg_panel_width(Cg *c, LLVMValueRef p, int64_t N);

#endif
