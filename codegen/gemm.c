/*
 * Matrix products the compiler generates itself: a product with few rows
 * (batch 1 inference, above all) whose inner and output extents are known
 * when the model is compiled. There BLAS loses most of its time packing
 * the weights into its panel layout, work it can only win back over many
 * rows: the MNIST MLP's [1, 784] @ [784, 256] spent 40% of its time in
 * OpenBLAS's packing and ran at 45 us a forward.
 *
 * The kernel is register-blocked: a tile of up to 4 rows by NV vectors of
 * the target's widest registers keeps its sums in registers while k runs
 * over the inner extent; each step loads NV vectors of b's row k and
 * multiplies them by the tile's a[i, k], splat. Each output is a sum over
 * k in order (fused multiply-adds where the target has them), so the
 * result does not depend on the rows around it nor on the thread count.
 */
#include "cg_kernels.h"

/* Rows a tile computes: each vector of b loaded serves ROWS outputs. A
 * tile of one row may be up to MAX_NV vectors wide. */
enum { ROWS = 4, MAX_NV = 8 };

/* Vectors a tile of ROWS rows spans: 4 with AVX-512's 32 registers, 3 with
 * AVX2's 16 and fused multiply-adds, else 2, so that the ROWS x NV sums,
 * NV loads of b and a splat fit in the registers. A packed panel is one
 * tile wide (cg_pack_width). */
static int tile_vectors(const Cg *c)
{
    return c->vector_bytes >= 64 ? 4 : c->vector_bytes >= 32 ? 3 : 2;
}

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

/* One product's shape and layout: out[M, N] (+)= a[M, K] @ b[K, N] (ta:
 * a^T, a stored [K, M]), b dense, the rows of a and out lda and ldo
 * elements apart, K a value (a constant unless a^T); and one tile's: R rows by NV
 * vectors of V lanes, the last vector with only `last` lanes (V when
 * whole), loaded and stored under a mask. */
typedef struct {
    int64_t N;
    bool acc, ta, cont;
    const CgWindow *win; /* b's rows, when not dense */
    int64_t pw, pk;      /* b packed (cg_pack_b): panels pw columns wide, pk rows */
    LLVMValueRef K, lda, ldo;
    int V, NV, R, last;
    LLVMTypeRef vt;
} Tile;

static bool partial(const Tile *t, int v)
{
    return v == t->NV - 1 && t->last < t->V;
}

static LLVMValueRef load_vec(Cg *c, const Tile *t, LLVMValueRef p, bool part)
{
    return cg_load_lanes(c, t->vt, p, part ? t->last : t->V);
}

static void store_vec(Cg *c, const Tile *t, LLVMValueRef v, LLVMValueRef p, bool part)
{
    cg_store_lanes(c, v, p, part ? t->last : t->V);
}

/* element (i0 + r, col) of a matrix whose rows are ld elements apart */
static LLVMValueRef at(Cg *c, LLVMValueRef base, LLVMValueRef i0, int r, LLVMValueRef ld,
                       LLVMValueRef col)
{
    LLVMValueRef row = cg_add(c, i0, cg_i64(c, r));
    return cg_gep(c, DT_F32, base, cg_add(c, cg_mul(c, row, ld), col));
}

/* a's element (i0 + r, k), read down a column when a is transposed */
static LLVMValueRef a_at(Cg *c, const Tile *t, LLVMValueRef a, LLVMValueRef i0, int r,
                         LLVMValueRef k)
{
    if (t->ta)
        return LLVMBuildLoad2(c->b, c->f32, at(c, a, k, 0, t->lda, cg_add(c, i0, cg_i64(c, r))),
                              "");
    return LLVMBuildLoad2(c->b, c->f32, at(c, a, i0, r, t->lda, k), "");
}

/* Where b's row k starts: k rows of n apart, or the window's (ch, i, j) */
static LLVMValueRef b_row(Cg *c, const CgWindow *w, LLVMValueRef b, LLVMValueRef k, int64_t n)
{
    if (!w)
        return cg_gep(c, DT_F32, b, cg_mul(c, k, cg_i64(c, n)));
    LLVMValueRef taps = cg_i64(c, w->kh * w->kw), kw = cg_i64(c, w->kw);
    LLVMValueRef ch = LLVMBuildUDiv(c->b, k, taps, ""), tap = LLVMBuildURem(c->b, k, taps, "");
    LLVMValueRef i = LLVMBuildUDiv(c->b, tap, kw, ""), j = LLVMBuildURem(c->b, tap, kw, "");
    return cg_gep(
        c, DT_F32, b,
        cg_add(c, cg_add(c, cg_mul(c, ch, cg_i64(c, w->cs)), cg_mul(c, i, cg_i64(c, w->wp))), j));
}

/* The loop over k, b's rows, which *row gets the start of: one loop, or
 * for a window one per channel, tap row and tap column (no divisions in
 * the loop). */
typedef struct {
    CgLoop l[3];
    int n;
} KLoop;

static LLVMValueRef k_begin(Cg *c, const Tile *t, LLVMValueRef b, KLoop *kl, LLVMValueRef *row)
{
    const CgWindow *w = t->win;
    if (!w) {
        kl->n = 1;
        LLVMValueRef k = cg_loop_begin(c, t->K, &kl->l[0]);
        *row = b_row(c, NULL, b, k, t->pw ? t->pw : t->N);
        return k;
    }
    kl->n = 3;
    LLVMValueRef ch = cg_loop_begin(c, cg_i64(c, w->c), &kl->l[0]);
    LLVMValueRef i = cg_loop_begin(c, cg_i64(c, w->kh), &kl->l[1]);
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, w->kw), &kl->l[2]);
    *row = cg_gep(
        c, DT_F32, b,
        cg_add(c, cg_add(c, cg_mul(c, ch, cg_i64(c, w->cs)), cg_mul(c, i, cg_i64(c, w->wp))), j));
    return cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, w->kh)), i), cg_i64(c, w->kw)), j);
}

static void k_end(Cg *c, KLoop *kl)
{
    for (int i = kl->n - 1; i >= 0; i--)
        cg_loop_end(c, &kl->l[i]);
}

/* Where vector v of a tile at column j0 starts in b's row (row: from
 * k_begin); packed, column j lies in panel j / pw, at lane j % pw of the
 * panel's row (j0 is a multiple of pw) */
static LLVMValueRef b_vec(Cg *c, const Tile *t, LLVMValueRef row, LLVMValueRef j0, int v)
{
    int64_t col = (int64_t)v * t->V;
    if (!t->pw)
        return cg_gep(c, DT_F32, row, cg_add(c, j0, cg_i64(c, col)));
    LLVMValueRef panel =
        cg_add(c, LLVMBuildUDiv(c->b, j0, cg_i64(c, t->pw), ""), cg_i64(c, col / t->pw));
    return cg_gep(c, DT_F32, row,
                  cg_add(c, cg_mul(c, panel, cg_i64(c, t->pk * t->pw)), cg_i64(c, col % t->pw)));
}

/* out[i0 .. i0+R, j0 .. j0+width] (+)= a[i0 .. i0+R, :] @ b[:, j0 ..]. */
static void tile(Cg *c, const Tile *t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                 LLVMValueRef i0, LLVMValueRef j0)
{
    LLVMValueRef acc[ROWS][MAX_NV];
    for (int r = 0; r < t->R; r++)
        for (int v = 0; v < t->NV; v++) {
            acc[r][v] = cg_alloca(c, t->vt, "acc");
            LLVMValueRef init = LLVMConstNull(t->vt);
            if (t->cont)
                init = load_vec(
                    c, t, cg_gep(c, DT_F32, at(c, out, i0, r, t->ldo, j0), cg_i64(c, v * t->V)),
                    partial(t, v));
            LLVMBuildStore(c->b, init, acc[r][v]);
        }
    KLoop lk;
    LLVMValueRef brow, k = k_begin(c, t, b, &lk, &brow);
    LLVMValueRef bv[MAX_NV];
    for (int v = 0; v < t->NV; v++)
        bv[v] = load_vec(c, t, b_vec(c, t, brow, j0, v), partial(t, v));
    for (int r = 0; r < t->R; r++) {
        LLVMValueRef s = a_at(c, t, a, i0, r, k);
        LLVMValueRef splat = cg_splat(c, t->vt, s);
        for (int v = 0; v < t->NV; v++) {
            LLVMValueRef args[] = {splat, bv[v], LLVMBuildLoad2(c->b, t->vt, acc[r][v], "")};
            LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.fmuladd", t->vt, args, 3), acc[r][v]);
        }
    }
    k_end(c, &lk);
    for (int r = 0; r < t->R; r++) {
        LLVMValueRef orow = at(c, out, i0, r, t->ldo, j0);
        for (int v = 0; v < t->NV; v++) {
            LLVMValueRef p = cg_gep(c, DT_F32, orow, cg_i64(c, v * t->V));
            LLVMValueRef sum = LLVMBuildLoad2(c->b, t->vt, acc[r][v], "");
            if (t->acc) /* out + the whole sum, as BLAS's beta = 1 */
                sum = LLVMBuildFAdd(c->b, load_vec(c, t, p, partial(t, v)), sum, "");
            store_vec(c, t, sum, p, partial(t, v));
        }
    }
}

/* out[i, :] = a[i, :] @ b for one row: b streamed once, row after row in
 * memory order, each multiplied by a[i, k] and added into out's row,
 * which stays in L1; the column loop is left to LLVM's vectorizer. One
 * row is bound by reading b, and a tile's walk down b's columns (a jump
 * of a row of b per k) reads it at half this speed. The sums start at 0
 * and take the k in order, so out gets the same bits as from a tile. */
static void stream_row(Cg *c, const Tile *t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                       LLVMValueRef i)
{
    int64_t N = t->N;
    LLVMValueRef orow = at(c, out, i, 0, t->ldo, cg_i64(c, 0));
    cg_zero(c, DT_F32, orow, cg_i64(c, N));
    KLoop lk;
    CgLoop ln;
    LLVMValueRef brow, k = k_begin(c, t, b, &lk, &brow);
    LLVMValueRef s = a_at(c, t, a, i, 0, k);
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, N), &ln);
    LLVMValueRef args[] = {s, cg_load(c, DT_F32, brow, j), cg_load(c, DT_F32, orow, j)};
    cg_store(c, DT_F32, cg_intrinsic(c, "llvm.fmuladd", c->f32, args, 3), orow, j);
    cg_loop_end(c, &ln);
    k_end(c, &lk);
}

/* Rows i0 .. i0+R of the output, columns j0 .. j0+cols: the whole tiles
 * in a loop, then the columns left as one narrower tile. */
static void rows(Cg *c, Tile t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b, LLVMValueRef i0,
                 LLVMValueRef j0, int64_t cols)
{
    int64_t width = (int64_t)t.V * t.NV, whole = cols / width, left = cols % width;
    if (whole) {
        CgLoop l;
        LLVMValueRef j = cg_loop_begin(c, cg_i64(c, whole), &l);
        tile(c, &t, out, a, b, i0, cg_add(c, j0, cg_mul(c, j, cg_i64(c, width))));
        cg_loop_end(c, &l);
    }
    if (left) {
        t.NV = (int)((left + t.V - 1) / t.V);
        t.last = (int)(left - (int64_t)(t.NV - 1) * t.V);
        tile(c, &t, out, a, b, i0, cg_add(c, j0, cg_i64(c, whole * width)));
    }
}

/* Every row's block of 4, then a pair: rows() over columns j0 ..
 * j0+cols, the last odd row left to last_row (it may stream); or, cols
 * 0, for packed b, one tile at j0 a block and a last odd row too, all
 * over the same panel [K, pw], which stays in L1/L2 (rows() walks all
 * of b for each row block instead). */
static void row_blocks(Cg *c, Tile t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                       LLVMValueRef M, LLVMValueRef j0, int64_t cols)
{
    LLVMValueRef blocks = LLVMBuildSDiv(c->b, M, cg_i64(c, ROWS), "");
    CgLoop l;
    LLVMValueRef i0 = cg_mul(c, cg_loop_begin(c, blocks, &l), cg_i64(c, ROWS));
    if (cols)
        rows(c, t, out, a, b, i0, j0, cols);
    else
        tile(c, &t, out, a, b, i0, j0);
    cg_loop_end(c, &l);
    LLVMValueRef done = cg_mul(c, blocks, cg_i64(c, ROWS)), left = LLVMBuildSub(c->b, M, done, "");
    LLVMBasicBlockRef join =
        cg_if_begin(c, LLVMBuildICmp(c->b, LLVMIntSGE, left, cg_i64(c, 2), ""));
    t.R = 2;
    if (cols)
        rows(c, t, out, a, b, done, j0, cols);
    else
        tile(c, &t, out, a, b, done, j0);
    cg_if_end(c, join);
    if (cols)
        return;
    join = cg_if_begin(c, LLVMBuildTrunc(c->b, M, c->i1, ""));
    t.R = 1;
    tile(c, &t, out, a, b, LLVMBuildSub(c->b, M, cg_i64(c, 1), ""), j0);
    cg_if_end(c, join);
}

/* Columns [0, cols) of a packed product, cols a multiple of the panels'
 * width or reaching N: the whole panels, then N's last narrower one. */
static void packed_panels(Cg *c, Tile t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                          LLVMValueRef M, LLVMValueRef cols)
{
    LLVMValueRef w = cg_i64(c, t.pw);
    CgLoop l;
    LLVMValueRef j = cg_loop_begin(c, LLVMBuildUDiv(c->b, cols, w, ""), &l);
    row_blocks(c, t, out, a, b, M, cg_mul(c, j, w), 0);
    cg_loop_end(c, &l);
    int64_t left = t.N % t.pw;
    if (left) {
        LLVMValueRef part = LLVMBuildURem(c->b, cols, w, "");
        LLVMBasicBlockRef join =
            cg_if_begin(c, LLVMBuildICmp(c->b, LLVMIntNE, part, cg_i64(c, 0), ""));
        t.NV = (int)((left + t.V - 1) / t.V);
        t.last = (int)(left - (int64_t)(t.NV - 1) * t.V);
        row_blocks(c, t, out, a, b, M, LLVMBuildSub(c->b, cols, part, ""), 0);
        cg_if_end(c, join);
    }
}

/* A last odd row: tiles of one row when b's rows fit in MAX_NV vectors
 * (b is then read in memory order too, and the sums stay in registers),
 * or when the sums must be added to out whole; else streamed. */
static void last_row(Cg *c, Tile t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                     LLVMValueRef M)
{
    LLVMBasicBlockRef join = cg_if_begin(c, LLVMBuildTrunc(c->b, M, c->i1, ""));
    LLVMValueRef last = LLVMBuildSub(c->b, M, cg_i64(c, 1), "");
    if (t.N <= (int64_t)t.V * MAX_NV || t.acc) {
        t.R = 1;
        t.NV = MAX_NV;
        rows(c, t, out, a, b, last, cg_i64(c, 0), t.N);
    } else {
        stream_row(c, &t, out, a, b, last);
    }
    cg_if_end(c, join);
}

/* The function `void NAME.gemm[KIND][.acc].f32.SHAPE(ptr noalias out, ptr
 * noalias a, ptr noalias b, i64 m, i64 k, i64 lda, i64 ldo[, i64 cols])`
 * (cols: a packed b's), begun (made) unless an earlier product made it;
 * --stats lists it as SHAPE between the marks pre and post, + when it
 * accumulates and * when it runs at any row count. */
static LLVMValueRef kernel_begin(Cg *c, const char *kind, const char *shape, bool acc, bool packed,
                                 const char *pre, const char *post, bool any, CgSaved *saved,
                                 bool *made)
{
    const char *name =
        arena_printf(c->g->arena, "%s.gemm%s%s.f32.%s", c->g->name, kind, acc ? ".acc" : "", shape);
    LLVMTypeRef pt[] = {c->ptr, c->ptr, c->ptr, c->i64, c->i64, c->i64, c->i64, c->i64};
    unsigned np = packed ? 8u : 7u;
    LLVMValueRef fn =
        cg_helper_begin(c, name, LLVMFunctionType(c->voidt, pt, np, false), 7u, saved, made);
    if (*made)
        vec_push(c->g->arena, &c->gemms,
                 arena_printf(c->g->arena, "%s%s%s%s%s", pre, shape, post, acc ? "+" : "",
                              any ? "*" : ""));
    return fn;
}

/* A window's part of a kernel's name, after kind: .winKHxKW.CS.WP */
static const char *win_kind(Cg *c, const char *kind, const CgWindow *w)
{
    if (!w)
        return kind;
    return arena_printf(c->g->arena, "%s.win%lldx%lld.%lld.%lld", kind, (long long)w->kh,
                        (long long)w->kw, (long long)w->cs, (long long)w->wp);
}

/* Columns a panel holds: all of b's when b fits in L2, else whole tiles
 * of b's columns that fit in half of it, so that the rows walk a panel of
 * b that stays in L2 rather than stream all of b for every 4 rows. */
static int64_t panel_cols(const Cg *c, int64_t K, int64_t N, int64_t width)
{
    if (K * N * 4 <= c->l2_bytes)
        return N;
    int64_t cols = c->l2_bytes / 2 / (4 * K) / width * width;
    return cols < width ? width : cols;
}

/* `void NAME.gemm[.acc].f32.KxN(ptr noalias out, ptr noalias a, ptr
 * noalias b, i64 m, i64 k, i64 lda, i64 ldo)`: out[m, N] = a[m, K] @
 * b[K, N] (.acc: +=), b dense, the rows of a and out lda and ldo apart, k
 * unused; NAME.gemm.ta[.acc].f32.N: out[m, N] = a^T @ b[k, N], a stored
 * [k, m] (the backward's x^T @ dy, k the batch); NAME.gemm.winKHxKW.CS.WP
 * [.acc].f32.KxN: b the window win onto an image (K = its c*kh*kw);
 * NAME.gemm[.ta].pPK[.cont][.acc].f32.{KxN|N}: b packed (cg_pack_b),
 * panels of PK rows, and cols, the columns to make (a task's panels);
 * .cont starts each sum from out's value (a later block of k). */
static LLVMValueRef gemm_fn(Cg *c, int64_t K, int64_t N, bool acc, bool ta, const CgWindow *win,
                            int64_t pk, bool cont)
{
    const char *shape = ta ? arena_printf(c->g->arena, "%lld", (long long)N)
                           : arena_printf(c->g->arena, "%lldx%lld", (long long)K, (long long)N);
    const char *kind = pk ? arena_printf(c->g->arena, "%s.p%lld%s", ta ? ".ta" : "", (long long)pk,
                                         cont ? ".cont" : "")
                       : ta ? ".ta"
                            : win_kind(c, "", win);
    CgSaved saved;
    bool made;
    LLVMValueRef fn = kernel_begin(c, kind, shape, acc, pk != 0, ta ? "T" : "",
                                   win  ? "#"
                                   : pk ? (cont ? "pc" : "p")
                                        : "",
                                   !ta && (pk || any_rows(c, K, N, false)), &saved, &made);
    if (!made)
        return fn;
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2),
                 M = LLVMGetParam(fn, 3);
    int V = c->vector_bytes / 4;
    Tile t = {.N = N,
              .acc = acc,
              .cont = cont,
              .ta = ta,
              .win = win,
              .K = ta ? LLVMGetParam(fn, 4) : cg_i64(c, K),
              .lda = LLVMGetParam(fn, 5),
              .ldo = LLVMGetParam(fn, 6),
              .V = V,
              .NV = tile_vectors(c),
              .R = ROWS,
              .last = V,
              .vt = LLVMVectorType(c->f32, (unsigned)V)};
    if (pk) {
        t.pw = cg_pack_width(c);
        t.pk = pk;
        packed_panels(c, t, out, a, b, M, LLVMGetParam(fn, 7));
        LLVMBuildRetVoid(c->b);
        cg_helper_end(c, &saved);
        return fn;
    }
    /* (with a^T, k is within the limit: b is small; a window is one
     * image's) */
    int64_t cols = ta || win ? N : panel_cols(c, K, N, (int64_t)V * t.NV), whole = N / cols,
            rest = N % cols;
    if (whole == 1) {
        row_blocks(c, t, out, a, b, M, cg_i64(c, 0), cols);
    } else {
        CgLoop lp;
        LLVMValueRef p = cg_loop_begin(c, cg_i64(c, whole), &lp);
        row_blocks(c, t, out, a, b, M, cg_mul(c, p, cg_i64(c, cols)), cols);
        cg_loop_end(c, &lp);
    }
    if (rest)
        row_blocks(c, t, out, a, b, M, cg_i64(c, whole * cols), rest);
    last_row(c, t, out, a, b, M);
    LLVMBuildRetVoid(c->b);
    cg_helper_end(c, &saved);
    return fn;
}

/* A transposed b (the backward's dy @ w^T, w stored [N, K]): each
 * output is the dot product of a row of a and a row of b, both read in
 * memory order. A tile of R rows of a by C rows of b keeps R x C vector
 * sums over k (8 loads for 16 fused multiply-adds a step), each summed
 * across its lanes at the end by halving, in a fixed order. */
enum { DOT_COLS = 4 };

/* The sums of the lanes of 4 vectors of V lanes, as a vector of 4: the
 * vectors' halves added pairwise until each has V/4 lanes of one vector,
 * then each group of lanes halved, all in a fixed order. About a third
 * of the shuffles of 4 cg_lanes_sum; a tile of the weight gradients' short
 * inner extents (LeNet-5's 136) spent as long summing as multiplying. */
static LLVMValueRef sums4(Cg *c, LLVMValueRef *v, int V)
{
    LLVMValueRef idx[16];
    LLVMValueRef u[DOT_COLS];
    for (int q = 0; q < DOT_COLS; q++)
        u[q] = v[q];
    /* n vectors of w lanes each hold (V / w) of the parts of one column */
    int n = DOT_COLS, w = V;
    while (n > 1) {
        /* a | b: the low halves of each group of w lanes of a and b side
         * by side, plus the high halves */
        int g = V / w; /* groups per vector */
        for (int q = 0; q < n / 2; q++) {
            LLVMValueRef part[2];
            LLVMValueRef a = u[2 * q], b = u[2 * q + 1];
            for (int half = 0; half < 2; half++) {
                int m = 0;
                for (int src = 0; src < 2; src++)
                    for (int k = 0; k < g; k++)
                        for (int i = 0; i < w / 2; i++)
                            idx[m++] = LLVMConstInt(
                                c->i32, (unsigned long long)(src * V + k * w + half * (w / 2) + i),
                                0);
                part[half] =
                    LLVMBuildShuffleVector(c->b, a, b, LLVMConstVector(idx, (unsigned)V), "");
            }
            u[q] = LLVMBuildFAdd(c->b, part[0], part[1], "");
        }
        n /= 2;
        w /= 2;
    }
    /* one vector: groups of w lanes, group q column q; halve each */
    LLVMValueRef x = u[0];
    for (int h = w / 2; h >= 1; h /= 2) {
        for (int i = 0; i < V; i++) {
            int base = i / (2 * h) * (2 * h);
            idx[i] = LLVMConstInt(c->i32, (unsigned long long)(base + (i - base + h) % (2 * h)), 0);
        }
        x = LLVMBuildFAdd(c->b, x,
                          LLVMBuildShuffleVector(c->b, x, LLVMGetPoison(LLVMTypeOf(x)),
                                                 LLVMConstVector(idx, (unsigned)V), ""),
                          "");
    }
    for (int q = 0; q < DOT_COLS; q++)
        idx[q] = LLVMConstInt(c->i32, (unsigned long long)(q * (V / DOT_COLS)), 0);
    return LLVMBuildShuffleVector(c->b, x, LLVMGetPoison(LLVMTypeOf(x)),
                                  LLVMConstVector(idx, DOT_COLS), "");
}

/* out[i0 .. i0+R, j0 .. j0+C] (+)= a[i0 .., :] . b[j0 .., :] */
static void dot_tile(Cg *c, const Tile *t, int C, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                     LLVMValueRef i0, LLVMValueRef j0)
{
    LLVMValueRef acc[ROWS][DOT_COLS];
    for (int r = 0; r < t->R; r++)
        for (int q = 0; q < C; q++) {
            acc[r][q] = cg_alloca(c, t->vt, "acc");
            LLVMBuildStore(c->b, LLVMConstNull(t->vt), acc[r][q]);
        }
    /* k over whole vectors, then a masked one for the K % V left */
    int64_t K = LLVMConstIntGetSExtValue(t->K), whole = K / t->V;
    LLVMValueRef brow[DOT_COLS];
    for (int q = 0; q < C; q++)
        brow[q] = b_row(c, t->win, b, cg_add(c, j0, cg_i64(c, q)), K);
    for (int part = 0; part < 2; part++) {
        Tile u = *t;
        u.NV = 1;
        u.last = part ? (int)(K % t->V) : t->V;
        if (part ? !u.last : !whole)
            continue;
        CgLoop lk;
        LLVMValueRef k = part ? cg_i64(c, whole * t->V)
                              : cg_mul(c, cg_loop_begin(c, cg_i64(c, whole), &lk), cg_i64(c, t->V));
        LLVMValueRef av[ROWS], bv[DOT_COLS];
        for (int r = 0; r < t->R; r++)
            av[r] = load_vec(c, &u, at(c, a, i0, r, t->lda, k), part);
        for (int q = 0; q < C; q++)
            bv[q] = load_vec(c, &u, cg_gep(c, DT_F32, brow[q], k), part);
        for (int r = 0; r < t->R; r++)
            for (int q = 0; q < C; q++) {
                LLVMValueRef args[] = {av[r], bv[q], LLVMBuildLoad2(c->b, t->vt, acc[r][q], "")};
                LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.fmuladd", t->vt, args, 3), acc[r][q]);
            }
        if (!part)
            cg_loop_end(c, &lk);
    }
    for (int r = 0; r < t->R; r++) {
        LLVMValueRef v[DOT_COLS];
        for (int q = 0; q < C; q++)
            v[q] = LLVMBuildLoad2(c->b, t->vt, acc[r][q], "");
        LLVMValueRef p = at(c, out, i0, r, t->ldo, j0);
        if (C == DOT_COLS && t->V >= DOT_COLS) { /* the row's 4 sums at once */
            LLVMTypeRef vt4 = LLVMVectorType(c->f32, DOT_COLS);
            LLVMValueRef sum = sums4(c, v, t->V);
            if (t->acc) { /* out + the whole sums, as BLAS's beta = 1 */
                LLVMValueRef o = LLVMBuildLoad2(c->b, vt4, p, "");
                LLVMSetAlignment(o, 4);
                sum = LLVMBuildFAdd(c->b, o, sum, "");
            }
            LLVMSetAlignment(LLVMBuildStore(c->b, sum, p), 4);
            continue;
        }
        for (int q = 0; q < C; q++) {
            LLVMValueRef sum = cg_lanes_sum(c, v[q]);
            LLVMValueRef pq = cg_gep(c, DT_F32, p, cg_i64(c, q));
            if (t->acc) /* out + the whole sum, as BLAS's beta = 1 */
                sum = LLVMBuildFAdd(c->b, LLVMBuildLoad2(c->b, c->f32, pq, ""), sum, "");
            LLVMBuildStore(c->b, sum, pq);
        }
    }
}

/* rows i0 .. i0+R of a @ b^T: tiles of DOT_COLS rows of b, then the rest */
static void dot_rows(Cg *c, const Tile *t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                     LLVMValueRef i0)
{
    int64_t whole = t->N / DOT_COLS, left = t->N % DOT_COLS;
    if (whole) {
        CgLoop l;
        LLVMValueRef j = cg_loop_begin(c, cg_i64(c, whole), &l);
        dot_tile(c, t, DOT_COLS, out, a, b, i0, cg_mul(c, j, cg_i64(c, DOT_COLS)));
        cg_loop_end(c, &l);
    }
    if (left)
        dot_tile(c, t, (int)left, out, a, b, i0, cg_i64(c, whole * DOT_COLS));
}

/* `void NAME.gemm.tb[.acc].f32.KxN(ptr noalias out, ptr noalias a, ptr
 * noalias b, i64 m, i64 k, i64 lda, i64 ldo)`: out[m, N] = a[m, K] @
 * b^T (.acc: +=), b stored [N, K] dense, k unused;
 * NAME.gemm.tb.winKHxKW.CS.WP[.acc].f32.KxN: b^T's N rows the window win
 * onto an image. */
static LLVMValueRef gemm_tb_fn(Cg *c, int64_t K, int64_t N, bool acc, const CgWindow *win)
{
    const char *shape = arena_printf(c->g->arena, "%lldx%lld", (long long)K, (long long)N);
    CgSaved saved;
    bool made;
    LLVMValueRef fn = kernel_begin(c, win_kind(c, ".tb", win), shape, acc, false, "",
                                   win ? "'#" : "'", any_rows(c, K, N, true), &saved, &made);
    if (!made)
        return fn;
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2),
                 M = LLVMGetParam(fn, 3);
    /* 4 x 4 sums and 8 loads in 32 registers (AVX-512), else 2 x 4 and 6
     * in 16 */
    int V = c->vector_bytes / 4, R = c->vector_bytes >= 64 ? 4 : 2;
    Tile t = {.N = N,
              .acc = acc,
              .win = win,
              .K = cg_i64(c, K),
              .lda = LLVMGetParam(fn, 5),
              .ldo = LLVMGetParam(fn, 6),
              .V = V,
              .NV = 1,
              .R = R,
              .last = V,
              .vt = LLVMVectorType(c->f32, (unsigned)V)};
    LLVMValueRef blocks = LLVMBuildSDiv(c->b, M, cg_i64(c, R), "");
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, blocks, &l);
    dot_rows(c, &t, out, a, b, cg_mul(c, i, cg_i64(c, R)));
    cg_loop_end(c, &l);
    t.R = 1; /* the rows left, one at a time */
    i = cg_loop_begin(c, LLVMBuildSub(c->b, M, cg_mul(c, blocks, cg_i64(c, R)), ""), &l);
    dot_rows(c, &t, out, a, b, cg_add(c, cg_mul(c, blocks, cg_i64(c, R)), i));
    cg_loop_end(c, &l);
    LLVMBuildRetVoid(c->b);
    cg_helper_end(c, &saved);
    return fn;
}

/* rows [lo, hi) of the product p */
static void gemm_rows(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const CgProduct *p = ctx;
    int64_t K = p->ta ? -1 : LLVMConstIntGetSExtValue(p->K);
    LLVMValueRef fn = p->tb ? gemm_tb_fn(c, K, p->N, p->acc, p->win)
                            : gemm_fn(c, K, p->N, p->acc, p->ta, p->win, 0, false);
    LLVMValueRef out = vals[0], a = vals[1], b = vals[2], k = vals[3], lda = vals[4], ldo = vals[5];
    LLVMValueRef args[] = {cg_gep(c, DT_F32, out, cg_mul(c, lo, ldo)),
                           cg_gep(c, DT_F32, a, p->ta ? lo : cg_mul(c, lo, lda)),
                           b,
                           LLVMBuildSub(c->b, hi, lo, ""),
                           k,
                           lda,
                           ldo};
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(fn), fn, args, 7, "");
}

/* A task's packed panel of b on its stack: at most 16 KiB
 * (docs/RUNTIME.md states the stack a call needs); PANEL_ROWS rows of
 * the widest panels, AVX-512's. */
enum { PANEL_BYTES = 16384, PANEL_ROWS = 64 };

/* A dense b at any row count, from pack_rows() rows of out on, is
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

/* The rows of out from which packing b pays for copying it (AVX2,
 * bench/product.sh): an untransposed [K, 120] from 32 rows (1.10x vs
 * 1.01x OpenBLAS at K = 400; 16 rows 1.11x vs 1.13x), a transposed one
 * from 16 (the dot products it replaces are slower: [16, 120] @ [400,
 * 120]^T 1.42x vs 1.19x; 8 rows 1.58x either way; 4 rows 1.9x vs 2.4x),
 * a small b^T (SMALL_B) at every row count. */
static int64_t pack_rows(const Cg *c, const CgProduct *p)
{
    if (!p->tb)
        return PACK_MIN_ROWS;
    return small_b(c, LLVMConstIntGetSExtValue(p->K), p->N) ? 1 : PACK_MIN_ROWS_TB;
}

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

static bool packs_per_task(const Cg *c, const CgProduct *p, int64_t limit)
{
    /* (cg_product sends a packed or strided b elsewhere) */
    return limit == CG_ANY_ROWS && !p->ta && !p->win && (!p->tb || two_vectors(c, p->N)) &&
           (!p->acc || LLVMConstIntGetSExtValue(p->K) * cg_pack_width(c) * 4 <= PANEL_BYTES);
}

/* out's rows in tasks of `rows` (gemm_rows), or packed as above */
static void row_tasks(Cg *c, const CgProduct *p, bool packs, int64_t rows, LLVMValueRef *vals,
                      int nvals, const char *name)
{
    CgProduct q = *p;
    q.ldb = p->tb ? p->K : cg_i64(c, p->N);
    int64_t from = packs ? pack_rows(c, p) : 0;
    if (from == 1) {
        strided_gemm(c, &q);
        return;
    }
    LLVMBasicBlockRef join = NULL, packed = NULL;
    if (packs) {
        packed = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "packed");
        LLVMBasicBlockRef plain = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "rows");
        join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, p->M, cg_i64(c, from), ""), packed,
                        plain);
        LLVMPositionBuilderAtEnd(c->b, plain);
    }
    cg_parallel_chunks(c, name, p->M, rows, vals, nvals, gemm_rows, (void *)p);
    if (!packs)
        return;
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, packed);
    strided_gemm(c, &q);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, join);
}

/* Rows of a task: about a task's work over an inner extent K */
static int64_t task_rows(int64_t K, int64_t N)
{
    int64_t rows = ROWS;
    while (rows * K * N < CG_TASK_WORK)
        rows += ROWS;
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
    LLVMValueRef f0 = gemm_fn(c, sk->K0, N, p->acc, false, NULL, 0, false),
                 f1 = gemm_fn(c, K - sk->K0, N, false, false, NULL, 0, false);
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

/* rows [lo, hi) of out += part */
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
}

/* The product cut along k in two halves at run time when b has more
 * elements than a and out together (a dense layer's weights at a small
 * batch) and out has more rows than one task's; else cut into rows. */
static void split_k(Cg *c, const CgProduct *p, bool packs, int64_t rows, LLVMValueRef *vals,
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
    cg_parallel_chunks(c, arena_printf(c->g->arena, "%s.add", name), M, task_rows(1, N), av,
                       countof(av), add_part, (void *)p);
    LLVMBuildBr(c->b, join);
    LLVMPositionBuilderAtEnd(c->b, whole);
    row_tasks(c, p, packs, rows, vals, nvals, name);
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
    LLVMValueRef vals[] = {p->out, p->a, p->b, p->K, p->lda, p->ldo};
    if (!p->ta && rows >= limit) { /* M never exceeds the limit: one task at most */
        gemm_rows(c, cg_i64(c, 0), p->M, vals, (void *)p);
        return;
    }
    const char *name = task_name(c, "gemm");
    /* (b outweighs the rest only up to cg_split_k_rows: a narrow b, of
     * one column say, never at more than one task's rows) */
    bool packs = packs_per_task(c, p, limit);
    if (p->part && cg_split_k_rows(LLVMConstIntGetSExtValue(p->K), p->N) > rows) {
        split_k(c, p, packs, rows, vals, countof(vals), name);
        return;
    }
    row_tasks(c, p, packs, rows, vals, countof(vals), name);
}

static void blas_gemm(Cg *c, DType t, const CgProduct *p)
{
    LLVMValueRef ldb = p->ldb ? p->ldb : p->tb ? p->K : cg_i64(c, p->N);
    cg_gemm(c, t, p->ta, p->tb, p->M, cg_i64(c, p->N), p->K, cg_fconst(c, t, 1), p->a, p->lda, p->b,
            ldb, p->acc ? 1 : 0, p->out, p->ldo);
}

int64_t cg_pack_width(const Cg *c)
{
    int64_t w = c->vector_bytes / 4 * tile_vectors(c);
    check(w == 8 || w == 24 || w == 64); /* cg_packed_floats */
    return w;
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

/* dst[k * w + j] = b[j * ld + k] for k in [k0, k1), j in [j0, j1) */
static void pack_scalar(Cg *c, LLVMValueRef dst, LLVMValueRef b, LLVMValueRef k0, LLVMValueRef k1,
                        LLVMValueRef j0, LLVMValueRef j1, LLVMValueRef ld)
{
    CgLoop lk, lj;
    LLVMValueRef k = cg_add(c, k0, cg_loop_begin(c, LLVMBuildSub(c->b, k1, k0, ""), &lk));
    LLVMValueRef j = cg_add(c, j0, cg_loop_begin(c, LLVMBuildSub(c->b, j1, j0, ""), &lj));
    cg_store(c, DT_F32, cg_load(c, DT_F32, b, cg_add(c, cg_mul(c, j, ld), k)), dst,
             cg_add(c, cg_mul(c, k, cg_i64(c, cg_pack_width(c))), j));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lk);
}

/* The same over k in [0, K), j in [0, J), both multiples of V, by V x V
 * blocks: V rows of b loaded along k, transposed in registers, stored
 * along j. Each stage s swaps, in every pair of rows q and q + s (bit s
 * of q clear), row q's lanes with bit s set and row q + s's with it
 * clear: after the stages for every bit, lane i of row q is the old
 * lane q of row i. (A scalar copy took a third of a panel's time.) */
static void transpose_blocks(Cg *c, LLVMValueRef dst, LLVMValueRef b, LLVMValueRef K,
                             LLVMValueRef J, LLVMValueRef ld)
{
    int V = c->vector_bytes / 4;
    LLVMTypeRef vt = LLVMVectorType(c->f32, (unsigned)V);
    LLVMValueRef Vs = cg_i64(c, V);
    CgLoop lk, lj;
    LLVMValueRef k = cg_mul(c, cg_loop_begin(c, LLVMBuildSDiv(c->b, K, Vs, ""), &lk), Vs);
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
        cg_store_lanes(
            c, u[q],
            cg_gep(
                c, DT_F32, dst,
                cg_add(c, cg_mul(c, cg_add(c, k, cg_i64(c, q)), cg_i64(c, cg_pack_width(c))), j)),
            V);
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lk);
}

/* One panel: rows [0, K) and columns [0, cols) of b (tb: b^T), its rows
 * (tb: columns) ld apart, into dst [K, w] row after row; the lanes past
 * cols unwritten (a last panel's tiles load only its columns). cols is
 * w, or N % w for b's last panel. */
static void pack_panel(Cg *c, LLVMValueRef dst, LLVMValueRef b, LLVMValueRef K, LLVMValueRef ld,
                       LLVMValueRef cols, int64_t N, bool tb)
{
    int64_t w = cg_pack_width(c), last = N % w;
    if (tb) {
        LLVMValueRef V = cg_i64(c, c->vector_bytes / 4);
        LLVMValueRef kv = cg_mul(c, LLVMBuildSDiv(c->b, K, V, ""), V),
                     jv = cg_mul(c, LLVMBuildSDiv(c->b, cols, V, ""), V);
        transpose_blocks(c, dst, b, kv, jv, ld);
        /* the columns past the whole blocks, then the rows of k */
        pack_scalar(c, dst, b, cg_i64(c, 0), K, jv, cols, ld);
        pack_scalar(c, dst, b, kv, K, cg_i64(c, 0), jv, ld);
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
static LLVMValueRef panel_width(Cg *c, LLVMValueRef p, int64_t N)
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
    pack_panel(c, cg_gep(c, DT_F32, dst, cg_mul(c, p, cg_i64(c, K * w))),
               cg_gep(c, DT_F32, b, tb ? cg_mul(c, col0, cg_i64(c, K)) : col0), cg_i64(c, K),
               cg_i64(c, tb ? K : N), panel_width(c, p, N), N, tb);
    cg_loop_end(c, &lp);
}

/* A task's part of out: rows [m0, m0 + m) by one panel's columns
 * [col0, col0 + cols) (by panels from col0 on for packed_gemm's). */
typedef struct {
    LLVMValueRef m0, m, col0, cols;
} PanelTask;

/* Task t of a cut of out's M rows into groups of `rows` by panels of b's
 * N columns, `inner` of the one kind a run of the other: the panels
 * (panel_inner, t % inner the panel) or the groups (t / inner). */
static PanelTask panel_task(Cg *c, LLVMValueRef t, int64_t inner, bool panel_inner, int64_t rows,
                            LLVMValueRef M, int64_t N)
{
    LLVMValueRef in = cg_i64(c, inner);
    LLVMValueRef q = LLVMBuildUDiv(c->b, t, in, ""), r = LLVMBuildURem(c->b, t, in, "");
    LLVMValueRef pn = panel_inner ? r : q, g = panel_inner ? q : r;
    PanelTask pt = {.m0 = cg_mul(c, g, cg_i64(c, rows))};
    pt.m = cg_smin(c, cg_i64(c, rows), LLVMBuildSub(c->b, M, pt.m0, ""));
    pt.col0 = cg_mul(c, pn, cg_i64(c, cg_pack_width(c)));
    pt.cols = panel_width(c, pn, N);
    return pt;
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
enum { TA_TASKS = 8 }; /* tasks enough for the pool to share out */

typedef struct {
    const CgProduct *p;
    int64_t kb, M, rows, panels; /* M: out's rows, in groups of rows */
} TaTasks;

/* out's rows [m0, m0 + m), the block of b's rows [k0, k0 + kb) at most
 * in panel pt's columns: packed into buf, then multiplied */
static void ta_block(Cg *c, const TaTasks *tt, LLVMValueRef *vals, LLVMValueRef buf,
                     const PanelTask *pt, LLVMValueRef k0, bool acc)
{
    LLVMValueRef a = vals[1], b = vals[2], K = vals[3], lda = vals[4];
    LLVMValueRef N = cg_i64(c, tt->p->N);
    LLVMValueRef kk = cg_smin(c, LLVMBuildSub(c->b, K, k0, ""), cg_i64(c, tt->kb));
    pack_panel(c, buf, cg_gep(c, DT_F32, b, cg_add(c, cg_mul(c, k0, N), pt->col0)), kk, N, pt->cols,
               tt->p->N, false);
    panel_product(c, gemm_fn(c, -1, tt->p->N, acc, true, NULL, tt->kb, false), pt, vals[0],
                  cg_gep(c, DT_F32, a, cg_add(c, cg_mul(c, k0, lda), pt->m0)), buf, kk, lda,
                  vals[5]);
}

static void ta_tasks(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const TaTasks *tt = ctx;
    int64_t kb = tt->kb;
    LLVMValueRef buf = stack_panel(c, kb);
    CgLoop lt, lb;
    LLVMValueRef t = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lt));
    PanelTask pt = panel_task(c, t, tt->panels, true, tt->rows, cg_i64(c, tt->M), tt->p->N);
    ta_block(c, tt, vals, buf, &pt, cg_i64(c, 0), tt->p->acc);
    LLVMValueRef K = vals[3];
    LLVMValueRef blocks = LLVMBuildSDiv(c->b, cg_add(c, K, cg_i64(c, kb - 1)), cg_i64(c, kb), "");
    LLVMValueRef i = cg_add(c, cg_loop_begin(c, LLVMBuildSub(c->b, blocks, cg_i64(c, 1), ""), &lb),
                            cg_i64(c, 1));
    ta_block(c, tt, vals, buf, &pt, cg_mul(c, i, cg_i64(c, kb)), true);
    cg_loop_end(c, &lb);
    cg_loop_end(c, &lt);
}

static void ta_packed(Cg *c, const CgProduct *p, int64_t kb)
{
    int64_t w = cg_pack_width(c);
    TaTasks tt = {.p = p,
                  .kb = kb < PANEL_ROWS ? kb : PANEL_ROWS, /* a block's panel on the stack */
                  .M = LLVMConstIntGetSExtValue(p->M),
                  .panels = (p->N + w - 1) / w};
    int64_t want = (TA_TASKS + tt.panels - 1) / tt.panels;
    tt.rows = (tt.M + want - 1) / want;
    tt.rows = tt.rows < 4 * ROWS ? 4 * ROWS : (tt.rows + ROWS - 1) / ROWS * ROWS;
    int64_t groups = (tt.M + tt.rows - 1) / tt.rows;
    LLVMValueRef vals[] = {p->out, p->a, p->b, p->K, p->lda, p->ldo};
    cg_parallel_chunks(c, task_name(c, "gemm.ta"), cg_i64(c, tt.panels * groups), 1, vals,
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
    LLVMValueRef fn =
        gemm_fn(c, LLVMConstIntGetSExtValue(p->K), p->N, p->acc, false, NULL, p->pk, false);
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
    int64_t rows, panels;
} RowPanels;

static void row_panels(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const RowPanels *rp = ctx;
    const CgProduct *p = rp->p;
    int64_t K = LLVMConstIntGetSExtValue(p->K);
    int64_t kb = panel_k(c, K);
    LLVMValueRef buf = stack_panel(c, kb);
    CgLoop lt;
    LLVMValueRef t = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lt));
    PanelTask pt = panel_task(c, t, rp->panels, true, rp->rows, vals[3], p->N);
    for (int64_t k0 = 0; k0 < K; k0 += kb) {
        int64_t kk = K - k0 < kb ? K - k0 : kb;
        LLVMValueRef at = p->tb ? cg_add(c, cg_mul(c, pt.col0, vals[6]), cg_i64(c, k0))
                                : cg_add(c, pt.col0, cg_mul(c, cg_i64(c, k0), vals[6]));
        pack_panel(c, buf, cg_gep(c, DT_F32, vals[2], at), cg_i64(c, kk), vals[6], pt.cols, p->N,
                   p->tb);
        panel_product(
            c, gemm_fn(c, kk, p->N, p->acc, false, NULL, kk, k0 > 0), &pt, vals[0],
            cg_gep(c, DT_F32, vals[1], cg_add(c, cg_mul(c, pt.m0, vals[4]), cg_i64(c, k0))), buf,
            cg_i64(c, kk), vals[4], vals[5]);
    }
    cg_loop_end(c, &lt);
}

static void strided_gemm(Cg *c, const CgProduct *p)
{
    int64_t w = cg_pack_width(c), K = LLVMConstIntGetSExtValue(p->K);
    int64_t kb = panel_k(c, K);
    RowPanels rp = {.p = p, .rows = ROWS, .panels = (p->N + w - 1) / w};
    while (rp.rows * kb * w < 16 * CG_TASK_WORK)
        rp.rows += ROWS;
    LLVMValueRef vals[] = {p->out, p->a, p->b, p->M, p->lda, p->ldo, p->ldb};
    LLVMValueRef chunks = cg_ntasks(c, p->M, rp.rows);
    cg_parallel_chunks(c, task_name(c, "gemm.panels"), cg_mul(c, chunks, cg_i64(c, rp.panels)), 1,
                       vals, countof(vals), row_panels, &rp);
}

void cg_product(Cg *c, DType t, const CgProduct *p)
{
    if (p->ldb) { /* generated only packed */
        check(!p->ta && !p->tb && !p->win && !p->pk && LLVMIsAConstantInt(p->K));
        if (t == DT_F32 && c->gemm_any && LLVMConstIntGetSExtValue(p->K) <= PANEL_ROWS)
            strided_gemm(c, p);
        else
            blas_gemm(c, t, p);
        return;
    }
    if (p->pk) { /* no matrix for BLAS */
        check(t == DT_F32 && !p->ta && !p->tb && LLVMIsAConstantInt(p->K));
        packed_gemm(c, p);
        return;
    }
    if (p->win) {
        check(t == DT_F32 && !p->ta && LLVMIsAConstantInt(p->K));
        small_gemm(c, p, CG_ANY_ROWS);
        return;
    }
    Dim dn = {.n = p->N}, dk = {.n = p->ta ? 1 : LLVMConstIntGetSExtValue(p->K), .batch = p->ta};
    int64_t limit = cg_small_gemm_rows(c, t, p->ta, p->tb, dk, dn);
    if (p->ta && limit && c->gemm_any) { /* blocks of b as large as a panel, at any limit */
        ta_blocked(c, p, PANEL_ROWS);
        return;
    }
    LLVMValueRef runs = p->ta ? p->K : p->M; /* the extent the limit bounds */
    bool known = LLVMIsAConstantInt(runs);
    if (!limit || (known && LLVMConstIntGetSExtValue(runs) > limit)) {
        blas_gemm(c, t, p);
    } else if (known || limit == CG_ANY_ROWS) {
        small_gemm(c, p, limit);
    } else {
        LLVMBasicBlockRef blas = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "blas");
        LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
        LLVMBasicBlockRef gen = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "generated");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntSLE, runs, cg_i64(c, limit), ""), gen,
                        blas);
        LLVMPositionBuilderAtEnd(c->b, gen);
        small_gemm(c, p, limit);
        LLVMBuildBr(c->b, join);
        LLVMPositionBuilderAtEnd(c->b, blas);
        blas_gemm(c, t, p);
        LLVMBuildBr(c->b, join);
        LLVMPositionBuilderAtEnd(c->b, join);
    }
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
                   .tb = tb};
    cg_product(c, t, &p);
}
