/*
 * The seq family's kernels (passes/shape_seq.c): embedding, rnn, lstm,
 * gru and scaled dot-product attention (inference).
 *
 * Recurrent layers (G = 1, 4, 3 gates) follow cuDNN's and PyTorch's plan:
 * the input projection of every time step is one GEMM, x [B*T, F] @ w_ih
 * into scratch XP [B*T, G*H]; each step's recurrent projection is one GEMM,
 * h_{t-1} [B, H] @ w_hh into scratch HP [B, G*H], h_{t-1} read in place in
 * the output (row stride T*H) or in h0; then one fused loop over [B, H]
 * adds the biases, applies the gate nonlinearities and writes h_t into the
 * output (and the LSTM cell state into scratch C [B, H]). GRU keeps the
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
    LLVMValueRef e = cg_intrinsic(c, "llvm.exp", cg_type(c, t), &nx, 1);
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

static LLVMValueRef k_recurrent(Cg *c, Node *n)
{
    const Node *x = n->in[0];
    bool lstm = n->op == OP_LSTM, gru = n->op == OP_GRU;
    int G = gates_of(n->op);
    DType t = n->dtype;
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, n->nin);
    LLVMValueRef out = LLVMGetParam(fn, 0), xp = LLVMGetParam(fn, 1), h0 = LLVMGetParam(fn, 2);
    int w = lstm ? 3 : 2; /* index of w_ih among the inputs */
    LLVMValueRef c0 = lstm ? LLVMGetParam(fn, 3) : NULL;
    LLVMValueRef wih = LLVMGetParam(fn, (unsigned)w + 1), whh = LLVMGetParam(fn, (unsigned)w + 2);
    LLVMValueRef bias = LLVMGetParam(fn, (unsigned)w + 3);
    LLVMValueRef bhh = gru ? LLVMGetParam(fn, (unsigned)w + 4) : NULL;
    LLVMValueRef scratch = cg_kernel_scratch(c, n->nin);

    int64_t Hn = n->shape.d[2].n;
    LLVMValueRef B = cg_dim(c, x->shape.d[0]), T = cg_dim(c, x->shape.d[1]);
    LLVMValueRef F = cg_i64(c, x->shape.d[2].n), H = cg_i64(c, Hn), GH = cg_i64(c, G * Hn);
    LLVMValueRef BT = cg_mul(c, B, T), TH = cg_mul(c, T, H);
    /* scratch: XP [B*T, GH], HP [B, GH], C [B, H] (lstm) */
    LLVMValueRef one = cg_fconst(c, t, 1);
    LLVMValueRef XP = scratch;
    LLVMValueRef HP = cg_gep(c, t, scratch, cg_mul(c, BT, GH));
    LLVMValueRef C = cg_gep(c, t, HP, cg_mul(c, B, GH));

    cg_gemm(c, t, false, false, BT, GH, F, one, xp, F, wih, GH, 0, XP, GH);
    if (lstm) {
        int64_t es = cg_dtype_size(t);
        LLVMBuildMemCpy(c->b, C, (unsigned)es, c0, (unsigned)es,
                        cg_mul(c, cg_mul(c, B, H), cg_i64(c, es)));
    }

    CgLoop lt, lb, lj;
    LLVMValueRef ti = cg_loop_begin(c, T, &lt);
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, ti, cg_i64(c, 0), "");
    /* h_{t-1}: h0 [B, H] at t = 0, else out[:, t-1, :] with row stride T*H */
    LLVMValueRef prev_t =
        LLVMBuildSelect(c->b, first, cg_i64(c, 0), LLVMBuildNSWSub(c->b, ti, cg_i64(c, 1), ""), "");
    LLVMValueRef hprev =
        LLVMBuildSelect(c->b, first, h0, cg_gep(c, t, out, cg_mul(c, prev_t, H)), "hprev");
    LLVMValueRef ldh = LLVMBuildSelect(c->b, first, H, TH, "");
    cg_gemm(c, t, false, false, B, GH, H, one, hprev, ldh, whh, GH, 0, HP, GH);

    LLVMValueRef bi = cg_loop_begin(c, B, &lb);
    LLVMValueRef xrow = cg_mul(c, cg_add(c, cg_mul(c, bi, T), ti), GH); /* XP row (bi, t) */
    LLVMValueRef hrow = cg_mul(c, bi, GH);                              /* HP row bi */
    LLVMValueRef orow = cg_add(c, cg_mul(c, bi, TH), cg_mul(c, ti, H)); /* out[bi, t, :] */
    LLVMValueRef prow = cg_mul(c, bi, ldh);                             /* hprev row bi */
    LLVMValueRef j = cg_loop_begin(c, H, &lj);
    /* pre-activation of gate k at unit j: x part + h part + bias(es) */
    LLVMValueRef xg[4], hg[4], bg[4];
    for (int k = 0; k < G; k++) {
        LLVMValueRef col = cg_add(c, j, cg_i64(c, k * Hn));
        xg[k] = cg_load(c, t, XP, cg_add(c, xrow, col));
        hg[k] = cg_load(c, t, HP, cg_add(c, hrow, col));
        bg[k] = cg_load(c, t, bias, col);
        if (gru)
            hg[k] = f_add(c, hg[k], cg_load(c, t, bhh, col));
    }
    LLVMValueRef h;
    if (lstm) {
        LLVMValueRef a[4];
        for (int k = 0; k < 4; k++)
            a[k] = f_add(c, f_add(c, xg[k], hg[k]), bg[k]);
        LLVMValueRef ig = fsigmoid(c, t, a[0]), fg = fsigmoid(c, t, a[1]);
        LLVMValueRef gg = cg_tanh(c, t, a[2]), og = fsigmoid(c, t, a[3]);
        LLVMValueRef cj = cg_add(c, cg_mul(c, bi, H), j);
        LLVMValueRef cn = f_add(c, f_mul(c, fg, cg_load(c, t, C, cj)), f_mul(c, ig, gg));
        cg_store(c, t, cn, C, cj);
        h = f_mul(c, og, cg_tanh(c, t, cn));
    } else if (gru) {
        LLVMValueRef r = fsigmoid(c, t, f_add(c, f_add(c, xg[0], bg[0]), hg[0]));
        LLVMValueRef z = fsigmoid(c, t, f_add(c, f_add(c, xg[1], bg[1]), hg[1]));
        LLVMValueRef nn = cg_tanh(c, t, f_add(c, f_add(c, xg[2], bg[2]), f_mul(c, r, hg[2])));
        LLVMValueRef hp = cg_load(c, t, hprev, cg_add(c, prow, j));
        /* (1 - z) * n + z * h = n + z * (h - n) */
        h = f_add(c, nn, f_mul(c, z, LLVMBuildFSub(c->b, hp, nn, "")));
    } else {
        h = cg_tanh(c, t, f_add(c, f_add(c, xg[0], hg[0]), bg[0]));
    }
    cg_store(c, t, h, out, cg_add(c, orow, j));
    cg_loop_end(c, &lj);
    cg_loop_end(c, &lb);
    cg_loop_end(c, &lt);
    LLVMBuildRetVoid(c->b);
    return fn;
}

static LLVMValueRef k_attention(Cg *c, Node *n)
{
    const Shape *sq = &n->in[0]->shape, *sk = &n->in[1]->shape, *sv = &n->in[2]->shape;
    bool causal = attr_causal(n);
    DType t = n->dtype;
    LLVMTypeRef ty = cg_type(c, t);
    LLVMValueRef fn = cg_kernel_begin(c, n, n->in, 3);
    LLVMValueRef out = LLVMGetParam(fn, 0), q = LLVMGetParam(fn, 1), k = LLVMGetParam(fn, 2),
                 v = LLVMGetParam(fn, 3);
    LLVMValueRef P = cg_kernel_scratch(c, 3);
    LLVMValueRef BH = cg_mul(c, cg_dim(c, sq->d[0]), cg_dim(c, sq->d[1]));
    LLVMValueRef T = cg_dim(c, sq->d[2]), S = cg_dim(c, sk->d[2]);
    LLVMValueRef D = cg_dim(c, sq->d[3]), DV = cg_dim(c, sv->d[3]);
    LLVMValueRef rd = LLVMBuildSIToFP(c->b, D, ty, "");
    LLVMValueRef scale =
        LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), cg_intrinsic(c, "llvm.sqrt", ty, &rd, 1), "");
    LLVMValueRef mx = cg_alloca(c, ty, "max"), sum = cg_alloca(c, ty, "sum");

    CgLoop lh, li, lj;
    LLVMValueRef h = cg_loop_begin(c, BH, &lh);
    LLVMValueRef qh = cg_gep(c, t, q, cg_mul(c, h, cg_mul(c, T, D)));
    LLVMValueRef kh = cg_gep(c, t, k, cg_mul(c, h, cg_mul(c, S, D)));
    LLVMValueRef vh = cg_gep(c, t, v, cg_mul(c, h, cg_mul(c, S, DV)));
    LLVMValueRef oh = cg_gep(c, t, out, cg_mul(c, h, cg_mul(c, T, DV)));
    cg_gemm(c, t, false, true, T, S, D, scale, qh, D, kh, D, 0, P, S);

    LLVMValueRef i = cg_loop_begin(c, T, &li);
    LLVMValueRef row = cg_mul(c, i, S);
    /* visible keys: j < lim */
    LLVMValueRef lim = causal ? cg_add(c, i, cg_i64(c, 1)) : S;
    LLVMBuildStore(c->b, cg_fconst(c, t, -INFINITY), mx);
    LLVMValueRef j = cg_loop_begin(c, lim, &lj);
    LLVMValueRef a[] = {LLVMBuildLoad2(c->b, ty, mx, ""), cg_load(c, t, P, cg_add(c, row, j))};
    LLVMBuildStore(c->b, cg_intrinsic(c, "llvm.maxnum", ty, a, 2), mx);
    cg_loop_end(c, &lj);
    LLVMValueRef m = LLVMBuildLoad2(c->b, ty, mx, "");
    LLVMBuildStore(c->b, cg_fconst(c, t, 0), sum);
    j = cg_loop_begin(c, lim, &lj);
    LLVMValueRef d = LLVMBuildFSub(c->b, cg_load(c, t, P, cg_add(c, row, j)), m, "");
    LLVMValueRef e = cg_intrinsic(c, "llvm.exp", ty, &d, 1);
    cg_store(c, t, e, P, cg_add(c, row, j));
    LLVMBuildStore(c->b, f_add(c, LLVMBuildLoad2(c->b, ty, sum, ""), e), sum);
    cg_loop_end(c, &lj);
    LLVMValueRef inv =
        LLVMBuildFDiv(c->b, cg_fconst(c, t, 1), LLVMBuildLoad2(c->b, ty, sum, ""), "");
    j = cg_loop_begin(c, lim, &lj);
    cg_store(c, t, f_mul(c, cg_load(c, t, P, cg_add(c, row, j)), inv), P, cg_add(c, row, j));
    cg_loop_end(c, &lj);
    if (causal) {
        /* masked keys weigh exactly 0 */
        j = cg_loop_begin(c, LLVMBuildNSWSub(c->b, S, lim, ""), &lj);
        cg_store(c, t, cg_fconst(c, t, 0), P, cg_add(c, row, cg_add(c, lim, j)));
        cg_loop_end(c, &lj);
    }
    cg_loop_end(c, &li);

    cg_gemm(c, t, false, false, T, DV, S, cg_fconst(c, t, 1), P, S, vh, DV, 0, oh, DV);
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
    case OP_ATTENTION: return k_attention(c, step);
    default: die("codegen: %s is not a sequence op", op_info[step->op].text);
    }
}
