/*
 * The kernels of the products the compiler generates (gemm.c decides
 * which products and cuts them into tasks; gemm_pack.c packs b's
 * panels): one function per shape, called by every product of it.
 *
 * The kernel is register-blocked: a tile of 4 rows (6 or 8 in
 * block_rows' cases) by NV vectors of the target's widest registers
 * keeps its sums in registers while k runs over the inner extent; each
 * step loads NV vectors of b's row k and multiplies them by the tile's
 * a[i, k], splat. Each output is a sum over k in order (fused
 * multiply-adds where the target has them), so the result does not
 * depend on the rows around it nor on the thread count.
 * A transposed b (dy @ w^T) has its own kernel of dot products, and a
 * packed one (cg_pack_b) runs the tiles over one panel at a time.
 */
#include "cg_gemm.h"

/* Rows a tile computes: each vector of b loaded serves ROWS outputs
 * (more in block_rows' cases). A tile of one row may be up to MAX_NV
 * vectors wide. Kernels of k up to PREFETCH_K prefetch a's next block
 * (prefetch_next_block). */
enum { ROWS = CG_TILE_ROWS, NARROW_ROWS = 2 * ROWS, MAX_NV = 8, PREFETCH_K = 64 };

/* Vectors a tile of ROWS rows spans: 4 with AVX-512's 32 registers, 3 with
 * AVX2's 16 and fused multiply-adds, else 2, so that the ROWS x NV sums,
 * NV loads of b and a splat fit in the registers. A packed panel is one
 * tile wide (cg_pack_width). */
static int tile_vectors(const Cg *c)
{
    return c->vector_bytes >= 64 ? 4 : c->vector_bytes >= 32 ? 3 : 2;
}

int64_t cg_pack_width(const Cg *c)
{
    int64_t w = c->vector_bytes / 4 * tile_vectors(c);
    check(w == 8 || w == 24 || w == 64); /* cg_packed_floats */
    return w;
}

/* One product's shape and layout: out[M, N] (+)= a[M, K] @ b[K, N] (ta:
 * a^T, a stored [K, M]), b dense, the rows of a and out lda and ldo
 * elements apart, K a value (a constant unless a^T); and one tile's: R rows by NV
 * vectors of V lanes, the last vector with only `last` lanes (V when
 * whole), loaded and stored under a mask. */
typedef struct {
    int64_t N;
    bool acc, ta, cont;
    const CgWindow *win;  /* b's rows, when not dense */
    const CgWindow *awin; /* a's rows, when a window (cg_gemm_wa_fn) */
    CgAWalk aw;           /* a's walk along k, when not dense */
    int64_t pw, pk;       /* b packed (cg_pack_b): panels pw columns wide, pk rows */
    LLVMValueRef K, lda, ldo;
    int V, NV, R, last;
    LLVMTypeRef vt;
} Tile;

/* A kernel fn's tile over out[m, N] and an inner extent K: lda and ldo
 * its parameters, ROWS rows by tile_vectors of the widest vectors, b
 * dense, nothing accumulated; the kernel sets what differs. */
static Tile kernel_tile(Cg *c, LLVMValueRef fn, int64_t K, int64_t N)
{
    int V = c->vector_bytes / 4;
    return (Tile){.N = N,
                  .K = cg_i64(c, K),
                  .lda = LLVMGetParam(fn, 5),
                  .ldo = LLVMGetParam(fn, 6),
                  .V = V,
                  .NV = tile_vectors(c),
                  .R = ROWS,
                  .last = V,
                  .vt = LLVMVectorType(c->f32, (unsigned)V)};
}

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

/* v, the sums of out's row orow from column col on (lanes of them), at
 * the window's pitch wp, stored to its first keep columns of each wp
 * only, keep to a row: a vector spans up to (lanes-1)/wp + 2 rows, a
 * masked store each. A convolution's outputs so go straight to y; they
 * went to scratch, and a loop moving them took 12-16% of a 16-channel
 * 28x28 forward. */
static void store_kept(Cg *c, const Tile *t, LLVMValueRef v, LLVMValueRef orow, LLVMValueRef col,
                       int lanes)
{
    int64_t wp = t->win->wp, keep = t->win->keep;
    LLVMValueRef r0 = LLVMBuildUDiv(c->b, col, cg_i64(c, wp), "");
    LLVMValueRef c0 = LLVMBuildURem(c->b, col, cg_i64(c, wp), "");
    for (int64_t s = 0; s <= (lanes - 1) / wp + 1; s++) {
        /* lane l lands on row r0 + s, column c0 + l - s*wp */
        LLVMValueRef lo = LLVMBuildSub(c->b, cg_i64(c, s * wp), c0, "");
        LLVMValueRef hi = cg_smin(c, cg_add(c, lo, cg_i64(c, keep)), cg_i64(c, lanes));
        LLVMValueRef at = LLVMBuildSub(
            c->b, cg_add(c, cg_mul(c, cg_add(c, r0, cg_i64(c, s)), cg_i64(c, keep)), c0),
            cg_i64(c, s * wp), "");
        cg_store_between(c, v, LLVMBuildGEP2(c->b, c->f32, orow, &at, 1, ""), lo, hi);
    }
}

/* element (i0 + r, col) of a matrix whose rows are ld elements apart */
static LLVMValueRef at(Cg *c, LLVMValueRef base, LLVMValueRef i0, int r, LLVMValueRef ld,
                       LLVMValueRef col)
{
    LLVMValueRef row = cg_add(c, i0, cg_i64(c, r));
    return cg_gep(c, DT_F32, base, cg_add(c, cg_mul(c, row, ld), col));
}

/* The loop over k, b's rows (k_begin): k, and for a window the tap's
 * channel ch, row i and column j, one loop each (no divisions in the
 * loop). */
typedef struct {
    CgLoop l[3];
    int n;
    LLVMValueRef k, ch, i, j;
} KLoop;

/* a's element (i0 + r, k) of the k loop kl: read down a column when a is
 * transposed, along the walk t->aw when it has one */
static LLVMValueRef a_at(Cg *c, const Tile *t, LLVMValueRef a, LLVMValueRef i0, int r,
                         const KLoop *kl)
{
    if (t->ta)
        return LLVMBuildLoad2(c->b, c->f32, at(c, a, kl->k, 0, t->lda, cg_add(c, i0, cg_i64(c, r))),
                              "");
    if (!t->aw.k)
        return LLVMBuildLoad2(c->b, c->f32, at(c, a, i0, r, t->lda, kl->k), "");
    LLVMValueRef along = t->win ? cg_add(c, cg_mul(c, kl->ch, cg_i64(c, t->aw.k)),
                                         cg_add(c, cg_mul(c, kl->i, cg_i64(c, t->aw.i)),
                                                cg_mul(c, kl->j, cg_i64(c, t->aw.j))))
                                : cg_mul(c, kl->k, cg_i64(c, t->aw.k));
    return LLVMBuildLoad2(c->b, c->f32, at(c, a, i0, r, t->lda, along), "");
}

LLVMValueRef cg_win_tap(Cg *c, const CgWindow *w, LLVMValueRef ch, LLVMValueRef i, LLVMValueRef j)
{
    LLVMValueRef at = cg_mul(c, ch, cg_i64(c, w->cs));
    if (w->sh > 1 || w->sw > 1) {
        LLVMValueRef sh = cg_i64(c, w->sh), sw = cg_i64(c, w->sw);
        LLVMValueRef plane = cg_add(
            c, cg_mul(c, LLVMBuildURem(c->b, i, sh, ""), cg_i64(c, cg_win_phases(w->kw, w->sw))),
            LLVMBuildURem(c->b, j, sw, ""));
        at = cg_add(c, at, cg_mul(c, plane, cg_i64(c, w->ps)));
        i = LLVMBuildUDiv(c->b, i, sh, "");
        j = LLVMBuildUDiv(c->b, j, sw, "");
    }
    return cg_add(c, at, cg_add(c, cg_mul(c, i, cg_i64(c, w->wp)), j));
}

/* Where b's row k starts: k rows of n apart, or the window's (ch, i, j) */
static LLVMValueRef b_row(Cg *c, const CgWindow *w, LLVMValueRef b, LLVMValueRef k, int64_t n)
{
    if (!w)
        return cg_gep(c, DT_F32, b, cg_mul(c, k, cg_i64(c, n)));
    LLVMValueRef taps = cg_i64(c, w->kh * w->kw), kw = cg_i64(c, w->kw);
    LLVMValueRef ch = LLVMBuildUDiv(c->b, k, taps, ""), tap = LLVMBuildURem(c->b, k, taps, "");
    LLVMValueRef i = LLVMBuildUDiv(c->b, tap, kw, ""), j = LLVMBuildURem(c->b, tap, kw, "");
    return cg_gep(c, DT_F32, b, cg_win_tap(c, w, ch, i, j));
}

/* The loop over k, b's rows, which *row gets the start of */
static LLVMValueRef k_begin(Cg *c, const Tile *t, LLVMValueRef b, KLoop *kl, LLVMValueRef *row)
{
    const CgWindow *w = t->win;
    if (!w) {
        kl->n = 1;
        kl->k = cg_loop_begin(c, t->K, &kl->l[0]);
        *row = b_row(c, NULL, b, kl->k, t->pw ? t->pw : t->N);
        return kl->k;
    }
    kl->n = 3;
    LLVMValueRef ch = kl->ch = cg_loop_begin(c, cg_i64(c, w->c), &kl->l[0]);
    LLVMValueRef i = kl->i = cg_loop_begin(c, cg_i64(c, w->kh), &kl->l[1]);
    LLVMValueRef j = kl->j = cg_loop_begin(c, cg_i64(c, w->kw), &kl->l[2]);
    *row = cg_gep(c, DT_F32, b, cg_win_tap(c, w, ch, i, j));
    kl->k =
        cg_add(c, cg_mul(c, cg_add(c, cg_mul(c, ch, cg_i64(c, w->kh)), i), cg_i64(c, w->kw)), j);
    return kl->k;
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

static bool keeps(const Tile *t)
{
    return t->win && t->win->keep;
}

/* A packed product over a long inner extent runs in blocks of k (its
 * panel on a task's stack, gemm.c), each block's kernel walking the
 * task's rows of a for 64 floats a row; the hardware's prefetchers did
 * not follow that walk across rows kilobytes apart (the char LSTM's
 * dgates @ W_ih^T read its 16 MiB at 2.3 GB/s). So a tile of a short
 * dense k asks for the next K floats of its rows of a, which the next
 * block reads (or, a whole product, the rows after). Longer k is left
 * to the prefetchers: the recurrent steps' [64, 1024] @ [1024, 256] got
 * 11% slower asking for theirs. */
static void prefetch_next_block(Cg *c, const Tile *t, LLVMValueRef a, LLVMValueRef i0)
{
    if (!t->pw || t->ta || t->aw.k || t->awin || t->win || !LLVMIsAConstantInt(t->K))
        return;
    int64_t K = LLVMConstIntGetSExtValue(t->K);
    if (K > PREFETCH_K)
        return;
    for (int r = 0; r < t->R; r++)
        for (int64_t k = K; k < 2 * K; k += 16) /* a cache line of floats */
            cg_prefetch(c, at(c, a, i0, r, t->lda, cg_i64(c, k)));
}

/* out[i0 .. i0+R, j0 .. j0+width] (+)= a[i0 .. i0+R, :] @ b[:, j0 ..]. */
static void tile(Cg *c, const Tile *t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                 LLVMValueRef i0, LLVMValueRef j0)
{
    LLVMValueRef acc[NARROW_ROWS][MAX_NV];
    check(t->R <= NARROW_ROWS);
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
    prefetch_next_block(c, t, a, i0);
    LLVMValueRef arow[NARROW_ROWS]; /* a window's rows start where its taps do */
    for (int r = 0; t->awin && r < t->R; r++)
        arow[r] = b_row(c, t->awin, a, cg_add(c, i0, cg_i64(c, r)), 0);
    KLoop lk;
    LLVMValueRef brow, k = k_begin(c, t, b, &lk, &brow);
    LLVMValueRef bv[MAX_NV];
    for (int v = 0; v < t->NV; v++)
        bv[v] = load_vec(c, t, b_vec(c, t, brow, j0, v), partial(t, v));
    for (int r = 0; r < t->R; r++) {
        LLVMValueRef s = t->awin ? cg_load(c, DT_F32, arow[r], k) : a_at(c, t, a, i0, r, &lk);
        LLVMValueRef splat = cg_splat(c, t->vt, s);
        for (int v = 0; v < t->NV; v++) {
            LLVMValueRef args[] = {splat, bv[v], LLVMBuildLoad2(c->b, t->vt, acc[r][v], "")};
            LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.fmuladd", t->vt, args, 3), acc[r][v]);
        }
    }
    k_end(c, &lk);
    for (int r = 0; r < t->R; r++) {
        if (keeps(t)) {
            for (int v = 0; v < t->NV; v++)
                store_kept(c, t, LLVMBuildLoad2(c->b, t->vt, acc[r][v], ""),
                           at(c, out, i0, r, t->ldo, cg_i64(c, 0)),
                           cg_add(c, j0, cg_i64(c, v * t->V)), partial(t, v) ? t->last : t->V);
            continue;
        }
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
    LLVMValueRef brow;
    k_begin(c, t, b, &lk, &brow);
    LLVMValueRef s = a_at(c, t, a, i, 0, &lk);
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

/* Rows i0 .. i0+R of columns j0 .. j0+cols (rows()), or of packed b's
 * panel at j0 (cols 0) */
static void row_tile(Cg *c, Tile t, int R, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                     LLVMValueRef i0, LLVMValueRef j0, int64_t cols)
{
    t.R = R;
    if (cols)
        rows(c, t, out, a, b, i0, j0, cols);
    else
        tile(c, &t, out, a, b, i0, j0);
}

/* Rows of row_blocks' blocks: 8 when b's columns fit one vector (4
 * sums in flight waited on the multiply-adds' latency: a classifier's
 * [64, 256] @ [256, 10] took 5.6 us); 6 over a packed panel of 4 of
 * AVX-512's vectors (24 sums, 4 vectors of b and a splat in 32
 * registers), where each vector of b, read from L2 when the panel
 * outgrows L1, then serves 6 rows (the char LSTM's steps' products
 * [64, 256] @ [256, 1024]: 260 -> 243 us); else ROWS. */
static int block_rows(const Tile *t, int64_t cols)
{
    if (cols && cols <= t->V)
        return NARROW_ROWS;
    return !cols && t->V >= 16 && t->NV == 4 ? 6 : ROWS;
}

/* Every row's block (block_rows), then one of 4 when the block is
 * larger, then a pair: rows() over columns j0 .. j0+cols, the last odd
 * row left to last_row (it may stream); or, cols 0, for packed b, one
 * tile at j0 a block and a last odd row too, all over the same panel
 * [K, pw], which stays in L1/L2 (rows() walks all of b for each row
 * block instead). */
static void row_blocks(Cg *c, Tile t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                       LLVMValueRef M, LLVMValueRef j0, int64_t cols)
{
    int R = block_rows(&t, cols);
    LLVMValueRef blocks = LLVMBuildSDiv(c->b, M, cg_i64(c, R), "");
    CgLoop l;
    LLVMValueRef i0 = cg_mul(c, cg_loop_begin(c, blocks, &l), cg_i64(c, R));
    row_tile(c, t, R, out, a, b, i0, j0, cols);
    cg_loop_end(c, &l);
    LLVMValueRef done = cg_mul(c, blocks, cg_i64(c, R)), left = LLVMBuildSub(c->b, M, done, "");
    LLVMBasicBlockRef join;
    if (R > ROWS) { /* then a block of 4, if 4 rows are left */
        LLVMValueRef four = LLVMBuildICmp(c->b, LLVMIntSGE, left, cg_i64(c, ROWS), "");
        join = cg_if_begin(c, four);
        row_tile(c, t, ROWS, out, a, b, done, j0, cols);
        cg_if_end(c, join);
        done = cg_add(c, done, LLVMBuildSelect(c->b, four, cg_i64(c, ROWS), cg_i64(c, 0), ""));
        left = LLVMBuildSub(c->b, M, done, "");
    }
    join = cg_if_begin(c, LLVMBuildICmp(c->b, LLVMIntSGE, left, cg_i64(c, 2), ""));
    row_tile(c, t, 2, out, a, b, done, j0, cols);
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
    if (t.N <= (int64_t)t.V * MAX_NV || t.acc || keeps(&t)) {
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

/* A window's part of a kernel's name, after kind: .winKHxKW.CS.WP, then
 * .sSHxSW.PS when strided */
static const char *win_kind(Cg *c, const char *kind, const CgWindow *w)
{
    if (!w)
        return kind;
    const char *name =
        arena_printf(c->g->arena, "%s.win%lldx%lld.%lld.%lld", kind, (long long)w->kh,
                     (long long)w->kw, (long long)w->cs, (long long)w->wp);
    if (w->keep)
        name = arena_printf(c->g->arena, "%s.k%lld", name, (long long)w->keep);
    if (w->sh <= 1 && w->sw <= 1) /* as cg_win_tap reads it */
        return name;
    return arena_printf(c->g->arena, "%s.s%lldx%lld.%lld", name, (long long)w->sh, (long long)w->sw,
                        (long long)w->ps);
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

/* The body of a kernel over b dense or a window: the rows through b's
 * panels of `cols` columns (panel_cols) in turn, then its last odd row */
static void in_panels(Cg *c, Tile t, LLVMValueRef out, LLVMValueRef a, LLVMValueRef b,
                      LLVMValueRef M, int64_t cols)
{
    int64_t whole = t.N / cols, rest = t.N % cols;
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
}

/* A walk's part of a kernel's name: .aK[.I.J] (m for a minus) */
static const char *walk_kind(Cg *c, const char *kind, const CgAWalk *aw, bool win)
{
    if (!aw || !aw->k)
        return kind;
    const int64_t v[] = {aw->k, aw->i, aw->j};
    const char *name = arena_printf(c->g->arena, "%s.a", kind);
    for (int i = 0; i < (win ? 3 : 1); i++)
        name = arena_printf(c->g->arena, "%s%s%s%lld", name, i ? "." : "", v[i] < 0 ? "m" : "",
                            (long long)(v[i] < 0 ? -v[i] : v[i]));
    return name;
}

/* `void NAME.gemm[.acc].f32.KxN(ptr noalias out, ptr noalias a, ptr
 * noalias b, i64 m, i64 k, i64 lda, i64 ldo)`: out[m, N] = a[m, K] @
 * b[K, N] (.acc: +=), b dense, the rows of a and out lda and ldo apart, k
 * unused; NAME.gemm.ta[.acc].f32.N: out[m, N] = a^T @ b[k, N], a stored
 * [k, m] (the backward's x^T @ dy, k the batch); NAME.gemm.winKHxKW.CS.WP
 * [.acc].f32.KxN: b the window win onto an image (K = its c*kh*kw);
 * NAME.gemm[.ta].pPK[.cont][.acc].f32.{KxN|N}: b packed (cg_pack_b),
 * panels of PK rows, and cols, the columns to make (a task's panels);
 * .cont starts each sum from out's value (a later block of k). With a
 * walk aw (not with ta or pk), .aK[.I.J] follows the kind: a read along
 * k as aw says. */
LLVMValueRef cg_gemm_fn(Cg *c, int64_t K, int64_t N, bool acc, bool ta, const CgWindow *win,
                        const CgAWalk *aw, int64_t pk, bool cont, bool any)
{
    check(!aw || !aw->k || (!ta && !pk));
    check(!win || !win->keep || (!acc && !cont));
    const char *shape = ta ? arena_printf(c->g->arena, "%lld", (long long)N)
                           : arena_printf(c->g->arena, "%lldx%lld", (long long)K, (long long)N);
    const char *kind = pk ? arena_printf(c->g->arena, "%s.p%lld%s", ta ? ".ta" : "", (long long)pk,
                                         cont ? ".cont" : "")
                       : ta ? ".ta"
                            : walk_kind(c, win_kind(c, "", win), aw, win != NULL);
    CgSaved saved;
    bool made;
    LLVMValueRef fn = kernel_begin(c, kind, shape, acc, pk != 0, ta ? "T" : "",
                                   win  ? "#"
                                   : pk ? (cont ? "pc" : "p")
                                        : "",
                                   any, &saved, &made);
    if (!made)
        return fn;
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2),
                 M = LLVMGetParam(fn, 3);
    Tile t = kernel_tile(c, fn, K, N);
    t.acc = acc;
    t.cont = cont;
    t.ta = ta;
    t.win = win;
    if (aw)
        t.aw = *aw;
    if (ta)
        t.K = LLVMGetParam(fn, 4);
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
    in_panels(c, t, out, a, b, M, ta || win ? N : panel_cols(c, K, N, (int64_t)t.V * t.NV));
    cg_helper_end(c, &saved);
    return fn;
}

/* `void NAME.gemm.a.winKHxKW.CS.WP.acc.f32.KxN(ptr noalias out, ptr
 * noalias a, ptr noalias b, i64 m, i64 k, i64 lda, i64 ldo)`: out[m, N]
 * += window[m, K] @ b[K, N], row i of a the window's row i onto the
 * image a (a weight gradient's taps over an image's output positions,
 * b its dy transposed); k and lda unused. The tiles sum each output
 * over K in order, in registers, where the dot products of
 * cg_gemm_tb_fn (dy @ window^T) sum lanes and add them across at the end
 * of every short row: LeNet-5's [16, 136] @ [136, 150] per image ran at
 * 43 GFLOP/s that way. */
LLVMValueRef cg_gemm_wa_fn(Cg *c, const CgWindow *win, int64_t K, int64_t N)
{
    check(!win->keep);
    const char *shape = arena_printf(c->g->arena, "%lldx%lld", (long long)K, (long long)N);
    CgSaved saved;
    bool made;
    LLVMValueRef fn =
        kernel_begin(c, win_kind(c, ".a", win), shape, true, false, "#", "", false, &saved, &made);
    if (!made)
        return fn;
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2),
                 M = LLVMGetParam(fn, 3);
    Tile t = kernel_tile(c, fn, K, N);
    t.acc = true;
    t.awin = win;
    in_panels(c, t, out, a, b, M, panel_cols(c, K, N, (int64_t)t.V * t.NV));
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
LLVMValueRef cg_gemm_tb_fn(Cg *c, int64_t K, int64_t N, bool acc, const CgWindow *win, bool any)
{
    check(!win || !win->keep);
    const char *shape = arena_printf(c->g->arena, "%lldx%lld", (long long)K, (long long)N);
    CgSaved saved;
    bool made;
    LLVMValueRef fn = kernel_begin(c, win_kind(c, ".tb", win), shape, acc, false, "",
                                   win ? "'#" : "'", any, &saved, &made);
    if (!made)
        return fn;
    LLVMValueRef out = LLVMGetParam(fn, 0), a = LLVMGetParam(fn, 1), b = LLVMGetParam(fn, 2),
                 M = LLVMGetParam(fn, 3);
    /* 4 x 4 sums and 8 loads in 32 registers (AVX-512), else 2 x 4 and 6
     * in 16 */
    int R = c->vector_bytes >= 64 ? 4 : 2;
    Tile t = kernel_tile(c, fn, K, N);
    t.acc = acc;
    t.win = win;
    t.NV = 1;
    t.R = R;
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
