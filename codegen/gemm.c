/*
 * Matrix products the compiler generates itself: a product with few rows
 * (batch 1 inference, above all) whose inner and output extents are known
 * when the model is compiled. There BLAS loses most of its time packing
 * the weights into its panel layout, work it can only win back over many
 * rows: the MNIST MLP's [1, 784] @ [784, 256] spent 40% of its time in
 * OpenBLAS's packing and ran at 45 us a forward.
 *
 * This file decides, per product from its shape and the target, whether
 * it runs generated and up to how many rows, and cuts it into tasks on
 * the pool: chunks of rows, halves of k, panels of b packed per task,
 * blocks of a transposed a's inner extent. The kernels the tasks call
 * are gemm_kernel.c's, the packing gemm_pack.c's. Every output is one
 * kernel's sum over k in order, so the cut, and the thread count, do not
 * change it.
 */
#include <string.h>

#include "cg_gemm.h"

enum { ROWS = CG_TILE_ROWS };

/* Where BLAS catches up, measured on the MNIST MLP's [M, 784] @ [784,
 * 256] (docs/BENCHMARKS.md, Generated products); with AVX-512 it did not
 * up to 64 rows, at 1 or 2 threads (OpenBLAS runs its AVX2 kernels here). */
int64_t cg_small_gemm_limit(const Cg *c)
{
    return c->vector_bytes >= 64 ? 64 : c->vector_bytes >= 32 ? 8 : 2;
}

/* With AVX2 or AVX-512 and the limit left to dlc, a b that stays in a
 * core's L2 and is at least 64 lanes wide along its vectors (b's
 * columns; its rows when transposed) runs generated at any row count: a
 * Transformer's [B*T, 128] @ [128, 384] forward rose by a quarter
 * (AVX-512), LeNet-5's [64, 400] @ [400, 120] ran at 1.09x OpenBLAS
 * (AVX2), 2x at 2 threads, where BLAS ran on one. A narrower b leaves
 * many lanes of its tiles masked (a deep convolution's 7 x 7 columns),
 * where BLAS stayed ahead; a b past L2 (the
 * MNIST MLP's 784 x 256, 784 KiB, on a Zen 3 core's 512 KiB) lost 5-10%
 * to OpenBLAS at 64 rows. An untransposed b of at most SMALL_B bytes and
 * two vectors of columns runs generated at any row count too: BLAS's
 * packing costs more than the product there (attention's per-head
 * [64, 64] @ [64, 32] at 64 rows, AVX2: 1.3-1.4x OpenBLAS generated,
 * [64, 16] @ [16, 64] 1.8x); transposed (q k^T), packed by every task
 * for the outer-product kernel (row_tasks): [64, 32] @ [64, 32]^T
 * 0.86-0.92x -> 1.49-1.81x, where its dot products gained nothing. */
enum { SMALL_B = 16384 };

/* b has two vectors of columns or more (packing it fills its tiles) */
static bool two_vectors(const Cg *c, int64_t N)
{
    return N >= 2 * c->vector_bytes / 4;
}

static bool small_b(const Cg *c, int64_t K, int64_t N)
{
    return two_vectors(c, N) && K * N * 4 <= SMALL_B;
}

static bool any_rows(const Cg *c, int64_t K, int64_t N, bool tb)
{
    int64_t lanes = tb ? K : N;
    return c->gemm_any && ((lanes >= 64 && K * N * 4 <= c->l2_bytes) || small_b(c, K, N));
}

int64_t cg_small_gemm_rows(const Cg *c, DType t, bool ta, bool tb, Dim k, Dim n)
{
    /* f64 products stay in BLAS: they are the gradient checks' reference
     * path, whose results should not change with the batch */
    if (t != DT_F32 || (ta && tb) || n.batch || !c->gemm_rows)
        return 0;
    if (ta) /* the limit bounds k, the rows of b */
        return c->gemm_rows;
    if (k.batch)
        return 0;
    return any_rows(c, k.n, n.n, tb) ? CG_ANY_ROWS : c->gemm_rows;
}

/* A task body's values: vals[0, n), then p's epilogue's (epi_block
 * finds them at n) */
static LLVMValueRef *with_epi(Cg *c, const CgProduct *p, const LLVMValueRef *vals, int n,
                              int *total)
{
    int ne = p->epi ? p->epi->nvals : 0;
    LLVMValueRef *all = arena_alloc(c->g->arena, sizeof *all * (size_t)(n + ne + 1));
    memcpy(all, vals, sizeof *all * (size_t)n);
    for (int i = 0; i < ne; i++)
        all[n + i] = p->epi->vals[i];
    *total = n + ne;
    return all;
}

/* p's epilogue over rows [r0, r1) by columns [c0, c1) of out, once a
 * task has completed them; v: the body's values, as with_epi made them */
static void epi_block(Cg *c, const CgProduct *p, LLVMValueRef *v, int n, LLVMValueRef r0,
                      LLVMValueRef r1, LLVMValueRef c0, LLVMValueRef c1)
{
    if (p->epi)
        p->epi->run(c, p->epi, v + n, r0, r1, c0, c1);
}

enum { ROW_VALS = 6 }; /* gemm_rows's: out, a, b, k, lda, ldo */

/* rows [lo, hi) of the product p, then its epilogue's */
static void gemm_rows(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const CgProduct *p = ctx;
    int64_t K = p->ta ? -1 : LLVMConstIntGetSExtValue(p->K);
    bool any = !p->ta && any_rows(c, K, p->N, p->tb);
    LLVMValueRef fn = p->wa ? cg_gemm_wa_fn(c, p->win, K, p->N)
                      : p->tb
                          ? cg_gemm_tb_fn(c, K, p->N, p->acc, p->win, any)
                          : cg_gemm_fn(c, K, p->N, p->acc, p->ta, p->win, &p->aw, 0, false, any);
    LLVMValueRef out = vals[0], a = vals[1], b = vals[2], k = vals[3], lda = vals[4], ldo = vals[5];
    LLVMValueRef args[] = {cg_gep(c, DT_F32, out, cg_mul(c, lo, ldo)),
                           cg_gep(c, DT_F32, a, p->ta ? lo : cg_mul(c, lo, lda)),
                           b,
                           LLVMBuildSub(c->b, hi, lo, ""),
                           k,
                           lda,
                           ldo};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 7, "");
    epi_block(c, p, vals, ROW_VALS, lo, hi, cg_i64(c, 0), cg_i64(c, p->N));
}

/* A task's packed panel of b on its stack: at most 16 KiB
 * (docs/RUNTIME.md states the stack a call needs); PANEL_ROWS rows of
 * the widest panels, AVX-512's. */
enum { PANEL_BYTES = 16384, PANEL_ROWS = 64 };

/* A dense b at any row count, from pack_from() rows of out on, is
 * packed a panel at a time by each task of strided_gemm when its panel
 * fits on the stack: the panel is then read in memory order and stays in
 * L1 while the task's rows pass, where rows() walks all of b, from L2,
 * for every 4 rows. The GPT's [2048, 128] @ [128, 512] ran at 0.90x
 * OpenBLAS's speed unpacked, 1.04x packed (AVX2). The packed kernel sums
 * each output over k in order from 0, as the other does: the same bits
 * at any row count. A panel over the stack's budget (the GPT's K = 512)
 * is packed in blocks of k, each block's product continuing every sum
 * from out (the .cont kernels start from out's values), so the bits are
 * those of one pass; not for a product that adds its whole sum to out
 * (acc). A transposed b (the backward's dy @ w^T) is packed too,
 * transposed, when it has two vectors of columns: the outer-product
 * kernel beat the dot-product one 1.04x vs 0.73x OpenBLAS at [2048, 128]
 * @ [512, 128]^T, but lost at 10 columns (most lanes of its tiles
 * masked; 156 vs 122 us). Its rows' bits then depend on the row count,
 * as they do between generated and BLAS. */
enum { PACK_MIN_ROWS = 32, PACK_MIN_ROWS_TB = 16 };

static void strided_gemm(Cg *c, const CgProduct *p);

/* The name of a product's task function: the calling kernel's, then
 * what the tasks do (profiles tell the loops apart) */
static const char *task_name(Cg *c, const char *what)
{
    size_t len;
    const char *fn = LLVMGetValueName2(c->fn, &len);
    return arena_printf(c->g->arena, "%.*s.%s", (int)len, fn, what);
}

/* The rows of a K-row b a packed block holds: all, or PANEL_BYTES' worth
 * in whole vectors of 8 */
static int64_t panel_k(const Cg *c, int64_t K)
{
    int64_t most = PANEL_BYTES / 4 / cg_pack_width(c) / 8 * 8;
    return K < most ? K : most;
}

/* The rows of out from which each task packs b, 0 for never (a product
 * at a limit, of a^T, whose panels would not fit the stack, or a b^T of
 * one vector of columns; cg_product sends a packed or strided b
 * elsewhere). Packing pays for copying b (AVX2, bench/product.sh) for an
 * untransposed [K, 120] from 32 rows (1.10x vs 1.01x OpenBLAS at K =
 * 400; 16 rows 1.11x vs 1.13x), a transposed one from 16 (the dot
 * products it replaces are slower: [16, 120] @ [400, 120]^T 1.42x vs
 * 1.19x; 8 rows 1.58x either way; 4 rows 1.9x vs 2.4x), a small b^T
 * (SMALL_B) at every row count. */
static int64_t pack_from(const Cg *c, const CgProduct *p, int64_t limit)
{
    if (limit != CG_ANY_ROWS || p->ta || p->win || p->aw.k || (p->tb && !two_vectors(c, p->N)) ||
        (p->acc && LLVMConstIntGetSExtValue(p->K) * cg_pack_width(c) * 4 > PANEL_BYTES))
        return 0;
    if (!p->tb)
        return PACK_MIN_ROWS;
    return small_b(c, LLVMConstIntGetSExtValue(p->K), p->N) ? 1 : PACK_MIN_ROWS_TB;
}

/* out's rows in tasks of `rows` (gemm_rows), or from `from` rows on (0:
 * never) packed as above */
static void row_tasks(Cg *c, const CgProduct *p, int64_t from, int64_t rows, LLVMValueRef *vals,
                      int nvals, const char *name)
{
    CgProduct q = *p;
    q.ldb = p->tb ? p->K : cg_i64(c, p->N);
    if (from == 1) {
        strided_gemm(c, &q);
        return;
    }
    LLVMBasicBlockRef join = NULL, packed = NULL;
    if (from) {
        packed = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "packed");
        LLVMBasicBlockRef plain = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rows");
        join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, p->M, cg_i64(c, from), ""), packed,
                        plain);
        LLVMPositionBuilderAtEnd(c->b, plain);
    }
    cg_parallel_chunks(c, name, p->M, rows, vals, nvals, gemm_rows, (void *)p);
    if (!from)
        return;
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, packed);
    strided_gemm(c, &q);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
}

/* Rows of a task: at least a task's work over an inner extent K, in a
 * power of two of tiles, so that a batch of a power of two splits into
 * tasks of equal work (a classifier's [64, 256] @ [256, 10] took 28, 28
 * and 8 rows, all but the last on the calling thread) */
static int64_t task_rows(int64_t K, int64_t N)
{
    int64_t rows = ROWS;
    while (rows * K * N < CG_TASK_WORK)
        rows *= 2;
    return rows;
}

/* A product cut along k (CgProduct.part): task t of 2 * groups computes
 * the rows of group t % groups over half t / groups of k, the first half
 * into out, the second into part [M, N]; part is added to out after. */
typedef struct {
    const CgProduct *p;
    int64_t K0, rows; /* the first half's extent, a group's rows */
} SplitK;

static void split_k_tasks(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const SplitK *sk = ctx;
    const CgProduct *p = sk->p;
    int64_t K = LLVMConstIntGetSExtValue(p->K), N = p->N;
    LLVMValueRef out = vals[0], a = vals[1], b = vals[2], M = vals[3], lda = vals[4], ldo = vals[5],
                 part = vals[6], groups = vals[7];
    LLVMValueRef f0 = cg_gemm_fn(c, sk->K0, N, p->acc, false, NULL, NULL, 0, false,
                                 any_rows(c, sk->K0, N, false)),
                 f1 = cg_gemm_fn(c, K - sk->K0, N, false, false, NULL, NULL, 0, false,
                                 any_rows(c, K - sk->K0, N, false));
    CgLoop lt;
    LLVMValueRef t = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lt));
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntULT, t, groups, "");
    LLVMValueRef m0 = cg_mul(c, LLVMBuildURem(c->b, t, groups, ""), cg_i64(c, sk->rows));
    LLVMValueRef ai = cg_gep(c, DT_F32, a, cg_mul(c, m0, lda)), k0 = cg_i64(c, sk->K0);
    LLVMValueRef ld = LLVMBuildSelect(c->b, first, ldo, cg_i64(c, N), "");
    LLVMValueRef args[] = {
        cg_gep(c, DT_F32, LLVMBuildSelect(c->b, first, out, part, ""), cg_mul(c, m0, ld)),
        LLVMBuildSelect(c->b, first, ai, cg_gep(c, DT_F32, ai, k0), ""),
        LLVMBuildSelect(c->b, first, b, cg_gep(c, DT_F32, b, cg_i64(c, sk->K0 * N)), ""),
        cg_smin(c, cg_i64(c, sk->rows), LLVMBuildSub(c->b, M, m0, "")),
        LLVMBuildSelect(c->b, first, k0, cg_i64(c, K - sk->K0), ""),
        lda,
        ld};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(f0), LLVMBuildSelect(c->b, first, f0, f1, ""), args,
                   countof(args), "");
    cg_loop_end(c, &lt);
}

/* rows [lo, hi) of out += part, then the epilogue's */
static void add_part(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const CgProduct *p = ctx;
    LLVMValueRef add = cg_add_fn(c, DT_F32);
    CgLoop l;
    LLVMValueRef i = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &l));
    LLVMValueRef args[] = {cg_gep(c, DT_F32, vals[0], cg_mul(c, i, vals[1])),
                           cg_gep(c, DT_F32, vals[2], cg_mul(c, i, cg_i64(c, p->N))),
                           cg_i64(c, p->N)};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(add), add, args, 3, "");
    cg_loop_end(c, &l);
    epi_block(c, p, vals, 3, lo, hi, cg_i64(c, 0), cg_i64(c, p->N));
}

/* The product cut along k in two halves at run time when b has more
 * elements than a and out together (a dense layer's weights at a small
 * batch) and out has more rows than one task's; else cut into rows. */
static void split_k(Cg *c, const CgProduct *p, int64_t from, int64_t rows, LLVMValueRef *vals,
                    int nvals, const char *name)
{
    int64_t K = LLVMConstIntGetSExtValue(p->K), N = p->N;
    SplitK sk = {.p = p, .K0 = (K + 31) / 32 * 16};
    sk.rows = task_rows(sk.K0, N);
    int64_t most = cg_split_k_rows(K, N);
    LLVMValueRef M = p->M;
    LLVMValueRef cut = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGT, M, cg_i64(c, rows), ""),
                                    LLVMBuildICmp(c->b, LLVMIntSLE, M, cg_i64(c, most), ""), "");
    LLVMBasicBlockRef whole = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rows");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
    LLVMBasicBlockRef halves = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "halves");
    LLVMBuildCondBr(c->b, cut, halves, whole);
    LLVMPositionBuilderAtEnd(c->b, halves);
    LLVMValueRef groups = cg_ntasks(c, M, sk.rows);
    LLVMValueRef sv[] = {p->out, p->a, p->b, M, p->lda, p->ldo, p->part, groups};
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%s.halves", name),
                       cg_mul(c, groups, cg_i64(c, 2)), 1, sv, countof(sv), split_k_tasks, &sk);
    LLVMValueRef av[] = {p->out, p->ldo, p->part};
    int nav;
    LLVMValueRef *avs = with_epi(c, p, av, countof(av), &nav);
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%s.add", name), M, task_rows(1, N), avs, nav,
                       add_part, (void *)p);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, whole);
    row_tasks(c, p, from, rows, vals, nvals, name);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
}

/* the generated product, its run-time extent within the limit */
static void small_gemm(Cg *c, const CgProduct *p, int64_t limit)
{
    /* blocks of whole tiles as tasks on the pool, each about a task's
     * work (with a^T, at k of the limit): a row's sums are the same
     * whichever task computes them */
    int64_t rows = task_rows(p->ta ? limit : LLVMConstIntGetSExtValue(p->K), p->N);
    LLVMValueRef rv[ROW_VALS] = {p->out, p->a, p->b, p->K, p->lda, p->ldo};
    int nvals;
    LLVMValueRef *vals = with_epi(c, p, rv, ROW_VALS, &nvals);
    if (!p->ta && rows >= limit) { /* M never exceeds the limit: one task at most */
        gemm_rows(c, cg_i64(c, 0), p->M, vals, (void *)p);
        return;
    }
    const char *name = task_name(c, "gemm");
    /* (b outweighs the rest only up to cg_split_k_rows: a narrow b, of
     * one column say, never at more than one task's rows) */
    int64_t from = pack_from(c, p, limit);
    if (p->part && cg_split_k_rows(LLVMConstIntGetSExtValue(p->K), p->N) > rows) {
        split_k(c, p, from, rows, vals, nvals, name);
        return;
    }
    row_tasks(c, p, from, rows, vals, nvals, name);
}

static void blas_gemm(Cg *c, DType t, const CgProduct *p)
{
    check(!p->aw.k);
    LLVMValueRef ldb = p->ldb ? p->ldb : p->tb ? p->K : cg_i64(c, p->N);
    cg_gemm(c, t, p->ta, p->tb, p->M, cg_i64(c, p->N), p->K, cg_fconst(c, t, 1), p->a, p->lda, p->b,
            ldb, p->acc ? 1 : 0, p->out, p->ldo);
}

bool cg_packs(const Cg *c, DType t, int64_t K, int64_t N, int64_t m)
{
    /* packed once for all the steps, where BLAS packs it at every step; a
     * task then reads b a panel at a time, so b need not stay in L2 (the
     * char LSTM's 1 MiB W_hh on a Zen 3 core's 512 KiB: its training 17%
     * faster than with BLAS) */
    if (t == DT_F32 && c->gemm_any && N >= 128)
        return true;
    int64_t rows = cg_small_gemm_rows(c, t, false, false, (Dim){.n = K}, (Dim){.n = N});
    return rows > 0 && rows >= m;
}

/* A task's part of out: rows [m0, m0 + m) by one panel's columns
 * [col0, col0 + cols) (by panels from col0 on for packed_gemm's). */
typedef struct {
    LLVMValueRef m0, m, col0, cols;
} PanelTask;

/* Group g of out's M rows, `rows` a group, by panel pn of b's N
 * columns */
static PanelTask group_panel(Cg *c, LLVMValueRef g, LLVMValueRef pn, LLVMValueRef rows,
                             LLVMValueRef M, int64_t N)
{
    PanelTask pt = {.m0 = cg_mul(c, g, rows)};
    pt.m = cg_smin(c, rows, LLVMBuildSub(c->b, M, pt.m0, ""));
    pt.col0 = cg_mul(c, pn, cg_i64(c, cg_pack_width(c)));
    pt.cols = cg_panel_width(c, pn, N);
    return pt;
}

/* Task t of a cut of out's M rows into groups of `rows` by panels of b's
 * N columns, `inner` of the one kind a run of the other: the panels
 * (panel_inner, t % inner the panel) or the groups (t / inner). */
static PanelTask panel_task(Cg *c, LLVMValueRef t, int64_t inner, bool panel_inner,
                            LLVMValueRef rows, LLVMValueRef M, int64_t N)
{
    LLVMValueRef in = cg_i64(c, inner);
    LLVMValueRef q = LLVMBuildUDiv(c->b, t, in, ""), r = LLVMBuildURem(c->b, t, in, "");
    return group_panel(c, panel_inner ? q : r, panel_inner ? r : q, rows, M, N);
}

static LLVMValueRef stack_panel(Cg *c, int64_t k)
{
    check(k * cg_pack_width(c) * 4 <= PANEL_BYTES);
    LLVMValueRef buf =
        cg_alloca(c, LLVMArrayType2(c->f32, (uint64_t)(k * cg_pack_width(c))), "panel");
    LLVMSetAlignment(buf, 64);
    return buf;
}

/* out's part pt (+)= a @ buf by the packed kernel fn, k rows of the
 * panel, a at pt's first row (ta: column) */
static void panel_product(Cg *c, LLVMValueRef fn, const PanelTask *pt, LLVMValueRef out,
                          LLVMValueRef a, LLVMValueRef buf, LLVMValueRef k, LLVMValueRef lda,
                          LLVMValueRef ldo)
{
    LLVMValueRef args[] = {cg_gep(c, DT_F32, out, cg_add(c, cg_mul(c, pt->m0, ldo), pt->col0)),
                           a,
                           buf,
                           pt->m,
                           k,
                           lda,
                           ldo,
                           pt->cols};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 8, "");
}

/* a^T @ b with b packed: tasks of one panel of b's columns by one group
 * of out's rows (groups only when the panels are too few to share out;
 * group after group, so that thread k of n gets the k-th block of out's
 * rows, the weights' rows its update takes, runtime/pool.c), each
 * packing its panel of every block of kb rows of b onto its own stack
 * before the block's product. A panel's block [kb, w] is then read
 * in memory order, where b's rows put every k on another page (the
 * weights' gradient of a recurrent layer: b its gates' adjoints, 4 KiB a
 * row); every element of out takes the blocks in order, from 0, as
 * ta_blocked's do, so the result is the same. */
/* At least TA_TASKS tasks (groups of out's rows by panels), so that the
 * pool's contiguous blocks of tasks carry even work: the MNIST MLP's
 * weight gradient [784, 256] in 11 panels (the last 16 of 24 wide) ran
 * as 11 tasks, 6 on one thread and 4 2/3 of work on the other, 1.62x
 * faster on 2 threads than on 1; in 22 (2 row groups) 1.85x, and the
 * GPT's 12-task ones 5% faster at 2 threads (docs/BENCHMARKS.md).
 * Over an inner extent of more than LONG_K rows (a Transformer's or a
 * recurrent layer's B*T) at least TA_TASKS_LONG: each task streams its
 * rows of a and its panel of b, all K of them, through the caches, so
 * every group of rows reads b again and every panel a. The GPT's
 * [2048, 512]^T @ [2048, 128] in 16 tasks ran at 0.76x OpenBLAS's speed
 * (AVX-512, 1 thread; 0.92x at 2), in 4 at 0.89x (1.08x). */
enum { TA_TASKS = 16, TA_TASKS_LONG = 4, LONG_K = 1024 };

typedef struct {
    const CgProduct *p;
    int64_t kb, M, rows, panels; /* M: out's rows, in groups of rows */
    int64_t span;                /* panels a task, in turn at each block */
} TaTasks;

/* out's rows [m0, m0 + m), the block of b's rows [k0, k0 + kb) at most
 * in panel pt's columns: packed into buf, then multiplied */
static void ta_block(Cg *c, const TaTasks *tt, LLVMValueRef *vals, LLVMValueRef buf,
                     const PanelTask *pt, LLVMValueRef k0, bool acc)
{
    LLVMValueRef a = vals[1], b = vals[2], K = vals[3], lda = vals[4];
    LLVMValueRef N = cg_i64(c, tt->p->N);
    LLVMValueRef kk = cg_smin(c, LLVMBuildSub(c->b, K, k0, ""), cg_i64(c, tt->kb));
    cg_pack_panel(c, buf, cg_gep(c, DT_F32, b, cg_add(c, cg_mul(c, k0, N), pt->col0)), kk, N,
                  pt->cols, tt->p->N, false);
    panel_product(c, cg_gemm_fn(c, -1, tt->p->N, acc, true, NULL, NULL, tt->kb, false, false), pt,
                  vals[0], cg_gep(c, DT_F32, a, cg_add(c, cg_mul(c, k0, lda), pt->m0)), buf, kk,
                  lda, vals[5]);
}

/* A task's block of b's rows from k0 in each of its panels [p0, p1) */
static void ta_span(Cg *c, const TaTasks *tt, LLVMValueRef *vals, LLVMValueRef buf, LLVMValueRef g,
                    LLVMValueRef p0, LLVMValueRef p1, LLVMValueRef k0, bool acc)
{
    CgLoop lp;
    LLVMValueRef pn = cg_add(c, p0, cg_loop_begin(c, LLVMBuildSub(c->b, p1, p0, ""), &lp));
    PanelTask pt = group_panel(c, g, pn, cg_i64(c, tt->rows), cg_i64(c, tt->M), tt->p->N);
    ta_block(c, tt, vals, buf, &pt, k0, acc);
    cg_loop_end(c, &lp);
}

/* Group g's columns of a in rows [k0, k0 + kb), the next block's (none
 * past K), asked for before this block's products: a group reads a
 * part of each of a's rows, lda apart, which the hardware's prefetchers
 * did not follow. The GPT's [2048, 512]^T @ [2048, 128] (4 groups of
 * 128 columns) 2763 -> 2203 us, [2048, 128]^T @ [2048, 128] 750 -> 626;
 * the char LSTM's, whose groups are whole rows, unchanged. */
static void prefetch_a_block(Cg *c, const TaTasks *tt, LLVMValueRef *vals, LLVMValueRef g,
                             LLVMValueRef k0)
{
    LLVMValueRef a = vals[1], K = vals[3], lda = vals[4];
    LLVMValueRef m0 = cg_mul(c, g, cg_i64(c, tt->rows));
    LLVMValueRef m = cg_smin(c, cg_i64(c, tt->rows), LLVMBuildSub(c->b, cg_i64(c, tt->M), m0, ""));
    LLVMValueRef kk = cg_smin(c, cg_i64(c, tt->kb), LLVMBuildSub(c->b, K, k0, "")); /* <= 0: none */
    CgLoop lr;
    LLVMValueRef r = cg_loop_begin(c, kk, &lr);
    LLVMValueRef row = cg_gep(c, DT_F32, a, cg_add(c, cg_mul(c, cg_add(c, k0, r), lda), m0));
    cg_prefetch_rows(c, DT_F32, &row, 1, m);
    cg_loop_end(c, &lr);
}

static void ta_tasks(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const TaTasks *tt = ctx;
    int64_t kb = tt->kb;
    LLVMValueRef buf = stack_panel(c, kb);
    CgLoop lt, lb;
    LLVMValueRef t = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lt));
    /* group t / spans, its panels from span t % spans on */
    LLVMValueRef spans = cg_i64(c, (tt->panels + tt->span - 1) / tt->span);
    LLVMValueRef g = LLVMBuildUDiv(c->b, t, spans, "");
    LLVMValueRef p0 = cg_mul(c, LLVMBuildURem(c->b, t, spans, ""), cg_i64(c, tt->span));
    LLVMValueRef p1 = cg_smin(c, cg_add(c, p0, cg_i64(c, tt->span)), cg_i64(c, tt->panels));
    prefetch_a_block(c, tt, vals, g, cg_i64(c, kb));
    ta_span(c, tt, vals, buf, g, p0, p1, cg_i64(c, 0), tt->p->acc);
    LLVMValueRef K = vals[3];
    LLVMValueRef blocks = LLVMBuildSDiv(c->b, cg_add(c, K, cg_i64(c, kb - 1)), cg_i64(c, kb), "");
    LLVMValueRef i = cg_add(c, cg_loop_begin(c, LLVMBuildSub(c->b, blocks, cg_i64(c, 1), ""), &lb),
                            cg_i64(c, 1));
    prefetch_a_block(c, tt, vals, g, cg_mul(c, cg_add(c, i, cg_i64(c, 1)), cg_i64(c, kb)));
    ta_span(c, tt, vals, buf, g, p0, p1, cg_mul(c, i, cg_i64(c, kb)), true);
    cg_loop_end(c, &lb);
    cg_loop_end(c, &lt);
}

/* Rows of a group when out's M rows are cut into `want` groups */
static int64_t group_rows(int64_t M, int64_t want)
{
    int64_t rows = (M + want - 1) / want;
    return rows < 4 * ROWS ? 4 * ROWS : (rows + ROWS - 1) / ROWS * ROWS;
}

/* The cut of a product over a long inner extent: groups of rows by spans
 * of panels, each span's task walking its panels in turn at each block of
 * k, so that it reads its rows of a once for them all. Over all of K,
 * the tasks read a once per span and b once per group: of the cuts into
 * TA_TASKS_LONG tasks or more, the one that reads least (the most tasks
 * when none has that many). The char LSTM's recurrent weights' gradient
 * [4096, 256]^T @ [4096, 1024] was 16 tasks of one panel each, reading
 * a's 4 MiB 16 times. */
static void long_cut(TaTasks *tt)
{
    int64_t N = tt->p->N, best = -1, most = 0;
    for (int64_t sw = 1; sw <= tt->panels; sw++) {
        int64_t span = (tt->panels + sw - 1) / sw, spans = (tt->panels + span - 1) / span;
        for (int64_t gw = 1; gw <= (tt->M + ROWS - 1) / ROWS; gw++) {
            int64_t rows = group_rows(tt->M, gw), groups = (tt->M + rows - 1) / rows;
            int64_t tasks = groups * spans, reads = spans * tt->M + groups * N;
            bool enough = tasks >= TA_TASKS_LONG;
            if (enough ? best < 0 || reads < best : best < 0 && tasks > most) {
                tt->span = span;
                tt->rows = rows;
                most = tasks;
                if (enough)
                    best = reads;
            }
        }
    }
}

static void ta_packed(Cg *c, const CgProduct *p, int64_t kb)
{
    int64_t w = cg_pack_width(c);
    TaTasks tt = {.p = p,
                  .kb = kb < PANEL_ROWS ? kb : PANEL_ROWS, /* a block's panel on the stack */
                  .M = LLVMConstIntGetSExtValue(p->M),
                  .panels = (p->N + w - 1) / w,
                  .span = 1};
    if (p->kmax > LONG_K)
        long_cut(&tt);
    else
        tt.rows = group_rows(tt.M, (TA_TASKS + tt.panels - 1) / tt.panels);
    int64_t groups = (tt.M + tt.rows - 1) / tt.rows;
    LLVMValueRef vals[] = {p->out, p->a, p->b, p->K, p->lda, p->ldo};
    int64_t spans = (tt.panels + tt.span - 1) / tt.span;
    cg_parallel_chunks(c, task_name(c, "gemm.ta"), cg_i64(c, spans * groups), 1, vals,
                       countof(vals), ta_tasks, &tt);
}

/* a^T @ b over any inner extent K, in blocks of kb rows of b (each kept
 * in L2 while every row of out passes): the first block sets out (adds
 * with acc), the others add; packed when b has two panels or more */
static void ta_blocked(Cg *c, const CgProduct *p, int64_t kb)
{
    if (p->N >= 2 * cg_pack_width(c) && LLVMIsAConstantInt(p->M)) {
        ta_packed(c, p, kb);
        return;
    }
    CgProduct q = *p;
    if (LLVMIsAConstantInt(p->K) && LLVMConstIntGetSExtValue(p->K) <= kb) {
        small_gemm(c, p, kb);
        return;
    }
    q.K = cg_smin(c, p->K, cg_i64(c, kb));
    small_gemm(c, &q, kb);
    CgLoop l;
    LLVMValueRef blocks =
        LLVMBuildSDiv(c->b, cg_add(c, p->K, cg_i64(c, kb - 1)), cg_i64(c, kb), "");
    LLVMValueRef i =
        cg_add(c, cg_loop_begin(c, LLVMBuildSub(c->b, blocks, cg_i64(c, 1), ""), &l), cg_i64(c, 1));
    LLVMValueRef k0 = cg_mul(c, i, cg_i64(c, kb));
    q.K = cg_smin(c, LLVMBuildSub(c->b, p->K, k0, ""), cg_i64(c, kb));
    q.a = cg_gep(c, DT_F32, p->a, cg_mul(c, k0, p->lda));
    q.b = cg_gep(c, DT_F32, p->b, cg_mul(c, k0, cg_i64(c, p->N)));
    q.acc = true;
    small_gemm(c, &q, kb);
    cg_loop_end(c, &l);
}

/* panels [lo, hi) of the packed product p: its columns from lo's on */
static void task_panels(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const CgProduct *p = ctx;
    LLVMValueRef fn = cg_gemm_fn(c, LLVMConstIntGetSExtValue(p->K), p->N, p->acc, false, NULL, NULL,
                                 p->pk, false, true);
    LLVMValueRef w = cg_i64(c, cg_pack_width(c));
    PanelTask pt = {.m0 = cg_i64(c, 0), .m = vals[3], .col0 = cg_mul(c, lo, w)};
    pt.cols = LLVMBuildSub(c->b, cg_smin(c, cg_mul(c, hi, w), cg_i64(c, p->N)), pt.col0, "");
    panel_product(c, fn, &pt, vals[0], vals[1],
                  cg_gep(c, DT_F32, vals[2], cg_mul(c, pt.col0, cg_i64(c, p->pk))), p->K, vals[4],
                  vals[5]);
}

/* A packed product's panels as tasks on the pool, each about a task's
 * work at 64 rows: every thread reads only its panels of b, which stay
 * in its core's L2 from step to step of a recurrent layer, where a cut
 * into rows had every thread read all of b. */
static void packed_gemm(Cg *c, const CgProduct *p)
{
    int64_t w = cg_pack_width(c), K = LLVMConstIntGetSExtValue(p->K), per = 1;
    while (per * 64 * K * w < CG_TASK_WORK)
        per++;
    LLVMValueRef vals[] = {p->out, p->a, p->b, p->M, p->lda, p->ldo};
    cg_parallel_chunks(c, task_name(c, "gemm.packed"), cg_i64(c, (p->N + w - 1) / w), per, vals,
                       countof(vals), task_panels, (void *)p);
}

/* a @ b with b's rows ldb apart (a column block of a wider matrix:
 * rows 4 KiB apart for one gate of the char LSTM's W_ih), K at most
 * PANEL_ROWS (else BLAS): tasks of a chunk of out's rows by one panel of
 * b's columns, each packing its panel [K, w] onto its stack, then
 * running it through its rows. A chunk is about 16 tasks' work, so that
 * packing costs a small part of it; consecutive tasks share a chunk's
 * rows of a. */
typedef struct {
    const CgProduct *p;
    int64_t panels; /* (a chunk's rows: vals[7], chosen at run time) */
} RowPanels;

/* Panels too few for a task each on two threads: a product of one chunk
 * of rows is then cut into two chunks, each core packing b for its rows
 * (which the steps before and after leave in its cache) rather than
 * both reading all of a. */
enum { FEW_PANELS = 4 };

enum { PANEL_VALS = 8 }; /* row_panels's: out, a, b, M, lda, ldo, ldb, rows a chunk */

static void row_panels(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const RowPanels *rp = ctx;
    const CgProduct *p = rp->p;
    int64_t K = LLVMConstIntGetSExtValue(p->K);
    int64_t kb = panel_k(c, K);
    LLVMValueRef buf = stack_panel(c, kb);
    CgLoop lt;
    LLVMValueRef t = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lt));
    PanelTask pt = panel_task(c, t, rp->panels, true, vals[7], vals[3], p->N);
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
        int64_t kk = K - k0 < kb ? K - k0 : kb;
        LLVMValueRef at = p->tb ? cg_add(c, cg_mul(c, pt.col0, vals[6]), cg_i64(c, k0))
                                : cg_add(c, pt.col0, cg_mul(c, cg_i64(c, k0), vals[6]));
        cg_pack_panel(c, buf, cg_gep(c, DT_F32, vals[2], at), cg_i64(c, kk), vals[6], pt.cols, p->N,
                      p->tb);
        panel_product(
            c, cg_gemm_fn(c, kk, p->N, p->acc, false, NULL, NULL, kk, k0 > 0, true), &pt, vals[0],
            cg_gep(c, DT_F32, vals[1], cg_add(c, cg_mul(c, pt.m0, vals[4]), cg_i64(c, k0))), buf,
            cg_i64(c, kk), vals[4], vals[5]);
    }
    epi_block(c, p, vals, PANEL_VALS, pt.m0, cg_add(c, pt.m0, pt.m), pt.col0,
              cg_add(c, pt.col0, pt.cols));
    cg_loop_end(c, &lt);
}

static void strided_gemm(Cg *c, const CgProduct *p)
{
    int64_t w = cg_pack_width(c), K = LLVMConstIntGetSExtValue(p->K);
    int64_t kb = panel_k(c, K);
    RowPanels rp = {.p = p, .panels = (p->N + w - 1) / w};
    int64_t chunk = ROWS;
    while (chunk * kb * w < 16 * CG_TASK_WORK)
        chunk += ROWS;
    LLVMValueRef rows = cg_i64(c, chunk);
    if (rp.panels < FEW_PANELS) { /* one chunk's rows in two halves of whole tiles */
        LLVMValueRef tiles =
            LLVMBuildSDiv(c->b, cg_add(c, p->M, cg_i64(c, 2 * ROWS - 1)), cg_i64(c, 2 * ROWS), "");
        LLVMValueRef some = LLVMBuildICmp(c->b, LLVMIntSGT, tiles, cg_i64(c, 0), "");
        LLVMValueRef half =
            cg_mul(c, LLVMBuildSelect(c->b, some, tiles, cg_i64(c, 1), ""), cg_i64(c, ROWS));
        LLVMValueRef one = LLVMBuildICmp(c->b, LLVMIntSLE, p->M, rows, "");
        rows = LLVMBuildSelect(c->b, one, half, rows, "");
    }
    LLVMValueRef pv[PANEL_VALS] = {p->out, p->a, p->b, p->M, p->lda, p->ldo, p->ldb, rows};
    int nvals;
    LLVMValueRef *vals = with_epi(c, p, pv, PANEL_VALS, &nvals);
    LLVMValueRef chunks =
        LLVMBuildSDiv(c->b, cg_add(c, p->M, LLVMBuildSub(c->b, rows, cg_i64(c, 1), "")), rows, "");
    cg_parallel_chunks(c, task_name(c, "gemm.panels"), cg_mul(c, chunks, cg_i64(c, rp.panels)), 1,
                       vals, nvals, row_panels, &rp);
}

bool cg_product(Cg *c, DType t, const CgProduct *p)
{
    CgProduct q = *p; /* for the paths that do not apply the epilogue */
    q.epi = NULL;
    if (p->ldb) { /* generated only packed */
        check(!p->ta && !p->tb && !p->win && !p->pk && LLVMIsAConstantInt(p->K));
        if (t == DT_F32 && c->gemm_any && LLVMConstIntGetSExtValue(p->K) <= PANEL_ROWS)
            strided_gemm(c, &q);
        else
            blas_gemm(c, t, &q);
        return false;
    }
    if (p->pk) { /* no matrix for BLAS */
        check(t == DT_F32 && !p->ta && !p->tb && LLVMIsAConstantInt(p->K));
        packed_gemm(c, &q);
        return false;
    }
    if (p->win || p->aw.k) { /* (a walk along k: no matrix for BLAS either) */
        check(t == DT_F32 && !p->ta && LLVMIsAConstantInt(p->K) &&
              (!p->aw.k || (!p->tb && !p->wa)));
        if (p->wa) { /* in one call: a window's rows are not lda apart */
            check(p->acc && !p->tb);
            LLVMValueRef vals[] = {p->out, p->a, p->b, p->K, cg_i64(c, 0), p->ldo};
            gemm_rows(c, cg_i64(c, 0), p->M, vals, &q);
        } else {
            small_gemm(c, &q, CG_ANY_ROWS);
        }
        return false;
    }
    Dim dn = {.n = p->N}, dk = {.n = p->ta ? 1 : LLVMConstIntGetSExtValue(p->K), .batch = p->ta};
    int64_t limit = cg_small_gemm_rows(c, t, p->ta, p->tb, dk, dn);
    if (p->ta && limit && c->gemm_any) { /* blocks of b as large as a panel, at any limit */
        ta_blocked(c, &q, PANEL_ROWS);
        return false;
    }
    LLVMValueRef runs = p->ta ? p->K : p->M; /* the extent the limit bounds */
    bool known = LLVMIsAConstantInt(runs);
    if (!limit || (known && LLVMConstIntGetSExtValue(runs) > limit)) {
        blas_gemm(c, t, &q);
        return false;
    }
    if (known || limit == CG_ANY_ROWS) {
        small_gemm(c, p->ta ? &q : p, limit);
        return !p->ta && p->epi;
    }
    LLVMBasicBlockRef blas = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "blas");
    LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
    LLVMBasicBlockRef gen = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "generated");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, runs, cg_i64(c, limit), ""), gen, blas);
    LLVMPositionBuilderAtEnd(c->b, gen);
    small_gemm(c, &q, limit);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, blas);
    blas_gemm(c, t, &q);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
    return false;
}

void cg_product_c(Cg *c, DType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, LLVMValueRef a,
                  int64_t lda, LLVMValueRef b, bool acc, LLVMValueRef out)
{
    CgProduct p = {.M = cg_i64(c, M),
                   .K = cg_i64(c, K),
                   .N = N,
                   .a = a,
                   .lda = cg_i64(c, lda),
                   .b = b,
                   .out = out,
                   .ldo = cg_i64(c, N),
                   .acc = acc,
                   .ta = ta,
                   .tb = tb,
                   .kmax = K};
    cg_product(c, t, &p);
}
