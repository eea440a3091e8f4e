/*
 * Internal to codegen/: the kernels, one file per op family with the
 * family names of passes/shape_*.c and passes/grad_*.c, and the dispatch
 * that picks a family's entry for each plan step (dispatch.c). Each
 * family's entry emits the kernel function of one step with
 * cg_kernel_begin (cg_frame.h) and returns it.
 *
 * Between families, calls go one way only: the elementwise group kernel
 * (eltwise.c) runs the matrix product (reduce.c) or the convolution
 * (conv.c) that pass_fuse put at the head of its group. No other family
 * calls another.
 */
#ifndef DLC_CG_KERNELS_H
#define DLC_CG_KERNELS_H

#include "cg_frame.h"

/* ---- family entries (called by dispatch.c) ------------------------------ */

/* eltwise.c: elementwise groups -- a root, the nodes pass_fuse folded into
 * it, and its matrix product or convolution if any -- including
 * broadcast_to, dropout and the elementwise backward primitives. */
LLVMValueRef cg_kernel_eltwise(Cg *c, Node *step);
/* reduce.c: softmax, log_softmax, sum, mean, max, min, var, argmax. */
LLVMValueRef cg_kernel_reduce(Cg *c, Node *step);
/* loss.c: cross_entropy, nll_loss and the pair losses. */
LLVMValueRef cg_kernel_loss(Cg *c, Node *step);
/* layout.c: reshape and flatten copies, transpose, concat, stack, zeros,
 * ones, one_hot, slice, slice_update. */
LLVMValueRef cg_kernel_layout(Cg *c, Node *step);
/* select.c: gather and its scatter-add gradient, tril, triu, arange, eye. */
LLVMValueRef cg_kernel_select(Cg *c, Node *step);
/* conv.c: convolutions and their gradients (K_CONV). */
LLVMValueRef cg_kernel_conv(Cg *c, Node *step);
/* pool.c: pooling, upsampling and their gradients (K_POOL). */
LLVMValueRef cg_kernel_pool(Cg *c, Node *step);
/* norm.c: batch norm and layer norm (K_NORM). */
LLVMValueRef cg_kernel_norm(Cg *c, Node *step);
/* seq.c: embedding, rnn, lstm, gru, attention. */
LLVMValueRef cg_kernel_seq(Cg *c, Node *step);

/* ---- emitters one family lends another ------------------------------------ */

/* An elementwise epilogue of a product (eltwise.c), which the product's
 * tasks apply to each part of out [M, N] they complete, while it is in
 * their core's cache: run(c, e, v, r0, r1, c0, c1) over rows [r0, r1)
 * by columns [c0, c1), v the task's copies of the nvals values vals of
 * the kernel function that it reads. */
typedef struct CgEpilogue CgEpilogue;
struct CgEpilogue {
    void (*run)(Cg *c, const CgEpilogue *e, LLVMValueRef *v, LLVMValueRef r0, LLVMValueRef r1,
                LLVMValueRef c0, LLVMValueRef c1);
    LLVMValueRef *vals;
    int nvals;
    void *ctx;
};

/* A chain of elementwise ops a kernel applies to each value it makes
 * before it stores it (eltwise.c builds it for a batch norm's fused
 * activation and residual add): apply(c, ch, vals, v, at) is the chain's
 * value at v for the output's element at (an i64 offset), vals the
 * kernel's copies of the nvals values ch->vals (its other operands, read
 * at the same offset). */
typedef struct CgChain CgChain;
struct CgChain {
    LLVMValueRef (*apply)(Cg *c, const CgChain *ch, LLVMValueRef *vals, LLVMValueRef v,
                          LLVMValueRef at);
    LLVMValueRef *vals;
    int nvals;
    void *ctx;
};

/* norm.c: batch norm n of the inputs ins (x, gamma, beta, running mean
 * and variance) into out, in the current kernel function, chain (or
 * NULL) applied to each value. */
void cg_emit_batch_norm(Cg *c, Node *n, LLVMValueRef out, LLVMValueRef *ins, const CgChain *chain);

/* reduce.c: out = a @ b with NumPy's rules for matmul node m, into the
 * current kernel function; part: its step's scratch when it has one
 * (cg_gemm_splits_k), else NULL. Whether it applied epi (NULL: none),
 * which only one generated product over the whole of out does. */
bool cg_emit_matmul(Cg *c, Node *m, LLVMValueRef a, LLVMValueRef b, LLVMValueRef out,
                    LLVMValueRef part, const CgEpilogue *epi);

/* Products the compiler generates (gemm.c). cg_small_gemm_rows: up to how
 * many rows (with ta: rows of b, the inner extent k) a product of type t,
 * flags ta/tb (not both), inner extent k and output columns n runs in generated code
 * rather than BLAS (0: never; with AVX-512 and no --gemm-rows,
 * CG_ANY_ROWS for a b kept in L2). */
int64_t cg_small_gemm_rows(const Cg *c, DType t, bool ta, bool tb, Dim k, Dim n);
enum { CG_ANY_ROWS = 1 << 30 };           /* cg_small_gemm_rows: no limit */
int64_t cg_small_gemm_limit(const Cg *c); /* the cost model's, for c's vectors */
/* A window onto an image as the rows of a product's b (a direct
 * convolution, conv.c): row (ch, i, j), ch < c, i < kh, j < kw, that is
 * row (ch*kh + i)*kw + j, starts at element ch*cs + i*wp + j of the image
 * (channels cs apart, rows wp) and runs on in memory order. With strides
 * sh, sw above 1 the image is a channel's phases, planes of ps elements
 * holding the pixels of one (row mod sh, column mod sw) in the order of
 * cg_win_phases: tap (i, j) reads plane (i % sh, j % sw) from row i / sh,
 * column j / sw. With keep (b's window only, not accumulated), out's
 * columns, wp to an image row, are stored without the wrapped ones: the
 * first keep of each wp, at keep to a row (out's rows ldo apart as
 * ever); 0 stores them all. */
typedef struct {
    int64_t c, kh, kw, cs, wp;
    int64_t sh, sw, ps; /* 1, 1, 0 for an unstrided image */
    int64_t keep;
} CgWindow;
/* Where tap (ch, i, j) of w starts in its image (i, j, ch: i64 values) */
LLVMValueRef cg_win_tap(Cg *c, const CgWindow *w, LLVMValueRef ch, LLVMValueRef i, LLVMValueRef j);
/* How a product reads a along k when its rows are not dense
 * (CgProduct.aw): element (r, k) at a + r*lda + k*k; with a window b,
 * whose k is tap (ch, ti, tj), at a + r*lda + ch*k + ti*i + tj*j. A
 * convolution's input gradient so reads its weights [C, O, kh, kw]
 * transposed and flipped (strides O*kh*kw, -kw, -1) where it copied
 * them for every image. k 0: dense. */
typedef struct {
    int64_t k, i, j;
} CgAWalk;
/* out[M, N] = a[M, K] @ b[K, N] (acc: +=; ta: a^T, a stored [K, M]; tb:
 * b^T, b stored [N, K]), b dense or, win given, a window (its rows are
 * b's, or b^T's with tb, or with wa a's onto the image a), the rows of
 * a and out lda and ldo elements apart; N known, and K unless ta. */
typedef struct {
    LLVMValueRef M, K;
    int64_t N;
    LLVMValueRef a, lda, b, out, ldo;
    bool acc, ta, tb;
    const CgWindow *win;
    bool wa;           /* win is a's rows, not b's (then acc, and b dense) */
    int64_t pk;        /* b packed (cg_pack_b) in panels of pk rows; 0: dense */
    LLVMValueRef ldb;  /* b's rows this many elements apart, not N (one
                        * gate's columns of a layer's W_ih), or NULL */
    LLVMValueRef part; /* [M, N] for the partial product of a cut along k
                        * (cg_gemm_splits_k), or NULL */
    int64_t kmax;      /* K's largest value when K is a value (ta), or 0 */
    const CgEpilogue *epi; /* applied where cg_product says so, or NULL */
    CgAWalk aw;            /* a's walk along k (not with ta, tb, wa), or 0s */
} CgProduct;
/* Packed b, for a product repeated over one b (a recurrent layer's
 * steps): cg_pack_b writes b [K, N] (tb: b^T, b stored [N, K]) into
 * panels of cg_pack_width columns, each [K, width] row after row
 * (cg_packed_floats at most), so that a tile reads its columns of b in
 * memory order, where b's rows put every step k on another page;
 * CgProduct.pk then gives the panel's rows (its b may start at a row
 * within). cg_packs: whether a product [at most m rows, K] @ [K, N]
 * over one b runs generated and packed at every row count. */
int64_t cg_pack_width(const Cg *c);
void cg_pack_b(Cg *c, LLVMValueRef dst, LLVMValueRef b, int64_t K, int64_t N, bool tb);
bool cg_packs(const Cg *c, DType t, int64_t K, int64_t N, int64_t m);
/* Rows of f32 at p, ld apart; with w, rows of w elements laid at a pitch:
 * row k at (k / w) * pitch + k % w rows from p (an image's rows at a
 * window's pitch). */
typedef struct {
    LLVMValueRef p, ld;
    int64_t w, pitch;
} CgRows;
/* dst's row k, element j = b[j * ld + k] for k < K, j < J: b [J, K]
 * transposed, V x V blocks at a time in registers (gemm_pack.c) */
void cg_transpose(Cg *c, const CgRows *dst, LLVMValueRef b, LLVMValueRef ld, LLVMValueRef K,
                  LLVMValueRef J);
/* p in generated code when M (ta: K) is within cg_small_gemm_rows, b is
 * a window or packed, else BLAS. Whether it applied p->epi: only where
 * every row runs generated, untransposed a and dense b. */
bool cg_product(Cg *c, DType t, const CgProduct *p);
/* cg_product of all extents known, b dense and out's rows N apart (a
 * convolution's weights times an image's columns, and their gradients) */
void cg_product_c(Cg *c, DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, LLVMValueRef a,
                  int64_t lda, LLVMValueRef b, bool acc, LLVMValueRef out);

/* conv.c: emits, into the current kernel function, the convolution n
 * (conv2d, conv1d, conv_transpose2d) of the images at xp with the weights
 * at wp into out, with col the im2col/column scratch buffer (NULL for the
 * pointwise path; required for the transposed one). When epilogue is
 * given, it is called inside the loop over images after image b (i64) is
 * complete in out. */
typedef void (*CgImageFn)(Cg *c, void *ctx, LLVMValueRef b);
void cg_emit_conv(Cg *c, Node *n, LLVMValueRef xp, LLVMValueRef wp, LLVMValueRef out,
                  LLVMValueRef col, CgImageFn epilogue, void *ctx);

/* ---- helpers of the image families ------------------------------------------ */

/* Elements of the dimensions from..rank-1 of s at run time (a shape rule
 * may leave the batch there, e.g. global pooling of [2, 3, B]). */
static inline LLVMValueRef cg_tail_numel(Cg *c, const Shape *s, int from)
{
    Shape t = {0};
    for (int i = from; i < s->rank; i++)
        t.d[t.rank++] = s->d[i];
    return cg_numel(c, &t);
}

/* 0 <= i < n, for i64 i and constant n > 0 */
static inline LLVMValueRef cg_in_range(Cg *c, LLVMValueRef i, int64_t n)
{
    return LLVMBuildICmp(c->b, LLVMIntULT, i, cg_i64(c, n), "");
}

/* ---- dispatch (dispatch.c; cg_op_has_kernel in codegen.h) ----------------- */

/* The kernel function of one plan step and the nodes whose buffers it
 * takes after the output (in[nin]); fn is NULL for a view, which shares
 * its input's bytes and needs no code. */
typedef struct {
    LLVMValueRef fn;
    Node **in;
    int nin;
} CgKernel;
CgKernel cg_kernel(Cg *c, Node *step);

/* Why plan p cannot be compiled in this mode (a message in the graph's
 * arena), NULL when it can. */
const char *cg_plan_unsupported(const Graph *g, const MemPlan *p, bool training);

#endif
