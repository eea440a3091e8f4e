/*
 * The seq family's kernels (passes/shape_seq.c): embedding, rnn, lstm,
 * gru and scaled dot-product attention (inference).
 *
 * Recurrent layers (G = 1, 4, 3 gates) follow cuDNN's and PyTorch's plan:
 * the input projection of every time step is one GEMM, x [B*T, F] @ w_ih
 * into scratch XP [B*T, G*H]; each step's recurrent projection is one GEMM,
 * h_{t-1} [B, H] @ w_hh into scratch HP [B, G*H], h_{t-1} read in place in
 * the output (row stride T*H) or in h0; then one fused loop over [B, H]
 * (in tasks of samples) adds the biases, applies the gate nonlinearities
 * and writes h_t into the output (and the LSTM cell state into scratch C
 * [B, H]). GRU keeps the
 * recurrent part of its candidate apart (n = tanh(xn + r*(hn + b_hn))),
 * which is why HP is never accumulated into XP.
 *
 * Attention, per batch*head: scores P [T, S] = q k^T / sqrt(d) by one GEMM
 * into scratch, a fused row softmax that subtracts the row maximum over the
 * visible keys (j <= i when causal; masked entries become exact zeros),
 * then out = P v by one GEMM.
 *
 * Embedding copies table rows; an id outside 0..V-1 yields a zero row (the
 * table is never read out of bounds).
 */
#include <math.h>
#include <string.h>

#include "cg_kernels.h"

static LLVMValueRef f_add(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFAdd(c->b, a, b, "");
}

static LLVMValueRef f_mul(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(c->b, a, b, "");
}

static LLVMValueRef fsigmoid(Cg *c, DType t, LLVMValueRef x)
{
    LLVMValueRef nx = LLVMBuildFNeg(c->b, x, "");
    LLVMValueRef e = cg_exp(c, t, nx);
    return LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), f_add(c, cg_fconst(c, t, 1), e), "");
}

static LLVMValueRef k_embedding(Cg *c, Node *n)
{
    const Node *ids = n->in[0], *table = n->in[1];
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 2);
    LLVMValueRef out = LLVMGetParam(fn, 0), idp = LLVMGetParam(fn, 1), tab = LLVMGetParam(fn, 2);
    DType t = n->dtype;
    int64_t V = table->shape.d[0].n, D = table->shape.d[1].n;
    CgLoop li, lj;
    LLVMValueRef i = cg_loop_begin(c, cg_numel(c, &ids->shape), &li);
    LLVMValueRef id = LLVMBuildSExt(c->b, cg_load(c, DT_I32, idp, i), c->i64, "");
    LLVMValueRef ok = LLVMBuildAnd(c->b, LLVMBuildICmp(c->b, LLVMIntSGE, id, cg_i64(c, 0), ""),
                                   LLVMBuildICmp(c->b, LLVMIntSLT, id, cg_i64(c, V), ""), "");
    LLVMValueRef row = cg_mul(c, LLVMBuildSelect(c->b, ok, id, cg_i64(c, 0), ""), cg_i64(c, D));
    LLVMValueRef orow = cg_mul(c, i, cg_i64(c, D));
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, D), &lj);
    LLVMValueRef v =
        LLVMBuildSelect(c->b, ok, cg_load(c, t, tab, cg_add(c, row, j)), cg_fconst(c, t, 0), "");
    cg_store(c, t, v, out, cg_add(c, orow, j));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);
    LLVMBuildRetVoid(c->b);
    return fn;
}

static int gates_of(Op op)
{
    return op == OP_LSTM ? 4 : op == OP_GRU ? 3 : 1;
}

/* Whether step t of row b is within the row's length (the packed ops'
 * i32 lengths; any value works: below 1 none, above T all). */
static LLVMValueRef within(Cg *c, LLVMValueRef lens, LLVMValueRef b, LLVMValueRef t)
{
    LLVMValueRef n = LLVMBuildSExt(c->b, cg_load(c, DT_I32, lens, b), c->i64, "");
    return LLVMBuildICmp(c->b, LLVMIntSLT, t, n, "live");
}

/* rnn's nonlinearity; relu lets NaN through, as the relu op does */
static LLVMValueRef relu_or_tanh(Cg *c, const Node *n, DType t, LLVMValueRef a)
{
    if (strcmp(attr_nonlinearity(n), "relu") != 0)
        return cg_tanh(c, t, a);
    LLVMValueRef pos = LLVMBuildFCmp(c->b, LLVMRealUGT, a, cg_fconst(c, t, 0), "");
    return LLVMBuildSelect(c->b, pos, a, cg_fconst(c, t, 0), "");
}

/* Plane k of G + 1 planes [B*T, H] ps elements apart: a recurrent
 * layer's gates, one per plane, then the LSTM's cells or the GRU's
 * recurrent n side. Planes rather than rows of (G + 1) * H: LLVM checks
 * the stores of a loop over all its outer iterations at once, where
 * rows interleave and the checks always failed. */
static LLVMValueRef plane(Cg *c, DType t, LLVMValueRef p, LLVMValueRef ps, int k)
{
    return cg_gep(c, t, p, cg_mul(c, ps, cg_i64(c, k)));
}

/* planes[k] (+)= a [M, K] @ w[:, k*H : (k+1)*H] for the G gates, w
 * [K, G*H]: one GEMM per gate plane */
static void gate_planes(Cg *c, DType t, int G, int64_t H, LLVMValueRef M, LLVMValueRef K,
                        LLVMValueRef a, LLVMValueRef lda, LLVMValueRef w, int beta,
                        LLVMValueRef planes)
{
    LLVMValueRef ps = cg_mul(c, M, cg_i64(c, H));
    for (int k = 0; k < G; k++) {
        CgProduct p = {.M = M,
                       .K = K,
                       .N = H,
                       .a = a,
                       .lda = lda,
                       .b = cg_gep(c, t, w, cg_i64(c, k * H)),
                       .ldb = cg_i64(c, G * H),
                       .out = plane(c, t, planes, ps, k),
                       .ldo = cg_i64(c, H),
                       .acc = beta != 0};
        cg_product(c, t, &p);
    }
}

/* Element at of each plane of a layer's reserve (none without one): the
 * values kept for the backward. */
static void keep_planes(Cg *c, DType t, LLVMValueRef res, LLVMValueRef ps, LLVMValueRef at,
                        const LLVMValueRef *v, int nv)
{
    for (int k = 0; res && k < nv; k++)
        cg_store(c, t, v[k], plane(c, t, res, ps, k), at);
}

/* What a step's cells read and write (k_recurrent): the output, the
 * input projection's planes XP (PS elements apart; with the reserve
 * also the kept values), the step's recurrent products HP (row bi at
 * bi * G*H), the biases, the LSTM's cells C (rows ldc apart), h_{t-1}
 * (rows ldh apart; written too with the state rows), the lengths
 * (packed ops, else NULL), the sequence T (out's samples TH apart) and
 * the step ti. */
typedef struct {
    const Node *n;
    DType t;
    Op cell;
    int G;
    int64_t Hn;
    bool reserve, state;
    LLVMValueRef out, XP, PS, HP, bias, bhh, C, ldc, hprev, ldh, lens, T, TH, ti;
} Cell;

/* Unit j of sample bi's cell at step ti, its gate k's recurrent part at
 * HP[hp[k]] */
static void cell_unit(Cg *c, const Cell *k, LLVMValueRef bi, LLVMValueRef j, const LLVMValueRef *hp)
{
    DType t = k->t;
    bool lstm = k->cell == OP_LSTM, gru = k->cell == OP_GRU;
    LLVMValueRef H = cg_i64(c, k->Hn);
    LLVMValueRef xrow = cg_mul(c, cg_add(c, cg_mul(c, bi, k->T), k->ti), H);  /* XP row (bi, t) */
    LLVMValueRef orow = cg_add(c, cg_mul(c, bi, k->TH), cg_mul(c, k->ti, H)); /* out[bi, t, :] */
    LLVMValueRef prow = k->hprev ? cg_mul(c, bi, k->ldh) : NULL;              /* hprev row bi */
    /* packed: whether step t is within row bi's length */
    LLVMValueRef live = k->lens ? within(c, k->lens, bi, k->ti) : NULL;
    /* pre-activation of gate g at unit j: x part + h part + bias(es) */
    LLVMValueRef xg[4], hg[4], bg[4];
    for (int g = 0; g < k->G; g++) {
        LLVMValueRef col = cg_add(c, j, cg_i64(c, g * k->Hn));
        xg[g] = cg_load(c, t, plane(c, t, k->XP, k->PS, g), cg_add(c, xrow, j));
        hg[g] = cg_load(c, t, k->HP, hp[g]);
        bg[g] = cg_load(c, t, k->bias, col);
        if (gru)
            hg[g] = f_add(c, hg[g], cg_load(c, t, k->bhh, col));
    }
    LLVMValueRef keep = k->reserve ? k->XP : NULL, at = cg_add(c, xrow, j), h;
    if (lstm) {
        LLVMValueRef a[4];
        for (int g = 0; g < 4; g++)
            a[g] = f_add(c, f_add(c, xg[g], hg[g]), bg[g]);
        LLVMValueRef ig = fsigmoid(c, t, a[0]), fg = fsigmoid(c, t, a[1]);
        LLVMValueRef gg = cg_tanh(c, t, a[2]), og = fsigmoid(c, t, a[3]);
        LLVMValueRef cj = cg_add(c, cg_mul(c, bi, k->ldc), j), cold = cg_load(c, t, k->C, cj);
        LLVMValueRef cn = f_add(c, f_mul(c, fg, cold), f_mul(c, ig, gg));
        LLVMValueRef ckept = live ? LLVMBuildSelect(c->b, live, cn, cold, "") : cn;
        cg_store(c, t, ckept, k->C, cj);
        h = f_mul(c, og, cg_tanh(c, t, cn));
        LLVMValueRef kept[] = {ig, fg, gg, og, ckept};
        keep_planes(c, t, keep, k->PS, at, kept, 5);
    } else if (gru) {
        LLVMValueRef r = fsigmoid(c, t, f_add(c, f_add(c, xg[0], bg[0]), hg[0]));
        LLVMValueRef z = fsigmoid(c, t, f_add(c, f_add(c, xg[1], bg[1]), hg[1]));
        LLVMValueRef nn = cg_tanh(c, t, f_add(c, f_add(c, xg[2], bg[2]), f_mul(c, r, hg[2])));
        LLVMValueRef hp0 = cg_load(c, t, k->hprev, cg_add(c, prow, j));
        /* (1 - z) * n + z * h = n + z * (h - n) */
        h = f_add(c, nn, f_mul(c, z, LLVMBuildFSub(c->b, hp0, nn, "")));
        LLVMValueRef kept[] = {r, z, nn, hg[2]};
        keep_planes(c, t, keep, k->PS, at, kept, 4);
    } else {
        LLVMValueRef a = f_add(c, f_add(c, xg[0], hg[0]), bg[0]);
        h = relu_or_tanh(c, k->n, t, a);
    }
    if (live) {
        /* past the length: output 0, the state kept */
        LLVMValueRef hp0 = cg_load(c, t, k->hprev, cg_add(c, prow, j));
        cg_store(c, t, LLVMBuildSelect(c->b, live, h, cg_fconst(c, t, 0), ""), k->out,
                 cg_add(c, orow, j));
        cg_store(c, t, LLVMBuildSelect(c->b, live, h, hp0, ""), k->hprev, cg_add(c, prow, j));
    } else {
        cg_store(c, t, h, k->out, cg_add(c, orow, j));
        if (k->state)
            cg_store(c, t, h, k->hprev, cg_add(c, prow, j));
    }
}

/* A struct's value fields *f[0..n) as a loop's vals: those set into
 * vals, their count returned; take: set from vals in the same order (a
 * task's copy of the struct gets its task's values) */
static int field_vals(LLVMValueRef *const *f, int n, LLVMValueRef *vals, bool take)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (*f[i]) {
            if (take)
                *f[i] = vals[k];
            else
                vals[k] = *f[i];
            k++;
        }
    return k;
}

enum { CELL_FIELDS = 14 };

static int cell_fields(Cell *k, LLVMValueRef **f)
{
    LLVMValueRef *all[CELL_FIELDS] = {&k->out,  &k->XP, &k->PS,  &k->HP,    &k->bias,
                                      &k->bhh,  &k->C,  &k->ldc, &k->hprev, &k->ldh,
                                      &k->lens, &k->T,  &k->TH,  &k->ti};
    memcpy(f, all, sizeof all);
    return CELL_FIELDS;
}

/* A loop over samples on the pool (cg_parallel_chunks), its body in a
 * function of its own, `void NAME.rows(vals..., i64 lo, i64 hi)`, whose
 * pointers are noalias when the kernel's are: a task reads them from
 * its context, and LLVM then vectorized the backward's step loop only
 * behind overlap checks that failed (3.5x slower than in the kernel).
 * The pointers reach disjoint memory: planes, rows and buffers apart. */
typedef struct {
    LLVMValueRef fn;
    int n;
} RowsFn;

static void call_rows(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const RowsFn *r = ctx;
    LLVMValueRef *args = arena_alloc(c->g->arena, sizeof *args * (size_t)(r->n + 2));
    memcpy(args, vals, sizeof *args * (size_t)r->n);
    args[r->n] = lo;
    args[r->n + 1] = hi;
    LLVMBuildCall2(c->b, LLVMGlobalGetValueType(r->fn), r->fn, args, (unsigned)r->n + 2, "");
}

static void parallel_rows(Cg *c, const char *name, LLVMValueRef n, int64_t chunk,
                          LLVMValueRef *vals, int nvals, CgChunkBody body, void *ctx)
{
    check(nvals + 2 <= 32);
    unsigned kind = LLVMGetEnumAttributeKindForName("noalias", 7), mask = 0;
    bool apart = LLVMGetEnumAttributeAtIndex(c->fn, 1, kind) != NULL;
    LLVMTypeRef *pt = arena_alloc(c->g->arena, sizeof *pt * (size_t)(nvals + 2));
    for (int i = 0; i < nvals; i++) {
        pt[i] = LLVMTypeOf(vals[i]);
        if (apart && LLVMGetTypeKind(pt[i]) == LLVMPointerTypeKind)
            mask |= 1u << i;
    }
    pt[nvals] = pt[nvals + 1] = c->i64;
    CgSaved saved;
    bool made;
    RowsFn r = {cg_helper_begin(c, arena_printf(c->g->arena, "%s.rows", name),
                                LLVMFunctionType(c->voidt, pt, (unsigned)nvals + 2, false), mask,
                                &saved, &made),
                nvals};
    check(made);
    cg_prefer_widest(c, r.fn);
    LLVMValueRef *pv = arena_alloc(c->g->arena, sizeof *pv * (size_t)nvals);
    for (int i = 0; i < nvals; i++)
        pv[i] = LLVMGetParam(r.fn, (unsigned)i);
    body(c, LLVMGetParam(r.fn, (unsigned)nvals), LLVMGetParam(r.fn, (unsigned)nvals + 1), pv, ctx);
    LLVMBuildRetVoid(c->b);
    cg_helper_end(c, &saved);
    cg_parallel_chunks(c, name, n, chunk, vals, nvals, call_rows, &r);
}

/* body on the samples [0, B) of a step, with the fields *f[0..nf) of
 * the struct at ctx as vals: in the kernel when the largest batch max
 * fits one task of `rows` samples, else in tasks (parallel_rows); in the
 * widest registers either way (cg_prefer_widest: the cells' sigmoids
 * and tanhs are arithmetic, 137 -> 125 us a step of the char LSTM's) */
static void step_samples(Cg *c, const char *name, LLVMValueRef B, int64_t max, int64_t rows,
                         LLVMValueRef *const *f, int nf, CgChunkBody body, void *ctx)
{
    LLVMValueRef *vals = arena_alloc(c->g->arena, sizeof *vals * (size_t)nf);
    int nv = field_vals(f, nf, vals, false);
    if (max <= rows) {
        cg_prefer_widest(c, c->fn);
        body(c, cg_i64(c, 0), B, vals, ctx);
    } else
        parallel_rows(c, name, B, rows, vals, nv, body, ctx);
}

/* Samples a task of a loop over samples whose each does `per` gate
 * activations: about 2^16 of them (a few hundred microseconds), fixed by
 * the shapes, so the tasks are the same at any thread count. */
static int64_t rows_per_task(int64_t per)
{
    int64_t r = ((int64_t)1 << 16) / (per > 0 ? per : 1);
    return r > 0 ? r : 1;
}

/* Sample bi's rows at this step of the cells' planes (with the reserve
 * also the kept cell state or n side: G + 1 planes) and of out, asked
 * for ahead of the loop that reads them. A step's cells read and write
 * a row of each plane and of out per sample, each row on its own page
 * (a sample's rows are T rows apart), where the hardware's prefetchers
 * stop: the char LSTM's cells waited on memory (121 -> 106 us a step
 * with its 5 planes' and out's rows asked for a sample ahead). Its
 * backward step, which reads the same planes, got slower (73 -> 77 us)
 * and is left alone. */
static void prefetch_cells(Cg *c, const Cell *k, LLVMValueRef bi)
{
    int planes = k->G + (k->reserve ? 1 : 0);
    LLVMValueRef H = cg_i64(c, k->Hn), rows[6];
    LLVMValueRef row = cg_mul(c, cg_add(c, cg_mul(c, bi, k->T), k->ti), H);
    for (int g = 0; g < planes; g++)
        rows[g] = cg_gep(c, k->t, plane(c, k->t, k->XP, k->PS, g), row);
    rows[planes] = cg_gep(c, k->t, k->out, cg_add(c, cg_mul(c, bi, k->TH), cg_mul(c, k->ti, H)));
    cg_prefetch_rows(c, k->t, rows, planes + 1, H);
}

/* A cell's gates are chains of dependent operations (exp or tanh, then a
 * division, then the cell's tanh), each vector of units about 300
 * instructions, so the core's reorder window held about two vectors'
 * chains and waited on their latency: the char LSTM's cells ran 104 us a
 * step as LLVM vectorized them (one vector an iteration), 92 with 2
 * interleaved, 84 with 4 or 8. The backward step's loop, with one tanh,
 * got no faster (78, 80 and 88 us at 1, 2 and 4). */
enum { CELL_INTERLEAVE = 4 };

/* Samples [lo, hi) of a step's cells (a task's): a sample's cells read
 * and write only its rows, which are asked for while the sample before
 * runs. A step's tasks do a quarter of rows_per_task's work: there are
 * T loops of them. */
static void cell_rows(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    Cell k = *(const Cell *)ctx;
    LLVMValueRef *f[CELL_FIELDS];
    field_vals(f, cell_fields(&k, f), vals, true);
    LLVMValueRef H = cg_i64(c, k.Hn), GH = cg_i64(c, k.G * k.Hn);
    CgLoop lb, lj;
    prefetch_cells(c, &k, lo);
    LLVMValueRef bi = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lb));
    LLVMValueRef next =
        cg_smin(c, cg_add(c, bi, cg_i64(c, 1)), LLVMBuildSub(c->b, hi, cg_i64(c, 1), ""));
    prefetch_cells(c, &k, next); /* a sample ahead */
    LLVMValueRef j = cg_loop_begin(c, H, &lj);
    LLVMValueRef hp[4], at = cg_add(c, cg_mul(c, bi, GH), j); /* HP row bi, unit j */
    for (int g = 0; g < k.G; g++)
        hp[g] = cg_add(c, at, cg_i64(c, g * k.Hn));
    cell_unit(c, &k, bi, j, hp);
    cg_loop_end_interleaved(c, &lj, CELL_INTERLEAVE);
    cg_loop_end(c, &lb);
}

/* With final-state rows (return_state), the running state lives in them:
 * h in row T of each sample (h_{t-1} for every step's GEMM, stride
 * (T + S) * H) and the LSTM's c in row T + 1, so that they end as h_n and
 * c_n; without, h_{t-1} is the previous output row (h0 at t = 0) and c is
 * scratch. Each step's cells run on the pool in chunks of samples
 * (cell_rows), after the step's product. */
static LLVMValueRef k_recurrent(Cg *c, Node *n)
{
    const Node *x = n->in[0];
    Op cell = ir_recurrent_cell(n->op);
    bool lstm = cell == OP_LSTM, gru = cell == OP_GRU;
    int G = gates_of(cell), S = ir_recurrent_state_rows(n);
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
    LLVMValueRef out = LLVMGetParam(fn, 0), xp = LLVMGetParam(fn, 1), h0 = LLVMGetParam(fn, 2);
    int w = lstm ? 3 : 2; /* index of w_ih among the inputs */
    LLVMValueRef c0 = lstm ? LLVMGetParam(fn, 3) : NULL;
    LLVMValueRef wih = LLVMGetParam(fn, (unsigned)w + 1), whh = LLVMGetParam(fn, (unsigned)w + 2);
    LLVMValueRef bias = LLVMGetParam(fn, (unsigned)w + 3);
    LLVMValueRef bhh = gru ? LLVMGetParam(fn, (unsigned)w + 4) : NULL;
    LLVMValueRef lens = ir_recurrent_packed(n->op) ? LLVMGetParam(fn, (unsigned)n->nin) : NULL;
    LLVMValueRef scratch = cg_kernel_scratch(c, n->nin);

    int64_t Hn = n->shape.d[2].n;
    LLVMValueRef B = cg_dim(c, x->shape.d[0]), T = cg_dim(c, x->shape.d[1]);
    LLVMValueRef F = cg_i64(c, x->shape.d[2].n), H = cg_i64(c, Hn), GH = cg_i64(c, G * Hn);
    LLVMValueRef BT = cg_mul(c, B, T);
    LLVMValueRef TH = cg_mul(c, cg_add(c, T, cg_i64(c, S)), H); /* out's stride per sample */
    /* XP: the input projection as G planes [B*T, H], one per gate, in
     * the layer's reserve after out's rows (where the activated gates
     * replace the pre-activations and a last plane gets the LSTM's cells
     * or the GRU's recurrent n side) or in scratch; then scratch HP
     * [B, GH], C [B, H] (lstm) and, when the steps' products are
     * generated, W_hh packed for them (cg_pack_b) */
    bool reserve = ir_recurrent_reserve(c->g, n) > 0;
    LLVMValueRef PS = cg_mul(c, BT, H);
    LLVMValueRef XP = reserve ? cg_gep(c, t, out, cg_mul(c, B, TH)) : scratch;
    LLVMValueRef HP = reserve ? scratch : cg_gep(c, t, scratch, cg_mul(c, BT, GH));
    LLVMValueRef C = cg_gep(c, t, HP, cg_mul(c, B, GH)), ldc = H;
    LLVMValueRef WP = cg_gep(c, t, C, lstm ? cg_mul(c, B, H) : cg_i64(c, 0));
    bool packs = cg_packs(c, t, Hn, G * Hn, ir_dim_max(c->g, x->shape.d[0]));
    LLVMValueRef hstate = S ? cg_gep(c, t, out, cg_mul(c, T, H)) : NULL;
    if (S && lstm) {
        C = cg_gep(c, t, hstate, H);
        ldc = TH;
    }

    gate_planes(c, t, G, Hn, BT, F, xp, F, wih, 0, XP);
    if (packs)
        cg_pack_b(c, WP, whh, Hn, G * Hn, false);
    CgLoop lt, lb;
    if (S) {
        LLVMValueRef bi = cg_loop_begin(c, B, &lb);
        cg_memcpy(c, t, cg_gep(c, t, hstate, cg_mul(c, bi, TH)), cg_gep(c, t, h0, cg_mul(c, bi, H)),
                  H);
        if (lstm)
            cg_memcpy(c, t, cg_gep(c, t, C, cg_mul(c, bi, TH)), cg_gep(c, t, c0, cg_mul(c, bi, H)),
                      H);
        cg_loop_end(c, &lb);
    } else if (lstm) {
        cg_memcpy(c, t, C, c0, cg_mul(c, B, H));
    }

    LLVMValueRef ti = cg_loop_begin(c, T, &lt);
    LLVMValueRef hprev, ldh;
    if (S) {
        hprev = hstate;
        ldh = TH;
    } else {
        /* h_{t-1}: h0 [B, H] at t = 0, else out[:, t-1, :] with row stride T*H */
        LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, ti, cg_i64(c, 0), "");
        LLVMValueRef prev_t = LLVMBuildSelect(c->b, first, cg_i64(c, 0),
                                              LLVMBuildNSWSub(c->b, ti, cg_i64(c, 1), ""), "");
        hprev = LLVMBuildSelect(c->b, first, h0, cg_gep(c, t, out, cg_mul(c, prev_t, H)), "hprev");
        ldh = LLVMBuildSelect(c->b, first, H, TH, "");
    }
    Cell k = {.n = n,
              .t = t,
              .cell = cell,
              .G = G,
              .Hn = Hn,
              .reserve = reserve,
              .state = S > 0,
              .out = out,
              .XP = XP,
              .PS = PS,
              .HP = HP,
              .bias = bias,
              .bhh = bhh,
              .C = C,
              .ldc = ldc,
              .hprev = hprev,
              .ldh = ldh,
              .lens = lens,
              .T = T,
              .TH = TH,
              .ti = ti};
    CgProduct step = {.M = B,
                      .K = H,
                      .N = G * Hn,
                      .a = hprev,
                      .lda = ldh,
                      .b = packs ? WP : whh,
                      .out = HP,
                      .ldo = GH,
                      .pk = packs ? Hn : 0};
    cg_product(c, t, &step);

    LLVMValueRef *f[CELL_FIELDS];
    step_samples(c, arena_printf(c->g->arena, "%s.cells", LLVMGetValueName(fn)), B,
                 ir_dim_max(c->g, x->shape.d[0]), rows_per_task(4 * G * Hn), f, cell_fields(&k, f),
                 cell_rows, &k);
    cg_loop_end(c, &lt);
    LLVMBuildRetVoid(c->b);
    return fn;
}

static LLVMValueRef f_sub(Cg *c, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFSub(c->b, a, b, "");
}

/* s' / s of sigmoid s, 1 - s^2 of tanh: derivatives from the activations */
static LLVMValueRef dsigmoid(Cg *c, DType t, LLVMValueRef s)
{
    return f_mul(c, s, f_sub(c, cg_fconst(c, t, 1), s));
}

static LLVMValueRef dtanh(Cg *c, DType t, LLVMValueRef th)
{
    return f_sub(c, cg_fconst(c, t, 1), f_mul(c, th, th));
}

/* The gate activation of one step of a recurrent backward pass (row:
 * b*T + t) when the layer kept no reserve: the gate planes (plane(), ps
 * elements apart) hold the pre-activations without the bias (for gru,
 * of the input side; Q's row [3H] the recurrent side); they are replaced
 * by the activations, and the last plane gets the LSTM's cell state from
 * cprev, the previous one (c0's row at t = 0), or the GRU's recurrent n
 * side. For the LSTM, one loop per gate, then one for the cell; in one
 * loop, a select between c0 and the cells for cprev made LLVM's alias
 * checks fail (the caller emits step 0 apart). */
typedef struct {
    DType t;
    int G;
    int64_t H;
    bool lstm;
    LLVMValueRef P, Q, ps, bias, bhh;
} Activate;

static void activate_step(Cg *c, const Activate *k, LLVMValueRef row, LLVMValueRef cprev)
{
    DType t = k->t;
    LLVMValueRef g0 = cg_mul(c, row, cg_i64(c, k->H));
    LLVMValueRef last = plane(c, t, k->P, k->ps, k->G);
    CgLoop lj;
    if (k->lstm) {
        for (int g = 0; g < 4; g++) {
            LLVMValueRef j = cg_loop_begin(c, cg_i64(c, k->H), &lj);
            LLVMValueRef at = cg_add(c, g0, j), pg = plane(c, t, k->P, k->ps, g);
            LLVMValueRef pre = f_add(c, cg_load(c, t, pg, at),
                                     cg_load(c, t, k->bias, cg_add(c, j, cg_i64(c, g * k->H))));
            cg_store(c, t, g == 2 ? cg_tanh(c, t, pre) : fsigmoid(c, t, pre), pg, at);
            cg_loop_end(c, &lj);
        }
        LLVMValueRef j = cg_loop_begin(c, cg_i64(c, k->H), &lj);
        LLVMValueRef at = cg_add(c, g0, j), act[3];
        for (int g = 0; g < 3; g++)
            act[g] = cg_load(c, t, plane(c, t, k->P, k->ps, g), at);
        LLVMValueRef cp = cg_load(c, t, cprev, j);
        cg_store(c, t, f_add(c, f_mul(c, act[1], cp), f_mul(c, act[0], act[2])), last, at);
        cg_loop_end(c, &lj);
        return;
    }
    LLVMValueRef q0 = cg_mul(c, row, cg_i64(c, k->G * k->H));
    LLVMValueRef j = cg_loop_begin(c, cg_i64(c, k->H), &lj);
    LLVMValueRef at = cg_add(c, g0, j), col[3], pre[3], act[3], hq[3];
    for (int g = 0; g < 3; g++) {
        col[g] = cg_add(c, j, cg_i64(c, g * k->H));
        pre[g] = f_add(c, cg_load(c, t, plane(c, t, k->P, k->ps, g), at),
                       cg_load(c, t, k->bias, col[g]));
        hq[g] = f_add(c, cg_load(c, t, k->Q, cg_add(c, q0, col[g])), cg_load(c, t, k->bhh, col[g]));
    }
    act[0] = fsigmoid(c, t, f_add(c, pre[0], hq[0]));
    act[1] = fsigmoid(c, t, f_add(c, pre[1], hq[1]));
    act[2] = cg_tanh(c, t, f_add(c, pre[2], f_mul(c, act[0], hq[2])));
    cg_store(c, t, hq[2], last, at);
    for (int g = 0; g < 3; g++)
        cg_store(c, t, act[g], plane(c, t, k->P, k->ps, g), at);
    cg_loop_end(c, &lj);
}

/* Samples [lo, hi) of the gate activation of every step; vals: P, Q,
 * the planes' distance, bias, bhh and c0 (null where the cell has none).
 * Step 0 apart, whose previous cell state is c0. */
typedef struct {
    Activate k;
    int64_t T;
} ActivateRows;

static void activate_rows(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    const ActivateRows *a = ctx;
    Activate k = a->k;
    DType t = k.t;
    k.P = vals[0], k.Q = vals[1], k.ps = vals[2], k.bias = vals[3], k.bhh = vals[4];
    LLVMValueRef H = cg_i64(c, k.H);
    CgLoop lb, lt;
    LLVMValueRef b = cg_add(c, lo, cg_loop_begin(c, LLVMBuildNSWSub(c->b, hi, lo, ""), &lb));
    LLVMValueRef row0 = cg_mul(c, b, cg_i64(c, a->T));
    activate_step(c, &k, row0, k.lstm ? cg_gep(c, t, vals[5], cg_mul(c, b, H)) : NULL);
    if (a->T > 1) {
        LLVMValueRef ti = cg_add(c, cg_loop_begin(c, cg_i64(c, a->T - 1), &lt), cg_i64(c, 1));
        LLVMValueRef row = cg_add(c, row0, ti);
        LLVMValueRef cells = plane(c, t, k.P, k.ps, k.G);
        activate_step(c, &k, row,
                      k.lstm ? cg_gep(c, t, cells, cg_mul(c, cg_add(c, row, cg_i64(c, -1)), H))
                             : NULL);
        cg_loop_end(c, &lt);
    }
    cg_loop_end(c, &lb);
}

/* One step's adjoints, ti, of every sample (see k_recurrent_grad): dh =
 * dy_t + the carried DH into the pre-activation adjoints of the result's
 * row t, DC (LSTM) or the direct path into DH (GRU) carried. */
typedef struct {
    const Node *n;
    DType t;
    int G;
    int64_t Hn, Wn;
    bool lstm, gru;
    LLVMValueRef out, y, dy, h0, c0, P, PS, cells, DH, DC, LS, B, T, H, W, ldy, ldo, lens, ti;
} StepGrad;

enum { STEP_FIELDS = 19 };

static int step_fields(StepGrad *s, LLVMValueRef **f)
{
    LLVMValueRef *all[STEP_FIELDS] = {&s->out,   &s->y,   &s->dy,  &s->h0,   &s->c0, &s->P, &s->PS,
                                      &s->cells, &s->DH,  &s->DC,  &s->LS,   &s->B,  &s->T, &s->H,
                                      &s->W,     &s->ldy, &s->ldo, &s->lens, &s->ti};
    memcpy(f, all, sizeof all);
    return STEP_FIELDS;
}

/* samples [lo, hi) of the step's adjoints (a task's): a sample's read
 * and write only its rows */
static void step_grad(Cg *c, LLVMValueRef lo, LLVMValueRef hi, LLVMValueRef *vals, void *ctx)
{
    StepGrad copy = *(const StepGrad *)ctx, *s = &copy;
    LLVMValueRef *f[STEP_FIELDS];
    field_vals(f, step_fields(s, f), vals, true);
    DType t = s->t;
    LLVMValueRef H = s->H, one = cg_fconst(c, t, 1), ti = s->ti;
    CgLoop lb, lj;
    LLVMValueRef b = cg_add(c, lo, cg_loop_begin(c, LLVMBuildSub(c->b, hi, lo, ""), &lb));
    /* Every operand by its row's pointer, indexed by j alone: with b's
     * part in the index LLVM wrote b*ldo + j as (b*ldo) | j, which its
     * overlap checks could not bound, and the loop ran scalar. */
    LLVMValueRef row = cg_add(c, cg_mul(c, b, s->T), ti), hrow = cg_mul(c, row, H);
    LLVMValueRef DH = cg_gep(c, t, s->DH, cg_mul(c, b, s->LS));
    LLVMValueRef DC = s->lstm ? cg_gep(c, t, s->DC, cg_mul(c, b, s->LS)) : NULL;
    LLVMValueRef yrow = cg_add(c, cg_mul(c, b, s->ldy), cg_mul(c, ti, H));
    LLVMValueRef y = cg_gep(c, t, s->y, yrow), dy = cg_gep(c, t, s->dy, yrow);
    LLVMValueRef orow = cg_gep(c, t, s->out, cg_add(c, cg_mul(c, b, s->ldo), cg_mul(c, ti, s->W)));
    LLVMValueRef gate[4], o[4];
    for (int k = 0; k < 4; k++) {
        gate[k] = k < s->G ? cg_gep(c, t, plane(c, t, s->P, s->PS, k), hrow) : NULL;
        o[k] = cg_gep(c, t, orow, cg_i64(c, k * s->Hn));
    }
    LLVMValueRef cells = s->lstm || s->gru ? cg_gep(c, t, s->cells, hrow) : NULL;
    /* the previous cell state (LSTM) or h (GRU): c0's or h0's row at
     * step 0 */
    LLVMValueRef prev = NULL, first = LLVMBuildICmp(c->b, LLVMIntEQ, ti, cg_i64(c, 0), "");
    if (s->lstm)
        prev = LLVMBuildSelect(c->b, first, cg_gep(c, t, s->c0, cg_mul(c, b, H)),
                               cg_gep(c, t, cells, cg_i64(c, -s->Hn)), "");
    else if (s->gru)
        prev = LLVMBuildSelect(c->b, first, cg_gep(c, t, s->h0, cg_mul(c, b, H)),
                               cg_gep(c, t, y, cg_i64(c, -s->Hn)), "");

    /* packed: past the row's length the carried adjoints pass unchanged
     * (the state did) and the gates get none */
    LLVMValueRef live = s->lens ? within(c, s->lens, b, ti) : NULL;
    LLVMValueRef j = cg_loop_begin(c, H, &lj);
    LLVMValueRef dh = cg_load(c, t, DH, j);
    LLVMValueRef e = f_add(c, cg_load(c, t, dy, j), dh);
    LLVMValueRef d[4];
    if (s->lstm) {
        LLVMValueRef a[4];
        for (int k = 0; k < 4; k++)
            a[k] = cg_load(c, t, gate[k], j);
        LLVMValueRef cp = cg_load(c, t, prev, j);
        LLVMValueRef tc = cg_tanh(c, t, cg_load(c, t, cells, j));
        LLVMValueRef dc = cg_load(c, t, DC, j);
        LLVMValueRef dct = f_add(c, dc, f_mul(c, f_mul(c, e, a[3]), dtanh(c, t, tc)));
        d[0] = f_mul(c, f_mul(c, dct, a[2]), dsigmoid(c, t, a[0]));
        d[1] = f_mul(c, f_mul(c, dct, cp), dsigmoid(c, t, a[1]));
        d[2] = f_mul(c, f_mul(c, dct, a[0]), dtanh(c, t, a[2]));
        d[3] = f_mul(c, f_mul(c, e, tc), dsigmoid(c, t, a[3]));
        LLVMValueRef dcp = f_mul(c, dct, a[1]);
        cg_store(c, t, live ? LLVMBuildSelect(c->b, live, dcp, dc, "") : dcp, DC, j);
    } else if (s->gru) {
        LLVMValueRef r = cg_load(c, t, gate[0], j);
        LLVMValueRef z = cg_load(c, t, gate[1], j);
        LLVMValueRef nn = cg_load(c, t, gate[2], j);
        LLVMValueRef hn = cg_load(c, t, cells, j); /* the GRU's n side */
        LLVMValueRef hp = cg_load(c, t, prev, j);
        LLVMValueRef dn = f_mul(c, f_mul(c, e, f_sub(c, one, z)), dtanh(c, t, nn));
        d[0] = f_mul(c, f_mul(c, dn, hn), dsigmoid(c, t, r));
        d[1] = f_mul(c, f_mul(c, e, f_sub(c, hp, nn)), dsigmoid(c, t, z));
        d[2] = dn;
        d[3] = f_mul(c, dn, r);
        /* the direct path; the GEMM adds */
        LLVMValueRef direct = f_mul(c, e, z);
        cg_store(c, t, live ? LLVMBuildSelect(c->b, live, direct, dh, "") : direct, DH, j);
    } else if (strcmp(attr_nonlinearity(s->n), "relu") == 0) {
        /* relu' from its output: 1 where h > 0 */
        LLVMValueRef pos =
            LLVMBuildFCmp(c->b, LLVMRealOGT, cg_load(c, t, y, j), cg_fconst(c, t, 0), "");
        d[0] = LLVMBuildSelect(c->b, pos, e, cg_fconst(c, t, 0), "");
    } else {
        d[0] = f_mul(c, e, dtanh(c, t, cg_load(c, t, y, j)));
    }
    if (live && !s->gru) /* the GEMM adds to what passes through */
        cg_store(c, t, LLVMBuildSelect(c->b, live, cg_fconst(c, t, 0), dh, ""), DH, j);
    for (int k = 0; k < s->Wn / s->Hn; k++) {
        if (live)
            d[k] = LLVMBuildSelect(c->b, live, d[k], cg_fconst(c, t, 0), "");
        cg_store(c, t, d[k], o[k], j);
    }
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lb);
}

/*
 * Backpropagation through time (rnn_grad, lstm_grad, gru_grad; the result
 * is described in ir/ops.def). The activated gates of every step (and the
 * LSTM's cells, the GRU's recurrent n side) are the layer's reserve
 * (plane(); ir_recurrent_reserve) when y is the layer; otherwise they are
 * rebuilt without a recurrence over h: every h_{t-1} is known (h0, then
 * y), so the input and recurrent projections of all steps are GEMMs over
 * B*T rows, from a copy Hp of the previous states, and one pass over the
 * steps activates the gates (and runs the LSTM cell recurrence). Then the
 * steps run backwards: a fused loop over [B, H] turns dh = dy_t + the
 * carried DH into the step's pre-activation adjoints, written into the
 * result's row t, and one GEMM, that row's recurrent side times W_hh^T,
 * carries DH to step t - 1 (for gru it adds to the direct path z * dh;
 * the LSTM also carries the cell adjoint DC). That GEMM's rows are few
 * (the batch), and with f32 it runs in generated code (gemm.c), which
 * reads its b in rows: W_hh^T is made once, first in scratch
 * (codegen/scratch.c). Then DH [B, H], for lstm with DC in rows [B, 2H]
 * (DH's row, then DC's), and to rebuild Hp [B*T, H], the planes (G + 1
 * of [B*T, H]) and for gru Q [B*T, 3H], the recurrent side, whose n part
 * r multiplies. The step's loop reads and writes scratch only at fixed
 * distances (DH to DC; the previous states come from y, h0 and c0): a
 * distance that depends on the batch made LLVM test the pointers for
 * overlap over all samples at once, a test that fails for the result's
 * interleaved rows, and the loop ran scalar.
 */
static LLVMValueRef k_recurrent_grad(Cg *c, Node *n)
{
    Op cell = ir_recurrent_cell(n->op);
    bool lstm = cell == OP_LSTM, gru = cell == OP_GRU;
    int G = gates_of(cell);
    DType t = n->dtype;
    const Node *x = n->in[2];
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
#define ARG(i) LLVMGetParam(fn, (unsigned)(i))
    LLVMValueRef out = ARG(0), y = ARG(1), dy = ARG(2), xp = ARG(3), h0 = ARG(4);
    int w = lstm ? 6 : 5; /* parameter index of w_ih */
    LLVMValueRef c0 = lstm ? ARG(5) : NULL;
    LLVMValueRef wih = ARG(w), whh = ARG(w + 1), bias = ARG(w + 2);
    LLVMValueRef bhh = gru ? ARG(w + 3) : NULL;
    LLVMValueRef lens = ir_recurrent_packed(n->op) ? ARG(n->nin) : NULL;
#undef ARG
    LLVMValueRef scratch = cg_kernel_scratch(c, n->nin);

    int S = ir_recurrent_state_rows(n);
    int64_t Hn = n->in[0]->shape.d[2].n, Tn = x->shape.d[1].n, Wn = n->shape.d[2].n;
    LLVMValueRef B = cg_dim(c, x->shape.d[0]), T = cg_i64(c, Tn), F = cg_i64(c, x->shape.d[2].n);
    LLVMValueRef H = cg_i64(c, Hn), GH = cg_i64(c, G * Hn), W = cg_i64(c, Wn);
    LLVMValueRef BT = cg_mul(c, B, T), TH = cg_mul(c, T, H);
    LLVMValueRef ldy = cg_i64(c, (Tn + S) * Hn); /* y's and dy's stride per sample */
    bool states = attr_state_grads(n);           /* row T: h0's and c0's adjoints */
    LLVMValueRef ldo = cg_i64(c, (Tn + states) * Wn); /* result row stride per sample */
    LLVMValueRef one = cg_fconst(c, t, 1);
    /* f32: W_hh^T first, for the steps' products (generated ones read
     * their b in rows), packed when they are generated at every batch */
    LLVMValueRef WT = scratch;
    CgLoop lb, lt, lj;
    bool packs = cg_packs(c, t, G * Hn, Hn, ir_dim_max(c->g, x->shape.d[0]));
    if (packs) {
        scratch = cg_gep(c, t, scratch, cg_i64(c, cg_packed_floats(G * Hn, Hn)));
        cg_pack_b(c, WT, whh, G * Hn, Hn, true);
    } else if (t == DT_F32) {
        scratch = cg_gep(c, t, scratch, cg_i64(c, G * Hn * Hn));
        LLVMValueRef hi = cg_loop_begin(c, H, &lb);
        LLVMValueRef gj = cg_loop_begin(c, GH, &lj);
        cg_store(c, t, cg_load(c, t, whh, cg_add(c, cg_mul(c, hi, GH), gj)), WT,
                 cg_add(c, cg_mul(c, gj, H), hi));
        cg_loop_end(c, &lj);
        cg_loop_end(c, &lb);
    }
    /* the gate planes (plane()): the layer's reserve after y's rows, or
     * rebuilt */
    bool reserved = ir_recurrent_grad_reserved(n);
    LLVMValueRef LS = lstm ? cg_i64(c, 2 * Hn) : H; /* DH's (and DC's) row stride */
    LLVMValueRef DH = scratch, DC = cg_gep(c, t, DH, H), PS = cg_mul(c, BT, H);
    LLVMValueRef Hp = cg_gep(c, t, DH, cg_mul(c, B, LS));
    bool need_hp = (lstm || gru) && !reserved; /* to rebuild the recurrent side */
    LLVMValueRef P = reserved ? cg_gep(c, t, y, cg_mul(c, B, ldy))
                              : cg_gep(c, t, Hp, need_hp ? PS : cg_i64(c, 0));
    LLVMValueRef cells = plane(c, t, P, PS, G); /* the LSTM's cells, the GRU's n side */
    LLVMValueRef Q = gru && !reserved ? plane(c, t, P, PS, G + 1) : NULL; /* rebuilt only */
    if (S) {
        /* the final states' adjoints (h's, then c's) start the carried
         * ones */
        LLVMValueRef b = cg_loop_begin(c, B, &lb);
        LLVMValueRef last = cg_gep(c, t, dy, cg_add(c, cg_mul(c, b, ldy), TH));
        cg_memcpy(c, t, cg_gep(c, t, DH, cg_mul(c, b, LS)), last, LS);
        cg_loop_end(c, &lb);
    } else {
        cg_zero(c, t, DH, cg_mul(c, B, LS));
    }

    if (need_hp) {
        /* Hp: the state before each step, h0 then y[:, 0..T-1) */
        LLVMValueRef b = cg_loop_begin(c, B, &lb);
        LLVMValueRef hrow = cg_gep(c, t, Hp, cg_mul(c, b, TH));
        cg_memcpy(c, t, hrow, cg_gep(c, t, h0, cg_mul(c, b, H)), H);
        if (Tn > 1)
            cg_memcpy(c, t, cg_gep(c, t, hrow, H), cg_gep(c, t, y, cg_mul(c, b, ldy)),
                      cg_i64(c, (Tn - 1) * Hn));
        cg_loop_end(c, &lb);
    }
    if ((lstm || gru) && !reserved) {
        gate_planes(c, t, G, Hn, BT, F, xp, F, wih, 0, P);
        if (lstm)
            gate_planes(c, t, G, Hn, BT, H, Hp, H, whh, 1, P);
        else
            cg_gemm(c, t, false, false, BT, GH, H, one, Hp, H, whh, GH, 0, Q, GH);

        /* activate the gates of every step (the LSTM's cells in order),
         * samples apart on the pool */
        Activate k = {t, G, Hn, lstm, P, Q, PS, bias, bhh};
        LLVMValueRef none = LLVMConstNull(c->ptr);
        LLVMValueRef vals[] = {P, gru ? Q : none, PS, bias, gru ? bhh : none, lstm ? c0 : none};
        ActivateRows ar = {k, Tn};
        cg_parallel_chunks(c, arena_printf(c->g->arena, "%s.activate", LLVMGetValueName(fn)), B,
                           rows_per_task(Tn * G * Hn), vals, countof(vals), activate_rows, &ar);
    }

    /* the steps backwards */
    LLVMValueRef rt = cg_loop_begin(c, T, &lt);
    LLVMValueRef ti = LLVMBuildNSWSub(c->b, cg_i64(c, Tn - 1), rt, "t");
    LLVMValueRef orow_t = cg_gep(c, t, out, cg_mul(c, ti, W)); /* row t of sample 0 */
    StepGrad sg = {.n = n,
                   .t = t,
                   .G = G,
                   .Hn = Hn,
                   .Wn = Wn,
                   .lstm = lstm,
                   .gru = gru,
                   .out = out,
                   .y = y,
                   .dy = dy,
                   .h0 = h0,
                   .c0 = c0,
                   .P = P,
                   .PS = PS,
                   .cells = cells,
                   .DH = DH,
                   .DC = DC,
                   .LS = LS,
                   .B = B,
                   .T = T,
                   .H = H,
                   .W = W,
                   .ldy = ldy,
                   .ldo = ldo,
                   .lens = lens,
                   .ti = ti};
    LLVMValueRef *f[STEP_FIELDS];
    step_samples(c, arena_printf(c->g->arena, "%s.step", LLVMGetValueName(fn)), B,
                 ir_dim_max(c->g, x->shape.d[0]), rows_per_task(4 * G * Hn), f, step_fields(&sg, f),
                 step_grad, &sg);
    /* DH = the recurrent side of row t @ W_hh^T (gru: + the direct path) */
    if (t == DT_F32) {
        CgProduct p = {.M = B,
                       .K = cg_i64(c, gru ? 2 * Hn : G * Hn),
                       .N = Hn,
                       .a = orow_t,
                       .lda = ldo,
                       .b = WT,
                       .out = DH,
                       .ldo = LS,
                       .acc = gru || lens,
                       .pk = packs ? G * Hn : 0};
        cg_product(c, t, &p);
        if (gru) { /* the n gate's side, from row 3 of the result's parts */
            CgProduct pn = {
                .M = B,
                .K = H,
                .N = Hn,
                .a = cg_gep(c, t, orow_t, cg_i64(c, 3 * Hn)),
                .lda = ldo,
                .b = cg_gep(c, t, WT, cg_i64(c, 2 * Hn * (packs ? cg_pack_width(c) : Hn))),
                .out = DH,
                .ldo = LS,
                .acc = true,
                .pk = packs ? G * Hn : 0};
            cg_product(c, t, &pn);
        }
    } else if (gru) {
        cg_gemm(c, t, false, true, B, H, cg_i64(c, 2 * Hn), one, orow_t, ldo, whh, GH, 1, DH, H);
        cg_gemm(c, t, false, true, B, H, H, one, cg_gep(c, t, orow_t, cg_i64(c, 3 * Hn)), ldo,
                cg_gep(c, t, whh, cg_i64(c, 2 * Hn)), GH, 1, DH, H);
    } else {
        cg_gemm(c, t, false, true, B, H, GH, one, orow_t, ldo, whh, GH, lens ? 1 : 0, DH, LS);
    }
    cg_loop_end(c, &lt);

    if (states) { /* row T: the adjoints of h0 and c0, zeros after */
        LLVMValueRef b = cg_loop_begin(c, B, &lb);
        LLVMValueRef last = cg_gep(c, t, out, cg_add(c, cg_mul(c, b, ldo), cg_i64(c, Tn * Wn)));
        cg_zero(c, t, last, W);
        cg_memcpy(c, t, last, cg_gep(c, t, DH, cg_mul(c, b, LS)), LS);
        cg_loop_end(c, &lb);
    }
    LLVMBuildRetVoid(c->b);
    return fn;
}

/* attention_masked's mask m: element strides over the scores [B, heads,
 * T, S] (0 where it broadcasts), aligned from the right. */
static void mask_strides(Cg *c, const Node *m, LLVMValueRef *st)
{
    LLVMValueRef full[IR_MAX_RANK];
    cg_strides(c, &m->shape, full);
    for (int d = 0; d < 4; d++) {
        int k = d - (4 - m->shape.rank);
        bool bc = k < 0 || (m->shape.d[k].n == 1 && !m->shape.d[k].batch);
        st[d] = bc ? cg_i64(c, 0) : full[k];
    }
}

/* A causal row's exps run over its keys rounded up to a multiple of this
 * (a zmm of f32; runs of 32 and 64 keys wasted more exps than they
 * saved of tail: the GPT's attention 1540 -> 1316, 1392, 1377 us) */
enum { CAUSAL_RUN = 16 };

/* Per batch*head: the scores into the [T, S] scratch by one GEMM, then per
 * query row a softmax over the visible keys (j <= i when causal, mask
 * nonzero when masked; the others weigh exactly 0, and a row with no
 * visible key is all 0), then the output by a second GEMM. The
 * probabilities (attention_probs, for the gradient) are the same steps
 * with the block written into the output and no second GEMM, so they are
 * the forward's bits. */
static LLVMValueRef k_attention(Cg *c, Node *n)
{
    bool probs = n->op == OP_ATTENTION_PROBS || n->op == OP_ATTENTION_PROBS_MASKED;
    int nqkv = probs ? 2 : 3;
    const Shape *sq = &n->in[0]->shape, *sk = &n->in[1]->shape;
    bool causal = attr_causal(n), masked = n->nin > nqkv;
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
    /* the rows' max, exp, sum and scaling in zmm where there are: the
     * GPT's attention 1716 -> 1564 us a call, its probabilities' 1566 ->
     * 1448 */
    cg_prefer_widest(c, fn);
    LLVMValueRef out = LLVMGetParam(fn, 0), q = LLVMGetParam(fn, 1), k = LLVMGetParam(fn, 2),
                 v = probs ? NULL : LLVMGetParam(fn, 3),
                 mask = masked ? LLVMGetParam(fn, (unsigned)nqkv + 1) : NULL;
    LLVMValueRef heads = cg_dim(c, sq->d[1]);
    LLVMValueRef BH = cg_mul(c, cg_dim(c, sq->d[0]), heads);
    LLVMValueRef T = cg_dim(c, sq->d[2]), S = cg_dim(c, sk->d[2]);
    LLVMValueRef D = cg_dim(c, sq->d[3]), DV = probs ? S : cg_dim(c, n->in[2]->shape.d[3]);
    LLVMValueRef P0 = probs ? NULL : cg_kernel_scratch(c, n->nin);
    LLVMValueRef rd = LLVMBuildSIToFP(c->b, D, ty, "");
    LLVMValueRef scale =
        LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), cg_intrinsic(c, "llvm.sqrt", ty, &rd, 1), "");
    LLVMValueRef mx = cg_alloca(c, ty, "max");
    CgSum sum = cg_sum_new(c, ty, sk->d[2].batch ? 0 : sk->d[2].n);
    LLVMValueRef ms[4];
    DType mt = masked ? n->in[nqkv]->dtype : t;
    if (masked)
        mask_strides(c, n->in[nqkv], ms);

    CgLoop lh, li, lj;
    LLVMValueRef h = cg_loop_begin(c, BH, &lh);
    LLVMValueRef qh = cg_gep(c, t, q, cg_mul(c, h, cg_mul(c, T, D)));
    LLVMValueRef kh = cg_gep(c, t, k, cg_mul(c, h, cg_mul(c, S, D)));
    LLVMValueRef oh = cg_gep(c, t, out, cg_mul(c, h, cg_mul(c, T, DV)));
    LLVMValueRef P = probs ? oh : P0;
    /* f32 of known extents: the generated products (gemm.c); the scores
     * are scaled as they are read below */
    bool gen =
        t == DT_F32 && !sk->d[2].batch && !sq->d[3].batch && (probs || !n->in[2]->shape.d[3].batch);
    if (gen) {
        CgProduct qk = {.M = T,
                        .K = D,
                        .N = sk->d[2].n,
                        .a = qh,
                        .lda = D,
                        .b = kh,
                        .out = P,
                        .ldo = S,
                        .tb = true};
        cg_product(c, t, &qk);
    } else {
        cg_gemm(c, t, false, true, T, S, D, cg_fconst(c, t, 1), qh, D, kh, D, 0, P, S);
    }

    LLVMValueRef i = cg_loop_begin(c, T, &li);
    LLVMValueRef row = cg_mul(c, i, S);
    LLVMValueRef mrow = NULL;
    if (masked) {
        LLVMValueRef b = LLVMBuildSDiv(c->b, h, heads, ""), hd = LLVMBuildSRem(c->b, h, heads, "");
        mrow = cg_add(c, cg_add(c, cg_mul(c, b, ms[0]), cg_mul(c, hd, ms[1])), cg_mul(c, i, ms[2]));
    }
    /* visible keys: j < lim */
    LLVMValueRef lim = causal ? cg_add(c, i, cg_i64(c, 1)) : S;
    LLVMValueRef j, m;
    if (!masked) {
        m = cg_row_max(c, t, cg_gep(c, t, P, row), lim);
    } else {
        LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), mx);
        j = cg_loop_begin(c, lim, &lj);
        LLVMValueRef sj = cg_load(c, t, P, cg_add(c, row, j));
        /* a masked key's score becomes -inf, so that exp gives it 0 */
        LLVMValueRef mv = cg_load(c, mt, mask, cg_add(c, mrow, cg_mul(c, j, ms[3])));
        LLVMValueRef off = mt == DT_I32
                               ? LLVMBuildICmp(c->b, LLVMIntEQ, mv, cg_fconst(c, mt, 0), "")
                               : LLVMBuildFCmp(c->b, LLVMRealOEQ, mv, cg_fconst(c, mt, 0), "");
        sj = LLVMBuildSelect(c->b, off, cg_fconst(c, t, -INFINITY), sj, "");
        cg_store(c, t, sj, P, cg_add(c, row, j));
        LLVMValueRef a[] = {LLVMBuildLoad2(c->b, ty, mx, ""), sj};
        LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.maxnum", ty, a, 2), mx);
        cg_loop_end(c, &lj);
        m = LLVMBuildLoad2(c->b, ty, mx, "");
    }
    /* the largest scaled score: scaling by a positive factor keeps the
     * order, rounding included, so it is the largest score scaled */
    m = f_mul(c, m, scale);
    /* a row with every key masked: m = -inf, and every weight 0 */
    LLVMValueRef none =
        masked ? LLVMBuildFCmp(c->b, LLVMRealOEQ, m, cg_fconst(c, t, -INFINITY), "") : NULL;
    /* the weights, then their sum: apart, the exp loop vectorizes (as
     * softmax's, reduce.c; in one loop the sum's fixed order kept it
     * scalar, a seventh of the GPT's training). A causal row of known S
     * takes its exps, and its scaling below, up to a multiple of
     * CAUSAL_RUN keys: the vectorized loop's scalar tail (up to 15 exps
     * of the 1 to 64 of a GPT row) cost more than its vectors. The keys
     * past the row's own are zeroed after the exps, before the sum. */
    LLVMValueRef run = lim;
    if (causal && !sk->d[2].batch) {
        LLVMValueRef up = LLVMBuildAnd(c->b, cg_add(c, lim, cg_i64(c, CAUSAL_RUN - 1)),
                                       cg_i64(c, -CAUSAL_RUN), "");
        run = cg_smin(c, up, S);
    }
    j = cg_loop_begin(c, run, &lj);
    LLVMValueRef d =
        LLVMBuildFSub(c->b, f_mul(c, cg_load(c, t, P, cg_add(c, row, j)), scale), m, "");
    LLVMValueRef e = cg_exp(c, t, d);
    if (masked)
        e = LLVMBuildSelect(c->b, none, cg_fconst(c, t, 0), e, "");
    cg_store(c, t, e, P, cg_add(c, row, j));
    cg_loop_end(c, &lj);
    if (causal) {
        /* masked keys weigh exactly 0 */
        j = cg_loop_begin(c, LLVMBuildNSWSub(c->b, S, lim, ""), &lj);
        cg_store(c, t, cg_fconst(c, t, 0), P, cg_add(c, row, cg_add(c, lim, j)));
        cg_loop_end(c, &lj);
    }
    /* their sum: in lanes over the whole row (the masked keys' zeros
     * add nothing) when S is known, else in order over the visible
     * keys; in order, a row's 64 dependent additions were a sixth of the
     * GPT's attention */
    LLVMValueRef total = cg_sum_row(c, t, &sum, cg_gep(c, t, P, row), lim);
    LLVMValueRef inv = LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), total, "");
    if (masked)
        inv = LLVMBuildSelect(c->b, none, cg_fconst(c, t, 0), inv, "");
    j = cg_loop_begin(c, run, &lj);
    cg_store(c, t, f_mul(c, cg_load(c, t, P, cg_add(c, row, j)), inv), P, cg_add(c, row, j));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &li);

    if (!probs) {
        LLVMValueRef vh = cg_gep(c, t, v, cg_mul(c, h, cg_mul(c, S, DV)));
        if (gen) {
            CgProduct pv = {.M = T,
                            .K = S,
                            .N = n->in[2]->shape.d[3].n,
                            .a = P,
                            .lda = S,
                            .b = vh,
                            .out = oh,
                            .ldo = DV};
            cg_product(c, t, &pv);
        } else {
            cg_gemm(c, t, false, false, T, DV, S, cg_fconst(c, t, 1), P, S, vh, DV, 0, oh, DV);
        }
    }
    cg_loop_end(c, &lh);
    LLVMBuildRetVoid(c->b);
    return fn;
}

LLVMValueRef cg_kernel_seq(Cg *c, Node *step)
{
    switch (step->op) {
    case OP_EMBEDDING: return k_embedding(c, step);
    case OP_RNN:
    case OP_LSTM:
    case OP_GRU: return k_recurrent(c, step);
    case OP_RNN_PACKED:
    case OP_LSTM_PACKED:
    case OP_GRU_PACKED: return k_recurrent(c, step);
    case OP_RNN_GRAD:
    case OP_LSTM_GRAD:
    case OP_GRU_GRAD:
    case OP_RNN_PACKED_GRAD:
    case OP_LSTM_PACKED_GRAD:
    case OP_GRU_PACKED_GRAD: return k_recurrent_grad(c, step);
    case OP_ATTENTION:
    case OP_ATTENTION_MASKED:
    case OP_ATTENTION_PROBS:
    case OP_ATTENTION_PROBS_MASKED: return k_attention(c, step);
    default: die("codegen: %s is not a sequence op", op_info[step->op].text);
    }
}
