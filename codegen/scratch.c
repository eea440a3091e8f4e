/*
 * Scratch memory of kernels (cg_scratch_bytes, which the driver hands to
 * pass_memplan: the sizes encode which path the kernels take, so they
 * live next to them): the temporary buffers a kernel needs during
 * its own step only (an im2col matrix, recurrent gates, attention scores).
 * The memory planner gives each a slot of the arena, so generated code
 * never allocates. Sizes are at the maximum batch.
 *
 * Elementwise and layout kernels work in their output buffers and need
 * none; a sum over the batch in chunks keeps its partial sums here
 * (cg_sum_max_chunks), a dense layer's product cut along k its second
 * half's partial product (cg_gemm_splits_k), and a class loss over many
 * rows its rows' losses (cg_loss_rows).
 *
 * Convolutions (codegen/conv.c) work one image and one group at a
 * time: conv2d/conv1d build the im2col matrix [C/groups * kernel, output
 * positions] of it, except for a 1x1, stride-1, unpadded kernel, whose
 * input already is that matrix; one of dilation 1 may instead run
 * directly (cg_conv_window: a padded copy of the image, or of its
 * phases), so its scratch is the larger of
 * the two. conv3d
 * builds one output depth's block of the matrix [C/groups * kernel, OH *
 * OW] at a time; conv_transpose2d computes the column matrix [O/groups *
 * kernel, input positions] before col2im. The code generator takes the
 * presence of scratch as the choice of path. A
 * convolution fused with its bias and activation (pass_fuse) runs at its
 * group's root, so that root's step needs the convolution's scratch: it is
 * found walking the chain down from the root.
 */
#include <string.h>

#include "codegen.h"

static int64_t elem_bytes(DType t)
{
    return t == DT_F64 ? 8 : 4;
}

static int64_t ints_at(AttrInts a, int i)
{
    check(i < a.n);
    return a.v[i].n;
}

/* Product of the static dimensions from..rank-1 of s. */
static int64_t tail_numel(const Shape *s, int from)
{
    int64_t n = 1;
    for (int i = from; i < s->rank; i++)
        n *= s->d[i].n;
    return n;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The strided input gradient's geometry (v with ok and the kernel set):
 * dy's copy, padded for every phase's window (cg_adjoint_phase), and a
 * phase's outputs at its pitch */
static CgConvWin adjoint_window(CgConvWin v, int64_t cg, int64_t og, const int64_t *in,
                                const int64_t *on, const int64_t *s, const int64_t *p)
{
    int64_t pad[2] = {0, 0}, len[2] = {on[0], on[1]};
    for (int ax = 0; ax < 2; ax++)
        for (int64_t a = 0; a < s[ax]; a++) {
            CgAdjointPhase ph = cg_adjoint_phase(a, ax ? v.kw : v.kh, s[ax], p[ax], in[ax]);
            if (!ph.taps || !ph.count)
                continue;
            /* phase pixel m reads dy's m + shift - q for q < taps */
            pad[ax] = max64(pad[ax], ph.taps - 1 - ph.shift);
            len[ax] = max64(len[ax], ph.count + ph.shift);
        }
    v.C = og;
    v.O = cg;
    v.sh = s[0];
    v.sw = s[1];
    v.ph = p[0];
    v.pw = p[1];
    v.H = on[0];
    v.W = on[1];
    v.oh = in[0];
    v.ow = in[1];
    v.oy = pad[0];
    v.ox = pad[1];
    v.h = pad[0] + len[0];
    v.w = pad[1] + len[1];
    v.copy = true;
    v.wp = v.w;
    /* phase 0 has the most rows, ceil(in / s) */
    v.elems = og * v.h * v.w + cg * ((in[0] + s[0] - 1) / s[0]) * v.wp;
    return v;
}

CgConvWin cg_conv_window(const Node *n)
{
    CgConvWin v = {0};
    bool gi = n->op == OP_CONV_GRAD_INPUT, gw = n->op == OP_CONV_GRAD_WEIGHT;
    if ((n->op != OP_CONV2D && n->op != OP_CONV1D && !gi && !gw) || n->dtype != DT_F32)
        return v;
    const Shape *x = gi ? &n->shape : &n->in[0]->shape;
    const Shape *y = gi ? &n->in[0]->shape : gw ? &n->in[1]->shape : &n->shape;
    const Shape *w = gi ? &n->in[1]->shape : gw ? &n->shape : &n->in[1]->shape;
    int nsp = x->rank - 2;
    if (nsp != 1 && nsp != 2)
        return v;
    /* per axis (height, width); a 1-d convolution has height 1 */
    int64_t in[2] = {1, 1}, on[2] = {1, 1}, k[2] = {1, 1}, p[2] = {0, 0}, s[2] = {1, 1};
    bool pointwise = true;
    for (int i = 0; i < nsp; i++) {
        int a = 2 - nsp + i;
        if (ints_at(attr_dilation(n), i) != 1)
            return v;
        in[a] = x->d[2 + i].n;
        on[a] = y->d[2 + i].n;
        k[a] = w->d[2 + i].n;
        p[a] = ir_pad(attr_padding(n), nsp, i, false);
        s[a] = ints_at(attr_stride(n), i);
        pointwise &=
            k[a] == 1 && s[a] == 1 && p[a] == 0 && ir_pad(attr_padding(n), nsp, i, true) == 0;
    }
    bool strided = s[0] > 1 || s[1] > 1;
    /* pointwise, the image already is the column matrix; a stride of
     * more than CG_MAX_PHASES phases (a 16x16 patch embedding's 256)
     * would emit a copy loop and a product per phase: im2col */
    if (pointwise || s[0] * s[1] > CG_MAX_PHASES)
        return v;
    int64_t groups = attr_groups(n), cg = x->d[1].n / groups, og = y->d[1].n / groups;
    v.ok = true;
    v.kh = k[0];
    v.kw = k[1];
    if (gi && strided)
        return adjoint_window(v, cg, og, in, on, s, p);
    /* conv_grad_input's is the adjoint: dy, padded by k - 1 - p, with
     * flipped weights, makes the input's pixels */
    const int64_t *from = gi ? on : in, *to = gi ? in : on;
    v.C = gi ? og : cg;
    v.O = gi ? cg : og;
    v.H = from[0];
    v.W = from[1];
    v.oh = to[0];
    v.ow = to[1];
    v.oy = gi ? k[0] - 1 - p[0] : p[0];
    v.ox = gi ? k[1] - 1 - p[1] : p[1];
    v.sh = s[0];
    v.sw = s[1];
    /* the rows and columns a channel's plane needs: the padded image's, or
     * a phase's, of which tap i reads from row i / sh */
    v.h = v.oh + (v.kh - 1) / v.sh;
    v.w = v.ow + (v.kw - 1) / v.sw;
    /* x itself when no window reaches past its top and left edges nor past
     * its bottom and right ones (the gradient's dy always a copy) */
    v.copy = strided || gi || v.oy || v.ox || v.h > v.H || v.w > v.W;
    v.wp = v.copy ? v.w : v.W;
    /* the weight gradient's dy at the pitch, and its transposed sum of
     * every group's weights (the other products store their outputs
     * without the wrapped columns) */
    v.wt = gw && og >= CG_WT_CHANNELS;
    int64_t planes = cg_win_phases(v.kh, v.sh) * cg_win_phases(v.kw, v.sw);
    v.elems = (v.copy ? v.C * planes * v.h * v.w : 0) +
              (gw && (v.wt || v.wp != v.ow) ? v.O * v.oh * v.wp : 0) +
              (v.wt ? groups * og * cg * v.kh * v.kw : 0);
    return v;
}

static int64_t conv_scratch(const Node *n)
{
    const Node *x = n->in[0], *w = n->in[1];
    int nsp = x->shape.rank - 2;
    int64_t groups = attr_groups(n);
    if (n->op == OP_CONV_TRANSPOSE2D || n->op == OP_CONV_TRANSPOSE1D) {
        int64_t og = w->shape.d[1].n;
        return og * tail_numel(&w->shape, 2) * tail_numel(&x->shape, 2) * elem_bytes(n->dtype);
    }
    int64_t cg = x->shape.d[1].n / groups;
    if (nsp == 3) /* one output depth's column block */
        return cg * tail_numel(&w->shape, 2) * tail_numel(&n->shape, 3) * elem_bytes(n->dtype);
    bool pointwise = true;
    for (int i = 0; i < nsp; i++)
        pointwise &= w->shape.d[2 + i].n == 1 && ints_at(attr_stride(n), i) == 1 &&
                     ir_pad(attr_padding(n), nsp, i, false) == 0 &&
                     ir_pad(attr_padding(n), nsp, i, true) == 0;
    if (pointwise)
        return 0;
    /* the column matrix, or a direct convolution's copies */
    return max64(cg * tail_numel(&w->shape, 2) * tail_numel(&n->shape, 2),
                 cg_conv_window(n).elems) *
           elem_bytes(n->dtype);
}

/* conv_grad_input(dy, w) and conv_grad_weight(x, dy) (codegen/conv.c):
 * the forward convolution's column matrix [C/groups * kernel, output
 * positions], for col2im or from im2col, except for a pointwise kernel. */
static int64_t conv_grad_scratch(const Node *n)
{
    bool gi = n->op == OP_CONV_GRAD_INPUT;
    const Shape *x = gi ? &n->shape : &n->in[0]->shape;
    const Shape *dy = gi ? &n->in[0]->shape : &n->in[1]->shape;
    const Shape *w = gi ? &n->in[1]->shape : &n->shape;
    bool pointwise = true;
    int nsp = x->rank - 2;
    if (nsp == 3) /* one output depth's column block, and one slice of x */
        return (x->d[1].n / attr_groups(n) * tail_numel(w, 2) * tail_numel(dy, 3) +
                (gi ? tail_numel(x, 3) : 0)) *
               elem_bytes(n->dtype);
    for (int i = 0; i < nsp; i++)
        pointwise &= w->d[2 + i].n == 1 && ints_at(attr_stride(n), i) == 1 &&
                     ir_pad(attr_padding(n), nsp, i, false) == 0 &&
                     ir_pad(attr_padding(n), nsp, i, true) == 0;
    if (pointwise)
        return 0;
    int64_t cg = x->d[1].n / attr_groups(n);
    return max64(cg * tail_numel(w, 2) * tail_numel(dy, 2), cg_conv_window(n).elems) *
           elem_bytes(n->dtype);
}

int64_t cg_conv_chunk_elems(const Node *n)
{
    return conv_grad_scratch(n) / elem_bytes(n->dtype);
}

int64_t cg_sum_chunk_rows(const Graph *g, const Node *n)
{
    if (n->op != OP_SUM || !ir_dtype_is_float(n->dtype) || !attr_has_axes(n))
        return 0;
    const Shape *x = &n->in[0]->shape;
    bool first = false;
    AttrInts ax = attr_axes(n);
    for (int k = 0; k < ax.n; k++)
        first |= ax.v[k].n == 0;
    if (!first || x->rank == 0 || !x->d[0].batch)
        return 0;
    for (int d = 1; d < x->rank; d++)
        if (x->d[d].batch)
            return 0;
    int64_t rows = ir_dim_max(g, x->d[0]), work = tail_numel(x, 1), r = 1;
    while (r * work < CG_TASK_WORK)
        r *= 2;
    return rows >= 2 * r ? r : 0;
}

int64_t cg_sum_max_chunks(const Graph *g, const Node *n)
{
    int64_t r = cg_sum_chunk_rows(g, n);
    return r ? (ir_dim_max(g, n->in[0]->shape.d[0]) + r - 1) / r : 0;
}

int64_t cg_conv_weight_chunks(const Graph *g, const Node *n)
{
    if (n->op != OP_CONV_GRAD_WEIGHT || conv_grad_scratch(n) == 0 ||
        n->in[0]->shape.rank == 5) /* conv3d's weight gradient: one pass */
        return 1;
    int64_t images = ir_dim_max(g, n->in[0]->shape.d[0]);
    /* multiply-adds per image: the weight gradient's elements times the
     * output positions */
    int64_t work = tail_numel(&n->shape, 0) * tail_numel(&n->in[1]->shape, 2);
    if (work * images < 2 * CG_TASK_WORK)
        return 1;
    return images < CG_WEIGHT_CHUNKS ? images : CG_WEIGHT_CHUNKS;
}

/* Recurrent layers (codegen/seq.c): the input projection of all
 * steps [B*T, G*H] (unless it is in the layer's reserve), one step's
 * recurrent projection [B, G*H], and the LSTM cell state [B, H]. Their
 * backward ops: with f32, W_hh^T [G*H, H] for the steps' generated
 * products; the carried adjoints [B, H] (and the LSTM's cell adjoint),
 * the previous states [B*T, H] (the LSTM's only to rebuild), and unless
 * the layer's reserve holds them, its planes rebuilt. Attention: one
 * [T, S] score block, reused for every batch*head. */
static int64_t seq_scratch(const Graph *g, const Node *n)
{
    int64_t es = elem_bytes(n->dtype);
    if (n->op == OP_ATTENTION || n->op == OP_ATTENTION_MASKED)
        return es * ir_dim_max(g, n->in[0]->shape.d[2]) * ir_dim_max(g, n->in[1]->shape.d[2]);
    int64_t B = ir_dim_max(g, n->shape.d[0]), T = ir_dim_max(g, n->in[0]->shape.d[1]);
    Op cell = ir_recurrent_cell(n->op);
    int64_t G = cell == OP_LSTM ? 4 : cell == OP_GRU ? 3 : 1;
    if (ir_recurrent_backward(n->op)) {
        int64_t H = n->in[0]->shape.d[2].n;
        int64_t wt = n->dtype == DT_F32 ? cg_packed_floats(G * H, H) : 0; /* W_hh^T */
        if (cell == OP_RNN)
            return es * (wt + B * H);
        /* without the layer's reserve, its G + 1 planes [B*T, H] are
         * rebuilt here (and the GRU's recurrent side, [B*T, 3H]) */
        bool rebuilt = !ir_recurrent_grad_reserved(n);
        int64_t rows = rebuilt ? (G + 1) * H + (cell == OP_GRU ? 3 * H : 0) : 0;
        int64_t carried = cell == OP_LSTM ? 2 * B * H : B * H; /* DH (and DC) */
        return es * (wt + carried + B * T * (rebuilt ? H + rows : 0));
    }
    int64_t H = n->shape.d[2].n;
    int64_t xp = ir_recurrent_reserve(g, n) ? 0 : B * T * G * H;
    int64_t packed = n->dtype == DT_F32 ? cg_packed_floats(H, G * H) : 0; /* W_hh */
    return es * (xp + B * G * H + (cell == OP_LSTM ? B * H : 0) + packed);
}

/* The convolution or product (kind) computed by the kernel of root r
 * of a group it heads (a chain down from r through its members), or
 * NULL. */
static const Node *fused_head(const Node *r, OpKind kind)
{
    const Node *x = r;
    for (;;) {
        const Node *next = NULL;
        for (int j = 0; j < x->nin && !next; j++)
            if (x->in[j]->fused == r)
                next = x->in[j];
        if (!next)
            return NULL;
        if (op_info[next->op].kind == kind)
            return next;
        x = next;
    }
}

bool cg_gemm_splits_k(const Node *m)
{
    const Shape *a = &m->in[0]->shape, *w = &m->in[1]->shape;
    if (m->op != OP_MATMUL || m->dtype != DT_F32 || ir_matmul_trans(m, 0) ||
        ir_matmul_trans(m, 1) || a->rank < 2 || w->rank != 2)
        return false;
    Dim k = w->d[0], n = w->d[1];
    return !k.batch && !n.batch && k.n >= CG_SPLIT_K_MIN && n.n > 0 && k.n * n.n >= CG_TASK_WORK;
}

int64_t cg_loss_rows(const Graph *g, const Node *n)
{
    const Shape *x = &n->in[0]->shape;
    if ((n->op != OP_CROSS_ENTROPY && n->op != OP_NLL_LOSS && n->op != OP_MULTI_MARGIN_LOSS) ||
        x->rank < 2 || strcmp(attr_reduction(n), "none") == 0)
        return 0;
    int64_t row = 1; /* classes by inner positions */
    for (int d = 1; d < x->rank; d++) {
        if (x->d[d].batch || x->d[d].n < 1)
            return 0;
        row *= x->d[d].n;
    }
    /* a row's work: its maximum, exponentials and sum, about 4 per class */
    int64_t rows = (CG_TASK_WORK + 4 * row - 1) / (4 * row);
    return ir_dim_max(g, x->d[0]) > rows ? rows : 0;
}

static int64_t aligned(int64_t b)
{
    return (b + 63) / 64 * 64;
}

static int64_t value_bytes(const Graph *g, DType t, const Shape *s)
{
    int64_t b = elem_bytes(t);
    for (int i = 0; i < s->rank; i++)
        b *= ir_dim_max(g, s->d[i]);
    return b;
}

CgLoopScratch cg_loop_scratch(const Graph *g, const Node *loop)
{
    Graph *b = loop->body;
    LoopParts p = ir_loop_parts(loop);
    CgLoopScratch s = {0};
    Node **roots = arena_alloc(g->arena, sizeof *roots * ((size_t)b->outputs.n + 1));
    for (int i = 0; i < b->outputs.n; i++)
        roots[i] = b->outputs.v[i].node;
    s.body = pass_memplan(b, roots, b->outputs.n, cg_scratch_bytes);
    s.bytes = aligned(s.body->arena_bytes);
    s.carried = arena_alloc(g->arena, sizeof *s.carried * ((size_t)p.carried + 1));
    for (int k = 0; k < p.carried; k++) {
        s.carried[k] = s.bytes;
        s.bytes += aligned(value_bytes(g, loop->in[k]->dtype, &loop->in[k]->shape));
    }
    int nin;
    Node **in = ir_body_inputs(b, &nin);
    s.slice = arena_alloc(g->arena, sizeof *s.slice * ((size_t)p.scanned + 1));
    for (int k = 0; k < p.scanned; k++) {
        const Node *x = in[p.carried + k];
        s.slice[k] = s.bytes;
        s.bytes += aligned(value_bytes(g, x->dtype, &x->shape));
    }
    return s;
}

int64_t cg_scratch_bytes(const Graph *g, const Node *n)
{
    if (n->op == OP_LOOP)
        return cg_loop_scratch(g, n).bytes;
    if (op_info[n->op].kind == K_ELTWISE && !n->fused) {
        const Node *head = fused_head(n, K_CONV);
        if (!head)
            head = fused_head(n, K_GEMM);
        if (head)
            n = head;
    }
    switch (n->op) {
    case OP_RNN:
    case OP_LSTM:
    case OP_GRU:
    case OP_RNN_GRAD:
    case OP_LSTM_GRAD:
    case OP_GRU_GRAD:
    case OP_RNN_PACKED:
    case OP_LSTM_PACKED:
    case OP_GRU_PACKED:
    case OP_RNN_PACKED_GRAD:
    case OP_LSTM_PACKED_GRAD:
    case OP_GRU_PACKED_GRAD:
    case OP_ATTENTION:
    case OP_ATTENTION_MASKED: return seq_scratch(g, n);
    case OP_CONV2D:
    case OP_CONV1D:
    case OP_CONV3D:
    case OP_CONV_TRANSPOSE2D:
    case OP_CONV_TRANSPOSE1D: return conv_scratch(n);
    case OP_CONV_GRAD_INPUT: return conv_grad_scratch(n);
    case OP_CONV_GRAD_WEIGHT: {
        /* in chunks of images: a column matrix and a partial sum each */
        int64_t k = cg_conv_weight_chunks(g, n);
        if (k == 1)
            return conv_grad_scratch(n);
        return k * (conv_grad_scratch(n) + tail_numel(&n->shape, 0) * elem_bytes(n->dtype));
    }
    case OP_MATMUL: {
        if (!cg_gemm_splits_k(n))
            return 0;
        const Shape *w = &n->in[1]->shape;
        int64_t rows = value_bytes(g, n->dtype, &n->shape) / elem_bytes(n->dtype) / w->d[1].n,
                most = cg_split_k_rows(w->d[0].n, w->d[1].n);
        return (rows < most ? rows : most) * w->d[1].n * elem_bytes(n->dtype);
    }
    case OP_CROSS_ENTROPY:
    case OP_NLL_LOSS:
    case OP_MULTI_MARGIN_LOSS: {
        if (!cg_loss_rows(g, n))
            return 0;
        const Shape *x = &n->in[0]->shape;
        int64_t vals = ir_dim_max(g, x->d[0]);
        for (int d = 2; d < x->rank; d++)
            vals *= x->d[d].n;
        return vals * elem_bytes(n->dtype);
    }
    case OP_SUM: {
        return cg_sum_max_chunks(g, n) * tail_numel(&n->shape, 0) * elem_bytes(n->dtype);
    }
    default: return 0;
    }
}
